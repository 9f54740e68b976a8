//! Engine behaviour: Sigma semantics, load-time rejection, failed attempts, the index.

use crate::{RuleSet, Verdict};
use serde_json::{Value, json};
use trailwarden_model::finding::Severity;

fn rule(detection: &str) -> String {
    format!(
        "title: t\nname: t\nlogsource:\n  product: aws\n  service: cloudtrail\nlevel: high\ndetection:\n{detection}"
    )
}

fn set(detection: &str) -> RuleSet {
    RuleSet::load([("t.yml".to_owned(), rule(detection))])
        .unwrap_or_else(|e| panic!("{e:?}"))
        .0
}

fn verdict(set: &RuleSet, record: &Value) -> Option<Verdict> {
    let mut found = None;
    set.for_each_match(record, |_, v| found = Some(v));
    found
}

fn hits(detection: &str, record: Value) -> bool {
    verdict(&set(detection), &record).is_some()
}

fn load_error(text: &str) -> String {
    RuleSet::load([("rules/bad.yml".to_owned(), text.to_owned())])
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn plain_values_are_case_insensitive_whole_values() {
    let d = "  selection:\n    eventName: StopLogging\n  condition: selection\n";
    assert!(hits(d, json!({"eventName": "StopLogging"})));
    assert!(hits(d, json!({"eventName": "stoplogging"})));
    assert!(!hits(d, json!({"eventName": "StopLoggingX"})));
    assert!(!hits(d, json!({"eventName": "StartLogging"})));
    assert!(!hits(d, json!({})));
}

#[test]
fn lists_or_maps_and_list_of_maps_or() {
    let d = "  selection:\n    eventSource: cloudtrail.amazonaws.com\n    eventName:\n      - StopLogging\n      - DeleteTrail\n  condition: selection\n";
    assert!(hits(
        d,
        json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": "DeleteTrail"})
    ));
    assert!(!hits(
        d,
        json!({"eventSource": "s3.amazonaws.com", "eventName": "DeleteTrail"})
    ));
    let d = "  selection:\n    - eventName: A\n    - eventSource: b\n  condition: selection\n";
    assert!(hits(d, json!({"eventName": "a"})));
    assert!(hits(d, json!({"eventSource": "B"})));
    assert!(!hits(d, json!({"eventName": "b"})));
}

#[test]
fn nested_paths_walk_arrays() {
    let d = "  selection:\n    requestParameters.eventSelectors.includeManagementEvents: false\n  condition: selection\n";
    let r = json!({"requestParameters": {"eventSelectors": [
        {"includeManagementEvents": true}, {"includeManagementEvents": false}]}});
    assert!(hits(d, r));
    let r = json!({"requestParameters": {"eventSelectors": [{"includeManagementEvents": true}]}});
    assert!(!hits(d, r));
    // CloudTrail sometimes writes booleans as strings.
    let r = json!({"requestParameters": {"eventSelectors": {"includeManagementEvents": "false"}}});
    assert!(hits(d, r));
}

#[test]
fn null_means_missing_or_null() {
    let d = "  selection:\n    errorCode: null\n  condition: selection\n";
    assert!(hits(d, json!({"eventName": "x"})));
    assert!(hits(d, json!({"errorCode": null})));
    assert!(!hits(d, json!({"errorCode": "AccessDenied"})));
    let d = "  selection:\n    requestParameters.a.b: null\n  condition: selection\n";
    assert!(hits(d, json!({"requestParameters": null})));
}

#[test]
fn numbers_and_quoted_booleans() {
    let d = "  selection:\n    requestParameters.port: 22\n  condition: selection\n";
    assert!(hits(d, json!({"requestParameters": {"port": 22}})));
    assert!(hits(d, json!({"requestParameters": {"port": "22"}})));
    assert!(!hits(d, json!({"requestParameters": {"port": 220}})));
    let d = "  selection:\n    requestParameters.flag: 'true'\n  condition: selection\n";
    assert!(hits(d, json!({"requestParameters": {"flag": true}})));
    assert!(hits(d, json!({"requestParameters": {"flag": "True"}})));
}

#[test]
fn modifiers() {
    let contains =
        "  selection:\n    requestParameters.policy|contains: Deny\n  condition: selection\n";
    assert!(hits(
        contains,
        json!({"requestParameters": {"policy": "{\"Effect\":\"Deny\"}"}})
    ));
    // On an object, `contains` sees its compact JSON text.
    assert!(hits(
        contains,
        json!({"requestParameters": {"policy": {"Effect": "Deny"}}})
    ));
    let all = "  selection:\n    userAgent|contains|all:\n      - aws-cli\n      - Linux\n  condition: selection\n";
    assert!(hits(all, json!({"userAgent": "aws-cli/2 Python Linux/5"})));
    assert!(!hits(all, json!({"userAgent": "aws-cli/2 Python Darwin"})));
    let sw = "  selection:\n    eventName|startswith: UpdateFunctionConfiguration\n  condition: selection\n";
    assert!(hits(
        sw,
        json!({"eventName": "UpdateFunctionConfiguration20150331v2"})
    ));
    let ew = "  selection:\n    userIdentity.arn|endswith: /mallory\n  condition: selection\n";
    assert!(hits(
        ew,
        json!({"userIdentity": {"arn": "arn:aws:sts::1:assumed-role/x/Mallory"}})
    ));
    let re = "  selection:\n    sourceIPAddress|re: '^10\\.'\n  condition: selection\n";
    assert!(hits(re, json!({"sourceIPAddress": "10.1.2.3"})));
    assert!(!hits(re, json!({"sourceIPAddress": "110.1.2.3"})));
    let re_i = "  selection:\n    userAgent|re|i: '^BOTO'\n  condition: selection\n";
    assert!(hits(re_i, json!({"userAgent": "boto3/1.0"})));
    let cidr = "  selection:\n    sourceIPAddress|cidr:\n      - 10.0.0.0/8\n      - 2001:db8::/32\n  condition: selection\n";
    assert!(hits(cidr, json!({"sourceIPAddress": "10.9.9.9"})));
    assert!(hits(cidr, json!({"sourceIPAddress": "2001:db8::5"})));
    assert!(!hits(
        cidr,
        json!({"sourceIPAddress": "cloudtrail.amazonaws.com"})
    ));
    let exists = "  selection:\n    errorCode|exists: true\n  condition: selection\n";
    assert!(hits(exists, json!({"errorCode": "AccessDenied"})));
    assert!(!hits(exists, json!({"errorCode": null})));
    let absent = "  selection:\n    errorCode|exists: false\n  condition: selection\n";
    assert!(hits(absent, json!({})));
    let gt =
        "  selection:\n    requestParameters.pendingWindowInDays|lt: 10\n  condition: selection\n";
    assert!(hits(
        gt,
        json!({"requestParameters": {"pendingWindowInDays": 7}})
    ));
    assert!(!hits(
        gt,
        json!({"requestParameters": {"pendingWindowInDays": 30}})
    ));
    let cased = "  selection:\n    eventName|cased: StopLogging\n  condition: selection\n";
    assert!(!hits(cased, json!({"eventName": "stoplogging"})));
    let fieldref = "  selection:\n    userIdentity.userName|fieldref: requestParameters.userName\n  condition: selection\n";
    assert!(hits(
        fieldref,
        json!({"userIdentity": {"userName": "bob"}, "requestParameters": {"userName": "bob"}})
    ));
    assert!(!hits(
        fieldref,
        json!({"userIdentity": {"userName": "bob"}, "requestParameters": {"userName": "eve"}})
    ));
}

#[test]
fn wildcards_and_escapes() {
    let d = "  selection:\n    userAgent:\n      - '*TruffleHog*'\n      - 'a\\*b'\n  condition: selection\n";
    assert!(hits(d, json!({"userAgent": "x trufflehog y"})));
    assert!(hits(d, json!({"userAgent": "A*B"})));
    assert!(!hits(d, json!({"userAgent": "aXb"})));
}

#[test]
fn keywords_search_every_string() {
    let d = "  keywords:\n    - '*mallory*'\n  condition: keywords\n";
    assert!(hits(
        d,
        json!({"a": {"b": ["x", "arn:aws:iam::1:user/mallory"]}})
    ));
    assert!(!hits(d, json!({"a": "bob"})));
}

#[test]
fn conditions() {
    let d = "  selection:\n    eventName: DeleteBucket\n  filter_a:\n    userAgent: ok\n  filter_b:\n    sourceIPAddress: 10.0.0.1\n  condition: selection and not 1 of filter_*\n";
    assert!(hits(d, json!({"eventName": "DeleteBucket"})));
    assert!(!hits(
        d,
        json!({"eventName": "DeleteBucket", "userAgent": "ok"})
    ));
    assert!(!hits(
        d,
        json!({"eventName": "DeleteBucket", "sourceIPAddress": "10.0.0.1"})
    ));
    let d = "  a:\n    eventName: X\n  b:\n    eventSource: y\n  condition:\n    - a and b\n    - not a\n";
    assert!(hits(d, json!({"eventName": "X", "eventSource": "y"})));
    assert!(hits(d, json!({"eventName": "Z"})));
    assert!(!hits(d, json!({"eventName": "X"})));
}

#[test]
fn failed_attempts_are_lower_and_not_remediable() {
    let text = "title: t\nname: t\nlogsource:\n  product: aws\n  service: cloudtrail\nlevel: critical\ndetection:\n  s:\n    eventName: StopLogging\n  condition: s\ntrailwarden:\n  remediation: state\n";
    let (set, _) = RuleSet::load([("t.yml".to_owned(), text.to_owned())]).unwrap();
    let ok = verdict(&set, &json!({"eventName": "StopLogging"})).unwrap();
    assert_eq!(
        (ok.severity, ok.failed, ok.remediable),
        (Severity::Critical, false, true)
    );
    let failed = verdict(
        &set,
        &json!({"eventName": "StopLogging", "errorCode": "AccessDenied"}),
    )
    .unwrap();
    assert_eq!(
        (failed.severity, failed.failed, failed.remediable),
        (Severity::Low, true, false)
    );
    let empty = verdict(&set, &json!({"eventName": "StopLogging", "errorCode": ""})).unwrap();
    assert!(!empty.failed);
}

#[test]
fn the_index_narrows_by_event_name_and_keeps_unrestricted_rules() {
    let a =
        rule("  s:\n    eventName:\n      - StopLogging\n      - DeleteTrail\n  condition: s\n");
    let b = rule("  s:\n    userIdentity.type: Root\n  condition: s\n")
        .replace("name: t", "name: root");
    let c = rule(
        "  s:\n    eventName: StopLogging\n  f:\n    eventSource: x\n  condition: s and not f\n",
    )
    .replace("name: t", "name: c");
    let (set, _) = RuleSet::load([
        ("a.yml".to_owned(), a),
        ("b.yml".to_owned(), b),
        ("c.yml".to_owned(), c),
    ])
    .unwrap();
    let (names, any) = set.event_names();
    assert_eq!(names, ["deletetrail", "stoplogging"]);
    assert!(any);
    let mut matched = Vec::new();
    set.for_each_match(
        &json!({"eventName": "stoplogging", "userIdentity": {"type": "Root"}}),
        |r, _| {
            matched.push(r.rule_id.clone());
        },
    );
    assert_eq!(matched, ["t", "root", "c"]);
}

#[test]
fn unsupported_features_are_rejected_with_file_line_and_feature() {
    let e = load_error(&rule(
        "  s:\n    eventName|base64offset|contains: x\n  condition: s\n",
    ));
    assert!(
        e.contains("rules/bad.yml:9:") && e.contains("`base64offset`"),
        "{e}"
    );
    let e = load_error(&rule(
        "  s:\n    eventName: x\n  condition: s | count() by userIdentity.arn > 5\n",
    ));
    assert!(
        e.contains("rules/bad.yml:10:") && e.contains("aggregation"),
        "{e}"
    );
    let e = load_error(&rule(
        "  s:\n    eventName: x\n  timeframe: 5m\n  condition: s\n",
    ));
    assert!(e.contains(":10:") && e.contains("timeframe"), "{e}");
    let e = load_error(&rule("  s:\n    eventName|frobnicate: x\n  condition: s\n"));
    assert!(
        e.contains(":9:") && e.contains("unknown value modifier `frobnicate`"),
        "{e}"
    );
    let e = load_error(&rule("  s:\n    eventName|re: '(?<=a)b'\n  condition: s\n"));
    assert!(
        e.contains(":9:") && e.contains("invalid regular expression"),
        "{e}"
    );
    let e = load_error(&rule(
        "  s:\n    eventName: x\n  condition: s and missing\n",
    ));
    assert!(e.contains("`missing`"), "{e}");
    let e = load_error(&format!(
        "{}---\naction: global\n",
        rule("  s:\n    eventName: x\n  condition: s\n")
    ));
    assert!(e.contains("several YAML documents"), "{e}");
    let e = load_error("title: [unclosed\n");
    assert!(
        e.contains("rules/bad.yml:") && e.contains("not valid YAML"),
        "{e}"
    );
    let e = load_error("title: x\nlogsource:\n  product: aws\n");
    assert!(e.contains("missing `detection`"), "{e}");
}

#[test]
fn other_log_sources_are_skipped_and_reported() {
    let windows = "title: w\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  s:\n    Image|endswith: x.exe\n  condition: s\n";
    let (set, report) = RuleSet::load([("w.yml".to_owned(), windows.to_owned())]).unwrap();
    assert!(set.is_empty());
    assert_eq!(report.skipped.len(), 1);
}

#[test]
fn duplicate_rule_ids_are_errors() {
    let e = RuleSet::load([
        (
            "a.yml".to_owned(),
            rule("  s:\n    eventName: x\n  condition: s\n"),
        ),
        (
            "b.yml".to_owned(),
            rule("  s:\n    eventName: y\n  condition: s\n"),
        ),
    ])
    .unwrap_err();
    assert!(e[0].to_string().contains("also used by a.yml"), "{e:?}");
}

#[test]
fn rule_tests_run_and_fail_when_wrong() {
    let text = format!(
        "{}trailwarden:\n  catalog: A1\n  tests:\n    - name: hit\n      match: true\n      severity: high\n      record: {{eventName: StopLogging}}\n    - name: wrong\n      match: true\n      record: {{eventName: StartLogging}}\n",
        rule("  s:\n    eventName: StopLogging\n  condition: s\n")
    );
    let (set, _) = RuleSet::load([("t.yml".to_owned(), text)]).unwrap();
    let outcomes = set.run_tests();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes[0].passed, "{:?}", outcomes[0]);
    assert!(!outcomes[1].passed);
    assert!(outcomes[1].detail.contains("did not match"));
}

#[test]
fn lint_flags_incomplete_pack_rules() {
    let (set, _) = RuleSet::load([(
        "x.yml".to_owned(),
        rule("  s:\n    eventName: x\n  condition: s\n"),
    )])
    .unwrap();
    let lints = set.lint(true);
    let text: Vec<&str> = lints
        .iter()
        .filter(|l| l.error)
        .map(|l| l.message.as_str())
        .collect();
    assert!(text.iter().any(|m| m.contains("UUID")), "{text:?}");
    assert!(text.iter().any(|m| m.contains("catalog")), "{text:?}");
    assert!(text.iter().any(|m| m.contains("named `t.yml`")), "{text:?}");
    assert!(text.iter().any(|m| m.contains("positive test")), "{text:?}");
}

#[test]
fn the_built_in_pack_loads_lints_and_passes_its_tests() {
    let sources = RuleSet::built_in_sources();
    assert!(!sources.is_empty(), "no rules embedded: is rules/ missing?");
    let set = RuleSet::built_in().unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert_eq!(set.len(), sources.len());
    let errors: Vec<_> = set.lint(true).into_iter().filter(|l| l.error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let failed: Vec<_> = set.run_tests().into_iter().filter(|t| !t.passed).collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn prefixes_lower_case_keys_and_needles_narrow_what_is_parsed() {
    let prefix =
        rule("  s:\n    eventName|startswith: UpdateFunctionConfiguration\n  condition: s\n")
            .replace("name: t", "name: prefix");
    let lower = rule("  s:\n    eventname: CreateIPSet\n  condition: s\n")
        .replace("name: t", "name: lower");
    let needle = rule("  s:\n    requestParameters.omitted: true\n  condition: s\n")
        .replace("name: t", "name: needle");
    let (set, _) = RuleSet::load([
        ("p.yml".to_owned(), prefix),
        ("l.yml".to_owned(), lower),
        ("n.yml".to_owned(), needle),
    ])
    .unwrap();
    assert!(set.may_match_text(Some("UpdateFunctionConfiguration20150331v2"), "{}"));
    assert!(set.may_match_text(Some("createipset"), "{}"));
    assert!(!set.may_match_text(Some("GetObject"), r#"{"eventName":"GetObject"}"#));
    assert!(set.may_match_text(
        Some("GetObject"),
        r#"{"requestParameters":{"omitted":true}}"#
    ));
    assert!(
        set.may_match(Some("GetObject")),
        "without the text, conservative"
    );
    let mut hits = Vec::new();
    set.for_each_match(&json!({"eventname": "CreateIPSet"}), |r, _| {
        hits.push(r.rule_id.clone())
    });
    set.for_each_match(
        &json!({"eventName": "UpdateFunctionConfiguration20150331v2"}),
        |r, _| hits.push(r.rule_id.clone()),
    );
    set.for_each_match(
        &json!({"eventName": "GetObject", "requestParameters": {"omitted": true}}),
        |r, _| hits.push(r.rule_id.clone()),
    );
    assert_eq!(hits, ["lower", "prefix", "needle"]);
}

#[test]
fn the_forwarding_pattern_keeps_the_rules_spelling() {
    let prefix =
        rule("  s:\n    eventName|startswith: UpdateFunctionConfiguration\n  condition: s\n")
            .replace("name: t", "name: prefix");
    let exact =
        rule("  s:\n    eventName:\n      - StopLogging\n      - DeleteTrail\n  condition: s\n");
    let (set, _) =
        RuleSet::load([("p.yml".to_owned(), prefix), ("e.yml".to_owned(), exact)]).unwrap();
    let f = set.forwarded_events();
    assert!(f.complete);
    assert_eq!(f.names, ["DeleteTrail", "StopLogging"]);
    assert_eq!(
        f.event_pattern()["detail"]["eventName"],
        json!(["DeleteTrail", "StopLogging", {"prefix": "UpdateFunctionConfiguration"}])
    );
    // Still matched case-insensitively.
    assert!(set.may_match(Some("stoplogging")));
}

#[test]
fn findings_carry_the_sigma_id_and_title_beside_the_rule_id() {
    let text = "title: Trail stopped (SigmaHQ)\nid: 4db60067-4821-4a5c-9f3b-6ea0c4e3c2ab\nlogsource:\n  product: aws\n  service: cloudtrail\nlevel: high\ndetection:\n  selection:\n    eventName: StopLogging\n  condition: selection\n";
    let (set, _) = RuleSet::load([("sigma/aws_cloudtrail_stop.yml".to_owned(), text.to_owned())])
        .unwrap_or_else(|e| panic!("{e:?}"));
    let record = json!({"eventName": "StopLogging", "recipientAccountId": "111111111111"});
    let mut findings = Vec::new();
    set.for_each_match(&record, |rule, verdict| {
        findings.push(crate::event_finding(rule, verdict, &record, None));
    });
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.rule_id, "aws_cloudtrail_stop");
    assert_eq!(
        f.sigma_id.as_deref(),
        Some("4db60067-4821-4a5c-9f3b-6ea0c4e3c2ab")
    );
    assert_eq!(f.title, "Trail stopped (SigmaHQ)");
}
