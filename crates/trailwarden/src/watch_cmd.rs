//! `trailwarden watch`: the service. Consumes the central queue of forwarded CloudTrail
//! events and hands each to the guard (`crate::guard`), which runs the rule pack and restores
//! the affected account at once (with --remediate); sweeps everything against the baseline on
//! start and every --sweep-interval, and serves /healthz and /metrics on loopback.

use crate::args::{GlobalArgs, WatchArgs};
use crate::exit;
use crate::forwarding_check::Forwarding;
use crate::guard::{Guard, GuardSettings, Metrics};
use crate::notify::{Sinks, deliver_loop, redacted};
use crate::rules_cmd;
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use trailwarden_aws::{ClientFactory, queue};
use trailwarden_engine::journal::Journal;
use trailwarden_posture::Baseline;

pub async fn run(factory: &ClientFactory, g: &GlobalArgs, args: &WatchArgs) -> Result<u8> {
    let rules = rules_cmd::load(&args.source)?;
    let baseline = Baseline::load(&args.baseline)?;
    if g.role_name.is_none() && baseline.accounts.len() > 1 {
        bail!("the baseline has several accounts: pass --role-name (the role to assume in each)");
    }
    let path = match &args.state {
        Some(p) => p.clone(),
        None => Journal::default_path()?,
    };
    let journal = Journal::open(&path)
        .with_context(|| format!("opening the state store {}", path.display()))?;
    let metrics = Arc::new(Metrics::default());
    let token = match &args.api_token_file {
        Some(file) => Some(read_token(file)?),
        None => None,
    };
    if args.listen != "off" {
        serve_http(
            &args.listen,
            Api {
                metrics: metrics.clone(),
                token,
                journal_path: path.clone(),
            },
        )
        .await?;
    }
    let sinks = Sinks {
        sns_topics: args.notify_sns.iter().cloned().collect(),
        webhooks: args.notify_webhook.clone(),
        attempts: args.notify_attempts,
    };
    for url in &sinks.webhooks {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bail!(
                "--notify-webhook {}: not an http(s) URL",
                redacted(&format!("webhook:{url}"))
            );
        }
    }
    for topic in &sinks.sns_topics {
        if trailwarden_aws::topics::topic_region(topic).is_none() {
            bail!("--notify-sns {topic}: not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)");
        }
    }
    // Delivery runs only with sinks; notifications queued by an earlier run wait in the
    // outbox (and are reported here) until it runs again.
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_delivery, stop_rx) = tokio::sync::watch::channel(false);
    let delivery = (!sinks.is_empty()).then(|| {
        tokio::spawn(deliver_loop(
            path.clone(),
            sinks.clone(),
            factory.clone(),
            metrics.clone(),
            wake.clone(),
            stop_rx,
        ))
    });
    if let Ok((pending, _, failed)) = journal.notification_counts()
        && (pending > 0 || failed > 0)
    {
        info!(pending, failed, "notifications in the outbox");
    }
    let caller = factory.caller();
    let region = queue::queue_region(&args.queue_url, factory.home_region());
    let watcher = Guard {
        factory,
        rules: &rules,
        baseline: &baseline,
        journal: &journal,
        metrics: &metrics,
        settings: GuardSettings {
            remediate: args.remediate,
            role_name: g.role_name.clone(),
            sweep: crate::targets::selection(g, None),
            verify_attempts: 3,
            forwarding: match &args.event_bus_arn {
                Some(bus) => Some(Forwarding::new(
                    &rules,
                    bus,
                    args.forwarder_role_name.clone(),
                )?),
                None => None,
            },
        },
        sinks: &sinks,
        notify_wake: Some(&wake),
    };
    info!(queue = %args.queue_url, remediate = args.remediate, rules = rules.len(), "watching");

    let mut shutdown = Box::pin(shutdown_signal());
    let mut next_sweep = Instant::now();
    loop {
        if Instant::now() >= next_sweep {
            watcher.sweep().await;
            next_sweep = Instant::now() + args.sweep_interval;
        }
        let wait = next_sweep
            .saturating_duration_since(Instant::now())
            .as_secs()
            .min(20) as i32;
        let received = tokio::select! {
            received = queue::receive(&caller, &region, &args.queue_url, wait) => received,
            () = &mut shutdown => {
                info!("stopping: signal received, no message in flight");
                if let Some(delivery) = delivery {
                    // One last pass over what is due; the rest waits in the outbox.
                    let _ = stop_delivery.send(true);
                    let _ = tokio::time::timeout(Duration::from_secs(15), delivery).await;
                }
                return Ok(exit::OK);
            }
        };
        let messages = match received {
            Ok(messages) => messages,
            Err(e) => {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "receiving from the queue failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        // In-flight messages are finished even when a signal arrives meanwhile.
        let mut handled = Vec::new();
        for message in &messages {
            metrics.messages.fetch_add(1, Ordering::Relaxed);
            // Messages of a batch are handled in turn; each one's overhead counts from its turn.
            match watcher.handle(&message.body, Instant::now()).await {
                Ok(_) => handled.push(message),
                Err(e) => {
                    metrics.errors.fetch_add(1, Ordering::Relaxed);
                    warn!(message_id = %message.id, receive_count = message.receive_count, error = %e,
                        "message not handled; left on the queue (after the queue's maxReceiveCount it goes to the dead-letter queue)");
                }
            }
        }
        // Deleted only once handled (at-least-once); one call for the batch. A crash before it
        // means redelivery, recognised by eventID.
        for (id, e) in queue::delete_batch(&caller, &region, &args.queue_url, &handled).await {
            warn!(message_id = %id, error = %e, "could not delete a handled message; it will be redelivered and recognised");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// What the HTTP endpoint serves.
struct Api {
    metrics: Arc<Metrics>,
    /// The bearer token /api/* requires; None: the API is not served.
    token: Option<String>,
    journal_path: std::path::PathBuf,
}

/// The API token: the file's first line, at least 16 characters; a file others can read is
/// refused (the token lets whoever holds it read the incidents).
fn read_token(file: &std::path::Path) -> Result<String> {
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
async fn serve_http(listen: &str, api: Api) -> Result<()> {
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
