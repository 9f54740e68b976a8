//! Where trailwarden looks: accounts, regions, partitions, and what went wrong at a target.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A 12-digit AWS account id, checked when it is parsed from user input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetParseError {
    #[error("account id '{0}' is not 12 digits")]
    AccountId(String),
    #[error("'{0}' is not an AWS region name (expected something like us-east-1 or eu-central-2)")]
    RegionName(String),
    #[error(
        "'{0}' is neither a 12-digit account id, an organizational unit (ou-…) or root (r-…), nor 'org'"
    )]
    AccountSelector(String),
    #[error("empty list: give at least one value, or 'all'")]
    EmptyList,
}

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = TargetParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(TargetParseError::AccountId(s.to_owned()))
        }
    }
}

impl AccountId {
    /// An account id as a record or a file states it, unchecked: anonymised data sets carry
    /// ids that are not 12 digits, and a finding must still name what the record said.
    pub fn as_recorded(id: &str) -> Self {
        Self(id.trim().to_owned())
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a comma-separated list of account ids (`--accounts`).
pub fn parse_account_list(s: &str) -> Result<Vec<AccountId>, TargetParseError> {
    let mut out: Vec<AccountId> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id: AccountId = part.parse()?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.is_empty() {
        return Err(TargetParseError::EmptyList);
    }
    Ok(out)
}

/// Accounts found in AWS Organizations (`--accounts org` or `--accounts ou-…,r-…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrganizationScope {
    /// Every account of the organization.
    Whole,
    /// The accounts of these organizational units (or roots) and of every unit below them.
    Units(Vec<String>),
}

/// One item of `--accounts`: an account id, an organizational unit or root id, or `org`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSelector {
    Account(AccountId),
    Unit(String),
    Organization,
}

impl FromStr for AccountSelector {
    type Err = TargetParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("org") {
            return Ok(Self::Organization);
        }
        if is_unit_id(s) {
            return Ok(Self::Unit(s.to_owned()));
        }
        // Digits are meant as an account id: say what is wrong with it.
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(Self::Account);
        }
        Err(TargetParseError::AccountSelector(s.to_owned()))
    }
}

/// `ou-<root>-<unit>` or `r-<root>`, as Organizations spells them (lower-case letters and digits).
pub fn is_unit_id(s: &str) -> bool {
    let alnum = |p: &str, min: usize| {
        (min..=32).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if let Some(rest) = s.strip_prefix("ou-") {
        return rest
            .split_once('-')
            .is_some_and(|(root, unit)| alnum(root, 4) && alnum(unit, 8));
    }
    s.strip_prefix("r-").is_some_and(|root| alnum(root, 4))
}

/// The organization part of a list of selectors: `None` when it names accounts only.
pub fn organization_scope(selectors: &[AccountSelector]) -> Option<OrganizationScope> {
    if selectors.contains(&AccountSelector::Organization) {
        return Some(OrganizationScope::Whole);
    }
    let mut units: Vec<String> = Vec::new();
    for selector in selectors {
        if let AccountSelector::Unit(unit) = selector
            && !units.contains(unit)
        {
            units.push(unit.clone());
        }
    }
    (!units.is_empty()).then_some(OrganizationScope::Units(units))
}

/// True for names shaped like AWS regions (`us-east-1`, `us-gov-west-1`, `eu-isoe-west-1`).
/// Whether the region exists and is enabled is for the account to say (DescribeRegions).
pub fn is_region_name(s: &str) -> bool {
    let mut parts = s.split('-');
    let Some(first) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    if first.len() != 2 || !first.bytes().all(|b| b.is_ascii_lowercase()) || rest.len() < 2 {
        return false;
    }
    let Some((last, middle)) = rest.split_last() else {
        return false;
    };
    !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
        && middle
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The partition a region belongs to, from its name (as in the SDK's partitions table).
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("eu-isoe-") {
        "aws-iso-e"
    } else if region.starts_with("us-isof-") {
        "aws-iso-f"
    } else if region.starts_with("eusc-") {
        "aws-eusc"
    } else {
        "aws"
    }
}

/// The region field of an ARN (`arn:aws:kms:eu-west-1:…` → `eu-west-1`); `None` for a global
/// resource's ARN (S3 buckets, IAM) or text that is not an ARN.
pub fn region_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.nth(2))
        .flatten()
        .filter(|r| !r.is_empty())
}

/// The partition named in an ARN (`arn:PARTITION:...`).
pub fn partition_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.next())
        .flatten()
}

/// Which regions to visit (`--regions`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RegionSelection {
    /// Every region enabled for the account, as the account itself reports it.
    #[default]
    AllEnabled,
    /// These regions, in this order; each is checked against the account's enabled regions.
    List(Vec<String>),
}

impl FromStr for RegionSelection {
    type Err = TargetParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("all") {
            return Ok(Self::AllEnabled);
        }
        let mut out: Vec<String> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if !is_region_name(part) {
                return Err(TargetParseError::RegionName(part.to_owned()));
            }
            if !out.iter().any(|r| r == part) {
                out.push(part.to_owned());
            }
        }
        if out.is_empty() {
            return Err(TargetParseError::EmptyList);
        }
        Ok(Self::List(out))
    }
}

/// One account × region cell of a sweep.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    pub account: AccountId,
    pub region: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account {} region {}", self.account, self.region)
    }
}

/// Why a target could not be read. A gap is never "clean": callers report it as missing coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GapKind {
    /// IAM (or an SCP) denied the call or the role assumption.
    AccessDenied,
    /// The region is not enabled for the account (opt-in region), or does not exist there.
    RegionNotEnabled,
    /// The credentials were rejected or could not be found.
    BadCredentials,
    /// AWS kept throttling after every retry.
    Throttled,
    /// The endpoint could not be reached (DNS, connection refused, TLS).
    Unreachable,
    /// The call did not finish within its timeout.
    Timeout,
    /// Anything else AWS answered with an error.
    ServiceError,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDenied => "access-denied",
            Self::RegionNotEnabled => "region-not-enabled",
            Self::BadCredentials => "bad-credentials",
            Self::Throttled => "throttled",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::ServiceError => "service-error",
        }
    }
}

impl fmt::Display for GapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A target (an account, or one region of it) that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub account: AccountId,
    /// `None` when the whole account failed (role assumption, region discovery).
    pub region: Option<String>,
    /// The AWS operation that failed, as `service:Operation` (IAM action spelling).
    pub operation: String,
    pub kind: GapKind,
    /// The AWS error code, when AWS answered with one.
    pub code: Option<String>,
    pub message: String,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account {}", self.account)?;
        if let Some(region) = &self.region {
            write!(f, " region {region}")?;
        }
        write!(f, ": {} failed ({}", self.operation, self.kind)?;
        if let Some(code) = &self.code {
            write!(f, ", {code}")?;
        }
        write!(f, "): {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_selectors_are_ids_units_roots_or_the_organization() {
        let parse = |s: &str| s.parse::<AccountSelector>();
        assert_eq!(parse("org"), Ok(AccountSelector::Organization));
        assert_eq!(
            parse("ou-ab12-cdef3456"),
            Ok(AccountSelector::Unit("ou-ab12-cdef3456".into()))
        );
        assert_eq!(parse("r-ab12"), Ok(AccountSelector::Unit("r-ab12".into())));
        assert!(matches!(
            parse("123456789012"),
            Ok(AccountSelector::Account(_))
        ));
        // Digits are meant as an account id: the error says what is wrong with it.
        assert_eq!(
            parse("1234"),
            Err(TargetParseError::AccountId("1234".into()))
        );
        for bad in [
            "ou-AB12-cdef3456",
            "ou-ab1-cdef3456",
            "ou-ab12",
            "r-",
            "organization",
        ] {
            assert_eq!(
                parse(bad),
                Err(TargetParseError::AccountSelector(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_organization_wins_over_units_and_units_are_kept_once() {
        let list = |items: &[&str]| -> Vec<AccountSelector> {
            items.iter().map(|s| s.parse().unwrap()).collect()
        };
        assert_eq!(organization_scope(&list(&["123456789012"])), None);
        assert_eq!(
            organization_scope(&list(&[
                "ou-ab12-cdef3456",
                "123456789012",
                "ou-ab12-cdef3456"
            ])),
            Some(OrganizationScope::Units(vec!["ou-ab12-cdef3456".into()]))
        );
        assert_eq!(
            organization_scope(&list(&["ou-ab12-cdef3456", "org"])),
            Some(OrganizationScope::Whole)
        );
    }

    #[test]
    fn the_region_of_an_arn() {
        assert_eq!(
            region_of_arn("arn:aws:kms:eu-west-1:111111111111:key/k"),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_arn("arn:aws:logs:us-east-1:1:log-group:g:*"),
            Some("us-east-1")
        );
        assert_eq!(region_of_arn("arn:aws:s3:::bucket"), None);
        assert_eq!(region_of_arn("1234abcd-key-id"), None);
        assert_eq!(region_of_arn("arn:aws"), None);
    }

    #[test]
    fn account_ids_must_be_twelve_digits() {
        assert!("123456789012".parse::<AccountId>().is_ok());
        assert!(" 123456789012 ".parse::<AccountId>().is_ok());
        for bad in ["12345678901", "1234567890123", "12345678901a", "", "abc"] {
            assert_eq!(
                bad.parse::<AccountId>(),
                Err(TargetParseError::AccountId(bad.trim().to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn account_lists_dedupe_and_reject_empty() {
        let ids = parse_account_list("111111111111, 222222222222,111111111111").unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(parse_account_list(" , "), Err(TargetParseError::EmptyList));
        assert!(parse_account_list("111111111111,oops").is_err());
    }

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-5",
            "eu-isoe-west-1",
            "mx-central-1",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "useast1",
            "US-EAST-1",
            "us-east-1a",
            "us--1",
            "-east-1",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn region_selection_parses_all_and_lists() {
        assert_eq!("all".parse(), Ok(RegionSelection::AllEnabled));
        assert_eq!("ALL".parse(), Ok(RegionSelection::AllEnabled));
        assert_eq!(
            "us-east-1,eu-west-1,us-east-1".parse(),
            Ok(RegionSelection::List(vec![
                "us-east-1".into(),
                "eu-west-1".into()
            ]))
        );
        assert_eq!(
            "us-east-1,mars-1".parse::<RegionSelection>(),
            Err(TargetParseError::RegionName("mars-1".into()))
        );
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of_region("us-east-1"), "aws");
        assert_eq!(partition_of_region("cn-north-1"), "aws-cn");
        assert_eq!(partition_of_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of_region("us-isob-east-1"), "aws-iso-b");
        assert_eq!(partition_of_region("us-iso-east-1"), "aws-iso");
        assert_eq!(
            partition_of_arn("arn:aws-cn:sts::123456789012:assumed-role/r/s"),
            Some("aws-cn")
        );
        assert_eq!(partition_of_arn("not-an-arn"), None);
    }

    #[test]
    fn gaps_name_account_region_and_operation() {
        let gap = Gap {
            account: "123456789012".parse().unwrap(),
            region: Some("eu-west-1".into()),
            operation: "cloudtrail:DescribeTrails".into(),
            kind: GapKind::AccessDenied,
            code: Some("AccessDeniedException".into()),
            message: "not authorized".into(),
        };
        assert_eq!(
            gap.to_string(),
            "account 123456789012 region eu-west-1: cloudtrail:DescribeTrails failed (access-denied, AccessDeniedException): not authorized"
        );
    }
}
