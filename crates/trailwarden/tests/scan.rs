//! `trailwarden scan` and `trailwarden rules` as users run them: folders, stdin, S3 (the lab's
//! real log files), bad input, exit codes, and rule files that do not load.

use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use trailwarden_lab::{Lab, LabSpec, operator_env};
use trailwarden_testkit::IsolatedCommand;
use trailwarden_testkit::iam_policy::assert_calls_allowed;

const BIN: &str = env!("CARGO_BIN_EXE_trailwarden");

const STOP_RULE: &str = "title: Trail stopped
id: 6f1e9a34-1d53-4c43-9a51-64a0e6f6f0a1
name: test-stop
description: StopLogging.
logsource: {product: aws, service: cloudtrail}
level: high
tags: [attack.defense-evasion, attack.t1562.008]
detection:
  s:
    eventSource: cloudtrail.amazonaws.com
    eventName: StopLogging
  condition: s
trailwarden:
  catalog: A1
  remediation: state
  tests:
    - name: stop
      match: true
      record: {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging}
    - name: start
      match: false
      record: {eventSource: cloudtrail.amazonaws.com, eventName: StartLogging}
";

const LIFECYCLE_RULE: &str = "title: Lifecycle rule on a bucket
name: test-lifecycle
logsource: {product: aws, service: cloudtrail}
level: medium
detection:
  s:
    eventName: PutBucketLifecycle
  condition: s
";

fn command(args: &[&str]) -> std::process::Command {
    IsolatedCommand::new(BIN)
        .credentials(&operator_env())
        .args(args)
        .build()
}

fn run(args: &[&str]) -> Output {
    command(args).output().expect("running trailwarden")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn record(name: &str, n: u32, account: &str) -> Value {
    json!({"eventVersion": "1.08", "eventSource": "cloudtrail.amazonaws.com", "eventName": name,
           "awsRegion": "eu-west-1", "eventTime": format!("2026-11-2{}T10:00:00Z", n % 10),
           "eventID": format!("id-{n}"), "recipientAccountId": account,
           "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2",
           "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::{account}:assumed-role/r/mallory"), "accessKeyId": "ASIAX"},
           "requestParameters": {"name": "management-events"}})
}

fn write_gz(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    e.write_all(value.to_string().as_bytes()).unwrap();
    e.finish().unwrap();
}

fn rules_dir(dir: &Path) -> String {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("test-stop.yml"), STOP_RULE).unwrap();
    std::fs::write(rules.join("test-lifecycle.yml"), LIFECYCLE_RULE).unwrap();
    rules.display().to_string()
}

#[test]
fn scan_reads_folders_recursively_names_bad_files_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path());
    let logs = dir.path().join("logs");
    let a = "111122223333";
    write_gz(
        &logs.join(format!(
            "AWSLogs/{a}/CloudTrail/eu-west-1/2026/11/28/{a}_CloudTrail_eu-west-1_1.json.gz"
        )),
        &json!({"Records": [record("DescribeTrails", 1, a), record("StopLogging", 8, a)]}),
    );
    std::fs::write(logs.join("broken.json"), b"{\"Records\": [{\"eventName\": ").unwrap();
    std::fs::write(logs.join("README.md"), b"not records").unwrap();
    let logs = logs.display().to_string();

    let out = run(&["scan", "--rules", &rules, &logs, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{doc:#}");
    let f = &findings[0];
    for (key, want) in [
        ("rule_id", json!("test-stop")),
        ("severity", json!("high")),
        ("account", json!(a)),
        ("region", json!("eu-west-1")),
        ("event_id", json!("id-8")),
        ("event_name", json!("StopLogging")),
        ("event_time", json!("2026-11-28T10:00:00Z")),
        ("technique", json!("A1")),
        ("attack", json!("T1562.008")),
        ("remediable", json!(true)),
    ] {
        assert_eq!(f[key], want, "{key} in {f:#}");
    }
    assert_eq!(
        f["actor"]["principal_arn"],
        format!("arn:aws:sts::{a}:assumed-role/r/mallory")
    );
    assert_eq!(f["actor"]["source_ip"], "203.0.113.7");
    assert_eq!(f["actor"]["access_key_id"], "ASIAX");
    assert_eq!(f["actor"]["user_agent"], "aws-cli/2");
    let summary = &doc["summary"];
    assert_eq!(
        (summary["inputs"].as_u64(), summary["records"].as_u64()),
        (Some(2), Some(2)),
        "{summary:#}"
    );
    assert_eq!(summary["skipped_files"], 1);
    assert_eq!(summary["errors"], 1);
    let errors = doc["errors"].as_array().unwrap();
    assert!(
        errors[0].as_str().unwrap().contains("broken.json"),
        "{errors:?}"
    );

    // Pruned by the key layout: another account's logs are not even read.
    let out = run(&[
        "--accounts",
        "999999999999",
        "scan",
        "--rules",
        &rules,
        &logs,
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["findings"].as_array().unwrap().len(), 0);
    assert_eq!(
        doc["summary"]["records"], 0,
        "the account's file is skipped: {doc:#}"
    );

    // Table: the finding, the actor and the summary line a human reads.
    let out = run(&["scan", "--rules", &rules, &logs, "--format", "table"]);
    let table = text(&out.stdout);
    assert!(
        table.contains("test-stop")
            && table.contains("203.0.113.7")
            && table.contains("broken.json"),
        "{table}"
    );
    assert!(table.contains("2 inputs, 2 records"), "{table}");

    // OCSF: Detection Findings, one per line.
    let out = run(&["scan", "--rules", &rules, &logs, "--format", "ocsf"]);
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["class_uid"], 2004);
}

#[test]
fn scan_reads_stdin_and_exit_codes_follow_the_design() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path());
    let scan_stdin = |input: String| {
        let mut child = command(&["scan", "--rules", &rules, "-", "--format", "jsonl"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let a = "111122223333";
    let lines = format!(
        "{}\n{}\n",
        record("StopLogging", 1, a),
        record("StartLogging", 2, a)
    );
    let out = scan_stdin(lines);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let objects: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 2, "one finding and the summary");
    assert_eq!(objects[0]["type"], "finding");
    assert_eq!(objects[0]["event_name"], "StopLogging");
    assert_eq!(objects[1]["type"], "summary");

    // Nothing found: 0. A failed StopLogging is still a finding, at low severity.
    assert_eq!(
        scan_stdin(format!("{}\n", record("StartLogging", 1, a)))
            .status
            .code(),
        Some(0)
    );
    let mut failed = record("StopLogging", 1, a);
    failed["errorCode"] = "AccessDenied".into();
    let out = scan_stdin(format!("{failed}\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("\"severity\":\"low\""),
        "{}",
        text(&out.stdout)
    );
    // Only unreadable input: 2, naming it.
    let out = scan_stdin("this is not json\n".into());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("<stdin>"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["scan", "--rules", &rules, "/nonexistent/trailwarden/logs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains("/nonexistent/trailwarden/logs"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn rules_list_test_lint_and_rules_that_do_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path());
    let out = run(&["rules", "list", "--rules", &rules, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let out = run(&["rules", "test", "--rules", &rules]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("2 rules, 2 tests: 2 passed, 0 failed"),
        "{}",
        text(&out.stdout)
    );
    // A test that fails makes `rules test` fail, naming the rule, file and line.
    let broken = STOP_RULE.replace("match: false", "match: true");
    std::fs::write(Path::new(&rules).join("test-stop.yml"), broken).unwrap();
    let out = run(&["rules", "test", "--rules", &rules]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("FAIL") && text(&out.stdout).contains("test-stop.yml:"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["rules", "lint", "--rules", &rules]);
    assert!(
        text(&out.stdout).contains("test-lifecycle"),
        "{}",
        text(&out.stdout)
    );
    // An unsupported feature stops the command with file, line and feature.
    let bad = LIFECYCLE_RULE.replace(
        "eventName: PutBucketLifecycle",
        "eventName|base64offset|contains: x",
    );
    std::fs::write(Path::new(&rules).join("test-lifecycle.yml"), bad).unwrap();
    let out = run(&["scan", "--rules", &rules, "-"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("test-lifecycle.yml:7:") && err.contains("base64offset"),
        "{err}"
    );
}

#[test]
fn the_built_in_pack_is_embedded_and_its_tests_pass() {
    let out = run(&["rules", "test"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = run(&["rules", "lint"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = run(&["rules", "list", "--format", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.as_array().unwrap().len() >= 40, "{list:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_reads_the_lab_log_bucket_pruned_by_account_and_region() {
    let lab = Lab::start(&LabSpec {
        accounts: 2,
        denied_accounts: 0,
        log_interval: Duration::from_millis(300),
    })
    .await
    .expect("lab");
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path());
    let account = lab.description.accounts[0].id.clone();
    let bucket = lab.description.accounts[0].bucket.clone().unwrap();
    lab.attack("lifecycle-expiration", &account)
        .await
        .expect("attack");
    // The lab delivers log files every few hundred milliseconds while the trail logs.
    let url = format!("s3://{bucket}/");
    let endpoint = lab.description.endpoint.clone();
    let mut doc = Value::Null;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let out = tokio::task::spawn_blocking({
            let (rules, url, endpoint, account) = (
                rules.clone(),
                url.clone(),
                endpoint.clone(),
                account.clone(),
            );
            move || {
                run(&[
                    "--endpoint-url",
                    &endpoint,
                    "--accounts",
                    &account,
                    "scan",
                    "--rules",
                    &rules,
                    &url,
                    "--format",
                    "json",
                ])
            }
        })
        .await
        .unwrap();
        doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if doc["findings"].as_array().is_some_and(|f| !f.is_empty()) {
            assert_eq!(out.status.code(), Some(1));
            break;
        }
    }
    let findings = doc["findings"].as_array().expect("scan output");
    assert_eq!(findings.len(), 1, "{doc:#}");
    assert_eq!(findings[0]["rule_id"], "test-lifecycle");
    assert_eq!(findings[0]["account"], account.as_str());
    assert!(
        findings[0]["record_source"]
            .as_str()
            .unwrap()
            .starts_with(&format!("s3://{bucket}/AWSLogs/{account}/CloudTrail/"))
    );

    // An object too large to hold in memory is spooled to disk and scanned the same way.
    let mut records: Vec<Value> = (0..24000)
        .map(|n| record("DescribeTrails", n, &account))
        .collect();
    records.push(record("StopLogging", 7, &account));
    let big = serde_json::to_vec(&json!({ "Records": records })).unwrap();
    assert!(big.len() > 9 * 1024 * 1024, "{}", big.len());
    let big_key = format!(
        "AWSLogs/{account}/CloudTrail/eu-west-1/2026/11/28/{account}_CloudTrail_eu-west-1_big.json"
    );
    lab.attacker(&account)
        .await
        .s3("us-east-1")
        .put_object()
        .bucket(&bucket)
        .key(&big_key)
        .body(big.into())
        .send()
        .await
        .unwrap();
    let out = tokio::task::spawn_blocking({
        let (rules, url, endpoint, account) = (
            rules.clone(),
            url.clone(),
            endpoint.clone(),
            account.clone(),
        );
        move || {
            run(&[
                "--endpoint-url",
                &endpoint,
                "--accounts",
                &account,
                "--regions",
                "eu-west-1",
                "scan",
                "--rules",
                &rules,
                &url,
                "--format",
                "json",
            ])
        }
    })
    .await
    .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["records"], 24001, "{}", doc["summary"]);
    assert_eq!(
        doc["findings"][0]["record_source"],
        format!("s3://{bucket}/{big_key}#24001")
    );

    // A region without records: listed under its own prefix, nothing downloaded.
    let before = lab.proxy.calls_to("s3", "GetObject");
    let out = tokio::task::spawn_blocking(move || {
        run(&[
            "--endpoint-url",
            &endpoint,
            "--accounts",
            &account,
            "--regions",
            "ap-south-2",
            "scan",
            "--rules",
            &rules,
            &url,
            "--format",
            "json",
        ])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        lab.proxy.calls_to("s3", "GetObject"),
        before,
        "pruned objects must not be fetched"
    );

    // Every call scan made is in its least-privilege policy.
    assert_calls_allowed(lab.proxy.calls().keys(), &["trailwarden-scan-policy.json"]);
}

/// The lab's attacks, in an order that keeps the trail logging to the end, and the call each
/// is recorded as. Not here: a bucket policy denying CloudTrail stops delivery (its record
/// only reaches EventBridge), and deleting the trail or its bucket leaves no log file.
const LOGGED_ATTACKS: &[(&str, &str)] = &[
    ("lifecycle-expiration", "PutBucketLifecycle"),
    ("suspend-versioning", "PutBucketVersioning"),
    ("bucket-notification", "PutBucketNotification"),
    ("key-policy", "PutKeyPolicy"),
    ("disable-key", "DisableKey"),
    ("schedule-key-deletion", "ScheduleKeyDeletion"),
    ("shorten-retention", "PutRetentionPolicy"),
    ("delete-metric-filter", "DeleteMetricFilter"),
    ("delete-log-group", "DeleteLogGroup"),
    ("disable-guardduty", "UpdateDetector"),
    ("guardduty-suppression-filter", "CreateFilter"),
    ("stop-config", "StopConfigurationRecorder"),
    ("delete-flow-logs", "DeleteFlowLogs"),
    ("validation-off", "UpdateTrail"),
    ("exclude-management-events", "PutEventSelectors"),
    ("stop-logging", "StopLogging"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_pack_flags_every_lab_attack_in_the_delivered_log_files() {
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        log_interval: Duration::from_millis(300),
    })
    .await
    .expect("lab");
    let account = lab.description.accounts[0].id.clone();
    let bucket = lab.description.accounts[0].bucket.clone().unwrap();
    for (technique, _) in LOGGED_ATTACKS {
        lab.attack(technique, &account)
            .await
            .unwrap_or_else(|e| panic!("{technique}: {e}"));
    }
    // Delivery runs every 300 ms; the StopLogging record is the last one delivered.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let endpoint = lab.description.endpoint.clone();
    let url = format!("s3://{bucket}/");
    let out = tokio::task::spawn_blocking(move || {
        run(&[
            "--endpoint-url",
            &endpoint,
            "scan",
            &url,
            "--format",
            "json",
        ])
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = doc["findings"].as_array().unwrap();
    let mut missing = Vec::new();
    for (technique, event) in LOGGED_ATTACKS {
        let rules: Vec<&str> = findings
            .iter()
            .filter(|f| {
                f["event_name"] == *event
                    && f["actor"]["principal_arn"]
                        .as_str()
                        .is_some_and(|a| a.contains("compromised-admin"))
            })
            .filter_map(|f| f["rule_id"].as_str())
            .collect();
        println!("{technique:30} {event:28} {rules:?}");
        if rules.is_empty() {
            missing.push(*technique);
        }
    }
    assert!(
        missing.is_empty(),
        "lab attacks the built-in pack did not flag: {missing:?}\n{doc:#}"
    );
    // The operator's own seeding of the lab raised nothing.
    assert!(
        findings.iter().all(|f| f["actor"]["principal_arn"]
            .as_str()
            .is_some_and(|a| a.contains("compromised-admin"))),
        "{doc:#}"
    );
}
