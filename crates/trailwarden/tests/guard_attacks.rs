//! The guard against the attacker it guards against: an admin in a member account who has
//! read trailwarden's code. Each test performs the attack and asserts over its victims.
//!
//! - a role session named like trailwarden's is not trailwarden: the event is restored, the
//!   incident names the attacker, and the impersonation is a critical detection;
//! - forged envelopes (a custom source, another account's record, an account outside the
//!   baseline) are counted and dropped, and no AWS call follows them;
//! - tampering no event reports (CloudTrail never recorded the call) is found by the sweep,
//!   is a detection of its own, joins the incidents and is notified;
//! - a flood of events in one account does not delay another account's restore, is
//!   coalesced into few restores, and is notified as an escalation, not once per event;
//! - a tampered baseline is refused at start;
//! - connections that trickle their headers do not stop /healthz from answering.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use trailwarden_aws::sdk::sqs::types::SendMessageBatchRequestEntry;
use trailwarden_lab::guarded::{Guarded, WatchOptions};
use trailwarden_lab::{ATTACKER_ROLE, HOME_REGION, Lab, LabSpec, ROLE_NAME, Recorded};
use trailwarden_testkit::IsolatedCommand;
use trailwarden_testkit::service::wait_for;

const BIN: &str = env!("CARGO_BIN_EXE_trailwarden");

/// Waits until the trail of `account` logs again; how long after `since`.
async fn restored(lab: &Lab, guarded: &Guarded, account: &str, since: Instant) -> Duration {
    while since.elapsed() < Duration::from_secs(45) {
        if lab.trail_logging(account).await {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "account {account}: not restored within 45 s\n{}",
        guarded.log()
    );
}

fn lab_spec(accounts: usize) -> LabSpec {
    LabSpec {
        accounts,
        denied_accounts: 0,
        log_interval: Duration::from_millis(500),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_sessions_forged_envelopes_and_unrecorded_tampering_are_all_caught() {
    let lab = Lab::start(&lab_spec(3)).await.expect("lab");
    let accounts: Vec<String> = lab
        .description
        .accounts
        .iter()
        .map(|a| a.id.clone())
        .collect();
    let (spoofed, quiet, untouched) = (&accounts[0], &accounts[1], &accounts[2]);
    let mut options = WatchOptions::new(BIN);
    options.sweep_interval = "4s".into();
    let guarded = Guarded::start(&lab, options).await;
    // From here on the proxy counts watch's calls only (the lab's attacker is not counted).
    lab.proxy.reset_calls();

    // 1. The attacker names the session like trailwarden's and stops logging.
    let session = "trailwarden-1796000000";
    let attacker = lab
        .description
        .attacker_as(spoofed, ATTACKER_ROLE, session, Recorded::Yes)
        .await;
    let attacked = Instant::now();
    lab.attack_as("stop-logging", spoofed, &attacker)
        .await
        .unwrap();
    let took = restored(&lab, &guarded, spoofed, attacked).await;
    println!("spoofed session: attack → restore {took:?}");
    // The detection is recorded once the restore is verified.
    wait_for(
        "the spoofed stop's detections",
        Duration::from_secs(20),
        || {
            let found = guarded.detections();
            ["trail-stop-logging", "responder-impersonated"]
                .iter()
                .all(|rule| {
                    found
                        .iter()
                        .any(|d| d["account"] == spoofed.as_str() && d["rule_id"] == *rule)
                })
        },
    );
    let incidents = guarded.incidents();
    let found = guarded.detections();
    let actor = format!("arn:aws:sts::{spoofed}:assumed-role/{ATTACKER_ROLE}/{session}");
    let of_spoofed = |rule: &str| {
        found
            .iter()
            .find(|d| d["account"] == spoofed.as_str() && d["rule_id"] == rule)
            .cloned()
    };
    let stop = of_spoofed("trail-stop-logging")
        .unwrap_or_else(|| panic!("no detection of the stop: {incidents:#}"));
    assert_eq!(stop["actor"], actor.as_str(), "{stop:#}");
    assert_eq!(stop["outcome"], "restored", "{stop:#}");
    let impersonation = of_spoofed("responder-impersonated")
        .unwrap_or_else(|| panic!("no impersonation detection: {incidents:#}"));
    assert_eq!(impersonation["severity"], "critical");
    assert_eq!(impersonation["actor"], actor.as_str());
    assert!(
        incidents["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["actor"] == actor.as_str()),
        "the incident names the attacker: {incidents:#}"
    );

    // 2. Forged envelopes: counted, dropped, and no call to any member service follows.
    let calls_before: u64 = member_calls(&lab);
    let security_queue = lab.description.security.queue_url.clone();
    let sqs = lab
        .attacker(&lab.description.security.id)
        .await
        .sqs(HOME_REGION);
    let record = |account: &str, id: &str| {
        json!({"eventVersion": "1.08", "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
            "awsRegion": "us-east-1", "eventTime": "2026-12-07T10:00:00Z", "eventID": id,
            "recipientAccountId": account, "requestParameters": {"name": "management-events"},
            "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::{account}:assumed-role/x/mallory")}})
    };
    let envelope = |source: &str, account: &str, record: Value| {
        json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": source,
            "account": account, "region": "us-east-1", "detail": record})
    };
    let forged = [
        envelope("my.app", untouched, record(untouched, "forged-1")),
        envelope("aws.cloudtrail", untouched, record(quiet, "forged-2")),
        envelope(
            "aws.cloudtrail",
            "999999999999",
            record("999999999999", "forged-3"),
        ),
    ];
    for body in &forged {
        sqs.send_message()
            .queue_url(&security_queue)
            .message_body(body.to_string())
            .send()
            .await
            .unwrap();
    }
    for reason in ["not-from-aws", "account-mismatch", "not-in-baseline"] {
        let name = format!("trailwarden_rejected_messages_total{{reason=\"{reason}\"}}");
        wait_for(&name, Duration::from_secs(20), || {
            guarded.metric(&name) >= 1.0
        });
    }
    assert_eq!(
        member_calls(&lab),
        calls_before,
        "a forged envelope led to calls"
    );
    let journal = trailwarden_engine::Journal::open(&guarded.state).unwrap();
    for (account, id) in [
        (untouched.as_str(), "forged-1"),
        (quiet.as_str(), "forged-2"),
        ("999999999999", "forged-3"),
    ] {
        assert!(
            !journal.event_handled(account, id).unwrap(),
            "{id} was handled"
        );
    }

    // 3. Tampering CloudTrail never recorded (events lost): only the sweep sees it.
    let silent = lab
        .description
        .attacker_as(quiet, ATTACKER_ROLE, "mallory", Recorded::No)
        .await;
    let attacked = Instant::now();
    lab.attack_as("stop-logging", quiet, &silent).await.unwrap();
    let took = restored(&lab, &guarded, quiet, attacked).await;
    println!("unrecorded stop: attack → restore by the sweep {took:?}");
    wait_for(
        "the sweep's detection notified",
        Duration::from_secs(20),
        || {
            guarded.notifications().iter().any(|n| {
                n["detection"]["account"] == quiet.as_str()
                    && n["detection"]["rule_id"] == "trail-logging-stopped"
            })
        },
    );
    let swept = guarded
        .detections()
        .into_iter()
        .find(|d| d["account"] == quiet.as_str() && d["rule_id"] == "trail-logging-stopped")
        .expect("the sweep's detection is in an incident");
    assert_eq!(swept["found_by"], "sweep", "{swept:#}");
    assert_eq!(swept["outcome"], "restored", "{swept:#}");
    assert_eq!(swept["technique"], "A1", "{swept:#}");

    // The untouched account: nothing detected there, and its trail logs.
    assert!(lab.trail_logging(untouched).await);
    assert!(
        guarded
            .detections()
            .iter()
            .all(|d| d["account"] != untouched.as_str()),
        "detections in the untouched account"
    );
    // 4. The attacker locks trailwarden out of an account: the sweeps that cannot read it
    // become an alert of their own (not a warning in a log), once, naming the account.
    let denied = lab
        .proxy
        .add_first(trailwarden_lab::trailwarden_moto::Fault::deny_assume_role(
            untouched,
        ));
    wait_for("the lock-out alert", Duration::from_secs(40), || {
        guarded.notifications().iter().any(|n| {
            n["detection"]["rule_id"] == "responder-account-unreadable"
                && n["detection"]["account"] == untouched.as_str()
        })
    });
    let alert = guarded
        .detections()
        .into_iter()
        .find(|d| d["rule_id"] == "responder-account-unreadable")
        .expect("the lock-out is in an incident");
    assert_eq!(alert["severity"], "critical", "access denied: {alert:#}");
    assert_eq!(alert["found_by"], "sweep");
    lab.proxy.remove(denied);

    // What the service called is allowed by its policy (and, in the member accounts, by the
    // audit and remediate policies of the role it assumes there).
    trailwarden_testkit::iam_policy::assert_calls_allowed(
        lab.proxy.calls().keys(),
        &[
            "trailwarden-watch-policy.json",
            "trailwarden-audit-policy.json",
            "trailwarden-remediate-policy.json",
        ],
    );
}

/// Calls through the proxy to anything but the security account's queue and STS.
fn member_calls(lab: &Lab) -> u64 {
    lab.proxy
        .calls()
        .iter()
        .filter(|((service, _), _)| service != "sqs" && service != "sts")
        .map(|(_, n)| *n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_in_one_account_does_not_delay_another_accounts_restore() {
    let lab = Lab::start(&lab_spec(2)).await.expect("lab");
    let (noisy, victim) = (
        lab.description.accounts[0].id.clone(),
        lab.description.accounts[1].id.clone(),
    );
    let guarded = Guarded::start(&lab, WatchOptions::new(BIN)).await;

    // The usual time, without a flood.
    let mut usual = Vec::new();
    for _ in 0..2 {
        let attacked = Instant::now();
        lab.attack("stop-logging", &victim).await.unwrap();
        usual.push(restored(&lab, &guarded, &victim, attacked).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let usual = usual.into_iter().max().unwrap();

    // 500 StopLogging events of the noisy account, as EventBridge would deliver them.
    let sqs = lab
        .attacker(&lab.description.security.id)
        .await
        .sqs(HOME_REGION);
    let queue = lab.description.security.queue_url.clone();
    let starts_before = start_logging_calls(&lab);
    let now = trailwarden_model::clock::now_rfc3339();
    lab.attack("stop-logging", &noisy).await.unwrap();
    for batch in 0..50 {
        let entries: Vec<SendMessageBatchRequestEntry> = (0..10)
            .map(|i| {
                let id = format!("flood-{batch}-{i}");
                let body = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail",
                    "source": "aws.cloudtrail", "account": noisy, "region": "us-east-1",
                    "detail": {"eventVersion": "1.08", "eventSource": "cloudtrail.amazonaws.com",
                        "eventName": "StopLogging", "awsRegion": "us-east-1",
                        "eventTime": now, "eventID": id,
                        "recipientAccountId": noisy, "requestParameters": {"name": "management-events"},
                        "userIdentity": {"type": "AssumedRole",
                            "arn": format!("arn:aws:sts::{noisy}:assumed-role/{ATTACKER_ROLE}/mallory")}}});
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body.to_string())
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(&queue)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
    // The victim is attacked while the flood is in the queue.
    let attacked = Instant::now();
    lab.attack("stop-logging", &victim).await.unwrap();
    let during = restored(&lab, &guarded, &victim, attacked).await;
    println!("victim's attack → restore: usual {usual:?}, during the flood {during:?}");
    assert!(
        during <= usual * 3 + Duration::from_secs(3),
        "the flood delayed the victim's restore: usual {usual:?}, during {during:?}"
    );
    // The noisy account is restored too.
    restored(&lab, &guarded, &noisy, Instant::now()).await;
    // Every flood event handled, in few restores, and notified as escalations only.
    let handled = || {
        (
            guarded.metric("trailwarden_events_total"),
            guarded.metric("trailwarden_notifications_suppressed_total"),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(handled(), (events, suppressed) if events >= 500.0 && suppressed >= 490.0) {
        assert!(
            Instant::now() < deadline,
            "the flood not handled within 60 s: (events, suppressed) = {:?}\n{}",
            handled(),
            guarded
                .log()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let starts = start_logging_calls(&lab) - starts_before;
    assert!(
        starts <= 8,
        "{starts} StartLogging calls for one flood and one attack: not coalesced"
    );
    let escalations = guarded
        .notifications()
        .iter()
        .filter(|n| n["type"] == "trailwarden.escalation" && n["detection"]["account"] == noisy)
        .count();
    assert!(
        (1..=3).contains(&escalations),
        "{escalations} escalation notifications for the noisy account"
    );
}

fn start_logging_calls(lab: &Lab) -> u64 {
    lab.proxy
        .calls()
        .get(&("cloudtrail".to_owned(), "StartLogging".to_owned()))
        .copied()
        .unwrap_or(0)
}

#[test]
fn a_tampered_baseline_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.toml");
    let text = "format = 1\ncaptured_at = \"2026-12-07T00:00:00Z\"\ncaptured_by = \"test\"\n[[account]]\naccount = \"111111111111\"\n";
    std::fs::write(&baseline, text).unwrap();
    let pin = trailwarden_engine::pinned::sha256_hex(text.as_bytes());
    // The attacker edits the reviewed file.
    std::fs::write(
        &baseline,
        format!("{text}# learned: the attacker's state\n"),
    )
    .unwrap();
    let out = IsolatedCommand::new(BIN)
        .args([
            "--endpoint-url",
            "http://127.0.0.1:9",
            "watch",
            "--queue-url",
            "http://127.0.0.1:9/111111111111/q",
            "--baseline",
            baseline.to_str().unwrap(),
            "--baseline-sha256",
            &pin,
            "--listen",
            "off",
        ])
        .build()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not the pinned") && err.contains("refusing to start"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_connections_do_not_stop_healthz() {
    let lab = Lab::start(&lab_spec(1)).await.expect("lab");
    let guarded = Guarded::start(&lab, WatchOptions::new(BIN)).await;
    // 300 clients that send half a request line and then wait.
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", guarded.port)).unwrap();
        std::io::Write::write_all(&mut s, b"GET /healthz HTTP/1.1\r\nHost: 1").unwrap();
        held.push(s);
    }
    let asked = Instant::now();
    let answer = trailwarden_testkit::service::get(guarded.port, "/healthz");
    assert_eq!(answer.as_deref(), Some("ok\n"), "{}", guarded.log());
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    // After the header timeout the trickling connections are gone.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut closed = 0;
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let mut buf = [0u8; 1];
        // Closed (0 bytes) or answered (a timeout status): not held open any more.
        if std::io::Read::read(s, &mut buf).is_ok() {
            closed += 1;
        }
    }
    assert_eq!(closed, 300, "connections left open past the header timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_bucket_that_changed_hands_is_reported() {
    let lab = Lab::start(&lab_spec(1)).await.expect("lab");
    let account = lab.description.accounts[0].id.clone();
    let bucket = format!("trailwarden-lab-{account}-logs");
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.toml");
    let run = |args: &[&str]| {
        IsolatedCommand::new(BIN)
            .credentials(&trailwarden_lab::operator_env())
            .args([
                "--endpoint-url",
                lab.description.endpoint.as_str(),
                "--role-name",
                ROLE_NAME,
                "--accounts",
                account.as_str(),
                "--regions",
                "us-east-1",
                "--quiet",
            ])
            .args(args)
            .build()
            .output()
            .unwrap()
    };
    let out = run(&["baseline", "capture", "--out", baseline.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&baseline).unwrap();
    assert!(text.contains(&format!("owner = \"{account}\"")), "{text}");

    // The bucket is deleted and re-created by another account under the same name: S3 then
    // refuses the owner check (moto keeps one owner for every account, so the lab answers as
    // S3 does for ExpectedBucketOwner of another account).
    lab.proxy.add_first(
        trailwarden_lab::trailwarden_moto::Fault::error(403, "AccessDenied", "Access Denied")
            .service("s3")
            .operation("HeadBucket")
            .path_contains(&bucket),
    );
    let out = run(&[
        "--format",
        "json",
        "audit",
        "--baseline",
        baseline.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let changed: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "bucket-owner-changed")
        .collect();
    assert_eq!(changed.len(), 1, "{report:#}");
    assert_eq!(changed[0]["resource"], format!("arn:aws:s3:::{bucket}"));
    assert_eq!(changed[0]["severity"], "critical");
}
