//! `remediate`: plan → apply → verify → journal; and `journal`, which lists what was done.

use crate::args::{Format, GlobalArgs, JournalArgs, RemediateArgs};
use crate::exit;
use crate::output;
use crate::progress::Progress;
use crate::targets;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::sync::Arc;
use trailwarden_aws::ClientFactory;
use trailwarden_engine::guard::remember_own_sessions;
use trailwarden_engine::journal::{Filter, Journal};
use trailwarden_engine::respond::{Report, restore};
use trailwarden_model::outcome::Outcome;
use trailwarden_model::target::AccountId;

pub async fn remediate(
    factory: &ClientFactory,
    g: &GlobalArgs,
    args: &RemediateArgs,
) -> Result<u8> {
    let format = output::choose(g.format);
    let baseline =
        trailwarden_engine::pinned::load_baseline(&args.baseline, args.baseline_sha256.as_deref())?;
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
        let journal = Arc::new(
            Journal::open(&path)
                .with_context(|| format!("opening the state store {}", path.display()))?,
        );
        // The guard sharing this store knows this run's calls as trailwarden's own.
        remember_own_sessions(factory, journal.clone());
        Some(journal)
    } else {
        None
    };
    let progress = Progress::new(g.quiet, "resolving accounts and regions", 0);
    let report = restore(
        factory,
        &baseline,
        &selection,
        journal.as_deref(),
        args.verify_attempts,
        &progress.state_reader(),
    )
    .await?;
    progress.finish();
    output::print(&render(&report, format)?)?;
    let all_good = if report.applied {
        report.results.iter().all(|o| o.result == Outcome::Restored) && report.gaps.is_empty()
    } else {
        report.results.is_empty() && report.gaps.is_empty()
    };
    Ok(if all_good { exit::OK } else { exit::FINDINGS })
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
                o.result.to_string(),
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
