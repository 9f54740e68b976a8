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
    /// Stable id of the check or rule, e.g. `trail-logging-stopped`.
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
    /// The Sigma rule's own `id` (a UUID), for a finding a Sigma rule raised: SigmaHQ users
    /// correlate by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_id: Option<String>,
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
            .and_then(crate::clock::parse_rfc3339)
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
                // The Sigma rule's own id when it has one (what SIEMs correlate Sigma on).
                "analytic": {
                    "uid": self.sigma_id.as_deref().unwrap_or(&self.rule_id),
                    "name": self.rule_id,
                    "desc": self.title,
                    "type_id": 1,
                    "type": "Rule",
                },
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

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            sigma_id: None,
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
        assert_eq!(o["finding_info"]["analytic"]["name"], "trail-stop-logging");
        let sigma = Finding {
            sigma_id: Some("1f1c6a52-9d7e-4a3c-8b1f-2d4e6a8c0b12".into()),
            ..f.clone()
        }
        .to_ocsf(0, "0");
        assert_eq!(
            sigma["finding_info"]["analytic"]["uid"],
            "1f1c6a52-9d7e-4a3c-8b1f-2d4e6a8c0b12"
        );
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
            rule_id: "trail-logging-stopped".into(),
            severity: Severity::Critical,
            title: "Trail stopped logging".into(),
            account: "111111111111".parse().unwrap(),
            region: "us-east-1".into(),
            technique: Some("A1".into()),
            attack: Some("T1562.008".into()),
            sigma_id: None,
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
