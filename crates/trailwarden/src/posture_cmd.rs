//! `baseline capture` and `audit`: read the state snapshot, write it as the baseline or
//! compare it with the baseline.

use crate::args::{AuditArgs, CaptureArgs, Format, GlobalArgs};
use crate::exit;
use crate::output;
use crate::progress::Progress;
use crate::targets;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::fanout::{Selection, Skipped};
use trailwarden_engine::forwarding::Forwarding;
use trailwarden_engine::state::{self, State};
use trailwarden_model::clock;
use trailwarden_model::finding::Finding;
use trailwarden_model::target::{AccountId, Gap, GapKind, RegionSelection};
use trailwarden_posture::estate::{EstateView, audit_estate};
use trailwarden_posture::{AccountSnapshot, Baseline, audit_account, coverage_matrix};

/// Resolves the selection and reads every account's snapshot, with a progress bar.
pub async fn read_state(
    factory: &ClientFactory,
    selection: &Selection,
    quiet: bool,
    baseline: Option<&Baseline>,
) -> Result<State> {
    let progress = Progress::new(quiet, "resolving accounts and regions", 0);
    let state = state::read_state(
        factory,
        selection,
        baseline.map_or(&[][..], |b| &b.accounts),
        &progress.state_reader(),
    )
    .await?;
    progress.finish();
    Ok(state)
}

pub async fn capture(factory: &ClientFactory, g: &GlobalArgs, args: &CaptureArgs) -> Result<u8> {
    let selection = targets::selection(g, None);
    let State {
        snapshots,
        not_enabled,
        organization,
        skipped,
        ..
    } = read_state(factory, &selection, g.quiet, None).await?;
    for region in &not_enabled {
        eprintln!("note: {}", not_enabled_line(region));
    }
    for account in &skipped {
        eprintln!("note: {}", skipped_line(account));
    }
    if !snapshots.gaps.is_empty() {
        eprint!("{}", gap_lines(&snapshots.gaps));
        if !args.allow_gaps {
            bail!(
                "baseline not written: {} target(s) could not be read, so the baseline would silently leave them out. Fix the access, or pass --allow-gaps",
                snapshots.gaps.len()
            );
        }
    }
    if snapshots.accounts.is_empty() {
        bail!("baseline not written: no account could be read");
    }
    // Posture problems at capture time are declared good by the capture: say so loudly.
    let captured = state::capture(
        snapshots.accounts,
        organization.as_ref(),
        &format!("trailwarden {}", env!("CARGO_PKG_VERSION")),
    );
    for warning in &captured.warnings {
        eprintln!("warning: {warning}");
    }
    let mut baseline = captured.baseline;
    // What a human wrote into the file being replaced (thresholds, defaults for new
    // accounts) is theirs: keep it.
    if args.out.exists() {
        match Baseline::load(&args.out) {
            Ok(previous) => {
                baseline.settings = previous.settings;
                baseline.defaults = previous.defaults;
                eprintln!(
                    "note: kept the settings and defaults of the baseline being replaced ({})",
                    args.out.display()
                );
            }
            Err(e) => eprintln!(
                "warning: the file being replaced is not a baseline trailwarden can read ({e}); its settings and defaults are not carried over"
            ),
        }
    }
    let text = baseline.to_toml()?;
    let tmp = args.out.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    let count = |f: fn(&AccountSnapshot) -> usize| baseline.accounts.iter().map(f).sum::<usize>();
    eprintln!(
        "baseline written to {}: {} account(s), {} trail(s), {} bucket(s), {} key(s), {} log group(s), {} detector(s), {} Config recorder(s), {} flow log(s)",
        args.out.display(),
        baseline.accounts.len(),
        count(|a| a.trails.len()),
        count(|a| a.buckets.len()),
        count(|a| a.keys.len()),
        count(|a| a.log_groups.len()),
        count(|a| a
            .services
            .values()
            .filter(|s| s.guardduty.is_some())
            .count()),
        count(|a| a
            .services
            .values()
            .filter(|s| s.config_recorder.is_some())
            .count()),
        count(|a| a.services.values().map(|s| s.flow_logs.len()).sum()),
    );
    Ok(exit::OK)
}

#[derive(Debug, Serialize)]
struct AuditReport {
    baseline: String,
    accounts: Vec<AccountCoverage>,
    findings: Vec<Finding>,
    gaps: Vec<Gap>,
    /// Named regions not enabled for an account: nothing can happen there, so no gap.
    not_enabled: Vec<Gap>,
    /// Accounts left out on purpose: excluded, or not active in the organization.
    skipped: Vec<Skipped>,
}

#[derive(Debug, Serialize)]
struct AccountCoverage {
    account: AccountId,
    /// Region → covered by a logging trail that records every management event.
    coverage: BTreeMap<String, bool>,
}

pub async fn audit(factory: &ClientFactory, g: &GlobalArgs, args: &AuditArgs) -> Result<u8> {
    let format = output::choose(g.format);
    let baseline =
        trailwarden_engine::pinned::load_baseline(&args.baseline, args.baseline_sha256.as_deref())?;
    let mut settings = baseline.settings.clone();
    if let Some(age) = args.max_delivery_age {
        settings.max_delivery_age_minutes = age.as_secs().div_ceil(60);
    }
    let baseline_ids: Vec<AccountId> = baseline
        .accounts
        .iter()
        .map(|a| a.account.clone())
        .collect();
    let selection = targets::selection(g, Some(baseline_ids));
    let forwarding = match &args.event_bus_arn {
        Some(bus) => Some(Forwarding::new(
            &crate::rules_cmd::load(&args.source)?,
            bus,
            None,
        )?),
        None => None,
    };
    let State {
        accounts: resolved,
        snapshots,
        not_enabled,
        organization,
        skipped,
    } = read_state(factory, &selection, g.quiet, Some(&baseline)).await?;
    // Enabled regions are only known completely when every one was asked for.
    let enabled_regions: BTreeMap<AccountId, Vec<String>> = match g.regions {
        RegionSelection::AllEnabled => resolved
            .iter()
            .map(|a| (a.id.clone(), a.regions.clone()))
            .collect(),
        RegionSelection::List(_) => BTreeMap::new(),
    };
    let mut gaps = snapshots.gaps;
    let mut findings = Vec::new();
    if let Some(forwarding) = &forwarding {
        let (drifted, mut unread) = forwarding
            .check(&resolved, usize::from(g.concurrency))
            .await;
        findings.extend(drifted);
        gaps.append(&mut unread);
    }
    findings.extend(audit_estate(
        &baseline,
        &EstateView {
            membership: organization.as_ref(),
            excluded: &g.exclude_accounts,
            enabled_regions: &enabled_regions,
            home_region: factory.home_region(),
            observed: &snapshots.accounts,
        },
    ));
    let mut accounts = Vec::new();
    for observed in &snapshots.accounts {
        accounts.push(AccountCoverage {
            account: observed.account.clone(),
            coverage: coverage_matrix(observed),
        });
        match baseline.account(&observed.account) {
            Some(want) => findings.extend(audit_account(want, observed, &settings)),
            // Checked above against the baseline's defaults, or reported as unguarded.
            None if organization.is_some() || baseline.defaults.is_some() => {}
            None => gaps.push(Gap {
                account: observed.account.clone(),
                region: None,
                operation: "baseline".into(),
                kind: GapKind::ServiceError,
                code: None,
                message: format!(
                    "account is not in {}; capture it with `trailwarden baseline capture` before auditing it",
                    args.baseline.display()
                ),
            }),
        }
    }
    findings.sort_by(|a, b| {
        (b.severity, &a.account, &a.region, &a.rule_id)
            .cmp(&(a.severity, &b.account, &b.region, &b.rule_id))
    });
    let report = AuditReport {
        baseline: args.baseline.display().to_string(),
        accounts,
        findings,
        gaps,
        not_enabled,
        skipped,
    };
    output::print(&render(&report, format)?)?;
    Ok(if report.findings.is_empty() && report.gaps.is_empty() {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

fn render(report: &AuditReport, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Jsonl => {
            let mut out = String::new();
            for f in &report.findings {
                out += &output::tagged("finding", f)?;
            }
            for gap in &report.gaps {
                out += &output::tagged("gap", gap)?;
            }
            for account in &report.skipped {
                out += &output::tagged("skipped", account)?;
            }
            out
        }
        Format::Ocsf => {
            let time = clock::now_millis();
            let mut out = String::new();
            for f in &report.findings {
                out += &serde_json::to_string(&f.to_ocsf(time, env!("CARGO_PKG_VERSION")))?;
                out.push('\n');
            }
            out
        }
        Format::Table => render_table(report),
    })
}

fn compact(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "-".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 80 {
                format!(
                    "{}…",
                    &s[..s.char_indices().nth(79).map(|(i, _)| i).unwrap_or(s.len())]
                )
            } else {
                s
            }
        }
    }
}

/// `us-east-1` → `use1`, `ap-southeast-2` → `apse2`: short enough for a matrix column.
fn short_region(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    let mut out = parts.first().copied().unwrap_or("").to_owned();
    for word in &parts[1..parts.len().saturating_sub(1)] {
        for dir in ["north", "south", "east", "west", "central"] {
            if word.contains(dir) {
                out.push(dir.chars().next().unwrap_or('?'));
            }
        }
        if !["north", "south", "east", "west", "central"]
            .iter()
            .any(|d| word.contains(d))
        {
            out.push_str(word);
        }
    }
    out + parts.last().copied().unwrap_or("")
}

fn render_table(report: &AuditReport) -> String {
    let mut out = String::new();
    let by_severity = report.findings.iter().fold(BTreeMap::new(), |mut m, f| {
        *m.entry(std::cmp::Reverse(f.severity)).or_insert(0) += 1;
        m
    });
    let summary: Vec<String> = by_severity
        .iter()
        .map(|(s, n)| format!("{n} {}", s.0))
        .collect();
    let affected: BTreeSet<&AccountId> = report.findings.iter().map(|f| &f.account).collect();
    if report.findings.is_empty() {
        let _ = writeln!(out, "No findings: the state matches {}.", report.baseline);
    } else {
        let _ = writeln!(
            out,
            "Findings: {} ({}) in {} of {} account(s)",
            report.findings.len(),
            summary.join(", "),
            affected.len(),
            report.accounts.len()
        );
        let mut table = output::table(&[
            "Severity", "Account", "Region", "Check", "Finding", "Resource", "Expected", "Actual",
        ]);
        for f in &report.findings {
            table.add_row(vec![
                f.severity.to_string(),
                f.account.to_string(),
                f.region.clone(),
                format!("{} ({})", f.rule_id, f.technique.as_deref().unwrap_or("-")),
                f.title.clone(),
                f.resource.clone().unwrap_or_default(),
                compact(&f.expected),
                compact(&f.actual),
            ]);
        }
        let _ = writeln!(out, "{table}");
    }

    let regions: BTreeSet<&String> = report
        .accounts
        .iter()
        .flat_map(|a| a.coverage.keys())
        .collect();
    if !regions.is_empty() {
        let mut header = vec!["Account".to_owned()];
        header.extend(regions.iter().map(|r| short_region(r)));
        let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut matrix = output::table(&header_refs);
        for a in &report.accounts {
            let mut row = vec![a.account.to_string()];
            for r in &regions {
                row.push(match a.coverage.get(*r) {
                    Some(true) => "✓".into(),
                    Some(false) => "✗".into(),
                    None => "?".into(),
                });
            }
            matrix.add_row(row);
        }
        let _ = writeln!(
            out,
            "\nCoverage: ✓ a logging trail records every management event there, ✗ none does, ? not read\n{matrix}"
        );
    }
    for region in &report.not_enabled {
        let _ = writeln!(out, "  note: {}", not_enabled_line(region));
    }
    for account in &report.skipped {
        let _ = writeln!(out, "  note: {}", skipped_line(account));
    }
    if !report.gaps.is_empty() {
        let _ = write!(
            out,
            "\nNot audited ({} target(s)); this is not a clean result:\n{}",
            report.gaps.len(),
            gap_lines(&report.gaps)
        );
    }
    out
}

/// "account 1… region me-south-1: not enabled (nothing can happen there); enabled: …".
fn not_enabled_line(g: &Gap) -> String {
    format!(
        "account {} region {}: {}",
        g.account,
        g.region.as_deref().unwrap_or("-"),
        g.message
    )
}

/// "account 1…: skipped, SUSPENDED in the organization: …".
pub fn skipped_line(s: &Skipped) -> String {
    format!("account {}: skipped, {}", s.account, s.reason)
}

fn gap_lines(gaps: &[Gap]) -> String {
    gaps.iter().map(|g| format!("  gap: {g}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::short_region;

    #[test]
    fn short_regions() {
        assert_eq!(short_region("us-east-1"), "use1");
        assert_eq!(short_region("ap-southeast-2"), "apse2");
        assert_eq!(short_region("eu-central-1"), "euc1");
        assert_eq!(short_region("us-gov-west-1"), "usgovw1");
    }
}
