//! `trailwarden watch`: the service. Consumes the central queue of forwarded CloudTrail
//! events, runs the rule pack on each, restores the affected account at once (with
//! --remediate), sweeps everything against the baseline on start and every --sweep-interval,
//! and serves /healthz and /metrics on loopback.

use crate::args::{GlobalArgs, WatchArgs};
use crate::exit;
use crate::remediate_cmd::{Report, restore};
use crate::rules_cmd;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use trailwarden_aws::fanout::Selection;
use trailwarden_aws::{ClientFactory, SESSION_NAME_PREFIX, queue};
use trailwarden_engine::journal::Journal;
use trailwarden_engine::scan::{Input, ScanOptions, scan_input};
use trailwarden_model::finding::{Finding, rfc3339};
use trailwarden_model::target::{AccountId, RegionSelection};
use trailwarden_posture::Baseline;
use trailwarden_rules::{RuleSet, event_finding};

/// Counters for /metrics (Prometheus text format).
#[derive(Debug, Default)]
struct Metrics {
    messages: AtomicU64,
    events: AtomicU64,
    duplicates: AtomicU64,
    findings: AtomicU64,
    restores: AtomicU64,
    restore_failures: AtomicU64,
    errors: AtomicU64,
    sweeps: AtomicU64,
    sweep_millis: AtomicU64,
    /// Milliseconds from the last event's eventTime to its handling.
    lag_millis: AtomicU64,
}

impl Metrics {
    fn render(&self) -> String {
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
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out
    }
}

pub async fn run(factory: &ClientFactory, g: &GlobalArgs, args: &WatchArgs) -> Result<u8> {
    let rules = rules_cmd::load(&args.source)?;
    let baseline = Baseline::load(&args.baseline)?;
    if g.role_name.is_none() && baseline.accounts.len() > 1 {
        bail!("the baseline has several accounts: pass --role-name (the role to assume in each)");
    }
    let path = match &args.state {
        Some(p) => p.clone(),
        None => Journal::default_path()?,
    };
    let journal = Journal::open(&path)
        .with_context(|| format!("opening the state store {}", path.display()))?;
    let metrics = Arc::new(Metrics::default());
    if args.listen != "off" {
        serve_http(&args.listen, metrics.clone()).await?;
    }
    let caller = factory.caller();
    let region = queue::queue_region(&args.queue_url, factory.home_region());
    let watcher = Watcher {
        factory,
        g,
        args,
        rules: &rules,
        baseline: &baseline,
        journal: &journal,
        metrics: &metrics,
    };
    info!(queue = %args.queue_url, remediate = args.remediate, rules = rules.len(), "watching");

    let mut shutdown = Box::pin(shutdown_signal());
    let mut next_sweep = Instant::now();
    loop {
        if Instant::now() >= next_sweep {
            watcher.sweep().await;
            next_sweep = Instant::now() + args.sweep_interval;
        }
        let wait = next_sweep
            .saturating_duration_since(Instant::now())
            .as_secs()
            .min(20) as i32;
        let received = tokio::select! {
            received = queue::receive(&caller, &region, &args.queue_url, wait) => received,
            () = &mut shutdown => {
                info!("stopping: signal received, no message in flight");
                return Ok(exit::OK);
            }
        };
        let messages = match received {
            Ok(messages) => messages,
            Err(e) => {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "receiving from the queue failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        // In-flight messages are finished even when a signal arrives meanwhile.
        for message in messages {
            metrics.messages.fetch_add(1, Ordering::Relaxed);
            match watcher.handle(&message.body).await {
                Ok(()) => {
                    if let Err(e) =
                        queue::delete(&caller, &region, &args.queue_url, &message.receipt_handle)
                            .await
                    {
                        warn!(message = %message.id, error = %e, "could not delete a handled message; it will be redelivered and recognised");
                    }
                }
                Err(e) => {
                    metrics.errors.fetch_add(1, Ordering::Relaxed);
                    warn!(message = %message.id, receive_count = message.receive_count, error = %e,
                        "message not handled; left on the queue (after the queue's maxReceiveCount it goes to the dead-letter queue)");
                }
            }
        }
    }
}

struct Watcher<'a> {
    factory: &'a ClientFactory,
    g: &'a GlobalArgs,
    args: &'a WatchArgs,
    rules: &'a RuleSet,
    baseline: &'a Baseline,
    journal: &'a Journal,
    metrics: &'a Metrics,
}

impl Watcher<'_> {
    /// One queue message: an EventBridge "AWS API Call via CloudTrail" event, or an S3
    /// notification of new CloudTrail log files (each object is fetched and scanned).
    async fn handle(&self, body: &str) -> Result<(), String> {
        if body.len() > 256 * 1024 {
            return Err(format!(
                "oversized message ({} bytes; SQS allows 256 KiB)",
                body.len()
            ));
        }
        let message: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
        if let Some(records) = message.get("Records").and_then(Value::as_array)
            && records.iter().any(|r| r.get("s3").is_some())
        {
            return self.handle_s3_notification(records).await;
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
        self.handle_record(record).await
    }

    async fn handle_s3_notification(&self, records: &[Value]) -> Result<(), String> {
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
                let outcome = self.act_on(&finding).await?;
                self.remember(&finding, outcome)?;
            }
        }
        Ok(())
    }

    async fn handle_record(&self, record: &Value) -> Result<(), String> {
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
            return Ok(());
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
        for finding in &findings {
            outcome = self.act_on(finding).await?;
            self.remember(finding, outcome)?;
        }
        if !event_id.is_empty() {
            self.journal
                .mark_event_handled(&event_id, &rfc3339(crate::posture_cmd::now()), outcome)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Reports a finding and, when it is restorable, restores its account now.
    async fn act_on(&self, finding: &Finding) -> Result<&'static str, String> {
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
        if !finding.remediable {
            return Ok(if event.is_some_and(|e| e.error_code.is_some()) {
                "failed attempt"
            } else {
                "detect only"
            });
        }
        if !self.args.remediate {
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
        let selection = Selection {
            accounts: self.g.role_name.as_ref().map(|_| vec![account.clone()]),
            role_name: self.g.role_name.clone(),
            regions: RegionSelection::List(regions.into_iter().collect()),
            concurrency: usize::from(self.g.concurrency),
        };
        let started = Instant::now();
        let report = restore(
            self.factory,
            self.g,
            self.baseline,
            &selection,
            Some(self.journal),
            3,
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
        let (restored, failed) = self.count(&report);
        info!(account = %account, restored, failed, millis = started.elapsed().as_millis() as u64, run = report.run.as_deref().unwrap_or("-"), "targeted restore");
        Ok(if failed == 0 {
            "restored"
        } else {
            "not restored"
        })
    }

    /// Keeps the detection for `trailwarden incidents` (trailwarden's own calls are logged,
    /// not kept: they are not an incident).
    fn remember(&self, finding: &Finding, outcome: &str) -> Result<(), String> {
        if outcome == OWN_CALL {
            return Ok(());
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
    async fn sweep(&self) {
        let started = Instant::now();
        let ids: Vec<AccountId> = self
            .baseline
            .accounts
            .iter()
            .map(|a| a.account.clone())
            .collect();
        let selection = crate::targets::selection(self.g, Some(ids));
        let journal = self.args.remediate.then_some(self.journal);
        match restore(self.factory, self.g, self.baseline, &selection, journal, 3).await {
            Ok(report) => {
                let (restored, failed) = if report.applied {
                    self.count(&report)
                } else {
                    (0, 0)
                };
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
            }
            Err(e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                warn!(error = %format!("{e:#}"), "sweep failed; next one at the interval");
            }
        }
        self.metrics.sweeps.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .sweep_millis
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

const OWN_CALL: &str = "trailwarden's own call";

/// trailwarden's own role sessions are `trailwarden-<time>`: never treated as an attack.
fn is_own_call(actor_arn: &str) -> bool {
    actor_arn.contains(":assumed-role/")
        && actor_arn
            .rsplit('/')
            .next()
            .is_some_and(|session| session.starts_with(&format!("{SESSION_NAME_PREFIX}-")))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// /healthz and /metrics; nothing that acts, so no token is needed (loopback by default).
async fn serve_http(listen: &str, metrics: Arc<Metrics>) -> Result<()> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    info!(address = %listener.local_addr()?, "serving /healthz and /metrics");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let (status, body) = match req.uri().path() {
                            "/healthz" => (StatusCode::OK, "ok\n".to_owned()),
                            "/metrics" => (StatusCode::OK, metrics.render()),
                            _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
                        };
                        Response::builder()
                            .status(status)
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(body)))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}

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
