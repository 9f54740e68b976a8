//! The HTTP surface of `watch`: /healthz and /metrics (open: they reveal counts only) and
//! /api/incidents (bearer token). Loopback by default.

use anyhow::{Context, Result, bail};
use std::sync::Arc;
use tracing::{info, warn};
use trailwarden_engine::journal::Journal;
use trailwarden_engine::metrics::Metrics;

/// What the HTTP endpoint serves.
pub struct Api {
    pub metrics: Arc<Metrics>,
    /// The bearer token /api/* requires; None: the API is not served.
    pub token: Option<String>,
    pub journal_path: std::path::PathBuf,
}

/// Never prints the token.
impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("journal_path", &self.journal_path)
            .finish_non_exhaustive()
    }
}

/// The API token: the file's first line, at least 16 characters; a file others can read is
/// refused (the token lets whoever holds it read the incidents).
pub fn read_token(file: &std::path::Path) -> Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file)
            .with_context(|| format!("--api-token-file {}", file.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "--api-token-file {}: readable by group or others (mode {:o}); chmod 600 it",
                file.display(),
                mode & 0o777
            );
        }
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--api-token-file {}", file.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.len() < 16 {
        bail!(
            "--api-token-file {}: the token must be at least 16 characters",
            file.display()
        );
    }
    Ok(token)
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn same_token(given: &str, want: &str) -> bool {
    given.len() == want.len()
        && given
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// `/api/incidents?since=RFC3339&gap=SECONDS`: the incidents as `trailwarden incidents
/// --format json` prints them.
fn incidents_json(journal_path: &std::path::Path, query: &str) -> Result<String, String> {
    let mut since = None;
    let mut gap = 3600;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "since" => since = Some(v.replace("%3A", ":").replace("%3a", ":")),
            "gap" => {
                gap = v
                    .parse()
                    .map_err(|_| format!("gap={v}: not a number of seconds"))?
            }
            _ => return Err(format!("unknown parameter {k}")),
        }
    }
    let journal = Journal::open(journal_path).map_err(|e| e.to_string())?;
    let detections = journal
        .detections(since.as_deref())
        .map_err(|e| e.to_string())?;
    let incidents = trailwarden_engine::incidents::group(&detections, gap);
    serde_json::to_string_pretty(&serde_json::json!({ "incidents": incidents }))
        .map_err(|e| e.to_string())
}

/// /healthz and /metrics (open: they reveal counts only), and /api/incidents (bearer token).
/// Loopback by default.
pub async fn serve_http(listen: &str, api: Api) -> Result<()> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    info!(address = %listener.local_addr()?, api = api.token.is_some(), "serving /healthz, /metrics{}", if api.token.is_some() { " and /api/incidents" } else { "" });
    let api = Arc::new(api);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let api = api.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let api = api.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let query = req.uri().query().unwrap_or("").to_owned();
                        let (status, kind, body) = match path.as_str() {
                            "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
                            "/metrics" => (
                                StatusCode::OK,
                                "text/plain; version=0.0.4",
                                api.metrics.render(),
                            ),
                            "/api/incidents" => {
                                let given = req
                                    .headers()
                                    .get(hyper::header::AUTHORIZATION)
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.strip_prefix("Bearer "))
                                    .unwrap_or("");
                                match &api.token {
                                    None => (
                                        StatusCode::NOT_FOUND,
                                        "text/plain",
                                        "the API is off: start watch with --api-token-file\n"
                                            .to_owned(),
                                    ),
                                    Some(want) if !same_token(given, want) => {
                                        warn!(path, "API request without a valid token refused");
                                        (
                                            StatusCode::UNAUTHORIZED,
                                            "text/plain",
                                            "a valid bearer token is required\n".to_owned(),
                                        )
                                    }
                                    Some(_) => {
                                        let journal_path = api.journal_path.clone();
                                        match tokio::task::spawn_blocking(move || {
                                            incidents_json(&journal_path, &query)
                                        })
                                        .await
                                        {
                                            Ok(Ok(json)) => {
                                                (StatusCode::OK, "application/json", json)
                                            }
                                            Ok(Err(e)) => (
                                                StatusCode::BAD_REQUEST,
                                                "text/plain",
                                                format!("{e}\n"),
                                            ),
                                            Err(e) => (
                                                StatusCode::INTERNAL_SERVER_ERROR,
                                                "text/plain",
                                                format!("{e}\n"),
                                            ),
                                        }
                                    }
                                }
                            }
                            _ => (
                                StatusCode::NOT_FOUND,
                                "text/plain",
                                "not found\n".to_owned(),
                            ),
                        };
                        let mut response = Response::builder()
                            .status(status)
                            .header("content-type", kind);
                        if status == StatusCode::UNAUTHORIZED {
                            response = response.header("www-authenticate", "Bearer");
                        }
                        response.body(Full::new(Bytes::from(body)))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_token("0123456789abcdeX", "0123456789abcdef"));
        assert!(!same_token("0123456789abcdef0", "0123456789abcdef"));
        assert!(!same_token("", "0123456789abcdef"));
    }
}
