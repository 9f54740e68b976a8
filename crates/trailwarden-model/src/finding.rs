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
