//! The estate as a whole: which accounts and regions the baseline covers, compared with what
//! AWS Organizations and each account's enabled regions say now. An account or region nobody
//! declared is unguarded: no sweep restores anything there.

use crate::baseline::{AccountDefaults, Baseline};
use crate::checks::{
    ACCOUNT_LEFT, ACCOUNT_NOT_ACTIVE, ACCOUNT_UNGUARDED, Check, DEFAULT_CONFIG_OFF,
    DEFAULT_GUARDDUTY_OFF, DEFAULT_NOT_LOGGED, LOGS, REGION_UNGUARDED, TOOLS, uncovered_regions,
};
use crate::snapshot::AccountSnapshot;
use serde_json::json;
use std::collections::BTreeMap;
use trailwarden_model::finding::Finding;
use trailwarden_model::organization::Membership;
use trailwarden_model::target::AccountId;

/// What was found now, beyond each account's own snapshot.
#[derive(Debug, Clone, Copy)]
pub struct EstateView<'a> {
    /// What Organizations said, when the accounts were found through it.
    pub membership: Option<&'a Membership>,
    /// Accounts left out on purpose (`--exclude-accounts`): never reported as unguarded.
    pub excluded: &'a [AccountId],
    /// Every enabled region of each account read, when all of them were asked for
    /// (`--regions all`); empty otherwise, and then no region is reported.
    pub enabled_regions: &'a BTreeMap<AccountId, Vec<String>>,
    /// The region account-level findings are filed under (where Organizations records its
    /// events: us-east-1 in the commercial partition).
    pub home_region: &'a str,
    /// The snapshots read now: accounts the baseline does not list are checked against its
    /// defaults.
    pub observed: &'a [AccountSnapshot],
}

/// Unguarded accounts and regions, accounts that left the organization or are not active.
pub fn audit_estate(baseline: &Baseline, view: &EstateView) -> Vec<Finding> {
    let mut findings = Vec::new();
    let covered = |id: &AccountId| baseline.account(id).is_some();
    if let Some(membership) = view.membership {
        for id in &membership.in_scope {
            let Some(member) = membership.member(id) else {
                continue;
            };
            // With defaults, a new account is checked against them below instead.
            if member.is_active()
                && !covered(id)
                && !view.excluded.contains(id)
                && baseline.defaults.is_none()
            {
                findings.push(finding(
                    ACCOUNT_UNGUARDED,
                    id,
                    view.home_region,
                    Some(&member.name),
                    json!("in the baseline"),
                    json!({"in_organization": membership.organization_id, "state": member.state}),
                ));
            }
        }
        let recorded = baseline
            .organization
            .as_ref()
            .filter(|o| o.id == membership.organization_id);
        for account in &baseline.accounts {
            let id = &account.account;
            match membership.member(id) {
                Some(member) if !member.is_active() => findings.push(finding(
                    ACCOUNT_NOT_ACTIVE,
                    id,
                    view.home_region,
                    Some(&member.state),
                    json!("ACTIVE"),
                    json!(member.state),
                )),
                Some(_) => {}
                // Only an account the baseline saw as a member can have left: a baseline may
                // also hold accounts outside the organization on purpose.
                None if recorded.is_some_and(|o| o.members.contains(id)) => {
                    findings.push(finding(
                        ACCOUNT_LEFT,
                        id,
                        view.home_region,
                        None,
                        json!({"in_organization": membership.organization_id}),
                        json!("not a member"),
                    ));
                }
                None => {}
            }
        }
    }
    if let Some(defaults) = &baseline.defaults {
        for observed in view.observed.iter().filter(|o| !covered(&o.account)) {
            findings.extend(audit_against_defaults(baseline, defaults, observed));
        }
    }
    for (id, enabled) in view.enabled_regions {
        let Some(want) = baseline.account(id) else {
            continue;
        };
        for region in enabled.iter().filter(|r| !want.regions.contains(r)) {
            findings.push(finding(
                REGION_UNGUARDED,
                id,
                region,
                Some(region),
                json!(want.regions),
                json!(enabled),
            ));
        }
    }
    findings
}

/// A new account against the baseline's defaults, in every region read there (a region or
/// service that could not be read is a gap, reported elsewhere, not a finding).
pub fn audit_against_defaults(
    baseline: &Baseline,
    defaults: &AccountDefaults,
    observed: &AccountSnapshot,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let id = &observed.account;
    let organization_trail_declared = defaults.organization_trail.as_deref().is_some_and(|arn| {
        baseline
            .accounts
            .iter()
            .any(|a| a.trails.iter().any(|t| t.arn == arn))
    });
    if !organization_trail_declared {
        for region in uncovered_regions(observed) {
            findings.push(finding(
                DEFAULT_NOT_LOGGED,
                id,
                &region,
                Some(&region),
                json!("a logging trail that records every management event"),
                json!(observed.trails.iter().map(|t| &t.arn).collect::<Vec<_>>()),
            ));
        }
    }
    for region in &observed.regions {
        let services = observed.services.get(region);
        let unread =
            |service: &str| services.is_some_and(|s| s.unread.iter().any(|u| u == service));
        if defaults.guardduty && !unread("guardduty") {
            let detector = services.and_then(|s| s.guardduty.as_ref());
            if detector.is_none_or(|d| d.status != "ENABLED") {
                findings.push(finding(
                    DEFAULT_GUARDDUTY_OFF,
                    id,
                    region,
                    Some(region),
                    json!("ENABLED"),
                    json!(detector.map(|d| d.status.as_str())),
                ));
            }
        }
        if defaults.config_recorder && !unread("config") {
            let recorder = services.and_then(|s| s.config_recorder.as_ref());
            if recorder.is_none_or(|r| !r.recording) {
                findings.push(finding(
                    DEFAULT_CONFIG_OFF,
                    id,
                    region,
                    Some(region),
                    json!({"recording": true}),
                    json!(recorder.map(|r| json!({"name": r.name, "recording": r.recording}))),
                ));
            }
        }
    }
    findings
}

fn finding(
    check: Check,
    account: &AccountId,
    region: &str,
    detail: Option<&str>,
    expected: serde_json::Value,
    actual: serde_json::Value,
) -> Finding {
    let title = match detail.filter(|d| !d.is_empty()) {
        Some(d) => format!("{}: {d}", check.title),
        None => check.title.to_owned(),
    };
    Finding {
        rule_id: check.id.to_owned(),
        severity: check.severity,
        title,
        account: account.clone(),
        region: region.to_owned(),
        technique: Some(check.technique.to_owned()),
        attack: Some(
            if check.technique.starts_with('E') {
                TOOLS
            } else {
                LOGS
            }
            .to_owned(),
        ),
        sigma_id: None,
        resource: Some(format!("account/{account}")),
        expected: Some(expected),
        actual: Some(actual),
        remediable: false,
        event: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::OrganizationRecord;
    use crate::snapshot::AccountSnapshot;
    use trailwarden_model::organization::Member;

    fn id(s: &str) -> AccountId {
        s.parse().unwrap()
    }

    fn member(account: &str, state: &str) -> Member {
        Member {
            id: id(account),
            name: format!("name-{account}"),
            state: state.into(),
        }
    }

    fn baseline(accounts: &[&str], recorded_members: Option<&[&str]>) -> Baseline {
        let mut b = Baseline::from_toml(
            "format = 1\ncaptured_at = \"2026-12-01T00:00:00Z\"\ncaptured_by = \"test\"\n",
            "test",
        )
        .unwrap();
        for a in accounts {
            let mut snapshot = AccountSnapshot::new(id(a));
            snapshot.regions = vec!["eu-west-1".into(), "us-east-1".into()];
            b.accounts.push(snapshot);
        }
        b.organization = recorded_members.map(|members| OrganizationRecord {
            id: "o-abc123".into(),
            management_account: id("111111111111"),
            members: members.iter().map(|m| id(m)).collect(),
        });
        b
    }

    fn membership(members: Vec<Member>, in_scope: &[&str]) -> Membership {
        Membership {
            organization_id: "o-abc123".into(),
            management_account: id("111111111111"),
            members,
            in_scope: in_scope.iter().map(|a| id(a)).collect(),
        }
    }

    fn ids_of(findings: &[Finding], check: Check) -> Vec<String> {
        findings
            .iter()
            .filter(|f| f.rule_id == check.id)
            .map(|f| format!("{}/{}", f.account, f.region))
            .collect()
    }

    #[test]
    fn a_new_member_is_unguarded_unless_excluded_and_a_recorded_member_that_left_is_critical() {
        let base = baseline(
            &[
                "111111111111",
                "222222222222",
                "333333333333",
                "444444444444",
            ],
            Some(&["111111111111", "222222222222", "333333333333"]),
        );
        let now = membership(
            vec![
                member("111111111111", "ACTIVE"),
                member("222222222222", "SUSPENDED"),
                member("555555555555", "ACTIVE"),
                member("666666666666", "ACTIVE"),
                member("777777777777", "SUSPENDED"),
            ],
            &[
                "111111111111",
                "222222222222",
                "555555555555",
                "666666666666",
                "777777777777",
            ],
        );
        let excluded = [id("666666666666")];
        let regions = BTreeMap::new();
        let findings = audit_estate(
            &base,
            &EstateView {
                membership: Some(&now),
                excluded: &excluded,
                enabled_regions: &regions,
                home_region: "us-east-1",
                observed: &[],
            },
        );
        assert_eq!(
            ids_of(&findings, ACCOUNT_UNGUARDED),
            ["555555555555/us-east-1"],
            "a suspended non-member of the baseline and an excluded account are not unguarded"
        );
        // 333 was recorded as a member and is gone; 444 was never recorded as one.
        assert_eq!(ids_of(&findings, ACCOUNT_LEFT), ["333333333333/us-east-1"]);
        assert_eq!(
            ids_of(&findings, ACCOUNT_NOT_ACTIVE),
            ["222222222222/us-east-1"]
        );
        let left = findings
            .iter()
            .find(|f| f.rule_id == ACCOUNT_LEFT.id)
            .unwrap();
        assert_eq!(
            left.severity,
            trailwarden_model::finding::Severity::Critical
        );
        assert!(!left.remediable);
    }

    #[test]
    fn another_organization_recorded_in_the_baseline_names_no_account_as_left() {
        let mut base = baseline(&["333333333333"], Some(&["333333333333"]));
        base.organization.as_mut().unwrap().id = "o-other".into();
        let now = membership(vec![member("111111111111", "ACTIVE")], &["111111111111"]);
        let regions = BTreeMap::new();
        let findings = audit_estate(
            &base,
            &EstateView {
                membership: Some(&now),
                excluded: &[],
                enabled_regions: &regions,
                home_region: "us-east-1",
                observed: &[],
            },
        );
        assert!(ids_of(&findings, ACCOUNT_LEFT).is_empty(), "{findings:#?}");
    }

    /// Account 555555555555 read in us-east-1 and eu-west-1: GuardDuty on in us-east-1 only,
    /// a recording Config recorder in eu-west-1 only, no trail.
    fn newcomer() -> AccountSnapshot {
        use crate::snapshot::{Detector, RegionServices};
        let mut a = AccountSnapshot::new(id("555555555555"));
        a.regions = vec!["eu-west-1".into(), "us-east-1".into()];
        let detector = Detector {
            id: "d".into(),
            status: "ENABLED".into(),
            filters: Some(vec![]),
            ip_sets: Some(vec![]),
        };
        a.services.insert(
            "us-east-1".into(),
            RegionServices {
                guardduty: Some(detector),
                config_recorder: None,
                flow_logs: vec![],
                unread: vec![],
            },
        );
        a.services.insert(
            "eu-west-1".into(),
            RegionServices {
                guardduty: None,
                config_recorder: Some(crate::fixtures::config_recorder()),
                flow_logs: vec![],
                unread: vec![],
            },
        );
        a
    }

    fn audit_newcomer(base: &Baseline, newcomer: &AccountSnapshot, scope: &[&str]) -> Vec<Finding> {
        let now = membership(
            vec![
                member("111111111111", "ACTIVE"),
                member("555555555555", "ACTIVE"),
            ],
            scope,
        );
        let regions = BTreeMap::new();
        audit_estate(
            base,
            &EstateView {
                membership: Some(&now),
                excluded: &[],
                enabled_regions: &regions,
                home_region: "us-east-1",
                observed: std::slice::from_ref(newcomer),
            },
        )
    }

    #[test]
    fn with_defaults_a_new_account_is_checked_against_them_region_by_region() {
        let mut base = baseline(&["111111111111"], None);
        base.defaults = Some(AccountDefaults {
            organization_trail: None,
            guardduty: true,
            config_recorder: true,
        });
        let findings = audit_newcomer(&base, &newcomer(), &["111111111111", "555555555555"]);
        assert!(
            ids_of(&findings, ACCOUNT_UNGUARDED).is_empty(),
            "checked, not just unguarded"
        );
        assert_eq!(
            ids_of(&findings, DEFAULT_NOT_LOGGED),
            ["555555555555/eu-west-1", "555555555555/us-east-1"]
        );
        assert_eq!(
            ids_of(&findings, DEFAULT_GUARDDUTY_OFF),
            ["555555555555/eu-west-1"]
        );
        assert_eq!(
            ids_of(&findings, DEFAULT_CONFIG_OFF),
            ["555555555555/us-east-1"]
        );
        let gd = findings
            .iter()
            .find(|f| f.rule_id == DEFAULT_GUARDDUTY_OFF.id)
            .unwrap();
        assert_eq!(gd.attack.as_deref(), Some(TOOLS));

        // A service that could not be read is a gap elsewhere, never a finding here.
        let mut unread = newcomer();
        unread.services.get_mut("eu-west-1").unwrap().unread = vec!["guardduty".into()];
        let findings = audit_newcomer(&base, &unread, &["555555555555"]);
        assert!(ids_of(&findings, DEFAULT_GUARDDUTY_OFF).is_empty());
    }

    #[test]
    fn a_declared_organization_trail_covers_new_accounts_and_an_undeclared_one_does_not() {
        let mut base = baseline(&["111111111111"], None);
        let org_trail = crate::fixtures::trail(false);
        base.defaults = Some(AccountDefaults {
            organization_trail: Some(org_trail.arn.clone()),
            guardduty: false,
            config_recorder: false,
        });
        let uncovered = audit_newcomer(&base, &newcomer(), &["555555555555"]);
        assert_eq!(
            ids_of(&uncovered, DEFAULT_NOT_LOGGED).len(),
            2,
            "not declared: not trusted"
        );
        base.accounts[0].trails.push(org_trail);
        let covered = audit_newcomer(&base, &newcomer(), &["555555555555"]);
        assert!(covered.is_empty(), "{covered:#?}");
    }

    #[test]
    fn a_region_enabled_since_the_baseline_is_unguarded_in_that_account_only() {
        let base = baseline(&["111111111111", "222222222222"], None);
        let regions: BTreeMap<AccountId, Vec<String>> = [
            (
                id("111111111111"),
                vec!["af-south-1".into(), "eu-west-1".into(), "us-east-1".into()],
            ),
            (
                id("222222222222"),
                vec!["eu-west-1".into(), "us-east-1".into()],
            ),
            // Not in the baseline: unguarded as an account, not region by region.
            (id("999999999999"), vec!["ap-east-1".into()]),
        ]
        .into();
        let findings = audit_estate(
            &base,
            &EstateView {
                membership: None,
                excluded: &[],
                enabled_regions: &regions,
                home_region: "us-east-1",
                observed: &[],
            },
        );
        assert_eq!(
            ids_of(&findings, REGION_UNGUARDED),
            ["111111111111/af-south-1"]
        );
        assert_eq!(findings.len(), 1);
    }
}
