//! Findings: what trailwarden reports, from events (scan, watch) and from state (audit).

use crate::target::AccountId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Severity, with OCSF's names and order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// OCSF `severity_id` (1 informational … 5 critical).
    pub fn ocsf_id(self) -> u8 {
        match self {
            Self::Info => 1,
            Self::Low => 2,
            Self::Medium => 3,
            Self::High => 4,
            Self::Critical => 5,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that is wrong, with enough context to act on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id of the check or rule, e.g. `trail.logging-stopped`.
    pub rule_id: String,
    pub severity: Severity,
    pub title: String,
    pub account: AccountId,
    /// The region the resource lives in (its home region for a trail).
    pub region: String,
    /// The tamper-catalog technique, e.g. `A1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technique: Option<String>,
    /// MITRE ATT&CK technique, e.g. `T1562.008`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
    /// ARN (or the best identifier AWS has) of the resource concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// What the baseline or the policy says it should be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<serde_json::Value>,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<serde_json::Value>,
    /// Whether restoring the baseline state undoes it.
    pub remediable: bool,
    /// For a finding raised by a CloudTrail record: the event and who made the call.
    #[serde(default, flatten)]
    pub event: Option<EventContext>,
}

/// The CloudTrail event behind a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventContext {
    pub event_id: Option<String>,
    pub event_name: Option<String>,
    pub event_source: Option<String>,
    /// As the record states it (RFC 3339 in CloudTrail).
    pub event_time: Option<String>,
    pub actor: Actor,
    /// `errorCode` of a failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Where the record was read: file or object, and the record's position in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_source: Option<String>,
}

/// Who made a call, as CloudTrail recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `userIdentity.arn` (for an assumed role, the session ARN).
    pub principal_arn: Option<String>,
    /// `userIdentity.type`: IAMUser, AssumedRole, Root, AWSService, ...
    pub identity_type: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The OCSF schema version [`Finding::to_ocsf`] follows.
pub const OCSF_VERSION: &str = "1.1.0";

impl Finding {
    /// This finding in OCSF: a Detection Finding (class 2004) when a record raised it, else a
    /// Compliance Finding (class 2003); `time` in milliseconds since the epoch.
    pub fn to_ocsf(&self, time_ms: u64, product_version: &str) -> serde_json::Value {
        if let Some(event) = &self.event {
            return self.to_ocsf_detection(event, time_ms, product_version);
        }
        let uid = format!(
            "{}:{}:{}:{}",
            self.rule_id,
            self.account,
            self.region,
            self.resource.as_deref().unwrap_or("-")
        );
        serde_json::json!({
            "category_uid": 2,
            "category_name": "Findings",
            "class_uid": 2003,
            "class_name": "Compliance Finding",
            "activity_id": 1,
            "activity_name": "Create",
            "type_uid": 200301,
            "time": time_ms,
            "severity_id": self.severity.ocsf_id(),
            "severity": capitalised(self.severity.as_str()),
            "status_id": 1,
            "status": "New",
            "message": self.title,
            "finding_info": {
                "uid": uid,
                "title": self.title,
                "types": [self.rule_id],
                "created_time": time_ms,
                "attacks": self.attack.as_ref().map(|t| vec![serde_json::json!({
                    "technique": {"uid": t},
                    "tactic": {"uid": "TA0005", "name": "Defense Evasion"}
                })]),
            },
            "compliance": {
                "control": self.rule_id,
                "requirements": self.technique.as_ref().map(|t| vec![format!("trailwarden tamper catalog {t}")]),
                "status": "Fail",
                "status_id": 3,
            },
            "cloud": {
                "provider": "AWS",
                "account": {"uid": self.account.as_str(), "type": "AWS Account", "type_id": 10},
                "region": self.region,
            },
            "resources": [{
                "uid": self.resource,
                "region": self.region,
                "cloud_partition": self.resource.as_deref().and_then(crate::target::partition_of_arn),
            }],
            "remediation": {"desc": if self.remediable {
                "Restore the baseline state (trailwarden remediate)."
            } else {
                "Not restorable from this account: escalate."
            }},
            "metadata": {
                "version": OCSF_VERSION,
                "product": {"name": "trailwarden", "vendor_name": "trailwarden", "version": product_version},
            },
            "unmapped": {"expected": self.expected, "actual": self.actual, "remediable": self.remediable},
        })
    }
}

impl Finding {
    fn to_ocsf_detection(
        &self,
        event: &EventContext,
        time_ms: u64,
        product_version: &str,
    ) -> serde_json::Value {
        let event_ms = event
            .event_time
            .as_deref()
            .and_then(parse_rfc3339)
            .map_or(time_ms, |s| s.saturating_mul(1000));
        let uid = format!(
            "{}:{}",
            self.rule_id,
            event.event_id.as_deref().unwrap_or("-")
        );
        serde_json::json!({
            "category_uid": 2,
            "category_name": "Findings",
            "class_uid": 2004,
            "class_name": "Detection Finding",
            "activity_id": 1,
            "activity_name": "Create",
            "type_uid": 200401,
            "time": event_ms,
            "severity_id": self.severity.ocsf_id(),
            "severity": capitalised(self.severity.as_str()),
            "status_id": 1,
            "status": "New",
            "message": self.title,
            "finding_info": {
                "uid": uid,
                "title": self.title,
                "types": [self.rule_id],
                "created_time": time_ms,
                "first_seen_time": event_ms,
                "analytic": {"uid": self.rule_id, "name": self.title, "type_id": 1, "type": "Rule"},
                "attacks": self.attack.as_ref().map(|t| vec![serde_json::json!({
                    "technique": {"uid": t},
                    "tactic": {"uid": "TA0005", "name": "Defense Evasion"}
                })]),
            },
            "evidences": [{
                "actor": {"user": {
                    "uid": event.actor.principal_arn,
                    "type": event.actor.identity_type,
                    "credential_uid": event.actor.access_key_id,
                }},
                "src_endpoint": {"ip": event.actor.source_ip},
                "http_request": {"user_agent": event.actor.user_agent},
                "api": {
                    "operation": event.event_name,
                    "service": {"name": event.event_source},
                    "response": {"error": event.error_code},
                },
            }],
            "cloud": {
                "provider": "AWS",
                "account": {"uid": self.account.as_str(), "type": "AWS Account", "type_id": 10},
                "region": self.region,
            },
            "resources": self.resource.as_ref().map(|r| vec![serde_json::json!({
                "uid": r,
                "region": self.region,
                "cloud_partition": crate::target::partition_of_arn(r),
            })]),
            "remediation": {"desc": if self.remediable {
                "Restore the baseline state (trailwarden remediate)."
            } else if event.error_code.is_some() {
                "A failed attempt: nothing changed. Find out who tried."
            } else {
                "Detect only: restoring state does not undo this. Investigate."
            }},
            "metadata": {
                "version": OCSF_VERSION,
                "product": {"name": "trailwarden", "vendor_name": "trailwarden", "version": product_version},
                "original_uid": event.event_id,
            },
            "unmapped": {"technique": self.technique, "remediable": self.remediable, "record_source": event.record_source},
        })
    }
}

/// Parses a CloudTrail timestamp to seconds since the Unix epoch: RFC 3339 UTC
/// (`2026-11-28T16:00:00Z`, fractions allowed) or the `2024-11-25 22:00:58.000000000` form
/// some pipelines write.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let t = text.trim();
    let b = t.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm = rest[1..].replace(':', "");
            if hm.len() != 4 || !hm.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            sign * (hm[..2].parse::<i64>().ok()? * 3600 + hm[2..].parse::<i64>().ok()? * 60)
        }
    };
    // Days-from-civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs).ok()
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (`2026-11-28T16:00:00Z`).
pub fn rfc3339(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_883_000), "2026-11-28T16:23:20Z");
    }

    #[test]
    fn timestamps_parse_both_ways() {
        for secs in [0, 951_782_400, 1_795_883_000] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        assert_eq!(
            parse_rfc3339("2026-11-28T16:23:20.123Z"),
            Some(1_795_883_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-28 16:23:20.000000000"),
            Some(1_795_883_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-28T17:23:20+01:00"),
            Some(1_795_883_000)
        );
        assert_eq!(parse_rfc3339("2026-13-28T16:23:20Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn ocsf_detection_finding_for_events() {
        let f = Finding {
            rule_id: "trail-stop-logging".into(),
            severity: Severity::High,
            title: "CloudTrail logging stopped".into(),
            account: AccountId::as_recorded("111111111111"),
            region: "us-east-1".into(),
            technique: Some("A1".into()),
            attack: Some("T1562.008".into()),
            resource: None,
            expected: None,
            actual: None,
            remediable: true,
            event: Some(EventContext {
                event_id: Some("e-1".into()),
                event_name: Some("StopLogging".into()),
                event_source: Some("cloudtrail.amazonaws.com".into()),
                event_time: Some("2026-11-28T16:23:20Z".into()),
                actor: Actor {
                    principal_arn: Some("arn:aws:sts::111111111111:assumed-role/r/mallory".into()),
                    identity_type: Some("AssumedRole".into()),
                    access_key_id: Some("ASIA1".into()),
                    source_ip: Some("203.0.113.7".into()),
                    user_agent: Some("aws-cli/2".into()),
                },
                error_code: None,
                record_source: Some("f.json.gz#3".into()),
            }),
        };
        let o = f.to_ocsf(1_000, "0.1.0");
        assert_eq!(o["class_uid"], 2004);
        assert_eq!(o["time"], 1_795_883_000_000u64);
        assert_eq!(o["evidences"][0]["src_endpoint"]["ip"], "203.0.113.7");
        assert_eq!(o["finding_info"]["analytic"]["uid"], "trail-stop-logging");
        let flat = serde_json::to_value(&f).unwrap();
        assert_eq!(flat["event_name"], "StopLogging");
        assert_eq!(flat["actor"]["source_ip"], "203.0.113.7");
        assert!(flat.get("event").is_none());
        let back: Finding = serde_json::from_value(flat).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn ocsf_compliance_finding_shape() {
        let f = Finding {
            rule_id: "trail.logging-stopped".into(),
            severity: Severity::Critical,
            title: "Trail stopped logging".into(),
            account: "111111111111".parse().unwrap(),
            region: "us-east-1".into(),
            technique: Some("A1".into()),
            attack: Some("T1562.008".into()),
            resource: Some("arn:aws:cloudtrail:us-east-1:111111111111:trail/t".into()),
            expected: Some(true.into()),
            actual: Some(false.into()),
            remediable: true,
            event: None,
        };
        let o = f.to_ocsf(1_000, "0.1.0");
        assert_eq!(o["class_uid"], 2003);
        assert_eq!(o["type_uid"], 200301);
        assert_eq!(o["severity_id"], 5);
        assert_eq!(o["severity"], "Critical");
        assert_eq!(o["cloud"]["account"]["uid"], "111111111111");
        assert_eq!(o["resources"][0]["cloud_partition"], "aws");
        assert_eq!(
            o["finding_info"]["attacks"][0]["technique"]["uid"],
            "T1562.008"
        );
        assert_eq!(o["unmapped"]["actual"], false);
    }
}
