//! Benchmark of the guard against the lab (run it with `scripts/bench-guard`):
//!
//! 1. the start-up sweep of `watch` over N accounts × every enabled region (and, as the peer
//!    measured in the same run, one plain `trailwarden audit` of the same accounts × regions);
//! 2. attack → verified restore for a rotation of lab techniques across the accounts, measured
//!    from the attack call's start to the journal's `verify` entry (what `watch` writes after it
//!    read the restored state back); the floor it is compared with is the same account's
//!    StopLogging → StartLogging → GetTrailStatus made directly by this program (no detection,
//!    no planning), measured in the same run;
//! 3. trailwarden's own processing overhead per event, from its JSON log (`overhead_micros`:
//!    message handling start → restore start, i.e. parse, dedup, rule pack, journal).
//!
//! Prints a table and, with `--json FILE`, writes the numbers.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trailwarden_aws::ClientFactory;
use trailwarden_engine::{Filter, Journal, StepOutcome};
use trailwarden_lab::{HOME_REGION, Lab, LabSpec, ROLE_NAME, operator_env, operator_options};
use trailwarden_testkit::IsolatedCommand;
use trailwarden_testkit::bench::{arg, percentile};

const TECHNIQUES: &[&str] = &[
    "stop-logging",
    "exclude-management-events",
    "disable-guardduty",
    "validation-off",
    "no-global-events",
    "lifecycle-expiration",
    "suspend-versioning",
    "shorten-retention",
];

fn summary(name: &str, unit: &str, mut values: Vec<f64>) -> serde_json::Value {
    values.sort_by(f64::total_cmp);
    let (p50, p90, p99, max) = (
        percentile(&values, 50.0),
        percentile(&values, 90.0),
        percentile(&values, 99.0),
        values.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "{name:<44} n={:<4} p50 {p50:>9.1} {unit}  p90 {p90:>9.1}  p99 {p99:>9.1}  max {max:>9.1}",
        values.len()
    );
    serde_json::json!({"n": values.len(), "p50": p50, "p90": p90, "p99": p99, "max": max, "unit": unit})
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let accounts = arg("--accounts", 10);
    let attacks = arg("--attacks", 40);
    let bin = std::env::var("TRAILWARDEN_BIN").unwrap_or_else(|_| {
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .and_then(|examples| examples.parent())
            .unwrap()
            .join("trailwarden")
            .to_string_lossy()
            .into_owned()
    });
    let json_out = std::env::args()
        .skip_while(|a| a != "--json")
        .nth(1)
        .map(std::path::PathBuf::from);

    let started = Instant::now();
    let lab = Lab::start(&LabSpec {
        accounts,
        denied_accounts: 0,
        log_interval: Duration::from_secs(2),
    })
    .await
    .expect("lab");
    let d = &lab.description;
    println!(
        "lab: {accounts} accounts × {} enabled regions, started in {:?}",
        d.regions.len(),
        started.elapsed()
    );
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.toml");
    let state = dir.path().join("state.db");
    let ids: Vec<String> = d.accounts.iter().map(|a| a.id.clone()).collect();
    let list = ids.join(",");
    let tw = |args: &[&str], credentials: &[(&str, String)]| {
        IsolatedCommand::new(&bin)
            .credentials(credentials)
            .args([
                "--endpoint-url",
                &d.endpoint,
                "--role-name",
                ROLE_NAME,
                "--quiet",
            ])
            .args(args)
            .build()
    };
    let operator = operator_env();
    let ok = |c: &mut Command, what: &str| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(
        tw(
            &["--accounts", &list, "baseline", "capture", "--out"],
            &operator,
        )
        .arg(&baseline),
        "baseline capture",
    );
    ok(
        &mut tw(
            &[
                "--accounts",
                &list,
                "deploy",
                "--event-bus-arn",
                &d.security.event_bus_arn,
                "--state",
                state.to_str().unwrap(),
                "--apply",
            ],
            &operator,
        ),
        "deploy",
    );

    // Peer: one audit of the same accounts × regions.
    let audit_started = Instant::now();
    let out = tw(
        &[
            "--accounts",
            &list,
            "--format",
            "json",
            "audit",
            "--baseline",
        ],
        &operator,
    )
    .arg(&baseline)
    .output()
    .unwrap();
    let audit_seconds = audit_started.elapsed().as_secs_f64();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the lab is clean: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // watch, as the security account.
    let service = lab.service_credentials().await.expect("security session");
    let log_path = dir.path().join("watch.log");
    let mut watch = tw(
        &[
            "-v",
            "--log-format",
            "json",
            "watch",
            "--queue-url",
            &d.security.queue_url,
            "--remediate",
            "--listen",
            "off",
            "--baseline",
        ],
        &service,
    )
    .arg(&baseline)
    .arg("--state")
    .arg(&state)
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log_path).unwrap())
    .spawn()
    .unwrap();
    let log_lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let sweep_wait = Instant::now();
    let sweep_millis = loop {
        if let Some(l) = log_lines().iter().find(|l| l["message"] == "sweep") {
            break l["millis"].as_f64().unwrap_or(f64::NAN);
        }
        assert!(sweep_wait.elapsed() < Duration::from_secs(300), "no sweep");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // deploy's own calls were forwarded too: let watch drain them before the attacks start.
    let sqs = lab.attacker(&d.security.id).await.sqs(HOME_REGION);
    let drain = Instant::now();
    loop {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&d.security.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
            attrs
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let left = count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        if left == 0 {
            break;
        }
        assert!(
            drain.elapsed() < Duration::from_secs(300),
            "queue not drained"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let setup_events = log_lines()
        .iter()
        .filter(|l| l["message"] == "finding")
        .count();
    println!(
        "watch handled deploy's {setup_events} forwarded calls (trailwarden's own) in {:?}",
        drain.elapsed()
    );

    // Attacks, one at a time, rotating accounts and techniques.
    let journal = Journal::open(&state).unwrap();
    let last_verified = |account: &str| -> i64 {
        journal
            .list(&Filter {
                account: Some(account.to_owned()),
                limit: Some(50),
                ..Filter::default()
            })
            .unwrap_or_default()
            .iter()
            .filter(|e| e.call == "verify" && e.outcome == StepOutcome::Verified)
            .map(|e| e.id)
            .max()
            .unwrap_or(0)
    };
    let mut restore_ms = Vec::new();
    let mut failures = Vec::new();
    let mut per_technique = std::collections::BTreeMap::new();
    for i in 0..attacks {
        let account = &ids[i % ids.len()];
        let technique = TECHNIQUES[i % TECHNIQUES.len()];
        let before = last_verified(account);
        let t0 = Instant::now();
        lab.attack(technique, account).await.expect("attack");
        loop {
            if last_verified(account) > before {
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                println!(
                    "  attack {i:>3} {technique:<28} {account}  verified restore after {ms:>8.1} ms"
                );
                restore_ms.push(ms);
                per_technique
                    .entry(technique)
                    .or_insert_with(Vec::new)
                    .push(ms);
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                failures.push(format!("{technique} in {account}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // Floor: the restore alone, done directly (same proxy, same account, no detection).
    let member = ClientFactory::new(&operator_options(&d.endpoint))
        .await
        .assume_role(&format!("arn:aws:iam::{}:role/{ROLE_NAME}", ids[0]))
        .await;
    let attacker = lab.attacker(&ids[0]).await;
    let mut floor_ms = Vec::new();
    for _ in 0..10.min(attacks.max(1)) {
        attacker
            .cloudtrail(HOME_REGION)
            .stop_logging()
            .name("management-events")
            .send()
            .await
            .unwrap();
        let t0 = Instant::now();
        let ct = member.cloudtrail(HOME_REGION);
        ct.get_trail_status()
            .name("management-events")
            .send()
            .await
            .unwrap();
        ct.start_logging()
            .name("management-events")
            .send()
            .await
            .unwrap();
        let logging = ct
            .get_trail_status()
            .name("management-events")
            .send()
            .await
            .unwrap()
            .is_logging();
        assert_eq!(logging, Some(true));
        floor_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        // Let the guard's own restore of this stop settle before the next one.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = std::fs::copy(&log_path, "target/bench-guard-watch.log");

    let lines = log_lines();
    let overhead_ms: Vec<f64> = lines
        .iter()
        .filter(|l| l["message"] == "targeted restore")
        .filter_map(|l| l["overhead_micros"].as_f64())
        .map(|us| us / 1000.0)
        .collect();
    let targeted_ms: Vec<f64> = lines
        .iter()
        .filter(|l| l["message"] == "targeted restore")
        .filter_map(|l| l["millis"].as_f64())
        .collect();

    println!();
    println!(
        "sweep (watch start-up): {accounts} accounts × {} regions in {:.2} s; peer `trailwarden audit` of the same: {audit_seconds:.2} s",
        d.regions.len(),
        sweep_millis / 1000.0
    );
    let r = summary("attack → verified restore", "ms", restore_ms.clone());
    let o = summary(
        "dequeue → restore start (trailwarden's own)",
        "ms",
        overhead_ms,
    );
    let t = summary(
        "targeted restore (read, plan, apply, verify)",
        "ms",
        targeted_ms,
    );
    let f = summary(
        "floor: direct GetTrailStatus+StartLogging+Get",
        "ms",
        floor_ms.clone(),
    );
    for (technique, ms) in &per_technique {
        summary(&format!("  {technique}"), "ms", ms.clone());
    }
    let ratio = r["p50"].as_f64().unwrap() / f["p50"].as_f64().unwrap();
    println!("ratio attack → verified restore p50 ÷ floor p50: {ratio:.1}");
    if !failures.is_empty() {
        println!("not restored within 30 s: {failures:?}");
    }
    if let Some(path) = json_out {
        let doc = serde_json::json!({
            "accounts": accounts, "regions": d.regions.len(), "attacks": attacks,
            "sweep_seconds": sweep_millis / 1000.0, "audit_seconds": audit_seconds,
            "attack_to_verified_restore": r, "overhead": o, "targeted_restore": t, "floor": f,
            "ratio_restore_to_floor_p50": ratio, "not_restored": failures,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
}
