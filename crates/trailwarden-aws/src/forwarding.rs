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
    let same_pattern =
        |p: &str| serde_json::from_str::<serde_json::Value>(p).ok().as_ref() == Some(pattern);
    let change = match &existing {
        None => Change::Created,
        Some((p, enabled, targets))
            if same_pattern(p) && *enabled && targets.iter().any(|t| t == bus_arn) =>
        {
            return Ok(Change::Unchanged);
        }
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
