//! `trailwarden watch`: the service. Consumes the central queue of forwarded CloudTrail
//! events and hands each to the guard (`crate::guard`), which runs the rule pack and restores
//! the affected account at once (with --remediate); sweeps everything against the baseline on
//! start and every --sweep-interval, and serves /healthz and /metrics on loopback.

use crate::args::{GlobalArgs, WatchArgs};
use crate::exit;
use crate::guard::{Guard, GuardSettings, Metrics};
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
    if args.listen != "off" {
        serve_http(&args.listen, metrics.clone()).await?;
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
        },
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
        for message in messages {
            metrics.messages.fetch_add(1, Ordering::Relaxed);
            // Messages of a batch are handled in turn; each one's overhead counts from its turn.
            match watcher.handle(&message.body, Instant::now()).await {
                Ok(_) => {
                    if let Err(e) =
                        queue::delete(&caller, &region, &args.queue_url, &message.receipt_handle)
                            .await
                    {
                        warn!(message = %message.id, error = %e, "could not delete a handled message; it will be redelivered and recognised");
                    }
                }
                Err(e) => {
                    metrics.errors.fetch_add(1, Ordering::Relaxed);
                    warn!(message = %message.id, receive_count = message.receive_count, error = %e,
                        "message not handled; left on the queue (after the queue's maxReceiveCount it goes to the dead-letter queue)");
                }
            }
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

/// /healthz and /metrics; nothing that acts, so no token is needed (loopback by default).
async fn serve_http(listen: &str, metrics: Arc<Metrics>) -> Result<()> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    info!(address = %listener.local_addr()?, "serving /healthz and /metrics");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let (status, body) = match req.uri().path() {
                            "/healthz" => (StatusCode::OK, "ok\n".to_owned()),
                            "/metrics" => (StatusCode::OK, metrics.render()),
                            _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
                        };
                        Response::builder()
                            .status(status)
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(body)))
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
