//! The audit: compare an account's observed state with its baseline, and apply the checks that
//! hold whatever the baseline says (coverage, delivery, CloudTrail's access to its bucket).

use crate::baseline::Settings;
use crate::bucket_policy::cloudtrail_delivery_problem;
use crate::selectors::management_events_gap;
use crate::snapshot::{AccountSnapshot, BucketSnapshot, LifecycleRule, TrailSnapshot};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use trailwarden_model::finding::{Finding, Severity};

/// A check's identity: what the finding says whatever the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub id: &'static str,
    pub severity: Severity,
    /// Tamper-catalog reference.
    pub technique: &'static str,
    pub title: &'static str,
}

pub(crate) const LOGS: &str = "T1562.008";
pub(crate) const TOOLS: &str = "T1562.001";

macro_rules! checks {
    ($($name:ident = $id:literal, $sev:ident, $tech:literal, $title:literal;)*) => {
        $(pub const $name: Check = Check { id: $id, severity: Severity::$sev, technique: $tech, title: $title };)*
        /// Every check the audit can report.
        pub const ALL: &[Check] = &[$($name),*];
    };
}

checks! {
    TRAIL_DELETED = "trail-deleted", Critical, "A2", "Trail deleted";
    TRAIL_LOGGING_STOPPED = "trail-logging-stopped", Critical, "A1", "Trail stopped logging";
    TRAIL_SINGLE_REGION = "trail-single-region", High, "A3", "Trail narrowed to a single region";
    TRAIL_GLOBAL_EVENTS_OFF = "trail-global-events-off", High, "A4", "Trail no longer records global service events";
    TRAIL_VALIDATION_OFF = "trail-validation-off", Medium, "A7", "Log file integrity validation turned off";
    TRAIL_REDIRECTED = "trail-redirected", Critical, "A5", "Trail delivers to another bucket or prefix";
    TRAIL_KMS_CHANGED = "trail-kms-key-changed", High, "A6", "Trail encrypts with another KMS key";
    TRAIL_CLOUDWATCH_CHANGED = "trail-cloudwatch-logs-changed", Medium, "A8", "Trail's CloudWatch Logs delivery changed";
    TRAIL_SNS_CHANGED = "trail-sns-changed", Low, "A9", "Trail's SNS notifications changed";
    TRAIL_MANAGEMENT_EVENTS_EXCLUDED = "trail-management-events-excluded", High, "A11,A12", "Trail no longer records every management event";
    TRAIL_SELECTORS_CHANGED = "trail-event-selectors-changed", Medium, "A11,A12", "Trail's event selectors changed";
    TRAIL_INSIGHTS_CHANGED = "trail-insights-changed", Low, "A13", "Trail's Insights selectors changed";
    TRAIL_TAGS_CHANGED = "trail-tags-changed", Info, "A2", "Trail's tags changed";
    TRAIL_DELIVERY_FAILING = "trail-delivery-failing", High, "B2", "Trail cannot deliver its log files";
    TRAIL_DELIVERY_STALE = "trail-delivery-stale", Medium, "B1", "Trail has not delivered log files recently";
    TRAIL_UNEXPECTED = "trail-unexpected", Medium, "A15", "Trail not in the baseline";
    REGION_NOT_LOGGED = "trail-region-not-logged", High, "A3,I4", "Region not covered by any logging trail that records management events";
    BUCKET_DELETED = "bucket-deleted", Critical, "B1", "Log bucket deleted";
    BUCKET_OWNER_CHANGED = "bucket-owner-changed", Critical, "B1", "Log bucket no longer owned by its account (deleted and re-created by another account?)";
    BUCKET_POLICY_BLOCKS = "bucket-policy-blocks-cloudtrail", Critical, "B2", "Log bucket policy no longer lets CloudTrail deliver";
    BUCKET_POLICY_CHANGED = "bucket-policy-changed", High, "B2", "Log bucket policy changed";
    BUCKET_LIFECYCLE_EXPIRES = "bucket-lifecycle-expires-logs", High, "B3", "Lifecycle rule expires log files";
    BUCKET_VERSIONING_SUSPENDED = "bucket-versioning-suspended", Medium, "B6", "Log bucket versioning suspended";
    BUCKET_ENCRYPTION_CHANGED = "bucket-encryption-changed", High, "B7", "Log bucket default encryption removed or switched to another key";
    BUCKET_ACCESS_LOGGING_CHANGED = "bucket-access-logging-changed", Medium, "B8", "Log bucket server access logging turned off or redirected";
    BUCKET_ACL_CHANGED = "bucket-acl-changed", High, "B6", "Log bucket ACL grants added or removed";
    BUCKET_MFA_DELETE_OFF = "bucket-mfa-delete-off", Medium, "B6", "Log bucket MFA delete turned off";
    BUCKET_PUBLIC_ACCESS_WEAKENED = "bucket-public-access-block-weakened", High, "B6", "Log bucket public access block weakened";
    BUCKET_OBJECT_LOCK_WEAKENED = "bucket-object-lock-weakened", High, "B5", "Log bucket Object Lock default retention weakened";
    BUCKET_NOTIFICATION_ADDED = "bucket-notification-added", High, "B4", "Log bucket sends object events to a target not in the baseline";
    BUCKET_REPLICATION_CHANGED = "bucket-replication-changed", Medium, "B6", "Log bucket replication changed";
    KEY_DELETED = "kms-key-deleted", Critical, "C1", "Trail KMS key deleted";
    KEY_DISABLED = "kms-key-disabled", Critical, "C1", "Trail KMS key disabled";
    KEY_PENDING_DELETION = "kms-key-pending-deletion", Critical, "C1", "Trail KMS key scheduled for deletion";
    KEY_POLICY_CHANGED = "kms-key-policy-changed", High, "C2", "Trail KMS key policy changed";
    LOG_GROUP_DELETED = "cloudwatch-log-group-deleted", High, "D1", "Trail's CloudWatch Logs group deleted";
    LOG_GROUP_RETENTION_SHORTENED = "cloudwatch-log-group-retention-shortened", Medium, "D2", "Log group retention shortened";
    LOG_GROUP_FILTERS_CHANGED = "cloudwatch-log-group-filters-changed", Medium, "D3", "Log group metric or subscription filters removed or changed";
    ALARM_DELETED = "cloudwatch-alarm-deleted", High, "D4", "CloudWatch alarm on the trail's log metrics deleted";
    ALARM_MUTED = "cloudwatch-alarm-actions-disabled", High, "D4", "CloudWatch alarm's actions disabled (it notifies nobody)";
    ALARM_CHANGED = "cloudwatch-alarm-changed", Medium, "D4", "CloudWatch alarm's metric, condition or actions changed";
    TOPIC_DELETED = "cloudwatch-sns-topic-deleted", High, "D5", "SNS topic of the alarm path deleted";
    TOPIC_POLICY_CHANGED = "cloudwatch-sns-topic-policy-changed", Medium, "D5", "SNS topic policy changed (CloudTrail or CloudWatch may no longer publish)";
    TOPIC_SUBSCRIPTION_REMOVED = "cloudwatch-sns-subscription-removed", High, "D5", "SNS topic lost a subscriber";
    GUARDDUTY_DELETED = "detection-guardduty-detector-deleted", High, "E1", "GuardDuty detector deleted";
    GUARDDUTY_DISABLED = "detection-guardduty-detector-disabled", High, "E1", "GuardDuty detector disabled";
    GUARDDUTY_TRUSTED_IPS_ADDED = "detection-guardduty-trusted-ip-set-added", High, "E2", "GuardDuty trusted IP list added (findings from it are suppressed)";
    GUARDDUTY_FILTER_ADDED = "detection-guardduty-suppression-filter-added", High, "E3", "GuardDuty suppression rule (auto-archive filter) added";
    CONFIG_RECORDER_DELETED = "detection-config-recorder-deleted", High, "E5", "AWS Config recorder deleted";
    CONFIG_RECORDER_STOPPED = "detection-config-recorder-stopped", High, "E5", "AWS Config recorder stopped";
    CONFIG_CHANNEL_DELETED = "detection-config-delivery-channel-deleted", High, "E5", "AWS Config delivery channel deleted";
    CONFIG_RECORDER_NARROWED = "detection-config-recorder-narrowed", High, "E5", "AWS Config recorder records fewer resource types";
    CONFIG_CHANNEL_REDIRECTED = "detection-config-delivery-channel-redirected", High, "E5", "AWS Config delivers to another bucket, prefix or topic";
    FLOW_LOGS_DELETED = "sources-vpc-flow-logs-deleted", Medium, "F1", "VPC flow logs deleted";
    ACCOUNT_UNGUARDED = "organization-account-unguarded", High, "I4", "Account in the organization that the baseline does not cover";
    ACCOUNT_LEFT = "organization-account-left", Critical, "G1", "Baseline account is no longer in the organization";
    ACCOUNT_NOT_ACTIVE = "organization-account-not-active", Medium, "G1", "Baseline account is suspended or closed (nothing can be read there)";
    REGION_UNGUARDED = "organization-region-unguarded", High, "I4", "Region enabled since the baseline was captured (nothing guards it)";
    DEFAULT_NOT_LOGGED = "organization-default-region-not-logged", High, "I4", "New account: region not covered by a logging trail (baseline defaults)";
    DEFAULT_GUARDDUTY_OFF = "organization-default-guardduty-off", High, "E1", "New account: no enabled GuardDuty detector (baseline defaults)";
    DEFAULT_CONFIG_OFF = "organization-default-config-off", High, "E5", "New account: no recording AWS Config recorder (baseline defaults)";
}

struct Report<'a> {
    account: &'a AccountSnapshot,
    findings: Vec<Finding>,
}

impl Report<'_> {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        check: Check,
        region: &str,
        resource: &str,
        detail: Option<String>,
        expected: Option<Value>,
        actual: Option<Value>,
        remediable: bool,
    ) {
        let attack = if check.technique.starts_with('E') {
            TOOLS
        } else {
            LOGS
        };
        let title = match detail {
            Some(d) => format!("{}: {d}", check.title),
            None => check.title.to_owned(),
        };
        self.findings.push(Finding {
            rule_id: check.id.to_owned(),
            severity: check.severity,
            title,
            account: self.account.account.clone(),
            region: region.to_owned(),
            technique: Some(check.technique.to_owned()),
            attack: Some(attack.to_owned()),
            sigma_id: None,
            resource: Some(resource.to_owned()),
            expected,
            actual,
            remediable,
            event: None,
        });
    }
}

/// Every finding for one account: differences from its baseline and posture problems.
pub fn audit_account(
    baseline: &AccountSnapshot,
    observed: &AccountSnapshot,
    settings: &Settings,
) -> Vec<Finding> {
    let mut report = Report {
        account: observed,
        findings: Vec::new(),
    };
    let read: BTreeSet<&str> = observed.regions.iter().map(String::as_str).collect();

    for want in &baseline.trails {
        match observed.trails.iter().find(|t| t.arn == want.arn) {
            // A trail whose home region was not read may still exist: a gap, not a deletion.
            None if !read.contains(want.home_region.as_str()) => {}
            None => report.add(
                TRAIL_DELETED,
                &want.home_region,
                &want.arn,
                Some(format!("{} no longer exists", want.name)),
                Some(json!("exists")),
                Some(json!("missing")),
                !want.foreign,
            ),
            Some(have) => compare_trail(&mut report, want, have),
        }
    }
    for have in &observed.trails {
        if !baseline.trails.iter().any(|t| t.arn == have.arn) {
            report.add(
                TRAIL_UNEXPECTED,
                &have.home_region,
                &have.arn,
                Some(format!(
                    "{} delivers to {}",
                    have.name,
                    have.s3_bucket.as_deref().unwrap_or("(no bucket)")
                )),
                None,
                Some(json!({"bucket": have.s3_bucket, "logging": have.logging})),
                false,
            );
        }
        delivery_checks(&mut report, have, settings);
    }
    coverage_checks(&mut report, baseline);
    bucket_checks(&mut report, baseline);
    key_checks(&mut report, baseline);
    log_group_checks(&mut report, baseline);
    alarm_checks(&mut report, baseline);
    topic_checks(&mut report, baseline);
    service_checks(&mut report, baseline, &read);
    report.findings
}

fn owner_note(t: &TrailSnapshot) -> String {
    if t.foreign {
        let owner = t.arn.split(':').nth(4).unwrap_or("?");
        format!(" (organization trail owned by account {owner}: only that account can restore it)")
    } else {
        String::new()
    }
}

fn compare_trail(r: &mut Report, want: &TrailSnapshot, have: &TrailSnapshot) {
    let region = want.home_region.as_str();
    let arn = want.arn.as_str();
    let fixable = !have.foreign;
    let note = owner_note(have);
    let name = &want.name;
    let unread = |part: &str| have.unread.iter().any(|u| u == part);
    if want.logging && !have.logging && !unread("status") {
        r.add(
            TRAIL_LOGGING_STOPPED,
            region,
            arn,
            Some(format!("{name}{note}")),
            Some(json!(true)),
            Some(json!(false)),
            fixable,
        );
    }
    if want.multi_region && !have.multi_region {
        r.add(
            TRAIL_SINGLE_REGION,
            region,
            arn,
            Some(format!("{name}{note}")),
            Some(json!(true)),
            Some(json!(false)),
            fixable,
        );
    }
    if want.include_global_service_events && !have.include_global_service_events {
        r.add(
            TRAIL_GLOBAL_EVENTS_OFF,
            region,
            arn,
            Some(format!("{name}{note}")),
            Some(json!(true)),
            Some(json!(false)),
            fixable,
        );
    }
    if want.log_file_validation && !have.log_file_validation {
        r.add(
            TRAIL_VALIDATION_OFF,
            region,
            arn,
            Some(format!("{name}{note}")),
            Some(json!(true)),
            Some(json!(false)),
            fixable,
        );
    }
    if want.s3_bucket != have.s3_bucket
        || norm_prefix(&want.s3_key_prefix) != norm_prefix(&have.s3_key_prefix)
    {
        r.add(
            TRAIL_REDIRECTED,
            region,
            arn,
            Some(format!("{name}{note}")),
            Some(json!({"bucket": want.s3_bucket, "prefix": want.s3_key_prefix})),
            Some(json!({"bucket": have.s3_bucket, "prefix": have.s3_key_prefix})),
            fixable,
        );
    }
    if want.kms_key_id != have.kms_key_id {
        r.add(
            TRAIL_KMS_CHANGED,
            region,
            arn,
            Some(format!("{name}{note}")),
            Some(json!(want.kms_key_id)),
            Some(json!(have.kms_key_id)),
            fixable,
        );
    }
    if want.cloudwatch_logs_log_group_arn != have.cloudwatch_logs_log_group_arn
        || want.cloudwatch_logs_role_arn != have.cloudwatch_logs_role_arn
    {
        r.add(TRAIL_CLOUDWATCH_CHANGED, region, arn, Some(format!("{name}{note}")),
              Some(json!({"log_group": want.cloudwatch_logs_log_group_arn, "role": want.cloudwatch_logs_role_arn})),
              Some(json!({"log_group": have.cloudwatch_logs_log_group_arn, "role": have.cloudwatch_logs_role_arn})),
              fixable);
    }
    if want.sns_topic_arn != have.sns_topic_arn {
        r.add(
            TRAIL_SNS_CHANGED,
            region,
            arn,
            Some(format!("{name}{note}")),
            Some(json!(want.sns_topic_arn)),
            Some(json!(have.sns_topic_arn)),
            fixable,
        );
    }
    if let (Some(ws), Some(hs)) = (&want.event_selectors, &have.event_selectors)
        && ws != hs
    {
        let want_gap = management_events_gap(ws);
        let have_gap = management_events_gap(hs);
        let check = if want_gap.is_none() && have_gap.is_some() {
            TRAIL_MANAGEMENT_EVENTS_EXCLUDED
        } else {
            TRAIL_SELECTORS_CHANGED
        };
        let detail = match &have_gap {
            Some(gap) => format!("{name}: {gap}{note}"),
            None => format!("{name}{note}"),
        };
        r.add(
            check,
            region,
            arn,
            Some(detail),
            serde_json::to_value(ws).ok(),
            serde_json::to_value(hs).ok(),
            fixable,
        );
    }
    if let (Some(wi), Some(hi)) = (&want.insight_selectors, &have.insight_selectors)
        && sorted(wi) != sorted(hi)
    {
        r.add(
            TRAIL_INSIGHTS_CHANGED,
            region,
            arn,
            Some(format!("{name}{note}")),
            Some(json!(wi)),
            Some(json!(hi)),
            fixable,
        );
    }
    if want.tags != have.tags && !unread("tags") {
        r.add(
            TRAIL_TAGS_CHANGED,
            region,
            arn,
            Some(format!("{name}{note}")),
            Some(json!(want.tags)),
            Some(json!(have.tags)),
            fixable,
        );
    }
}

fn delivery_checks(r: &mut Report, have: &TrailSnapshot, settings: &Settings) {
    let Some(delivery) = &have.delivery else {
        return;
    };
    if !have.logging {
        return;
    }
    let note = owner_note(have);
    if let Some(err) = &delivery.latest_delivery_error {
        r.add(
            TRAIL_DELIVERY_FAILING,
            &have.home_region,
            &have.arn,
            Some(format!("{}: {err}{note}", have.name)),
            None,
            Some(json!(err)),
            !have.foreign,
        );
    } else if let Some(age) = delivery.latest_delivery_age_seconds
        && age > settings.max_delivery_age_minutes * 60
    {
        r.add(
            TRAIL_DELIVERY_STALE,
            &have.home_region,
            &have.arn,
            Some(format!(
                "{}: last delivery {} minutes ago{note}",
                have.name,
                age / 60
            )),
            Some(json!(format!(
                "within {} minutes",
                settings.max_delivery_age_minutes
            ))),
            Some(json!(delivery.latest_delivery_time)),
            false,
        );
    }
}

/// Regions read where no logging trail records every management event.
pub fn uncovered_regions(observed: &AccountSnapshot) -> Vec<String> {
    observed
        .regions
        .iter()
        .filter(|region| {
            !observed.trails.iter().any(|t| {
                // A trail whose status is unknown is not held against coverage.
                (t.logging || t.unread.iter().any(|u| u == "status"))
                    && (t.multi_region || &t.home_region == *region)
                    && t.event_selectors
                        .as_ref()
                        .is_none_or(|s| management_events_gap(s).is_none())
            })
        })
        .cloned()
        .collect()
}

fn coverage_checks(r: &mut Report, baseline: &AccountSnapshot) {
    // Only regions the baseline had covered: a region never logged is the team's decision,
    // already visible at capture time.
    let was_uncovered: BTreeSet<String> = uncovered_regions(baseline).into_iter().collect();
    // A trail finding that already explains the lapse (stopped, deleted, narrowed) is the
    // root cause: one finding for it, not one more per region it used to cover.
    let explained: BTreeSet<String> = r
        .findings
        .iter()
        .filter(|f| EXPLAINS_COVERAGE.contains(&f.rule_id.as_str()))
        .filter_map(|f| f.resource.clone())
        .collect();
    for region in uncovered_regions(r.account) {
        if !baseline.regions.contains(&region) || was_uncovered.contains(&region) {
            continue;
        }
        let covering: Vec<&TrailSnapshot> = baseline
            .trails
            .iter()
            .filter(|t| t.logging && (t.multi_region || t.home_region == region))
            .collect();
        if covering.iter().any(|t| explained.contains(&t.arn)) {
            continue;
        }
        let resource = format!("arn:aws:cloudtrail:{region}:{}:trail/*", r.account.account);
        r.add(
            REGION_NOT_LOGGED,
            &region,
            &resource,
            None,
            Some(json!(covering.iter().map(|t| &t.name).collect::<Vec<_>>())),
            Some(json!("no logging trail records it")),
            true,
        );
    }
}

/// Trail findings that leave the regions the trail covered unlogged.
const EXPLAINS_COVERAGE: &[&str] = &[
    TRAIL_DELETED.id,
    TRAIL_LOGGING_STOPPED.id,
    TRAIL_SINGLE_REGION.id,
    TRAIL_MANAGEMENT_EVENTS_EXCLUDED.id,
];

fn bucket_checks(r: &mut Report, baseline: &AccountSnapshot) {
    for want in &baseline.buckets {
        let Some(have) = r.account.buckets.iter().find(|b| b.name == want.name) else {
            continue; // not read: reported as a gap
        };
        let arn = format!("arn:aws:s3:::{}", want.name);
        let region = want.region.clone().unwrap_or_else(|| "us-east-1".into());
        if want.exists && !have.exists {
            r.add(
                BUCKET_DELETED,
                &region,
                &arn,
                Some(want.name.clone()),
                Some(json!("exists")),
                Some(json!("missing")),
                true,
            );
            continue;
        }
        if !have.exists {
            continue;
        }
        if let Some(owner) = &want.owner
            && have.owner.as_ref() != Some(owner)
        {
            // Everything else read from a squatted bucket is the squatter's: say this first.
            r.add(
                BUCKET_OWNER_CHANGED,
                &region,
                &arn,
                Some(format!(
                    "{} is not owned by account {owner} any more (S3 refuses the owner check); a bucket with its name, and perhaps a copy of its policy, belongs to someone else",
                    want.name
                )),
                Some(json!({ "owner": owner })),
                Some(json!({ "owner": "another account" })),
                false,
            );
        }
        for trail in baseline
            .trails
            .iter()
            .filter(|t| t.s3_bucket.as_deref() == Some(&want.name) && !t.foreign)
        {
            let was = cloudtrail_delivery_problem(
                want.policy.as_deref(),
                &want.name,
                trail.s3_key_prefix.as_deref(),
                r.account.account.as_str(),
            );
            let now = cloudtrail_delivery_problem(
                have.policy.as_deref(),
                &want.name,
                trail.s3_key_prefix.as_deref(),
                r.account.account.as_str(),
            );
            if was.is_none()
                && let Some(problem) = now
            {
                r.add(
                    BUCKET_POLICY_BLOCKS,
                    &region,
                    &arn,
                    Some(format!("{} for trail {}: {problem}", want.name, trail.name)),
                    None,
                    None,
                    true,
                );
                break;
            }
        }
        if !same_json(&want.policy, &have.policy) {
            r.add(
                BUCKET_POLICY_CHANGED,
                &region,
                &arn,
                Some(want.name.clone()),
                want.policy.as_deref().map(parse_or_text),
                have.policy.as_deref().map(parse_or_text),
                true,
            );
        }
        lifecycle_checks(r, baseline, want, have, &region, &arn);
        // A baseline that knows the default encryption holds it: another key (the attacker's,
        // withdrawn later) makes new log files unreadable.
        if let Some(expected) = &want.encryption
            && have.encryption.as_ref() != Some(expected)
        {
            r.add(
                BUCKET_ENCRYPTION_CHANGED,
                &region,
                &arn,
                Some(want.name.clone()),
                Some(json!(expected)),
                Some(json!(have.encryption)),
                true,
            );
        }
        // Access logs record who read or deleted log files when S3 data events are off.
        if let Some(expected) = &want.access_logging
            && have.access_logging.as_ref() != Some(expected)
        {
            r.add(
                BUCKET_ACCESS_LOGGING_CHANGED,
                &region,
                &arn,
                Some(want.name.clone()),
                Some(json!(expected)),
                Some(json!(have.access_logging)),
                true,
            );
        }
        if let (Some(w), Some(h)) = (&want.acl, &have.acl)
            && w.grants != h.grants
        {
            let show = |g: &crate::snapshot::AclGrant| format!("{} {}", g.permission, g.grantee);
            let added: Vec<String> = h
                .grants
                .iter()
                .filter(|g| !w.grants.contains(g))
                .map(show)
                .collect();
            let removed: Vec<String> = w
                .grants
                .iter()
                .filter(|g| !h.grants.contains(g))
                .map(show)
                .collect();
            r.add(
                BUCKET_ACL_CHANGED,
                &region,
                &arn,
                Some(format!(
                    "{}: added [{}], removed [{}]",
                    want.name,
                    added.join(", "),
                    removed.join(", ")
                )),
                Some(json!(w.grants)),
                Some(json!(h.grants)),
                true,
            );
        }
        if want.versioning == "Enabled" && have.versioning != "Enabled" {
            r.add(
                BUCKET_VERSIONING_SUSPENDED,
                &region,
                &arn,
                Some(want.name.clone()),
                Some(json!(want.versioning)),
                Some(json!(have.versioning)),
                true,
            );
        }
        if want.mfa_delete.as_deref() == Some("Enabled")
            && have.mfa_delete.as_deref() != Some("Enabled")
        {
            r.add(
                BUCKET_MFA_DELETE_OFF,
                &region,
                &arn,
                Some(want.name.clone()),
                Some(json!("Enabled")),
                Some(json!(have.mfa_delete)),
                false,
            );
        }
        if let Some(w) = want.public_access_block {
            let h = have.public_access_block;
            let weaker = match h {
                None => true,
                Some(h) => {
                    (w.block_public_acls && !h.block_public_acls)
                        || (w.ignore_public_acls && !h.ignore_public_acls)
                        || (w.block_public_policy && !h.block_public_policy)
                        || (w.restrict_public_buckets && !h.restrict_public_buckets)
                }
            };
            if weaker {
                r.add(
                    BUCKET_PUBLIC_ACCESS_WEAKENED,
                    &region,
                    &arn,
                    Some(want.name.clone()),
                    serde_json::to_value(w).ok(),
                    serde_json::to_value(h).ok(),
                    true,
                );
            }
        }
        if let Some(w) = &want.object_lock
            && w.days.is_some()
        {
            let weaker = match &have.object_lock {
                None => true,
                Some(h) => {
                    h.days.unwrap_or(0) < w.days.unwrap_or(0)
                        || (w.mode.as_deref() == Some("COMPLIANCE")
                            && h.mode.as_deref() != Some("COMPLIANCE"))
                }
            };
            if weaker {
                r.add(
                    BUCKET_OBJECT_LOCK_WEAKENED,
                    &region,
                    &arn,
                    Some(want.name.clone()),
                    serde_json::to_value(w).ok(),
                    serde_json::to_value(&have.object_lock).ok(),
                    false,
                );
            }
        }
        let added: Vec<_> = have
            .notifications
            .iter()
            .filter(|n| {
                !want
                    .notifications
                    .iter()
                    .any(|w| w.kind == n.kind && w.arn == n.arn)
            })
            .collect();
        if !added.is_empty() {
            let targets: Vec<String> = added
                .iter()
                .map(|n| format!("{} {}", n.kind, n.arn))
                .collect();
            r.add(
                BUCKET_NOTIFICATION_ADDED,
                &region,
                &arn,
                Some(format!("{} -> {}", want.name, targets.join(", "))),
                serde_json::to_value(&want.notifications).ok(),
                serde_json::to_value(&have.notifications).ok(),
                true,
            );
        }
        if want.replication_rules != have.replication_rules {
            r.add(
                BUCKET_REPLICATION_CHANGED,
                &region,
                &arn,
                Some(want.name.clone()),
                serde_json::to_value(&want.replication_rules).ok(),
                serde_json::to_value(&have.replication_rules).ok(),
                true,
            );
        }
    }
}

/// A rule that expires objects under the trail's log path, enabled, and not in the baseline as is.
fn lifecycle_checks(
    r: &mut Report,
    baseline: &AccountSnapshot,
    want: &BucketSnapshot,
    have: &BucketSnapshot,
    region: &str,
    arn: &str,
) {
    let log_paths: Vec<String> = baseline
        .trails
        .iter()
        .filter(|t| t.s3_bucket.as_deref() == Some(&want.name))
        .map(
            |t| match t.s3_key_prefix.as_deref().filter(|p| !p.is_empty()) {
                Some(p) => format!("{}/AWSLogs/", p.trim_matches('/')),
                None => "AWSLogs/".to_owned(),
            },
        )
        .collect();
    for rule in &have.lifecycle_rules {
        if want.lifecycle_rules.contains(rule) || !expires(rule) {
            continue;
        }
        let hits_logs = log_paths
            .iter()
            .any(|path| path.starts_with(&rule.prefix) || rule.prefix.starts_with(path.as_str()));
        if hits_logs || log_paths.is_empty() {
            r.add(
                BUCKET_LIFECYCLE_EXPIRES,
                region,
                arn,
                Some(format!(
                    "{}: rule {} expires objects under '{}'{}",
                    want.name,
                    rule.id.as_deref().unwrap_or("(no id)"),
                    rule.prefix,
                    rule.expiration_days
                        .map(|d| format!(" after {d} day(s)"))
                        .unwrap_or_default()
                )),
                None,
                serde_json::to_value(rule).ok(),
                true,
            );
        }
    }
}

fn expires(rule: &LifecycleRule) -> bool {
    rule.status == "Enabled"
        && (rule.expiration_days.is_some()
            || rule.expiration_date.is_some()
            || rule.noncurrent_expiration_days.is_some())
}

fn key_checks(r: &mut Report, baseline: &AccountSnapshot) {
    for want in &baseline.keys {
        let Some(have) = r.account.keys.iter().find(|k| k.arn == want.arn) else {
            continue;
        };
        let state = have.state.as_deref().unwrap_or("unknown");
        if !have.exists {
            r.add(
                KEY_DELETED,
                &want.region,
                &want.arn,
                None,
                Some(json!("Enabled")),
                Some(json!("missing")),
                false,
            );
            continue;
        }
        match state {
            "Disabled" if want.state.as_deref() == Some("Enabled") => r.add(
                KEY_DISABLED,
                &want.region,
                &want.arn,
                None,
                Some(json!("Enabled")),
                Some(json!(state)),
                true,
            ),
            "PendingDeletion" => r.add(
                KEY_PENDING_DELETION,
                &want.region,
                &want.arn,
                have.deletion_date
                    .as_ref()
                    .map(|d| format!("deletion on {d}")),
                Some(json!(want.state)),
                Some(json!(state)),
                true,
            ),
            _ => {}
        }
        if have.policy.is_some() && !same_json(&want.policy, &have.policy) {
            r.add(
                KEY_POLICY_CHANGED,
                &want.region,
                &want.arn,
                None,
                want.policy.as_deref().map(parse_or_text),
                have.policy.as_deref().map(parse_or_text),
                true,
            );
        }
    }
}

fn log_group_checks(r: &mut Report, baseline: &AccountSnapshot) {
    for want in &baseline.log_groups {
        let Some(have) = r.account.log_groups.iter().find(|g| g.arn == want.arn) else {
            continue;
        };
        if want.exists && !have.exists {
            r.add(
                LOG_GROUP_DELETED,
                &want.region,
                &want.arn,
                Some(want.name.clone()),
                Some(json!("exists")),
                Some(json!("missing")),
                true,
            );
            continue;
        }
        let shorter = match (want.retention_days, have.retention_days) {
            (None, Some(_)) => true,
            (Some(w), Some(h)) => h < w,
            _ => false,
        };
        if shorter {
            r.add(
                LOG_GROUP_RETENTION_SHORTENED,
                &want.region,
                &want.arn,
                Some(want.name.clone()),
                Some(json!(want.retention_days)),
                Some(json!(have.retention_days)),
                true,
            );
        }
        let missing: Vec<&str> = want
            .subscription_filters
            .iter()
            .chain(&want.metric_filters)
            .filter(|f| !have.subscription_filters.contains(f) && !have.metric_filters.contains(f))
            .map(|f| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            r.add(
                LOG_GROUP_FILTERS_CHANGED,
                &want.region,
                &want.arn,
                Some(format!("{}: {}", want.name, missing.join(", "))),
                Some(json!(missing)),
                None,
                true,
            );
        }
    }
}

fn alarm_checks(r: &mut Report, baseline: &AccountSnapshot) {
    let account = r.account.account.clone();
    for want_group in &baseline.log_groups {
        // Compared only where both sides were read.
        let Some(want) = &want_group.alarms else {
            continue;
        };
        let Some(have) = r
            .account
            .log_groups
            .iter()
            .find(|g| g.arn == want_group.arn)
            .and_then(|g| g.alarms.clone())
        else {
            continue;
        };
        let region = want_group.region.as_str();
        for w in want {
            let arn = w.arn(region, account.as_str());
            let Some(h) = have.iter().find(|h| h.name == w.name) else {
                r.add(
                    ALARM_DELETED,
                    region,
                    &arn,
                    Some(format!("{} (on {}/{})", w.name, w.namespace, w.metric)),
                    Some(json!("exists")),
                    Some(json!("missing")),
                    true,
                );
                continue;
            };
            if w.actions_enabled && !h.actions_enabled {
                r.add(
                    ALARM_MUTED,
                    region,
                    &arn,
                    Some(w.name.clone()),
                    Some(json!({"actions_enabled": true})),
                    Some(json!({"actions_enabled": false})),
                    true,
                );
            }
            if !w.same_definition(h) {
                r.add(
                    ALARM_CHANGED,
                    region,
                    &arn,
                    Some(w.name.clone()),
                    serde_json::to_value(w).ok(),
                    serde_json::to_value(h).ok(),
                    true,
                );
            }
        }
    }
}

fn topic_checks(r: &mut Report, baseline: &AccountSnapshot) {
    for want in &baseline.topics {
        let Some(have) = r.account.topics.iter().find(|t| t.arn == want.arn) else {
            continue;
        };
        if want.exists && !have.exists {
            r.add(
                TOPIC_DELETED,
                &want.region,
                &want.arn,
                Some(want.name().to_owned()),
                Some(json!("exists")),
                Some(json!("missing")),
                true,
            );
            continue;
        }
        if !have.exists {
            continue;
        }
        if want.policy.is_some() && !same_json(&want.policy, &have.policy) {
            r.add(
                TOPIC_POLICY_CHANGED,
                &want.region,
                &want.arn,
                Some(want.name().to_owned()),
                want.policy.as_deref().map(parse_or_text),
                have.policy.as_deref().map(parse_or_text),
                true,
            );
        }
        let missing: Vec<String> = want
            .subscriptions
            .iter()
            .filter(|s| !have.subscriptions.contains(s))
            .map(|s| format!("{}:{}", s.protocol, s.endpoint))
            .collect();
        if !missing.is_empty() {
            r.add(
                TOPIC_SUBSCRIPTION_REMOVED,
                &want.region,
                &want.arn,
                Some(format!("{}: {}", want.name(), missing.join(", "))),
                Some(json!(missing)),
                None,
                true,
            );
        }
    }
}

fn service_checks(r: &mut Report, baseline: &AccountSnapshot, read: &BTreeSet<&str>) {
    let empty = Default::default();
    let account = r.account.account.clone();
    for (region, want) in &baseline.services {
        if !read.contains(region.as_str()) {
            continue;
        }
        let have = r.account.services.get(region).unwrap_or(&empty);
        let unread = |service: &str| have.unread.iter().any(|u| u == service);
        if let Some(w) = want.guardduty.as_ref().filter(|_| !unread("guardduty")) {
            let arn = format!("arn:aws:guardduty:{region}:{account}:detector/{}", w.id);
            match &have.guardduty {
                None => r.add(
                    GUARDDUTY_DELETED,
                    region,
                    &arn,
                    None,
                    Some(json!(w.status)),
                    Some(json!("missing")),
                    true,
                ),
                Some(h) => {
                    if w.status == "ENABLED" && h.status != "ENABLED" {
                        r.add(
                            GUARDDUTY_DISABLED,
                            region,
                            &arn,
                            None,
                            Some(json!(w.status)),
                            Some(json!(h.status)),
                            true,
                        );
                    }
                    if let (Some(wf), Some(hf)) = (&w.filters, &h.filters) {
                        for f in hf
                            .iter()
                            .filter(|f| f.action == "ARCHIVE" && !wf.contains(f))
                        {
                            r.add(
                                GUARDDUTY_FILTER_ADDED,
                                region,
                                &arn,
                                Some(f.name.clone()),
                                None,
                                serde_json::to_value(f).ok(),
                                true,
                            );
                        }
                    }
                    if let (Some(wi), Some(hi)) = (&w.ip_sets, &h.ip_sets) {
                        let added = hi.iter().filter(|i| {
                            i.status == "ACTIVE"
                                && !wi
                                    .iter()
                                    .any(|b| b.status == "ACTIVE" && b.location == i.location)
                        });
                        for ip_set in added {
                            r.add(
                                GUARDDUTY_TRUSTED_IPS_ADDED,
                                region,
                                &arn,
                                Some(format!("{} ({})", ip_set.name, ip_set.location)),
                                None,
                                serde_json::to_value(ip_set).ok(),
                                true,
                            );
                        }
                    }
                }
            }
        }
        if let Some(w) = want.config_recorder.as_ref().filter(|_| !unread("config")) {
            let arn = format!(
                "arn:aws:config:{region}:{account}:configuration-recorder/{}",
                w.name
            );
            match &have.config_recorder {
                None => r.add(
                    CONFIG_RECORDER_DELETED,
                    region,
                    &arn,
                    Some(w.name.clone()),
                    Some(json!("exists")),
                    Some(json!("missing")),
                    true,
                ),
                Some(h) => {
                    if w.recording && !h.recording {
                        r.add(
                            CONFIG_RECORDER_STOPPED,
                            region,
                            &arn,
                            Some(w.name.clone()),
                            Some(json!(true)),
                            Some(json!(false)),
                            true,
                        );
                    }
                    if w.delivery_channel.is_some() && h.delivery_channel.is_none() {
                        r.add(
                            CONFIG_CHANNEL_DELETED,
                            region,
                            &arn,
                            w.delivery_channel.clone(),
                            Some(json!(w.delivery_channel)),
                            None,
                            true,
                        );
                    } else if let (Some(wd), true) = (&w.delivery, h.delivery_channel.is_some())
                        && h.delivery.as_ref() != Some(wd)
                    {
                        r.add(
                            CONFIG_CHANNEL_REDIRECTED,
                            region,
                            &arn,
                            Some(format!(
                                "{} delivers to s3://{}",
                                w.name,
                                h.delivery
                                    .as_ref()
                                    .map_or("(nothing)", |d| d.bucket.as_str())
                            )),
                            serde_json::to_value(wd).ok(),
                            serde_json::to_value(&h.delivery).ok(),
                            true,
                        );
                    }
                    let lost = h.narrower_than(w);
                    if !lost.is_empty() {
                        r.add(
                            CONFIG_RECORDER_NARROWED,
                            region,
                            &arn,
                            Some(format!("{} no longer records {}", w.name, lost.join(", "))),
                            Some(json!({"all_supported": w.all_supported, "include_global_resource_types": w.include_global_resource_types, "resource_types": w.resource_types})),
                            Some(json!({"all_supported": h.all_supported, "include_global_resource_types": h.include_global_resource_types, "resource_types": h.resource_types})),
                            true,
                        );
                    }
                }
            }
        }
        for flow in want.flow_logs.iter().filter(|_| !unread("flow-logs")) {
            if !have
                .flow_logs
                .iter()
                .any(|f| f.resource_id == flow.resource_id && f.destination == flow.destination)
            {
                let arn = format!("arn:aws:ec2:{region}:{account}:vpc-flow-log/{}", flow.id);
                r.add(
                    FLOW_LOGS_DELETED,
                    region,
                    &arn,
                    Some(format!(
                        "{} ({})",
                        flow.resource_id,
                        flow.destination.as_deref().unwrap_or("?")
                    )),
                    serde_json::to_value(flow).ok(),
                    None,
                    true,
                );
            }
        }
    }
}

fn norm_prefix(p: &Option<String>) -> &str {
    p.as_deref().unwrap_or("").trim_matches('/')
}

fn sorted(v: &[String]) -> Vec<&String> {
    let mut s: Vec<&String> = v.iter().collect();
    s.sort();
    s
}

fn parse_or_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// JSON documents compare by content (key order and white space do not matter).
fn same_json(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => parse_or_text(a) == parse_or_text(b),
        _ => false,
    }
}

/// Per-region coverage for the matrix: which logging trails record the region.
pub fn coverage_matrix(observed: &AccountSnapshot) -> BTreeMap<String, bool> {
    let uncovered: BTreeSet<String> = uncovered_regions(observed).into_iter().collect();
    observed
        .regions
        .iter()
        .map(|r| (r.clone(), !uncovered.contains(r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{account, bucket, trail};
    use crate::snapshot::{Delivery, EventSelectors};

    fn ids(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.rule_id.as_str()).collect()
    }

    #[test]
    fn an_organization_trail_seen_from_a_member_is_reported_as_such_and_not_restorable_here() {
        let baseline = account(vec![trail(true)]);
        let mut stopped = trail(true);
        stopped.logging = false;
        let findings = audit_account(&baseline, &account(vec![stopped]), &Settings::default());
        assert_eq!(ids(&findings), ["trail-logging-stopped"]);
        assert!(!findings[0].remediable);
        assert!(
            findings[0]
                .title
                .contains("organization trail owned by account 999999999999"),
            "{}",
            findings[0].title
        );
    }

    #[test]
    fn unread_status_is_not_a_stopped_trail_nor_an_uncovered_region() {
        let baseline = account(vec![trail(false)]);
        let mut unknown = trail(false);
        unknown.logging = false;
        unknown.unread = vec!["status".into()];
        assert_eq!(
            audit_account(&baseline, &account(vec![unknown]), &Settings::default()),
            vec![]
        );
    }

    #[test]
    fn a_home_region_that_was_not_read_is_not_a_deleted_trail() {
        // us-east-1 could not be read; eu-west-1 shows the trail's shadow, whose status (read
        // in the home region) is unknown.
        let baseline = account(vec![trail(false)]);
        let mut shadow = trail(false);
        shadow.unread = vec!["status".into()];
        let mut observed = account(vec![shadow]);
        observed.regions = vec!["eu-west-1".into()];
        assert_eq!(
            audit_account(&baseline, &observed, &Settings::default()),
            vec![]
        );
        // With no shadow either, the trail may be gone: the read region is reported unlogged,
        // but the trail is not declared deleted from a region that was not read.
        observed.trails.clear();
        let findings = audit_account(&baseline, &observed, &Settings::default());
        assert_eq!(ids(&findings), ["trail-region-not-logged"]);
        assert_eq!(findings[0].region, "eu-west-1");
    }

    #[test]
    fn a_trail_seen_only_as_a_shadow_is_still_compared() {
        // --regions eu-west-1: the trail lives in us-east-1 and was seen from eu-west-1.
        let baseline = account(vec![trail(false)]);
        let mut stopped = trail(false);
        stopped.logging = false;
        let mut observed = account(vec![stopped]);
        observed.regions = vec!["eu-west-1".into()];
        let findings = audit_account(&baseline, &observed, &Settings::default());
        assert_eq!(ids(&findings), ["trail-logging-stopped"]);
    }

    #[test]
    fn failing_and_stale_delivery() {
        let baseline = account(vec![trail(false)]);
        let mut failing = trail(false);
        failing.delivery = Some(Delivery {
            latest_delivery_error: Some("AccessDenied".into()),
            ..Default::default()
        });
        let findings = audit_account(&baseline, &account(vec![failing]), &Settings::default());
        assert_eq!(ids(&findings), ["trail-delivery-failing"]);

        let mut stale = trail(false);
        stale.delivery = Some(Delivery {
            latest_delivery_age_seconds: Some(3 * 3600),
            ..Default::default()
        });
        let findings = audit_account(
            &baseline,
            &account(vec![stale.clone()]),
            &Settings::default(),
        );
        assert_eq!(ids(&findings), ["trail-delivery-stale"]);
        let patient = Settings {
            max_delivery_age_minutes: 240,
        };
        assert_eq!(
            audit_account(&baseline, &account(vec![stale]), &patient),
            vec![]
        );
    }

    #[test]
    fn a_narrowed_regional_trail_is_one_finding_not_two() {
        let mut regional = trail(false);
        regional.multi_region = false;
        regional.home_region = "eu-west-1".into();
        regional.arn = "arn:aws:cloudtrail:eu-west-1:111111111111:trail/eu".into();
        let baseline = account(vec![regional.clone()]);
        let mut narrowed = regional;
        narrowed.event_selectors = Some(EventSelectors {
            basic: vec![crate::snapshot::BasicSelector {
                read_write_type: "All".into(),
                include_management_events: true,
                exclude_management_event_sources: vec!["kms.amazonaws.com".into()],
                data_resources: vec![],
            }],
            advanced: vec![],
        });
        let findings = audit_account(&baseline, &account(vec![narrowed]), &Settings::default());
        // The selector change explains the region: one finding, not two.
        assert_eq!(ids(&findings), ["trail-management-events-excluded"]);
        assert!(findings[0].title.contains("kms.amazonaws.com"));
    }

    #[test]
    fn a_bucket_that_changed_hands_is_reported_before_its_copied_policy_is_believed() {
        let mut baseline = account(vec![]);
        baseline.buckets.push(bucket());
        let mut observed = account(vec![]);
        observed.buckets.push(crate::snapshot::BucketSnapshot {
            owner: None,
            ..bucket()
        });
        let findings = audit_account(&baseline, &observed, &Settings::default());
        assert_eq!(ids(&findings), ["bucket-owner-changed"]);
        assert!(!findings[0].remediable);
        // Same owner: nothing.
        let mut same = account(vec![]);
        same.buckets.push(bucket());
        assert!(audit_account(&baseline, &same, &Settings::default()).is_empty());
    }

    #[test]
    fn suppression_filters_trusted_ips_and_object_lock() {
        use crate::snapshot::{Detector, DetectorFilter, IpSet, ObjectLock, RegionServices};
        let detector = |filters: Vec<DetectorFilter>, ips: Vec<IpSet>| RegionServices {
            guardduty: Some(Detector {
                id: "d".into(),
                status: "ENABLED".into(),
                filters: Some(filters),
                ip_sets: Some(ips),
            }),
            ..Default::default()
        };
        let mut baseline = account(vec![]);
        baseline.services.insert(
            "us-east-1".into(),
            detector(
                vec![DetectorFilter {
                    name: "noise".into(),
                    action: "ARCHIVE".into(),
                }],
                vec![],
            ),
        );
        let mut observed = baseline.clone();
        observed.services.insert(
            "us-east-1".into(),
            detector(
                vec![
                    DetectorFilter {
                        name: "noise".into(),
                        action: "ARCHIVE".into(),
                    },
                    DetectorFilter {
                        name: "quiet".into(),
                        action: "ARCHIVE".into(),
                    },
                    DetectorFilter {
                        name: "look".into(),
                        action: "NOOP".into(),
                    },
                ],
                vec![IpSet {
                    id: "i".into(),
                    name: "office".into(),
                    location: "s3://attacker/ips.txt".into(),
                    status: "ACTIVE".into(),
                }],
            ),
        );
        let findings = audit_account(&baseline, &observed, &Settings::default());
        assert_eq!(
            ids(&findings),
            [
                "detection-guardduty-suppression-filter-added",
                "detection-guardduty-trusted-ip-set-added"
            ]
        );
        assert!(findings[0].title.contains("quiet"));

        let with_lock = |lock: Option<ObjectLock>| crate::snapshot::BucketSnapshot {
            object_lock: lock,
            ..bucket()
        };
        let mut baseline = account(vec![]);
        baseline.buckets.push(with_lock(Some(ObjectLock {
            mode: Some("COMPLIANCE".into()),
            days: Some(365),
        })));
        let mut observed = account(vec![]);
        observed.buckets.push(with_lock(Some(ObjectLock {
            mode: Some("GOVERNANCE".into()),
            days: Some(1),
        })));
        assert_eq!(
            ids(&audit_account(&baseline, &observed, &Settings::default())),
            ["bucket-object-lock-weakened"]
        );
    }

    #[test]
    fn every_check_has_a_unique_id_and_a_catalog_reference() {
        let mut seen = BTreeSet::new();
        for c in ALL {
            assert!(seen.insert(c.id), "duplicate {}", c.id);
            assert!(c.technique.len() >= 2, "{}", c.id);
        }
    }
}
