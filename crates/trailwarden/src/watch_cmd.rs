//! `trailwarden watch`: the service. Consumes the central queue of forwarded CloudTrail
//! events and hands each to the engine's guard, which believes only what it can check, runs
//! the rule pack and restores the affected account at once (with --remediate); sweeps every
//! account against the baseline on start and every --sweep-interval; serves /healthz,
//! /metrics and the API (`http_api`).
//!
//! Nothing waits for anything it does not need: messages are handled concurrently (a restore
//! per account at a time, shared by that account's events), the sweep runs as its own task,
//! and a flooded account holds neither the queue nor another account's restore.

use crate::args::{GlobalArgs, WatchArgs};
use crate::exit;
use crate::http_api::{Api, Health, read_private_lines, read_token, serve_http};
use crate::rules_cmd;
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tracing::{info, warn};
use trailwarden_aws::queue::{self, Message};
use trailwarden_aws::{AccountConfig, ClientFactory};
use trailwarden_engine::forwarding::Forwarding;
use trailwarden_engine::guard::{Guard, GuardSettings};
use trailwarden_engine::journal::Journal;
use trailwarden_engine::metrics::Metrics;
use trailwarden_engine::notify::{Sinks, deliver_loop, redacted};
use trailwarden_engine::pinned;

pub async fn run(factory: &ClientFactory, g: &GlobalArgs, args: &WatchArgs) -> Result<u8> {
    let rules = Arc::new(rules_cmd::load(&args.source)?);
    let baseline = Arc::new(pinned::load_baseline(
        &args.baseline,
        args.baseline_sha256.as_deref(),
    )?);
    if g.role_name.is_none() && baseline.accounts.len() > 1 {
        bail!("the baseline has several accounts: pass --role-name (the role to assume in each)");
    }
    let path = match &args.state {
        Some(p) => p.clone(),
        None => Journal::default_path()?,
    };
    let journal = Arc::new(
        Journal::open(&path)
            .with_context(|| format!("opening the state store {}", path.display()))?,
    );
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::new(args.sweep_interval));
    let token = match &args.api_token_file {
        Some(file) => Some(read_token(file)?),
        None => None,
    };
    let sinks = Sinks {
        sns_topics: args.notify_sns.iter().cloned().collect(),
        webhooks: match &args.notify_webhook_file {
            Some(file) => read_private_lines(file, "--notify-webhook-file")?,
            None => Vec::new(),
        },
        attempts: args.notify_attempts,
    };
    for url in &sinks.webhooks {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bail!(
                "--notify-webhook-file: {} is not an http(s) URL",
                redacted(&format!("webhook:{url}"))
            );
        }
    }
    for topic in &sinks.sns_topics {
        if trailwarden_aws::topics::topic_region(topic).is_none() {
            bail!("--notify-sns {topic}: not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)");
        }
    }
    if args.listen != "off" {
        serve_http(
            &args.listen,
            Api {
                metrics: metrics.clone(),
                health: health.clone(),
                token,
                journal: journal.clone(),
            },
        )
        .await?;
    }
    // Delivery runs only with sinks; notifications queued by an earlier run wait in the
    // outbox (and are reported here) until it runs again.
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_delivery, stop_rx) = tokio::sync::watch::channel(false);
    let delivery = (!sinks.is_empty()).then(|| {
        tokio::spawn(deliver_loop(
            journal.clone(),
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
    // The role trailwarden itself runs as: a record naming it with a key trailwarden never
    // obtained is an impersonation.
    let own_role_names = match trailwarden_aws::fanout::caller_identity(factory).await {
        Ok((_, arn)) => trailwarden_aws::fanout::role_of_session(&arn)
            .map(str::to_owned)
            .into_iter()
            .collect(),
        Err(e) => bail!("{e}"),
    };
    let mut settings = GuardSettings::new(
        args.remediate,
        g.role_name.clone(),
        crate::targets::selection(g, None),
    );
    settings.forwarding = match &args.event_bus_arn {
        Some(bus) => Some(Forwarding::new(
            &rules,
            bus,
            args.forwarder_role_name.clone(),
        )?),
        None => None,
    };
    settings.own_role_names = own_role_names;
    settings.unread_alert_after = args.unread_alert_after;
    settings.restore_workers = args.workers as usize;
    let guard = Guard::new(
        factory.clone(),
        rules.clone(),
        baseline,
        journal.clone(),
        metrics.clone(),
        settings,
        sinks,
        Some(wake),
    );
    info!(queue = %args.queue_url, remediate = args.remediate, rules = rules.len(),
        workers = args.workers, receivers = args.receivers, "watching");

    let stopping = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(sweep_loop(
        guard.clone(),
        health.clone(),
        args.sweep_interval,
        stop_rx.clone(),
    ));
    let caller = factory.caller();
    let region = queue::queue_region(&args.queue_url, factory.home_region());
    // Messages still in hand at half the queue's visibility timeout are kept hidden longer
    // (most are done long before: no call then).
    let visibility = queue::visibility_timeout(&caller, &region, &args.queue_url)
        .await
        .unwrap_or_else(|e| {
            warn!(error = %e, "the queue's visibility timeout could not be read; assuming 30 s");
            30
        });
    let (done_tx, done_rx) = mpsc::unbounded_channel::<Message>();
    let deleter = tokio::spawn(delete_loop(
        caller.clone(),
        region.clone(),
        args.queue_url.clone(),
        done_rx,
    ));
    let in_flight = Arc::new(Semaphore::new(args.max_in_flight as usize));
    let receivers: Vec<_> = (0..args.receivers)
        .map(|_| {
            tokio::spawn(receive_loop(Receiver {
                guard: guard.clone(),
                caller: caller.clone(),
                region: region.clone(),
                url: args.queue_url.clone(),
                visibility,
                in_flight: in_flight.clone(),
                done: done_tx.clone(),
                health: health.clone(),
                stopping: stopping.clone(),
                stop: stop_rx.clone(),
            }))
        })
        .collect();
    drop(done_tx);

    shutdown_signal().await;
    info!("stopping: signal received; finishing the messages in hand");
    stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for r in receivers {
        let _ = r.await;
    }
    // Every message in hand is finished (its permit returned) before the process ends.
    let _ = tokio::time::timeout(
        Duration::from_secs(60),
        in_flight.acquire_many(args.max_in_flight),
    )
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(15), deleter).await;
    sweeper.abort();
    if let Some(delivery) = delivery {
        // One last pass over what is due; the rest waits in the outbox.
        let _ = stop_delivery.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(15), delivery).await;
    }
    Ok(exit::OK)
}

/// The sweep, on start and every `interval`, as its own task: the event path never waits
/// for it.
async fn sweep_loop(
    guard: Guard,
    health: Arc<Health>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let summary = guard.sweep().await;
        health.swept(summary.failed());
        let next = tokio::time::Instant::now() + interval;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => break,
                () = guard.rediscovery_requested() => {
                    // Organization events come in bursts, and anyone with a foothold in a
                    // member account can send some: at most one rediscovery per spacing.
                    tokio::select! {
                        () = tokio::time::sleep(REDISCOVERY_SPACING) => {}
                        _ = stop.changed() => return,
                    }
                    guard.survey().await;
                }
                _ = stop.changed() => return,
            }
        }
    }
}

/// The shortest time between two rediscoveries asked for by Organizations events.
const REDISCOVERY_SPACING: Duration = Duration::from_secs(5);

/// How long one receive waits for messages.
const LONG_POLL_SECONDS: i32 = 10;

/// While a message is handled, it is kept hidden this long more, renewed at every half of the
/// queue's visibility timeout.
const HEARTBEAT_VISIBILITY_SECONDS: i32 = 30;

/// Seconds before a message that failed is tried again: 5, 10, 20, ... up to 5 minutes.
fn retry_backoff(receive_count: u32) -> i32 {
    5_i32
        .saturating_mul(1 << receive_count.saturating_sub(1).min(6))
        .min(300)
}

/// What a receive loop needs.
struct Receiver {
    guard: Guard,
    caller: AccountConfig,
    region: String,
    url: String,
    /// The queue's visibility timeout, seconds.
    visibility: u32,
    in_flight: Arc<Semaphore>,
    done: mpsc::UnboundedSender<Message>,
    health: Arc<Health>,
    stopping: Arc<AtomicBool>,
    stop: tokio::sync::watch::Receiver<bool>,
}

/// Receives batches and hands each message to its own task; waits only when
/// `max_in_flight` messages are in hand.
async fn receive_loop(mut r: Receiver) {
    while !r.stopping.load(Ordering::Relaxed) {
        // Room for a whole batch before asking for one.
        let Ok(permits) = r.in_flight.clone().acquire_many_owned(10).await else {
            return;
        };
        let received = tokio::select! {
            // Long polls shorter than a call's attempt timeout (20 s by default).
            received = queue::receive(&r.caller, &r.region, &r.url, LONG_POLL_SECONDS) => received,
            _ = r.stop.changed() => return,
        };
        let messages = match received {
            Ok(messages) => {
                r.health.received();
                messages
            }
            Err(e) => {
                r.health.receive_failed();
                r.guard.metrics.errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "receiving from the queue failed; retrying");
                drop(permits);
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        let mut permits = permits;
        for message in messages {
            // One permit per message; the unused ones of the batch go back below.
            let Some(permit) = permits.split(1) else {
                break;
            };
            r.guard.metrics.messages.fetch_add(1, Ordering::Relaxed);
            let (guard, done) = (r.guard.clone(), r.done.clone());
            let (caller, region, url) = (r.caller.clone(), r.region.clone(), r.url.clone());
            let beat = Duration::from_millis(u64::from(r.visibility.max(1)) * 500);
            tokio::spawn(async move {
                let _permit = permit;
                let received = Instant::now();
                // Hidden from other receivers while it is handled (a restore may outlast the
                // queue's visibility timeout): a copy handled beside it would only wait for it,
                // then retry at once, spending the message's receives.
                let heartbeat = async {
                    let mut wait = beat;
                    loop {
                        tokio::time::sleep(wait).await;
                        wait = Duration::from_secs(HEARTBEAT_VISIBILITY_SECONDS as u64 / 2);
                        if let Err(e) = queue::change_visibility(
                            &caller,
                            &region,
                            &url,
                            &message,
                            HEARTBEAT_VISIBILITY_SECONDS,
                        )
                        .await
                        {
                            warn!(message_id = %message.id, error = %e, "could not extend the message's visibility");
                        }
                    }
                };
                let handled = tokio::select! {
                    handled = guard.handle(&message.body, received) => handled,
                    () = heartbeat => unreachable!("the heartbeat never ends"),
                };
                match handled {
                    // Handled, a duplicate, or not believed: deleted (a forged message would
                    // only come back).
                    Ok(_) => {
                        let _ = done.send(message);
                    }
                    Err(e) => {
                        guard.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        // Tried again after a back-off, not at once: a throttling or an outage
                        // that made it fail is likely to last a little.
                        let backoff = retry_backoff(message.receive_count);
                        if let Err(e) =
                            queue::change_visibility(&caller, &region, &url, &message, backoff)
                                .await
                        {
                            warn!(message_id = %message.id, error = %e, "could not set the message's retry back-off");
                        }
                        warn!(message_id = %message.id, receive_count = message.receive_count, retry_in_s = backoff, error = %e,
                            "message not handled; left on the queue (after the queue's maxReceiveCount it goes to the dead-letter queue)");
                    }
                }
            });
        }
    }
}

/// Deletes handled messages in batches of up to 10 (at-least-once: a crash before the delete
/// means a redelivery, recognised by its account and eventID).
async fn delete_loop(
    caller: AccountConfig,
    region: String,
    url: String,
    mut done: mpsc::UnboundedReceiver<Message>,
) {
    while let Some(first) = done.recv().await {
        let mut batch = vec![first];
        while batch.len() < 10 {
            match tokio::time::timeout(Duration::from_millis(20), done.recv()).await {
                Ok(Some(m)) => batch.push(m),
                _ => break,
            }
        }
        let refs: Vec<&Message> = batch.iter().collect();
        for (id, e) in queue::delete_batch(&caller, &region, &url, &refs).await {
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
