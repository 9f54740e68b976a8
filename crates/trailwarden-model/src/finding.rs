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
}

/// The OCSF schema version [`Finding::to_ocsf`] follows.
pub const OCSF_VERSION: &str = "1.1.0";

impl Finding {
    /// This finding as an OCSF Compliance Finding (class 2003) when it comes from state, with
    /// `time` in milliseconds since the epoch.
    pub fn to_ocsf(&self, time_ms: u64, product_version: &str) -> serde_json::Value {
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
