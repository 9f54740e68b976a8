//! Executing a restore plan: each step's API calls, in the region the step names. A failed
//! call stops its step and is reported with the IAM permission it needed; the other steps go on.

use crate::failure::{GapScope, gap_from_sdk};
use crate::fanout::Account;
use aws_sdk_cloudtrail::types as ct;
use aws_sdk_s3::types as s3t;
use trailwarden_model::target::Gap;
use trailwarden_posture::plan::{Action, Step};
use trailwarden_posture::snapshot::{
    BucketAcl, BucketSnapshot, ConfigRecorder, EventSelectors, LifecycleRule, LogGroupSnapshot,
    MetricAlarm, NotificationTarget, PublicAccessBlock, TopicSnapshot, TrailSnapshot,
};

type Result<T> = std::result::Result<T, Gap>;

macro_rules! call {
    ($account:expr, $region:expr, $op:literal, $fut:expr) => {
        $fut.await.map_err(|e| {
            permission_gap(gap_from_sdk(
                &e,
                &$account.id,
                Some($region),
                $op,
                GapScope::Region,
            ))
        })?
    };
}

/// Says which permission was missing when IAM denied the call.
fn permission_gap(mut gap: Gap) -> Gap {
    if gap.kind == trailwarden_model::target::GapKind::AccessDenied {
        gap.message = format!("missing permission {}: {}", gap.operation, gap.message);
    }
    gap
}

/// Runs one step of a plan.
pub async fn apply(account: &Account, step: &Step) -> Result<()> {
    let c = &account.clients;
    match &step.action {
        Action::CreateBucket { bucket } => create_bucket(account, bucket).await?,
        Action::PutBucketPolicy {
            bucket,
            region,
            policy,
        } => {
            call!(
                account,
                region,
                "s3:PutBucketPolicy",
                c.s3(region)
                    .put_bucket_policy()
                    .bucket(bucket)
                    .policy(policy)
                    .send()
            );
        }
        Action::RestoreLifecycle {
            bucket,
            region,
            rules,
        } => restore_lifecycle(account, bucket, region, rules).await?,
        Action::EnableVersioning { bucket, region } => {
            enable_versioning(account, bucket, region).await?
        }
        Action::RestoreEncryption {
            bucket,
            region,
            encryption,
        } => put_encryption(account, bucket, region, encryption).await?,
        Action::RestoreAccessLogging {
            bucket,
            region,
            logging,
        } => put_access_logging(account, bucket, region, logging).await?,
        Action::RestoreAcl {
            bucket,
            region,
            acl,
        } => put_bucket_acl(account, bucket, region, acl).await?,
        Action::RestorePublicAccessBlock {
            bucket,
            region,
            block,
        } => put_public_access_block(account, bucket, region, block).await?,
        Action::RestoreNotifications {
            bucket,
            region,
            targets,
        } => restore_notifications(account, bucket, region, targets).await?,
        Action::CancelKeyDeletion { key } => {
            call!(
                account,
                &key.region,
                "kms:CancelKeyDeletion",
                c.kms(&key.region)
                    .cancel_key_deletion()
                    .key_id(key_id(&key.arn))
                    .send()
            );
        }
        Action::EnableKey { key } => {
            call!(
                account,
                &key.region,
                "kms:EnableKey",
                c.kms(&key.region)
                    .enable_key()
                    .key_id(key_id(&key.arn))
                    .send()
            );
        }
        Action::PutKeyPolicy { key } => {
            call!(
                account,
                &key.region,
                "kms:PutKeyPolicy",
                c.kms(&key.region)
                    .put_key_policy()
                    .key_id(key_id(&key.arn))
                    .policy_name("default")
                    .policy(key.policy.clone().unwrap_or_default())
                    .send()
            );
        }
        Action::CreateLogGroup { group } => {
            call!(
                account,
                &group.region,
                "logs:CreateLogGroup",
                c.logs(&group.region)
                    .create_log_group()
                    .log_group_name(&group.name)
                    .send()
            );
            put_retention(account, group).await?;
            restore_log_filters(account, group).await?;
        }
        Action::PutRetention { group } => put_retention(account, group).await?,
        Action::RestoreLogFilters { group } => restore_log_filters(account, group).await?,
        Action::CreateTopic { topic } => {
            // CreateTopic is idempotent by name, and answers the ARN the baseline has.
            call!(
                account,
                &topic.region,
                "sns:CreateTopic",
                c.sns(&topic.region)
                    .create_topic()
                    .name(topic.name())
                    .send()
            );
            put_topic_policy(account, topic).await?;
            subscribe(account, topic).await?;
        }
        Action::PutTopicPolicy { topic } => put_topic_policy(account, topic).await?,
        Action::Subscribe { topic } => subscribe(account, topic).await?,
        Action::PutMetricAlarm { region, alarm } => {
            put_metric_alarm(account, region, alarm).await?
        }
        Action::CreateTrail { trail } => create_trail(account, trail).await?,
        Action::UpdateTrail { trail } => update_trail(account, trail).await?,
        Action::PutEventSelectors { trail, selectors } => {
            put_selectors(account, trail, selectors).await?
        }
        Action::PutInsightSelectors { trail, insights } => {
            put_insights(account, trail, insights).await?
        }
        Action::StartLogging { trail } => {
            // By name in the home region: what AWS and emulators both accept for own trails.
            call!(
                account,
                &trail.home_region,
                "cloudtrail:StartLogging",
                c.cloudtrail(&trail.home_region)
                    .start_logging()
                    .name(&trail.name)
                    .send()
            );
        }
        Action::EnableDetector {
            region,
            detector_id,
        } => {
            call!(
                account,
                region,
                "guardduty:UpdateDetector",
                c.guardduty(region)
                    .update_detector()
                    .detector_id(detector_id)
                    .enable(true)
                    .send()
            );
        }
        Action::CreateDetector { region } => {
            call!(
                account,
                region,
                "guardduty:CreateDetector",
                c.guardduty(region).create_detector().enable(true).send()
            );
        }
        Action::DeleteDetectorFilter {
            region,
            detector_id,
            name,
        } => {
            call!(
                account,
                region,
                "guardduty:DeleteFilter",
                c.guardduty(region)
                    .delete_filter()
                    .detector_id(detector_id)
                    .filter_name(name)
                    .send()
            );
        }
        Action::DeactivateIpSet {
            region,
            detector_id,
            ip_set_id,
        } => {
            call!(
                account,
                region,
                "guardduty:UpdateIPSet",
                c.guardduty(region)
                    .update_ip_set()
                    .detector_id(detector_id)
                    .ip_set_id(ip_set_id)
                    .activate(false)
                    .send()
            );
        }
        Action::PutConfigRecorder { region, recorder } => {
            put_config_recorder(account, region, recorder).await?
        }
        Action::PutDeliveryChannel { region, recorder } => {
            put_delivery_channel(account, region, recorder).await?
        }
        Action::StartConfigRecorder { region, name } => {
            call!(
                account,
                region,
                "config:StartConfigurationRecorder",
                c.config(region)
                    .start_configuration_recorder()
                    .configuration_recorder_name(name)
                    .send()
            );
        }
        Action::CreateFlowLogs { region, flow } => {
            let resource_type = match flow.resource_id.split('-').next() {
                Some("subnet") => aws_sdk_ec2::types::FlowLogsResourceType::Subnet,
                Some("eni") => aws_sdk_ec2::types::FlowLogsResourceType::NetworkInterface,
                _ => aws_sdk_ec2::types::FlowLogsResourceType::Vpc,
            };
            let mut req = c
                .ec2(region)
                .create_flow_logs()
                .resource_ids(&flow.resource_id)
                .resource_type(resource_type)
                .traffic_type(aws_sdk_ec2::types::TrafficType::from(
                    flow.traffic_type.as_deref().unwrap_or("ALL"),
                ))
                .set_deliver_logs_permission_arn(flow.deliver_logs_role_arn.clone());
            match flow.destination_type.as_deref() {
                Some("s3") | Some("kinesis-data-firehose") => {
                    req = req
                        .log_destination_type(aws_sdk_ec2::types::LogDestinationType::from(
                            flow.destination_type.as_deref().unwrap_or("s3"),
                        ))
                        .set_log_destination(flow.destination.clone());
                }
                _ => req = req.set_log_group_name(flow.destination.clone()),
            }
            call!(account, region, "ec2:CreateFlowLogs", req.send());
        }
    }
    Ok(())
}

async fn enable_versioning(account: &Account, bucket: &str, region: &str) -> Result<()> {
    call!(
        account,
        region,
        "s3:PutBucketVersioning",
        account
            .clients
            .s3(region)
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                s3t::VersioningConfiguration::builder()
                    .status(s3t::BucketVersioningStatus::Enabled)
                    .build()
            )
            .send()
    );
    Ok(())
}

async fn put_encryption(
    account: &Account,
    bucket: &str,
    region: &str,
    e: &trailwarden_posture::snapshot::BucketEncryption,
) -> Result<()> {
    let by_default = s3t::ServerSideEncryptionByDefault::builder()
        .sse_algorithm(s3t::ServerSideEncryption::from(e.algorithm.as_str()))
        .set_kms_master_key_id(e.kms_key.clone())
        .build()
        .map_err(|e| build_gap(account, region, "s3:PutEncryptionConfiguration", e))?;
    let configuration = s3t::ServerSideEncryptionConfiguration::builder()
        .rules(
            s3t::ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(by_default)
                .bucket_key_enabled(e.bucket_key)
                .build(),
        )
        .build()
        .map_err(|e| build_gap(account, region, "s3:PutEncryptionConfiguration", e))?;
    call!(
        account,
        region,
        "s3:PutEncryptionConfiguration",
        account
            .clients
            .s3(region)
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(configuration)
            .send()
    );
    Ok(())
}

async fn put_access_logging(
    account: &Account,
    bucket: &str,
    region: &str,
    logging: &trailwarden_posture::snapshot::AccessLogging,
) -> Result<()> {
    let enabled = s3t::LoggingEnabled::builder()
        .target_bucket(&logging.target_bucket)
        .target_prefix(&logging.target_prefix)
        .build()
        .map_err(|e| build_gap(account, region, "s3:PutBucketLogging", e))?;
    call!(
        account,
        region,
        "s3:PutBucketLogging",
        account
            .clients
            .s3(region)
            .put_bucket_logging()
            .bucket(bucket)
            .bucket_logging_status(
                s3t::BucketLoggingStatus::builder()
                    .logging_enabled(enabled)
                    .build()
            )
            .send()
    );
    Ok(())
}

async fn put_public_access_block(
    account: &Account,
    bucket: &str,
    region: &str,
    block: &PublicAccessBlock,
) -> Result<()> {
    call!(
        account,
        region,
        "s3:PutBucketPublicAccessBlock",
        account
            .clients
            .s3(region)
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                s3t::PublicAccessBlockConfiguration::builder()
                    .block_public_acls(block.block_public_acls)
                    .ignore_public_acls(block.ignore_public_acls)
                    .block_public_policy(block.block_public_policy)
                    .restrict_public_buckets(block.restrict_public_buckets)
                    .build()
            )
            .send()
    );
    Ok(())
}

fn key_id(arn: &str) -> &str {
    // The bare id works for a key in the caller's own account and region (the only keys a
    // restore touches), and is what emulators accept.
    arn.rsplit_once("key/").map(|(_, id)| id).unwrap_or(arn)
}

async fn create_bucket(account: &Account, b: &BucketSnapshot) -> Result<()> {
    let region = b.region.clone().unwrap_or_else(|| "us-east-1".into());
    let s3 = account.clients.s3(&region);
    let mut req = s3.create_bucket().bucket(&b.name);
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            s3t::CreateBucketConfiguration::builder()
                .location_constraint(s3t::BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    call!(account, &region, "s3:CreateBucket", req.send());
    if let Some(policy) = &b.policy {
        call!(
            account,
            &region,
            "s3:PutBucketPolicy",
            s3.put_bucket_policy().bucket(&b.name).policy(policy).send()
        );
    }
    if b.versioning == "Enabled" {
        enable_versioning(account, &b.name, &region).await?;
    }
    if let Some(encryption) = &b.encryption {
        put_encryption(account, &b.name, &region, encryption).await?;
    }
    if let Some(logging) = &b.access_logging {
        put_access_logging(account, &b.name, &region, logging).await?;
    }
    if let Some(acl) = &b.acl {
        put_bucket_acl(account, &b.name, &region, acl).await?;
    }
    if let Some(block) = &b.public_access_block {
        put_public_access_block(account, &b.name, &region, block).await?;
    }
    if !b.lifecycle_rules.is_empty() {
        restore_lifecycle(account, &b.name, &region, &b.lifecycle_rules).await?;
    }
    if !b.notifications.is_empty() {
        restore_notifications(account, &b.name, &region, &b.notifications).await?;
    }
    Ok(())
}

async fn restore_lifecycle(
    account: &Account,
    bucket: &str,
    region: &str,
    rules: &[LifecycleRule],
) -> Result<()> {
    let s3 = account.clients.s3(region);
    if rules.is_empty() {
        call!(
            account,
            region,
            "s3:PutLifecycleConfiguration",
            s3.delete_bucket_lifecycle().bucket(bucket).send()
        );
        return Ok(());
    }
    let mut built = Vec::new();
    for rule in rules {
        let mut b = s3t::LifecycleRule::builder()
            .set_id(rule.id.clone())
            .status(s3t::ExpirationStatus::from(rule.status.as_str()))
            .filter(
                s3t::LifecycleRuleFilter::builder()
                    .prefix(&rule.prefix)
                    .build(),
            );
        if rule.expiration_days.is_some() || rule.expiration_date.is_some() {
            let mut e = s3t::LifecycleExpiration::builder().set_days(rule.expiration_days);
            if let Some(date) = rule.expiration_date.as_deref().and_then(|d| {
                aws_smithy_types::DateTime::from_str(
                    d,
                    aws_smithy_types::date_time::Format::DateTime,
                )
                .ok()
            }) {
                e = e.date(date);
            }
            b = b.expiration(e.build());
        }
        if let Some(days) = rule.noncurrent_expiration_days {
            b = b.noncurrent_version_expiration(
                s3t::NoncurrentVersionExpiration::builder()
                    .noncurrent_days(days)
                    .build(),
            );
        }
        built.push(
            b.build()
                .map_err(|e| build_gap(account, region, "s3:PutLifecycleConfiguration", e))?,
        );
    }
    let config = s3t::BucketLifecycleConfiguration::builder()
        .set_rules(Some(built))
        .build()
        .map_err(|e| build_gap(account, region, "s3:PutLifecycleConfiguration", e))?;
    call!(
        account,
        region,
        "s3:PutLifecycleConfiguration",
        s3.put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(config)
            .send()
    );
    Ok(())
}

async fn restore_notifications(
    account: &Account,
    bucket: &str,
    region: &str,
    targets: &[NotificationTarget],
) -> Result<()> {
    let mut config = s3t::NotificationConfiguration::builder();
    for t in targets {
        let events: Vec<s3t::Event> = t
            .events
            .iter()
            .map(|e| s3t::Event::from(e.as_str()))
            .collect();
        match t.kind.as_str() {
            "lambda" => {
                config = config.lambda_function_configurations(
                    s3t::LambdaFunctionConfiguration::builder()
                        .lambda_function_arn(&t.arn)
                        .set_events(Some(events))
                        .build()
                        .map_err(|e| build_gap(account, region, "s3:PutBucketNotification", e))?,
                )
            }
            "sqs" => {
                config = config.queue_configurations(
                    s3t::QueueConfiguration::builder()
                        .queue_arn(&t.arn)
                        .set_events(Some(events))
                        .build()
                        .map_err(|e| build_gap(account, region, "s3:PutBucketNotification", e))?,
                )
            }
            "sns" => {
                config = config.topic_configurations(
                    s3t::TopicConfiguration::builder()
                        .topic_arn(&t.arn)
                        .set_events(Some(events))
                        .build()
                        .map_err(|e| build_gap(account, region, "s3:PutBucketNotification", e))?,
                )
            }
            _ => {
                config = config
                    .event_bridge_configuration(s3t::EventBridgeConfiguration::builder().build())
            }
        }
    }
    call!(
        account,
        region,
        "s3:PutBucketNotification",
        account
            .clients
            .s3(region)
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(config.build())
            .send()
    );
    Ok(())
}

fn build_gap(account: &Account, region: &str, op: &str, e: impl std::fmt::Display) -> Gap {
    Gap {
        account: account.id.clone(),
        region: Some(region.to_owned()),
        operation: op.to_owned(),
        kind: trailwarden_model::target::GapKind::ServiceError,
        code: None,
        message: format!("the baseline's value cannot be sent: {e}"),
    }
}

/// PutConfigurationRecorder replaces the recorder: the baseline's role and recording group.
async fn put_config_recorder(account: &Account, region: &str, r: &ConfigRecorder) -> Result<()> {
    use aws_sdk_config::types::{
        ConfigurationRecorder, RecordingGroup, RecordingStrategy, RecordingStrategyType,
        ResourceType,
    };
    let strategy = if r.all_supported {
        RecordingStrategyType::AllSupportedResourceTypes
    } else {
        RecordingStrategyType::InclusionByResourceTypes
    };
    let group = RecordingGroup::builder()
        .all_supported(r.all_supported)
        .include_global_resource_types(r.include_global_resource_types.unwrap_or(r.all_supported))
        .set_resource_types((!r.all_supported).then(|| {
            r.resource_types
                .iter()
                .map(|t| ResourceType::from(t.as_str()))
                .collect()
        }))
        .recording_strategy(RecordingStrategy::builder().use_only(strategy).build())
        .build();
    let recorder = ConfigurationRecorder::builder()
        .name(&r.name)
        .set_role_arn(r.role_arn.clone())
        .recording_group(group)
        .build();
    call!(
        account,
        region,
        "config:PutConfigurationRecorder",
        account
            .clients
            .config(region)
            .put_configuration_recorder()
            .configuration_recorder(recorder)
            .send()
    );
    Ok(())
}

async fn put_delivery_channel(account: &Account, region: &str, r: &ConfigRecorder) -> Result<()> {
    let Some(d) = &r.delivery else {
        return Ok(());
    };
    let channel = aws_sdk_config::types::DeliveryChannel::builder()
        .name(r.delivery_channel.as_deref().unwrap_or("default"))
        .s3_bucket_name(&d.bucket)
        .set_s3_key_prefix(d.prefix.clone())
        .set_sns_topic_arn(d.sns_topic.clone())
        .build();
    call!(
        account,
        region,
        "config:PutDeliveryChannel",
        account
            .clients
            .config(region)
            .put_delivery_channel()
            .delivery_channel(channel)
            .send()
    );
    Ok(())
}

/// PutBucketAcl replaces the whole ACL: exactly the baseline's grants, under its owner.
async fn put_bucket_acl(
    account: &Account,
    bucket: &str,
    region: &str,
    acl: &BucketAcl,
) -> Result<()> {
    let mut grants = Vec::new();
    for g in &acl.grants {
        let (kind, value) = g
            .grantee
            .split_once('=')
            .unwrap_or(("id", g.grantee.as_str()));
        let grantee = match kind {
            "uri" => s3t::Grantee::builder().r#type(s3t::Type::Group).uri(value),
            "email" => s3t::Grantee::builder()
                .r#type(s3t::Type::AmazonCustomerByEmail)
                .email_address(value),
            _ => s3t::Grantee::builder()
                .r#type(s3t::Type::CanonicalUser)
                .id(value),
        }
        .build()
        .map_err(|e| build_gap(account, region, "s3:PutBucketAcl", e))?;
        grants.push(
            s3t::Grant::builder()
                .grantee(grantee)
                .permission(s3t::Permission::from(g.permission.as_str()))
                .build(),
        );
    }
    let policy = s3t::AccessControlPolicy::builder()
        .owner(s3t::Owner::builder().id(&acl.owner).build())
        .set_grants(Some(grants))
        .build();
    call!(
        account,
        region,
        "s3:PutBucketAcl",
        account
            .clients
            .s3(region)
            .put_bucket_acl()
            .bucket(bucket)
            .access_control_policy(policy)
            .send()
    );
    Ok(())
}

async fn put_topic_policy(account: &Account, t: &TopicSnapshot) -> Result<()> {
    if let Some(policy) = &t.policy {
        call!(
            account,
            &t.region,
            "sns:SetTopicAttributes",
            account
                .clients
                .sns(&t.region)
                .set_topic_attributes()
                .topic_arn(&t.arn)
                .attribute_name("Policy")
                .attribute_value(policy)
                .send()
        );
    }
    Ok(())
}

/// Subscribes every baseline subscriber (SNS returns an existing subscription unchanged). An
/// e-mail or HTTP subscriber must confirm again before it receives anything.
async fn subscribe(account: &Account, t: &TopicSnapshot) -> Result<()> {
    let sns = account.clients.sns(&t.region);
    for sub in &t.subscriptions {
        call!(
            account,
            &t.region,
            "sns:Subscribe",
            sns.subscribe()
                .topic_arn(&t.arn)
                .protocol(&sub.protocol)
                .endpoint(&sub.endpoint)
                .send()
        );
    }
    Ok(())
}

/// PutMetricAlarm overwrites the alarm by name: the baseline's definition comes back whole,
/// actions enabled as the baseline has them.
async fn put_metric_alarm(account: &Account, region: &str, a: &MetricAlarm) -> Result<()> {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
    // Empty lists are sent too: the baseline had none, so an attacker's actions go.
    let actions = |v: &[String]| Some(v.to_vec());
    let put = account
        .clients
        .cloudwatch(region)
        .put_metric_alarm()
        .alarm_name(&a.name)
        .namespace(&a.namespace)
        .metric_name(&a.metric)
        .set_alarm_description(a.description.clone())
        .set_statistic(a.statistic.as_deref().map(Statistic::from))
        .set_period(a.period)
        .set_evaluation_periods(a.evaluation_periods)
        .set_datapoints_to_alarm(a.datapoints_to_alarm)
        .set_threshold(a.threshold)
        .set_comparison_operator(
            a.comparison_operator
                .as_deref()
                .map(ComparisonOperator::from),
        )
        .set_treat_missing_data(a.treat_missing_data.clone())
        .actions_enabled(a.actions_enabled)
        .set_alarm_actions(actions(&a.alarm_actions))
        .set_ok_actions(actions(&a.ok_actions))
        .set_insufficient_data_actions(actions(&a.insufficient_data_actions));
    call!(account, region, "cloudwatch:PutMetricAlarm", put.send());
    Ok(())
}

async fn put_retention(account: &Account, g: &LogGroupSnapshot) -> Result<()> {
    let logs = account.clients.logs(&g.region);
    match g.retention_days {
        Some(days) => {
            call!(
                account,
                &g.region,
                "logs:PutRetentionPolicy",
                logs.put_retention_policy()
                    .log_group_name(&g.name)
                    .retention_in_days(days)
                    .send()
            );
        }
        None => {
            call!(
                account,
                &g.region,
                "logs:PutRetentionPolicy",
                logs.delete_retention_policy()
                    .log_group_name(&g.name)
                    .send()
            );
        }
    }
    Ok(())
}

async fn restore_log_filters(account: &Account, g: &LogGroupSnapshot) -> Result<()> {
    let logs = account.clients.logs(&g.region);
    for f in &g.metric_filters {
        let (namespace, name) = f
            .target
            .as_deref()
            .and_then(|t| t.rsplit_once('/'))
            .unwrap_or(("trailwarden", f.name.as_str()));
        let transformation = aws_sdk_cloudwatchlogs::types::MetricTransformation::builder()
            .metric_namespace(namespace)
            .metric_name(name)
            .metric_value("1")
            .build()
            .map_err(|e| build_gap(account, &g.region, "logs:PutMetricFilter", e))?;
        call!(
            account,
            &g.region,
            "logs:PutMetricFilter",
            logs.put_metric_filter()
                .log_group_name(&g.name)
                .filter_name(&f.name)
                .filter_pattern(&f.pattern)
                .metric_transformations(transformation)
                .send()
        );
    }
    for f in &g.subscription_filters {
        call!(
            account,
            &g.region,
            "logs:PutSubscriptionFilter",
            logs.put_subscription_filter()
                .log_group_name(&g.name)
                .filter_name(&f.name)
                .filter_pattern(&f.pattern)
                .destination_arn(f.target.clone().unwrap_or_default())
                .send()
        );
    }
    Ok(())
}

async fn create_trail(account: &Account, t: &TrailSnapshot) -> Result<()> {
    let client = account.clients.cloudtrail(&t.home_region);
    let mut req = client
        .create_trail()
        .name(&t.name)
        .s3_bucket_name(t.s3_bucket.clone().unwrap_or_default())
        .set_s3_key_prefix(t.s3_key_prefix.clone())
        .set_sns_topic_name(t.sns_topic_arn.clone())
        .include_global_service_events(t.include_global_service_events)
        .is_multi_region_trail(t.multi_region)
        .enable_log_file_validation(t.log_file_validation)
        .set_kms_key_id(t.kms_key_id.clone())
        .set_cloud_watch_logs_log_group_arn(t.cloudwatch_logs_log_group_arn.clone())
        .set_cloud_watch_logs_role_arn(t.cloudwatch_logs_role_arn.clone())
        .is_organization_trail(t.organization);
    for (k, v) in &t.tags {
        req = req.tags_list(
            ct::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| build_gap(account, &t.home_region, "cloudtrail:CreateTrail", e))?,
        );
    }
    call!(
        account,
        &t.home_region,
        "cloudtrail:CreateTrail",
        req.send()
    );
    if let Some(selectors) = &t.event_selectors
        && (!selectors.basic.is_empty() || !selectors.advanced.is_empty())
    {
        put_selectors(account, t, selectors).await?;
    }
    if let Some(insights) = t.insight_selectors.as_ref().filter(|i| !i.is_empty()) {
        put_insights(account, t, insights).await?;
    }
    if t.logging {
        call!(
            account,
            &t.home_region,
            "cloudtrail:StartLogging",
            client.start_logging().name(&t.name).send()
        );
    }
    Ok(())
}

async fn update_trail(account: &Account, t: &TrailSnapshot) -> Result<()> {
    // Empty strings clear a setting, so a setting the baseline lacks is removed again.
    let empty = |v: &Option<String>| Some(v.clone().unwrap_or_default());
    call!(
        account,
        &t.home_region,
        "cloudtrail:UpdateTrail",
        account
            .clients
            .cloudtrail(&t.home_region)
            .update_trail()
            .name(&t.name)
            .set_s3_bucket_name(t.s3_bucket.clone())
            .set_s3_key_prefix(empty(&t.s3_key_prefix))
            .set_sns_topic_name(empty(&t.sns_topic_arn))
            .include_global_service_events(t.include_global_service_events)
            .is_multi_region_trail(t.multi_region)
            .enable_log_file_validation(t.log_file_validation)
            .set_kms_key_id(empty(&t.kms_key_id))
            .set_cloud_watch_logs_log_group_arn(empty(&t.cloudwatch_logs_log_group_arn))
            .set_cloud_watch_logs_role_arn(empty(&t.cloudwatch_logs_role_arn))
            .send()
    );
    Ok(())
}

async fn put_selectors(account: &Account, t: &TrailSnapshot, s: &EventSelectors) -> Result<()> {
    let mut req = account
        .clients
        .cloudtrail(&t.home_region)
        .put_event_selectors()
        .trail_name(&t.name);
    if !s.advanced.is_empty() {
        for a in &s.advanced {
            let mut fields = Vec::new();
            for f in &a.field_selectors {
                fields.push(
                    ct::AdvancedFieldSelector::builder()
                        .field(&f.field)
                        .set_equals(Some(f.equals.clone()).filter(|v| !v.is_empty()))
                        .set_starts_with(Some(f.starts_with.clone()).filter(|v| !v.is_empty()))
                        .set_ends_with(Some(f.ends_with.clone()).filter(|v| !v.is_empty()))
                        .set_not_equals(Some(f.not_equals.clone()).filter(|v| !v.is_empty()))
                        .set_not_starts_with(
                            Some(f.not_starts_with.clone()).filter(|v| !v.is_empty()),
                        )
                        .set_not_ends_with(Some(f.not_ends_with.clone()).filter(|v| !v.is_empty()))
                        .build()
                        .map_err(|e| {
                            build_gap(account, &t.home_region, "cloudtrail:PutEventSelectors", e)
                        })?,
                );
            }
            req = req.advanced_event_selectors(
                ct::AdvancedEventSelector::builder()
                    .set_name(a.name.clone())
                    .set_field_selectors(Some(fields))
                    .build()
                    .map_err(|e| {
                        build_gap(account, &t.home_region, "cloudtrail:PutEventSelectors", e)
                    })?,
            );
        }
    } else {
        for b in &s.basic {
            let mut sel = ct::EventSelector::builder()
                .read_write_type(ct::ReadWriteType::from(b.read_write_type.as_str()))
                .include_management_events(b.include_management_events)
                .set_exclude_management_event_sources(Some(
                    b.exclude_management_event_sources.clone(),
                ));
            for d in &b.data_resources {
                sel = sel.data_resources(
                    ct::DataResource::builder()
                        .r#type(&d.resource_type)
                        .set_values(Some(d.values.clone()))
                        .build(),
                );
            }
            req = req.event_selectors(sel.build());
        }
    }
    call!(
        account,
        &t.home_region,
        "cloudtrail:PutEventSelectors",
        req.send()
    );
    Ok(())
}

async fn put_insights(account: &Account, t: &TrailSnapshot, insights: &[String]) -> Result<()> {
    let selectors: Vec<ct::InsightSelector> = insights
        .iter()
        .map(|i| {
            ct::InsightSelector::builder()
                .insight_type(ct::InsightType::from(i.as_str()))
                .build()
        })
        .collect();
    call!(
        account,
        &t.home_region,
        "cloudtrail:PutInsightSelectors",
        account
            .clients
            .cloudtrail(&t.home_region)
            .put_insight_selectors()
            .trail_name(&t.name)
            .set_insight_selectors(Some(selectors))
            .send()
    );
    Ok(())
}
