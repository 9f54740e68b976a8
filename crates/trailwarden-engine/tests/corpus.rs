//! The built-in rule pack against real third-party records (`$TRAILWARDEN_CORPUS`, see its
//! MANIFEST.md): every Stratus Red Team defense-evasion detonation and every positive Panther
//! test of a tampering rule is flagged; the benign sets raise nothing at medium or above.
//! Fails loudly when the corpus is absent. Run with `--nocapture` to see the counts.

use std::collections::BTreeMap;
use std::path::Path;
use trailwarden_engine::scan::{Input, ScanOptions, SourceResult, scan_input};
use trailwarden_model::finding::Severity;
use trailwarden_rules::RuleSet;
use trailwarden_testkit::corpus;

/// The Panther rules whose positive tests are tampering (the list).
const PANTHER_TAMPER_RULES: &[&str] = &[
    "AWS.CloudTrail.Stopped",
    "AWS.CloudTrail.EventSelectorsDisabled",
    "AWS.CloudTrail.ShortLifecycle",
    "AWS.CloudTrail.SecurityConfigurationChange",
    "AWS.ConfigService.DisabledDeleted",
    "AWS.CloudTrail.DNSLogsDeleted",
    "AWS.VPCFlow.LogsDeleted",
    "AWS.KMS.CustomerManagedKeyLoss",
    "AWS.S3.DisableBucketLogging",
    "AWS.S3.SecurityControlDisabling",
    "AWS.S3.SuspendVersioning",
    "AWS.S3.DisableMfaDelete",
    "AWS.S3.DeleteBucketEncryption",
    "AWS.S3.DeleteBucketReplication",
    "AWS.S3.DeletePublicAccessBlock",
    "AWS.S3.BucketDeleted",
    "AWS.S3.BucketPolicyModified",
    "AWS.CloudTrail.AttemptToLeaveOrg",
    "AWS.IPSet.Modified",
    "AWS.Macie.Evasion",
    "AWS.SecurityHub.Finding.Evasion",
    "AWS.WAF.Disassociation",
    "AWS.Bedrock.DeleteModelInvocationLoggingConfiguration",
    "AWS.RDS.ActivityStreamStopped",
];

/// Stratus defense-evasion detonations and the call each one is about.
const STRATUS: &[(&str, &str)] = &[
    ("aws.defense-evasion.cloudtrail-stop.json", "StopLogging"),
    ("aws.defense-evasion.cloudtrail-delete.json", "DeleteTrail"),
    (
        "aws.defense-evasion.cloudtrail-event-selectors.json",
        "PutEventSelectors",
    ),
    (
        "aws.defense-evasion.vpc-remove-flow-logs.json",
        "DeleteFlowLogs",
    ),
    (
        "aws.defense-evasion.dns-delete-logs.json",
        "DeleteResolverQueryLogConfig",
    ),
    (
        "aws.defense-evasion.organizations-leave.json",
        "LeaveOrganization",
    ),
];

fn pack() -> RuleSet {
    RuleSet::built_in().unwrap_or_else(|e| panic!("{e:?}"))
}

fn scan_file(rules: &RuleSet, path: &Path) -> SourceResult {
    let result = scan_input(Input::File(path.to_owned()), rules, &ScanOptions::default());
    assert!(
        result.errors.is_empty(),
        "{}: {:?}",
        path.display(),
        result.errors
    );
    result
}

#[test]
fn every_stratus_defense_evasion_detonation_is_flagged() {
    let rules = pack();
    let dir = corpus::dir().join(corpus::STRATUS_DETONATIONS);
    for (file, event) in STRATUS {
        let result = scan_file(&rules, &dir.join(file));
        let records = corpus::records(dir.join(file));
        let calls: Vec<&str> = records
            .iter()
            .filter(|r| r["eventName"] == *event)
            .map(|r| r["eventID"].as_str().unwrap_or_default())
            .collect();
        assert!(!calls.is_empty(), "{file} has no {event}");
        for id in &calls {
            let hit = result
                .findings
                .iter()
                .any(|f| f.event.as_ref().and_then(|e| e.event_id.as_deref()) == Some(id));
            assert!(hit, "{file}: the {event} record {id} raised no finding");
        }
        let rules_hit: Vec<&str> = result.findings.iter().map(|f| f.rule_id.as_str()).collect();
        println!(
            "stratus {file}: {} {event} record(s) flagged by {rules_hit:?}",
            calls.len()
        );
    }
}

#[test]
fn every_positive_panther_tamper_test_is_flagged() {
    let rules = pack();
    let dir = corpus::dir().join("panther-analysis");
    let rows = corpus::manifest("panther-analysis");
    let mut flagged: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut missed = Vec::new();
    let mut negatives_flagged = Vec::new();
    for row in &rows {
        let rule = row["rule_id"].as_str();
        if !PANTHER_TAMPER_RULES.contains(&rule) {
            continue;
        }
        let result = scan_file(&rules, &dir.join(&row["file"]));
        let loud = result
            .findings
            .iter()
            .any(|f| f.severity >= Severity::Medium);
        if row["expected_result"] == "True" {
            let entry = flagged.entry(rule).or_default();
            entry.1 += 1;
            if result.findings.is_empty() {
                missed.push(row["file"].clone());
            } else {
                entry.0 += 1;
            }
        } else if loud {
            let ids: Vec<_> = result.findings.iter().map(|f| f.rule_id.clone()).collect();
            negatives_flagged.push(format!("{} {ids:?}", row["file"]));
        }
    }
    for (rule, (hit, all)) in &flagged {
        println!("panther {rule}: {hit}/{all} positive tests flagged");
    }
    println!(
        "panther negatives of these rules flagged at medium or above ({}; a Panther negative is that rule's verdict, not always benign): {negatives_flagged:#?}",
        negatives_flagged.len()
    );
    assert_eq!(
        flagged.len(),
        PANTHER_TAMPER_RULES.len(),
        "rules without positive tests in the corpus: {:?}",
        PANTHER_TAMPER_RULES
            .iter()
            .filter(|r| !flagged.contains_key(*r))
            .collect::<Vec<_>>()
    );
    assert!(
        missed.is_empty(),
        "positive Panther tests not flagged: {missed:#?}"
    );
}

#[test]
fn the_benign_sets_raise_nothing_at_medium_or_above() {
    let rules = pack();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut loud = Vec::new();
    let mut records = 0;
    for set in ["cribl-aws-cloudtrail-logs", "otrf-security-datasets"] {
        for path in corpus::record_files(set) {
            let result = scan_file(&rules, &path);
            records += result.records;
            for f in &result.findings {
                *counts
                    .entry(format!("{} {}", f.rule_id, f.severity))
                    .or_default() += 1;
                if f.severity >= Severity::Medium {
                    loud.push(format!(
                        "{}: {} ({})",
                        path.display(),
                        f.rule_id,
                        f.severity
                    ));
                }
            }
        }
    }
    println!("benign sets: {records} records; findings below medium: {counts:?}");
    assert!(records >= 300, "only {records} benign records read");
    assert!(
        loud.is_empty(),
        "benign records flagged at medium or above: {loud:#?}"
    );
}
