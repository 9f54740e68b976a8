//! Notifications of detections to an SNS topic and to webhooks, through the journal's outbox:
//! the guard queues one row per sink with the detection; a delivery loop sends what is due,
//! retrying with exponential backoff, so neither a crash nor a sink outage loses one.

use crate::journal::{Detection, Journal, JournalError, PendingNotification};
use crate::metrics::Metrics;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing::{info, warn};
use trailwarden_aws::ClientFactory;
use trailwarden_model::clock;

/// Where detections go.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    pub sns_topics: Vec<String>,
    pub webhooks: Vec<String>,
    /// Attempts per notification before it is given up.
    pub attempts: u32,
}

impl Sinks {
    pub fn is_empty(&self) -> bool {
        self.sns_topics.is_empty() && self.webhooks.is_empty()
    }

    /// The outbox `sink` values: `sns:<arn>`, `webhook:<url>`.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.sns_topics
            .iter()
            .map(|t| format!("sns:{t}"))
            .chain(self.webhooks.iter().map(|u| format!("webhook:{u}")))
    }

    /// Queues the notification of a detection for every sink (in the caller's transaction
    /// order: right after the detection itself is recorded).
    pub fn queue(
        &self,
        journal: &Journal,
        detection: &Detection,
        now: &str,
    ) -> Result<(), JournalError> {
        self.queue_payload(
            journal,
            &serde_json::json!({
                "type": "trailwarden.detection",
                "version": 1,
                "detection": detection,
            }),
            now,
        )
    }

    /// Queues the notification that a tampering pattern repeats: `count` detections of the
    /// same rule in the same account within `window_minutes`, the latest being `detection`
    /// (with its severity raised). One per escalation step, not one per event.
    pub fn queue_escalation(
        &self,
        journal: &Journal,
        detection: &Detection,
        count: u64,
        window_minutes: u64,
        now: &str,
    ) -> Result<(), JournalError> {
        self.queue_payload(
            journal,
            &serde_json::json!({
                "type": "trailwarden.escalation",
                "version": 1,
                "repeated": count,
                "window_minutes": window_minutes,
                "detection": detection,
            }),
            now,
        )
    }

    fn queue_payload(
        &self,
        journal: &Journal,
        payload: &serde_json::Value,
        now: &str,
    ) -> Result<(), JournalError> {
        let payload = payload.to_string();
        for sink in self.names() {
            journal.queue_notification(&sink, &payload, now)?;
        }
        Ok(())
    }
}

/// A sink for log lines: the scheme and host of a webhook (its path and query often hold a
/// secret, e.g. chat webhooks), the whole topic ARN.
pub fn redacted(sink: &str) -> String {
    match sink.strip_prefix("webhook:") {
        Some(url) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("?", url));
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("webhook:{scheme}://{host}/…")
        }
        None => sink.to_owned(),
    }
}

/// Delivers due notifications until `stop` is set, then what is due without waiting (one
/// pass); anything left stays in the outbox for the next start.
pub async fn deliver_loop(
    journal: Arc<Journal>,
    sinks: Sinks,
    factory: ClientFactory,
    metrics: Arc<Metrics>,
    wake: Arc<tokio::sync::Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = webhook_client();
    loop {
        let stopping = *stop.borrow();
        let delivered = deliver_due(&journal, &sinks, &factory, &metrics, client.as_ref()).await;
        if stopping {
            return;
        }
        if delivered == BATCH {
            continue;
        }
        tokio::select! {
            () = wake.notified() => {}
            _ = stop.changed() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Notifications tried per pass.
const BATCH: usize = 50;

/// One pass over what is due now (the Lambda calls it at the end of each invocation); how many
/// notifications were tried. Only the sinks this run was configured with are delivered to: a
/// row naming any other sink (a sink removed since, or a row written by someone else) is
/// given up, never sent.
pub async fn deliver_due(
    journal: &Journal,
    sinks: &Sinks,
    factory: &ClientFactory,
    metrics: &Metrics,
    client: Option<&WebhookClient>,
) -> usize {
    let now = clock::now();
    let due = match journal.due_notifications(now, BATCH) {
        Ok(due) => due,
        Err(e) => {
            warn!(error = %e, "notifications: reading the outbox failed");
            return 0;
        }
    };
    let configured: Vec<String> = sinks.names().collect();
    for n in &due {
        let result = if configured.contains(&n.sink) {
            deliver(n, factory, client).await
        } else {
            Err(NOT_CONFIGURED.to_owned())
        };
        record(journal, n, result, sinks, metrics, now);
    }
    due.len()
}

/// Why a row naming a sink this run does not have is given up.
const NOT_CONFIGURED: &str = "not one of this run's sinks: not sent";

fn record(
    journal: &Journal,
    n: &PendingNotification,
    result: Result<(), String>,
    sinks: &Sinks,
    metrics: &Metrics,
    now: u64,
) {
    let sink = redacted(&n.sink);
    let attempts = n.attempts + 1;
    let outcome = match &result {
        Ok(()) => {
            metrics.notifications.fetch_add(1, Ordering::Relaxed);
            info!(sink, id = n.id, attempts, "notification sent");
            journal.notification_attempted(n.id, None, None)
        }
        Err(e) if e == NOT_CONFIGURED => {
            warn!(
                sink,
                id = n.id,
                "notification names a sink this run was not given; given up, not sent"
            );
            journal.notification_attempted(n.id, Some(e), None)
        }
        Err(e) if attempts < sinks.attempts.max(1) => {
            let retry_at = now + (1u64 << (attempts - 1).min(8));
            warn!(sink, id = n.id, attempts, error = %e, retry_in_s = retry_at - now, "notification failed; will retry");
            journal.notification_attempted(n.id, Some(e), Some(retry_at))
        }
        Err(e) => {
            metrics
                .notification_failures
                .fetch_add(1, Ordering::Relaxed);
            warn!(sink, id = n.id, attempts, error = %e, "notification given up after the last attempt (still in the outbox, state failed)");
            journal.notification_attempted(n.id, Some(e), None)
        }
    };
    if let Err(e) = outcome {
        warn!(sink, id = n.id, error = %e, "notifications: recording the attempt failed");
    }
}

/// The HTTP client webhooks are posted with.
pub type WebhookClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<hyper::body::Bytes>,
>;

/// A client with the system's root certificates (none: webhooks cannot be sent).
pub fn webhook_client() -> Option<WebhookClient> {
    let connector = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(b) => b.https_or_http().enable_http1().build(),
        Err(e) => {
            warn!(error = %e, "webhooks: no trusted root certificates; webhooks cannot be sent");
            return None;
        }
    };
    Some(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

async fn deliver(
    n: &PendingNotification,
    factory: &ClientFactory,
    client: Option<&WebhookClient>,
) -> Result<(), String> {
    if let Some(topic) = n.sink.strip_prefix("sns:") {
        let subject = subject(&n.payload);
        return trailwarden_aws::topics::publish(&factory.caller(), topic, &subject, &n.payload)
            .await
            .map_err(|e| e.to_string());
    }
    let Some(url) = n.sink.strip_prefix("webhook:") else {
        return Err(format!("unknown sink {}", n.sink));
    };
    let client = client.ok_or("no webhook client (no root certificates)")?;
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("trailwarden/", env!("CARGO_PKG_VERSION")),
        )
        .body(http_body_util::Full::new(hyper::body::Bytes::from(
            n.payload.clone(),
        )))
        .map_err(|e| format!("bad webhook URL: {e}"))?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "no answer within 10 s".to_owned())?
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// "trailwarden: high trail-stop-logging in 111111111111/eu-west-1 (restored)".
fn subject(payload: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let d = &v["detection"];
    let s = |k: &str| d[k].as_str().unwrap_or("?").to_owned();
    let repeated = v["repeated"]
        .as_u64()
        .map(|n| format!("repeated {n}x "))
        .unwrap_or_default();
    format!(
        "trailwarden: {repeated}{} {} in {}/{} ({})",
        s("severity"),
        s("rule_id"),
        s("account"),
        s("region"),
        s("outcome")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_row_naming_a_sink_this_run_was_not_given_is_never_sent() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("state.db")).unwrap();
        // Written by someone with access to the state store, or left from an old setup.
        journal
            .queue_notification("webhook:http://127.0.0.1:9/exfiltrate", "{}", "t")
            .unwrap();
        let sinks = Sinks {
            sns_topics: vec![],
            webhooks: vec!["http://127.0.0.1:9/ours".into()],
            attempts: 3,
        };
        let factory = ClientFactory::new(&trailwarden_aws::AwsOptions {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            ..trailwarden_aws::AwsOptions::default()
        })
        .await;
        let metrics = Metrics::default();
        assert_eq!(
            deliver_due(&journal, &sinks, &factory, &metrics, None).await,
            1
        );
        // Given up at once (no retry, nothing sent), and kept as failed.
        assert_eq!(journal.notification_counts().unwrap(), (0, 0, 1));
        assert_eq!(metrics.notifications.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn webhook_secrets_never_reach_the_logs() {
        assert_eq!(
            redacted("webhook:https://hooks.example.com/services/T000/B000/XXXX?token=1"),
            "webhook:https://hooks.example.com/…"
        );
        assert_eq!(
            redacted("webhook:http://user:pass@127.0.0.1:9/x"),
            "webhook:http://127.0.0.1:9/…"
        );
        assert_eq!(
            redacted("sns:arn:aws:sns:us-east-1:1:t"),
            "sns:arn:aws:sns:us-east-1:1:t"
        );
    }

    #[test]
    fn subjects_name_rule_place_and_outcome() {
        let payload = r#"{"detection":{"severity":"high","rule_id":"trail-stop-logging","account":"111111111111","region":"eu-west-1","outcome":"restored"}}"#;
        assert_eq!(
            subject(payload),
            "trailwarden: high trail-stop-logging in 111111111111/eu-west-1 (restored)"
        );
        let escalation = r#"{"type":"trailwarden.escalation","repeated":10,"detection":{"severity":"critical","rule_id":"trail-stop-logging","account":"111111111111","region":"eu-west-1","outcome":"restored"}}"#;
        assert_eq!(
            subject(escalation),
            "trailwarden: repeated 10x critical trail-stop-logging in 111111111111/eu-west-1 (restored)"
        );
    }
}
