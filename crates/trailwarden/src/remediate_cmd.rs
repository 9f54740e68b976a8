//! `remediate`: plan → apply → verify → journal; and `journal`, which lists what was done.

use crate::args::{Format, GlobalArgs, JournalArgs, RemediateArgs};
use crate::exit;
use crate::output;
use crate::posture_cmd::{now, read_state};
use crate::targets;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::restore::apply;
use trailwarden_engine::journal::{Filter, Journal, NewEntry, Outcome};
use trailwarden_model::finding::{Finding, rfc3339};
use trailwarden_model::target::{AccountId, Gap};
use trailwarden_posture::plan::{Escalation, Plan, Step, plan};
use trailwarden_posture::{Baseline, audit_account};

/// What became of one finding.
#[derive(Debug, Serialize)]
pub struct Outcomes {
    pub finding: Finding,
    /// `restored`, `not-restored`, `escalated` or `planned` (dry run).
    pub result: &'static str,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub run: Option<String>,
    pub applied: bool,
    pub steps: Vec<PlannedStep>,
    pub results: Vec<Outcomes>,
    pub gaps: Vec<Gap>,
}

#[derive(Debug, Serialize)]
pub struct PlannedStep {
    account: AccountId,
    #[serde(flatten)]
    step: Step,
    /// After --apply: `applied` or the error.
    outcome: Option<String>,
}

pub async fn remediate(
    factory: &ClientFactory,
    g: &GlobalArgs,
    args: &RemediateArgs,
) -> Result<u8> {
    let format = output::choose(g.format);
    let baseline = Baseline::load(&args.baseline)?;
    let ids: Vec<AccountId> = baseline
        .accounts
        .iter()
        .map(|a| a.account.clone())
        .collect();
    let selection = targets::selection(g, Some(ids));
    // Open the journal before touching anything: no action without its record.
    let journal = if args.apply {
        let path = match &args.state {
            Some(p) => p.clone(),
            None => Journal::default_path()?,
        };
        Some(
            Journal::open(&path)
                .with_context(|| format!("opening the state store {}", path.display()))?,
        )
    } else {
        None
    };
    let report = restore(
        factory,
        g.quiet,
        &baseline,
        &selection,
        journal.as_ref(),
        args.verify_attempts,
    )
    .await?;
    output::print(&render(&report, format)?)?;
    let all_good = if report.applied {
        report.results.iter().all(|o| o.result == "restored") && report.gaps.is_empty()
    } else {
        report.results.is_empty() && report.gaps.is_empty()
    };
    Ok(if all_good { exit::OK } else { exit::FINDINGS })
}

/// Reads `selection`, audits it against `baseline`, and plans the restore; with a `journal`,
/// applies the plan, verifies by reading again (at most `verify_attempts` times) and
/// journals every action and verification. Used by `remediate` and by `watch`.
pub async fn restore(
    factory: &ClientFactory,
    quiet: bool,
    baseline: &Baseline,
    selection: &trailwarden_aws::fanout::Selection,
    journal: Option<&Journal>,
    verify_attempts: u32,
) -> Result<Report> {
    let settings = baseline.settings.clone();
    let (accounts, snapshots) = read_state(factory, selection, quiet, Some(baseline)).await?;
    let mut gaps = snapshots.gaps;
    let mut plans: BTreeMap<AccountId, (Vec<Finding>, Plan)> = BTreeMap::new();
    for observed in &snapshots.accounts {
        if let Some(want) = baseline.account(&observed.account) {
            let findings = audit_account(want, observed, &settings);
            let p = plan(want, observed, &findings);
            plans.insert(observed.account.clone(), (findings, p));
        }
    }
    let run = format!("run-{}-{}", now(), std::process::id());
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
            .collect::<Vec<_>>();
        return Ok(Report {
            run: None,
            applied: false,
            steps,
            results,
            gaps,
        });
    };

    // Apply: accounts one after another, steps in plan order.
    for planned in &mut steps {
        let Some(account) = accounts.iter().find(|a| a.id == planned.account) else {
            continue;
        };
        let result = apply(account, &planned.step).await;
        let (outcome, error) = match &result {
            Ok(()) => (Outcome::Applied, None),
            Err(gap) => (Outcome::Failed, Some(gap.to_string())),
        };
        journal.record(&NewEntry {
            run_id: run.clone(),
            time: rfc3339(now()),
            account: planned.account.to_string(),
            region: planned.step.region.clone(),
            resource: planned.step.resource.clone(),
            call: planned.step.action.name().to_owned(),
            parameters: serde_json::to_value(&planned.step.action)?,
            outcome,
            error: error.clone(),
            finding: Some(planned.step.answers.join(",")),
        })?;
        planned.outcome = Some(error.unwrap_or_else(|| "applied".into()));
    }

    // Verify: read again until every restored finding is gone, a bounded number of times.
    let touched: Vec<AccountId> = plans.keys().cloned().collect();
    let mut remaining: BTreeMap<AccountId, Vec<Finding>> = BTreeMap::new();
    if !steps.is_empty() {
        let verify_selection = trailwarden_aws::fanout::Selection {
            accounts: selection.accounts.clone().map(|_| touched.clone()),
            ..selection.clone()
        };
        for attempt in 0..verify_attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1 << attempt.min(4))).await;
            }
            let (_, again) = read_state(factory, &verify_selection, quiet, Some(baseline)).await?;
            remaining.clear();
            for observed in &again.accounts {
                if let Some(want) = baseline.account(&observed.account) {
                    remaining.insert(
                        observed.account.clone(),
                        audit_account(want, observed, &settings),
                    );
                }
            }
            let restorable_left = plans.iter().any(|(a, (_, p))| {
                remaining.get(a).is_some_and(|left| {
                    left.iter().any(|f| {
                        p.steps.iter().any(|s| {
                            s.answers.contains(&f.rule_id)
                                && f.resource.as_deref() == Some(s.resource.as_str())
                        })
                    })
                })
            });
            for gap in again.gaps {
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
            journal.record(&NewEntry {
                run_id: run.clone(),
                time: rfc3339(now()),
                account: account.to_string(),
                region: o.finding.region.clone(),
                resource: o.finding.resource.clone().unwrap_or_default(),
                call: "verify".into(),
                parameters: serde_json::json!({"rule_id": o.finding.rule_id}),
                outcome: if o.result == "restored" {
                    Outcome::Verified
                } else {
                    Outcome::NotRestored
                },
                error: (o.result != "restored").then(|| o.detail.clone()),
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

/// Each finding's fate: escalated (with the reason), or restored / not restored after apply
/// (`left` = what the audit still finds), or planned in a dry run.
fn classify(findings: &[Finding], p: &Plan, left: Option<&Vec<Finding>>) -> Vec<Outcomes> {
    findings
        .iter()
        .map(|f| {
            if let Some(Escalation { reason, .. }) = p.escalations.iter().find(|e| e.finding == *f)
            {
                return Outcomes {
                    finding: f.clone(),
                    result: "escalated",
                    detail: reason.clone(),
                };
            }
            let step = p.steps.iter().find(|s| {
                s.answers.contains(&f.rule_id) && f.resource.as_deref() == Some(s.resource.as_str())
            });
            let call = step.map(|s| s.action.name()).unwrap_or("-");
            match left {
                None => Outcomes {
                    finding: f.clone(),
                    result: "planned",
                    detail: call.to_owned(),
                },
                Some(left)
                    if left
                        .iter()
                        .any(|l| l.rule_id == f.rule_id && l.resource == f.resource) =>
                {
                    Outcomes {
                        finding: f.clone(),
                        result: "not-restored",
                        detail: format!("still found after {call} (see the step's outcome)"),
                    }
                }
                Some(_) => Outcomes {
                    finding: f.clone(),
                    result: "restored",
                    detail: call.to_owned(),
                },
            }
        })
        .collect()
}

fn render(report: &Report, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Jsonl => {
            let mut out = String::new();
            for s in &report.steps {
                out += &(serde_json::to_string(&serde_json::json!({"type": "step", "step": s}))?
                    + "\n");
            }
            for r in &report.results {
                out +=
                    &(serde_json::to_string(&serde_json::json!({"type": "result", "result": r}))?
                        + "\n");
            }
            for g in &report.gaps {
                out +=
                    &(serde_json::to_string(&serde_json::json!({"type": "gap", "gap": g}))? + "\n");
            }
            out
        }
        Format::Table | Format::Ocsf => render_table(report),
    })
}

fn render_table(report: &Report) -> String {
    let mut out = String::new();
    if report.steps.is_empty() && report.results.is_empty() {
        let _ = writeln!(out, "Nothing to restore: the state matches the baseline.");
    } else {
        let mut t = output::table(&[
            "Account", "Region", "Call", "Resource", "Answers", "Outcome",
        ]);
        for s in &report.steps {
            t.add_row(vec![
                s.account.to_string(),
                s.step.region.clone(),
                s.step.action.name().to_owned(),
                s.step.resource.clone(),
                s.step.answers.join(", "),
                s.outcome
                    .clone()
                    .unwrap_or_else(|| "planned (dry run: --apply to execute)".into()),
            ]);
        }
        let _ = writeln!(
            out,
            "{} step(s){}:\n{t}",
            report.steps.len(),
            report
                .run
                .as_deref()
                .map(|r| format!(" in {r}"))
                .unwrap_or_default()
        );
        let mut r = output::table(&[
            "Severity", "Account", "Region", "Finding", "Result", "Detail",
        ]);
        for o in &report.results {
            r.add_row(vec![
                o.finding.severity.to_string(),
                o.finding.account.to_string(),
                o.finding.region.clone(),
                o.finding.rule_id.clone(),
                o.result.to_owned(),
                o.detail.clone(),
            ]);
        }
        let _ = writeln!(out, "\nFindings:\n{r}");
    }
    for g in &report.gaps {
        let _ = writeln!(out, "  gap: {g}");
    }
    out
}

pub fn journal(g: &GlobalArgs, args: &JournalArgs) -> Result<u8> {
    let path = match &args.state {
        Some(p) => p.clone(),
        None => Journal::default_path()?,
    };
    let journal = Journal::open(&path)?;
    let entries = journal.list(&Filter {
        account: args.account.clone(),
        run_id: args.run.clone(),
        since: None,
        limit: Some(args.limit),
    })?;
    let text = match output::choose(g.format) {
        Format::Json => serde_json::to_string_pretty(&entries)? + "\n",
        Format::Jsonl => entries
            .iter()
            .map(|e| serde_json::to_string(e).map(|s| s + "\n"))
            .collect::<Result<String, _>>()?,
        Format::Table | Format::Ocsf => {
            let mut t = output::table(&[
                "Time", "Run", "Account", "Region", "Call", "Resource", "Outcome", "Finding",
                "Error",
            ]);
            for e in &entries {
                t.add_row(vec![
                    e.time.clone(),
                    e.run_id.clone(),
                    e.account.clone(),
                    e.region.clone(),
                    e.call.clone(),
                    e.resource.clone(),
                    e.outcome.to_string(),
                    e.finding.clone().unwrap_or_default(),
                    e.error.clone().unwrap_or_default(),
                ]);
            }
            format!(
                "{} entr{} in {}\n{t}\n",
                entries.len(),
                if entries.len() == 1 { "y" } else { "ies" },
                path.display()
            )
        }
    };
    output::print(&text)?;
    Ok(exit::OK)
}
