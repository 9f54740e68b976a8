//! What a message handed to the responder is: an EventBridge event carrying a CloudTrail
//! record, an S3 notification of new log files, a schedule, or something else. The one place
//! that knows these shapes; the guard, the Lambda and the reader all ask it.

use serde_json::Value;

/// `detail-type`s of EventBridge events whose `detail` is a CloudTrail record ("AWS API Call
/// via CloudTrail", "AWS Console Sign In via CloudTrail", "AWS Service Event via CloudTrail").
pub fn is_cloudtrail_detail_type(detail_type: &str) -> bool {
    detail_type.ends_with("via CloudTrail")
}

/// One message, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Message<'a> {
    /// An EventBridge event whose `detail` is a CloudTrail record.
    CloudTrail(Envelope<'a>),
    /// An S3 event notification (`Records` with `s3` entries): new objects to fetch.
    S3Notification(&'a [Value]),
    /// An EventBridge schedule (`Scheduled Event` from `aws.events`).
    Scheduled(Envelope<'a>),
    /// Anything else, described for an error message (never the content).
    Unsupported(Unsupported),
}

/// The EventBridge envelope's fields that say where an event comes from, and the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Envelope<'a> {
    pub source: Option<&'a str>,
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    pub detail_type: &'a str,
    /// The CloudTrail record (`detail`) of a CloudTrail event; the schedule's `detail`.
    pub detail: &'a Value,
    pub envelope: &'a Value,
}

/// Why a message is not one the responder handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Classifies `message` by its shape alone (whether to believe it is the caller's question).
pub fn classify(message: &Value) -> Message<'_> {
    let text = |k: &str| message.get(k).and_then(Value::as_str);
    if let Some(records) = message.get("Records").and_then(Value::as_array)
        && records.iter().any(|r| r.get("s3").is_some())
    {
        return Message::S3Notification(records);
    }
    let (detail_type, source) = (text("detail-type"), text("source"));
    let envelope = |detail_type, detail| Envelope {
        source,
        account: text("account"),
        region: text("region"),
        detail_type,
        detail,
        envelope: message,
    };
    match (detail_type, source, message.get("detail")) {
        (Some(t), _, Some(detail)) if is_cloudtrail_detail_type(t) && detail.is_object() => {
            Message::CloudTrail(envelope(t, detail))
        }
        (Some(t @ "Scheduled Event"), Some("aws.events"), Some(detail)) => {
            Message::Scheduled(envelope(t, detail))
        }
        (Some(t), s, _) => Message::Unsupported(Unsupported(format!(
            "detail-type {t:?} from source {:?}{}",
            s.unwrap_or("-"),
            if is_cloudtrail_detail_type(t) {
                " without a record in detail"
            } else {
                ""
            }
        ))),
        (None, Some(s), _) => Message::Unsupported(Unsupported(format!(
            "an event from source {s:?} without detail-type"
        ))),
        (None, None, _) => Message::Unsupported(describe(message)),
    }
}

/// A message that is not an EventBridge event, described by its shape (for a handler that
/// takes EventBridge events only, an S3 notification included).
pub fn describe(message: &Value) -> Unsupported {
    if let Some(first) = message
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
    {
        let from = first
            .get("eventSource")
            .or_else(|| first.get("EventSource"))
            .and_then(Value::as_str)
            .unwrap_or("-");
        return Unsupported(format!(
            "a Records batch from {from:?} (not an EventBridge event)"
        ));
    }
    let keys: Vec<&str> = message
        .as_object()
        .map(|o| o.keys().map(String::as_str).take(8).collect())
        .unwrap_or_default();
    Unsupported(format!(
        "an event without detail-type or source (top-level keys: {})",
        if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unsupported(message: &Value) -> String {
        match classify(message) {
            Message::Unsupported(u) => u.0,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_are_told_apart() {
        let api = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail", "account": "111111111111", "detail": {"eventName": "StopLogging"}});
        let Message::CloudTrail(e) = classify(&api) else {
            panic!()
        };
        assert_eq!(e.source, Some("aws.cloudtrail"));
        assert_eq!(e.account, Some("111111111111"));
        assert_eq!(e.detail["eventName"], "StopLogging");
        let schedule = json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "resources": ["arn:aws:events:us-east-1:1:rule/s"], "detail": {}});
        assert!(matches!(classify(&schedule), Message::Scheduled(_)));
        let s3 = json!({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}}}]});
        assert!(matches!(classify(&s3), Message::S3Notification(r) if r.len() == 1));
    }

    #[test]
    fn what_is_not_handled_is_described() {
        assert_eq!(
            unsupported(
                &json!({"detail-type": "Scheduled Event", "source": "my.app", "detail": {}})
            ),
            "detail-type \"Scheduled Event\" from source \"my.app\""
        );
        assert!(
            unsupported(
                &json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail"})
            )
            .contains("without a record in detail")
        );
        assert_eq!(
            unsupported(&json!({"Records": [{"eventSource": "aws:sqs"}]})),
            "a Records batch from \"aws:sqs\" (not an EventBridge event)"
        );
        assert_eq!(
            unsupported(&json!({"hello": 1})),
            "an event without detail-type or source (top-level keys: hello)"
        );
        assert_eq!(
            unsupported(&json!({"source": "x"})),
            "an event from source \"x\" without detail-type"
        );
    }
}
