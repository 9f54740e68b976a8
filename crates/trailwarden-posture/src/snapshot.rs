//! The state snapshot of an account: everything an audit compares and a restore rebuilds from.
//! A baseline file is a set of snapshots taken from a healthy estate.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use trailwarden_model::target::AccountId;

/// One account as read from AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    pub account: AccountId,
    /// Regions read completely (a region with a gap is not listed).
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub trails: Vec<TrailSnapshot>,
    #[serde(default)]
    pub buckets: Vec<BucketSnapshot>,
    #[serde(default)]
    pub keys: Vec<KeySnapshot>,
    #[serde(default)]
    pub log_groups: Vec<LogGroupSnapshot>,
    /// SNS topics of this account that its trails notify or its alarms act on.
    #[serde(default)]
    pub topics: Vec<TopicSnapshot>,
    /// Detection services, per region.
    #[serde(default)]
    pub services: BTreeMap<String, RegionServices>,
}

impl AccountSnapshot {
    pub fn new(account: AccountId) -> Self {
        Self {
            account,
            regions: Vec::new(),
            trails: Vec::new(),
            buckets: Vec::new(),
            keys: Vec::new(),
            log_groups: Vec::new(),
            topics: Vec::new(),
            services: BTreeMap::new(),
        }
    }
}

/// A trail, read in its home region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailSnapshot {
    pub name: String,
    pub arn: String,
    pub home_region: String,
    pub multi_region: bool,
    pub organization: bool,
    /// Owned by another account (an organization trail seen from a member): read-only here.
    #[serde(default)]
    pub foreign: bool,
    pub s3_bucket: Option<String>,
    pub s3_key_prefix: Option<String>,
    pub sns_topic_arn: Option<String>,
    pub include_global_service_events: bool,
    pub log_file_validation: bool,
    pub kms_key_id: Option<String>,
    pub cloudwatch_logs_log_group_arn: Option<String>,
    pub cloudwatch_logs_role_arn: Option<String>,
    /// In a baseline: the trail must be logging. In an observation: it is.
    pub logging: bool,
    /// Only in observations: what `GetTrailStatus` says about delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// `None` when the selectors could not be read.
    pub event_selectors: Option<EventSelectors>,
    /// Insight types (`ApiCallRateInsight`, `ApiErrorRateInsight`); `None` when not readable.
    pub insight_selectors: Option<Vec<String>>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Parts that could not be read (`status`, `tags`): their checks are skipped and the gap
    /// is reported instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<String>,
}

/// Delivery health from `GetTrailStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delivery {
    pub latest_delivery_error: Option<String>,
    /// RFC 3339.
    pub latest_delivery_time: Option<String>,
    pub latest_cloudwatch_logs_delivery_error: Option<String>,
    pub latest_notification_error: Option<String>,
    /// Seconds between the last delivery and the read (computed where the clock is read).
    pub latest_delivery_age_seconds: Option<u64>,
}

/// A trail's event selectors: basic or advanced (AWS allows one kind per trail).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventSelectors {
    #[serde(default)]
    pub basic: Vec<BasicSelector>,
    #[serde(default)]
    pub advanced: Vec<AdvancedSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicSelector {
    /// `All`, `ReadOnly` or `WriteOnly`.
    pub read_write_type: String,
    pub include_management_events: bool,
    #[serde(default)]
    pub exclude_management_event_sources: Vec<String>,
    #[serde(default)]
    pub data_resources: Vec<DataResource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataResource {
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvancedSelector {
    pub name: Option<String>,
    pub field_selectors: Vec<FieldSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FieldSelector {
    pub field: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub starts_with: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ends_with: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_equals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_starts_with: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ends_with: Vec<String>,
}

/// A bucket a trail delivers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSnapshot {
    pub name: String,
    pub region: Option<String>,
    pub exists: bool,
    /// The bucket policy as JSON text; `None` when the bucket has none.
    pub policy: Option<String>,
    #[serde(default)]
    pub lifecycle_rules: Vec<LifecycleRule>,
    /// `Enabled`, `Suspended` or `Off` (never enabled).
    pub versioning: String,
    /// `Enabled` / `Disabled`, when AWS reports it.
    pub mfa_delete: Option<String>,
    pub public_access_block: Option<PublicAccessBlock>,
    /// Default Object Lock retention, when the bucket has Object Lock.
    #[serde(default)]
    pub object_lock: Option<ObjectLock>,
    #[serde(default)]
    pub notifications: Vec<NotificationTarget>,
    #[serde(default)]
    pub replication_rules: Vec<ReplicationRule>,
    /// The account that owns the bucket, when it is the account it was read from (S3 told by
    /// `ExpectedBucketOwner`); `None`: another account owns it, or it could not be told. A
    /// bucket deleted and re-created under the same name by another account (squatted) keeps
    /// its name and may copy its policy; it does not keep its owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Default encryption of new objects; `None`: none configured (or, in a baseline captured
    /// before trailwarden read it, not known: nothing is compared then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<BucketEncryption>,
    /// Where S3 server access logs of this bucket go (the record of who read or deleted log
    /// files when data events are off); `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_logging: Option<AccessLogging>,
    /// The bucket's ACL; `None`: not read (a baseline captured before trailwarden read it:
    /// nothing is compared then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<BucketAcl>,
}

/// A bucket's access control list (GetBucketAcl): its owner and grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketAcl {
    /// The owner's canonical user id (PutBucketAcl needs it back).
    pub owner: String,
    /// Sorted.
    #[serde(default)]
    pub grants: Vec<AclGrant>,
}

/// One grant: `id=<canonical user>`, `uri=<group>` or `email=<address>`, and the permission
/// (`FULL_CONTROL`, `READ`, `WRITE`, `READ_ACP`, `WRITE_ACP`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclGrant {
    pub grantee: String,
    pub permission: String,
}

/// A bucket's server access logging target (GetBucketLogging's `LoggingEnabled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLogging {
    pub target_bucket: String,
    #[serde(default)]
    pub target_prefix: String,
}

/// A bucket's default encryption (GetBucketEncryption's first rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketEncryption {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub algorithm: String,
    /// The KMS key (ARN or id as configured), for KMS encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub bucket_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    pub id: Option<String>,
    /// `Enabled` or `Disabled`.
    pub status: String,
    /// The key prefix the rule applies to (empty: the whole bucket).
    pub prefix: String,
    pub expiration_days: Option<i32>,
    /// An absolute expiration date (RFC 3339), when set.
    pub expiration_date: Option<String>,
    pub noncurrent_expiration_days: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLock {
    /// `COMPLIANCE` or `GOVERNANCE`; `None`: Object Lock on, no default retention.
    pub mode: Option<String>,
    /// Default retention in days (years are converted, 365 days each).
    pub days: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// Where the bucket sends object events.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NotificationTarget {
    /// `lambda`, `sqs`, `sns` or `eventbridge`.
    pub kind: String,
    pub arn: String,
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationRule {
    pub id: Option<String>,
    pub status: String,
    pub destination_bucket: String,
}

/// A KMS key a trail encrypts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySnapshot {
    pub arn: String,
    pub region: String,
    pub exists: bool,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub state: Option<String>,
    pub deletion_date: Option<String>,
    /// The default key policy as JSON text.
    pub policy: Option<String>,
}

/// A CloudWatch Logs group a trail delivers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogGroupSnapshot {
    pub arn: String,
    pub name: String,
    pub region: String,
    pub exists: bool,
    /// `None`: never expire.
    pub retention_days: Option<i32>,
    #[serde(default)]
    pub subscription_filters: Vec<LogFilter>,
    #[serde(default)]
    pub metric_filters: Vec<LogFilter>,
    /// The alarms on the metrics its metric filters produce (the CIS alarm path: filter ->
    /// metric -> alarm -> SNS topic); `None`: not read (a baseline captured before
    /// trailwarden read them, or CloudWatch denied the read: nothing is compared then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<Vec<MetricAlarm>>,
}

impl LogGroupSnapshot {
    /// The `(namespace, metric)` pairs its metric filters produce.
    pub fn metrics(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .metric_filters
            .iter()
            .filter_map(|f| f.target.as_deref()?.rsplit_once('/'))
            .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A CloudWatch metric alarm, with what PutMetricAlarm needs to re-create it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAlarm {
    pub name: String,
    pub namespace: String,
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Sum`, `Average`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_periods: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapoints_to_alarm: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treat_missing_data: Option<String>,
    /// `false`: muted (DisableAlarmActions): it changes state but notifies nobody.
    pub actions_enabled: bool,
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    #[serde(default)]
    pub ok_actions: Vec<String>,
    #[serde(default)]
    pub insufficient_data_actions: Vec<String>,
}

// Thresholds are finite numbers (CloudWatch refuses NaN), so equality is total.
impl Eq for MetricAlarm {}

impl MetricAlarm {
    pub fn arn(&self, region: &str, account: &str) -> String {
        format!("arn:aws:cloudwatch:{region}:{account}:alarm:{}", self.name)
    }

    /// What the alarm does, muting aside: its metric, condition and actions.
    pub fn same_definition(&self, other: &Self) -> bool {
        Self {
            actions_enabled: other.actions_enabled,
            ..self.clone()
        } == *other
    }
}

/// An SNS topic that carries trail notifications or alarm actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSnapshot {
    pub arn: String,
    pub region: String,
    pub exists: bool,
    /// The topic's access policy as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

impl TopicSnapshot {
    /// The topic's name, from its ARN.
    pub fn name(&self) -> &str {
        self.arn.rsplit(':').next().unwrap_or(&self.arn)
    }
}

/// A subscription, as Subscribe takes it. A pending one (e-mail not yet confirmed) counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subscription {
    pub protocol: String,
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogFilter {
    pub name: String,
    pub pattern: String,
    /// Subscription destination, or the metric `namespace/name` of a metric filter (split at
    /// the last `/`: namespaces may hold one, metric names rarely do).
    pub target: Option<String>,
}

/// Detection services of one region.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegionServices {
    pub guardduty: Option<Detector>,
    pub config_recorder: Option<ConfigRecorder>,
    #[serde(default)]
    pub flow_logs: Vec<FlowLog>,
    /// Services that could not be read here (`guardduty`, `config`, `flow-logs`): their
    /// checks are skipped and the gap is reported instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detector {
    pub id: String,
    /// `ENABLED` or `DISABLED`.
    pub status: String,
    /// Findings filters (an `ARCHIVE` one is a suppression rule); `None` when not read.
    #[serde(default)]
    pub filters: Option<Vec<DetectorFilter>>,
    /// Trusted IP lists (findings from these addresses are not raised); `None` when not read.
    #[serde(default)]
    pub ip_sets: Option<Vec<IpSet>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DetectorFilter {
    pub name: String,
    /// `NOOP` or `ARCHIVE`.
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IpSet {
    pub id: String,
    pub name: String,
    pub location: String,
    /// `ACTIVE`, `INACTIVE`, ...
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecorder {
    pub name: String,
    pub recording: bool,
    pub all_supported: bool,
    pub delivery_channel: Option<String>,
    /// The role Config records with: PutConfigurationRecorder needs it to re-create or widen
    /// the recorder (`None` in a baseline captured before trailwarden kept it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Whether IAM and other global resources are recorded (`None`: not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_global_resource_types: Option<bool>,
    /// The resource types recorded when not all supported types are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_types: Vec<String>,
    /// Where the delivery channel writes configuration history and snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<ConfigDelivery>,
}

/// A delivery channel's destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDelivery {
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_topic: Option<String>,
}

impl ConfigRecorder {
    /// What the recorder records less than `want` does (empty: nothing less).
    pub fn narrower_than(&self, want: &ConfigRecorder) -> Vec<String> {
        let mut lost = Vec::new();
        if want.all_supported && !self.all_supported {
            lost.push("all supported resource types".to_owned());
        }
        if want.include_global_resource_types == Some(true)
            && self.include_global_resource_types == Some(false)
        {
            lost.push("global resource types (IAM)".to_owned());
        }
        if !want.all_supported && !self.all_supported {
            lost.extend(
                want.resource_types
                    .iter()
                    .filter(|t| !self.resource_types.contains(t))
                    .cloned(),
            );
        }
        lost
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowLog {
    pub id: String,
    pub resource_id: String,
    pub traffic_type: Option<String>,
    /// `cloud-watch-logs`, `s3` or `kinesis-data-firehose`.
    pub destination_type: Option<String>,
    pub destination: Option<String>,
    pub deliver_logs_role_arn: Option<String>,
    pub status: Option<String>,
}
