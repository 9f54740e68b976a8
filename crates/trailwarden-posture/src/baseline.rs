//! The baseline file: the declared known-good state, kept in version control and changed only
//! by an explicit `baseline capture`.

use crate::snapshot::AccountSnapshot;
use serde::{Deserialize, Serialize};
use std::path::Path;
use trailwarden_model::target::AccountId;

/// The file format this build reads and writes.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub format: u32,
    /// RFC 3339.
    pub captured_at: String,
    /// Tool and version that wrote the file.
    pub captured_by: String,
    #[serde(default)]
    pub settings: Settings,
    /// The organization at capture time, when the accounts were found through it: an account
    /// recorded here that is no longer a member has left (catalog G1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrganizationRecord>,
    /// What every account the baseline does not list must have (an account created or
    /// invited since the capture): it is checked against these at once. Written by hand;
    /// `baseline capture` keeps it from the file it replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<AccountDefaults>,
    #[serde(rename = "account", default)]
    pub accounts: Vec<AccountSnapshot>,
}

/// The minimum every new account must have, in every region read there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountDefaults {
    /// The organization trail (its ARN) that logs new accounts: when the baseline declares it
    /// (in the account that owns it, where it is audited and restored), a new account needs
    /// no trail of its own. Otherwise each region read must be covered by a logging trail of
    /// the account that records every management event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_trail: Option<String>,
    /// An enabled GuardDuty detector in every region read.
    #[serde(default)]
    pub guardduty: bool,
    /// A recording AWS Config recorder in every region read.
    #[serde(default)]
    pub config_recorder: bool,
}

/// Which accounts were members of the organization when the baseline was captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationRecord {
    pub id: String,
    pub management_account: AccountId,
    /// Every member at capture time (any state), sorted.
    pub members: Vec<AccountId>,
}

/// Thresholds the audit applies; kept in the file so a team reviews them with the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// A logging trail whose last delivery is older than this is reported (catalog B1-B4, C1:
    /// `IsLogging` stays true while delivery fails).
    pub max_delivery_age_minutes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_delivery_age_minutes: 120,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{path}: cannot read the baseline: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a valid baseline: {message}")]
    Parse { path: String, message: String },
    #[error(
        "{path}: baseline format {found} is not supported (this trailwarden reads format {FORMAT})"
    )]
    Format { path: String, found: u32 },
    #[error("cannot write the baseline: {0}")]
    Write(String),
}

const HEADER: &str = "\
# trailwarden baseline: the known-good state of the accounts below.
# Written by `trailwarden baseline capture`; `trailwarden audit` compares the real state with it
# and `trailwarden remediate` restores it. Keep it in version control and review every change:
# nothing in trailwarden ever rewrites it on its own.
#
# Accounts not listed below (created or invited into the organization since) are reported as
# unguarded, unless a [defaults] table says what each must have; it is kept on re-capture:
#   [defaults]
#   organization_trail = \"arn:aws:cloudtrail:us-east-1:MANAGEMENT_ACCOUNT:trail/NAME\"  # or omit
#   guardduty = true
#   config_recorder = true
";

impl Baseline {
    pub fn account(&self, id: &AccountId) -> Option<&AccountSnapshot> {
        self.accounts.iter().find(|a| &a.account == id)
    }

    pub fn to_toml(&self) -> Result<String, BaselineError> {
        let body = toml::to_string_pretty(self).map_err(|e| BaselineError::Write(e.to_string()))?;
        Ok(format!("{HEADER}\n{body}"))
    }

    pub fn from_toml(text: &str, path: &str) -> Result<Self, BaselineError> {
        let baseline: Baseline = toml::from_str(text).map_err(|e| BaselineError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        if baseline.format != FORMAT {
            return Err(BaselineError::Format {
                path: path.to_owned(),
                found: baseline.format,
            });
        }
        Ok(baseline)
    }

    pub fn load(path: &Path) -> Result<Self, BaselineError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_toml(&text, &shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{BucketSnapshot, Detector, RegionServices};

    fn sample() -> Baseline {
        let mut account = AccountSnapshot::new("111111111111".parse().unwrap());
        account.regions = vec!["eu-west-1".into(), "us-east-1".into()];
        let mut trail = crate::fixtures::trail(false);
        trail.tags = [("owner".to_owned(), "security".to_owned())].into();
        account.trails.push(trail);
        account.buckets.push(BucketSnapshot {
            policy: Some("{\n  \"Statement\": []\n}".into()),
            ..crate::fixtures::bucket()
        });
        account.services.insert(
            "us-east-1".into(),
            RegionServices {
                guardduty: Some(Detector {
                    id: "d1".into(),
                    status: "ENABLED".into(),
                    filters: Some(vec![]),
                    ip_sets: Some(vec![]),
                }),
                config_recorder: Some(crate::fixtures::config_recorder()),
                flow_logs: vec![],
                unread: vec![],
            },
        );
        Baseline {
            format: FORMAT,
            captured_at: "2026-11-28T00:00:00Z".into(),
            captured_by: "test".into(),
            settings: Settings::default(),
            organization: Some(OrganizationRecord {
                id: "o-abc123".into(),
                management_account: "111111111111".parse().unwrap(),
                members: vec!["111111111111".parse().unwrap()],
            }),
            defaults: Some(AccountDefaults {
                organization_trail: None,
                guardduty: true,
                config_recorder: false,
            }),
            accounts: vec![account],
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let baseline = sample();
        let text = baseline.to_toml().unwrap();
        assert!(text.starts_with("# trailwarden baseline"));
        assert_eq!(Baseline::from_toml(&text, "b.toml").unwrap(), baseline);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let err =
            Baseline::from_toml("format = 1\naccount = 3\n", "team/baseline.toml").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("team/baseline.toml: not a valid baseline"),
            "{text}"
        );
        let future = sample()
            .to_toml()
            .unwrap()
            .replace("format = 1", "format = 9");
        let err = Baseline::from_toml(&future, "b.toml").unwrap_err();
        assert!(
            err.to_string().contains("format 9 is not supported"),
            "{err}"
        );
    }
}
