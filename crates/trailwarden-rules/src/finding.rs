//! Turns a rule match on a record into a [`Finding`] that names the event and the actor.

use crate::rule::{Rule, Verdict};
use serde_json::Value;
use trailwarden_model::finding::{Actor, EventContext, Finding};
use trailwarden_model::target::AccountId;

/// The finding for `rule` matching `record`; `record_source` says where the record was read.
pub fn event_finding(
    rule: &Rule,
    verdict: Verdict,
    record: &Value,
    record_source: Option<String>,
) -> Finding {
    let text = |path: &[&str]| -> Option<String> {
        let mut v = record;
        for key in path {
            v = v.get(key)?;
        }
        match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let account = text(&["recipientAccountId"])
        .or_else(|| text(&["userIdentity", "accountId"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let error_code = verdict.failed.then(|| text(&["errorCode"])).flatten();
    let title = if verdict.failed {
        format!(
            "{} (failed attempt: {})",
            rule.title,
            error_code.as_deref().unwrap_or("error")
        )
    } else {
        rule.title.clone()
    };
    Finding {
        rule_id: rule.rule_id.clone(),
        severity: verdict.severity,
        title,
        account: AccountId::as_recorded(&account),
        region: text(&["awsRegion"]).unwrap_or_else(|| "unknown".to_owned()),
        technique: (!rule.catalog.is_empty()).then(|| rule.catalog.join(",")),
        attack: rule.attack_technique(),
        sigma_id: rule.uuid.clone(),
        resource: resource_of(record),
        expected: None,
        actual: None,
        remediable: verdict.remediable,
        event: Some(EventContext {
            event_id: text(&["eventID"]),
            event_name: text(&["eventName"]),
            event_source: text(&["eventSource"]),
            event_time: text(&["eventTime"]),
            actor: Actor {
                principal_arn: text(&["userIdentity", "arn"]),
                identity_type: text(&["userIdentity", "type"]),
                access_key_id: text(&["userIdentity", "accessKeyId"]),
                source_ip: text(&["sourceIPAddress"]),
                user_agent: text(&["userAgent"]),
            },
            error_code,
            record_source,
        }),
    }
}

/// The resource the call was about: the first ARN in `resources`, else the name the request
/// gave (trail, bucket, key, log group, detector, ...).
fn resource_of(record: &Value) -> Option<String> {
    if let Some(arn) = record
        .get("resources")
        .and_then(Value::as_array)
        .and_then(|r| r.iter().find_map(|x| x.get("ARN").and_then(Value::as_str)))
    {
        return Some(arn.to_owned());
    }
    let params = record.get("requestParameters")?;
    [
        "name",
        "trailName",
        "bucketName",
        "keyId",
        "logGroupName",
        "detectorId",
        "configurationRecorderName",
        "deliveryChannelName",
        "resolverQueryLogConfigId",
        "flowLogIds",
    ]
    .iter()
    .find_map(|k| match params.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items.first().and_then(Value::as_str).map(str::to_owned),
        Value::Object(o) => o.get("item").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    })
}
