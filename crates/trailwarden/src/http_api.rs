//! The HTTP surface of `watch`: /healthz and /metrics (open: they reveal counts and health
//! only) and /api/incidents (bearer token). Loopback by default.
//!
//! Hardened against clients that hold connections open: a request's headers must arrive
//! within [`HEADER_TIMEOUT`], at most [`MAX_CONNECTIONS`] connections are served at once
//! (beyond it new ones are closed at once), and an accept error never ends the server.

use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tracing::{info, warn};
use trailwarden_engine::journal::Journal;
use trailwarden_engine::metrics::Metrics;
use trailwarden_model::clock;

/// A request whose headers take longer than this is dropped (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;

/// Whether the service does its job, for /healthz: the queue is being read and sweeps run.
#[derive(Debug)]
pub struct Health {
    started_ms: u64,
    sweep_interval: Duration,
    last_receive_ms: AtomicU64,
    /// The last receive failed (cleared by the next one that answers).
    receive_failing: AtomicBool,
    last_receive_error_ms: AtomicU64,
    last_sweep_ms: AtomicU64,
    /// Accounts the last sweep could not sweep.
    last_sweep_failed: AtomicU64,
}

impl Health {
    pub fn new(sweep_interval: Duration) -> Self {
        Self {
            started_ms: clock::now_millis(),
            sweep_interval,
            last_receive_ms: AtomicU64::new(0),
            receive_failing: AtomicBool::new(false),
            last_receive_error_ms: AtomicU64::new(0),
            last_sweep_ms: AtomicU64::new(0),
            last_sweep_failed: AtomicU64::new(0),
        }
    }

    /// A receive from the queue answered (with or without messages).
    pub fn received(&self) {
        self.last_receive_ms
            .store(clock::now_millis(), Ordering::Relaxed);
        self.receive_failing.store(false, Ordering::Relaxed);
    }

    /// A receive from the queue failed.
    pub fn receive_failed(&self) {
        self.last_receive_error_ms
            .store(clock::now_millis(), Ordering::Relaxed);
        self.receive_failing.store(true, Ordering::Relaxed);
    }

    /// A sweep ended; `failed` accounts could not be swept.
    pub fn swept(&self, failed: usize) {
        self.last_sweep_ms
            .store(clock::now_millis(), Ordering::Relaxed);
        self.last_sweep_failed
            .store(failed as u64, Ordering::Relaxed);
    }

    /// Problems, one sentence each; none means healthy.
    pub fn problems(&self) -> Vec<String> {
        let now = clock::now_millis();
        let since = |t: u64| now.saturating_sub(t) / 1000;
        let mut problems = Vec::new();
        // Long polls last 20 s: a minute without an answer means the queue is not read.
        let received = self.last_receive_ms.load(Ordering::Relaxed);
        let grace = 60_000;
        if now.saturating_sub(received.max(self.started_ms)) > grace {
            problems.push(if received == 0 {
                format!(
                    "the queue has not answered since the start {} s ago",
                    since(self.started_ms)
                )
            } else {
                format!("the queue has not answered for {} s", since(received))
            });
        }
        let error = self.last_receive_error_ms.load(Ordering::Relaxed);
        if self.receive_failing.load(Ordering::Relaxed) {
            problems.push(format!(
                "the last receive from the queue failed ({} s ago)",
                since(error)
            ));
        }
        let interval = self.sweep_interval.as_millis() as u64;
        let swept = self.last_sweep_ms.load(Ordering::Relaxed);
        if now.saturating_sub(swept.max(self.started_ms)) > 2 * interval + grace {
            problems.push(if swept == 0 {
                format!(
                    "no sweep has finished since the start {} s ago",
                    since(self.started_ms)
                )
            } else {
                format!(
                    "the last sweep finished {} s ago (interval {} s)",
                    since(swept),
                    interval / 1000
                )
            });
        }
        let failed = self.last_sweep_failed.load(Ordering::Relaxed);
        if failed > 0 {
            problems.push(format!(
                "the last sweep could not sweep {failed} account(s) (see the log)"
            ));
        }
        problems
    }
}

/// What the HTTP endpoint serves.
pub struct Api {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// The bearer token /api/* requires; None: the API is not served.
    pub token: Option<String>,
    pub journal: Arc<Journal>,
}

/// Never prints the token.
impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("journal", &self.journal.path())
            .finish_non_exhaustive()
    }
}

/// A file holding a secret (`what` names the option): refused when group or others can read
/// it; its lines, trimmed, without blank lines and `#` comments.
pub fn read_private_lines(file: &std::path::Path, what: &str) -> Result<Vec<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file)
            .with_context(|| format!("{what} {}", file.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{what} {}: readable by group or others (mode {:o}); chmod 600 it",
                file.display(),
                mode & 0o777
            );
        }
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("{what} {}", file.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// The API token: the file's first line, at least 16 characters; a file others can read is
/// refused (the token lets whoever holds it read the incidents).
pub fn read_token(file: &std::path::Path) -> Result<String> {
    let token = read_private_lines(file, "--api-token-file")?
        .into_iter()
        .next()
        .unwrap_or_default();
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
fn incidents_json(journal: &Journal, query: &str) -> Result<String, String> {
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
    let detections = journal
        .detections(since.as_deref())
        .map_err(|e| e.to_string())?;
    let incidents = trailwarden_engine::incidents::group(&detections, gap);
    serde_json::to_string_pretty(&serde_json::json!({ "incidents": incidents }))
        .map_err(|e| e.to_string())
}

type Reply = (hyper::StatusCode, &'static str, String);

/// One request's answer.
async fn answer(api: &Api, req: &hyper::Request<hyper::body::Incoming>) -> Reply {
    use hyper::StatusCode;
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("").to_owned();
    match path {
        "/healthz" => {
            let problems = api.health.problems();
            if problems.is_empty() {
                (StatusCode::OK, "text/plain", "ok\n".to_owned())
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    problems.join("\n") + "\n",
                )
            }
        }
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
                    "the API is off: start watch with --api-token-file\n".to_owned(),
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
                    let journal = api.journal.clone();
                    match tokio::task::spawn_blocking(move || incidents_json(&journal, &query))
                        .await
                    {
                        Ok(Ok(json)) => (StatusCode::OK, "application/json", json),
                        Ok(Err(e)) => (StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n")),
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
    }
}

/// Serves until the process ends. Loopback by default.
pub async fn serve_http(listen: &str, api: Api) -> Result<()> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::{TokioIo, TokioTimer};
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    info!(address = %listener.local_addr()?, api = api.token.is_some(), "serving /healthz, /metrics{}", if api.token.is_some() { " and /api/incidents" } else { "" });
    let api = Arc::new(api);
    let open = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, a reset before accept: wait a moment, keep serving.
                    warn!(error = %e, "accepting a connection failed; serving goes on");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::AcqRel);
                drop(stream);
                continue;
            }
            let (api, open) = (api.clone(), open.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let api = api.clone();
                    async move {
                        let (status, kind, body) = answer(&api, &req).await;
                        let mut response = Response::builder()
                            .status(status)
                            .header("content-type", kind)
                            .header("cache-control", "no-store");
                        if status == StatusCode::UNAUTHORIZED {
                            response = response.header("www-authenticate", "Bearer");
                        }
                        response.body(Full::new(Bytes::from(body)))
                    }
                });
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                open.fetch_sub(1, Ordering::AcqRel);
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

    #[test]
    fn health_names_what_is_wrong() {
        let h = Health::new(Duration::from_secs(60));
        // Just started: nothing is overdue yet.
        assert!(h.problems().is_empty(), "{:?}", h.problems());
        h.received();
        h.swept(0);
        assert!(h.problems().is_empty());
        h.receive_failed();
        assert!(h.problems()[0].contains("last receive from the queue failed"));
        h.received();
        h.swept(2);
        assert_eq!(
            h.problems(),
            vec!["the last sweep could not sweep 2 account(s) (see the log)".to_owned()]
        );
    }
}
