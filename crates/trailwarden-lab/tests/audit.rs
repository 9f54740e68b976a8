//! The audit against a real moto: every technique of the catalog that shows in state,
//! applied through the SDK to its own account of a healthy estate, produces exactly its
//! findings; untouched accounts and regions produce none; unread targets are gaps.

use std::collections::{BTreeMap, BTreeSet};
use trailwarden_aws::snapshot::Snapshots;
use trailwarden_lab::attacks::TECHNIQUES;
use trailwarden_lab::{Lab, LabSpec};
use trailwarden_model::target::{AccountId, GapKind, RegionSelection};
use trailwarden_moto::Fault;
use trailwarden_posture::{AccountSnapshot, Settings, audit_account};

async fn read(lab: &Lab, regions: &RegionSelection, baseline: Option<&Snapshots>) -> Snapshots {
    lab.read_state(regions, baseline).await.1
}

/// The snapshot of `account` in a read. Checks look accounts up by the ids the test chose, not
/// by looping over what was read: an account that silently drops out of the read fails here
/// instead of passing unchecked.
fn snapshot_of<'a>(snapshots: &'a Snapshots, account: &str) -> &'a AccountSnapshot {
    snapshots
        .accounts
        .iter()
        .find(|a| a.account.as_str() == account)
        .unwrap_or_else(|| {
            let read: Vec<&str> = snapshots
                .accounts
                .iter()
                .map(|a| a.account.as_str())
                .collect();
            panic!("{account} is missing from the read (read: {read:?})")
        })
}

/// The ids of the lab's reachable member accounts.
fn reachable(lab: &Lab) -> Vec<String> {
    lab.description
        .accounts
        .iter()
        .filter(|a| a.reachable)
        .map(|a| a.id.clone())
        .collect()
}

/// What each technique must produce against moto (and nothing else).
fn expected(technique: &str) -> BTreeSet<&'static str> {
    let ids: &[&str] = match technique {
        "stop-logging" => &["trail-logging-stopped"],
        // Refused: the state does not change.
        "denied-stop-logging" => &[],
        "delete-trail" => &["trail-deleted"],
        // AWS also turns global events off with A3; moto keeps the flag as it was.
        "single-region" => &["trail-single-region"],
        "no-global-events" => &["trail-global-events-off"],
        "redirect-bucket" => &["trail-redirected"],
        "attacker-kms-key" => &["trail-kms-key-changed"],
        "validation-off" => &["trail-validation-off"],
        "detach-cloudwatch" => &["trail-cloudwatch-logs-changed"],
        "trail-sns-off" => &["trail-sns-changed"],
        "minimize" => &[
            "trail-single-region",
            "trail-global-events-off",
            "trail-validation-off",
            "trail-kms-key-changed",
            "trail-cloudwatch-logs-changed",
        ],
        "exclude-management-events" | "read-only-management" | "advanced-selectors-data-only" => {
            &["trail-management-events-excluded"]
        }
        "insights-off" => &["trail-insights-changed"],
        "unexpected-trail" => &["trail-unexpected"],
        "delete-bucket" => &["bucket-deleted"],
        "bucket-policy-deny" => &["bucket-policy-blocks-cloudtrail", "bucket-policy-changed"],
        "lifecycle-expiration" => &["bucket-lifecycle-expires-logs"],
        "bucket-notification" => &["bucket-notification-added"],
        "suspend-versioning" => &["bucket-versioning-suspended"],
        "bucket-acl-grant" => &["bucket-acl-changed"],
        "bucket-encryption-attacker-key" => &["bucket-encryption-changed"],
        "access-logging-off" => &["bucket-access-logging-changed"],
        "disable-key" => &["kms-key-disabled"],
        "schedule-key-deletion" => &["kms-key-pending-deletion"],
        "key-policy" => &["kms-key-policy-changed"],
        "delete-log-group" => &["cloudwatch-log-group-deleted"],
        "shorten-retention" => &["cloudwatch-log-group-retention-shortened"],
        "delete-metric-filter" => &["cloudwatch-log-group-filters-changed"],
        "mute-alarm" => &["cloudwatch-alarm-actions-disabled"],
        "delete-alarm" => &["cloudwatch-alarm-deleted"],
        "delete-alert-topic" => &["cloudwatch-sns-topic-deleted"],
        "unsubscribe-alerts" => &["cloudwatch-sns-subscription-removed"],
        "disable-guardduty" => &["detection-guardduty-detector-disabled"],
        "guardduty-trusted-ip" => &["detection-guardduty-trusted-ip-set-added"],
        "guardduty-suppression-filter" => &["detection-guardduty-suppression-filter-added"],
        "delete-guardduty" => &["detection-guardduty-detector-deleted"],
        "stop-config" => &["detection-config-recorder-stopped"],
        "narrow-config-recorder" => &["detection-config-recorder-narrowed"],
        "redirect-config-channel" => &["detection-config-delivery-channel-redirected"],
        "delete-config-recorder" => &["detection-config-recorder-deleted"],
        "delete-flow-logs" => &["sources-vpc-flow-logs-deleted"],
        other => panic!("no expectation for technique {other}: add one"),
    };
    ids.iter().copied().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_technique_produces_exactly_its_findings_and_untouched_accounts_none() {
    // One account per technique, plus one nobody touches.
    let lab = Lab::start(&LabSpec {
        accounts: TECHNIQUES.len() + 1,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let regions = RegionSelection::List(vec!["us-east-1".into(), "eu-west-1".into()]);
    let before = read(&lab, &regions, None).await;
    assert!(before.gaps.is_empty(), "{:?}", before.gaps);
    let settings = Settings::default();
    for account in reachable(&lab) {
        let s = snapshot_of(&before, &account);
        assert_eq!(
            audit_account(s, s, &settings),
            vec![],
            "healthy lab must audit clean"
        );
    }

    let mut victim: BTreeMap<AccountId, &str> = BTreeMap::new();
    for (n, technique) in TECHNIQUES.iter().enumerate() {
        let account = trailwarden_lab::account_id(n + 1);
        lab.attack(technique.id, &account)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", technique.id));
        victim.insert(account.parse().unwrap(), technique.id);
    }
    let untouched: AccountId = trailwarden_lab::account_id(TECHNIQUES.len() + 1)
        .parse()
        .unwrap();
    assert!(!victim.contains_key(&untouched));

    let after = read(&lab, &regions, Some(&before)).await;
    assert!(after.gaps.is_empty(), "{:?}", after.gaps);
    let mut failures = Vec::new();
    // Every victim with its technique's findings, and the untouched account with none.
    let checked = victim
        .iter()
        .map(|(account, technique)| (account, Some(*technique)))
        .chain([(&untouched, None)]);
    for (account, technique) in checked {
        let what = technique.unwrap_or("untouched");
        let Some(observed) = after.accounts.iter().find(|a| a.account == *account) else {
            failures.push(format!("{account} ({what}): missing from the read"));
            continue;
        };
        let baseline = snapshot_of(&before, account.as_str());
        let findings = audit_account(baseline, observed, &settings);
        let got: BTreeSet<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
        let want = technique.map(expected).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{account} ({what}): expected {want:?}, got {got:?}"
            ));
        }
        for f in &findings {
            assert_eq!(f.account, observed.account);
            assert!(f.resource.is_some() && f.technique.is_some(), "{f:?}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_targets_are_gaps_not_clean_and_not_false_findings() {
    let lab = Lab::start(&LabSpec {
        accounts: 2,
        denied_accounts: 1,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let regions = RegionSelection::List(vec!["us-east-1".into(), "eu-west-1".into()]);
    let before = read(&lab, &regions, None).await;
    // The denied account is a gap from the start.
    assert_eq!(before.gaps.len(), 1, "{:?}", before.gaps);
    assert_eq!(before.gaps[0].kind, GapKind::AccessDenied);

    // Now GuardDuty and the log bucket's policy are denied to the auditor.
    lab.proxy.add(
        Fault::error(403, "AccessDeniedException", "not authorized")
            .service("guardduty")
            .region("us-east-1"),
    );
    lab.proxy.add(
        Fault::error(403, "AccessDenied", "Access Denied")
            .service("s3")
            .operation("GetBucketPolicy"),
    );
    // And the alarm path: CloudWatch (its CBOR protocol) and the alert topic.
    lab.proxy
        .add(Fault::error(400, "AccessDenied", "not authorized").service("monitoring"));
    lab.proxy.add(
        Fault::error(403, "AuthorizationError", "not authorized")
            .service("sns")
            .operation("GetTopicAttributes"),
    );
    let after = read(&lab, &regions, Some(&before)).await;
    for op in [
        "cloudwatch:DescribeAlarmsForMetric",
        "sns:GetTopicAttributes",
    ] {
        assert!(
            after
                .gaps
                .iter()
                .any(|g| g.account.as_str() == "100000000001"
                    && g.operation == op
                    && g.kind == GapKind::AccessDenied),
            "{op}: {:?}",
            after.gaps
        );
    }
    // The log group itself was still read: only its alarms are a gap.
    let group = &snapshot_of(&after, "100000000001").log_groups;
    assert!(
        group.iter().any(|g| g.exists && g.alarms.is_none()),
        "{group:?}"
    );
    let ops: BTreeSet<(String, String)> = after
        .gaps
        .iter()
        .map(|g| (g.account.to_string(), g.operation.clone()))
        .collect();
    assert!(
        ops.contains(&("100000000001".into(), "guardduty:ListDetectors".into())),
        "{ops:?}"
    );
    assert!(
        ops.contains(&("100000000002".into(), "guardduty:ListDetectors".into())),
        "{ops:?}"
    );
    assert!(
        ops.contains(&("100000000003".into(), "sts:AssumeRole".into())),
        "{ops:?}"
    );
    assert!(
        after
            .gaps
            .iter()
            .any(|g| g.account.as_str() == "100000000001"
                && g.operation.starts_with("s3:")
                && g.kind == GapKind::AccessDenied),
        "{:?}",
        after.gaps
    );
    // What could not be read is not reported as deleted (in either reachable account).
    let settings = Settings::default();
    let accounts = reachable(&lab);
    assert_eq!(accounts, ["100000000001", "100000000002"]);
    for account in &accounts {
        let findings = audit_account(
            snapshot_of(&before, account),
            snapshot_of(&after, account),
            &settings,
        );
        assert_eq!(findings, vec![], "{account}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_trail_is_one_finding_not_one_per_region_and_other_regions_stay_quiet() {
    let lab = Lab::start(&LabSpec {
        accounts: 2,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let before = read(&lab, &RegionSelection::AllEnabled, None).await;
    assert!(before.gaps.is_empty(), "{:?}", before.gaps);
    lab.attack("stop-logging", "100000000001").await.unwrap();
    let after = read(&lab, &RegionSelection::AllEnabled, Some(&before)).await;
    let settings = Settings::default();
    // Both accounts: the attacked one and the untouched one.
    let findings: Vec<_> = reachable(&lab)
        .iter()
        .flat_map(|account| {
            audit_account(
                snapshot_of(&before, account),
                snapshot_of(&after, account),
                &settings,
            )
        })
        .collect();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].rule_id, "trail-logging-stopped");
    assert_eq!(findings[0].account.as_str(), "100000000001");
    assert_eq!(findings[0].region, "us-east-1");
    // The coverage matrix shows the blind regions all the same.
    let blind = trailwarden_posture::uncovered_regions(snapshot_of(&after, "100000000001"));
    assert_eq!(blind.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_combined_attack_on_one_account_is_found_whole() {
    // Detaching or deleting the trail must not hide what happened to its key and log group.
    let lab = Lab::start(&LabSpec {
        accounts: 1,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let regions = RegionSelection::List(vec!["us-east-1".into()]);
    let before = read(&lab, &regions, None).await;
    for t in [
        "delete-trail",
        "schedule-key-deletion",
        "delete-log-group",
        "lifecycle-expiration",
    ] {
        lab.attack(t, "100000000001").await.unwrap();
    }
    let after = read(&lab, &regions, Some(&before)).await;
    let findings = audit_account(
        &before.accounts[0],
        &after.accounts[0],
        &Settings::default(),
    );
    let got: BTreeSet<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
    assert_eq!(
        got,
        BTreeSet::from([
            "trail-deleted",
            "kms-key-pending-deletion",
            "cloudwatch-log-group-deleted",
            "bucket-lifecycle-expires-logs"
        ])
    );
}
