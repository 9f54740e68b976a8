//! `trailwarden trails`: the trail inventory of the selected accounts × regions.

use crate::args::{Format, GlobalArgs};
use crate::exit;
use crate::output;
use crate::progress::Progress;
use anyhow::{Result, bail};
use serde::Serialize;
use std::fmt::Write as _;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::fanout::{self, Skipped};
use trailwarden_aws::trails::{Inventory, Step, inventory};
use trailwarden_model::target::{AccountId, Gap};
use trailwarden_model::trail::{Trail, uncovered_regions};

/// Per-account summary of what was read.
#[derive(Debug, Serialize)]
struct AccountReport {
    account: AccountId,
    principal: String,
    regions_selected: Vec<String>,
    regions_read: Vec<String>,
    /// Read regions that no logging trail covers.
    uncovered_regions: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    accounts: Vec<AccountReport>,
    trails: Vec<Trail>,
    gaps: Vec<Gap>,
    /// Accounts left out on purpose: excluded, or not active in the organization.
    skipped: Vec<Skipped>,
}

pub async fn run(factory: &ClientFactory, g: &GlobalArgs) -> Result<u8> {
    let format = output::choose(g.format);
    if format == Format::Ocsf {
        bail!("--format ocsf is for findings; the trail inventory has none (use json or jsonl)");
    }
    let selection = crate::targets::selection(g, None);
    let progress = Progress::new(g.quiet, "resolving accounts", 0);
    let resolution = fanout::resolve(factory, &selection).await?;
    let cells: usize = resolution.accounts.iter().map(|a| a.regions.len()).sum();
    progress.set_message(&format!(
        "reading trails of {} account(s)",
        resolution.accounts.len()
    ));
    progress.add_work(cells as u64);
    let on_step = |step: Step| {
        if step == Step::Status {
            progress.add_work(1);
        }
        progress.step();
    };
    let Inventory {
        trails,
        regions_read,
        gaps,
    } = inventory(&resolution.accounts, selection.concurrency, &on_step).await;
    progress.finish();

    let mut all_gaps = resolution.gaps;
    all_gaps.extend(gaps);
    let accounts = resolution
        .accounts
        .iter()
        .map(|account| {
            let read = regions_read.get(&account.id).cloned().unwrap_or_default();
            let own: Vec<Trail> = trails
                .iter()
                .filter(|t| t.account == account.id)
                .cloned()
                .collect();
            AccountReport {
                account: account.id.clone(),
                principal: account.principal_arn.clone(),
                regions_selected: account.regions.clone(),
                uncovered_regions: uncovered_regions(&own, read.iter().map(String::as_str)),
                regions_read: read,
            }
        })
        .collect();
    let report = Report {
        accounts,
        trails,
        gaps: all_gaps,
        skipped: resolution.skipped,
    };
    output::print(&render(&report, format)?)?;
    Ok(if report.gaps.is_empty() {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

fn render(report: &Report, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Jsonl => {
            let mut out = String::new();
            for account in &report.accounts {
                out += &output::tagged("account", account)?;
            }
            for trail in &report.trails {
                out += &output::tagged("trail", trail)?;
            }
            for gap in &report.gaps {
                out += &output::tagged("gap", gap)?;
            }
            for account in &report.skipped {
                out += &output::tagged("skipped", account)?;
            }
            out
        }
        Format::Table | Format::Ocsf => render_table(report),
    })
}

fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let mut table = output::table(&[
        "Account",
        "Trail",
        "Home region",
        "Scope",
        "Seen in",
        "Logging",
        "Bucket/prefix",
        "Validation",
        "KMS",
    ]);
    for trail in &report.trails {
        let v = &trail.view;
        let mut scope = if v.is_multi_region {
            "multi-region".to_owned()
        } else {
            "single-region".to_owned()
        };
        if v.is_organization {
            scope += ", organization";
        }
        if trail.is_foreign() {
            scope += &format!(" (owned by {})", v.owner_account().unwrap_or("?"));
        }
        let logging = match &trail.status {
            Some(s) if s.is_logging => match &s.latest_delivery_error {
                Some(err) => format!("yes, delivery failing: {err}"),
                None => "yes".to_owned(),
            },
            Some(_) => "NO".to_owned(),
            None => "unknown".to_owned(),
        };
        let destination = match (&v.s3_bucket, &v.s3_key_prefix) {
            (Some(b), Some(p)) => format!("{b}/{p}"),
            (Some(b), None) => b.clone(),
            (None, _) => "-".to_owned(),
        };
        table.add_row(vec![
            trail.account.to_string(),
            v.name.clone(),
            v.home_region.clone(),
            scope,
            format!("{} region(s)", trail.seen_in.len()),
            logging,
            destination,
            if v.log_file_validation { "on" } else { "OFF" }.to_owned(),
            v.kms_key_id.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let _ = writeln!(
        out,
        "Trails: {} in {} account(s)",
        report.trails.len(),
        report.accounts.len()
    );
    if !report.trails.is_empty() {
        let _ = writeln!(out, "{table}");
    }
    let _ = writeln!(
        out,
        "\nCoverage (regions with a logging trail that records them):"
    );
    for a in &report.accounts {
        let read = a.regions_read.len();
        let line = if a.uncovered_regions.is_empty() {
            format!("all {read} region(s) read are covered")
        } else if a.uncovered_regions.len() == read {
            format!("NONE of the {read} region(s) read is covered")
        } else {
            format!(
                "{} of {read} region(s) read NOT covered: {}",
                a.uncovered_regions.len(),
                a.uncovered_regions.join(", ")
            )
        };
        let unread = a.regions_selected.len() - read.min(a.regions_selected.len());
        let unread = if unread > 0 {
            format!(" ({unread} region(s) could not be read)")
        } else {
            String::new()
        };
        let _ = writeln!(out, "  account {}: {line}{unread}", a.account);
    }
    for account in &report.skipped {
        let _ = writeln!(out, "  {}", crate::posture_cmd::skipped_line(account));
    }
    if !report.gaps.is_empty() {
        let mut gaps = output::table(&["Account", "Region", "Call", "Problem", "Detail"]);
        for gap in &report.gaps {
            gaps.add_row(vec![
                gap.account.to_string(),
                gap.region.clone().unwrap_or_else(|| "(all)".to_owned()),
                gap.operation.clone(),
                match &gap.code {
                    Some(code) => format!("{} ({code})", gap.kind),
                    None => gap.kind.to_string(),
                },
                gap.message.clone(),
            ]);
        }
        let _ = writeln!(
            out,
            "\nCould not read {} target(s); the inventory above is incomplete:\n{gaps}",
            report.gaps.len()
        );
    }
    out
}
