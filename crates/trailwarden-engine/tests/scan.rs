//! The scan pipeline over every record shape and every kind of bad input.

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use trailwarden_engine::scan::{Input, RecordFilter, ScanOptions, SourceResult, scan};
use trailwarden_model::finding::Severity;
use trailwarden_rules::RuleSet;

const RULE: &str = "title: Trail stopped
name: stop
logsource: {product: aws, service: cloudtrail}
level: high
detection:
  s:
    eventSource: cloudtrail.amazonaws.com
    eventName: StopLogging
  condition: s
trailwarden:
  catalog: A1
  remediation: state
";

fn rules() -> RuleSet {
    RuleSet::load([("stop.yml".to_owned(), RULE.to_owned())])
        .unwrap()
        .0
}

fn record(name: &str, n: u32) -> serde_json::Value {
    json!({"eventVersion": "1.08", "eventSource": "cloudtrail.amazonaws.com", "eventName": name,
           "awsRegion": "eu-west-1", "eventTime": format!("2026-11-28T10:00:{:02}Z", n % 60),
           "eventID": format!("id-{n}"), "recipientAccountId": "111122223333",
           "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2",
           "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/r/mallory", "accessKeyId": "ASIAX"},
           "requestParameters": {"name": "management-events"}})
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn log_file(names: &[&str]) -> Vec<u8> {
    let records: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| record(n, i as u32))
        .collect();
    serde_json::to_vec(&json!({"Records": records})).unwrap()
}

fn run(inputs: Vec<Input>, options: &ScanOptions) -> Vec<SourceResult> {
    let mut results = Vec::new();
    scan(inputs.into_iter(), &rules(), options, |r| results.push(r));
    results.sort_by(|a, b| a.name.cmp(&b.name));
    results
}

fn one(name: &str, bytes: Vec<u8>) -> SourceResult {
    run(
        vec![Input::Bytes {
            name: name.to_owned(),
            bytes,
        }],
        &ScanOptions::default(),
    )
    .remove(0)
}

#[test]
fn gzip_log_files_take_the_fast_path_and_find_the_event() {
    let r = one(
        "a.json.gz",
        gz(&log_file(&["DescribeTrails", "StopLogging", "GetObject"])),
    );
    assert_eq!(
        (r.records, r.findings.len(), r.errors.len()),
        (3, 1, 0),
        "{:?}",
        r.errors
    );
    let f = &r.findings[0];
    assert_eq!(
        (f.rule_id.as_str(), f.severity, f.remediable),
        ("stop", Severity::High, true)
    );
    let e = f.event.as_ref().unwrap();
    assert_eq!(e.event_id.as_deref(), Some("id-1"));
    assert_eq!(e.actor.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(e.record_source.as_deref(), Some("a.json.gz#2"));
    assert_eq!(f.account.as_str(), "111122223333");
    assert_eq!(f.region, "eu-west-1");
    assert!(r.decoded_bytes > r.read_bytes);
}

#[test]
fn every_other_shape_is_read() {
    let lines: String = ["StopLogging", "StartLogging"]
        .iter()
        .enumerate()
        .map(|(i, n)| record(n, i as u32).to_string() + "\n")
        .collect();
    let r = one("lines.jsonl", lines.into_bytes());
    assert_eq!((r.records, r.findings.len()), (2, 1));
    let envelope = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail", "detail": record("StopLogging", 1)});
    let r = one("event.json", gz(envelope.to_string().as_bytes()));
    assert_eq!((r.records, r.findings.len()), (1, 1), "{:?}", r.errors);
    let array = json!([record("StopLogging", 1), record("StopLogging", 2)]);
    assert_eq!(
        one("stratus.json", array.to_string().into_bytes())
            .findings
            .len(),
        2
    );
    let digest = json!({"awsAccountId": "111122223333", "digestStartTime": "x", "digestEndTime": "y", "digestS3Bucket": "b", "digestS3Object": "o", "logFiles": []});
    let r = one("digest.json", digest.to_string().into_bytes());
    assert_eq!((r.records, r.digests, r.errors.len()), (0, 1, 0));
}

#[test]
fn bad_input_is_named_and_the_rest_goes_on() {
    let whole = gz(&log_file(&["StopLogging"; 50]));
    let truncated = whole[..whole.len() / 2].to_vec();
    let broken_json = format!(
        "{{\"Records\": [{}, {{\"eventName\": }}]}}",
        record("StopLogging", 1)
    )
    .into_bytes();
    let wrong_type =
        serde_json::to_vec(&json!({"Records": [record("StopLogging", 1), {"eventName": 42}, 7]}))
            .unwrap();
    let inputs = vec![
        Input::Bytes {
            name: "1-truncated.json.gz".into(),
            bytes: truncated,
        },
        Input::Bytes {
            name: "2-broken.json".into(),
            bytes: broken_json,
        },
        Input::Bytes {
            name: "3-types.json".into(),
            bytes: wrong_type,
        },
        Input::Bytes {
            name: "4-good.json.gz".into(),
            bytes: whole,
        },
        Input::Failed {
            name: "s3://b/k".into(),
            error: "s3:GetObject failed (access-denied)".into(),
        },
        Input::File(Path::new("/nonexistent/trailwarden.json").to_owned()),
    ];
    let results = run(inputs, &ScanOptions::default());
    let by = |n: &str| results.iter().find(|r| r.name.starts_with(n)).unwrap();
    let t = by("1-truncated");
    assert_eq!(t.errors.len(), 1, "{:?}", t.errors);
    assert!(
        t.errors[0].starts_with("1-truncated.json.gz: ") && t.errors[0].contains("gzip"),
        "{:?}",
        t.errors
    );
    assert!(t.records < 50);
    let b = by("2-broken");
    assert!(
        b.errors[0].starts_with("2-broken.json: record 2"),
        "{:?}",
        b.errors
    );
    assert_eq!(
        b.findings.len(),
        1,
        "the record before the break is still scanned"
    );
    let w = by("3-types");
    assert_eq!(w.findings.len(), 1);
    assert_eq!(w.errors.len(), 2, "{:?}", w.errors);
    assert_eq!(by("4-good").findings.len(), 50);
    assert!(by("s3://b/k").errors[0].contains("access-denied"));
    assert!(by("/nonexistent").errors[0].contains("cannot open"));
}

#[test]
fn huge_records_are_refused_and_failed_calls_are_lower() {
    let mut big = record("StopLogging", 1);
    big["requestParameters"]["padding"] = "x".repeat(5000).into();
    let mut failed = record("StopLogging", 2);
    failed["errorCode"] = "AccessDenied".into();
    let text = serde_json::to_vec(&json!({"Records": [big, failed]})).unwrap();
    let options = ScanOptions {
        read: trailwarden_records::ReadOptions {
            max_record_bytes: 4096,
            ..Default::default()
        },
        ..ScanOptions::default()
    };
    let r = run(
        vec![Input::Bytes {
            name: "big.json".into(),
            bytes: text,
        }],
        &options,
    )
    .remove(0);
    assert!(
        r.errors[0].contains("record 1") && r.errors[0].contains("limit"),
        "{:?}",
        r.errors
    );
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].severity, Severity::Low);
    assert!(!r.findings[0].remediable);
    assert_eq!(
        r.findings[0].event.as_ref().unwrap().error_code.as_deref(),
        Some("AccessDenied")
    );
}

#[test]
fn the_record_filter_applies_to_findings() {
    let options = ScanOptions {
        filter: RecordFilter {
            accounts: vec!["999999999999".into()],
            ..RecordFilter::default()
        },
        ..ScanOptions::default()
    };
    let r = run(
        vec![Input::Bytes {
            name: "a.json".into(),
            bytes: log_file(&["StopLogging"]),
        }],
        &options,
    )
    .remove(0);
    assert!(r.findings.is_empty());
    let options = ScanOptions {
        filter: RecordFilter {
            since: Some(1_795_860_000),
            regions: vec!["eu-west-1".into()],
            ..RecordFilter::default()
        },
        ..ScanOptions::default()
    };
    let r = run(
        vec![Input::Bytes {
            name: "a.json".into(),
            bytes: log_file(&["StopLogging"]),
        }],
        &options,
    )
    .remove(0);
    assert_eq!(r.findings.len(), 1);
}

#[test]
fn many_inputs_on_many_workers_lose_nothing() {
    let inputs: Vec<Input> = (0..200)
        .map(|i| Input::Bytes {
            name: format!("f{i:03}.json.gz"),
            bytes: gz(&log_file(&["StopLogging", "GetObject", "StopLogging"])),
        })
        .collect();
    let options = ScanOptions {
        workers: 4,
        ..ScanOptions::default()
    };
    let results = run(inputs, &options);
    assert_eq!(results.len(), 200);
    assert_eq!(results.iter().map(|r| r.findings.len()).sum::<usize>(), 400);
    assert_eq!(results.iter().map(|r| r.records).sum::<u64>(), 600);
}
