//! One restore at a time per account, shared by everyone who asked for it.
//!
//! Every event handler and the sweep ask for an account's restore through its lane. A request
//! takes a ticket and adds its regions (and the techniques its events explain) to the lane's
//! pending set; the restore that next starts takes everything pending and covers every ticket
//! issued before it started. So ten StopLoggings in a row in one account are one restore (two
//! at most: the one already running may have read the state before the last of them), one
//! noisy account holds at most one restore worker, and the sweep and the events never restore
//! the same account at once.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use trailwarden_model::target::AccountId;

/// Which regions a restore must read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regions {
    /// Every region the sweep selection covers.
    All,
    Some(BTreeSet<String>),
}

impl Regions {
    fn absorb(&mut self, other: Regions) {
        match (&mut *self, other) {
            (Regions::All, _) => {}
            (this, Regions::All) => *this = Regions::All,
            (Regions::Some(these), Regions::Some(those)) => these.extend(those),
        }
    }
}

/// What one restore must cover: the union of the pending requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub regions: Regions,
    /// Techniques that the requests' own events explain: findings of these are already
    /// detections, so the restore does not record them again.
    pub explained: BTreeSet<String>,
    /// Restore the account's state against the baseline.
    pub state: bool,
    /// Check (and restore) trailwarden's forwarding rules.
    pub forwarding: bool,
}

impl Work {
    /// Nothing yet.
    pub fn none() -> Self {
        Self {
            regions: Regions::Some(BTreeSet::new()),
            explained: BTreeSet::new(),
            state: false,
            forwarding: false,
        }
    }

    fn absorb(&mut self, other: Work) {
        self.regions.absorb(other.regions);
        self.explained.extend(other.explained);
        self.state |= other.state;
        self.forwarding |= other.forwarding;
    }
}

#[derive(Debug)]
struct Pending {
    tickets: u64,
    work: Work,
}

#[derive(Debug)]
struct Done<T> {
    covered: u64,
    result: Option<T>,
    /// When the last restore of this account ended, and how many restores in a row that found
    /// nothing to change followed one another closely (an account whose events flood in
    /// while its state is fine).
    last_end: Option<Instant>,
    streak: u32,
}

#[derive(Debug)]
struct Lane<T> {
    pending: Mutex<Pending>,
    done: tokio::sync::Mutex<Done<T>>,
}

/// What a restore tells its lane: whether it changed anything.
pub trait Outcome: Clone {
    fn changed(&self) -> bool;
}

/// The lanes of every account, and the bound on restores in flight across accounts.
#[derive(Debug)]
pub struct Lanes<T> {
    lanes: Mutex<HashMap<AccountId, Arc<Lane<T>>>>,
    workers: Semaphore,
}

impl<T: Outcome> Lanes<T> {
    /// At most `workers` restores in flight at once, whatever the accounts.
    pub fn new(workers: usize) -> Self {
        Self {
            lanes: Mutex::default(),
            workers: Semaphore::new(workers.max(1)),
        }
    }

    fn lane(&self, account: &AccountId) -> Arc<Lane<T>> {
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(account.clone())
            .or_insert_with(|| {
                Arc::new(Lane {
                    pending: Mutex::new(Pending {
                        tickets: 0,
                        work: Work::none(),
                    }),
                    done: tokio::sync::Mutex::new(Done {
                        covered: 0,
                        result: None,
                        last_end: None,
                        streak: 0,
                    }),
                })
            })
            .clone()
    }

    /// Asks for `work` in `account`; returns the result of the first restore that started
    /// after this request (run by this caller with `run`, or shared from another caller's).
    /// A failed restore (`Err`) covers nobody: its work goes back to the pending set.
    pub async fn restore<E, F, Fut>(&self, account: &AccountId, work: Work, run: F) -> Result<T, E>
    where
        F: FnOnce(Work) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let lane = self.lane(account);
        let ticket = {
            let mut p = lane.pending.lock().unwrap_or_else(PoisonError::into_inner);
            p.tickets += 1;
            p.work.absorb(work);
            p.tickets
        };
        let mut done = lane.done.lock().await;
        if done.covered >= ticket
            && let Some(result) = &done.result
        {
            return Ok(result.clone());
        }
        // Restores that keep finding nothing to change, one right after another (a flood of
        // events while the account's state is fine), are spaced out: what arrives meanwhile
        // joins the next one, and the account's calls do not crowd out the others'. A restore
        // that changed something resets it: an attacker who really keeps tampering is
        // restored at once, every time.
        if let Some(last) = done.last_end
            && last.elapsed() < STREAK_GAP
            && let Some(wait) = spacing(done.streak).checked_sub(last.elapsed())
        {
            tokio::time::sleep(wait).await;
        }
        // Everything asked for so far, atomically with the tickets it covers.
        let (covering, work) = {
            let mut p = lane.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let work = std::mem::replace(&mut p.work, Work::none());
            (p.tickets, work)
        };
        let _worker = self.workers.acquire().await;
        let result = run(work.clone()).await;
        let close = done.last_end.is_some_and(|l| l.elapsed() < STREAK_GAP);
        done.last_end = Some(Instant::now());
        match result {
            Ok(result) => {
                done.streak = if result.changed() || !close {
                    0
                } else {
                    done.streak + 1
                };
                done.covered = covering;
                done.result = Some(result.clone());
                Ok(result)
            }
            Err(e) => {
                let mut p = lane.pending.lock().unwrap_or_else(PoisonError::into_inner);
                p.work.absorb(work);
                Err(e)
            }
        }
    }
}

/// Restores of one account this close together count as a streak.
const STREAK_GAP: Duration = Duration::from_secs(10);

/// The least time between the end of one restore and the start of the next after `streak`
/// restores in a row that changed nothing: none for the first two, then 1 s, 2 s, up to 4 s.
fn spacing(streak: u32) -> Duration {
    match streak {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1 << (n - 2).min(2)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_streak_of_restores_is_spaced_out() {
        let waits: Vec<u64> = (0..7).map(|n| super::spacing(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 4, 4]);
    }

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    impl super::Outcome for usize {
        fn changed(&self) -> bool {
            true
        }
    }

    impl super::Outcome for u32 {
        fn changed(&self) -> bool {
            true
        }
    }

    fn regions(names: &[&str]) -> Work {
        Work {
            regions: Regions::Some(names.iter().map(|r| (*r).to_owned()).collect()),
            state: true,
            ..Work::none()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_in_one_account_is_at_most_two_restores_covering_every_region() {
        let lanes: Arc<Lanes<usize>> = Arc::new(Lanes::new(4));
        let runs = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::<Work>::new()));
        let account: AccountId = "111111111111".parse().unwrap();
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (lanes, runs, seen, account) =
                (lanes.clone(), runs.clone(), seen.clone(), account.clone());
            tasks.push(tokio::spawn(async move {
                let region = if i % 2 == 0 { "us-east-1" } else { "eu-west-1" };
                lanes
                    .restore(&account, regions(&[region]), |work| async move {
                        seen.lock().unwrap().push(work);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(runs.fetch_add(1, Ordering::SeqCst) + 1)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
        let runs = runs.load(Ordering::SeqCst);
        assert!((1..=3).contains(&runs), "{runs} restores for one burst");
        // Every region asked for was in some restore.
        let seen = seen.lock().unwrap();
        for region in ["us-east-1", "eu-west-1"] {
            assert!(
                seen.iter()
                    .any(|w| matches!(&w.regions, Regions::Some(r) if r.contains(region))),
                "{seen:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_made_during_a_restore_gets_a_restore_that_starts_after_it() {
        let lanes: Arc<Lanes<u32>> = Arc::new(Lanes::new(4));
        let account: AccountId = "111111111111".parse().unwrap();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let first = {
            let (lanes, account) = (lanes.clone(), account.clone());
            tokio::spawn(async move {
                lanes
                    .restore(&account, regions(&["us-east-1"]), |_| async move {
                        let _ = started_tx.send(());
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, ()>(1)
                    })
                    .await
            })
        };
        started_rx.await.unwrap();
        // Asked while the first one runs (it may have read the state already): a new one.
        let second = lanes
            .restore(&account, regions(&["us-east-1"]), |_| async {
                Ok::<_, ()>(2)
            })
            .await;
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(second, Ok(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accounts_do_not_wait_for_each_other_and_a_failure_leaves_the_work_pending() {
        let lanes: Arc<Lanes<u32>> = Arc::new(Lanes::new(2));
        let noisy: AccountId = "111111111111".parse().unwrap();
        let quiet: AccountId = "222222222222".parse().unwrap();
        let slow = {
            let (lanes, noisy) = (lanes.clone(), noisy.clone());
            tokio::spawn(async move {
                lanes
                    .restore(&noisy, regions(&["us-east-1"]), |_| async {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        Ok::<_, ()>(1)
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = std::time::Instant::now();
        let quick = lanes
            .restore(&quiet, regions(&["us-east-1"]), |_| async {
                Ok::<_, ()>(7)
            })
            .await;
        assert_eq!(quick, Ok(7));
        assert!(started.elapsed() < Duration::from_millis(300));
        assert_eq!(slow.await.unwrap(), Ok(1));
        // A failed restore: the next request runs again with the failed one's regions too.
        let failed = lanes
            .restore(&quiet, regions(&["eu-west-1"]), |_| async {
                Err::<u32, _>("boom")
            })
            .await;
        assert_eq!(failed, Err("boom"));
        let retried = lanes
            .restore(&quiet, regions(&["ap-south-1"]), |work| async move {
                Ok::<_, &str>(match work.regions {
                    Regions::Some(r) => r.len() as u32,
                    Regions::All => 0,
                })
            })
            .await;
        assert_eq!(retried, Ok(2));
    }
}
