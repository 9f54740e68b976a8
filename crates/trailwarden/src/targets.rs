//! From the global options to resolved accounts (shared by every command that reads AWS).

use crate::args::GlobalArgs;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::fanout::{Selection, SelectionError};
use trailwarden_aws::organization;
use trailwarden_model::target::AccountId;

/// The selection the options ask for; `fallback_accounts` (a baseline's) apply when
/// --accounts is absent but --role-name is given.
pub fn selection(g: &GlobalArgs, fallback_accounts: Option<Vec<AccountId>>) -> Selection {
    let organization = g.organization_scope();
    let accounts = g
        .account_list()
        .or_else(|| fallback_accounts.filter(|_| g.role_name.is_some() && organization.is_none()));
    Selection {
        accounts,
        organization,
        exclude_accounts: g.exclude_accounts.clone(),
        role_name: g.role_name.clone(),
        regions: g.regions.clone(),
        concurrency: usize::from(g.concurrency),
    }
}

/// The account ids `scan` keeps (empty: every account): those named, plus those Organizations
/// finds in the named units or organization (active ones), minus exclusions.
pub async fn account_filter(
    factory: &ClientFactory,
    g: &GlobalArgs,
) -> anyhow::Result<Vec<AccountId>> {
    let mut ids = g.account_list().unwrap_or_default();
    if let Some(scope) = g.organization_scope() {
        let membership = organization::discover(&factory.caller(), factory.home_region(), &scope)
            .await
            .map_err(SelectionError::Organization)?;
        for id in &membership.in_scope {
            if membership.member(id).is_some_and(|m| m.is_active()) && !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        if ids.is_empty() {
            anyhow::bail!("the organization scope of --accounts holds no active account");
        }
    }
    ids.retain(|id| !g.exclude_accounts.contains(id));
    Ok(ids)
}
