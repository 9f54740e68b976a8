//! From the global options to resolved accounts (shared by every command that reads AWS).

use crate::args::GlobalArgs;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::fanout::{self, Resolution, Selection};
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

/// The account ids `scan` keeps (empty: every account): those named, plus the active ones
/// Organizations finds in the named units or organization, minus exclusions.
pub async fn account_filter(
    factory: &ClientFactory,
    g: &GlobalArgs,
) -> anyhow::Result<Vec<AccountId>> {
    let mut noted = Resolution::default();
    let ids = fanout::listed_accounts(factory, &selection(g, None), &mut noted).await?;
    Ok(ids.unwrap_or_default())
}
