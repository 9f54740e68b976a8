//! From the global options to resolved accounts (shared by every command that reads AWS).

use crate::args::GlobalArgs;
use trailwarden_aws::fanout::Selection;
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
