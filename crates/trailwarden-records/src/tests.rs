//! Tests of the public API: every shape, plain and gzip, and every kind of damage.

use crate::{
    ErrorKind, Item, Position, ReadError, ReadOptions, Shape, Summary, read_path, read_records,
    walk,
};
use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::io::Write;
use std::ops::ControlFlow;

#[derive(Debug, Default)]
struct Outcome {
    records: Vec<(Value, Position)>,
    errors: Vec<ReadError>,
    /// Items in order: `true` for a record.
    order: Vec<bool>,
    summary: Summary,
}

impl Outcome {
    fn names(&self) -> Vec<&str> {
        self.records
            .iter()
            .map(|(r, _)| r["eventName"].as_str().unwrap_or("?"))
            .collect()
    }

    fn only_error(&self) -> &ReadError {
        assert_eq!(self.errors.len(), 1, "errors: {:#?}", self.error_lines());
        &self.errors[0]
    }

    fn error_lines(&self) -> Vec<String> {
        self.errors.iter().map(ToString::to_string).collect()
    }
}

fn read_opts(bytes: &[u8], options: &ReadOptions) -> Outcome {
    let mut out = Outcome::default();
    out.summary = read_records(bytes, "test.json", options, |item| {
        match item {
            Item::Record { record, position } => {
                out.records.push((record, position));
                out.order.push(true);
            }
            Item::Error(e) => {
                out.errors.push(e);
                out.order.push(false);
            }
        }
        ControlFlow::Continue(())
    });
    assert_eq!(out.summary.records, out.records.len() as u64);
    assert_eq!(out.summary.errors, out.errors.len() as u64);
    out
}

fn read(bytes: &[u8]) -> Outcome {
    read_opts(bytes, &ReadOptions::default())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory")
}

fn rec(name: &str) -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333"},
        "eventTime": "2024-11-25T22:00:58Z",
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "requestParameters": {"name": "main {not a brace} \"quoted\" [x]"},
        "responseElements": null,
        "recipientAccountId": "111122223333"
    })
}

fn log_file(names: &[&str]) -> Vec<u8> {
    let records: Vec<Value> = names.iter().map(|n| rec(n)).collect();
    serde_json::to_vec(&json!({ "Records": records })).expect("serializes")
}

fn line(v: &Value) -> String {
    serde_json::to_string(v).expect("serializes")
}

fn envelope(record: Value) -> Value {
    json!({
        "version": "0",
        "id": "6f0b7f1c-0000-0000-0000-000000000000",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.cloudtrail",
        "account": "111122223333",
        "time": "2024-11-25T22:00:58Z",
        "region": "us-east-1",
        "resources": [],
        "detail": record
    })
}

/// Reads `bytes` plain and gzip'ed, checks that both give the same, returns the plain outcome.
fn read_both(bytes: &[u8]) -> Outcome {
    let plain = read(bytes);
    let zipped = read(&gzip(bytes));
    assert!(!plain.summary.gzip);
    assert!(zipped.summary.gzip);
    assert_eq!(plain.names(), zipped.names());
    assert_eq!(plain.error_lines(), zipped.error_lines());
    assert_eq!(plain.summary.shape, zipped.summary.shape);
    plain
}

#[test]
fn log_file_plain_and_gzip_yields_records_in_order() {
    let out = read_both(&log_file(&["StopLogging", "DeleteTrail", "StartLogging"]));
    assert_eq!(out.names(), ["StopLogging", "DeleteTrail", "StartLogging"]);
    assert!(out.errors.is_empty());
    assert_eq!(out.summary.shape, Some(Shape::LogFile));
    let records: Vec<Option<u64>> = out.records.iter().map(|(_, p)| p.record).collect();
    assert_eq!(records, [Some(1), Some(2), Some(3)]);
    assert_eq!(
        out.records[0].1.byte, 12,
        "first record starts after `{{\"Records\":[`"
    );
}

#[test]
fn log_file_other_top_level_keys_are_ignored() {
    let text = format!(
        r#"{{"before": {{"x": [1, 2]}}, "Records": [{}, {}], "after": "yes"}}"#,
        line(&rec("A")),
        line(&rec("B"))
    );
    let out = read_both(text.as_bytes());
    assert_eq!(out.names(), ["A", "B"]);
    assert!(out.errors.is_empty(), "{:?}", out.error_lines());
    assert_eq!(out.summary.shape, Some(Shape::LogFile));
}

#[test]
fn pretty_printed_log_file_positions_are_lines() {
    let value = json!({ "Records": [rec("A"), rec("B")] });
    let text = serde_json::to_vec_pretty(&value).expect("serializes");
    let out = read_both(&text);
    assert_eq!(out.names(), ["A", "B"]);
    assert_eq!(out.records[0].1.line, 3);
    assert_eq!(out.records[0].1.column, 5);
}

#[test]
fn json_lines_plain_and_gzip_with_blank_lines_and_crlf() {
    let text = format!(
        "\n{}\r\n\r\n   \n{}\n{}\n\n",
        line(&rec("A")),
        line(&rec("B")),
        line(&envelope(rec("C")))
    );
    let out = read_both(text.as_bytes());
    assert_eq!(out.names(), ["A", "B", "C"]);
    assert!(out.errors.is_empty(), "{:?}", out.error_lines());
    assert_eq!(out.summary.shape, Some(Shape::JsonLines));
    let lines: Vec<u64> = out.records.iter().map(|(_, p)| p.line).collect();
    assert_eq!(lines, [2, 5, 6]);
}

#[test]
fn json_lines_of_log_files() {
    let text = format!(
        "{}\n{}\n",
        String::from_utf8(log_file(&["A", "B"])).expect("utf-8"),
        String::from_utf8(log_file(&["C"])).expect("utf-8")
    );
    let out = read_both(text.as_bytes());
    assert_eq!(out.names(), ["A", "B", "C"]);
    assert_eq!(out.summary.shape, Some(Shape::JsonLines));
    assert_eq!(out.records[2].1.record, Some(3));
}

#[test]
fn single_pretty_printed_record() {
    let text = serde_json::to_vec_pretty(&rec("StopLogging")).expect("serializes");
    let out = read_both(&text);
    assert_eq!(out.names(), ["StopLogging"]);
    assert_eq!(out.summary.shape, Some(Shape::Record));
    assert_eq!(out.records[0].0, rec("StopLogging"));
}

#[test]
fn eventbridge_envelope_gives_its_detail() {
    let text = serde_json::to_vec_pretty(&envelope(rec("DeleteTrail"))).expect("serializes");
    let out = read_both(&text);
    assert_eq!(out.names(), ["DeleteTrail"]);
    assert!(out.errors.is_empty());
    assert_eq!(out.summary.shape, Some(Shape::EventBridge));
    assert_eq!(out.records[0].0, rec("DeleteTrail"));
}

#[test]
fn eventbridge_event_of_another_type_is_not_cloudtrail() {
    let mut event = envelope(json!({"instance-id": "i-1", "state": "running"}));
    event["detail-type"] = json!("EC2 Instance State-change Notification");
    let out = read(line(&event).as_bytes());
    assert!(out.records.is_empty());
    let err = out.only_error();
    assert!(matches!(err.kind, ErrorKind::NotCloudTrail(_)), "{err}");
    assert!(
        err.to_string()
            .contains("EC2 Instance State-change Notification"),
        "{err}"
    );
}

#[test]
fn eventbridge_detail_with_odd_field_types_is_delivered_as_written() {
    // Field types are for the rules to judge, not the reader.
    let mut odd = rec("X");
    odd["eventName"] = json!({"nested": true});
    let text = line(&envelope(odd.clone()));
    let out = read(text.as_bytes());
    assert!(out.errors.is_empty(), "{:?}", out.error_lines());
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].0, odd);
    assert_eq!(out.summary.shape, Some(Shape::EventBridge));
    let position = out.records[0].1;
    assert_eq!(
        (position.line, position.column),
        (1, 1),
        "the envelope's start"
    );
}

#[test]
fn top_level_array_of_records() {
    let text = serde_json::to_vec_pretty(&json!([rec("A"), rec("B"), rec("C")])).expect("json");
    let out = read_both(&text);
    assert_eq!(out.names(), ["A", "B", "C"]);
    assert_eq!(out.summary.shape, Some(Shape::Array));
}

#[test]
fn jq_style_sequence_of_pretty_records() {
    let mut text = serde_json::to_vec_pretty(&rec("A")).expect("json");
    text.push(b'\n');
    text.extend(serde_json::to_vec_pretty(&rec("B")).expect("json"));
    let out = read_both(&text);
    assert_eq!(out.names(), ["A", "B"]);
    assert_eq!(out.summary.shape, Some(Shape::JsonSequence));
}

#[test]
fn multi_member_gzip_is_read_to_the_end() {
    let text = log_file(&["A", "B", "C"]);
    // Split inside the second record: members do not follow record boundaries.
    let cut = text.len() / 2;
    let mut data = gzip(&text[..cut]);
    data.extend(gzip(&text[cut..]));
    let out = read(&data);
    assert_eq!(out.names(), ["A", "B", "C"]);
    assert!(out.errors.is_empty());
    assert!(out.summary.gzip);
}

#[test]
fn truncated_gzip_gives_the_records_before_and_one_clear_error() {
    let names: Vec<String> = (0..200).map(|i| format!("Event{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let data = gzip(&log_file(&refs));
    let out = read(&data[..data.len() * 2 / 3]);
    assert!(!out.records.is_empty());
    assert!(out.records.len() < 200);
    let err = out.only_error();
    assert!(matches!(err.kind, ErrorKind::TruncatedGzip), "{err}");
    let message = err.to_string();
    assert!(message.starts_with("test.json: record "), "{message}");
    assert!(
        message.contains("truncated gzip: unexpected end of file"),
        "{message}"
    );
    assert_eq!(out.order.last(), Some(&false), "the error comes last");
    assert_eq!(
        err.position.and_then(|p| p.record),
        Some(out.records.len() as u64 + 1)
    );

    // Cut in the 10-byte header or the 8-byte trailer: still named as truncated.
    for cut in [5, data.len() - 4] {
        let out = read(&data[..cut]);
        assert!(
            matches!(out.only_error().kind, ErrorKind::TruncatedGzip),
            "cut at {cut}: {:?}",
            out.error_lines()
        );
    }
}

#[test]
fn corrupt_gzip_checksum_is_reported() {
    let mut data = gzip(&log_file(&["A"]));
    let crc = data.len() - 8;
    data[crc] ^= 0xff;
    let out = read(&data);
    assert!(
        matches!(out.only_error().kind, ErrorKind::CorruptGzip(_)),
        "{:?}",
        out.error_lines()
    );
}

#[test]
fn malformed_line_in_the_middle_of_json_lines_is_one_error() {
    let text = format!(
        "{}\n{{\"eventName\": \"Broken\" \"eventSource\": 1}}\n{}\n",
        line(&rec("A")),
        line(&rec("C"))
    );
    let out = read_both(text.as_bytes());
    assert_eq!(out.names(), ["A", "C"]);
    let err = out.only_error();
    assert!(matches!(err.kind, ErrorKind::Syntax(_)), "{err}");
    let position = err.position.expect("position");
    assert_eq!(
        (position.record, position.line, position.column),
        (Some(2), 2, 24),
        "{err}"
    );
    assert_eq!(out.records[1].1.record, Some(3));
    assert_eq!(out.summary.shape, Some(Shape::JsonLines));
}

#[test]
fn json_lines_line_left_open_is_one_error() {
    let text = format!(
        "{}\n{{\"eventName\": \"Open\", \"x\": [1,\n{}\n",
        line(&rec("A")),
        line(&rec("C"))
    );
    let out = read(text.as_bytes());
    assert_eq!(out.names(), ["A", "C"]);
    let err = out.only_error();
    assert_eq!(err.position.map(|p| p.line), Some(2), "{err}");
    assert!(err.to_string().contains("line ends inside"), "{err}");
}

#[test]
fn broken_first_line_of_json_lines_is_one_error() {
    let text = format!(
        "{{\"eventName\": tru}}\n{}\n{}\n",
        line(&rec("B")),
        line(&rec("C"))
    );
    let out = read(text.as_bytes());
    assert_eq!(out.names(), ["B", "C"]);
    assert_eq!(out.only_error().position.map(|p| p.line), Some(1));
    assert_eq!(out.summary.shape, Some(Shape::JsonLines));
}

#[test]
fn text_after_a_value_on_a_json_line_is_an_error() {
    let text = format!(
        "{}\n{} trailing\n{}\n",
        line(&rec("A")),
        line(&rec("B")),
        line(&rec("C"))
    );
    let out = read(text.as_bytes());
    assert_eq!(out.names(), ["A", "B", "C"]);
    assert!(out.only_error().to_string().contains("unexpected `t`"));
}

#[test]
fn odd_field_type_in_record_2_of_3_is_delivered_as_written() {
    let mut odd = rec("B");
    odd["eventName"] = json!({"not": "a string"});
    let text = line(&json!({ "Records": [rec("A"), odd.clone(), rec("C")] }));
    let out = read_both(text.as_bytes());
    assert_eq!(out.names(), ["A", "?", "C"]);
    assert!(out.errors.is_empty(), "{:?}", out.error_lines());
    assert_eq!(out.records[1].0, odd);
    assert_eq!(out.order, [true, true, true]);
    let records: Vec<Option<u64>> = out.records.iter().map(|(_, p)| p.record).collect();
    assert_eq!(records, [Some(1), Some(2), Some(3)]);
}

#[test]
fn syntax_error_inside_a_log_file_ends_it_after_the_records_before() {
    let text = format!(
        r#"{{"Records": [{}, {{"eventName" "B"}}, {}]}}"#,
        line(&rec("A")),
        line(&rec("C"))
    );
    let out = read_both(text.as_bytes());
    assert_eq!(out.names(), ["A"]);
    let err = out.only_error();
    assert!(matches!(err.kind, ErrorKind::Syntax(_)), "{err}");
    assert_eq!(err.position.and_then(|p| p.record), Some(2));
}

#[test]
fn missing_comma_between_records_ends_the_log_file() {
    // As in zmallen-cloudtrail2sightings/aws.execution.ec2-user-data.json.
    let text = format!(
        "{{\n  \"Records\": [\n{}\n{}\n  ]\n}}\n",
        serde_json::to_string_pretty(&rec("A")).expect("json"),
        serde_json::to_string_pretty(&rec("B")).expect("json")
    );
    let out = read(text.as_bytes());
    assert_eq!(out.names(), ["A"]);
    let err = out.only_error();
    let message = err.to_string();
    assert!(message.contains("record 2 ("), "{message}");
    assert!(
        message.contains("expected `,` or `]` after a record, found `{`"),
        "{message}"
    );
    assert_eq!(err.position.map(|p| p.column), Some(1));
}

#[test]
fn oversized_record_is_skipped_and_reading_goes_on() {
    let mut big = rec("Big");
    big["requestParameters"] = json!({ "blob": "x".repeat(5000) });
    let options = ReadOptions {
        max_record_bytes: 2000,
        ..ReadOptions::default()
    };
    let text = line(&json!({ "Records": [rec("A"), big.clone(), rec("C")] }));
    let out = read_opts(text.as_bytes(), &options);
    assert_eq!(out.names(), ["A", "C"]);
    let err = out.only_error();
    assert!(
        matches!(err.kind, ErrorKind::RecordTooLarge { limit: 2000 }),
        "{err}"
    );
    assert_eq!(err.position.and_then(|p| p.record), Some(2));

    let lines = format!("{}\n{}\n{}\n", line(&rec("A")), line(&big), line(&rec("C")));
    let out = read_opts(lines.as_bytes(), &options);
    assert_eq!(out.names(), ["A", "C"]);
    assert!(matches!(
        out.only_error().kind,
        ErrorKind::RecordTooLarge { .. }
    ));

    let out = read_opts(line(&big).as_bytes(), &options);
    assert!(out.records.is_empty());
    assert!(matches!(
        out.only_error().kind,
        ErrorKind::RecordTooLarge { .. }
    ));
}

#[test]
fn oversized_keys_and_wrapper_members_are_errors_too() {
    let options = ReadOptions {
        max_record_bytes: 2000,
        ..ReadOptions::default()
    };
    // A key alone over the limit.
    let key = "k".repeat(3000);
    let text = format!(
        r#"{{"Records": [{}, {{"{key}": 1, "eventName": "B"}}, {}]}}"#,
        line(&rec("A")),
        line(&rec("C"))
    );
    let out = read_opts(text.as_bytes(), &options);
    assert_eq!(out.names(), ["A", "C"]);
    assert!(matches!(
        out.only_error().kind,
        ErrorKind::RecordTooLarge { .. }
    ));

    // A log file's other members over the limit, before and after `Records`.
    let blob = "x".repeat(3000);
    let text = format!(
        r#"{{"a": "{blob}", "Records": [{}], "z": "{blob}"}}"#,
        line(&rec("A"))
    );
    let out = read_opts(text.as_bytes(), &options);
    assert_eq!(out.names(), ["A"]);
    assert_eq!(out.errors.len(), 2, "{:?}", out.error_lines());
}

#[test]
fn input_limit_stops_a_gzip_bomb() {
    let data = gzip(&vec![b' '; 1 << 20]);
    let options = ReadOptions {
        max_input_bytes: 100_000,
        ..ReadOptions::default()
    };
    let out = read_opts(&data, &options);
    assert!(matches!(
        out.only_error().kind,
        ErrorKind::InputTooLarge { limit: 100_000 }
    ));
}

const DIGEST: &str = r#"{"awsAccountId":"111122223333","digestStartTime":"2020-09-11T18:36:49Z","digestEndTime":"2020-09-11T19:36:49Z","digestS3Bucket":"b","digestS3Object":"AWSLogs\/111122223333\/CloudTrail-Digest\/x.json.gz","digestPublicKeyFingerprint":"f","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":"2020-09-11T19:36:00Z","oldestEventTime":"2020-09-11T18:37:00Z","previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[{"s3Bucket":"b","s3Object":"o","hashValue":"h","hashAlgorithm":"SHA-256","newestEventTime":"2020-09-11T19:36:00Z","oldestEventTime":"2020-09-11T18:37:00Z"}]}"#;

#[test]
fn digest_file_is_recognised_not_an_error() {
    let out = read_both(DIGEST.as_bytes());
    assert!(out.records.is_empty());
    assert!(out.errors.is_empty());
    assert_eq!(out.summary.shape, Some(Shape::Digest));
    assert_eq!(out.summary.digests, 1);
}

#[test]
fn empty_input_is_its_own_shape() {
    for text in ["", "  \n\r\n\t", "\u{feff}"] {
        let out = read_both(text.as_bytes());
        assert!(out.records.is_empty() && out.errors.is_empty(), "{text:?}");
        assert_eq!(out.summary.shape, Some(Shape::Empty), "{text:?}");
    }
}

#[test]
fn text_that_is_not_json_is_one_error() {
    let out = read_both(b"timestamp,eventName\n2024,StopLogging\n");
    assert!(out.records.is_empty());
    let err = out.only_error();
    assert!(matches!(err.kind, ErrorKind::NotJson(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "test.json: line 1, column 1: not JSON: found `t` where a JSON object or array should start"
    );
    assert_eq!(out.summary.shape, None);
}

#[test]
fn binary_and_other_formats_are_named() {
    let out = read(&[0x80, 0x81, 0xfe, 0x00, 0x01]);
    assert!(matches!(out.only_error().kind, ErrorKind::NotUtf8));
    let out = read(b"PK\x03\x04rest-of-zip");
    assert!(matches!(out.only_error().kind, ErrorKind::UnsupportedFormat(m) if m.contains("zip")));
    let out = read(&gzip(&gzip(b"{}")));
    assert!(
        matches!(out.only_error().kind, ErrorKind::UnsupportedFormat(m) if m.contains("gzip inside gzip"))
    );
    let out = read(b"\xff\xfe{\x00}\x00");
    assert!(
        matches!(out.only_error().kind, ErrorKind::UnsupportedFormat(m) if m.contains("UTF-16"))
    );
}

#[test]
fn utf8_bom_is_skipped() {
    let mut text = "\u{feff}".as_bytes().to_vec();
    text.extend(log_file(&["A"]));
    let out = read_both(&text);
    assert_eq!(out.names(), ["A"]);
    assert!(out.errors.is_empty());
}

#[test]
fn invalid_utf8_inside_a_record_skips_that_record() {
    let mut text = line(&rec("A")).into_bytes();
    text.push(b'\n');
    text.extend(br#"{"eventName": "caf"#);
    text.push(0xe9);
    text.extend(b"\"}\n");
    text.extend(line(&rec("C")).into_bytes());
    let out = read_both(&text);
    assert_eq!(out.names(), ["A", "C"]);
    let err = out.only_error();
    assert!(matches!(err.kind, ErrorKind::NotUtf8), "{err}");
    assert_eq!(err.position.map(|p| (p.line, p.column)), Some((2, 19)));
}

#[test]
fn invalid_utf8_does_not_hide_broken_syntax() {
    let mut text = br#"{"Records": [{"eventName": "caf"#.to_vec();
    text.push(0xe9);
    text.extend(br#"", "x": ]  , {"eventName": "B"}}]}"#);
    let out = read(&text);
    assert!(out.records.is_empty(), "{:?}", out.names());
    assert!(matches!(out.only_error().kind, ErrorKind::Syntax(_)));
}

#[test]
fn objects_without_cloudtrail_fields_are_not_records() {
    let out = read(br#"{"name": "package.json", "version": "1.0.0"}"#);
    assert!(matches!(out.only_error().kind, ErrorKind::NotCloudTrail(_)));
    assert_eq!(out.summary.shape, None);

    let out = read(br#"[{"eventName": "A"}, 42, "x", {"Records": 7}]"#);
    assert_eq!(out.names(), ["A"]);
    assert_eq!(out.errors.len(), 3, "{:?}", out.error_lines());
    assert!(
        out.errors
            .iter()
            .all(|e| matches!(e.kind, ErrorKind::NotCloudTrail(_)))
    );
    assert_eq!(out.errors[0].position.and_then(|p| p.record), Some(2));

    // Exports that still count: lower-cased keys, Panther's marker alone.
    let out =
        read(br#"{"eventname": "GetAccountPasswordPolicy", "eventsource": "iam.amazonaws.com"}"#);
    assert_eq!(out.records.len(), 1);
    assert!(out.records[0].0.get("eventName").is_none());
    assert_eq!(out.records[0].0["eventname"], "GetAccountPasswordPolicy");
    let out = read(br#"{"p_log_type": "AWS.CloudTrail", "p_any_ip_addresses": ["1.2.3.4"]}"#);
    assert_eq!(out.records.len(), 1);
    let out = read(br#"{"p_log_type": "Okta.SystemLog"}"#);
    assert!(matches!(out.only_error().kind, ErrorKind::NotCloudTrail(_)));
}

#[test]
fn trailing_garbage_after_a_log_file_is_an_error() {
    let mut text = log_file(&["A"]);
    text.extend(b" ]");
    let out = read(&text);
    assert_eq!(out.names(), ["A"]);
    assert!(matches!(out.only_error().kind, ErrorKind::NotJson(_)));
}

#[test]
fn duplicate_records_key_is_an_error() {
    let text = format!(r#"{{"Records": [{}], "Records": []}}"#, line(&rec("A")));
    let out = read(text.as_bytes());
    assert_eq!(out.names(), ["A"]);
    assert!(
        out.only_error()
            .to_string()
            .contains("duplicate key `Records`")
    );
}

#[test]
fn syntax_error_in_members_after_records_is_reported() {
    let text = format!(r#"{{"Records": [{}], "x": tru}}"#, line(&rec("A")));
    let out = read(text.as_bytes());
    assert_eq!(out.names(), ["A"]);
    let err = out.only_error();
    assert!(matches!(err.kind, ErrorKind::Syntax(_)), "{err}");
}

#[test]
fn break_stops_reading() {
    let mut seen = 0;
    let summary = read_records(
        &log_file(&["A", "B", "C"])[..],
        "x",
        &ReadOptions::default(),
        |_| {
            seen += 1;
            ControlFlow::Break(())
        },
    );
    assert_eq!(seen, 1);
    assert!(summary.stopped);
    assert_eq!(summary.records, 1);
}

#[test]
fn read_path_names_the_path_it_cannot_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.json.gz");
    let mut errors = Vec::new();
    let summary = read_path(&missing, &ReadOptions::default(), |item| {
        if let Item::Error(e) = item {
            errors.push(e.to_string());
        }
        ControlFlow::Continue(())
    });
    assert_eq!(summary.errors, 1);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(&format!("{}: cannot open: ", missing.display())),
        "{}",
        errors[0]
    );

    let summary = read_path(dir.path(), &ReadOptions::default(), |_| {
        ControlFlow::Continue(())
    });
    assert_eq!(summary.errors, 1);

    let file = dir.path().join("log.json.gz");
    std::fs::write(&file, gzip(&log_file(&["A", "B"]))).expect("write");
    let summary = read_path(
        &file,
        &ReadOptions::default(),
        |_| ControlFlow::Continue(()),
    );
    assert_eq!(
        (summary.records, summary.errors, summary.gzip),
        (2, 0, true)
    );
}

#[test]
fn walk_is_recursive_sorted_and_survives_symlink_loops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for path in ["b.json", "a/z.json", "a/c/y.json", "a/c/x.json", "c.json"] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"{}").expect("write");
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("a"), root.join("a/c/loop")).expect("symlink");

    let mut files = Vec::new();
    let mut errors = Vec::new();
    for item in walk([root.to_path_buf(), root.join("c.json")]) {
        match item {
            Ok(path) => files.push(
                path.strip_prefix(root)
                    .expect("inside")
                    .display()
                    .to_string(),
            ),
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(
        files,
        [
            "a/c/x.json",
            "a/c/y.json",
            "a/z.json",
            "b.json",
            "c.json",
            "c.json"
        ]
    );
    #[cfg(unix)]
    {
        assert_eq!(errors.len(), 1);
        assert!(matches!(errors[0].kind, ErrorKind::SymlinkLoop));
        assert!(errors[0].to_string().contains("loop"));
    }

    let missing: Vec<_> = walk([root.join("missing")]).collect();
    assert!(matches!(&missing[..], [Err(e)] if matches!(e.kind, ErrorKind::Open(_))));
}

// ---- properties ----

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Characters that matter to the scanner: quotes, escapes, brackets, newlines.
        "[a-z{}\\[\\]\"\\\\\n\t ,:é😀]{0,10}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z\"{}]{1,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A record: a few well-known fields (always one, so it is recognised) and unknown extras.
fn record() -> impl Strategy<Value = Value> {
    (
        "[A-Za-z]{1,12}",
        prop::option::of("[a-z.]{1,20}"),
        prop::option::of(any::<bool>()),
        prop::option::of(json_value()),
        prop::option::of(("[0-9]{12}", "arn:aws:iam::[0-9]{12}:user/[a-z]{1,8}")),
        prop::collection::vec(("x[A-Za-z_]{0,8}", json_value()), 0..4),
    )
        .prop_map(|(name, source, read_only, params, identity, extra)| {
            let mut m = serde_json::Map::new();
            m.insert("eventName".into(), json!(name));
            if let Some(source) = source {
                m.insert("eventSource".into(), json!(source));
            }
            if let Some(read_only) = read_only {
                m.insert("readOnly".into(), json!(read_only));
            }
            if let Some(params) = params {
                m.insert("requestParameters".into(), params);
            }
            if let Some((account, arn)) = identity {
                m.insert(
                    "userIdentity".into(),
                    json!({"accountId": account, "arn": arn}),
                );
            }
            for (k, v) in extra {
                m.insert(k, v);
            }
            Value::Object(m)
        })
}

/// Writes `records` in shape number `shape`.
fn write_shape(shape: usize, records: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    match shape {
        0 => out = serde_json::to_vec(&json!({ "Records": records })).expect("json"),
        1 => {
            out = serde_json::to_vec_pretty(
                &json!({ "x-first": {"a": "]"}, "Records": records, "x-last": [] }),
            )
            .expect("json");
        }
        2 => {
            for (i, r) in records.iter().enumerate() {
                out.extend(line(r).into_bytes());
                out.extend(if i % 2 == 0 {
                    &b"\n"[..]
                } else {
                    &b"\r\n\n"[..]
                });
            }
        }
        3 => {
            for r in records {
                out.extend(line(&envelope(r.clone())).into_bytes());
                out.push(b'\n');
            }
        }
        4 => out = serde_json::to_vec(&Value::Array(records.to_vec())).expect("json"),
        5 => out = serde_json::to_vec_pretty(&Value::Array(records.to_vec())).expect("json"),
        _ => {
            for r in records {
                out.extend(serde_json::to_vec_pretty(r).expect("json"));
                out.push(b'\n');
            }
        }
    }
    out
}

const SHAPES: usize = 7;

fn encode(bytes: &[u8], compression: usize, split: usize) -> Vec<u8> {
    match compression {
        0 => bytes.to_vec(),
        1 => gzip(bytes),
        _ => {
            let cut = split % (bytes.len() + 1);
            let mut out = gzip(&bytes[..cut]);
            out.extend(gzip(&bytes[cut..]));
            out
        }
    }
}

/// Reads arbitrary bytes and checks the invariants that hold for any input.
fn read_anything(bytes: &[u8]) -> Outcome {
    let options = ReadOptions {
        max_record_bytes: 4096,
        ..ReadOptions::default()
    };
    let out = read_opts(bytes, &options);
    for e in &out.errors {
        let message = e.to_string();
        assert!(message.starts_with("test.json: "), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
    out
}

proptest! {
    #[test]
    fn every_shape_reads_back_the_records_in_order(
        records in prop::collection::vec(record(), 0..6),
        shape in 0..SHAPES,
        compression in 0..3usize,
        split in any::<usize>(),
    ) {
        let bytes = encode(&write_shape(shape, &records), compression, split);
        let out = read(&bytes);
        prop_assert!(out.errors.is_empty(), "{:?}", out.error_lines());
        let got: Vec<Value> = out.records.into_iter().map(|(r, _)| r).collect();
        prop_assert_eq!(got, records);
        prop_assert_eq!(out.summary.gzip, compression > 0);
    }

    #[test]
    fn one_record_alone_is_a_record_or_an_envelope(record in record(), pretty in any::<bool>()) {
        for (value, shape) in [(record.clone(), Shape::Record), (envelope(record.clone()), Shape::EventBridge)] {
            let bytes = if pretty { serde_json::to_vec_pretty(&value) } else { serde_json::to_vec(&value) }.expect("json");
            let out = read(&bytes);
            prop_assert_eq!(out.summary.shape, Some(shape));
            prop_assert_eq!(out.records.len(), 1);
            prop_assert_eq!(&out.records[0].0, &record);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        read_anything(&bytes);
        read_anything(&gzip(&bytes));
    }

    #[test]
    fn truncation_gives_a_prefix_of_the_records(
        records in prop::collection::vec(record(), 1..6),
        shape in 0..SHAPES,
        gzipped in any::<bool>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = encode(&write_shape(shape, &records), usize::from(gzipped), 0);
        let cut = cut.index(bytes.len());
        let out = read_anything(&bytes[..cut]);
        let want = records;
        let got: Vec<Value> = out.records.into_iter().map(|(r, _)| r).collect();
        prop_assert!(got.len() <= want.len());
        prop_assert_eq!(&got[..], &want[..got.len()]);
        if got.len() < want.len() && gzipped && cut >= 2 {
            prop_assert!(!out.errors.is_empty(), "a truncated gzip is reported");
        }
    }

    /// Differential check against serde_json: whatever it rejects, we report.
    #[test]
    fn damaged_input_is_reported(
        records in prop::collection::vec(record(), 1..4),
        shape in 0..SHAPES,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = write_shape(shape, &records);
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        let out = read_anything(&bytes);
        let serde_accepts = serde_json::Deserializer::from_slice(&bytes)
            .into_iter::<serde::de::IgnoredAny>()
            .all(|r| r.is_ok());
        if !serde_accepts {
            prop_assert!(!out.errors.is_empty(), "serde_json rejects {:?}", String::from_utf8_lossy(&bytes));
        }
    }
}
