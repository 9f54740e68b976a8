//! What AWS Organizations says about the accounts: members, their state, and which of them a
//! selection (`--accounts org`, `--accounts ou-…`) covers.

use crate::target::AccountId;
use serde::{Deserialize, Serialize};

/// One member account as Organizations reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: AccountId,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`, `CLOSED`, ... (`State`, else the older `Status`).
    pub state: String,
}

impl Member {
    /// Only active accounts can be swept: a suspended or closed account answers nothing.
    pub fn is_active(&self) -> bool {
        self.state == "ACTIVE"
    }
}

/// The organization as listed now: every member, and the members inside the requested scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub organization_id: String,
    pub management_account: AccountId,
    /// Every account of the organization, in every state, sorted by id.
    pub members: Vec<Member>,
    /// The members inside the requested scope (all of them for the whole organization), sorted.
    pub in_scope: Vec<AccountId>,
}

impl Membership {
    pub fn member(&self, id: &AccountId) -> Option<&Member> {
        self.members.iter().find(|m| &m.id == id)
    }
}
