//! Reading the real state of the selected accounts × regions (what `audit`, `remediate`, the
//! guard's restores and its sweeps compare with the baseline), and turning a healthy state
//! into a baseline.
//!
//! Progress is reported through a callback, never drawn here: the CLI draws a bar, the
//! service and the Lambda ignore it.

use std::collections::BTreeMap;
use trailwarden_aws::ClientFactory;
use trailwarden_aws::fanout::{self, Account, Selection, SelectionError, Skipped};
use trailwarden_aws::snapshot::{AlsoRead, Phase, Snapshots, snapshot_accounts};
use trailwarden_model::clock;
use trailwarden_model::organization::Membership;
use trailwarden_model::target::{AccountId, Gap};
use trailwarden_posture::baseline::OrganizationRecord;
use trailwarden_posture::{AccountSnapshot, Baseline, Settings, audit_account};

/// How far [`read_state`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadProgress {
    /// Assuming roles and discovering enabled regions.
    Resolving,
    /// Reading `accounts` accounts, the largest in `regions` regions: `cells` units of work
    /// to begin with (more are added as trails and their resources are found).
    Reading {
        accounts: usize,
        regions: usize,
        cells: usize,
    },
    /// One unit of work done; units after the first phase also add themselves to the total.
    Step(Phase),
    Done,
}

/// Ignores progress (services, the Lambda, tests).
pub fn no_progress(_: ReadProgress) {}

/// The accounts reached and their snapshots; every account or region that could not be
/// read is in `snapshots.gaps` (resolution gaps first).
#[derive(Debug)]
pub struct State {
    pub accounts: Vec<Account>,
    pub snapshots: Snapshots,
    /// Named regions not enabled for an account: not read, and no gap (nothing can happen
    /// there).
    pub not_enabled: Vec<Gap>,
    /// What Organizations said, when the selection asked it.
    pub organization: Option<Membership>,
    /// Accounts left out on purpose (excluded, or not active in the organization).
    pub skipped: Vec<Skipped>,
}

/// Resolves `selection` (roles, enabled regions) and reads every account's snapshot: the
/// resources its trails name, plus those `baseline` names for it (so that an attacker who
/// detaches a key from the trail does not hide the key's state too).
pub async fn read_state(
    factory: &ClientFactory,
    selection: &Selection,
    baseline: &[AccountSnapshot],
    progress: &(dyn Fn(ReadProgress) + Sync),
) -> Result<State, SelectionError> {
    progress(ReadProgress::Resolving);
    let resolution = fanout::resolve(factory, selection).await?;
    progress(ReadProgress::Reading {
        accounts: resolution.accounts.len(),
        regions: resolution
            .accounts
            .iter()
            .map(|a| a.regions.len())
            .max()
            .unwrap_or(0),
        cells: resolution.accounts.iter().map(|a| a.regions.len()).sum(),
    });
    let also: BTreeMap<AccountId, AlsoRead> = baseline
        .iter()
        .map(|a| (a.account.clone(), AlsoRead::from_snapshot(a)))
        .collect();
    let on_step = |phase: Phase| progress(ReadProgress::Step(phase));
    let mut snapshots =
        snapshot_accounts(&resolution.accounts, selection.concurrency, &also, &on_step).await;
    progress(ReadProgress::Done);
    let mut gaps = resolution.gaps;
    gaps.append(&mut snapshots.gaps);
    snapshots.gaps = gaps;
    Ok(State {
        accounts: resolution.accounts,
        snapshots,
        not_enabled: resolution.not_enabled,
        organization: resolution.organization,
        skipped: resolution.skipped,
    })
}

/// A baseline made of healthy snapshots, and what it declares good that a reviewer should
/// look at twice (posture problems at capture time, trails that do not log).
#[derive(Debug)]
pub struct Captured {
    pub baseline: Baseline,
    /// One sentence each, naming the account and the resource.
    pub warnings: Vec<String>,
}

/// The baseline of `snapshots`, as `trailwarden baseline capture` writes it: delivery health
/// (an observation) left out, policies pretty-printed so a change reads as a diff in review.
/// `organization`: when the accounts were found through Organizations, its members are
/// recorded, so that one leaving later is reported (catalog G1).
pub fn capture(
    snapshots: Vec<AccountSnapshot>,
    organization: Option<&Membership>,
    captured_by: &str,
) -> Captured {
    let settings = Settings::default();
    let mut warnings = Vec::new();
    for snapshot in &snapshots {
        for f in audit_account(snapshot, snapshot, &settings) {
            warnings.push(format!(
                "capturing as good: account {} {}: {} [{}]",
                f.account, f.region, f.title, f.rule_id
            ));
        }
        for t in snapshot.trails.iter().filter(|t| !t.logging && !t.foreign) {
            warnings.push(format!(
                "capturing as good: account {} trail {} in {} is not logging; the baseline will not require it to log",
                snapshot.account, t.name, t.home_region
            ));
        }
    }
    let accounts = snapshots
        .into_iter()
        .map(|mut s| {
            for t in &mut s.trails {
                t.delivery = None;
            }
            for b in &mut s.buckets {
                b.policy = b.policy.take().map(|p| pretty_json(&p));
            }
            for k in &mut s.keys {
                k.policy = k.policy.take().map(|p| pretty_json(&p));
            }
            s
        })
        .collect();
    Captured {
        baseline: Baseline {
            format: trailwarden_posture::baseline::FORMAT,
            captured_at: clock::now_rfc3339(),
            captured_by: captured_by.to_owned(),
            settings,
            organization: organization.map(|m| OrganizationRecord {
                id: m.organization_id.clone(),
                management_account: m.management_account.clone(),
                members: m.members.iter().map(|member| member.id.clone()).collect(),
            }),
            defaults: None,
            accounts,
        },
        warnings,
    }
}

fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| text.to_owned())
}
