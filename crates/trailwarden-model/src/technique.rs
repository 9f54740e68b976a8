//! The tamper catalog (`docs/tamper-catalog.md` §4) as data: every technique trailwarden
//! answers for, by id, and the attacks the project's lab performs against an emulated estate.
//!
//! The catalog's section H lists the responder's own plumbing as bullets; trailwarden numbers
//! them H1–H5, and the catalog's "other log sources" (RDS) is F6. `trailwarden techniques`
//! joins this list with the rule pack, the state checks and the restores to report coverage.

/// A tampering technique of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Technique {
    /// Catalog id (`A1` … `I4`).
    pub id: &'static str,
    pub title: &'static str,
    /// Why no state check can exist: the technique changes no configuration that a read
    /// could compare with a baseline. `None` for every technique that has state.
    pub stateless: Option<&'static str>,
    /// What a responder should know that the columns do not say (sub-variants not judged by
    /// one record, what is state only).
    pub note: &'static str,
}

macro_rules! catalog {
    ($($id:literal, $title:literal, $stateless:expr, $note:literal;)*) => {
        /// Every technique, in catalog order.
        pub const CATALOG: &[Technique] = &[$(Technique { id: $id, title: $title, stateless: $stateless, note: $note }),*];
    };
}

catalog! {
    "A1", "StopLogging", None, "";
    "A2", "DeleteTrail", None, "";
    "A3", "single-region trail", None, "";
    "A4", "global service events off", None, "";
    "A5", "delivery to a patsy bucket or prefix", None, "the record cannot say the bucket changed (low); the state check compares it with the baseline";
    "A6", "attacker KMS key", None, "";
    "A7", "log file validation off", None, "";
    "A8", "CloudWatch Logs delivery removed", None, "";
    "A9", "SNS notifications removed", None, "";
    "A10", "Pacu \"minimize\" (one UpdateTrail)", None, "fires the A3, A4, A6, A7, A8 and A9 rules together";
    "A11", "basic event selectors exclude management events", None, "fewer data resources than the baseline: state only";
    "A12", "advanced event selectors exclude management events", None, "";
    "A13", "Insights off", None, "removing one of two insight types: state only";
    "A14", "CloudTrail Lake event data stores", None, "DisableFederation, DeleteChannel and PutAuditEvents poisoning: no rule (PutAuditEvents is a data-plane call whose record shape is unverified)";
    "A15", "attacker-created trail", None, "";
    "B1", "log bucket deleted", None, "";
    "B2", "bucket policy denying CloudTrail", None, "removal of the AWSCloudTrailWrite statement: state";
    "B3", "short-expiry lifecycle rule", None, "";
    "B4", "notification to a log-deleting Lambda", None, "the Lambda function and its role are generic creations: no rule";
    "B5", "log or digest objects deleted or overwritten", None, "the rule needs S3 data events on the log bucket (DeleteObjects does not log key names); otherwise digest validation (issue 14)";
    "B6", "versioning, replication, ACL or public access block weakened", None, "";
    "B7", "default encryption to an attacker key", None, "";
    "B8", "server access logging off", None, "";
    "C1", "key disabled or deletion scheduled", None, "";
    "C2", "key policy lock-out", None, "";
    "C3", "imported key material deleted", None, "";
    "D1", "log group or streams deleted", None, "";
    "D2", "retention shortened", None, "cuts to more than 7 days: state only";
    "D3", "metric or subscription filters deleted", None, "";
    "D4", "alarms deleted or muted", None, "PutMetricAlarm with changed AlarmActions: no rule (the record cannot say the actions changed); state";
    "D5", "SNS delivery of alarms broken", None, "";
    "E1", "GuardDuty off", None, "";
    "E2", "GuardDuty trusted IP or threat lists", None, "";
    "E3", "GuardDuty auto-archive suppression rule", None, "";
    "E4", "GuardDuty administrator/member link broken", None, "";
    "E5", "AWS Config off or narrowed", None, "PutDeliveryChannel is matched at low level (the record cannot say whether the bucket is the known-good one); the state decides";
    "E6", "Security Hub disabled or its findings suppressed", None, "";
    "E7", "IAM Access Analyzer deleted", None, "";
    "E8", "Macie disabled or its findings suppressed", None, "";
    "F1", "VPC flow logs deleted", None, "";
    "F2", "Route 53 Resolver query logs deleted", None, "";
    "F3", "EKS control-plane logging off", None, "";
    "F4", "Bedrock invocation logging deleted", None, "narrowing through PutModelInvocationLoggingConfiguration: no rule (request shape not verified)";
    "F5", "WAF logging deleted", None, "";
    "F6", "RDS activity streams and log exports stopped", None, "";
    "G1", "account leaves the organization", None, "";
    "G2", "management-account sabotage (trusted access, SCPs, delegated administrators)", None, "";
    "H1", "trailwarden's event path (EventBridge rules and targets, bus policy, central queue)", None, "";
    "H2", "trailwarden's responder Lambda", None, "";
    "H3", "trailwarden's IAM roles and credentials", None, "";
    "H4", "a region enabled that nothing guards", None, "";
    "H5", "impersonating trailwarden's own calls", Some("a call made under a name like trailwarden's changes no configuration: the engine tells trailwarden's own calls by the keys of the sessions it obtained, and reports the rest"), "";
    "I1", "requestParameters too large", Some("padding makes CloudTrail omit the request; the configuration it changed is whatever technique it hid, checked there"), "";
    "I2", "CSV injection into Event history", Some("a failed call with a formula as a name changes no configuration"), "";
    "I3", "non-logged surfaces (data events off, Kubernetes API, honeytoken fingerprinting)", Some("by definition nothing is recorded and nothing is configured"), "";
    "I4", "working in regions no trail covers", None, "no CloudTrail signature (the calls are not recorded): state only";
}

/// Techniques that are several others done at once: their state is their parts' state.
pub const COMPOSITES: &[(&str, &[&str])] = &[("A10", &["A3", "A4", "A6", "A7", "A8", "A9"])];

/// The techniques whose state shows `id`: itself, or its parts for a composite.
pub fn shown_by(id: &str) -> Vec<&str> {
    COMPOSITES
        .iter()
        .find(|(c, _)| *c == id)
        .map(|(_, parts)| parts.to_vec())
        .unwrap_or_else(|| vec![id])
}

/// Looks a technique up by catalog id.
pub fn technique(id: &str) -> Option<&'static Technique> {
    CATALOG.iter().find(|t| t.id == id)
}

/// An attack the lab (`crates/trailwarden-lab`) performs against an emulated account, through
/// the AWS API with the attacker's own role. Listed here, beside the catalog, so that the tool
/// can report which techniques its own tests attack; the lab's tests run every one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabAttack {
    pub id: &'static str,
    /// Catalog id.
    pub catalog: &'static str,
    pub summary: &'static str,
}

macro_rules! lab_attacks {
    ($($id:literal, $cat:literal, $summary:literal;)*) => {
        /// Every attack of the lab, in catalog order.
        pub const LAB_ATTACKS: &[LabAttack] = &[$(LabAttack { id: $id, catalog: $cat, summary: $summary }),*];
    };
}

lab_attacks! {
    "stop-logging", "A1", "StopLogging on the multi-region trail";
    "denied-stop-logging", "A1", "StopLogging refused with AccessDenied: a failed attempt (errorCode in the record)";
    "delete-trail", "A2", "DeleteTrail on the multi-region trail";
    "single-region", "A3", "UpdateTrail IsMultiRegionTrail=false";
    "no-global-events", "A4", "UpdateTrail IncludeGlobalServiceEvents=false";
    "redirect-bucket", "A5", "UpdateTrail to a bucket the attacker controls";
    "attacker-kms-key", "A6", "UpdateTrail KmsKeyId to a key the attacker created";
    "validation-off", "A7", "UpdateTrail EnableLogFileValidation=false";
    "detach-cloudwatch", "A8", "UpdateTrail without CloudWatch Logs delivery";
    "trail-sns-off", "A9", "UpdateTrail SnsTopicName='' (no delivery notifications)";
    "minimize", "A10", "Pacu's minimize: single-region, no global events, validation off, no KMS, no CloudWatch Logs";
    "exclude-management-events", "A11", "PutEventSelectors: no management events, read-only S3 data events";
    "read-only-management", "A11", "PutEventSelectors: management events ReadOnly";
    "advanced-selectors-data-only", "A12", "PutEventSelectors: advanced selectors for S3 data events only (no Management selector)";
    "insights-off", "A13", "PutInsightSelectors with an empty list (Insights off)";
    "unexpected-trail", "A15", "CreateTrail delivering to an attacker bucket";
    "delete-bucket", "B1", "DeleteBucket on the log bucket";
    "bucket-policy-deny", "B2", "PutBucketPolicy denying CloudTrail";
    "lifecycle-expiration", "B3", "PutBucketLifecycleConfiguration expiring logs after 1 day";
    "bucket-notification", "B4", "PutBucketNotificationConfiguration to an attacker Lambda";
    "bucket-acl-grant", "B6", "PutBucketAcl granting READ on the log bucket to another account";
    "suspend-versioning", "B6", "PutBucketVersioning Suspended";
    "bucket-encryption-attacker-key", "B7", "PutBucketEncryption with a KMS key the attacker created";
    "access-logging-off", "B8", "PutBucketLogging with an empty BucketLoggingStatus on the log bucket";
    "disable-key", "C1", "DisableKey on the trail's key";
    "schedule-key-deletion", "C1", "ScheduleKeyDeletion (7 days) on the trail's key";
    "key-policy", "C2", "PutKeyPolicy removing CloudTrail's access";
    "delete-log-group", "D1", "DeleteLogGroup on the trail's log group";
    "shorten-retention", "D2", "PutRetentionPolicy 1 day on the trail's log group";
    "delete-metric-filter", "D3", "DeleteMetricFilter on the trail's log group";
    "mute-alarm", "D4", "DisableAlarmActions on the CloudTrail-changes alarm";
    "delete-alarm", "D4", "DeleteAlarms on the CloudTrail-changes alarm";
    "delete-alert-topic", "D5", "DeleteTopic on the alert topic of the alarm and the trail";
    "unsubscribe-alerts", "D5", "Unsubscribe the SOC's mailbox from the alert topic";
    "disable-guardduty", "E1", "UpdateDetector Enable=false";
    "guardduty-trusted-ip", "E2", "CreateIPSet Activate=true with the attacker's addresses (faked: moto lacks IP sets)";
    "guardduty-suppression-filter", "E3", "CreateFilter Action=ARCHIVE for every finding";
    "delete-guardduty", "E1", "DeleteDetector";
    "stop-config", "E5", "StopConfigurationRecorder";
    "narrow-config-recorder", "E5", "PutConfigurationRecorder recording EC2 instances only (no global resources)";
    "redirect-config-channel", "E5", "PutDeliveryChannel to a bucket the attacker controls";
    "delete-config-recorder", "E5", "DeleteConfigurationRecorder";
    "delete-flow-logs", "F1", "DeleteFlowLogs on the VPC";
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_are_unique_and_every_lab_attack_names_a_technique() {
        let ids: BTreeSet<_> = CATALOG.iter().map(|t| t.id).collect();
        assert_eq!(ids.len(), CATALOG.len());
        let attacks: BTreeSet<_> = LAB_ATTACKS.iter().map(|a| a.id).collect();
        assert_eq!(attacks.len(), LAB_ATTACKS.len());
        for a in LAB_ATTACKS {
            assert!(technique(a.catalog).is_some(), "{}: {}", a.id, a.catalog);
        }
    }
}
