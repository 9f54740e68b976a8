//! `trailwarden incidents`: what `watch` detected, grouped by actor and time, with timelines.

use crate::args::{Format, GlobalArgs, IncidentsArgs};
use crate::exit;
use crate::output::{self, print, table};
use anyhow::{Context, Result};
use trailwarden_engine::Journal;
use trailwarden_engine::incidents::group;

pub fn run(g: &GlobalArgs, args: &IncidentsArgs) -> Result<u8> {
    let path = match &args.state {
        Some(p) => p.clone(),
        None => Journal::default_path()?,
    };
    let journal = Journal::open(&path)
        .with_context(|| format!("opening the state store {}", path.display()))?;
    let detections = journal.detections(args.since.as_deref())?;
    let incidents = group(&detections, args.gap.as_secs());
    let text = match output::choose(g.format) {
        Format::Table => {
            if incidents.is_empty() {
                format!("No incidents in {}.\n", path.display())
            } else {
                let mut text = String::new();
                for i in &incidents {
                    text.push_str(&format!(
                        "Incident {} — {} — {} detection(s), {} restored, {} failed attempt(s)\n  actor {}\n  access keys {:?}  source IPs {:?}  accounts {:?}  regions {:?}\n  {} → {}\n",
                        i.id,
                        i.severity,
                        i.timeline.len(),
                        i.restored,
                        i.failed_attempts,
                        i.actor,
                        i.access_keys,
                        i.source_ips,
                        i.accounts,
                        i.regions,
                        i.first_seen,
                        i.last_seen
                    ));
                    let mut t = table(&[
                        "time", "severity", "rule", "account", "region", "event", "outcome",
                    ]);
                    for d in &i.timeline {
                        t.add_row(vec![
                            d.event_time.clone(),
                            d.severity.clone(),
                            d.rule_id.clone(),
                            d.account.clone(),
                            d.region.clone(),
                            d.event_name.clone().unwrap_or_default(),
                            d.outcome.to_string(),
                        ]);
                    }
                    text.push_str(&format!("{t}\n\n"));
                }
                text
            }
        }
        Format::Json => serde_json::to_string_pretty(&incidents)? + "\n",
        Format::Jsonl | Format::Ocsf => incidents
            .iter()
            .map(|i| serde_json::to_string(i).map(|s| s + "\n"))
            .collect::<Result<String, _>>()?,
    };
    print(&text)?;
    Ok(exit::OK)
}
