//! The estate as a whole: which accounts and regions the baseline covers, compared with what
//! AWS Organizations and each account's enabled regions say now. An account or region nobody
//! declared is unguarded: no sweep restores anything there.

use crate::baseline::Baseline;
use crate::checks::{
    ACCOUNT_LEFT, ACCOUNT_NOT_ACTIVE, ACCOUNT_UNGUARDED, Check, LOGS, REGION_UNGUARDED,
};
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
            if member.is_active() && !covered(id) && !view.excluded.contains(id) {
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
        attack: Some(LOGS.to_owned()),
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
            },
        );
        assert!(ids_of(&findings, ACCOUNT_LEFT).is_empty(), "{findings:#?}");
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
            },
        );
        assert_eq!(
            ids_of(&findings, REGION_UNGUARDED),
            ["111111111111/af-south-1"]
        );
        assert_eq!(findings.len(), 1);
    }
}
