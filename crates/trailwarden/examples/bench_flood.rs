//! Benchmark: does a flood in one account slow another account's restore? (run it with
//! `scripts/bench-flood`)
//!
//! One `watch --remediate` guards a lab of two member accounts. Phase 1: N stop-logging
//! attacks on the victim, one after another, each timed from the attack call's start until
//! the victim's trail logs again (read straight from moto). Phase 2: the same, while the noisy
//! account's events pour into the queue (1,000 StopLogging envelopes, as EventBridge delivers
//! them, sent in batches of 10 during the phase). Prints p50/p99 of both phases, their
//! ratio, and how the flood was absorbed (restores, escalations, notifications).

use serde_json::json;
use std::time::{Duration, Instant};
use trailwarden_aws::sdk::sqs::types::SendMessageBatchRequestEntry;
use trailwarden_lab::guarded::{Guarded, WatchOptions};
use trailwarden_lab::{ATTACKER_ROLE, HOME_REGION, Lab, LabSpec};
use trailwarden_testkit::bench::{arg, percentile};

/// `n` attacks on `victim`; each one's attack → restored time, in milliseconds.
async fn attacks(lab: &Lab, victim: &str, n: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        lab.attack("stop-logging", victim).await.expect("attack");
        while !lab.trail_logging(victim).await {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "not restored within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = started.elapsed().as_secs_f64() * 1000.0;
        if took > 5_000.0 {
            eprintln!(
                "slow restore: {took:.0} ms, attacked at {}",
                trailwarden_model::clock::rfc3339(
                    trailwarden_model::clock::now().saturating_sub((took / 1000.0) as u64)
                )
            );
        }
        times.push(took);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    times.sort_by(f64::total_cmp);
    times
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = arg("--attacks", 20);
    let flood = arg("--flood", 1000);
    let bin = std::env::var("TRAILWARDEN_BIN").expect("TRAILWARDEN_BIN (scripts/bench-flood)");
    let lab = Lab::start(&LabSpec {
        accounts: 2,
        denied_accounts: 0,
        log_interval: Duration::from_millis(500),
    })
    .await
    .expect("lab");
    let (noisy, victim) = (
        lab.description.accounts[0].id.clone(),
        lab.description.accounts[1].id.clone(),
    );
    let guarded = Guarded::start(&lab, WatchOptions::new(&bin)).await;

    let quiet = attacks(&lab, &victim, n).await;

    // The flood: sent in the background while the victim is attacked again.
    let sqs = lab
        .attacker(&lab.description.security.id)
        .await
        .sqs(HOME_REGION);
    let queue = lab.description.security.queue_url.clone();
    let starts_before = lab
        .proxy
        .calls()
        .get(&("cloudtrail".to_owned(), "StartLogging".to_owned()))
        .copied()
        .unwrap_or(0);
    let sender = {
        let noisy = noisy.clone();
        tokio::spawn(async move {
            let now = trailwarden_model::clock::now_rfc3339();
            for batch in 0..flood.div_ceil(10) {
                let entries: Vec<SendMessageBatchRequestEntry> = (0..10)
                    .map(|i| {
                        let body = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail",
                            "source": "aws.cloudtrail", "account": noisy, "region": "us-east-1",
                            "detail": {"eventVersion": "1.08", "eventSource": "cloudtrail.amazonaws.com",
                                "eventName": "StopLogging", "awsRegion": "us-east-1", "eventTime": now,
                                "eventID": format!("flood-{batch}-{i}"), "recipientAccountId": noisy,
                                "requestParameters": {"name": "management-events"},
                                "userIdentity": {"type": "AssumedRole",
                                    "arn": format!("arn:aws:sts::{noisy}:assumed-role/{ATTACKER_ROLE}/mallory")}}});
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(body.to_string())
                            .build()
                            .expect("entry")
                    })
                    .collect();
                sqs.send_message_batch()
                    .queue_url(&queue)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .expect("flood batch");
            }
        })
    };
    let flood_started = Instant::now();
    let loud = attacks(&lab, &victim, n).await;
    sender.await.expect("flood sent");
    let sent_in = flood_started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while guarded.metric("trailwarden_events_total") < flood as f64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let absorbed_in = flood_started.elapsed();
    let starts = lab
        .proxy
        .calls()
        .get(&("cloudtrail".to_owned(), "StartLogging".to_owned()))
        .copied()
        .unwrap_or(0)
        - starts_before;

    let kept = std::path::Path::new("target/bench-flood-watch.log");
    let _ = std::fs::write(kept, guarded.log());
    println!("\nwatch's log: {}", kept.display());
    println!("victim's attack → restored (ms), n = {n} each, same run, same watch:");
    let row = |name: &str, t: &[f64]| {
        println!(
            "  {name:<28} p50 {:>7.0}  p99 {:>7.0}  max {:>7.0}",
            percentile(t, 50.0),
            percentile(t, 99.0),
            t[t.len() - 1]
        );
    };
    row("without a flood", &quiet);
    row(&format!("during a flood of {flood}"), &loud);
    println!(
        "  ratio during/without: p50 {:.2}×, p99 {:.2}× (goal: p99 < 1.20×)",
        percentile(&loud, 50.0) / percentile(&quiet, 50.0),
        percentile(&loud, 99.0) / percentile(&quiet, 99.0)
    );
    println!(
        "the flood: sent in {sent_in:?}, all {} events evaluated {absorbed_in:?} after it began; \
         StartLogging calls during phase 2 (victim's {n} restores included): {starts}; \
         notifications sent {}, suppressed as repeats {}",
        guarded.metric("trailwarden_events_total"),
        guarded.metric("trailwarden_notifications_total"),
        guarded.metric("trailwarden_notifications_suppressed_total")
    );
}
