//! The response: read the state, audit it against the baseline, plan the restore, and (with a
//! journal) apply it, verify it by reading again, and journal every step and verification.
//! `remediate`, the guard's targeted restores and its sweeps all go through [`restore`].

use crate::journal::{Journal, JournalError, NewEntry, StepOutcome};
use crate::state::{ReadProgress, read_state};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::fanout::{Selection, SelectionError};
use trailwarden_aws::restore::apply;
use trailwarden_model::clock;
use trailwarden_model::finding::Finding;
use trailwarden_model::outcome::Outcome;
use trailwarden_model::target::{AccountId, Gap};
use trailwarden_posture::plan::{Escalation, Plan, Step, plan};
use trailwarden_posture::{Baseline, audit_account};

/// What became of one finding of a restore.
#[derive(Debug, Clone, Serialize)]
pub struct FindingOutcome {
    pub finding: Finding,
    /// `restored`, `not-restored`, `escalated` or `planned` (dry run).
    pub result: Outcome,
    /// The call that answers it, why it is escalated, or why it is still found.
    pub detail: String,
}

/// Everything one restore did (or, in a dry run, would do).
#[derive(Debug, Serialize)]
pub struct Report {
    /// The journal's run id (applied runs only).
    pub run: Option<String>,
    pub applied: bool,
    pub steps: Vec<PlannedStep>,
    pub results: Vec<FindingOutcome>,
    pub gaps: Vec<Gap>,
}

impl Report {
    /// How many findings ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.results.iter().filter(|o| o.result == outcome).count()
    }

    /// The restore's one outcome, as it really was: restored only when a step changed state
    /// and the read afterwards verified it; a restore that found nothing to do is
    /// `already-good`, one that could only escalate is `escalated`.
    pub fn outcome(&self) -> Outcome {
        if self.count(Outcome::NotRestored) > 0 {
            Outcome::NotRestored
        } else if self.count(Outcome::Restored) > 0 {
            Outcome::Restored
        } else if self.count(Outcome::Planned) > 0 {
            Outcome::NotRemediating
        } else if self.count(Outcome::Escalated) > 0 {
            Outcome::Escalated
        } else {
            Outcome::AlreadyGood
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PlannedStep {
    pub account: AccountId,
    #[serde(flatten)]
    pub step: Step,
    /// After an apply: `applied` or the error.
    pub outcome: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// Nothing is applied without its record: a journal that cannot be written stops the run.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Reads `selection`, audits it against `baseline` and plans the restore; with a `journal`,
/// applies the plan (accounts one after another, steps in plan order), verifies by reading
/// again (at most `verify_attempts` times, backing off) and journals every step and
/// verification.
pub async fn restore(
    factory: &ClientFactory,
    baseline: &Baseline,
    selection: &Selection,
    journal: Option<&Journal>,
    verify_attempts: u32,
    progress: &(dyn Fn(ReadProgress) + Sync),
) -> Result<Report, RespondError> {
    let settings = &baseline.settings;
    let state = read_state(factory, selection, &baseline.accounts, progress).await?;
    let mut gaps = state.snapshots.gaps;
    let mut plans: BTreeMap<AccountId, (Vec<Finding>, Plan)> = BTreeMap::new();
    for observed in &state.snapshots.accounts {
        if let Some(want) = baseline.account(&observed.account) {
            let findings = audit_account(want, observed, settings);
            let p = plan(want, observed, &findings);
            plans.insert(observed.account.clone(), (findings, p));
        }
    }
    let mut steps: Vec<PlannedStep> = plans
        .iter()
        .flat_map(|(account, (_, p))| {
            p.steps.iter().map(|s| PlannedStep {
                account: account.clone(),
                step: s.clone(),
                outcome: None,
            })
        })
        .collect();

    let Some(journal) = journal else {
        let results = plans
            .values()
            .flat_map(|(findings, p)| classify(findings, p, None))
            .collect();
        return Ok(Report {
            run: None,
            applied: false,
            steps,
            results,
            gaps,
        });
    };

    let run = format!("run-{}-{}", clock::now(), std::process::id());
    for planned in &mut steps {
        let Some(account) = state.accounts.iter().find(|a| a.id == planned.account) else {
            continue;
        };
        let result = apply(account, &planned.step).await;
        let (outcome, error) = match &result {
            Ok(()) => (StepOutcome::Applied, None),
            Err(gap) => (StepOutcome::Failed, Some(gap.to_string())),
        };
        journal.record(&NewEntry {
            run_id: run.clone(),
            time: clock::now_rfc3339(),
            account: planned.account.to_string(),
            region: planned.step.region.clone(),
            resource: planned.step.resource.clone(),
            call: planned.step.action.name().to_owned(),
            parameters: serde_json::to_value(&planned.step.action)
                .unwrap_or(serde_json::Value::Null),
            outcome,
            error: error.clone(),
            finding: Some(planned.step.answers.join(",")),
        })?;
        planned.outcome = Some(error.unwrap_or_else(|| "applied".into()));
    }

    // Verify: read again until no restored finding is left, a bounded number of times.
    let mut remaining: BTreeMap<AccountId, Vec<Finding>> = BTreeMap::new();
    if !steps.is_empty() {
        let touched: Vec<AccountId> = plans.keys().cloned().collect();
        // Only the accounts restored are read again (no second organization discovery).
        let listed = selection.accounts.is_some() || selection.organization.is_some();
        let verify_selection = Selection {
            accounts: listed.then_some(touched),
            organization: None,
            ..selection.clone()
        };
        for attempt in 0..verify_attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1 << attempt.min(4))).await;
            }
            let again =
                read_state(factory, &verify_selection, &baseline.accounts, progress).await?;
            remaining.clear();
            for observed in &again.snapshots.accounts {
                if let Some(want) = baseline.account(&observed.account) {
                    remaining.insert(
                        observed.account.clone(),
                        audit_account(want, observed, settings),
                    );
                }
            }
            let restorable_left = plans.iter().any(|(a, (_, p))| {
                remaining
                    .get(a)
                    .is_some_and(|left| left.iter().any(|f| answering_step(p, f).is_some()))
            });
            for gap in again.snapshots.gaps {
                if !gaps.contains(&gap) {
                    gaps.push(gap);
                }
            }
            if !restorable_left {
                break;
            }
        }
    }
    let mut results = Vec::new();
    for (account, (findings, p)) in &plans {
        let left = remaining.get(account).cloned().unwrap_or_else(|| {
            if steps.is_empty() {
                findings.clone()
            } else {
                Vec::new()
            }
        });
        for o in classify(findings, p, Some(&left)) {
            let restored = o.result == Outcome::Restored;
            journal.record(&NewEntry {
                run_id: run.clone(),
                time: clock::now_rfc3339(),
                account: account.to_string(),
                region: o.finding.region.clone(),
                resource: o.finding.resource.clone().unwrap_or_default(),
                call: "verify".into(),
                parameters: serde_json::json!({"rule_id": o.finding.rule_id}),
                outcome: if restored {
                    StepOutcome::Verified
                } else {
                    StepOutcome::NotRestored
                },
                error: (!restored).then(|| o.detail.clone()),
                finding: Some(o.finding.rule_id.clone()),
            })?;
            results.push(o);
        }
    }
    Ok(Report {
        run: Some(run),
        applied: true,
        steps,
        results,
        gaps,
    })
}

/// The plan's step that restores `finding`, if any.
fn answering_step<'p>(p: &'p Plan, finding: &Finding) -> Option<&'p Step> {
    p.steps.iter().find(|s| {
        s.answers.contains(&finding.rule_id) && finding.resource.as_deref() == Some(&s.resource)
    })
}

/// Each finding's fate: escalated (with the reason), or restored / not restored after an
/// apply (`left`: what the audit still finds), or planned in a dry run.
fn classify(findings: &[Finding], p: &Plan, left: Option<&Vec<Finding>>) -> Vec<FindingOutcome> {
    findings
        .iter()
        .map(|f| {
            if let Some(Escalation { reason, .. }) = p.escalations.iter().find(|e| e.finding == *f)
            {
                return FindingOutcome {
                    finding: f.clone(),
                    result: Outcome::Escalated,
                    detail: reason.clone(),
                };
            }
            let call = answering_step(p, f).map_or("-", |s| s.action.name());
            let (result, detail) = match left {
                None => (Outcome::Planned, call.to_owned()),
                Some(left)
                    if left
                        .iter()
                        .any(|l| l.rule_id == f.rule_id && l.resource == f.resource) =>
                {
                    (
                        Outcome::NotRestored,
                        format!("still found after {call} (see the step's outcome)"),
                    )
                }
                Some(_) => (Outcome::Restored, call.to_owned()),
            };
            FindingOutcome {
                finding: f.clone(),
                result,
                detail,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(results: &[Outcome]) -> Report {
        let finding: Finding = match serde_json::from_value(serde_json::json!({
            "rule_id": "trail-logging-stopped", "severity": "critical", "title": "stopped",
            "account": "111111111111", "region": "us-east-1", "remediable": true
        })) {
            Ok(f) => f,
            Err(e) => panic!("a finding: {e}"),
        };
        Report {
            run: Some("run-1".into()),
            applied: true,
            steps: Vec::new(),
            results: results
                .iter()
                .map(|&result| FindingOutcome {
                    finding: finding.clone(),
                    result,
                    detail: String::new(),
                })
                .collect(),
            gaps: Vec::new(),
        }
    }

    #[test]
    fn an_applied_restore_that_changed_nothing_is_not_called_restored() {
        assert_eq!(report(&[]).outcome(), Outcome::AlreadyGood);
        assert_eq!(report(&[Outcome::Escalated]).outcome(), Outcome::Escalated);
        assert_eq!(
            report(&[Outcome::Escalated, Outcome::Restored]).outcome(),
            Outcome::Restored
        );
        assert_eq!(
            report(&[Outcome::Restored, Outcome::NotRestored]).outcome(),
            Outcome::NotRestored
        );
        assert_eq!(
            report(&[Outcome::Planned]).outcome(),
            Outcome::NotRemediating
        );
    }
}
