//! `trailwarden watch`: the service. Consumes the central queue of forwarded CloudTrail
//! events and hands each to the engine's guard, which runs the rule pack and restores the
//! affected account at once (with --remediate); sweeps everything against the baseline on
//! start and every --sweep-interval; serves /healthz, /metrics and the API (`http_api`).

use crate::args::{GlobalArgs, WatchArgs};
use crate::exit;
use crate::http_api::{Api, read_token, serve_http};
use crate::rules_cmd;
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use trailwarden_aws::{ClientFactory, queue};
use trailwarden_engine::forwarding::Forwarding;
use trailwarden_engine::guard::{Guard, GuardSettings};
use trailwarden_engine::journal::Journal;
use trailwarden_engine::metrics::Metrics;
use trailwarden_engine::notify::{Sinks, deliver_loop, redacted};
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
