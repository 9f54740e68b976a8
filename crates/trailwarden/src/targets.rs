//! From the global options to resolved accounts (shared by every command that reads AWS).

use crate::args::GlobalArgs;
use crate::progress::Progress;
use anyhow::Result;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::fanout::{self, Resolution, Selection};
use trailwarden_model::target::AccountId;

/// The selection the options ask for; `fallback_accounts` (a baseline's) apply when
/// --accounts is absent but --role-name is given.
pub fn selection(g: &GlobalArgs, fallback_accounts: Option<Vec<AccountId>>) -> Selection {
    let accounts = g
        .account_list()
        .or_else(|| fallback_accounts.filter(|_| g.role_name.is_some()));
    Selection {
        accounts,
        role_name: g.role_name.clone(),
        regions: g.regions.clone(),
        concurrency: usize::from(g.concurrency),
    }
}

pub async fn resolve(
    factory: &ClientFactory,
    selection: &Selection,
    progress: &Progress,
) -> Result<Resolution> {
    progress.set_message("resolving accounts and regions");
    Ok(fanout::resolve(factory, selection).await?)
}
