//! Restore against a real moto: every technique the catalog marks restorable, applied to its
//! own account of a healthy estate, is undone by plan + apply, and the audit is clean again;
//! a second plan is empty; an account nobody touched has nothing to restore throughout.

use std::collections::BTreeMap;
use trailwarden_aws::fanout::Account;
use trailwarden_aws::restore::apply;
use trailwarden_aws::snapshot::Snapshots;
use trailwarden_lab::attacks::TECHNIQUES;
use trailwarden_lab::{Lab, LabSpec};
use trailwarden_model::target::RegionSelection;
use trailwarden_posture::plan::{Remedy, plan, remedy};
use trailwarden_posture::{Settings, audit_account};

async fn read(lab: &Lab, baseline: Option<&Snapshots>) -> (Vec<Account>, Snapshots) {
    let regions = RegionSelection::List(vec!["us-east-1".into(), "eu-west-1".into()]);
    lab.read_state(&regions, baseline).await
}

/// The technique whose restore call moto cannot serve.
const UNTESTABLE: &str = "guardduty-trusted-ip";

/// Findings that state restore does not undo (escalated with a reason instead).
fn left_for_a_human(technique: &str) -> &'static [&'static str] {
    match technique {
        "unexpected-trail" => &["trail-unexpected"],
        _ => &[],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_restorable_technique_is_undone_and_a_second_plan_is_empty() {
    // One account per technique, plus one nobody touches.
    let lab = Lab::start(&LabSpec {
        accounts: TECHNIQUES.len() + 1,
        denied_accounts: 0,
        ..LabSpec::default()
    })
    .await
    .expect("lab");
    let (_, before) = read(&lab, None).await;
    let mut technique_of = BTreeMap::new();
    for (n, t) in TECHNIQUES.iter().enumerate() {
        let account = trailwarden_lab::account_id(n + 1);
        lab.attack(t.id, &account)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", t.id));
        technique_of.insert(account, t.id);
    }
    let untouched = trailwarden_lab::account_id(TECHNIQUES.len() + 1);
    assert!(!technique_of.contains_key(&untouched));
    let settings = Settings::default();
    let baseline_of = |id: &str| {
        before
            .accounts
            .iter()
            .find(|a| a.account.as_str() == id)
            .unwrap_or_else(|| panic!("{id} is missing from the read before the attacks"))
    };
    // The untouched account has nothing to audit or restore, before and after the others'
    // restores.
    let untouched_is_clean = |read: &Snapshots, when: &str| -> Option<String> {
        let Some(observed) = read
            .accounts
            .iter()
            .find(|a| a.account.as_str() == untouched)
        else {
            return Some(format!(
                "{untouched} (untouched) {when}: missing from the read"
            ));
        };
        let findings = audit_account(baseline_of(&untouched), observed, &settings);
        let steps = plan(baseline_of(&untouched), observed, &findings).steps;
        (!findings.is_empty() || !steps.is_empty()).then(|| {
            format!("{untouched} (untouched) {when}: findings {findings:?}, steps {steps:?}")
        })
    };

    // Checks go by the victims the test attacked, not by what the read returned: an account
    // missing from a read is a failure, not an account with nothing to check.
    let (accounts, tampered) = read(&lab, Some(&before)).await;
    let mut failures = Vec::new();
    for (id, technique) in &technique_of {
        let Some(observed) = tampered.accounts.iter().find(|a| a.account.as_str() == id) else {
            failures.push(format!(
                "{id} ({technique}): missing from the read after the attack"
            ));
            continue;
        };
        let findings = audit_account(baseline_of(id), observed, &settings);
        let p = plan(baseline_of(id), observed, &findings);
        let account = accounts.iter().find(|a| a.id == observed.account).unwrap();
        if *technique == UNTESTABLE {
            // moto has no GuardDuty IP sets (the lab fakes their listing): the plan is checked,
            // the call cannot be.
            let calls: Vec<&str> = p.steps.iter().map(|s| s.action.name()).collect();
            assert_eq!(calls, ["guardduty:UpdateIPSet"]);
            continue;
        }
        for step in &p.steps {
            // What `trailwarden techniques` reports as each check's restore is what the plan
            // calls.
            for answer in &step.answers {
                match remedy(answer) {
                    Remedy::Restores { calls } if calls.contains(&step.action.name()) => {}
                    other => failures.push(format!(
                        "{id} ({technique}): {} answers {answer}, whose remedy is {other:?}",
                        step.action.name()
                    )),
                }
            }
            if let Err(gap) = apply(account, step).await {
                failures.push(format!(
                    "{id} ({technique}): {} failed: {gap}",
                    step.action.name()
                ));
            }
        }
    }
    failures.extend(untouched_is_clean(&tampered, "after the attacks"));

    let (_, restored) = read(&lab, Some(&before)).await;
    for (id, technique) in &technique_of {
        if *technique == UNTESTABLE {
            continue;
        }
        let Some(observed) = restored.accounts.iter().find(|a| a.account.as_str() == id) else {
            failures.push(format!(
                "{id} ({technique}): missing from the read after the restore"
            ));
            continue;
        };
        let findings = audit_account(baseline_of(id), observed, &settings);
        let left: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
        if left != left_for_a_human(technique) {
            failures.push(format!("{id} ({technique}): still {left:?}"));
        }
        // The state read back equals the baseline: a re-created trail has the same name,
        // settings, selectors, Insights and tags, and logs.
        let want = baseline_of(id);
        for t in &want.trails {
            let mut got = observed.trails.iter().find(|o| o.arn == t.arn).cloned();
            if let Some(g) = got.as_mut() {
                g.delivery = None;
            }
            let mut expected = t.clone();
            expected.delivery = None;
            if got.as_ref() != Some(&expected) {
                failures.push(format!(
                    "{id} ({technique}): trail {} is {got:?}, not {expected:?}",
                    t.name
                ));
            }
        }
        let again = plan(baseline_of(id), observed, &findings);
        if !again.steps.is_empty() {
            failures.push(format!(
                "{id} ({technique}): second plan not empty: {:?}",
                again.steps
            ));
        }
    }
    failures.extend(untouched_is_clean(&restored, "after the restores"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
