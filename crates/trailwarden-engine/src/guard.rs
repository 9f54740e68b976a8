//! The guard: what happens to one forwarded event or one S3 log-file notification, and to a
//! sweep. Shared by `trailwarden watch` (the queue service) and `trailwarden-lambda` (one
//! invocation per EventBridge event). Reads no queue and serves nothing itself.
//!
//! It believes only what it can check ([`crate::provenance`]): envelopes from AWS for the
//! baseline's accounts, log files of the baseline's buckets under their own prefixes, and its
//! own calls by the credentials it obtained. Restores go through one lane per account
//! ([`crate::lanes`]), so a flood in one account coalesces and never holds another account's
//! restore, and the sweep never restores an account at the same time as an event does.
//! Whatever it finds, by event or by sweep, is a detection: recorded, grouped into incidents,
//! notified, and escalated when it repeats.

use crate::forwarding::Forwarding;
use crate::journal::{Detection, Journal, JournalError, OwnCredential};
use crate::lanes::{Lanes, Regions, Work};
use crate::metrics::Metrics;
use crate::notify::Sinks;
use crate::provenance::{self, Caller, OwnKeys, Rejection};
use crate::respond::{Report, RespondError, restore};
use crate::state::no_progress;
use futures::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tracing::{info, warn};
use trailwarden_aws::fanout::Selection;
use trailwarden_aws::organization;
use trailwarden_aws::{ClientFactory, SESSION_NAME_PREFIX};
use trailwarden_model::clock;
use trailwarden_model::finding::{Finding, Severity};
use trailwarden_model::outcome::Outcome;
use trailwarden_model::target::{AccountId, Gap, RegionSelection};
use trailwarden_posture::Baseline;
use trailwarden_posture::estate::{EstateView, audit_estate};
use trailwarden_records::envelope::{self, Message};
use trailwarden_records::{Item, ReadOptions, read_records};
use trailwarden_rules::{Remediation, RuleSet, event_finding};

/// How the guard acts, whoever runs it.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Restore restorable findings (and sweep findings); without it, detect and report only.
    pub remediate: bool,
    /// The role to assume in each member account (None: the caller's own account).
    pub role_name: Option<String>,
    /// Accounts and regions a sweep reads.
    pub sweep: Selection,
    /// Reads after a restore until it is verified.
    pub verify_attempts: u32,
    /// trailwarden's forwarding rules, checked (and restored) with every sweep and on events
    /// that touch them.
    pub forwarding: Option<Forwarding>,
    /// Names of the roles trailwarden itself runs as (besides `role_name`): a record that
    /// names one of them with a key trailwarden never obtained is an impersonation.
    pub own_role_names: Vec<String>,
    /// Sweeps in a row an account (or one of its regions) may be unreadable before that is
    /// itself an alert: the attacker may have locked trailwarden out.
    pub unread_alert_after: u32,
    /// Restores in flight at once, across accounts.
    pub restore_workers: usize,
    /// Accounts a sweep reads at once.
    pub sweep_accounts_at_once: usize,
}

impl GuardSettings {
    /// Settings with the defaults for everything but what must be said.
    pub fn new(remediate: bool, role_name: Option<String>, sweep: Selection) -> Self {
        Self {
            remediate,
            role_name,
            sweep,
            verify_attempts: 3,
            forwarding: None,
            own_role_names: Vec::new(),
            unread_alert_after: 2,
            restore_workers: 8,
            sweep_accounts_at_once: 4,
        }
    }

    /// Role names that are trailwarden's.
    fn own_roles(&self) -> Vec<String> {
        self.role_name
            .iter()
            .chain(&self.own_role_names)
            .cloned()
            .collect()
    }
}

/// Why a message was not handled. [`GuardError::RestoreNotVerified`] is worth retrying as it
/// is (the queue redelivers, Lambda retries); the others say what is wrong with the message
/// or with the responder.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("oversized message ({0} bytes; SQS allows 256 KiB)")]
    Oversized(usize),
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("neither an \"AWS API Call via CloudTrail\" event nor an S3 notification ({0})")]
    NotAnEvent(envelope::Unsupported),
    /// A log file named by an S3 notification could not be fetched.
    #[error(transparent)]
    Fetch(#[from] trailwarden_aws::CallError),
    /// A log file named by an S3 notification could not be read.
    #[error("{0}")]
    LogFile(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Respond(#[from] RespondError),
    #[error(
        "{RESTORE_NOT_VERIFIED}: {}; each step's error is in the journal and the log; left unhandled to be retried",
        .0.join("; ")
    )]
    RestoreNotVerified(Vec<String>),
}

/// How the error of a message whose restore did not verify begins.
pub const RESTORE_NOT_VERIFIED: &str = "restore not verified";

/// What became of one message.
#[derive(Debug)]
pub enum Handled {
    /// Believed and acted on; its detections (none when no rule matched).
    Detections(Vec<Detection>),
    /// Already handled (a redelivery): nothing done.
    Duplicate,
    /// Not believed: counted, logged, never acted on.
    Rejected(Rejection),
}

impl Handled {
    /// The detections, if any.
    pub fn detections(&self) -> &[Detection] {
        match self {
            Self::Detections(d) => d,
            _ => &[],
        }
    }
}

/// What one restore through an account's lane gave: shared by every request it covered.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Of the state restore (`NotRemediating` when none was asked for).
    pub outcome: Outcome,
    /// The state restore, when one was asked for.
    pub report: Option<Arc<Report>>,
    /// The check of trailwarden's forwarding rules, when one was asked for (and configured).
    pub forwarding: Option<Arc<ForwardingCheck>>,
}

impl crate::lanes::Outcome for Restored {
    fn changed(&self) -> bool {
        self.report.as_ref().is_some_and(|r| {
            r.steps
                .iter()
                .any(|s| s.outcome.as_deref() == Some("applied"))
        }) || self
            .forwarding
            .as_ref()
            .is_some_and(|f| f.drifted.len() > f.failed.len())
    }
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct SweepSummary {
    /// Each account's restore (or why it could not run).
    pub accounts: Vec<(AccountId, Result<Restored, String>)>,
    pub millis: u64,
}

impl SweepSummary {
    /// The state restores of the accounts swept.
    pub fn reports(&self) -> impl Iterator<Item = &Report> {
        self.accounts
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok()?.report.as_deref())
    }

    /// Findings that were not restored (state and forwarding rules).
    pub fn not_restored(&self) -> usize {
        self.reports()
            .map(|r| r.count(Outcome::NotRestored))
            .sum::<usize>()
            + self
                .accounts
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok()?.forwarding.as_ref())
                .map(|f| f.failed.len())
                .sum::<usize>()
    }

    /// Accounts whose sweep could not run.
    pub fn failed(&self) -> usize {
        self.accounts.iter().filter(|(_, r)| r.is_err()).count()
    }
}

/// The guard over one baseline. Cheap to clone: every task of a service holds one.
#[derive(Debug, Clone)]
pub struct Guard {
    pub factory: ClientFactory,
    pub rules: Arc<RuleSet>,
    pub baseline: Arc<Baseline>,
    pub journal: Arc<Journal>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<GuardSettings>,
    /// Where detections are notified (through the journal's outbox).
    pub sinks: Arc<Sinks>,
    /// Woken when a notification is queued, so the delivery loop sends it at once.
    pub notify_wake: Option<Arc<tokio::sync::Notify>>,
    lanes: Arc<Lanes<Restored>>,
    in_flight: Arc<InFlight>,
    /// Woken by a believed Organizations event: the sweep loop rediscovers soon.
    rediscover: Arc<tokio::sync::Notify>,
}

/// Events being handled in this process, by account and eventID: a second copy of one (SQS
/// delivers at least once, sometimes twice at once) waits for the first and is then a
/// duplicate, instead of being handled beside it.
#[derive(Debug, Default)]
struct InFlight {
    events: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl InFlight {
    /// Waits until no other task handles `key`, then holds it until the claim is dropped.
    async fn claim(self: &Arc<Self>, key: &str) -> Claim {
        let lock = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.to_owned())
            .or_default()
            .clone();
        Claim {
            _held: lock.lock_owned().await,
            key: key.to_owned(),
            owner: self.clone(),
        }
    }
}

/// A held event key; forgotten when the last holder is done.
struct Claim {
    _held: tokio::sync::OwnedMutexGuard<()>,
    key: String,
    owner: Arc<InFlight>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut events = self
            .owner
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Two references: the map's and the guard's own lock; none waiting.
        if events
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) <= 2)
        {
            events.remove(&self.key);
        }
    }
}

/// Detections of the same rule in the same account within this window count as one
/// repeating pattern.
pub const ESCALATION_WINDOW_MINUTES: u64 = 60;

/// Rule ids of what the guard finds about itself.
pub mod responder_rules {
    /// A call names trailwarden (its session prefix or one of its roles) with a key
    /// trailwarden never obtained.
    pub const IMPERSONATED: &str = "responder-impersonated";
    /// trailwarden's own credentials used for a call trailwarden never makes.
    pub const CREDENTIALS_MISUSED: &str = "responder-credentials-misused";
    /// An account (or region) no sweep could read, sweep after sweep.
    pub const ACCOUNT_UNREADABLE: &str = "responder-account-unreadable";
}

impl Guard {
    /// A guard; every session its factory obtains from now on is remembered in the journal,
    /// so that this process and others sharing the journal know trailwarden's own calls.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        factory: ClientFactory,
        rules: Arc<RuleSet>,
        baseline: Arc<Baseline>,
        journal: Arc<Journal>,
        metrics: Arc<Metrics>,
        settings: GuardSettings,
        sinks: Sinks,
        notify_wake: Option<Arc<tokio::sync::Notify>>,
    ) -> Self {
        remember_own_sessions(&factory, journal.clone());
        let workers = settings.restore_workers;
        Self {
            factory,
            rules,
            baseline,
            journal,
            metrics,
            settings: Arc::new(settings),
            sinks: Arc::new(sinks),
            notify_wake,
            lanes: Arc::new(Lanes::new(workers)),
            in_flight: Arc::default(),
            rediscover: Arc::default(),
        }
    }

    /// Returns when a believed Organizations event (an account created, invited, moved,
    /// removed, closed, or leaving) asks for a rediscovery. Requests made while nobody waits
    /// are kept as one: a burst of events is one rediscovery.
    pub async fn rediscovery_requested(&self) {
        self.rediscover.notified().await;
    }

    /// With `--accounts org|ou-…`: lists the organization again and records what the estate
    /// audit finds (an account nobody guards or that fails the baseline's defaults, an account
    /// that left or is no longer active) as detections, each once while it lasts. Returns the
    /// baseline accounts to sweep (all but excluded and inactive ones); `None` without an organization
    /// scope, or when the organization could not be listed (the sweep then covers the
    /// baseline's accounts, and the failure is logged and counted).
    pub async fn survey(&self) -> Option<Vec<AccountId>> {
        let scope = self.settings.sweep.organization.as_ref()?;
        let membership = match organization::discover(
            &self.factory.caller(),
            self.factory.home_region(),
            scope,
        )
        .await
        {
            Ok(m) => m,
            Err(e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "organization discovery failed; sweeping the baseline's accounts");
                return None;
            }
        };
        let excluded = &self.settings.sweep.exclude_accounts;
        let active_in_scope = |id: &AccountId| {
            membership.in_scope.contains(id)
                && membership.member(id).is_some_and(|m| m.is_active())
                && !excluded.contains(id)
        };
        let newcomers: Vec<AccountId> = membership
            .in_scope
            .iter()
            .filter(|id| active_in_scope(id) && self.baseline.account(id).is_none())
            .cloned()
            .collect();
        let mut observed = Vec::new();
        if self.baseline.defaults.is_some() && !newcomers.is_empty() {
            let selection = Selection {
                accounts: Some(newcomers.clone()),
                role_name: self.settings.role_name.clone(),
                regions: self.settings.sweep.regions.clone(),
                concurrency: self.settings.sweep.concurrency,
                ..Default::default()
            };
            match crate::state::read_state(&self.factory, &selection, &[], &no_progress).await {
                Ok(state) => {
                    for gap in &state.snapshots.gaps {
                        warn!(%gap, "new account not read against the defaults");
                    }
                    observed = state.snapshots.accounts;
                }
                Err(e) => warn!(error = %e, "new accounts not read against the defaults"),
            }
        }
        let findings = audit_estate(
            &self.baseline,
            &EstateView {
                membership: Some(&membership),
                excluded,
                enabled_regions: &BTreeMap::new(),
                home_region: self.factory.home_region(),
                observed: &observed,
            },
        );
        let now = clock::now_rfc3339();
        for finding in &findings {
            self.log_finding(finding);
            let mut d = Detection::new(finding, Outcome::Escalated, &now);
            d.event_id = Some(state_detection_id(&d, None));
            if let Err(e) = self.record(d) {
                warn!(error = %e, rule = %finding.rule_id, account = %finding.account, "estate detection not recorded");
            }
        }
        // Every baseline account stays swept, in scope or not: moving an account out of the
        // watched unit, or out of the organization, must not take it out of the backstop (it
        // is reported above; if it cannot be read any more, that becomes an alert too). Only
        // exclusions and accounts Organizations reports suspended or closed (reported above;
        // they answer nothing) are left out.
        let sweep: Vec<AccountId> = self
            .baseline
            .accounts
            .iter()
            .map(|a| a.account.clone())
            .filter(|id| {
                !excluded.contains(id) && membership.member(id).is_none_or(|m| m.is_active())
            })
            .collect();
        info!(
            members = membership.members.len(),
            in_scope = membership.in_scope.len(),
            newcomers = newcomers.len(),
            findings = findings.len(),
            "organization discovered"
        );
        Some(sweep)
    }

    /// One queue message: an EventBridge "AWS API Call via CloudTrail" event, or an S3
    /// notification of new CloudTrail log files (each object is fetched and scanned).
    /// `received` is when the message was dequeued (for the overhead measurement).
    pub async fn handle(&self, body: &str, received: Instant) -> Result<Handled, GuardError> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(GuardError::Oversized(body.len()));
        }
        let message: Value = serde_json::from_str(body)?;
        self.handle_message(&message, received).await
    }

    /// An already parsed message (the Lambda runtime hands the event over parsed).
    pub async fn handle_message(
        &self,
        message: &Value,
        received: Instant,
    ) -> Result<Handled, GuardError> {
        match envelope::classify(message) {
            Message::S3Notification(records) => {
                self.handle_s3_notification(records, received).await
            }
            Message::CloudTrail(e) => {
                self.metrics.events.fetch_add(1, Ordering::Relaxed);
                match provenance::check_envelope(&e, &self.baseline) {
                    Ok(account) => self.handle_record(&account, e.detail, received).await,
                    Err(rejection) => Ok(self.reject(rejection, e.detail)),
                }
            }
            Message::Scheduled(e) => Err(GuardError::NotAnEvent(envelope::Unsupported(format!(
                "a schedule ({}) is not an event",
                e.detail_type
            )))),
            Message::Unsupported(why) => Err(GuardError::NotAnEvent(why)),
        }
    }

    /// Counts and logs a message that is not believed; nothing else happens to it.
    fn reject(&self, rejection: Rejection, record: &Value) -> Handled {
        self.metrics.reject(rejection.reason());
        let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or("-");
        warn!(reason = rejection.reason(), event = text("eventID"), event_name = text("eventName"),
            error = %rejection, "message not believed; nothing done");
        Handled::Rejected(rejection)
    }

    async fn handle_s3_notification(
        &self,
        records: &[Value],
        received: Instant,
    ) -> Result<Handled, GuardError> {
        let objects: Vec<(&str, String)> = records
            .iter()
            .filter_map(|r| {
                Some((
                    r.pointer("/s3/bucket/name")?.as_str()?,
                    r.pointer("/s3/object/key")?.as_str()?.replace('+', " "),
                ))
            })
            .collect();
        // A notification naming a bucket the baseline does not know is not about our logs.
        for (bucket, _) in &objects {
            if let Err(rejection) = provenance::check_bucket(bucket, &self.baseline) {
                return Ok(self.reject(rejection, &Value::Null));
            }
        }
        let mut detections = Vec::new();
        for (bucket, key) in objects {
            if key.contains("CloudTrail-Digest") {
                continue;
            }
            let caller = self.factory.caller();
            // The baseline says which account owns the bucket: S3 refuses the reads if
            // another account owns it now.
            let owner = bucket_owner(&self.baseline, bucket);
            let region = trailwarden_aws::log_objects::bucket_region(
                &caller,
                self.factory.home_region(),
                bucket,
                owner.as_deref(),
            )
            .await?;
            let bytes = trailwarden_aws::log_objects::fetch(
                &caller,
                &region,
                bucket,
                &key,
                64 * 1024 * 1024,
                owner.as_deref(),
            )
            .await?;
            for record in self.matching_records(&bytes, &format!("s3://{bucket}/{key}"))? {
                if let Err(rejection) = provenance::check_record_place(&record, &key) {
                    self.reject(rejection, &record);
                    continue;
                }
                let account = record
                    .get("recipientAccountId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match provenance::in_baseline(account, &self.baseline) {
                    Ok(account) => {
                        self.metrics.events.fetch_add(1, Ordering::Relaxed);
                        if let Handled::Detections(d) =
                            self.handle_record(&account, &record, received).await?
                        {
                            detections.extend(d);
                        }
                    }
                    Err(rejection) => {
                        self.reject(rejection, &record);
                    }
                }
            }
        }
        Ok(Handled::Detections(detections))
    }

    /// The records of a log file that some rule matches; an unreadable file is an error
    /// naming it (the message is retried, then dead-lettered).
    fn matching_records(&self, bytes: &[u8], name: &str) -> Result<Vec<Value>, GuardError> {
        let mut records = Vec::new();
        let mut error = None;
        read_records(bytes, name, &ReadOptions::default(), |item| {
            match item {
                Item::Record { record, .. } => {
                    let mut matched = false;
                    self.rules.for_each_match(&record, |_, _| matched = true);
                    if matched {
                        records.push(record);
                    }
                }
                Item::Error(e) => {
                    error.get_or_insert_with(|| e.to_string());
                }
            }
            ControlFlow::Continue(())
        });
        match error {
            Some(e) => Err(GuardError::LogFile(e)),
            None => Ok(records),
        }
    }

    /// One believed CloudTrail record: dedup, who the caller is, decisions, restores,
    /// detections.
    async fn handle_record(
        &self,
        account: &AccountId,
        record: &Value,
        received: Instant,
    ) -> Result<Handled, GuardError> {
        let event_id = record
            .get("eventID")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // Dedup after validation, by account and event: a forged copy of a real event, even
        // one handled first, cannot make the real one a duplicate.
        let _claim = if event_id.is_empty() {
            None
        } else {
            Some(self.in_flight.claim(&format!("{account}/{event_id}")).await)
        };
        if !event_id.is_empty() && self.journal.event_handled(account.as_str(), &event_id)? {
            self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
            info!(event = %event_id, %account, "already handled (redelivered); skipped");
            return Ok(Handled::Duplicate);
        }
        if let Some(t) = record
            .get("eventTime")
            .and_then(Value::as_str)
            .and_then(clock::parse_rfc3339)
        {
            self.metrics.lag_millis.store(
                clock::now_millis().saturating_sub(t * 1000),
                Ordering::Relaxed,
            );
        }
        if self.settings.sweep.organization.is_some() && is_organization_change(record) {
            info!(%account, event = %event_id, "the organization changed: rediscovering");
            self.rediscover.notify_one();
        }
        let mut findings: Vec<(Finding, Remediation)> = Vec::new();
        self.rules.for_each_match(record, |rule, verdict| {
            findings.push((event_finding(rule, verdict, record, None), rule.remediation));
        });
        let caller = provenance::classify_caller(
            record,
            &OwnSessionKeys(self),
            &format!("{SESSION_NAME_PREFIX}-"),
            &self.settings.own_roles(),
        );
        if let Some(meta) = caller_finding(&caller, record, account) {
            warn!(rule = %meta.rule_id, %account, title = %meta.title, "trailwarden itself is being used or impersonated");
            findings.push((meta, Remediation::None));
        }
        let mut last = None;
        let mut detections = Vec::new();
        let mut done: BTreeMap<AccountId, Outcome> = BTreeMap::new();
        for (finding, remediation) in &findings {
            self.log_finding(finding);
            let outcome = if caller == Caller::Own {
                Outcome::OwnCall
            } else {
                self.act_on(finding, *remediation, received, &mut done)
                    .await?
            };
            last = Some(outcome);
            detections.push(self.record(Detection::new(
                finding,
                outcome,
                &clock::now_rfc3339(),
            ))?);
        }
        not_restored(&detections)?;
        if !event_id.is_empty() {
            self.journal.mark_event_handled(
                account.as_str(),
                &event_id,
                &clock::now_rfc3339(),
                last,
            )?;
        }
        Ok(Handled::Detections(detections))
    }

    fn log_finding(&self, finding: &Finding) {
        self.metrics.findings.fetch_add(1, Ordering::Relaxed);
        let event = finding.event.as_ref();
        info!(rule = %finding.rule_id, severity = %finding.severity, account = %finding.account,
            region = %finding.region, event = event.and_then(|e| e.event_name.as_deref()).unwrap_or("-"),
            actor = event.and_then(|e| e.actor.principal_arn.as_deref()).unwrap_or("-"),
            source_ip = event.and_then(|e| e.actor.source_ip.as_deref()).unwrap_or("-"), "finding");
    }

    /// What the guard does with one finding, and its outcome.
    async fn act_on(
        &self,
        finding: &Finding,
        remediation: Remediation,
        received: Instant,
        done: &mut BTreeMap<AccountId, Outcome>,
    ) -> Result<Outcome, GuardError> {
        match decide(finding, remediation, &self.settings, &self.baseline) {
            Decision::Outcome(outcome) => Ok(outcome),
            Decision::CheckForwarding { account, region } => {
                let work = Work {
                    regions: Regions::Some(BTreeSet::from([region])),
                    explained: techniques(finding),
                    forwarding: true,
                    ..Work::none()
                };
                let restored = self.restore_through_lane(&account, work).await?;
                let Some(check) = restored.forwarding else {
                    return Ok(Outcome::DetectOnly);
                };
                Ok(if check.drifted.is_empty() {
                    Outcome::AlreadyGood
                } else if !self.settings.remediate {
                    Outcome::NotRemediating
                } else if check.failed.is_empty() {
                    Outcome::Restored
                } else {
                    Outcome::NotRestored
                })
            }
            Decision::Restore { account, regions } => {
                if let Some(outcome) = done.get(&account) {
                    return Ok(*outcome);
                }
                // Dequeue → restore request: trailwarden's own processing (parse, dedup, rules,
                // journal).
                let overhead_micros = received.elapsed().as_micros() as u64;
                let work = Work {
                    regions: Regions::Some(regions.into_iter().collect()),
                    explained: techniques(finding),
                    state: true,
                    ..Work::none()
                };
                let started = Instant::now();
                let restored = self.restore_through_lane(&account, work).await?;
                info!(account = %account, outcome = %restored.outcome, overhead_micros,
                    millis = started.elapsed().as_millis() as u64,
                    run = restored.report.as_ref().and_then(|r| r.run.as_deref()).unwrap_or("-"),
                    "targeted restore");
                done.insert(account, restored.outcome);
                Ok(restored.outcome)
            }
        }
    }

    /// Restores `account` through its lane: runs the restore, or shares the one that covers
    /// this request. The restore records a detection for each of its findings that no
    /// covered event explains (what only reading the state found), attributed where the
    /// journal knows the last event that touched it.
    async fn restore_through_lane(
        &self,
        account: &AccountId,
        work: Work,
    ) -> Result<Restored, GuardError> {
        self.lanes
            .restore(account, work, |work| async move {
                let regions = match &work.regions {
                    Regions::All => self.settings.sweep.regions.clone(),
                    Regions::Some(r) => RegionSelection::List(r.iter().cloned().collect()),
                };
                let selection = self.selection(account, regions);
                let mut restored = Restored {
                    outcome: Outcome::NotRemediating,
                    report: None,
                    forwarding: None,
                };
                if work.state {
                    let journal = self.settings.remediate.then_some(&*self.journal);
                    let report = restore(
                        &self.factory,
                        &self.baseline,
                        &selection,
                        journal,
                        self.settings.verify_attempts,
                        &no_progress,
                    )
                    .await?;
                    self.count_restores(&report);
                    self.record_state_findings(&report, &work.explained)?;
                    restored.outcome = report.outcome();
                    restored.report = Some(Arc::new(report));
                }
                if work.forwarding
                    && let Some(forwarding) = &self.settings.forwarding
                {
                    let check = self.check_forwarding(forwarding, &selection).await;
                    self.record_forwarding(&check, &work.explained)?;
                    restored.forwarding = Some(Arc::new(check));
                }
                Ok::<_, GuardError>(restored)
            })
            .await
    }

    /// Every finding of a restore that no event explains becomes a detection found by the
    /// state (attributed where possible).
    fn record_state_findings(
        &self,
        report: &Report,
        explained: &BTreeSet<String>,
    ) -> Result<(), GuardError> {
        let now = clock::now_rfc3339();
        for r in &report.results {
            let f = &r.finding;
            if techniques(f).iter().any(|t| explained.contains(t)) {
                continue;
            }
            let outcome = match r.result {
                Outcome::Planned => Outcome::NotRemediating,
                other => other,
            };
            let mut d = Detection::new(f, outcome, &now);
            d.event_id = Some(state_detection_id(&d, report.run.as_deref()));
            self.attribute(&mut d)?;
            self.record(d)?;
        }
        Ok(())
    }

    /// Names who most probably did what a sweep found: the last event the journal has for the
    /// same resource (or technique) in the account within a day; else says it is unattributed.
    fn attribute(&self, d: &mut Detection) -> Result<(), GuardError> {
        let since = clock::rfc3339(clock::now().saturating_sub(24 * 3600));
        match self.journal.last_event_detection(
            &d.account,
            d.resource.as_deref(),
            d.technique.as_deref(),
            &since,
        )? {
            Some(event) => {
                d.actor = event.actor.clone();
                d.access_key = event.access_key.clone();
                d.source_ip = event.source_ip.clone();
                d.title = format!(
                    "{} (attributed to the last event that touched it: {} {} at {})",
                    d.title,
                    event.event_name.as_deref().unwrap_or("-"),
                    event.event_id.as_deref().unwrap_or("-"),
                    event.event_time
                );
            }
            None => d.title = format!("{} ({UNATTRIBUTED})", d.title),
        }
        Ok(())
    }

    /// Keeps a detection and notifies it when it is new (or its outcome changed). A pattern
    /// that repeats escalates: from the third detection of one rule in one account within
    /// [`ESCALATION_WINDOW_MINUTES`], the severity goes up a level and only each escalation
    /// step (the 3rd, 10th, 100th, ...) is notified, not every event. trailwarden's own calls
    /// are recorded, never notified.
    fn record(&self, mut d: Detection) -> Result<Detection, GuardError> {
        if d.outcome == Outcome::OwnCall {
            self.journal.record_detection(&d)?;
            return Ok(d);
        }
        let now = clock::now_rfc3339();
        let since = clock::rfc3339(clock::now().saturating_sub(ESCALATION_WINDOW_MINUTES * 60));
        let count = self
            .journal
            .count_detections(&d.account, &d.rule_id, &since)?
            + 1;
        if count >= 3 {
            d.severity = raised(&d.severity);
        }
        let new = self.journal.record_detection(&d)?;
        if !new || self.sinks.is_empty() {
            return Ok(d);
        }
        if count < 3 {
            self.sinks.queue(&self.journal, &d, &now)?;
        } else if is_escalation_step(count) {
            warn!(rule = %d.rule_id, account = %d.account, count, "tampering repeats: incident escalated");
            self.sinks.queue_escalation(
                &self.journal,
                &d,
                count,
                ESCALATION_WINDOW_MINUTES,
                &now,
            )?;
        } else {
            self.metrics
                .notifications_suppressed
                .fetch_add(1, Ordering::Relaxed);
            return Ok(d);
        }
        if let Some(wake) = &self.notify_wake {
            wake.notify_one();
        }
        Ok(d)
    }

    /// Adds a restore's restored and failed findings to the metrics.
    fn count_restores(&self, report: &Report) {
        let restored = report.count(Outcome::Restored) as u64;
        let failed = report.count(Outcome::NotRestored) as u64;
        self.metrics.restores.fetch_add(restored, Ordering::Relaxed);
        self.metrics
            .restore_failures
            .fetch_add(failed, Ordering::Relaxed);
    }

    /// The accounts a sweep covers.
    fn sweep_accounts(&self) -> Vec<AccountId> {
        match (&self.settings.sweep.accounts, &self.settings.role_name) {
            (Some(ids), _) => ids.clone(),
            (None, Some(_)) => self
                .baseline
                .accounts
                .iter()
                .map(|a| a.account.clone())
                .collect(),
            // No role to assume: the caller's own account, which the baseline declares.
            (None, None) => self
                .baseline
                .accounts
                .iter()
                .take(1)
                .map(|a| a.account.clone())
                .collect(),
        }
    }

    /// Every baseline account × the selected regions, against the baseline: catches what no
    /// event reports (every trail stopped, events lost, quiet narrowing). Accounts go through
    /// the same lanes as events, a few at once; what is found becomes detections, and so do
    /// drifted forwarding rules and accounts that stay unreadable.
    pub async fn sweep(&self) -> SweepSummary {
        let started = Instant::now();
        let ids = match self.survey().await {
            Some(ids) => ids,
            None => self.sweep_accounts(),
        };
        let mut summary = SweepSummary {
            accounts: futures::stream::iter(ids.iter().cloned())
                .map(|account| async move {
                    let work = Work {
                        regions: Regions::All,
                        state: true,
                        forwarding: true,
                        ..Work::none()
                    };
                    let result = self
                        .restore_through_lane(&account, work)
                        .await
                        .map_err(|e| e.to_string());
                    (account, result)
                })
                .buffer_unordered(self.settings.sweep_accounts_at_once.max(1))
                .collect()
                .await,
            ..SweepSummary::default()
        };
        summary.accounts.sort_by(|a, b| a.0.cmp(&b.0));
        for (account, result) in &summary.accounts {
            match result {
                Ok(r) => {
                    for gap in r.report.iter().flat_map(|r| &r.gaps) {
                        warn!(%gap, "not read in the sweep");
                    }
                }
                Err(e) => {
                    self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                    warn!(%account, error = %e, "sweep of the account failed; next one at the interval");
                }
            }
        }
        if let Err(e) = self.track_unread(&summary) {
            warn!(error = %e, "recording unread accounts failed");
        }
        self.metrics.sweeps.fetch_add(1, Ordering::Relaxed);
        summary.millis = started.elapsed().as_millis() as u64;
        self.metrics
            .sweep_millis
            .store(summary.millis, Ordering::Relaxed);
        info!(
            accounts = summary.accounts.len(),
            not_restored = summary.not_restored(),
            failed = summary.failed(),
            millis = summary.millis,
            "sweep"
        );
        summary
    }

    /// Accounts and regions a sweep could not read, sweep after sweep, become a detection
    /// once the streak reaches `unread_alert_after` (one per streak); a streak ends when a
    /// sweep reads it again.
    fn track_unread(&self, summary: &SweepSummary) -> Result<(), GuardError> {
        let now = clock::now_rfc3339();
        for (account, result) in &summary.accounts {
            let mut unread: BTreeMap<String, String> = BTreeMap::new();
            match result {
                Err(why) => {
                    unread.insert("-".to_owned(), why.clone());
                }
                Ok(r) => {
                    let gaps = r.report.iter().flat_map(|r| &r.gaps);
                    let forwarding = r.forwarding.iter().flat_map(|f| &f.gaps);
                    for gap in gaps.chain(forwarding).filter(|g| &g.account == account) {
                        unread
                            .entry(gap.region.clone().unwrap_or_else(|| "-".to_owned()))
                            .or_insert_with(|| gap.to_string());
                    }
                }
            }
            let still: Vec<&str> = unread.keys().map(String::as_str).collect();
            self.journal.clear_unread(account.as_str(), &still)?;
            for (region, why) in &unread {
                let (sweeps, since) =
                    self.journal
                        .note_unread(account.as_str(), region, why, &now)?;
                if sweeps == self.settings.unread_alert_after.max(1) {
                    let finding = unreadable_finding(account, region, sweeps, &since, why);
                    let mut d = Detection::new(&finding, Outcome::Escalated, &now);
                    d.event_id = Some(format!("unread:{account}:{region}:{since}"));
                    warn!(%account, region, sweeps, "account unreadable sweep after sweep: alert");
                    self.record(d)?;
                }
            }
        }
        Ok(())
    }

    /// Detections of the forwarding rules found drifted, but those an event explains (its own
    /// detection says it).
    fn record_forwarding(
        &self,
        check: &ForwardingCheck,
        explained: &BTreeSet<String>,
    ) -> Result<(), GuardError> {
        let now = clock::now_rfc3339();
        for f in &check.drifted {
            if techniques(f).iter().any(|t| explained.contains(t)) {
                continue;
            }
            let outcome = if !self.settings.remediate {
                Outcome::NotRemediating
            } else if check.failed.iter().any(|(g, _)| g == f) {
                Outcome::NotRestored
            } else {
                Outcome::Restored
            };
            let mut d = Detection::new(f, outcome, &now);
            let run =
                (outcome == Outcome::Restored).then(|| format!("forwarding-{}", clock::now()));
            d.event_id = Some(state_detection_id(&d, run.as_deref()));
            self.attribute(&mut d)?;
            self.record(d)?;
        }
        Ok(())
    }

    /// One account (the caller's own without a role name) in `regions`.
    fn selection(&self, account: &AccountId, regions: RegionSelection) -> Selection {
        Selection {
            accounts: self
                .settings
                .role_name
                .as_ref()
                .map(|_| vec![account.clone()]),
            role_name: self.settings.role_name.clone(),
            regions,
            concurrency: self.settings.sweep.concurrency,
            ..Default::default()
        }
    }

    /// Checks the forwarding rules of `selection` and, with remediate, puts drifted ones back.
    async fn check_forwarding(
        &self,
        forwarding: &Forwarding,
        selection: &Selection,
    ) -> ForwardingCheck {
        let resolution = match trailwarden_aws::fanout::resolve(&self.factory, selection).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "forwarding rules: accounts not resolved");
                return ForwardingCheck::default();
            }
        };
        let (drifted, mut gaps) = forwarding
            .check(&resolution.accounts, selection.concurrency)
            .await;
        gaps.extend(resolution.gaps);
        for gap in &gaps {
            warn!(%gap, "forwarding rule not read");
        }
        for f in &drifted {
            warn!(rule = %f.rule_id, account = %f.account, region = %f.region, title = %f.title, "finding");
        }
        if !self.settings.remediate || drifted.is_empty() {
            return ForwardingCheck {
                drifted,
                gaps,
                ..ForwardingCheck::default()
            };
        }
        let (restored, failed) = forwarding
            .restore(&resolution.accounts, &drifted, &self.journal)
            .await;
        for f in &restored {
            info!(account = %f.account, region = %f.region, "forwarding rule restored");
        }
        for (f, why) in &failed {
            warn!(account = %f.account, region = %f.region, error = %why, "forwarding rule not restored");
        }
        self.metrics
            .restores
            .fetch_add(restored.len() as u64, Ordering::Relaxed);
        self.metrics
            .restore_failures
            .fetch_add(failed.len() as u64, Ordering::Relaxed);
        ForwardingCheck {
            drifted,
            failed,
            gaps,
        }
    }
}

/// What a check of trailwarden's forwarding rules found and did.
#[derive(Debug, Default)]
pub struct ForwardingCheck {
    /// Rules not as deployed.
    pub drifted: Vec<Finding>,
    /// Drifted rules that could not be put back, with why.
    pub failed: Vec<(Finding, String)>,
    /// Regions whose rule could not be read.
    pub gaps: Vec<Gap>,
}

/// The account that owns `bucket` according to the baseline: the account whose snapshot
/// holds the bucket's own state.
fn bucket_owner(baseline: &Baseline, bucket: &str) -> Option<String> {
    baseline
        .accounts
        .iter()
        .find(|a| a.buckets.iter().any(|b| b.name == bucket))
        .map(|a| a.account.to_string())
}

/// Organizations calls that change which accounts are members, or where: each asks for a
/// rediscovery (failed calls change nothing).
const ORGANIZATION_CHANGES: &[&str] = &[
    "CreateAccount",
    "CreateAccountResult",
    "InviteAccountToOrganization",
    "AcceptHandshake",
    "MoveAccount",
    "RemoveAccountFromOrganization",
    "LeaveOrganization",
    "CloseAccount",
];

fn is_organization_change(record: &Value) -> bool {
    record.get("eventSource").and_then(Value::as_str) == Some("organizations.amazonaws.com")
        && record.get("errorCode").is_none_or(Value::is_null)
        && record
            .get("eventName")
            .and_then(Value::as_str)
            .is_some_and(|name| ORGANIZATION_CHANGES.contains(&name))
}

/// How a sweep detection says nobody is known to have done it.
pub const UNATTRIBUTED: &str = "unattributed: found by the sweep";

/// The key a state detection is kept under: a restore is a new detection each time (an
/// attacker may repeat); an open one (not restored, escalated, detect only) is one detection
/// until its outcome changes.
fn state_detection_id(d: &Detection, run: Option<&str>) -> String {
    let resource = d.resource.as_deref().unwrap_or("-");
    match (d.outcome, run) {
        (Outcome::Restored, Some(run)) => format!("state:{run}:{}:{resource}", d.rule_id),
        _ => format!(
            "state-open:{}:{}:{}:{resource}",
            d.account, d.region, d.rule_id
        ),
    }
}

fn techniques(f: &Finding) -> BTreeSet<String> {
    f.technique
        .iter()
        .flat_map(|t| t.split(','))
        .map(str::to_owned)
        .collect()
}

/// One severity level up (a repeating pattern), capped at critical.
fn raised(severity: &str) -> String {
    match severity {
        "info" => "low",
        "low" => "medium",
        "medium" => "high",
        _ => "critical",
    }
    .to_owned()
}

/// The counts at which a repeating pattern is notified again: 3, 10, 100, 1000, ...
fn is_escalation_step(count: u64) -> bool {
    let digits = count.to_string();
    count == 3
        || (count >= 10 && digits.starts_with('1') && digits.bytes().skip(1).all(|b| b == b'0'))
}

/// The finding that says trailwarden itself is being used or impersonated (from the record
/// that shows it).
fn caller_finding(caller: &Caller, record: &Value, account: &AccountId) -> Option<Finding> {
    let (rule_id, technique, title) = match caller {
        Caller::Impersonating { why } => (
            responder_rules::IMPERSONATED,
            "H5",
            format!("A call impersonates trailwarden: {why}"),
        ),
        Caller::OwnMisused { action } => (
            responder_rules::CREDENTIALS_MISUSED,
            "H3",
            format!(
                "trailwarden's own credentials made a call trailwarden never makes ({action}): someone holds them"
            ),
        ),
        Caller::Own | Caller::Other => return None,
    };
    let mut finding = event_finding_from(record, rule_id, &title, account);
    finding.severity = Severity::Critical;
    finding.technique = Some(technique.to_owned());
    Some(finding)
}

/// A finding about the record's event that no rule file describes.
fn event_finding_from(record: &Value, rule_id: &str, title: &str, account: &AccountId) -> Finding {
    let text = |path: &str| {
        record
            .pointer(path)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Finding {
        rule_id: rule_id.to_owned(),
        severity: Severity::Critical,
        title: title.to_owned(),
        account: account.clone(),
        region: text("/awsRegion").unwrap_or_else(|| "unknown".to_owned()),
        technique: Some("H3".to_owned()),
        attack: Some("T1562.001".to_owned()),
        sigma_id: None,
        resource: text("/userIdentity/sessionContext/sessionIssuer/arn")
            .or_else(|| text("/userIdentity/arn")),
        expected: None,
        actual: None,
        remediable: false,
        event: Some(trailwarden_model::finding::EventContext {
            event_id: text("/eventID"),
            event_name: text("/eventName"),
            event_source: text("/eventSource"),
            event_time: text("/eventTime"),
            actor: trailwarden_model::finding::Actor {
                principal_arn: text("/userIdentity/arn"),
                identity_type: text("/userIdentity/type"),
                access_key_id: text("/userIdentity/accessKeyId"),
                source_ip: text("/sourceIPAddress"),
                user_agent: text("/userAgent"),
            },
            error_code: text("/errorCode"),
            record_source: None,
        }),
    }
}

/// The finding that an account (or region) stays unreadable.
fn unreadable_finding(
    account: &AccountId,
    region: &str,
    sweeps: u32,
    since: &str,
    why: &str,
) -> Finding {
    let denied = why.contains("access-denied");
    Finding {
        rule_id: responder_rules::ACCOUNT_UNREADABLE.to_owned(),
        severity: if denied {
            Severity::Critical
        } else {
            Severity::High
        },
        title: format!(
            "trailwarden could not read account {account}{} in {sweeps} sweeps in a row since {since}{}: {why}",
            if region == "-" {
                String::new()
            } else {
                format!(" region {region}")
            },
            if denied {
                " (access denied: trailwarden's role, its policies or an SCP may have been changed to lock it out)"
            } else {
                ""
            }
        ),
        account: account.clone(),
        region: region.to_owned(),
        technique: Some("H3".to_owned()),
        attack: Some("T1562.001".to_owned()),
        sigma_id: None,
        resource: Some(format!("account {account} region {region}")),
        expected: None,
        actual: None,
        remediable: false,
        event: None,
    }
}

/// What the guard knows of its own sessions: this process's factory, then the journal
/// (sessions of other processes sharing it).
struct OwnSessionKeys<'g>(&'g Guard);

impl OwnKeys for OwnSessionKeys<'_> {
    fn role_of(&self, access_key_id: &str) -> Option<Option<String>> {
        if let Some(s) = self.0.factory.own_sessions().get(access_key_id) {
            return Some(s.role_arn);
        }
        match self.0.journal.own_credential(access_key_id) {
            Ok(found) => found.map(|c| Some(c.role_arn).filter(|r| !r.is_empty())),
            Err(e) => {
                warn!(error = %e, "own credentials: the journal could not be read");
                None
            }
        }
    }
}

/// Remembers every session `factory` obtains in `journal`, so that other processes sharing
/// it (another replica, a `remediate` run) know trailwarden's own calls.
pub fn remember_own_sessions(factory: &ClientFactory, journal: Arc<Journal>) {
    factory.own_sessions().on_new(move |s| {
        let credential = OwnCredential {
            access_key_id: s.access_key_id.clone(),
            role_arn: s.role_arn.clone().unwrap_or_default(),
            account: s
                .role_arn
                .as_deref()
                .and_then(|r| r.split(':').nth(4))
                .unwrap_or("-")
                .to_owned(),
            obtained: clock::now_rfc3339(),
        };
        if let Err(e) = journal.remember_own_credential(&credential) {
            warn!(error = %e, "own credentials: could not be remembered in the journal");
        }
    });
}

/// What the guard does with one finding, decided without AWS.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Nothing to call; this is the finding's outcome.
    Outcome(Outcome),
    /// Check trailwarden's forwarding rule of the account in the region (and, with remediate,
    /// put it back).
    CheckForwarding { account: AccountId, region: String },
    /// Restore the account's baseline state in these regions.
    Restore {
        account: AccountId,
        regions: Vec<String>,
    },
}

/// Decides from the finding (of a caller who is not trailwarden), its rule's `remediation`,
/// the settings and the baseline: failed attempts are never acted on; what the rule cannot
/// restore is detect only; without remediation a restorable finding is only reported; an
/// account outside the baseline has nothing to be restored to. A state restore reads the
/// event's region and the home regions of the account's baseline trails.
pub fn decide(
    finding: &Finding,
    remediation: Remediation,
    settings: &GuardSettings,
    baseline: &Baseline,
) -> Decision {
    let event = finding.event.as_ref();
    if event.is_some_and(|e| e.error_code.is_some()) {
        return Decision::Outcome(Outcome::FailedAttempt);
    }
    if !finding.remediable || remediation == Remediation::None {
        return Decision::Outcome(Outcome::DetectOnly);
    }
    let account = finding.account.as_str().parse::<AccountId>().ok();
    if remediation == Remediation::Forwarding {
        return match (&settings.forwarding, account) {
            (Some(_), Some(account)) => Decision::CheckForwarding {
                account,
                region: finding.region.clone(),
            },
            _ => Decision::Outcome(Outcome::DetectOnly),
        };
    }
    if !settings.remediate {
        return Decision::Outcome(Outcome::NotRemediating);
    }
    let Some(want) = account.and_then(|a| baseline.account(&a)) else {
        return Decision::Outcome(Outcome::NotInBaseline);
    };
    let mut regions: BTreeSet<String> = want.trails.iter().map(|t| t.home_region.clone()).collect();
    regions.insert(finding.region.clone());
    Decision::Restore {
        account: want.account.clone(),
        regions: regions.into_iter().collect(),
    }
}

/// A restore that did not verify fails the message: it stays on the queue (or the Lambda
/// invocation is retried) and is tried again, instead of being marked handled and forgotten
/// until the next sweep; after the queue's maxReceiveCount it is dead-lettered.
fn not_restored(detections: &[Detection]) -> Result<(), GuardError> {
    let failed: Vec<String> = detections
        .iter()
        .filter(|d| d.outcome.is_failure())
        .map(|d| format!("{} in account {} {}", d.rule_id, d.account, d.region))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(GuardError::RestoreNotVerified(failed))
    }
}

/// The largest message SQS accepts; anything larger is not a forwarded event.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use trailwarden_model::finding::{Actor, EventContext};

    const ACCOUNT: &str = "111111111111";

    /// One account whose only trail is homed in eu-west-1.
    fn baseline() -> Baseline {
        Baseline::from_toml(
            &format!(
                r#"format = 1
captured_at = "2026-12-01T00:00:00Z"
captured_by = "test"
[[account]]
account = "{ACCOUNT}"
[[account.trails]]
name = "main"
arn = "arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/main"
home_region = "eu-west-1"
multi_region = true
organization = false
include_global_service_events = true
log_file_validation = true
logging = true
"#
            ),
            "test",
        )
        .unwrap()
    }

    fn settings(remediate: bool, forwarding: Option<Forwarding>) -> GuardSettings {
        let mut s = GuardSettings::new(
            remediate,
            Some("TrailwardenAudit".into()),
            Selection {
                accounts: None,
                role_name: None,
                regions: RegionSelection::AllEnabled,
                concurrency: 1,
                ..Default::default()
            },
        );
        s.forwarding = forwarding;
        s
    }

    fn finding(account: &str, error_code: Option<&str>, remediable: bool) -> Finding {
        Finding {
            rule_id: "trail-stop-logging".into(),
            severity: Severity::High,
            title: "CloudTrail logging stopped".into(),
            account: trailwarden_model::target::AccountId::as_recorded(account),
            region: "us-east-1".into(),
            technique: Some("A1".into()),
            attack: None,
            sigma_id: None,
            resource: None,
            expected: None,
            actual: None,
            remediable,
            event: Some(EventContext {
                event_id: Some("e-1".into()),
                event_name: Some("StopLogging".into()),
                event_source: Some("cloudtrail.amazonaws.com".into()),
                event_time: None,
                actor: Actor {
                    principal_arn: Some(
                        "arn:aws:sts::111111111111:assumed-role/admin/mallory".into(),
                    ),
                    ..Actor::default()
                },
                error_code: error_code.map(str::to_owned),
                record_source: None,
            }),
        }
    }

    #[test]
    fn a_stopped_trail_restores_the_event_region_and_the_trails_home_region() {
        let (b, s) = (baseline(), settings(true, None));
        assert_eq!(
            decide(&finding(ACCOUNT, None, true), Remediation::State, &s, &b),
            Decision::Restore {
                account: ACCOUNT.parse().unwrap(),
                regions: vec!["eu-west-1".into(), "us-east-1".into()],
            }
        );
    }

    #[test]
    fn what_is_never_acted_on() {
        let (b, s) = (baseline(), settings(true, None));
        let outcome = |f: &Finding, r| match decide(f, r, &s, &b) {
            Decision::Outcome(o) => o,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            outcome(
                &finding(ACCOUNT, Some("AccessDenied"), false),
                Remediation::State
            ),
            Outcome::FailedAttempt
        );
        assert_eq!(
            outcome(&finding(ACCOUNT, None, false), Remediation::None),
            Outcome::DetectOnly
        );
        assert_eq!(
            outcome(&finding("222222222222", None, true), Remediation::State),
            Outcome::NotInBaseline
        );
        assert_eq!(
            outcome(&finding("unknown", None, true), Remediation::State),
            Outcome::NotInBaseline
        );
        let detect = settings(false, None);
        assert_eq!(
            decide(
                &finding(ACCOUNT, None, true),
                Remediation::State,
                &detect,
                &b
            ),
            Decision::Outcome(Outcome::NotRemediating)
        );
    }

    #[test]
    fn forwarding_rule_tampering_checks_the_rule_only_when_forwarding_is_configured() {
        let b = baseline();
        let f = finding(ACCOUNT, None, true);
        assert_eq!(
            decide(&f, Remediation::Forwarding, &settings(true, None), &b),
            Decision::Outcome(Outcome::DetectOnly)
        );
        let rules = RuleSet::built_in().unwrap();
        let forwarding = Forwarding::new(
            &rules,
            "arn:aws:events:us-east-1:999999999999:event-bus/trailwarden",
            None,
        )
        .unwrap();
        let s = settings(false, Some(forwarding));
        assert_eq!(
            decide(&f, Remediation::Forwarding, &s, &b),
            Decision::CheckForwarding {
                account: ACCOUNT.parse().unwrap(),
                region: "us-east-1".into(),
            }
        );
    }

    #[test]
    fn repeats_are_notified_at_escalation_steps_only() {
        let steps: Vec<u64> = (1..=2000).filter(|n| is_escalation_step(*n)).collect();
        assert_eq!(steps, vec![3, 10, 100, 1000]);
        assert_eq!(raised("high"), "critical");
        assert_eq!(raised("critical"), "critical");
        assert_eq!(raised("low"), "medium");
    }

    #[test]
    fn impersonation_is_a_critical_finding_about_the_record() {
        let record = serde_json::json!({
            "eventID": "e-9", "eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com",
            "awsRegion": "us-east-1", "recipientAccountId": ACCOUNT, "sourceIPAddress": "203.0.113.9",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111111111111:assumed-role/admin/trailwarden-1",
                "accessKeyId": "ASIAATTACKER"}
        });
        let f = caller_finding(
            &Caller::Impersonating { why: "x".into() },
            &record,
            &ACCOUNT.parse().unwrap(),
        )
        .unwrap();
        assert_eq!(f.rule_id, responder_rules::IMPERSONATED);
        assert_eq!(f.severity, Severity::Critical);
        let event = f.event.unwrap();
        assert_eq!(event.actor.source_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(event.event_id.as_deref(), Some("e-9"));
        assert!(caller_finding(&Caller::Other, &record, &ACCOUNT.parse().unwrap()).is_none());
    }
}
