//! SigmaHQ's published AWS CloudTrail rules load unmodified and fire on real records.
//! Needs `TRAILWARDEN_CORPUS` (CI sets it to `../shared/corpus`); fails loudly without it.

use serde_json::Value;
use std::path::PathBuf;
use trailwarden_rules::RuleSet;

fn corpus() -> PathBuf {
    let dir = std::env::var_os("TRAILWARDEN_CORPUS").unwrap_or_else(|| {
        panic!("TRAILWARDEN_CORPUS is not set: point it at the shared corpus (../shared/corpus)")
    });
    // A relative path is taken from the repository root (CI: ../shared/corpus).
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir);
    assert!(
        dir.join("MANIFEST.md").is_file(),
        "{} holds no corpus",
        dir.display()
    );
    dir
}

fn records(relative: &str) -> Vec<Value> {
    let path = corpus().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str::<Value>(&text).unwrap() {
        Value::Array(items) => items,
        Value::Object(mut o) if o.contains_key("Records") => match o.remove("Records") {
            Some(Value::Array(items)) => items,
            _ => panic!("bad Records"),
        },
        other => vec![other],
    }
}

fn matches(set: &RuleSet, record: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    set.for_each_match(record, |rule, _| ids.push(rule.source.clone()));
    ids
}

#[test]
fn every_sigmahq_aws_rule_loads_unmodified() {
    let dir = corpus().join("sigmahq-aws/cloudtrail");
    let (set, report) = RuleSet::load_dir(&dir).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    println!(
        "SigmaHQ AWS rules loaded: {}, skipped: {}",
        set.len(),
        report.skipped.len()
    );
    assert_eq!(set.len(), 57);
    assert!(report.skipped.is_empty());
}

#[test]
fn sigmahq_rules_fire_on_real_detonations() {
    let (set, _) = RuleSet::load_dir(&corpus().join("sigmahq-aws/cloudtrail")).unwrap();
    let cases = [
        (
            "stratus-red-team/detonation-logs/aws.defense-evasion.cloudtrail-stop.json",
            "StopLogging",
            "aws_cloudtrail_disable_logging.yml",
        ),
        (
            "stratus-red-team/detonation-logs/aws.defense-evasion.cloudtrail-delete.json",
            "DeleteTrail",
            "aws_cloudtrail_disable_logging.yml",
        ),
        (
            "stratus-red-team/detonation-logs/aws.defense-evasion.vpc-remove-flow-logs.json",
            "DeleteFlowLogs",
            "aws_cloudtrail_vpc_flow_logs_deleted.yml",
        ),
        (
            "stratus-red-team/detonation-logs/aws.initial-access.console-login-without-mfa.json",
            "ConsoleLogin",
            "aws_cloudtrail_console_login_success_without_mfa.yml",
        ),
    ];
    for (file, event, rule_file) in cases {
        let hit = records(file)
            .iter()
            .filter(|r| r["eventName"] == event)
            .any(|r| matches(&set, r).iter().any(|s| s.ends_with(rule_file)));
        assert!(
            hit,
            "{rule_file} did not fire on the {event} record of {file}"
        );
    }
    // The whole benign Control Tower capture raises nothing at medium or above.
    let cribl = corpus().join("cribl-aws-cloudtrail-logs");
    let mut loud = Vec::new();
    for entry in std::fs::read_dir(&cribl).unwrap().flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let relative = format!(
            "cribl-aws-cloudtrail-logs/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        for record in records(&relative) {
            set.for_each_match(&record, |rule, verdict| {
                if verdict.severity >= trailwarden_model::finding::Severity::Medium {
                    loud.push(format!("{} on {}", rule.rule_id, record["eventName"]));
                }
            });
        }
    }
    println!("SigmaHQ rules at medium+ on the cribl benign set: {loud:?}");
}
