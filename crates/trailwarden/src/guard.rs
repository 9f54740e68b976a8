//! The guard: what happens to one forwarded event or one S3 log-file notification, and to a
//! sweep. Shared by `trailwarden watch` (the queue service) and `trailwarden-lambda` (one
//! invocation per EventBridge event). Reads no queue and serves nothing itself.

use crate::forwarding_check::Forwarding;
use crate::notify::Sinks;
use crate::remediate_cmd::{Report, restore};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::{info, warn};
use trailwarden_aws::fanout::Selection;
use trailwarden_aws::{ClientFactory, SESSION_NAME_PREFIX};
use trailwarden_engine::journal::Journal;
use trailwarden_engine::scan::{Input, ScanOptions, scan_input};
use trailwarden_model::finding::{Finding, rfc3339};
use trailwarden_model::target::{AccountId, RegionSelection};
use trailwarden_posture::Baseline;
use trailwarden_rules::{RuleSet, event_finding};

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

/// One finding an event raised, and what the guard did about it.
#[derive(Debug, Clone, Serialize)]
pub struct Handled {
    pub rule_id: String,
    pub severity: String,
    pub title: String,
    pub account: String,
    pub region: String,
    pub event_id: Option<String>,
    pub event_name: Option<String>,
    pub event_time: Option<String>,
    pub actor: Option<String>,
    pub source_ip: Option<String>,
    /// `restored`, `not restored`, `failed attempt`, `detect only`, ...
    pub outcome: String,
}

/// Counters for /metrics (Prometheus text format).
#[derive(Debug, Default)]
pub struct Metrics {
    pub messages: AtomicU64,
    pub events: AtomicU64,
    pub duplicates: AtomicU64,
    pub findings: AtomicU64,
    pub restores: AtomicU64,
    pub restore_failures: AtomicU64,
    pub errors: AtomicU64,
    pub sweeps: AtomicU64,
    pub sweep_millis: AtomicU64,
    /// Milliseconds from the last event's eventTime to its handling.
    pub lag_millis: AtomicU64,
    pub notifications: AtomicU64,
    pub notification_failures: AtomicU64,
}

impl Metrics {
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        for (name, kind, help, value) in [
            (
                "trailwarden_messages_total",
                "counter",
                "Queue messages received.",
                g(&self.messages) as f64,
            ),
            (
                "trailwarden_events_total",
                "counter",
                "CloudTrail events evaluated.",
                g(&self.events) as f64,
            ),
            (
                "trailwarden_duplicate_events_total",
                "counter",
                "Redelivered events recognised by eventID and skipped.",
                g(&self.duplicates) as f64,
            ),
            (
                "trailwarden_findings_total",
                "counter",
                "Rule findings raised by events.",
                g(&self.findings) as f64,
            ),
            (
                "trailwarden_restores_total",
                "counter",
                "Findings restored and verified.",
                g(&self.restores) as f64,
            ),
            (
                "trailwarden_restore_failures_total",
                "counter",
                "Findings that could not be restored.",
                g(&self.restore_failures) as f64,
            ),
            (
                "trailwarden_errors_total",
                "counter",
                "Messages or sweeps that failed (retried by the queue).",
                g(&self.errors) as f64,
            ),
            (
                "trailwarden_sweeps_total",
                "counter",
                "Full sweeps against the baseline.",
                g(&self.sweeps) as f64,
            ),
            (
                "trailwarden_sweep_duration_seconds",
                "gauge",
                "Duration of the last sweep.",
                g(&self.sweep_millis) as f64 / 1000.0,
            ),
            (
                "trailwarden_queue_lag_seconds",
                "gauge",
                "From the last event's time to its handling.",
                g(&self.lag_millis) as f64 / 1000.0,
            ),
            (
                "trailwarden_notifications_total",
                "counter",
                "Notifications delivered (SNS, webhooks).",
                g(&self.notifications) as f64,
            ),
            (
                "trailwarden_notification_failures_total",
                "counter",
                "Notifications given up after their last attempt (kept in the outbox).",
                g(&self.notification_failures) as f64,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out
    }
}

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

impl Guard<'_> {
    /// One queue message: an EventBridge "AWS API Call via CloudTrail" event, or an S3
    /// notification of new CloudTrail log files (each object is fetched and scanned).
    /// `received` is when the message was dequeued (for the overhead measurement).
    pub async fn handle(&self, body: &str, received: Instant) -> Result<Vec<Handled>, String> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "oversized message ({} bytes; SQS allows 256 KiB)",
                body.len()
            ));
        }
        let message: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
        self.handle_message(&message, received).await
    }

    /// An already parsed message (the Lambda runtime hands the event over parsed).
    pub async fn handle_message(
        &self,
        message: &Value,
        received: Instant,
    ) -> Result<Vec<Handled>, String> {
        if let Some(records) = message.get("Records").and_then(Value::as_array)
            && records.iter().any(|r| r.get("s3").is_some())
        {
            return self.handle_s3_notification(records, received).await;
        }
        let is_cloudtrail = message
            .get("detail-type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("via CloudTrail"));
        let Some(record) = message.get("detail").filter(|_| is_cloudtrail) else {
            return Err(
                "neither an \"AWS API Call via CloudTrail\" event nor an S3 notification".into(),
            );
        };
        self.handle_record(record, received).await
    }

    async fn handle_s3_notification(
        &self,
        records: &[Value],
        received: Instant,
    ) -> Result<Vec<Handled>, String> {
        let mut handled = Vec::new();
        let mut done = BTreeMap::new();
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
                return Err(e.clone());
            }
            for finding in result.findings {
                let outcome = self.act_on(&finding, received, &mut done).await?;
                let new = self.remember(&finding, outcome)?;
                handled.push(self.notify(&finding, outcome, new)?);
            }
        }
        not_restored(&handled)?;
        Ok(handled)
    }

    async fn handle_record(
        &self,
        record: &Value,
        received: Instant,
    ) -> Result<Vec<Handled>, String> {
        self.metrics.events.fetch_add(1, Ordering::Relaxed);
        let event_id = record
            .get("eventID")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !event_id.is_empty()
            && self
                .journal
                .event_handled(&event_id)
                .map_err(|e| e.to_string())?
        {
            self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
            info!(event = %event_id, "already handled (redelivered); skipped");
            return Ok(Vec::new());
        }
        if let Some(t) = record
            .get("eventTime")
            .and_then(Value::as_str)
            .and_then(trailwarden_model::finding::parse_rfc3339)
        {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            self.metrics
                .lag_millis
                .store(now.saturating_sub(t * 1000), Ordering::Relaxed);
        }
        let mut findings = Vec::new();
        self.rules.for_each_match(record, |rule, verdict| {
            findings.push(event_finding(rule, verdict, record, None));
        });
        let mut outcome = "no finding";
        let mut handled = Vec::new();
        let mut done = BTreeMap::new();
        for finding in &findings {
            outcome = self.act_on(finding, received, &mut done).await?;
            let new = self.remember(finding, outcome)?;
            handled.push(self.notify(finding, outcome, new)?);
        }
        not_restored(&handled)?;
        if !event_id.is_empty() {
            self.journal
                .mark_event_handled(&event_id, &rfc3339(crate::posture_cmd::now()), outcome)
                .map_err(|e| e.to_string())?;
        }
        Ok(handled)
    }

    /// Queues the notifications of a detection (not of trailwarden's own calls).
    fn notify(&self, finding: &Finding, outcome: &str, new: bool) -> Result<Handled, String> {
        let handled = Self::handled(finding, outcome);
        if new && outcome != OWN_CALL && !self.sinks.is_empty() {
            self.sinks
                .queue(self.journal, &handled, &rfc3339(crate::posture_cmd::now()))?;
            if let Some(wake) = self.notify_wake {
                wake.notify_one();
            }
        }
        Ok(handled)
    }

    fn handled(finding: &Finding, outcome: &str) -> Handled {
        let event = finding.event.as_ref();
        Handled {
            rule_id: finding.rule_id.clone(),
            severity: finding.severity.to_string(),
            title: finding.title.clone(),
            account: finding.account.to_string(),
            region: finding.region.clone(),
            event_id: event.and_then(|e| e.event_id.clone()),
            event_name: event.and_then(|e| e.event_name.clone()),
            event_time: event.and_then(|e| e.event_time.clone()),
            actor: event.and_then(|e| e.actor.principal_arn.clone()),
            source_ip: event.and_then(|e| e.actor.source_ip.clone()),
            outcome: outcome.to_owned(),
        }
    }

    /// Reports a finding and, when it is restorable, restores its account now.
    /// `done`: the restores already made for this message, by account and region: the other
    /// findings of the same event share the outcome instead of reading everything again.
    async fn act_on(
        &self,
        finding: &Finding,
        received: Instant,
        done: &mut BTreeMap<(String, String), &'static str>,
    ) -> Result<&'static str, String> {
        self.metrics.findings.fetch_add(1, Ordering::Relaxed);
        let event = finding.event.as_ref();
        let actor = event
            .and_then(|e| e.actor.principal_arn.as_deref())
            .unwrap_or("-");
        info!(rule = %finding.rule_id, severity = %finding.severity, account = %finding.account,
            region = %finding.region, event = event.and_then(|e| e.event_name.as_deref()).unwrap_or("-"),
            actor, source_ip = event.and_then(|e| e.actor.source_ip.as_deref()).unwrap_or("-"), "finding");
        if is_own_call(actor) {
            return Ok(OWN_CALL);
        }
        if finding.rule_id.starts_with("responder-eventbridge")
            && event.is_some_and(|e| e.error_code.is_none())
            && let Some(forwarding) = &self.settings.forwarding
            && let Ok(account) = finding.account.as_str().parse::<AccountId>()
        {
            let selection = self.selection(&account, vec![finding.region.clone()]);
            let (restored, failed) = self.check_forwarding(forwarding, &selection).await;
            return Ok(match (restored, failed) {
                (0, 0) => "detect only (forwarding rule intact)",
                (_, 0) => "restored",
                _ => "not restored",
            });
        }
        if !finding.remediable {
            return Ok(if event.is_some_and(|e| e.error_code.is_some()) {
                "failed attempt"
            } else {
                "detect only"
            });
        }
        if !self.settings.remediate {
            return Ok("restorable (not restoring: no --remediate)");
        }
        let Ok(account) = finding.account.as_str().parse::<AccountId>() else {
            return Ok("not an account id");
        };
        let Some(want) = self.baseline.account(&account) else {
            return Ok("account not in the baseline");
        };
        // The event's region and the home regions of the account's baseline trails.
        let mut regions: BTreeSet<String> =
            want.trails.iter().map(|t| t.home_region.clone()).collect();
        regions.insert(finding.region.clone());
        let key = (account.to_string(), finding.region.clone());
        if let Some(outcome) = done.get(&key) {
            return Ok(outcome);
        }
        let selection = self.selection(&account, regions.into_iter().collect());
        let started = Instant::now();
        // Dequeue → restore start: trailwarden's own processing (parse, dedup, rules, journal).
        let overhead_micros = received.elapsed().as_micros() as u64;
        let report = restore(
            self.factory,
            true,
            self.baseline,
            &selection,
            Some(self.journal),
            self.settings.verify_attempts,
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
        let (restored, failed) = self.count(&report);
        info!(account = %account, restored, failed, overhead_micros, millis = started.elapsed().as_millis() as u64, run = report.run.as_deref().unwrap_or("-"), "targeted restore");
        let outcome = if failed == 0 {
            "restored"
        } else {
            "not restored"
        };
        done.insert(key, outcome);
        Ok(outcome)
    }

    /// Keeps the detection for `trailwarden incidents` (trailwarden's own calls are logged,
    /// not kept: they are not an incident).
    /// Whether it was new (or its outcome changed): only then is it notified.
    fn remember(&self, finding: &Finding, outcome: &str) -> Result<bool, String> {
        if outcome == OWN_CALL {
            return Ok(false);
        }
        let event = finding.event.as_ref();
        let detection = trailwarden_engine::Detection {
            event_time: event
                .and_then(|e| e.event_time.clone())
                .unwrap_or_else(|| rfc3339(crate::posture_cmd::now())),
            account: finding.account.to_string(),
            region: finding.region.clone(),
            rule_id: finding.rule_id.clone(),
            severity: finding.severity.to_string(),
            event_id: event.and_then(|e| e.event_id.clone()),
            event_name: event.and_then(|e| e.event_name.clone()),
            actor: event.and_then(|e| e.actor.principal_arn.clone()),
            access_key: event.and_then(|e| e.actor.access_key_id.clone()),
            source_ip: event.and_then(|e| e.actor.source_ip.clone()),
            outcome: outcome.to_owned(),
            title: finding.title.clone(),
        };
        self.journal
            .record_detection(&detection)
            .map_err(|e| e.to_string())
    }

    fn count(&self, report: &Report) -> (u64, u64) {
        let restored = report
            .results
            .iter()
            .filter(|o| o.result == "restored")
            .count() as u64;
        let failed = report
            .results
            .iter()
            .filter(|o| o.result == "not-restored")
            .count() as u64;
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
            true,
            self.baseline,
            &selection,
            journal,
            self.settings.verify_attempts,
        )
        .await;
        let forwarding = match &self.settings.forwarding {
            Some(forwarding) => self.check_forwarding(forwarding, &selection).await,
            None => (0, 0),
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
                let (restored, failed) = (restored + forwarding.0, failed + forwarding.1);
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
                warn!(error = %format!("{e:#}"), "sweep failed; next one at the interval");
                None
            }
        }
    }
}

impl Guard<'_> {
    /// One account (the caller's own without --role-name) in `regions`.
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

    /// Checks the forwarding rules of `selection` and, with remediate, puts drifted ones back;
    /// (restored, not restored). Drift without remediate is logged as a finding.
    async fn check_forwarding(&self, forwarding: &Forwarding, selection: &Selection) -> (u64, u64) {
        let resolution = match trailwarden_aws::fanout::resolve(self.factory, selection).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "forwarding rules: accounts not resolved");
                return (0, 0);
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
        if !self.settings.remediate || drifted.is_empty() {
            return (0, 0);
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
        let counts = (restored.len() as u64, failed.len() as u64);
        self.metrics.restores.fetch_add(counts.0, Ordering::Relaxed);
        self.metrics
            .restore_failures
            .fetch_add(counts.1, Ordering::Relaxed);
        counts
    }
}

const OWN_CALL: &str = "trailwarden's own call";

/// A restore that did not verify fails the message: it stays on the queue (or the Lambda
/// invocation is retried) and is tried again, instead of being marked handled and forgotten
/// until the next sweep; after the queue's maxReceiveCount it is dead-lettered.
fn not_restored(handled: &[Handled]) -> Result<(), String> {
    let failed: Vec<String> = handled
        .iter()
        .filter(|h| h.outcome == "not restored")
        .map(|h| format!("{} in account {} {}", h.rule_id, h.account, h.region))
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{RESTORE_NOT_VERIFIED}: {}; each step's error is in the journal and the log; left unhandled to be retried",
        failed.join("; ")
    ))
}

/// How the error of a message whose restore did not verify begins (callers tell it from a
/// message that cannot be handled at all).
pub const RESTORE_NOT_VERIFIED: &str = "restore not verified";

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

    #[test]
    fn metrics_are_prometheus_text() {
        let m = Metrics::default();
        m.events.fetch_add(3, Ordering::Relaxed);
        let text = m.render();
        assert!(
            text.contains("# TYPE trailwarden_events_total counter\ntrailwarden_events_total 3\n"),
            "{text}"
        );
    }
}
