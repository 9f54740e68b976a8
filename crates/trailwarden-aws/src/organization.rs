//! AWS Organizations discovery: which accounts the organization has, in which state, and which
//! of them sit in the organizational units a selection names (walked down the OU tree, one
//! listing per unit, never one ListParents per account).

use crate::client::AccountConfig;
use crate::failure::CallError;
use futures::StreamExt;
pub use trailwarden_model::organization::{Member, Membership};
use trailwarden_model::target::{AccountId, OrganizationScope};

/// Organizations allows at most 20 items per page for every listing used here.
const PAGE_SIZE: i32 = 20;
/// Units listed at once while walking the tree: Organizations publishes no rate and throttles
/// (TooManyRequestsException) when threads hammer it, so stay gentle.
const WALK_CONCURRENCY: usize = 4;

/// Lists the organization the caller belongs to. Needs the management account or a delegated
/// administrator (`organizations:DescribeOrganization`, `ListAccounts`, and for units
/// `ListAccountsForParent` and `ListOrganizationalUnitsForParent`).
pub async fn discover(
    clients: &AccountConfig,
    region: &str,
    scope: &OrganizationScope,
) -> Result<Membership, CallError> {
    let client = clients.organizations(region);
    let subject = "the organization";
    let described = client.describe_organization().send().await.map_err(|err| {
        CallError::from_sdk(&err, subject, region, "organizations:DescribeOrganization")
    })?;
    let org = described.organization();
    let organization_id = org.and_then(|o| o.id()).unwrap_or_default().to_owned();
    let management_account =
        AccountId::as_recorded(org.and_then(|o| o.master_account_id()).unwrap_or_default());

    let mut members = Vec::new();
    let mut pages = client
        .list_accounts()
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            CallError::from_sdk(&err, subject, region, "organizations:ListAccounts")
        })?;
        members.extend(page.accounts().iter().map(member));
    }
    members.sort_by(|a, b| a.id.cmp(&b.id));
    members.dedup_by(|a, b| a.id == b.id);

    let mut in_scope = match scope {
        OrganizationScope::Whole => members.iter().map(|m| m.id.clone()).collect(),
        OrganizationScope::Units(units) => walk_units(&client, region, units).await?,
    };
    in_scope.sort();
    in_scope.dedup();
    Ok(Membership {
        organization_id,
        management_account,
        members,
        in_scope,
    })
}

/// The organization's root id (`r-…`).
pub async fn root_id(clients: &AccountConfig, region: &str) -> Result<String, CallError> {
    let roots = clients
        .organizations(region)
        .list_roots()
        .send()
        .await
        .map_err(|err| {
            CallError::from_sdk(&err, "the organization", region, "organizations:ListRoots")
        })?;
    roots
        .roots()
        .first()
        .and_then(|r| r.id())
        .map(str::to_owned)
        .ok_or_else(|| CallError::local("the organization", "ListRoots answered no root"))
}

fn member(account: &aws_sdk_organizations::types::Account) -> Member {
    #[allow(deprecated)] // `Status` is retired in favour of `State`; older endpoints send only it.
    let state = account
        .state()
        .map(|s| s.as_str().to_owned())
        .or_else(|| account.status().map(|s| s.as_str().to_owned()))
        .unwrap_or_else(|| "UNKNOWN".to_owned());
    Member {
        id: AccountId::as_recorded(account.id().unwrap_or_default()),
        name: account.name().unwrap_or_default().to_owned(),
        state,
    }
}

/// The accounts directly or indirectly inside `units`: one level of the tree at a time, each
/// unit's accounts and child units listed (paged) with a few units in flight.
async fn walk_units(
    client: &aws_sdk_organizations::Client,
    region: &str,
    units: &[String],
) -> Result<Vec<AccountId>, CallError> {
    let mut accounts = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut level: Vec<String> = units.to_vec();
    while !level.is_empty() {
        seen.extend(level.iter().cloned());
        let listed: Vec<Result<UnitListing, CallError>> = futures::stream::iter(level.drain(..))
            .map(|unit: String| list_unit(client, region, unit))
            .buffer_unordered(WALK_CONCURRENCY)
            .collect()
            .await;
        for result in listed {
            let (found, children) = result?;
            accounts.extend(found);
            for child in children {
                if !seen.contains(&child) && !level.contains(&child) {
                    level.push(child);
                }
            }
        }
    }
    Ok(accounts)
}

/// A unit's accounts and its child units.
type UnitListing = (Vec<AccountId>, Vec<String>);

/// One unit's accounts and child units.
async fn list_unit(
    client: &aws_sdk_organizations::Client,
    region: &str,
    unit: String,
) -> Result<UnitListing, CallError> {
    let subject = format!("organizational unit {unit}");
    let mut accounts = Vec::new();
    let mut pages = client
        .list_accounts_for_parent()
        .parent_id(&unit)
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            CallError::from_sdk(
                &err,
                &subject,
                region,
                "organizations:ListAccountsForParent",
            )
        })?;
        accounts.extend(
            page.accounts()
                .iter()
                .filter_map(|a| a.id())
                .map(AccountId::as_recorded),
        );
    }
    let mut children = Vec::new();
    let mut pages = client
        .list_organizational_units_for_parent()
        .parent_id(&unit)
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            CallError::from_sdk(
                &err,
                &subject,
                region,
                "organizations:ListOrganizationalUnitsForParent",
            )
        })?;
        children.extend(
            page.organizational_units()
                .iter()
                .filter_map(|u| u.id())
                .map(str::to_owned),
        );
    }
    Ok((accounts, children))
}
