//! The responder's counters, rendered for `/metrics` (Prometheus text format). Counts only:
//! no label carries an account, a region or an event name.

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Detections of a repeating pattern not notified one by one (only escalation steps are).
    pub notifications_suppressed: AtomicU64,
    /// Messages not believed, by reason (`provenance::Rejection::REASONS`, in that order).
    pub rejected: [AtomicU64; 5],
}

impl Metrics {
    /// Counts a message not believed.
    pub fn reject(&self, reason: &str) {
        if let Some(i) = crate::provenance::Rejection::REASONS
            .iter()
            .position(|r| *r == reason)
        {
            self.rejected[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages not believed, for `reason`.
    pub fn rejected(&self, reason: &str) -> u64 {
        crate::provenance::Rejection::REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.rejected[i].load(Ordering::Relaxed))
    }
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
            (
                "trailwarden_notifications_suppressed_total",
                "counter",
                "Detections of a repeating pattern not notified one by one (escalations are).",
                g(&self.notifications_suppressed) as f64,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        // One labelled series per reason: a fixed, small set.
        out.push_str(
            "# HELP trailwarden_rejected_messages_total Messages not believed (not from AWS, account mismatch, account or bucket not in the baseline, record under another account's prefix); never acted on.\n# TYPE trailwarden_rejected_messages_total counter\n",
        );
        for (reason, count) in crate::provenance::Rejection::REASONS
            .iter()
            .zip(&self.rejected)
        {
            out.push_str(&format!(
                "trailwarden_rejected_messages_total{{reason=\"{reason}\"}} {}\n",
                count.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_prometheus_text() {
        let m = Metrics::default();
        m.events.fetch_add(3, Ordering::Relaxed);
        let text = m.render();
        assert!(
            text.contains("# TYPE trailwarden_events_total counter\ntrailwarden_events_total 3\n"),
            "{text}"
        );
        m.reject("not-from-aws");
        m.reject("not-from-aws");
        m.reject("no-such-reason");
        let text = m.render();
        assert!(
            text.contains("trailwarden_rejected_messages_total{reason=\"not-from-aws\"} 2\n"),
            "{text}"
        );
        assert_eq!(m.rejected("not-from-aws"), 2);
    }
}
