//! The guard: what happens to one forwarded event or one S3 log-file notification, and to a
//! sweep. Shared by `trailwarden watch` (the queue service) and `trailwarden-lambda` (one
//! invocation per EventBridge event). Reads no queue and serves nothing itself.

use crate::forwarding::Forwarding;
use crate::journal::{Detection, Journal, JournalError};
use crate::metrics::Metrics;
use crate::notify::Sinks;
use crate::respond::{Report, RespondError, restore};
use crate::scan::{Input, ScanOptions, scan_input};
use crate::state::no_progress;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Instant;
use tracing::{info, warn};
use trailwarden_aws::fanout::Selection;
use trailwarden_aws::{ClientFactory, SESSION_NAME_PREFIX};
use trailwarden_model::clock;
use trailwarden_model::finding::Finding;
use trailwarden_model::outcome::Outcome;
use trailwarden_model::target::{AccountId, RegionSelection};
use trailwarden_posture::Baseline;
use trailwarden_records::envelope::{self, Message};
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

/// The guard over one baseline. Borrowed parts, so a caller keeps ownership of its store.
#[derive(Debug)]
pub struct Guard<'a> {
    pub factory: &'a ClientFactory,
    pub rules: &'a RuleSet,
    pub baseline: &'a Baseline,
    pub journal: &'a Journal,
    pub metrics: &'a Metrics,
    pub settings: GuardSettings,
    /// Where detections are notified (through the journal's outbox).
    pub sinks: &'a Sinks,
    /// Woken when a notification is queued, so the delivery loop sends it at once.
    pub notify_wake: Option<&'a tokio::sync::Notify>,
}

/// Restores already made for one message, by account and region: the other findings of the
/// same message share the outcome instead of reading everything again.
type Done = BTreeMap<(String, String), Outcome>;

impl Guard<'_> {
    /// One queue message: an EventBridge "AWS API Call via CloudTrail" event, or an S3
    /// notification of new CloudTrail log files (each object is fetched and scanned).
    /// `received` is when the message was dequeued (for the overhead measurement).
    pub async fn handle(
        &self,
        body: &str,
        received: Instant,
    ) -> Result<Vec<Detection>, GuardError> {
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
    ) -> Result<Vec<Detection>, GuardError> {
        match envelope::classify(message) {
            Message::S3Notification(records) => {
                self.handle_s3_notification(records, received).await
            }
            Message::CloudTrail(e) => self.handle_record(e.detail, received).await,
            Message::Scheduled(e) => Err(GuardError::NotAnEvent(envelope::Unsupported(format!(
                "a schedule ({}) is not an event",
                e.detail_type
            )))),
            Message::Unsupported(why) => Err(GuardError::NotAnEvent(why)),
        }
    }

    async fn handle_s3_notification(
        &self,
        records: &[Value],
        received: Instant,
    ) -> Result<Vec<Detection>, GuardError> {
        let mut detections = Vec::new();
        let mut done = Done::new();
        for r in records {
            let (Some(bucket), Some(key)) = (
                r.pointer("/s3/bucket/name").and_then(Value::as_str),
                r.pointer("/s3/object/key").and_then(Value::as_str),
            ) else {
                continue;
            };
            let key = key.replace('+', " ");
            if key.contains("CloudTrail-Digest") {
                continue;
            }
            let account = self.factory.caller();
            let region = trailwarden_aws::log_objects::bucket_region(
                &account,
                self.factory.home_region(),
                bucket,
            )
            .await?;
            let bytes = trailwarden_aws::log_objects::fetch(
                &account,
                &region,
                bucket,
                &key,
                64 * 1024 * 1024,
            )
            .await?;
            let name = format!("s3://{bucket}/{key}");
            let result = scan_input(
                Input::Bytes {
                    name: name.clone(),
                    bytes,
                },
                self.rules,
                &ScanOptions {
                    workers: 1,
                    ..ScanOptions::default()
                },
            );
            if let Some(e) = result.errors.first() {
                return Err(GuardError::LogFile(e.clone()));
            }
            for finding in result.findings {
                let remediation = self
                    .rules
                    .rule(&finding.rule_id)
                    .map_or(Remediation::None, |r| r.remediation);
                let outcome = self
                    .act_on(&finding, remediation, received, &mut done)
                    .await?;
                detections.push(self.record(&finding, outcome)?);
            }
        }
        not_restored(&detections)?;
        Ok(detections)
    }

    async fn handle_record(
        &self,
        record: &Value,
        received: Instant,
    ) -> Result<Vec<Detection>, GuardError> {
        self.metrics.events.fetch_add(1, Ordering::Relaxed);
        let event_id = record
            .get("eventID")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !event_id.is_empty() && self.journal.event_handled(&event_id)? {
            self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
            info!(event = %event_id, "already handled (redelivered); skipped");
            return Ok(Vec::new());
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
        let mut findings = Vec::new();
        self.rules.for_each_match(record, |rule, verdict| {
            findings.push((event_finding(rule, verdict, record, None), rule.remediation));
        });
        let mut last = None;
        let mut detections = Vec::new();
        let mut done = Done::new();
        for (finding, remediation) in &findings {
            let outcome = self
                .act_on(finding, *remediation, received, &mut done)
                .await?;
            last = Some(outcome);
            detections.push(self.record(finding, outcome)?);
        }
        not_restored(&detections)?;
        if !event_id.is_empty() {
            self.journal
                .mark_event_handled(&event_id, &clock::now_rfc3339(), last)?;
        }
        Ok(detections)
    }

    /// Keeps the detection for `trailwarden incidents` and queues its notifications, when it is
    /// new (or its outcome changed). trailwarden's own calls are logged, not kept: they are not
    /// an incident.
    fn record(&self, finding: &Finding, outcome: Outcome) -> Result<Detection, GuardError> {
        let now = clock::now_rfc3339();
        let detection = Detection::new(finding, outcome, &now);
        if outcome == Outcome::OwnCall {
            return Ok(detection);
        }
        let new = self.journal.record_detection(&detection)?;
        if new && !self.sinks.is_empty() {
            self.sinks.queue(self.journal, &detection, &now)?;
            if let Some(wake) = self.notify_wake {
                wake.notify_one();
            }
        }
        Ok(detection)
    }

    /// Reports a finding and, when it is restorable, restores its account now.
    async fn act_on(
        &self,
        finding: &Finding,
        remediation: Remediation,
        received: Instant,
        done: &mut Done,
    ) -> Result<Outcome, GuardError> {
        self.metrics.findings.fetch_add(1, Ordering::Relaxed);
        let event = finding.event.as_ref();
        info!(rule = %finding.rule_id, severity = %finding.severity, account = %finding.account,
            region = %finding.region, event = event.and_then(|e| e.event_name.as_deref()).unwrap_or("-"),
            actor = event.and_then(|e| e.actor.principal_arn.as_deref()).unwrap_or("-"),
            source_ip = event.and_then(|e| e.actor.source_ip.as_deref()).unwrap_or("-"), "finding");
        match decide(finding, remediation, &self.settings, self.baseline) {
            Decision::Outcome(outcome) => Ok(outcome),
            Decision::CheckForwarding {
                forwarding,
                account,
                region,
            } => {
                let selection = self.selection(&account, vec![region]);
                let check = self.check_forwarding(forwarding, &selection).await;
                Ok(match check {
                    ForwardingCheck { drifted: 0, .. } => Outcome::AlreadyGood,
                    _ if !self.settings.remediate => Outcome::NotRemediating,
                    ForwardingCheck { failed: 0, .. } => Outcome::Restored,
                    _ => Outcome::NotRestored,
                })
            }
            Decision::Restore { account, regions } => {
                let key = (account.to_string(), finding.region.clone());
                if let Some(outcome) = done.get(&key) {
                    return Ok(*outcome);
                }
                let selection = self.selection(&account, regions);
                let started = Instant::now();
                // Dequeue → restore start: trailwarden's own processing (parse, dedup, rules, journal).
                let overhead_micros = received.elapsed().as_micros() as u64;
                let report = restore(
                    self.factory,
                    self.baseline,
                    &selection,
                    Some(self.journal),
                    self.settings.verify_attempts,
                    &no_progress,
                )
                .await?;
                let (restored, failed) = self.count(&report);
                info!(account = %account, restored, failed, overhead_micros, millis = started.elapsed().as_millis() as u64, run = report.run.as_deref().unwrap_or("-"), "targeted restore");
                let outcome = if failed == 0 {
                    Outcome::Restored
                } else {
                    Outcome::NotRestored
                };
                done.insert(key, outcome);
                Ok(outcome)
            }
        }
    }

    fn count(&self, report: &Report) -> (u64, u64) {
        let restored = report.count(Outcome::Restored) as u64;
        let failed = report.count(Outcome::NotRestored) as u64;
        self.metrics.restores.fetch_add(restored, Ordering::Relaxed);
        self.metrics
            .restore_failures
            .fetch_add(failed, Ordering::Relaxed);
        (restored, failed)
    }

    /// Every baseline account × the selected regions, against the baseline: catches what no
    /// event reports (every trail stopped, events lost, quiet narrowing).
    pub async fn sweep(&self) -> Option<Report> {
        let started = Instant::now();
        let ids: Vec<AccountId> = self
            .baseline
            .accounts
            .iter()
            .map(|a| a.account.clone())
            .collect();
        let selection = Selection {
            accounts: self
                .settings
                .sweep
                .accounts
                .clone()
                .or_else(|| self.settings.role_name.as_ref().map(|_| ids)),
            ..self.settings.sweep.clone()
        };
        let journal = self.settings.remediate.then_some(self.journal);
        let result = restore(
            self.factory,
            self.baseline,
            &selection,
            journal,
            self.settings.verify_attempts,
            &no_progress,
        )
        .await;
        let forwarding = match &self.settings.forwarding {
            Some(forwarding) => self.check_forwarding(forwarding, &selection).await,
            None => ForwardingCheck::default(),
        };
        self.metrics.sweeps.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .sweep_millis
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        match result {
            Ok(report) => {
                let (restored, failed) = if report.applied {
                    self.count(&report)
                } else {
                    (0, 0)
                };
                let (restored, failed) =
                    (restored + forwarding.restored, failed + forwarding.failed);
                info!(
                    findings = report.results.len(),
                    restored,
                    failed,
                    gaps = report.gaps.len(),
                    millis = started.elapsed().as_millis() as u64,
                    "sweep"
                );
                for gap in &report.gaps {
                    warn!(%gap, "not read in the sweep");
                }
                Some(report)
            }
            Err(e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "sweep failed; next one at the interval");
                None
            }
        }
    }

    /// One account (the caller's own without a role name) in `regions`.
    fn selection(&self, account: &AccountId, regions: Vec<String>) -> Selection {
        Selection {
            accounts: self
                .settings
                .role_name
                .as_ref()
                .map(|_| vec![account.clone()]),
            role_name: self.settings.role_name.clone(),
            regions: RegionSelection::List(regions),
            concurrency: self.settings.sweep.concurrency,
        }
    }

    /// Checks the forwarding rules of `selection` and, with remediate, puts drifted ones back.
    /// Drift without remediate is logged as a finding.
    async fn check_forwarding(
        &self,
        forwarding: &Forwarding,
        selection: &Selection,
    ) -> ForwardingCheck {
        let resolution = match trailwarden_aws::fanout::resolve(self.factory, selection).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "forwarding rules: accounts not resolved");
                return ForwardingCheck::default();
            }
        };
        let (drifted, gaps) = forwarding
            .check(&resolution.accounts, selection.concurrency)
            .await;
        for gap in resolution.gaps.iter().chain(&gaps) {
            warn!(%gap, "forwarding rule not read");
        }
        for f in &drifted {
            warn!(rule = %f.rule_id, account = %f.account, region = %f.region, title = %f.title, "finding");
        }
        let drifted_count = drifted.len() as u64;
        if !self.settings.remediate || drifted.is_empty() {
            return ForwardingCheck {
                drifted: drifted_count,
                ..ForwardingCheck::default()
            };
        }
        let (restored, failed) = forwarding
            .restore(&resolution.accounts, &drifted, self.journal)
            .await;
        for f in &restored {
            info!(account = %f.account, region = %f.region, "forwarding rule restored");
        }
        for (f, why) in &failed {
            warn!(account = %f.account, region = %f.region, error = %why, "forwarding rule not restored");
        }
        let check = ForwardingCheck {
            drifted: drifted_count,
            restored: restored.len() as u64,
            failed: failed.len() as u64,
        };
        self.metrics
            .restores
            .fetch_add(check.restored, Ordering::Relaxed);
        self.metrics
            .restore_failures
            .fetch_add(check.failed, Ordering::Relaxed);
        check
    }
}

/// What a check of the forwarding rules found and did.
#[derive(Debug, Clone, Copy, Default)]
struct ForwardingCheck {
    drifted: u64,
    restored: u64,
    failed: u64,
}

/// What the guard does with one finding, decided without AWS.
#[derive(Debug, PartialEq)]
pub enum Decision<'s> {
    /// Nothing to call; this is the finding's outcome.
    Outcome(Outcome),
    /// Check trailwarden's forwarding rule of the account in the region (and, with remediate,
    /// put it back).
    CheckForwarding {
        forwarding: &'s Forwarding,
        account: AccountId,
        region: String,
    },
    /// Restore the account's baseline state in these regions.
    Restore {
        account: AccountId,
        regions: Vec<String>,
    },
}

/// Decides from the finding, its rule's `remediation`, the settings and the baseline: own
/// calls and failed attempts are never acted on; what the rule cannot restore is detect only;
/// without remediation a restorable finding is only reported; an account outside the baseline
/// has nothing to be restored to. A state restore reads the event's region and the home
/// regions of the account's baseline trails.
pub fn decide<'s>(
    finding: &Finding,
    remediation: Remediation,
    settings: &'s GuardSettings,
    baseline: &Baseline,
) -> Decision<'s> {
    let event = finding.event.as_ref();
    let actor = event
        .and_then(|e| e.actor.principal_arn.as_deref())
        .unwrap_or("-");
    if is_own_call(actor) {
        return Decision::Outcome(Outcome::OwnCall);
    }
    if event.is_some_and(|e| e.error_code.is_some()) {
        return Decision::Outcome(Outcome::FailedAttempt);
    }
    if !finding.remediable || remediation == Remediation::None {
        return Decision::Outcome(Outcome::DetectOnly);
    }
    let account = finding.account.as_str().parse::<AccountId>().ok();
    if remediation == Remediation::Forwarding {
        return match (&settings.forwarding, account) {
            (Some(forwarding), Some(account)) => Decision::CheckForwarding {
                forwarding,
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

/// trailwarden's own role sessions are `trailwarden-<time>`: never treated as an attack.
pub fn is_own_call(actor_arn: &str) -> bool {
    actor_arn.contains(":assumed-role/")
        && actor_arn
            .rsplit('/')
            .next()
            .is_some_and(|session| session.starts_with(&format!("{SESSION_NAME_PREFIX}-")))
}

/// The largest message SQS accepts; anything larger is not a forwarded event.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use trailwarden_model::finding::{Actor, EventContext, Severity};

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
        GuardSettings {
            remediate,
            role_name: Some("TrailwardenAudit".into()),
            sweep: Selection {
                accounts: None,
                role_name: None,
                regions: RegionSelection::AllEnabled,
                concurrency: 1,
            },
            verify_attempts: 1,
            forwarding,
        }
    }

    fn finding(account: &str, actor: &str, error_code: Option<&str>, remediable: bool) -> Finding {
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
                    principal_arn: Some(actor.into()),
                    ..Actor::default()
                },
                error_code: error_code.map(str::to_owned),
                record_source: None,
            }),
        }
    }

    const MALLORY: &str = "arn:aws:sts::111111111111:assumed-role/admin/mallory";

    #[test]
    fn a_stopped_trail_restores_the_event_region_and_the_trails_home_region() {
        let (b, s) = (baseline(), settings(true, None));
        assert_eq!(
            decide(
                &finding(ACCOUNT, MALLORY, None, true),
                Remediation::State,
                &s,
                &b
            ),
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
        let own = "arn:aws:sts::111111111111:assumed-role/TrailwardenAudit/trailwarden-1795895635";
        assert_eq!(
            outcome(&finding(ACCOUNT, own, None, true), Remediation::State),
            Outcome::OwnCall
        );
        assert_eq!(
            outcome(
                &finding(ACCOUNT, MALLORY, Some("AccessDenied"), false),
                Remediation::State
            ),
            Outcome::FailedAttempt
        );
        assert_eq!(
            outcome(&finding(ACCOUNT, MALLORY, None, false), Remediation::None),
            Outcome::DetectOnly
        );
        assert_eq!(
            outcome(
                &finding("222222222222", MALLORY, None, true),
                Remediation::State
            ),
            Outcome::NotInBaseline
        );
        assert_eq!(
            outcome(&finding("unknown", MALLORY, None, true), Remediation::State),
            Outcome::NotInBaseline
        );
        let detect = settings(false, None);
        assert_eq!(
            decide(
                &finding(ACCOUNT, MALLORY, None, true),
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
        let f = finding(ACCOUNT, MALLORY, None, true);
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
        let s = settings(false, Some(forwarding.clone()));
        assert_eq!(
            decide(&f, Remediation::Forwarding, &s, &b),
            Decision::CheckForwarding {
                forwarding: &forwarding,
                account: ACCOUNT.parse().unwrap(),
                region: "us-east-1".into(),
            }
        );
    }

    #[test]
    fn own_sessions_are_recognised() {
        assert!(is_own_call(
            "arn:aws:sts::1:assumed-role/TrailwardenAudit/trailwarden-1795895635"
        ));
        assert!(!is_own_call(
            "arn:aws:sts::1:assumed-role/compromised-admin/mallory"
        ));
        assert!(!is_own_call("arn:aws:iam::1:user/trailwarden-1"));
    }
}
