//! The restore plan: from the audit's findings, the concrete API calls that bring an account
//! back to its baseline, in a safe order. Pure: trailwarden-aws executes it.
//!
//! A plan only ever moves state toward the baseline; it never deletes anything the baseline
//! has, and it leaves out what this account cannot fix (an organization trail seen from a
//! member) as an escalation naming the account that must act.

use crate::snapshot::{
    AccountSnapshot, BucketSnapshot, ConfigRecorder, EventSelectors, FlowLog, KeySnapshot,
    LogGroupSnapshot, MetricAlarm, TopicSnapshot, TrailSnapshot,
};
use serde::Serialize;
use std::collections::BTreeSet;
use trailwarden_model::finding::Finding;

/// One restoring step. Every variant carries what the call needs from the baseline alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Action {
    /// Re-create the bucket with its policy, versioning, public access block and lifecycle.
    CreateBucket {
        bucket: BucketSnapshot,
    },
    PutBucketPolicy {
        bucket: String,
        region: String,
        policy: String,
    },
    /// Put back exactly the baseline's lifecycle rules (dropping injected ones).
    RestoreLifecycle {
        bucket: String,
        region: String,
        rules: Vec<crate::snapshot::LifecycleRule>,
    },
    EnableVersioning {
        bucket: String,
        region: String,
    },
    RestoreEncryption {
        bucket: String,
        region: String,
        encryption: crate::snapshot::BucketEncryption,
    },
    RestoreAccessLogging {
        bucket: String,
        region: String,
        logging: crate::snapshot::AccessLogging,
    },
    RestorePublicAccessBlock {
        bucket: String,
        region: String,
        block: crate::snapshot::PublicAccessBlock,
    },
    /// Put back exactly the baseline's ACL (dropping injected grants).
    RestoreAcl {
        bucket: String,
        region: String,
        acl: crate::snapshot::BucketAcl,
    },
    /// Put back exactly the baseline's notification targets (dropping injected ones).
    RestoreNotifications {
        bucket: String,
        region: String,
        targets: Vec<crate::snapshot::NotificationTarget>,
    },
    /// Cancel a scheduled deletion; the key then comes back disabled.
    CancelKeyDeletion {
        key: KeySnapshot,
    },
    EnableKey {
        key: KeySnapshot,
    },
    PutKeyPolicy {
        key: KeySnapshot,
    },
    /// Re-create the log group with its retention and filters.
    CreateLogGroup {
        group: LogGroupSnapshot,
    },
    PutRetention {
        group: LogGroupSnapshot,
    },
    RestoreLogFilters {
        group: LogGroupSnapshot,
    },
    /// Re-create the topic with its policy and subscriptions.
    CreateTopic {
        topic: TopicSnapshot,
    },
    PutTopicPolicy {
        topic: TopicSnapshot,
    },
    /// Subscribe every baseline subscriber again (Subscribe returns an existing one as is).
    Subscribe {
        topic: TopicSnapshot,
    },
    /// Put the alarm back as the baseline has it (re-creates, re-points, un-mutes).
    PutMetricAlarm {
        region: String,
        alarm: MetricAlarm,
    },
    /// Re-create a deleted trail with every baseline setting, selectors, Insights and tags.
    CreateTrail {
        trail: TrailSnapshot,
    },
    /// Put every setting of the trail back (UpdateTrail in its home region).
    UpdateTrail {
        trail: TrailSnapshot,
    },
    PutEventSelectors {
        trail: TrailSnapshot,
        selectors: EventSelectors,
    },
    PutInsightSelectors {
        trail: TrailSnapshot,
        insights: Vec<String>,
    },
    StartLogging {
        trail: TrailSnapshot,
    },
    EnableDetector {
        region: String,
        detector_id: String,
    },
    CreateDetector {
        region: String,
    },
    DeleteDetectorFilter {
        region: String,
        detector_id: String,
        name: String,
    },
    DeactivateIpSet {
        region: String,
        detector_id: String,
        ip_set_id: String,
    },
    /// Put the recorder back with the baseline's role and recording group.
    PutConfigRecorder {
        region: String,
        recorder: ConfigRecorder,
    },
    /// Point the delivery channel back at the baseline's bucket, prefix and topic.
    PutDeliveryChannel {
        region: String,
        recorder: ConfigRecorder,
    },
    StartConfigRecorder {
        region: String,
        name: String,
    },
    CreateFlowLogs {
        region: String,
        flow: FlowLog,
    },
}

impl Action {
    /// The IAM actions this step may call, for least-privilege checks and error messages.
    pub fn iam_actions(&self) -> &'static [&'static str] {
        match self {
            Self::CreateBucket { .. } => &[
                "s3:CreateBucket",
                "s3:PutBucketPolicy",
                "s3:PutBucketVersioning",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutLifecycleConfiguration",
                "s3:PutEncryptionConfiguration",
                "s3:PutBucketLogging",
                "s3:PutBucketAcl",
            ],
            Self::PutBucketPolicy { .. } => &["s3:PutBucketPolicy"],
            Self::RestoreLifecycle { .. } => &["s3:PutLifecycleConfiguration"],
            Self::EnableVersioning { .. } => &["s3:PutBucketVersioning"],
            Self::RestoreEncryption { .. } => &["s3:PutEncryptionConfiguration"],
            Self::RestoreAccessLogging { .. } => &["s3:PutBucketLogging"],
            Self::RestorePublicAccessBlock { .. } => &["s3:PutBucketPublicAccessBlock"],
            Self::RestoreAcl { .. } => &["s3:PutBucketAcl"],
            Self::RestoreNotifications { .. } => &["s3:PutBucketNotification"],
            Self::CancelKeyDeletion { .. } => &["kms:CancelKeyDeletion"],
            Self::EnableKey { .. } => &["kms:EnableKey"],
            Self::PutKeyPolicy { .. } => &["kms:PutKeyPolicy"],
            Self::CreateLogGroup { .. } => &[
                "logs:CreateLogGroup",
                "logs:PutRetentionPolicy",
                "logs:PutMetricFilter",
                "logs:PutSubscriptionFilter",
            ],
            Self::PutRetention { .. } => &["logs:PutRetentionPolicy"],
            Self::RestoreLogFilters { .. } => {
                &["logs:PutMetricFilter", "logs:PutSubscriptionFilter"]
            }
            Self::CreateTopic { .. } => {
                &["sns:CreateTopic", "sns:SetTopicAttributes", "sns:Subscribe"]
            }
            Self::PutTopicPolicy { .. } => &["sns:SetTopicAttributes"],
            Self::Subscribe { .. } => &["sns:Subscribe"],
            Self::PutMetricAlarm { .. } => &["cloudwatch:PutMetricAlarm"],
            Self::CreateTrail { .. } => &[
                "cloudtrail:CreateTrail",
                "cloudtrail:PutEventSelectors",
                "cloudtrail:PutInsightSelectors",
                "cloudtrail:StartLogging",
                "iam:PassRole",
            ],
            Self::UpdateTrail { .. } => &["cloudtrail:UpdateTrail", "iam:PassRole"],
            Self::PutEventSelectors { .. } => &["cloudtrail:PutEventSelectors"],
            Self::PutInsightSelectors { .. } => &["cloudtrail:PutInsightSelectors"],
            Self::StartLogging { .. } => &["cloudtrail:StartLogging"],
            Self::EnableDetector { .. } => &["guardduty:UpdateDetector"],
            Self::CreateDetector { .. } => &["guardduty:CreateDetector"],
            Self::DeleteDetectorFilter { .. } => &["guardduty:DeleteFilter"],
            Self::DeactivateIpSet { .. } => &["guardduty:UpdateIPSet"],
            Self::PutConfigRecorder { .. } => &["config:PutConfigurationRecorder", "iam:PassRole"],
            Self::PutDeliveryChannel { .. } => &["config:PutDeliveryChannel"],
            Self::StartConfigRecorder { .. } => &["config:StartConfigurationRecorder"],
            Self::CreateFlowLogs { .. } => &["ec2:CreateFlowLogs", "iam:PassRole"],
        }
    }

    /// `service:Operation` of the main call, for tables and the journal.
    pub fn name(&self) -> &'static str {
        self.iam_actions()[0]
    }

    /// Dependencies first: the destination (bucket, key, log group) before the trail, the
    /// trail before its selectors, everything before logging starts.
    fn stage(&self) -> u8 {
        match self {
            Self::CreateBucket { .. } => 0,
            Self::PutBucketPolicy { .. }
            | Self::RestoreLifecycle { .. }
            | Self::EnableVersioning { .. }
            | Self::RestoreEncryption { .. }
            | Self::RestoreAccessLogging { .. }
            | Self::RestorePublicAccessBlock { .. }
            | Self::RestoreAcl { .. }
            | Self::RestoreNotifications { .. } => 1,
            Self::CancelKeyDeletion { .. } => 2,
            Self::EnableKey { .. } | Self::PutKeyPolicy { .. } => 3,
            Self::CreateLogGroup { .. }
            | Self::PutRetention { .. }
            | Self::RestoreLogFilters { .. }
            | Self::CreateTopic { .. }
            | Self::PutTopicPolicy { .. }
            | Self::Subscribe { .. } => 4,
            Self::CreateTrail { .. } | Self::UpdateTrail { .. } => 5,
            Self::PutEventSelectors { .. } | Self::PutInsightSelectors { .. } => 6,
            Self::StartLogging { .. } => 7,
            _ => 8,
        }
    }
}

/// A step, where it runs, and the findings it answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub region: String,
    pub resource: String,
    pub action: Action,
    /// Rule ids of the findings this step answers.
    pub answers: Vec<String>,
}

/// A finding this account cannot restore, and who can.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    pub finding: Finding,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub escalations: Vec<Escalation>,
}

/// Plans the restore of one account from its baseline, its observed state and the audit's
/// findings for it. Findings that state cannot undo (or another account must undo) become
/// escalations.
pub fn plan(baseline: &AccountSnapshot, observed: &AccountSnapshot, findings: &[Finding]) -> Plan {
    let mut p = Plan::default();
    let mut push = |region: &str, resource: &str, action: Action, answers: Vec<&str>| {
        let step = Step {
            region: region.to_owned(),
            resource: resource.to_owned(),
            action,
            answers: answers.into_iter().map(str::to_owned).collect(),
        };
        if !p.steps.contains(&step) {
            p.steps.push(step);
        }
    };
    let rules_for = |resource: &str| -> Vec<&Finding> {
        findings
            .iter()
            .filter(|f| f.resource.as_deref() == Some(resource))
            .collect()
    };
    let has = |fs: &[&Finding], id: &str| fs.iter().any(|f| f.rule_id == id);
    let ids = |fs: &[&Finding], wanted: &[&str]| -> Vec<&'static str> {
        wanted
            .iter()
            .filter(|w| fs.iter().any(|f| f.rule_id == **w))
            .map(|w| intern(w))
            .collect()
    };

    // Buckets.
    for b in &baseline.buckets {
        let arn = format!("arn:aws:s3:::{}", b.name);
        let fs = rules_for(&arn);
        if fs.is_empty() {
            continue;
        }
        let region = b.region.clone().unwrap_or_else(|| "us-east-1".into());
        if has(&fs, "bucket-deleted") {
            push(
                &region,
                &arn,
                Action::CreateBucket { bucket: b.clone() },
                vec!["bucket-deleted"],
            );
            continue;
        }
        if (has(&fs, "bucket-policy-changed") || has(&fs, "bucket-policy-blocks-cloudtrail"))
            && let Some(policy) = &b.policy
        {
            {
                push(
                    &region,
                    &arn,
                    Action::PutBucketPolicy {
                        bucket: b.name.clone(),
                        region: region.clone(),
                        policy: policy.clone(),
                    },
                    ids(
                        &fs,
                        &["bucket-policy-changed", "bucket-policy-blocks-cloudtrail"],
                    ),
                );
            }
        }
        if has(&fs, "bucket-lifecycle-expires-logs") {
            push(
                &region,
                &arn,
                Action::RestoreLifecycle {
                    bucket: b.name.clone(),
                    region: region.clone(),
                    rules: b.lifecycle_rules.clone(),
                },
                vec!["bucket-lifecycle-expires-logs"],
            );
        }
        if let (true, Some(encryption)) = (has(&fs, "bucket-encryption-changed"), &b.encryption) {
            push(
                &region,
                &arn,
                Action::RestoreEncryption {
                    bucket: b.name.clone(),
                    region: region.clone(),
                    encryption: encryption.clone(),
                },
                vec!["bucket-encryption-changed"],
            );
        }
        if let (true, Some(logging)) =
            (has(&fs, "bucket-access-logging-changed"), &b.access_logging)
        {
            push(
                &region,
                &arn,
                Action::RestoreAccessLogging {
                    bucket: b.name.clone(),
                    region: region.clone(),
                    logging: logging.clone(),
                },
                vec!["bucket-access-logging-changed"],
            );
        }
        if has(&fs, "bucket-versioning-suspended") {
            push(
                &region,
                &arn,
                Action::EnableVersioning {
                    bucket: b.name.clone(),
                    region: region.clone(),
                },
                vec!["bucket-versioning-suspended"],
            );
        }
        if let (true, Some(block)) = (
            has(&fs, "bucket-public-access-block-weakened"),
            b.public_access_block,
        ) {
            push(
                &region,
                &arn,
                Action::RestorePublicAccessBlock {
                    bucket: b.name.clone(),
                    region: region.clone(),
                    block,
                },
                vec!["bucket-public-access-block-weakened"],
            );
        }
        if let (true, Some(acl)) = (has(&fs, "bucket-acl-changed"), &b.acl) {
            push(
                &region,
                &arn,
                Action::RestoreAcl {
                    bucket: b.name.clone(),
                    region: region.clone(),
                    acl: acl.clone(),
                },
                vec!["bucket-acl-changed"],
            );
        }
        if has(&fs, "bucket-notification-added") {
            push(
                &region,
                &arn,
                Action::RestoreNotifications {
                    bucket: b.name.clone(),
                    region: region.clone(),
                    targets: b.notifications.clone(),
                },
                vec!["bucket-notification-added"],
            );
        }
    }

    // Keys.
    for k in &baseline.keys {
        let fs = rules_for(&k.arn);
        if has(&fs, "kms-key-pending-deletion") {
            push(
                &k.region,
                &k.arn,
                Action::CancelKeyDeletion { key: k.clone() },
                vec!["kms-key-pending-deletion"],
            );
        }
        if (has(&fs, "kms-key-pending-deletion") && k.state.as_deref() == Some("Enabled"))
            || has(&fs, "kms-key-disabled")
        {
            push(
                &k.region,
                &k.arn,
                Action::EnableKey { key: k.clone() },
                ids(&fs, &["kms-key-disabled", "kms-key-pending-deletion"]),
            );
        }
        if has(&fs, "kms-key-policy-changed") && k.policy.is_some() {
            push(
                &k.region,
                &k.arn,
                Action::PutKeyPolicy { key: k.clone() },
                vec!["kms-key-policy-changed"],
            );
        }
    }

    // Log groups.
    for g in &baseline.log_groups {
        let fs = rules_for(&g.arn);
        if has(&fs, "cloudwatch-log-group-deleted") {
            push(
                &g.region,
                &g.arn,
                Action::CreateLogGroup { group: g.clone() },
                vec!["cloudwatch-log-group-deleted"],
            );
            continue;
        }
        if has(&fs, "cloudwatch-log-group-retention-shortened") {
            push(
                &g.region,
                &g.arn,
                Action::PutRetention { group: g.clone() },
                vec!["cloudwatch-log-group-retention-shortened"],
            );
        }
        if has(&fs, "cloudwatch-log-group-filters-changed") {
            push(
                &g.region,
                &g.arn,
                Action::RestoreLogFilters { group: g.clone() },
                vec!["cloudwatch-log-group-filters-changed"],
            );
        }
    }

    // The alarm path: topics, then the alarms that act on them.
    for t in &baseline.topics {
        let fs = rules_for(&t.arn);
        if has(&fs, "cloudwatch-sns-topic-deleted") {
            push(
                &t.region,
                &t.arn,
                Action::CreateTopic { topic: t.clone() },
                vec!["cloudwatch-sns-topic-deleted"],
            );
            continue;
        }
        if has(&fs, "cloudwatch-sns-topic-policy-changed") && t.policy.is_some() {
            push(
                &t.region,
                &t.arn,
                Action::PutTopicPolicy { topic: t.clone() },
                vec!["cloudwatch-sns-topic-policy-changed"],
            );
        }
        if has(&fs, "cloudwatch-sns-subscription-removed") {
            push(
                &t.region,
                &t.arn,
                Action::Subscribe { topic: t.clone() },
                vec!["cloudwatch-sns-subscription-removed"],
            );
        }
    }
    for g in &baseline.log_groups {
        for a in g.alarms.iter().flatten() {
            let arn = a.arn(&g.region, baseline.account.as_str());
            let fs = rules_for(&arn);
            let answers = ids(
                &fs,
                &[
                    "cloudwatch-alarm-deleted",
                    "cloudwatch-alarm-actions-disabled",
                    "cloudwatch-alarm-changed",
                ],
            );
            if !answers.is_empty() {
                push(
                    &g.region,
                    &arn,
                    Action::PutMetricAlarm {
                        region: g.region.clone(),
                        alarm: a.clone(),
                    },
                    answers,
                );
            }
        }
    }

    // Trails.
    const SETTINGS: &[&str] = &[
        "trail-single-region",
        "trail-global-events-off",
        "trail-validation-off",
        "trail-redirected",
        "trail-kms-key-changed",
        "trail-cloudwatch-logs-changed",
        "trail-sns-changed",
    ];
    for t in &baseline.trails {
        let fs = rules_for(&t.arn);
        if fs.is_empty() {
            continue;
        }
        if t.foreign {
            let owner = t.arn.split(':').nth(4).unwrap_or("?");
            for f in fs {
                p.escalations.push(Escalation {
                    finding: f.clone(),
                    reason: format!("organization trail owned by account {owner}: only the management (or delegated administrator) account can restore it"),
                });
            }
            continue;
        }
        let r = &t.home_region;
        if has(&fs, "trail-deleted") {
            // CreateTrail brings back settings, selectors, Insights and tags, then starts it.
            push(
                r,
                &t.arn,
                Action::CreateTrail { trail: t.clone() },
                vec!["trail-deleted"],
            );
            continue;
        }
        let settings = ids(&fs, SETTINGS);
        if !settings.is_empty() {
            push(
                r,
                &t.arn,
                Action::UpdateTrail { trail: t.clone() },
                settings,
            );
        }
        if let (true, Some(selectors)) = (
            has(&fs, "trail-management-events-excluded")
                || has(&fs, "trail-event-selectors-changed"),
            &t.event_selectors,
        ) {
            push(
                r,
                &t.arn,
                Action::PutEventSelectors {
                    trail: t.clone(),
                    selectors: selectors.clone(),
                },
                ids(
                    &fs,
                    &[
                        "trail-management-events-excluded",
                        "trail-event-selectors-changed",
                    ],
                ),
            );
        }
        if let (true, Some(insights)) = (has(&fs, "trail-insights-changed"), &t.insight_selectors) {
            push(
                r,
                &t.arn,
                Action::PutInsightSelectors {
                    trail: t.clone(),
                    insights: insights.clone(),
                },
                vec!["trail-insights-changed"],
            );
        }
        if has(&fs, "trail-logging-stopped") {
            push(
                r,
                &t.arn,
                Action::StartLogging { trail: t.clone() },
                vec!["trail-logging-stopped"],
            );
        }
    }

    // Detection services.
    for (region, want) in &baseline.services {
        let have = observed.services.get(region);
        if let Some(d) = &want.guardduty {
            let arn = format!(
                "arn:aws:guardduty:{region}:{}:detector/{}",
                baseline.account, d.id
            );
            let fs = rules_for(&arn);
            if has(&fs, "detection-guardduty-detector-deleted") {
                push(
                    region,
                    &arn,
                    Action::CreateDetector {
                        region: region.clone(),
                    },
                    vec!["detection-guardduty-detector-deleted"],
                );
            }
            if has(&fs, "detection-guardduty-detector-disabled") {
                push(
                    region,
                    &arn,
                    Action::EnableDetector {
                        region: region.clone(),
                        detector_id: d.id.clone(),
                    },
                    vec!["detection-guardduty-detector-disabled"],
                );
            }
            if let Some(h) = have.and_then(|h| h.guardduty.as_ref()) {
                for f in fs
                    .iter()
                    .filter(|f| f.rule_id == "detection-guardduty-suppression-filter-added")
                {
                    if let Some(name) = f.actual.as_ref().and_then(|a| a["name"].as_str()) {
                        push(
                            region,
                            &arn,
                            Action::DeleteDetectorFilter {
                                region: region.clone(),
                                detector_id: h.id.clone(),
                                name: name.to_owned(),
                            },
                            vec!["detection-guardduty-suppression-filter-added"],
                        );
                    }
                }
                for f in fs
                    .iter()
                    .filter(|f| f.rule_id == "detection-guardduty-trusted-ip-set-added")
                {
                    if let Some(id) = f.actual.as_ref().and_then(|a| a["id"].as_str()) {
                        push(
                            region,
                            &arn,
                            Action::DeactivateIpSet {
                                region: region.clone(),
                                detector_id: h.id.clone(),
                                ip_set_id: id.to_owned(),
                            },
                            vec!["detection-guardduty-trusted-ip-set-added"],
                        );
                    }
                }
            }
        }
        if let Some(c) = &want.config_recorder {
            let arn = format!(
                "arn:aws:config:{region}:{}:configuration-recorder/{}",
                baseline.account, c.name
            );
            let fs = rules_for(&arn);
            let deleted = has(&fs, "detection-config-recorder-deleted");
            let recorder = ids(
                &fs,
                &[
                    "detection-config-recorder-deleted",
                    "detection-config-recorder-narrowed",
                ],
            );
            // Re-creating or widening the recorder passes its role: without it, a human acts.
            let role_known = c.role_arn.is_some();
            if !recorder.is_empty() && role_known {
                push(
                    region,
                    &arn,
                    Action::PutConfigRecorder {
                        region: region.clone(),
                        recorder: c.clone(),
                    },
                    recorder,
                );
            } else if !recorder.is_empty() {
                for f in fs.iter().filter(|f| recorder.contains(&f.rule_id.as_str())) {
                    p.escalations.push(Escalation {
                        finding: (*f).clone(),
                        reason: CONFIG_ROLE_UNKNOWN.to_owned(),
                    });
                }
            }
            // A re-created recorder needs its channel (AWS starts none without one).
            let mut channel = ids(
                &fs,
                &[
                    "detection-config-delivery-channel-deleted",
                    "detection-config-delivery-channel-redirected",
                ],
            );
            if deleted && role_known {
                channel.push("detection-config-recorder-deleted");
            }
            if !channel.is_empty() && c.delivery.is_some() {
                push(
                    region,
                    &arn,
                    Action::PutDeliveryChannel {
                        region: region.clone(),
                        recorder: c.clone(),
                    },
                    channel,
                );
            }
            let start = if has(&fs, "detection-config-recorder-stopped") {
                vec!["detection-config-recorder-stopped"]
            } else if deleted && role_known && c.recording && c.delivery.is_some() {
                vec!["detection-config-recorder-deleted"]
            } else {
                vec![]
            };
            if !start.is_empty() {
                push(
                    region,
                    &arn,
                    Action::StartConfigRecorder {
                        region: region.clone(),
                        name: c.name.clone(),
                    },
                    start,
                );
            }
        }
        for flow in &want.flow_logs {
            let arn = format!(
                "arn:aws:ec2:{region}:{}:vpc-flow-log/{}",
                baseline.account, flow.id
            );
            if has(&rules_for(&arn), "sources-vpc-flow-logs-deleted") {
                push(
                    region,
                    &arn,
                    Action::CreateFlowLogs {
                        region: region.clone(),
                        flow: flow.clone(),
                    },
                    vec!["sources-vpc-flow-logs-deleted"],
                );
            }
        }
    }

    // What no step answers is escalated with the reason.
    let answered: BTreeSet<(String, String)> = p
        .steps
        .iter()
        .flat_map(|s| s.answers.iter().map(|a| (s.resource.clone(), a.clone())))
        .collect();
    for f in findings {
        let key = (f.resource.clone().unwrap_or_default(), f.rule_id.clone());
        let escalated = p.escalations.iter().any(|e| e.finding == *f);
        if !answered.contains(&key) && !escalated {
            p.escalations.push(Escalation {
                finding: f.clone(),
                reason: escalation_reason(&f.rule_id)
                    .unwrap_or(NO_RESTORE)
                    .to_owned(),
            });
        }
    }
    p.steps.sort_by_key(|s| s.action.stage());
    p
}

fn intern(id: &str) -> &'static str {
    crate::checks::ALL
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.id)
        .unwrap_or("unknown")
}

/// Why a Config recorder is not re-created or widened from a baseline without its role.
const CONFIG_ROLE_UNKNOWN: &str = "the baseline does not name the recorder's IAM role (captured before trailwarden kept it): re-capture the baseline, or restore the recorder with your Config setup";

/// The reason given for a finding that neither a restore nor a known escalation answers.
const NO_RESTORE: &str = "no automatic restore for this finding";

/// Why a check's findings are escalated rather than restored; `None` where a restore exists.
fn escalation_reason(rule: &str) -> Option<&'static str> {
    Some(match rule {
        "trail-unexpected" => {
            "a trail not in the baseline is reported, not deleted: it may be legitimate (Control Tower, a new team); delete it by hand if it is the attacker's"
        }
        "trail-delivery-failing" | "trail-delivery-stale" => {
            "delivery health follows from the bucket, key and policy: restore those, then it recovers"
        }
        "trail-region-not-logged" => "coverage follows from the trails: restore them",
        "kms-key-deleted" => {
            "a deleted key cannot be restored: create a new key and update the baseline"
        }
        "bucket-mfa-delete-off" => {
            "MFA delete can only be re-enabled by the root user with an MFA device"
        }
        "bucket-object-lock-weakened" => {
            "Object Lock retention changes need a review: a lower default cannot be raised for objects already written"
        }
        "bucket-replication-changed" => {
            "replication needs its IAM role and destination checked before it is restored: restore it by hand"
        }
        "trail-tags-changed" => "tags are informational: restore them by hand if they matter",
        "bucket-owner-changed" => {
            "another account owns a bucket of this name now: its contents are not your logs; point the trail at a bucket you own (re-capture the baseline) and investigate who created it"
        }
        "organization-account-unguarded" => {
            "nothing declares this account's known-good state: capture it into the baseline (`baseline capture`), or give the baseline defaults for new accounts"
        }
        "organization-account-left" => {
            "an account outside the organization loses the organization trail and delegated detectors: re-invite it from the management account (InviteAccountToOrganization), then re-apply the baseline; find who called LeaveOrganization or RemoveAccountFromOrganization"
        }
        "organization-account-not-active" => {
            "a suspended or closed account answers no call: reopen it (AWS Support) or take it out of the baseline"
        }
        "organization-default-region-not-logged"
        | "organization-default-guardduty-off"
        | "organization-default-config-off" => {
            "a new account has no known-good state to restore: turn the service on there (or let the organization's auto-enable do it), then capture the account into the baseline"
        }
        "organization-region-unguarded" => {
            "capture the region into the baseline, or disable it (account:DisableRegion) if nobody should work there"
        }
        _ => return None,
    })
}

/// How the findings of a state check are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Remedy {
    /// Restored by these calls (the first is the main one), then verified by reading back.
    Restores { calls: &'static [&'static str] },
    /// Reported to a human, with what they must do.
    Escalates { reason: &'static str },
}

/// How `check`'s findings are answered (`check` is a [`crate::checks::Check`] id).
pub fn remedy(check: &str) -> Remedy {
    if let Some(reason) = escalation_reason(check) {
        return Remedy::Escalates { reason };
    }
    let calls: &'static [&'static str] = match check {
        "trail-deleted" => &["cloudtrail:CreateTrail"],
        "trail-logging-stopped" => &["cloudtrail:StartLogging"],
        "trail-single-region"
        | "trail-global-events-off"
        | "trail-validation-off"
        | "trail-redirected"
        | "trail-kms-key-changed"
        | "trail-cloudwatch-logs-changed"
        | "trail-sns-changed" => &["cloudtrail:UpdateTrail"],
        "trail-management-events-excluded" | "trail-event-selectors-changed" => {
            &["cloudtrail:PutEventSelectors"]
        }
        "trail-insights-changed" => &["cloudtrail:PutInsightSelectors"],
        "bucket-deleted" => &["s3:CreateBucket"],
        "bucket-policy-blocks-cloudtrail" | "bucket-policy-changed" => &["s3:PutBucketPolicy"],
        "bucket-lifecycle-expires-logs" => &["s3:PutLifecycleConfiguration"],
        "bucket-versioning-suspended" => &["s3:PutBucketVersioning"],
        "bucket-encryption-changed" => &["s3:PutEncryptionConfiguration"],
        "bucket-access-logging-changed" => &["s3:PutBucketLogging"],
        "bucket-public-access-block-weakened" => &["s3:PutBucketPublicAccessBlock"],
        "bucket-notification-added" => &["s3:PutBucketNotification"],
        "bucket-acl-changed" => &["s3:PutBucketAcl"],
        "kms-key-disabled" => &["kms:EnableKey"],
        "kms-key-pending-deletion" => &["kms:CancelKeyDeletion", "kms:EnableKey"],
        "kms-key-policy-changed" => &["kms:PutKeyPolicy"],
        "cloudwatch-log-group-deleted" => &["logs:CreateLogGroup"],
        "cloudwatch-log-group-retention-shortened" => &["logs:PutRetentionPolicy"],
        "cloudwatch-log-group-filters-changed" => &["logs:PutMetricFilter"],
        "cloudwatch-alarm-deleted"
        | "cloudwatch-alarm-actions-disabled"
        | "cloudwatch-alarm-changed" => &["cloudwatch:PutMetricAlarm"],
        "cloudwatch-sns-topic-deleted" => &["sns:CreateTopic"],
        "cloudwatch-sns-topic-policy-changed" => &["sns:SetTopicAttributes"],
        "cloudwatch-sns-subscription-removed" => &["sns:Subscribe"],
        "detection-guardduty-detector-deleted" => &["guardduty:CreateDetector"],
        "detection-guardduty-detector-disabled" => &["guardduty:UpdateDetector"],
        "detection-guardduty-trusted-ip-set-added" => &["guardduty:UpdateIPSet"],
        "detection-guardduty-suppression-filter-added" => &["guardduty:DeleteFilter"],
        "detection-config-recorder-stopped" => &["config:StartConfigurationRecorder"],
        "detection-config-recorder-deleted" => &[
            "config:PutConfigurationRecorder",
            "config:PutDeliveryChannel",
            "config:StartConfigurationRecorder",
        ],
        "detection-config-recorder-narrowed" => &["config:PutConfigurationRecorder"],
        "detection-config-delivery-channel-deleted"
        | "detection-config-delivery-channel-redirected" => &["config:PutDeliveryChannel"],
        "sources-vpc-flow-logs-deleted" => &["ec2:CreateFlowLogs"],
        _ => &[],
    };
    if calls.is_empty() {
        Remedy::Escalates { reason: NO_RESTORE }
    } else {
        Remedy::Restores { calls }
    }
}

/// Every IAM action a restore may call: the remediation policy in docs/iam must allow these.
pub const ALL_IAM_ACTIONS: &[&str] = &[
    "s3:CreateBucket",
    "s3:PutBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketNotification",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketLogging",
    "s3:PutBucketAcl",
    "kms:CancelKeyDeletion",
    "kms:EnableKey",
    "kms:PutKeyPolicy",
    "logs:CreateLogGroup",
    "logs:PutRetentionPolicy",
    "logs:PutMetricFilter",
    "logs:PutSubscriptionFilter",
    "cloudwatch:PutMetricAlarm",
    "sns:CreateTopic",
    "sns:SetTopicAttributes",
    "sns:Subscribe",
    "cloudtrail:CreateTrail",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:PutInsightSelectors",
    "cloudtrail:StartLogging",
    "iam:PassRole",
    "guardduty:UpdateDetector",
    "guardduty:CreateDetector",
    "guardduty:DeleteFilter",
    "guardduty:UpdateIPSet",
    "config:StartConfigurationRecorder",
    "config:PutConfigurationRecorder",
    "config:PutDeliveryChannel",
    "ec2:CreateFlowLogs",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::audit_account;
    use crate::fixtures::{account, bucket, config_recorder, trail};
    use crate::snapshot::BucketSnapshot;

    #[test]
    fn every_check_is_restored_by_calls_the_remediation_policy_allows_or_escalated_with_a_reason() {
        for check in crate::checks::ALL {
            match remedy(check.id) {
                Remedy::Restores { calls } => {
                    for call in calls {
                        assert!(ALL_IAM_ACTIONS.contains(call), "{}: {call}", check.id);
                    }
                }
                Remedy::Escalates { reason } => {
                    assert_ne!(
                        reason, NO_RESTORE,
                        "{}: neither restored nor escalated with a reason",
                        check.id
                    );
                }
            }
        }
    }

    #[test]
    fn default_encryption_switched_to_another_key_is_put_back() {
        let mut baseline = account(vec![trail(false)]);
        baseline.buckets.push(bucket());
        let mut observed = baseline.clone();
        observed.buckets[0].encryption = Some(crate::snapshot::BucketEncryption {
            algorithm: "aws:kms".into(),
            kms_key: Some("arn:aws:kms:us-east-1:666666666666:key/attacker".into()),
            bucket_key: true,
        });
        let findings = audit_account(&baseline, &observed, &crate::Settings::default());
        let ids: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(ids, ["bucket-encryption-changed"]);
        let p = plan(&baseline, &observed, &findings);
        assert_eq!(p.steps.len(), 1, "{:?}", p.steps);
        assert_eq!(
            p.steps[0].action,
            Action::RestoreEncryption {
                bucket: "logs".into(),
                region: "us-east-1".into(),
                encryption: bucket().encryption.unwrap_or_else(|| unreachable!()),
            }
        );
        // A baseline captured before encryption was read compares nothing.
        baseline.buckets[0].encryption = None;
        let findings = audit_account(&baseline, &observed, &crate::Settings::default());
        assert!(findings.is_empty(), "{findings:?}");
    }

    #[test]
    fn server_access_logging_turned_off_is_turned_back_on_to_its_target() {
        let mut baseline = account(vec![trail(false)]);
        let logging = crate::snapshot::AccessLogging {
            target_bucket: "access-logs".into(),
            target_prefix: "logs/".into(),
        };
        baseline.buckets.push(BucketSnapshot {
            access_logging: Some(logging.clone()),
            ..bucket()
        });
        let mut observed = baseline.clone();
        observed.buckets[0].access_logging = None;
        let findings = audit_account(&baseline, &observed, &crate::Settings::default());
        let ids: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(ids, ["bucket-access-logging-changed"]);
        let p = plan(&baseline, &observed, &findings);
        let actions: Vec<&Action> = p.steps.iter().map(|s| &s.action).collect();
        assert_eq!(
            actions,
            [&Action::RestoreAccessLogging {
                bucket: "logs".into(),
                region: "us-east-1".into(),
                logging,
            }]
        );
        // Turning logging on where the baseline had none is not tampering.
        let findings = audit_account(&observed, &baseline, &crate::Settings::default());
        assert!(findings.is_empty(), "{findings:?}");
    }

    #[test]
    fn a_grant_added_to_the_log_bucket_acl_is_taken_away_by_putting_the_baseline_acl_back() {
        let owner = crate::snapshot::AclGrant {
            grantee: "id=owner".into(),
            permission: "FULL_CONTROL".into(),
        };
        let acl = crate::snapshot::BucketAcl {
            owner: "owner".into(),
            grants: vec![owner.clone()],
        };
        let mut baseline = account(vec![trail(false)]);
        baseline.buckets.push(BucketSnapshot {
            acl: Some(acl.clone()),
            ..bucket()
        });
        let mut observed = baseline.clone();
        let everyone = crate::snapshot::AclGrant {
            grantee: "uri=http://acs.amazonaws.com/groups/global/AllUsers".into(),
            permission: "READ".into(),
        };
        observed.buckets[0].acl = Some(crate::snapshot::BucketAcl {
            grants: vec![owner, everyone],
            ..acl.clone()
        });
        let findings = audit_account(&baseline, &observed, &crate::Settings::default());
        let ids: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(ids, ["bucket-acl-changed"]);
        assert!(
            findings[0].title.contains("AllUsers"),
            "{}",
            findings[0].title
        );
        let p = plan(&baseline, &observed, &findings);
        let actions: Vec<&Action> = p.steps.iter().map(|s| &s.action).collect();
        assert_eq!(
            actions,
            [&Action::RestoreAcl {
                bucket: "logs".into(),
                region: "us-east-1".into(),
                acl,
            }]
        );
        // An ACL never read (an older baseline) is not compared.
        observed.buckets[0].acl = None;
        assert!(audit_account(&baseline, &observed, &crate::Settings::default()).is_empty());
    }

    fn alarm_path() -> (AccountSnapshot, MetricAlarm, TopicSnapshot) {
        let mut baseline = account(vec![trail(false)]);
        let topic = TopicSnapshot {
            arn: "arn:aws:sns:us-east-1:111111111111:security-alerts".into(),
            region: "us-east-1".into(),
            exists: true,
            policy: Some(r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":"SNS:Publish"}]}"#.into()),
            subscriptions: vec![crate::snapshot::Subscription {
                protocol: "email".into(),
                endpoint: "soc@example.com".into(),
            }],
        };
        let alarm = MetricAlarm {
            name: "cloudtrail-changes".into(),
            namespace: "CISBenchmark".into(),
            metric: "CloudTrailConfigurationChanges".into(),
            description: None,
            statistic: Some("Sum".into()),
            period: Some(300),
            evaluation_periods: Some(1),
            datapoints_to_alarm: None,
            threshold: Some(1.0),
            comparison_operator: Some("GreaterThanOrEqualToThreshold".into()),
            treat_missing_data: None,
            actions_enabled: true,
            alarm_actions: vec![topic.arn.clone()],
            ok_actions: vec![],
            insufficient_data_actions: vec![],
        };
        baseline.log_groups.push(LogGroupSnapshot {
            arn: "arn:aws:logs:us-east-1:111111111111:log-group:ct:*".into(),
            name: "ct".into(),
            region: "us-east-1".into(),
            exists: true,
            retention_days: None,
            subscription_filters: vec![],
            metric_filters: vec![crate::snapshot::LogFilter {
                name: "changes".into(),
                pattern: "{ $.eventName = StopLogging }".into(),
                target: Some("CISBenchmark/CloudTrailConfigurationChanges".into()),
            }],
            alarms: Some(vec![alarm.clone()]),
        });
        baseline.topics.push(topic.clone());
        (baseline, alarm, topic)
    }

    #[test]
    fn a_muted_re_pointed_or_deleted_alarm_is_put_back_as_the_baseline_has_it() {
        let (baseline, alarm, _) = alarm_path();
        let alarm_arn = "arn:aws:cloudwatch:us-east-1:111111111111:alarm:cloudtrail-changes";
        type Attack = fn(&mut Vec<MetricAlarm>);
        let cases: [(&str, Attack, &[&str]); 3] = [
            (
                "muted",
                |a| a[0].actions_enabled = false,
                &["cloudwatch-alarm-actions-disabled"],
            ),
            (
                "re-pointed",
                |a| a[0].alarm_actions = vec!["arn:aws:sns:us-east-1:444455556666:mallory".into()],
                &["cloudwatch-alarm-changed"],
            ),
            ("deleted", Vec::clear, &["cloudwatch-alarm-deleted"]),
        ];
        for (what, attack, expected) in cases {
            let mut observed = baseline.clone();
            attack(observed.log_groups[0].alarms.as_mut().unwrap());
            let findings = audit_account(&baseline, &observed, &crate::Settings::default());
            let ids: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
            assert_eq!(ids, expected, "{what}");
            assert!(
                findings
                    .iter()
                    .all(|f| f.resource.as_deref() == Some(alarm_arn))
            );
            let p = plan(&baseline, &observed, &findings);
            assert!(p.escalations.is_empty(), "{what}: {:?}", p.escalations);
            let actions: Vec<&Action> = p.steps.iter().map(|s| &s.action).collect();
            assert_eq!(
                actions,
                [&Action::PutMetricAlarm {
                    region: "us-east-1".into(),
                    alarm: alarm.clone(),
                }],
                "{what}"
            );
        }
        // An alarm the attacker adds, or alarms never read, are not tampering.
        let mut observed = baseline.clone();
        observed.log_groups[0].alarms = None;
        assert!(audit_account(&baseline, &observed, &crate::Settings::default()).is_empty());
    }

    #[test]
    fn a_deleted_topic_comes_back_with_its_policy_and_subscribers_before_the_trail() {
        let (baseline, _, topic) = alarm_path();
        let mut observed = baseline.clone();
        observed.topics[0] = TopicSnapshot {
            exists: false,
            policy: None,
            subscriptions: vec![],
            ..topic.clone()
        };
        observed.trails[0].multi_region = false;
        let findings = audit_account(&baseline, &observed, &crate::Settings::default());
        let p = plan(&baseline, &observed, &findings);
        let calls: Vec<&str> = p.steps.iter().map(|s| s.action.name()).collect();
        assert_eq!(calls, ["sns:CreateTopic", "cloudtrail:UpdateTrail"]);

        let mut observed = baseline.clone();
        observed.topics[0].subscriptions.clear();
        observed.topics[0].policy = Some(r#"{"Statement":[]}"#.into());
        let findings = audit_account(&baseline, &observed, &crate::Settings::default());
        let mut ids: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
        ids.sort();
        assert_eq!(
            ids,
            [
                "cloudwatch-sns-subscription-removed",
                "cloudwatch-sns-topic-policy-changed"
            ]
        );
        let p = plan(&baseline, &observed, &findings);
        let calls: Vec<&str> = p.steps.iter().map(|s| s.action.name()).collect();
        assert_eq!(calls, ["sns:SetTopicAttributes", "sns:Subscribe"]);
        // A policy whose keys are only reordered is the same policy.
        let mut observed = baseline.clone();
        observed.topics[0].policy = Some(r#"{"Statement":[{"Action":"SNS:Publish","Principal":{"Service":"cloudwatch.amazonaws.com"},"Effect":"Allow"}]}"#.into());
        assert!(audit_account(&baseline, &observed, &crate::Settings::default()).is_empty());
    }

    fn with_recorder(recorder: Option<ConfigRecorder>) -> AccountSnapshot {
        let mut a = account(vec![trail(false)]);
        a.services.insert(
            "us-east-1".into(),
            crate::snapshot::RegionServices {
                config_recorder: recorder,
                ..Default::default()
            },
        );
        a
    }

    #[test]
    fn a_narrowed_redirected_or_deleted_config_recorder_is_put_back_from_the_baseline() {
        let want = config_recorder();
        let baseline = with_recorder(Some(want.clone()));
        let narrowed = ConfigRecorder {
            all_supported: false,
            include_global_resource_types: Some(false),
            resource_types: vec!["AWS::EC2::Instance".into()],
            ..want.clone()
        };
        let redirected = ConfigRecorder {
            delivery: Some(crate::snapshot::ConfigDelivery {
                bucket: "exfil".into(),
                prefix: None,
                sns_topic: None,
            }),
            ..want.clone()
        };
        // (what, the recorder observed, the findings, the restore's calls)
        type Case<'a> = (
            &'a str,
            Option<ConfigRecorder>,
            &'a [&'a str],
            &'a [&'a str],
        );
        let cases: [Case; 3] = [
            (
                "narrowed",
                Some(narrowed),
                &["detection-config-recorder-narrowed"],
                &["config:PutConfigurationRecorder"],
            ),
            (
                "redirected",
                Some(redirected),
                &["detection-config-delivery-channel-redirected"],
                &["config:PutDeliveryChannel"],
            ),
            (
                "deleted",
                None,
                &["detection-config-recorder-deleted"],
                &[
                    "config:PutConfigurationRecorder",
                    "config:PutDeliveryChannel",
                    "config:StartConfigurationRecorder",
                ],
            ),
        ];
        for (what, observed, findings_wanted, calls_wanted) in cases {
            let observed = with_recorder(observed);
            let findings = audit_account(&baseline, &observed, &crate::Settings::default());
            let ids: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
            assert_eq!(ids, findings_wanted, "{what}");
            let p = plan(&baseline, &observed, &findings);
            assert!(p.escalations.is_empty(), "{what}: {:?}", p.escalations);
            let calls: Vec<&str> = p.steps.iter().map(|s| s.action.name()).collect();
            assert_eq!(calls, calls_wanted, "{what}");
        }
        // Wider than the baseline is not tampering.
        let findings = audit_account(
            &with_recorder(Some(ConfigRecorder {
                all_supported: false,
                resource_types: vec!["AWS::EC2::Instance".into()],
                ..want.clone()
            })),
            &baseline,
            &crate::Settings::default(),
        );
        assert!(findings.is_empty(), "{findings:?}");
        // A baseline without the recorder's role escalates instead of guessing one.
        let old = with_recorder(Some(ConfigRecorder {
            role_arn: None,
            ..want
        }));
        let findings = audit_account(&old, &with_recorder(None), &crate::Settings::default());
        let p = plan(&old, &with_recorder(None), &findings);
        assert!(p.steps.is_empty(), "{:?}", p.steps);
        assert_eq!(p.escalations.len(), 1);
        assert!(p.escalations[0].reason.contains("role"));
    }

    #[test]
    fn an_organization_trail_is_escalated_to_its_owner_not_touched() {
        let baseline = account(vec![trail(true)]);
        let mut stopped = trail(true);
        stopped.logging = false;
        let observed = account(vec![stopped]);
        let findings = audit_account(&baseline, &observed, &crate::Settings::default());
        let p = plan(&baseline, &observed, &findings);
        assert!(p.steps.is_empty(), "{:?}", p.steps);
        assert_eq!(p.escalations.len(), 1);
        assert!(p.escalations[0].reason.contains("999999999999"));
    }

    #[test]
    fn destinations_come_before_the_trail_and_logging_comes_last() {
        let mut baseline = account(vec![trail(false)]);
        baseline.buckets.push(BucketSnapshot {
            policy: Some("{}".into()),
            ..bucket()
        });
        let mut observed = account(vec![]);
        observed.buckets.push(BucketSnapshot {
            exists: false,
            policy: None,
            ..baseline.buckets[0].clone()
        });
        let findings = audit_account(&baseline, &observed, &crate::Settings::default());
        let p = plan(&baseline, &observed, &findings);
        let calls: Vec<&str> = p.steps.iter().map(|s| s.action.name()).collect();
        assert_eq!(calls, ["s3:CreateBucket", "cloudtrail:CreateTrail"]);

        let mut stopped = trail(false);
        stopped.logging = false;
        stopped.multi_region = false;
        let observed = account(vec![stopped]);
        let findings = audit_account(&baseline, &observed, &crate::Settings::default());
        let calls: Vec<&str> = plan(&baseline, &observed, &findings)
            .steps
            .iter()
            .map(|s| s.action.name())
            .collect();
        assert_eq!(calls, ["cloudtrail:UpdateTrail", "cloudtrail:StartLogging"]);
    }

    #[test]
    fn a_state_that_matches_the_baseline_plans_nothing() {
        let baseline = account(vec![trail(false)]);
        let p = plan(&baseline, &baseline, &[]);
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn every_step_names_only_actions_of_the_remediation_policy() {
        let t = trail(false);
        let b = bucket();
        let k = KeySnapshot {
            arn: "k".into(),
            region: "r".into(),
            exists: true,
            state: None,
            deletion_date: None,
            policy: None,
        };
        let g = LogGroupSnapshot {
            arn: "g".into(),
            name: "g".into(),
            region: "r".into(),
            exists: true,
            retention_days: None,
            subscription_filters: vec![],
            metric_filters: vec![],
            alarms: None,
        };
        let (_, alarm, topic) = alarm_path();
        let f = FlowLog {
            id: "f".into(),
            resource_id: "vpc-1".into(),
            traffic_type: None,
            destination_type: None,
            destination: None,
            deliver_logs_role_arn: None,
            status: None,
        };
        let (r, s) = (String::from("r"), String::from("s"));
        let every = [
            Action::CreateBucket { bucket: b },
            Action::PutBucketPolicy {
                bucket: s.clone(),
                region: r.clone(),
                policy: s.clone(),
            },
            Action::RestoreLifecycle {
                bucket: s.clone(),
                region: r.clone(),
                rules: vec![],
            },
            Action::EnableVersioning {
                bucket: s.clone(),
                region: r.clone(),
            },
            Action::RestoreEncryption {
                bucket: s.clone(),
                region: r.clone(),
                encryption: crate::snapshot::BucketEncryption {
                    algorithm: "AES256".into(),
                    kms_key: None,
                    bucket_key: false,
                },
            },
            Action::RestoreAccessLogging {
                bucket: s.clone(),
                region: r.clone(),
                logging: crate::snapshot::AccessLogging {
                    target_bucket: s.clone(),
                    target_prefix: s.clone(),
                },
            },
            Action::RestorePublicAccessBlock {
                bucket: s.clone(),
                region: r.clone(),
                block: crate::snapshot::PublicAccessBlock {
                    block_public_acls: true,
                    ignore_public_acls: true,
                    block_public_policy: true,
                    restrict_public_buckets: true,
                },
            },
            Action::RestoreNotifications {
                bucket: s.clone(),
                region: r.clone(),
                targets: vec![],
            },
            Action::RestoreAcl {
                bucket: s.clone(),
                region: r.clone(),
                acl: crate::snapshot::BucketAcl {
                    owner: s.clone(),
                    grants: vec![],
                },
            },
            Action::CancelKeyDeletion { key: k.clone() },
            Action::EnableKey { key: k.clone() },
            Action::PutKeyPolicy { key: k },
            Action::CreateLogGroup { group: g.clone() },
            Action::PutRetention { group: g.clone() },
            Action::RestoreLogFilters { group: g },
            Action::CreateTopic {
                topic: topic.clone(),
            },
            Action::PutTopicPolicy {
                topic: topic.clone(),
            },
            Action::Subscribe { topic },
            Action::PutMetricAlarm {
                region: r.clone(),
                alarm,
            },
            Action::CreateTrail { trail: t.clone() },
            Action::UpdateTrail { trail: t.clone() },
            Action::PutEventSelectors {
                trail: t.clone(),
                selectors: EventSelectors::default(),
            },
            Action::PutInsightSelectors {
                trail: t.clone(),
                insights: vec![],
            },
            Action::StartLogging { trail: t },
            Action::EnableDetector {
                region: r.clone(),
                detector_id: s.clone(),
            },
            Action::CreateDetector { region: r.clone() },
            Action::DeleteDetectorFilter {
                region: r.clone(),
                detector_id: s.clone(),
                name: s.clone(),
            },
            Action::DeactivateIpSet {
                region: r.clone(),
                detector_id: s.clone(),
                ip_set_id: s.clone(),
            },
            Action::PutConfigRecorder {
                region: r.clone(),
                recorder: config_recorder(),
            },
            Action::PutDeliveryChannel {
                region: r.clone(),
                recorder: config_recorder(),
            },
            Action::StartConfigRecorder {
                region: r.clone(),
                name: s,
            },
            Action::CreateFlowLogs { region: r, flow: f },
        ];
        for a in &every {
            for iam in a.iam_actions() {
                assert!(
                    ALL_IAM_ACTIONS.contains(iam),
                    "{iam} of {} missing",
                    a.name()
                );
            }
        }
    }
}
