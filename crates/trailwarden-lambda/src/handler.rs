//! One invocation: which kind of event it is, what the guard did, and the JSON summary (or the
//! error that hands the event to Lambda's retries and on-failure destination).

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{Instrument, info, warn};
use trailwarden_engine::guard::{Guard, GuardError, Handled};
use trailwarden_engine::journal::Detection;
use trailwarden_engine::notify::{WebhookClient, deliver_due};
use trailwarden_model::outcome::Outcome;
use trailwarden_records::envelope::{self, Message};

/// Everything a warm container keeps between invocations.
#[derive(Debug)]
pub struct State {
    pub guard: Guard,
    /// For webhooks; the function notifies through SNS (`TRAILWARDEN_NOTIFY_SNS`).
    pub webhooks: Option<WebhookClient>,
}

impl State {
    /// Sends what is due in the outbox before the invocation returns: the function has no
    /// process that would send it later. What cannot be sent waits for the next invocation.
    async fn deliver_notifications(&self) {
        let g = &self.guard;
        if g.sinks.is_empty() {
            return;
        }
        let tried = deliver_due(
            &g.journal,
            &g.sinks,
            &g.factory,
            &g.metrics,
            self.webhooks.as_ref(),
        )
        .await;
        if tried > 0 {
            info!(tried, "notifications delivered from the outbox");
        }
    }
}

/// What an invocation carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// An "AWS API Call via CloudTrail" event (or another CloudTrail-borne detail type).
    ApiCall,
    /// EventBridge Scheduler / a schedule rule: run a sweep.
    Scheduled,
    /// Anything else, described for the error message.
    Unsupported(String),
}

/// The invocation's kind, by the one shape check the guard uses too. S3 notifications are
/// for `watch` (through its queue), not for this function.
pub fn classify(event: &Value) -> Kind {
    match envelope::classify(event) {
        Message::CloudTrail(_) => Kind::ApiCall,
        Message::Scheduled(_) => Kind::Scheduled,
        Message::S3Notification(_) => Kind::Unsupported(envelope::describe(event).0),
        Message::Unsupported(why) => Kind::Unsupported(why.0),
    }
}

fn failure(kind: &str, message: String) -> Diagnostic {
    warn!(error_type = kind, error = %message, "invocation failed");
    Diagnostic {
        error_type: kind.to_owned(),
        error_message: message,
    }
}

/// The Lambda handler: dispatches, bounds the work by the invocation's deadline, and turns
/// the outcome into a summary or an error.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let received = Instant::now();
    let payload = event.payload;
    // Stop a little before Lambda would kill the process mid-call, with an error Lambda retries.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let budget = Duration::from_millis(event.context.deadline.saturating_sub(now_ms))
        .saturating_sub(Duration::from_secs(2))
        .max(Duration::from_secs(1));
    let work = async {
        match classify(&payload) {
            Kind::ApiCall => api_call(state, &payload, received).await,
            Kind::Scheduled => sweep(state, &payload).await,
            Kind::Unsupported(what) => Err(failure(
                "UnsupportedEvent",
                format!(
                    "unsupported event: {what}; trailwarden-lambda handles \"AWS API Call via CloudTrail\" events (the forwarding rule's pattern) and \"Scheduled Event\" from aws.events (a sweep)"
                ),
            )),
        }
    };
    // Every log line of the invocation carries its request id (`span.request_id`).
    let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
    let result = tokio::time::timeout(budget, work)
        .instrument(span.clone())
        .await;
    // Notifications get what is left of the budget; what they cannot send in time waits in
    // the journal for the next invocation.
    let left = budget
        .saturating_sub(received.elapsed())
        .max(Duration::from_secs(1));
    if tokio::time::timeout(left, state.deliver_notifications())
        .instrument(span)
        .await
        .is_err()
    {
        warn!("notifications not all sent before the deadline; the rest wait in the journal");
    }
    match result {
        Ok(result) => result,
        Err(_) => Err(failure(
            "DeadlineExceeded",
            format!(
                "stopped after {} ms, 2 s before the invocation's deadline; raise the function's timeout (a restore reads, applies and verifies)",
                received.elapsed().as_millis()
            ),
        )),
    }
}

async fn api_call(state: &State, payload: &Value, received: Instant) -> Result<Value, Diagnostic> {
    let detail = &payload["detail"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let event_id = text(&detail["eventID"]);
    let event_name = text(&detail["eventName"]);
    let handled = state
        .guard
        .handle_message(payload, received)
        .await
        .map_err(|e| {
            // A restore that did not verify: Lambda's retry (or the on-failure destination) takes it.
            let kind = if matches!(e, GuardError::RestoreNotVerified(_)) {
                "RestoreFailed"
            } else {
                "HandlingFailed"
            };
            failure(
                kind,
                format!(
                    "event {} ({}): {e}",
                    event_id.as_deref().unwrap_or("-"),
                    event_name.as_deref().unwrap_or("-")
                ),
            )
        })?;
    // Not believed: answered (Lambda must not retry a forgery), never acted on.
    let rejected = match &handled {
        Handled::Rejected(r) => Some(r.to_string()),
        _ => None,
    };
    let duplicate = matches!(handled, Handled::Duplicate);
    let findings: &[Detection] = handled.detections();
    let count = |outcome: Outcome| findings.iter().filter(|d| d.outcome == outcome).count();
    let (restored, not_restored) = (count(Outcome::Restored), count(Outcome::NotRestored));
    info!(
        event = event_id.as_deref().unwrap_or("-"),
        name = event_name.as_deref().unwrap_or("-"),
        duplicate,
        rejected = rejected.as_deref().unwrap_or("-"),
        findings = findings.len(),
        restored,
        not_restored,
        millis = received.elapsed().as_millis() as u64,
        "event handled"
    );
    Ok(json!({
        "type": "event",
        "event_id": event_id,
        "event_name": event_name,
        "event_source": text(&detail["eventSource"]),
        "account": text(&detail["recipientAccountId"]).or_else(|| text(&payload["account"])),
        "region": text(&detail["awsRegion"]).or_else(|| text(&payload["region"])),
        "duplicate": duplicate,
        "rejected": rejected,
        "remediate": state.guard.settings.remediate,
        "findings": findings,
        "restored": restored,
        "not_restored": not_restored,
    }))
}

async fn sweep(state: &State, payload: &Value) -> Result<Value, Diagnostic> {
    let summary = state.guard.sweep().await;
    let reports: Vec<_> = summary.reports().collect();
    let count = |outcome: Outcome| reports.iter().map(|r| r.count(outcome)).sum::<usize>();
    let results: Vec<Value> = reports
        .iter()
        .flat_map(|r| &r.results)
        .map(|o| {
            json!({
                "rule_id": o.finding.rule_id,
                "severity": o.finding.severity.to_string(),
                "title": o.finding.title,
                "account": o.finding.account.to_string(),
                "region": o.finding.region,
                "resource": o.finding.resource,
                "result": o.result,
                "detail": o.detail,
            })
        })
        .collect();
    let failed: Vec<String> = summary
        .accounts
        .iter()
        .filter_map(|(a, r)| r.as_ref().err().map(|e| format!("{a}: {e}")))
        .collect();
    let not_restored = summary.not_restored();
    let result = json!({
        "type": "sweep",
        "schedule": payload["resources"].get(0),
        "runs": reports.iter().filter_map(|r| r.run.clone()).collect::<Vec<_>>(),
        "applied": state.guard.settings.remediate,
        "findings": results.len(),
        "restored": count(Outcome::Restored),
        "not_restored": not_restored,
        "escalated": count(Outcome::Escalated),
        "planned": count(Outcome::Planned),
        "gaps": reports.iter().flat_map(|r| &r.gaps).map(ToString::to_string).collect::<Vec<_>>(),
        "failed_accounts": failed,
        "results": results,
        "millis": summary.millis,
    });
    if !failed.is_empty() && reports.is_empty() {
        return Err(failure(
            "SweepFailed",
            format!("the sweep could not run: {}", failed.join("; ")),
        ));
    }
    if not_restored > 0 {
        return Err(failure(
            "RestoreFailed",
            format!("sweep: {not_restored} finding(s) not restored: {result}"),
        ));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_told_apart() {
        let api = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail", "detail": {"eventName": "StopLogging"}});
        assert_eq!(classify(&api), Kind::ApiCall);
        let schedule = json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "resources": ["arn:aws:events:us-east-1:1:rule/s"], "detail": {}});
        assert_eq!(classify(&schedule), Kind::Scheduled);
        let custom_schedule =
            json!({"detail-type": "Scheduled Event", "source": "my.app", "detail": {}});
        assert_eq!(
            classify(&custom_schedule),
            Kind::Unsupported("detail-type \"Scheduled Event\" from source \"my.app\"".into())
        );
        let no_detail =
            json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail"});
        assert!(matches!(classify(&no_detail), Kind::Unsupported(_)));
        let s3 = json!({"Records": [{"eventSource": "aws:s3", "s3": {}}]});
        assert_eq!(
            classify(&s3),
            Kind::Unsupported("a Records batch from \"aws:s3\" (not an EventBridge event)".into())
        );
        assert_eq!(
            classify(&json!({"hello": 1})),
            Kind::Unsupported(
                "an event without detail-type or source (top-level keys: hello)".into()
            )
        );
    }
}
