//! From a selection (`--accounts`, `--role-name`, `--regions`) to resolved accounts with their
//! enabled regions, and bounded-concurrency work over every account × region.

use crate::client::{AccountConfig, ClientFactory};
use crate::failure::{GapScope, gap_from_sdk};
use crate::organization::{self, Membership};
use futures::StreamExt;
use serde::Serialize;
use std::future::Future;
use trailwarden_model::target::{
    AccountId, Gap, GapKind, OrganizationScope, RegionSelection, Target, partition_of_arn,
    partition_of_region,
};

/// What to visit.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `None` (and no `organization`): the caller's own account, with the caller's credentials.
    pub accounts: Option<Vec<AccountId>>,
    /// Accounts found in AWS Organizations with the caller's credentials, visited together
    /// with `accounts`.
    pub organization: Option<OrganizationScope>,
    /// Never visited, whether listed or found in the organization.
    pub exclude_accounts: Vec<AccountId>,
    /// Role assumed in each of `accounts` (`arn:<partition>:iam::<id>:role/<role_name>`).
    pub role_name: Option<String>,
    pub regions: RegionSelection,
    /// Calls in flight at once, across all accounts and regions.
    pub concurrency: usize,
}

/// An account we could reach, with the regions to visit in it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: AccountId,
    /// The principal our calls run as there (an assumed-role ARN, or the caller's ARN).
    pub principal_arn: String,
    pub partition: String,
    /// The selected regions that are enabled for this account, sorted.
    pub regions: Vec<String>,
    pub clients: AccountConfig,
}

/// Accounts reached, and the accounts or regions that could not be.
#[derive(Debug, Default)]
pub struct Resolution {
    pub accounts: Vec<Account>,
    pub gaps: Vec<Gap>,
    /// Regions named in the selection that are not enabled for an account: nothing can
    /// happen there (no call succeeds in a disabled region), so they are no gap; reported so
    /// that a typo or a region enabled later does not go unnoticed.
    pub not_enabled: Vec<Gap>,
    /// What Organizations said, when the selection asked it.
    pub organization: Option<Membership>,
    /// Accounts of the selection that were not visited on purpose, and why.
    pub skipped: Vec<Skipped>,
}

/// An account left out on purpose: excluded, or not active in the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub account: AccountId,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error("--accounts needs --role-name: the role to assume in each account")]
    RoleNameMissing,
    #[error(
        "cannot list the organization's accounts: {0}. Run from the management account or a delegated administrator, with organizations:DescribeOrganization, ListAccounts, ListAccountsForParent and ListOrganizationalUnitsForParent"
    )]
    Organization(crate::failure::CallError),
    #[error("no account left to visit: {0}")]
    NothingSelected(String),
    #[error(
        "could not tell who the caller is (sts:GetCallerIdentity in {region}): {message}. Check the credentials (AWS_PROFILE / --profile, AWS_ACCESS_KEY_ID) and --endpoint-url"
    )]
    CallerUnknown { region: String, message: String },
}

/// Who the caller is (sts:GetCallerIdentity): its account and principal ARN.
pub async fn caller_identity(
    factory: &ClientFactory,
) -> Result<(AccountId, String), SelectionError> {
    let home = factory.home_region().to_owned();
    let identity = factory
        .caller()
        .sts(&home)
        .get_caller_identity()
        .send()
        .await
        .map_err(|err| SelectionError::CallerUnknown {
            region: home.clone(),
            message: aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        })?;
    let id: AccountId = identity
        .account()
        .unwrap_or_default()
        .parse()
        .map_err(|_| SelectionError::CallerUnknown {
            region: home.clone(),
            message: format!("unexpected account id {:?}", identity.account()),
        })?;
    Ok((id, identity.arn().unwrap_or_default().to_owned()))
}

/// The role name of an assumed-role session ARN (`arn:aws:sts::1:assumed-role/ROLE/SESSION`).
pub fn role_of_session(arn: &str) -> Option<&str> {
    let rest = arn.split(":assumed-role/").nth(1)?;
    rest.split('/').next().filter(|r| !r.is_empty())
}

/// Resolves the selection: assumes roles, discovers enabled regions. Accounts are handled
/// concurrently; a failing account becomes a gap and the others go on.
pub async fn resolve(
    factory: &ClientFactory,
    selection: &Selection,
) -> Result<Resolution, SelectionError> {
    let home = factory.home_region().to_owned();
    let mut resolution = Resolution::default();
    let listed = listed_accounts(factory, selection, &mut resolution).await?;
    let Some(ids) = &listed else {
        let clients = factory.caller();
        let (id, arn) = caller_identity(factory).await?;
        match finish_account(id, arn, clients, &home, &selection.regions).await {
            Ok((account, gaps)) => {
                resolution.accounts.push(account);
                resolution.not_enabled.extend(gaps);
            }
            Err(gap) => resolution.gaps.push(gap),
        }
        return Ok(resolution);
    };
    let role_name = selection
        .role_name
        .as_deref()
        .ok_or(SelectionError::RoleNameMissing)?;
    let partition = partition_of_region(&home);
    // Owned items and typed closure arguments throughout: a closure over borrowed items gets a
    // higher-ranked signature, and the compiler then cannot prove the whole future Send (the
    // guard's handlers run on spawned tasks).
    let results: Vec<Result<(Account, Vec<Gap>), Gap>> = futures::stream::iter(ids.iter().cloned())
        .map(|id: AccountId| {
            let role_arn = format!("arn:{partition}:iam::{id}:role/{role_name}");
            let home = home.clone();
            async move {
                let clients = factory.assume_role(&role_arn).await;
                let identity = clients
                    .sts(&home)
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|err| {
                        let mut gap =
                            gap_from_sdk(&err, &id, None, "sts:AssumeRole", GapScope::Account);
                        gap.message = format!("assuming {role_arn}: {}", gap.message);
                        gap
                    })?;
                let arn = identity.arn().unwrap_or_default().to_owned();
                if identity.account() != Some(id.as_str()) {
                    return Err(Gap {
                        account: id.clone(),
                        region: None,
                        operation: "sts:AssumeRole".into(),
                        kind: GapKind::ServiceError,
                        code: None,
                        message: format!(
                            "assuming {role_arn} gave credentials for account {:?}, not {id}",
                            identity.account()
                        ),
                    });
                }
                finish_account(id, arn, clients, &home, &selection.regions).await
            }
        })
        .buffer_unordered(selection.concurrency.max(1))
        .collect()
        .await;
    for result in results {
        match result {
            Ok((account, gaps)) => {
                resolution.accounts.push(account);
                resolution.gaps.extend(gaps);
            }
            Err(gap) => resolution.gaps.push(gap),
        }
    }
    let (not_enabled, gaps) = std::mem::take(&mut resolution.gaps)
        .into_iter()
        .partition(|g| g.kind == GapKind::RegionNotEnabled);
    resolution.gaps = gaps;
    resolution.not_enabled = not_enabled;
    resolution.accounts.sort_by(|a, b| a.id.cmp(&b.id));
    resolution.gaps.sort_by(|a, b| {
        (&a.account, &a.region, &a.operation).cmp(&(&b.account, &b.region, &b.operation))
    });
    Ok(resolution)
}

/// The accounts to assume roles in: those listed, plus those Organizations finds in scope,
/// minus exclusions and inactive members (each noted in `resolution.skipped`). `None`: the
/// caller's own account. Calls no member account (`scan` prunes log keys with it).
pub async fn listed_accounts(
    factory: &ClientFactory,
    selection: &Selection,
    resolution: &mut Resolution,
) -> Result<Option<Vec<AccountId>>, SelectionError> {
    let mut ids: Vec<AccountId> = selection.accounts.clone().unwrap_or_default();
    if let Some(scope) = &selection.organization {
        let membership = organization::discover(&factory.caller(), factory.home_region(), scope)
            .await
            .map_err(SelectionError::Organization)?;
        for id in &membership.in_scope {
            match membership.member(id) {
                Some(member) if !member.is_active() => resolution.skipped.push(Skipped {
                    account: id.clone(),
                    reason: format!(
                        "{} in the organization: nothing can be read or restored there",
                        member.state
                    ),
                }),
                _ if ids.contains(id) => {}
                _ => ids.push(id.clone()),
            }
        }
        resolution.organization = Some(membership);
    } else if selection.accounts.is_none() {
        return Ok(None);
    }
    ids.retain(|id| {
        let excluded = selection.exclude_accounts.contains(id);
        if excluded {
            resolution.skipped.push(Skipped {
                account: id.clone(),
                reason: "excluded (--exclude-accounts)".into(),
            });
        }
        !excluded
    });
    resolution.skipped.sort_by(|a, b| a.account.cmp(&b.account));
    if ids.is_empty() {
        let why = if resolution.skipped.is_empty() {
            "the organization scope holds no account".to_owned()
        } else {
            format!(
                "all {} selected account(s) were skipped",
                resolution.skipped.len()
            )
        };
        return Err(SelectionError::NothingSelected(why));
    }
    ids.sort();
    Ok(Some(ids))
}

/// Region discovery and selection for an account whose credentials work.
async fn finish_account(
    id: AccountId,
    principal_arn: String,
    clients: AccountConfig,
    home: &str,
    wanted: &RegionSelection,
) -> Result<(Account, Vec<Gap>), Gap> {
    let partition = partition_of_arn(&principal_arn)
        .unwrap_or_else(|| partition_of_region(home))
        .to_owned();
    let discovered = enabled_regions(&clients, &id, home, &partition).await;
    let mut gaps = Vec::new();
    let regions = match (wanted, discovered) {
        (RegionSelection::AllEnabled, Ok(enabled)) => enabled,
        (RegionSelection::AllEnabled, Err(mut gap)) => {
            gap.message = format!(
                "cannot discover the enabled regions, so no region was read: {}. Grant ec2:DescribeRegions or pass --regions explicitly",
                gap.message
            );
            return Err(gap);
        }
        (RegionSelection::List(list), Ok(enabled)) => {
            let mut keep = Vec::new();
            for region in list {
                if enabled.contains(region) {
                    keep.push(region.clone());
                } else {
                    gaps.push(Gap {
                        account: id.clone(),
                        region: Some(region.clone()),
                        operation: "ec2:DescribeRegions".into(),
                        kind: GapKind::RegionNotEnabled,
                        code: None,
                        message: format!(
                            "region {region} is not enabled for this account, or does not exist in partition {partition} (nothing can happen there); enabled: {}",
                            enabled.join(",")
                        ),
                    });
                }
            }
            keep
        }
        // Discovery is only a check here: the user named the regions, so try them.
        (RegionSelection::List(list), Err(_)) => list.clone(),
    };
    Ok((
        Account {
            id,
            principal_arn,
            partition,
            regions,
            clients,
        },
        gaps,
    ))
}

/// Regions enabled for the account in its partition, as EC2 DescribeRegions reports them.
async fn enabled_regions(
    clients: &AccountConfig,
    id: &AccountId,
    home: &str,
    partition: &str,
) -> Result<Vec<String>, Gap> {
    let reply = clients
        .ec2(home)
        .describe_regions()
        .all_regions(true)
        .send()
        .await
        .map_err(|err| gap_from_sdk(&err, id, None, "ec2:DescribeRegions", GapScope::Account))?;
    let mut regions: Vec<String> = reply
        .regions()
        .iter()
        .filter(|r| {
            // Absent status (older APIs, emulators) means enabled; AWS always sets it.
            !matches!(r.opt_in_status(), Some("not-opted-in"))
        })
        .filter_map(|r| r.region_name())
        .filter(|name| partition_of_region(name) == partition)
        .map(str::to_owned)
        .collect();
    regions.sort();
    regions.dedup();
    Ok(regions)
}

/// Runs `work` for every account × region, at most `concurrency` at once. Results come back
/// sorted by target; `on_done` is called as each one finishes (for progress bars).
pub async fn for_each_region<'a, T, F, Fut>(
    accounts: &'a [Account],
    concurrency: usize,
    on_done: &(dyn Fn(&Target) + Sync),
    work: F,
) -> Vec<(Target, Result<T, Gap>)>
where
    F: Fn(&'a Account, String) -> Fut,
    Fut: Future<Output = Result<T, Gap>>,
{
    // The futures are made before they are polled, so no closure over borrowed accounts is
    // part of the returned future: with one, the compiler cannot prove it Send (rustc
    // #110338), and the guard's handlers run on spawned tasks.
    let cells: Vec<(&'a Account, String)> = accounts
        .iter()
        .flat_map(|account| account.regions.iter().map(move |r| (account, r.clone())))
        .collect();
    let pending: Vec<_> = cells
        .into_iter()
        .map(|(account, region)| {
            let target = Target {
                account: account.id.clone(),
                region: region.clone(),
            };
            let fut = work(account, region);
            async move {
                let result = fut.await;
                on_done(&target);
                (target, result)
            }
        })
        .collect();
    let mut results: Vec<(Target, Result<T, Gap>)> = futures::stream::iter(pending)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
}
