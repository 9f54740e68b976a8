//! The EventBridge rules that forward tamper-relevant CloudTrail events from every member
//! region to the security account's bus (`deploy`).

use crate::failure::{GapScope, gap_from_sdk};
use crate::fanout::Account;
use aws_sdk_eventbridge::types::{RuleState, Target};
use trailwarden_model::target::Gap;

/// The rule's name in every member region.
pub const FORWARDING_RULE: &str = "trailwarden-forward-tamper-events";
const TARGET_ID: &str = "trailwarden-security-bus";

/// What `ensure` did in one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

/// How a region's forwarding rule differs from what `deploy` installs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Drift {
    /// No rule: the region's tampering never reaches the security account.
    Missing,
    /// The rule exists but is disabled.
    Disabled,
    /// The rule does not target the security account's bus (its targets are listed).
    NotForwarding(Vec<String>),
    /// The rule forwards another pattern than the rule pack's (edited, or an older pack).
    PatternDiffers,
}

impl Drift {
    pub fn describe(&self) -> String {
        match self {
            Drift::Missing => "missing".into(),
            Drift::Disabled => "disabled".into(),
            Drift::NotForwarding(targets) if targets.is_empty() => "has no target".into(),
            Drift::NotForwarding(targets) => {
                format!("targets {} instead of the security bus", targets.join(", "))
            }
            Drift::PatternDiffers => "forwards another event pattern than the rule pack's".into(),
        }
    }
}

/// Compares a region's rule (as `read` returns it) with `pattern` → `bus_arn`; None: as deployed.
pub fn drift(
    existing: Option<&(String, bool, Vec<String>)>,
    pattern: &serde_json::Value,
    bus_arn: &str,
) -> Option<Drift> {
    let (p, enabled, targets) = match existing {
        None => return Some(Drift::Missing),
        Some(rule) => rule,
    };
    if !targets.iter().any(|t| t == bus_arn) {
        return Some(Drift::NotForwarding(targets.clone()));
    }
    if !enabled {
        return Some(Drift::Disabled);
    }
    (serde_json::from_str::<serde_json::Value>(p).ok().as_ref() != Some(pattern))
        .then_some(Drift::PatternDiffers)
}

/// The forwarding rule as it is in one region, if it exists: (pattern, enabled, target ARNs).
pub async fn read(
    account: &Account,
    region: &str,
) -> Result<Option<(String, bool, Vec<String>)>, Gap> {
    let events = account.clients.eventbridge(region);
    let rule = match events.describe_rule().name(FORWARDING_RULE).send().await {
        Ok(rule) => rule,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(gap_from_sdk(
                &e,
                &account.id,
                Some(region),
                "events:DescribeRule",
                GapScope::Region,
            ));
        }
    };
    let targets = events
        .list_targets_by_rule()
        .rule(FORWARDING_RULE)
        .send()
        .await
        .map_err(|e| {
            gap_from_sdk(
                &e,
                &account.id,
                Some(region),
                "events:ListTargetsByRule",
                GapScope::Region,
            )
        })?;
    Ok(Some((
        rule.event_pattern().unwrap_or_default().to_owned(),
        rule.state() == Some(&RuleState::Enabled),
        targets
            .targets()
            .iter()
            .map(|t| t.arn().to_owned())
            .collect(),
    )))
}

/// Makes the region's forwarding rule match `pattern` and target `bus_arn` (with `role_arn`
/// for a bus in another region); idempotent.
pub async fn ensure(
    account: &Account,
    region: &str,
    pattern: &serde_json::Value,
    bus_arn: &str,
    role_arn: Option<&str>,
) -> Result<Change, Gap> {
    let existing = read(account, region).await?;
    let change = match drift(existing.as_ref(), pattern, bus_arn) {
        None => return Ok(Change::Unchanged),
        Some(Drift::Missing) => Change::Created,
        Some(_) => Change::Updated,
    };
    let events = account.clients.eventbridge(region);
    events
        .put_rule()
        .name(FORWARDING_RULE)
        .event_pattern(pattern.to_string())
        .state(RuleState::Enabled)
        .description(
            "trailwarden: forwards tamper-relevant CloudTrail events to the security account",
        )
        .send()
        .await
        .map_err(|e| {
            gap_from_sdk(
                &e,
                &account.id,
                Some(region),
                "events:PutRule",
                GapScope::Region,
            )
        })?;
    let target = Target::builder()
        .id(TARGET_ID)
        .arn(bus_arn)
        .set_role_arn(role_arn.map(str::to_owned))
        .build()
        .map_err(|e| Gap {
            account: account.id.clone(),
            region: Some(region.to_owned()),
            operation: "events:PutTargets".into(),
            kind: trailwarden_model::target::GapKind::ServiceError,
            code: None,
            message: e.to_string(),
        })?;
    events
        .put_targets()
        .rule(FORWARDING_RULE)
        .targets(target)
        .send()
        .await
        .map_err(|e| {
            gap_from_sdk(
                &e,
                &account.id,
                Some(region),
                "events:PutTargets",
                GapScope::Region,
            )
        })?;
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_names_what_differs() {
        let pattern = serde_json::json!({"detail": {"eventName": ["StopLogging"]}});
        let bus = "arn:aws:events:us-east-1:100000000000:event-bus/default";
        let rule = |p: &str, enabled: bool, targets: &[&str]| {
            (
                p.to_owned(),
                enabled,
                targets.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            )
        };
        let good = rule(&pattern.to_string(), true, &[bus]);
        assert_eq!(drift(Some(&good), &pattern, bus), None);
        // Key order and spacing do not matter; content does.
        let spaced = rule(
            "{ \"detail\" : {\"eventName\": [\"StopLogging\"]} }",
            true,
            &[bus],
        );
        assert_eq!(drift(Some(&spaced), &pattern, bus), None);
        assert_eq!(drift(None, &pattern, bus), Some(Drift::Missing));
        assert_eq!(
            drift(
                Some(&rule(&pattern.to_string(), false, &[bus])),
                &pattern,
                bus
            ),
            Some(Drift::Disabled)
        );
        assert_eq!(
            drift(
                Some(&rule(&pattern.to_string(), true, &["arn:aws:sqs:x"])),
                &pattern,
                bus
            ),
            Some(Drift::NotForwarding(vec!["arn:aws:sqs:x".into()]))
        );
        let narrowed = rule(
            "{\"detail\": {\"eventName\": [\"DeleteTrail\"]}}",
            true,
            &[bus],
        );
        assert_eq!(
            drift(Some(&narrowed), &pattern, bus),
            Some(Drift::PatternDiffers)
        );
    }
}
