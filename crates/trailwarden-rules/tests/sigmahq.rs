//! SigmaHQ's published AWS CloudTrail rules load unmodified and fire on real records.
//! Needs `TRAILWARDEN_CORPUS` (CI sets it to `../shared/corpus`); fails loudly without it.

use serde_json::Value;
use trailwarden_rules::RuleSet;
use trailwarden_testkit::corpus;

fn matches(set: &RuleSet, record: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    set.for_each_match(record, |rule, _| ids.push(rule.source.clone()));
    ids
}

#[test]
fn every_sigmahq_aws_rule_loads_unmodified() {
    let dir = corpus::dir().join("sigmahq-aws/cloudtrail");
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
    let (set, _) = RuleSet::load_dir(&corpus::dir().join("sigmahq-aws/cloudtrail")).unwrap();
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
        let hit = corpus::records(file)
            .iter()
            .filter(|r| r["eventName"] == event)
            .any(|r| matches(&set, r).iter().any(|s| s.ends_with(rule_file)));
        assert!(
            hit,
            "{rule_file} did not fire on the {event} record of {file}"
        );
    }
    // The whole benign Control Tower capture raises nothing at medium or above.
    let mut loud = Vec::new();
    for path in corpus::record_files("cribl-aws-cloudtrail-logs") {
        for record in corpus::records(path) {
            set.for_each_match(&record, |rule, verdict| {
                if verdict.severity >= trailwarden_model::finding::Severity::Medium {
                    loud.push(format!("{} on {}", rule.rule_id, record["eventName"]));
                }
            });
        }
    }
    println!("SigmaHQ rules at medium+ on the cribl benign set: {loud:?}");
}
