//! Incidents: the detections of one actor close together in time, so a responder sees "who,
//! from where, what, in which accounts, what was undone" at once instead of one line per
//! event. Pure: works on [`Detection`]s from the journal.

use crate::journal::Detection;
use serde::Serialize;
use std::collections::BTreeSet;
use trailwarden_model::clock::parse_rfc3339;
use trailwarden_model::outcome::Outcome;

/// Detections of one actor separated by more than this start a new incident.
pub const DEFAULT_GAP_SECONDS: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// `actor#first event time`: stable for the same history.
    pub id: String,
    /// The principal ARN (else the access key, else the source IP).
    pub actor: String,
    pub access_keys: BTreeSet<String>,
    pub source_ips: BTreeSet<String>,
    pub accounts: BTreeSet<String>,
    pub regions: BTreeSet<String>,
    pub first_seen: String,
    pub last_seen: String,
    /// The highest severity among its detections (OCSF names).
    pub severity: String,
    pub restored: usize,
    pub failed_attempts: usize,
    /// Every detection, oldest first.
    pub timeline: Vec<Detection>,
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 5,
        "high" => 4,
        "medium" => 3,
        "low" => 2,
        _ => 1,
    }
}

/// The actor of detections nobody is known to have caused (found by a sweep, with no event
/// in the journal that touched the resource).
pub const UNATTRIBUTED: &str = "unattributed (found by the sweep)";

/// Groups `detections` (any order) by actor, splitting an actor's history where two
/// detections are more than `gap_seconds` apart. Incidents come newest first.
/// trailwarden's own calls are not incidents.
pub fn group(detections: &[Detection], gap_seconds: u64) -> Vec<Incident> {
    let mut sorted: Vec<&Detection> = detections
        .iter()
        .filter(|d| d.outcome != Outcome::OwnCall)
        .collect();
    let key = |d: &Detection| {
        d.actor
            .clone()
            .or_else(|| d.access_key.clone())
            .or_else(|| d.source_ip.clone())
            .unwrap_or_else(|| UNATTRIBUTED.to_owned())
    };
    sorted.sort_by(|a, b| {
        key(a)
            .cmp(&key(b))
            .then_with(|| a.event_time.cmp(&b.event_time))
    });
    let mut incidents: Vec<Incident> = Vec::new();
    let mut last: Option<(String, u64)> = None;
    for d in sorted {
        let actor = key(d);
        let time = parse_rfc3339(&d.event_time).unwrap_or(0);
        let continues = last
            .as_ref()
            .is_some_and(|(a, t)| *a == actor && time.saturating_sub(*t) <= gap_seconds);
        if !continues {
            incidents.push(Incident {
                id: format!("{actor}#{}", d.event_time),
                actor: actor.clone(),
                access_keys: BTreeSet::new(),
                source_ips: BTreeSet::new(),
                accounts: BTreeSet::new(),
                regions: BTreeSet::new(),
                first_seen: d.event_time.clone(),
                last_seen: d.event_time.clone(),
                severity: d.severity.clone(),
                restored: 0,
                failed_attempts: 0,
                timeline: Vec::new(),
            });
        }
        let Some(incident) = incidents.last_mut() else {
            continue;
        };
        incident.access_keys.extend(d.access_key.clone());
        incident.source_ips.extend(d.source_ip.clone());
        incident.accounts.insert(d.account.clone());
        incident.regions.insert(d.region.clone());
        incident.last_seen = d.event_time.clone();
        if severity_rank(&d.severity) > severity_rank(&incident.severity) {
            incident.severity = d.severity.clone();
        }
        incident.restored += usize::from(d.outcome == Outcome::Restored);
        incident.failed_attempts += usize::from(d.outcome == Outcome::FailedAttempt);
        incident.timeline.push(d.clone());
        last = Some((actor, time));
    }
    incidents.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
    incidents
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(time: &str, actor: &str, rule: &str, severity: &str, outcome: &str) -> Detection {
        Detection {
            event_time: time.into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            rule_id: rule.into(),
            severity: severity.into(),
            event_id: None,
            event_name: None,
            actor: Some(actor.into()),
            access_key: Some("ASIA1".into()),
            source_ip: Some("203.0.113.7".into()),
            outcome: outcome.parse().unwrap(),
            title: rule.into(),
            technique: None,
            resource: None,
            found_by: crate::journal::FoundBy::Event,
        }
    }

    #[test]
    fn one_actor_close_in_time_is_one_incident_and_a_long_pause_starts_another() {
        let detections = [
            d(
                "2026-11-28T10:00:00Z",
                "mallory",
                "trail-stop-logging",
                "high",
                "restored",
            ),
            d(
                "2026-11-28T10:20:00Z",
                "mallory",
                "kms-key-disabled",
                "high",
                "restored",
            ),
            d(
                "2026-11-28T10:05:00Z",
                "eve",
                "trail-delete",
                "low",
                "failed attempt",
            ),
            d(
                "2026-11-28T13:00:00Z",
                "mallory",
                "bucket-deleted",
                "medium",
                "detect only",
            ),
        ];
        let incidents = group(&detections, DEFAULT_GAP_SECONDS);
        assert_eq!(incidents.len(), 3);
        assert_eq!(incidents[0].actor, "mallory");
        assert_eq!(incidents[0].timeline.len(), 1);
        let first = incidents
            .iter()
            .find(|i| i.first_seen == "2026-11-28T10:00:00Z")
            .unwrap();
        assert_eq!(first.timeline.len(), 2);
        assert_eq!((first.restored, first.severity.as_str()), (2, "high"));
        let eve = incidents.iter().find(|i| i.actor == "eve").unwrap();
        assert_eq!(eve.failed_attempts, 1);
    }

    #[test]
    fn own_calls_are_no_incident_and_unknown_actors_are_said_to_be_unknown() {
        let own = d(
            "2026-11-28T10:00:00Z",
            "arn:aws:sts::1:assumed-role/TrailwardenAudit/trailwarden-1",
            "trail-stop-logging",
            "high",
            "own-call",
        );
        let swept = Detection {
            actor: None,
            access_key: None,
            source_ip: None,
            found_by: crate::journal::FoundBy::Sweep,
            ..d(
                "2026-11-28T10:00:00Z",
                "-",
                "trail-logging-stopped",
                "critical",
                "restored",
            )
        };
        let incidents = group(&[own, swept], DEFAULT_GAP_SECONDS);
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0].actor, UNATTRIBUTED);
        assert_eq!(incidents[0].timeline[0].rule_id, "trail-logging-stopped");
    }
}
