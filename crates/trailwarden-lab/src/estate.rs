//! Seeding one member account with a healthy, fully protected logging setup: an encrypted,
//! multi-region trail that records every management event, its bucket, key and log group,
//! and the detection services.

use crate::{
    DEAD_LETTER_QUEUE, EVENT_QUEUE, FORWARDED_RULE, HOME_REGION, LabAccount, LabError, LabTrail,
    REGIONAL_TRAIL_REGION, SECURITY_ROLE, SecurityAccount,
};
use trailwarden_aws::AccountConfig;
use trailwarden_aws::sdk::{cloudtrail, cloudwatch, config, ec2, logs, s3};

/// The log group every lab trail delivers to.
pub const LOG_GROUP: &str = "/trailwarden-lab/cloudtrail";
/// The log group the lab's VPC flow logs go to.
pub const FLOW_LOG_GROUP: &str = "/trailwarden-lab/flow-logs";
/// The metric filter the lab's alarms would hang on (CIS 3.5 style).
pub const METRIC_FILTER: &str = "cloudtrail-configuration-changes";
/// The alarm on the metric filter's metric (CIS 3.5: CloudTrail configuration changes).
pub const ALARM: &str = "cloudtrail-configuration-changes";
/// The SNS topic the alarm and the trail's delivery notifications go to.
pub const ALERT_TOPIC: &str = "trailwarden-lab-alerts";
/// The topic's subscriber: the SOC's mailbox.
pub const ALERT_SUBSCRIBER: &str = "soc@example.com";

/// The alert topic's ARN in a lab account.
pub fn alert_topic_arn(account: &str) -> String {
    format!("arn:aws:sns:{HOME_REGION}:{account}:{ALERT_TOPIC}")
}

/// The alert topic's policy: the account, CloudTrail and CloudWatch may publish.
pub fn alert_topic_policy(account: &str) -> String {
    let topic = alert_topic_arn(account);
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailSNSPolicy",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "SNS:Publish",
                "Resource": topic,
                "Condition": {"StringEquals": {"aws:SourceAccount": account}}
            },
            {
                "Sid": "CloudWatchAlarms",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "SNS:Publish",
                "Resource": topic,
                "Condition": {"StringEquals": {"aws:SourceAccount": account}}
            }
        ]
    })
    .to_string()
}

/// The bucket lifecycle rule of the baseline: keep logs for seven years.
pub const RETENTION_RULE: &str = "retain-7-years";

/// The standard CloudTrail bucket policy: CloudTrail may check the ACL and write under
/// `AWSLogs/<account>/`, for the named trails only.
pub fn cloudtrail_bucket_policy(bucket: &str, account: &str, trail_arns: &[String]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": format!("arn:aws:s3:::{bucket}"),
                "Condition": {"StringEquals": {"aws:SourceArn": trail_arns}}
            },
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": format!("arn:aws:s3:::{bucket}/AWSLogs/{account}/*"),
                "Condition": {"StringEquals": {
                    "s3:x-amz-acl": "bucket-owner-full-control",
                    "aws:SourceArn": trail_arns
                }}
            }
        ]
    })
    .to_string()
}

/// A key policy that keeps the account in control and lets CloudTrail encrypt.
pub fn cloudtrail_key_policy(account: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "trailwarden-lab-cloudtrail-key",
        "Statement": [
            {
                "Sid": "EnableAccountControl",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "AllowCloudTrailToEncrypt",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringLike": {
                    "kms:EncryptionContext:aws:cloudtrail:arn": format!("arn:aws:cloudtrail:*:{account}:trail/*")
                }}
            }
        ]
    })
    .to_string()
}

pub(crate) async fn seed_account(
    clients: &AccountConfig,
    account: &str,
    with_regional_trail: bool,
) -> Result<LabAccount, LabError> {
    let bucket = format!("trailwarden-lab-{account}-logs");
    let role = format!("arn:aws:iam::{account}:role/CloudTrailToCloudWatchLogs");
    let mut trails = vec![LabTrail {
        name: "management-events".into(),
        arn: format!("arn:aws:cloudtrail:{HOME_REGION}:{account}:trail/management-events"),
        home_region: HOME_REGION.into(),
        multi_region: true,
        logging: true,
        bucket: bucket.clone(),
    }];
    if with_regional_trail {
        trails.push(LabTrail {
            name: "eu-audit".into(),
            arn: format!("arn:aws:cloudtrail:{REGIONAL_TRAIL_REGION}:{account}:trail/eu-audit"),
            home_region: REGIONAL_TRAIL_REGION.into(),
            multi_region: false,
            logging: false,
            bucket: bucket.clone(),
        });
    }

    // The bucket: policy for CloudTrail, versioning, public access blocked, 7-year retention.
    let s3c = clients.s3(HOME_REGION);
    call!(
        account,
        "s3:CreateBucket",
        s3c.create_bucket().bucket(&bucket).send()
    );
    let arns: Vec<String> = trails.iter().map(|t| t.arn.clone()).collect();
    call!(
        account,
        "s3:PutBucketPolicy",
        s3c.put_bucket_policy()
            .bucket(&bucket)
            .policy(cloudtrail_bucket_policy(&bucket, account, &arns))
            .send()
    );
    call!(
        account,
        "s3:PutBucketVersioning",
        s3c.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                s3::types::VersioningConfiguration::builder()
                    .status(s3::types::BucketVersioningStatus::Enabled)
                    .build()
            )
            .send()
    );
    // S3-managed default encryption, as AWS gives every bucket since 2023 (moto does not).
    call!(
        account,
        "s3:PutEncryptionConfiguration",
        s3c.put_bucket_encryption()
            .bucket(&bucket)
            .server_side_encryption_configuration(
                s3::types::ServerSideEncryptionConfiguration::builder()
                    .rules(
                        s3::types::ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(
                                s3::types::ServerSideEncryptionByDefault::builder()
                                    .sse_algorithm(s3::types::ServerSideEncryption::Aes256)
                                    .build()
                                    .map_err(|e| crate::step_failed(
                                        account,
                                        "PutBucketEncryption",
                                        e
                                    ))?
                            )
                            .build()
                    )
                    .build()
                    .map_err(|e| crate::step_failed(account, "PutBucketEncryption", e))?
            )
            .send()
    );
    // Server access logs of the log bucket go to a bucket of their own, which lets the S3
    // logging service write (the policy AWS documents).
    let access_logs = access_log_bucket(account);
    call!(
        account,
        "s3:CreateBucket",
        s3c.create_bucket().bucket(&access_logs).send()
    );
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "S3ServerAccessLogsPolicy",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": ["s3:PutObject"],
            "Resource": format!("arn:aws:s3:::{access_logs}/*"),
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }]
    });
    call!(
        account,
        "s3:PutBucketPolicy",
        s3c.put_bucket_policy()
            .bucket(&access_logs)
            .policy(policy.to_string())
            .send()
    );
    call!(
        account,
        "s3:PutBucketLogging",
        s3c.put_bucket_logging()
            .bucket(&bucket)
            .bucket_logging_status(
                s3::types::BucketLoggingStatus::builder()
                    .logging_enabled(
                        s3::types::LoggingEnabled::builder()
                            .target_bucket(&access_logs)
                            .target_prefix(format!("{bucket}/"))
                            .build()
                            .map_err(|e| crate::step_failed(account, "PutBucketLogging", e))?
                    )
                    .build()
            )
            .send()
    );
    call!(
        account,
        "s3:PutPublicAccessBlock",
        s3c.put_public_access_block()
            .bucket(&bucket)
            .public_access_block_configuration(
                s3::types::PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build()
            )
            .send()
    );
    let retention = s3::types::LifecycleRule::builder()
        .id(RETENTION_RULE)
        .status(s3::types::ExpirationStatus::Enabled)
        .filter(
            s3::types::LifecycleRuleFilter::builder()
                .prefix("AWSLogs/")
                .build(),
        )
        .expiration(s3::types::LifecycleExpiration::builder().days(2555).build())
        .build()
        .map_err(|e| crate::step_failed(account, "lifecycle rule", e))?;
    call!(
        account,
        "s3:PutLifecycleConfiguration",
        s3c.put_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .lifecycle_configuration(
                s3::types::BucketLifecycleConfiguration::builder()
                    .rules(retention)
                    .build()
                    .map_err(|e| crate::step_failed(account, "lifecycle", e))?
            )
            .send()
    );

    // The key that encrypts the logs.
    let kmsc = clients.kms(HOME_REGION);
    let key = call!(
        account,
        "kms:CreateKey",
        kmsc.create_key()
            .description("trailwarden lab: CloudTrail log encryption")
            .policy(cloudtrail_key_policy(account))
            .send()
    );
    let key_arn = key
        .key_metadata()
        .map(|m| m.arn().unwrap_or_default().to_owned())
        .unwrap_or_default();

    // The log group the trail streams to, with the metric filter alarms depend on.
    let logsc = clients.logs(HOME_REGION);
    for group in [LOG_GROUP, FLOW_LOG_GROUP] {
        call!(
            account,
            "logs:CreateLogGroup",
            logsc.create_log_group().log_group_name(group).send()
        );
        call!(
            account,
            "logs:PutRetentionPolicy",
            logsc
                .put_retention_policy()
                .log_group_name(group)
                .retention_in_days(365)
                .send()
        );
    }
    call!(account, "logs:PutMetricFilter", logsc.put_metric_filter()
        .log_group_name(LOG_GROUP)
        .filter_name(METRIC_FILTER)
        .filter_pattern("{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }")
        .metric_transformations(logs::types::MetricTransformation::builder()
            .metric_name("CloudTrailConfigurationChanges").metric_namespace("CISBenchmark")
            .metric_value("1").build().map_err(|e| crate::step_failed(account, "metric transformation", e))?)
        .send());
    let log_group_arn = format!("arn:aws:logs:{HOME_REGION}:{account}:log-group:{LOG_GROUP}:*");

    // The alarm path: topic (policy, subscriber), and the alarm on the filter's metric.
    let sns = clients.sns(HOME_REGION);
    call!(
        account,
        "sns:CreateTopic",
        sns.create_topic().name(ALERT_TOPIC).send()
    );
    let topic = alert_topic_arn(account);
    call!(
        account,
        "sns:SetTopicAttributes",
        sns.set_topic_attributes()
            .topic_arn(&topic)
            .attribute_name("Policy")
            .attribute_value(alert_topic_policy(account))
            .send()
    );
    call!(
        account,
        "sns:Subscribe",
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("email")
            .endpoint(ALERT_SUBSCRIBER)
            .send()
    );
    call!(
        account,
        "cloudwatch:PutMetricAlarm",
        clients
            .cloudwatch(HOME_REGION)
            .put_metric_alarm()
            .alarm_name(ALARM)
            .alarm_description("CIS: CloudTrail configuration changes")
            .namespace("CISBenchmark")
            .metric_name("CloudTrailConfigurationChanges")
            .statistic(cloudwatch::types::Statistic::Sum)
            .period(300)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(
                cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold
            )
            .treat_missing_data("notBreaching")
            .actions_enabled(true)
            .alarm_actions(&topic)
            .send()
    );

    for trail in &trails {
        let ct = clients.cloudtrail(&trail.home_region);
        let mut create = ct
            .create_trail()
            .name(&trail.name)
            .s3_bucket_name(&trail.bucket)
            .is_multi_region_trail(trail.multi_region)
            .include_global_service_events(trail.multi_region)
            .enable_log_file_validation(true)
            .tags_list(
                cloudtrail::types::Tag::builder()
                    .key("owner")
                    .value("security")
                    .build()
                    .map_err(|e| crate::step_failed(account, "tag", e))?,
            );
        if trail.multi_region {
            create = create
                .sns_topic_name(ALERT_TOPIC)
                .kms_key_id(&key_arn)
                .cloud_watch_logs_log_group_arn(&log_group_arn)
                .cloud_watch_logs_role_arn(&role);
        }
        call!(account, "cloudtrail:CreateTrail", create.send());
        call!(
            account,
            "cloudtrail:PutEventSelectors",
            ct.put_event_selectors()
                .trail_name(&trail.name)
                .event_selectors(
                    cloudtrail::types::EventSelector::builder()
                        .read_write_type(cloudtrail::types::ReadWriteType::All)
                        .include_management_events(true)
                        .build()
                )
                .send()
        );
        if trail.multi_region {
            call!(
                account,
                "cloudtrail:PutInsightSelectors",
                ct.put_insight_selectors()
                    .trail_name(&trail.name)
                    .insight_selectors(
                        cloudtrail::types::InsightSelector::builder()
                            .insight_type(cloudtrail::types::InsightType::ApiCallRateInsight)
                            .build()
                    )
                    .send()
            );
        }
        if trail.logging {
            // By name, in the home region: moto answers 500 for an ARN (DESIGN.md).
            call!(
                account,
                "cloudtrail:StartLogging",
                ct.start_logging().name(&trail.name).send()
            );
        }
    }

    // Detection services in the home region.
    let gd = clients.guardduty(HOME_REGION);
    let detector = call!(
        account,
        "guardduty:CreateDetector",
        gd.create_detector().enable(true).send()
    );
    let cfg = clients.config(HOME_REGION);
    call!(
        account,
        "config:PutConfigurationRecorder",
        cfg.put_configuration_recorder()
            .configuration_recorder(
                config::types::ConfigurationRecorder::builder()
                    .name("default")
                    .role_arn(format!("arn:aws:iam::{account}:role/aws-config"))
                    .recording_group(
                        config::types::RecordingGroup::builder()
                            .all_supported(true)
                            .include_global_resource_types(true)
                            .build()
                    )
                    .build()
            )
            .send()
    );
    call!(
        account,
        "config:PutDeliveryChannel",
        cfg.put_delivery_channel()
            .delivery_channel(
                config::types::DeliveryChannel::builder()
                    .name("default")
                    .s3_bucket_name(&bucket)
                    .build()
            )
            .send()
    );
    call!(
        account,
        "config:StartConfigurationRecorder",
        cfg.start_configuration_recorder()
            .configuration_recorder_name("default")
            .send()
    );
    let ec2c = clients.ec2(HOME_REGION);
    let vpc = call!(
        account,
        "ec2:CreateVpc",
        ec2c.create_vpc().cidr_block("10.42.0.0/16").send()
    );
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_owned();
    call!(
        account,
        "ec2:CreateFlowLogs",
        ec2c.create_flow_logs()
            .resource_ids(&vpc_id)
            .resource_type(ec2::types::FlowLogsResourceType::Vpc)
            .traffic_type(ec2::types::TrafficType::All)
            .log_group_name(FLOW_LOG_GROUP)
            .deliver_logs_permission_arn(format!("arn:aws:iam::{account}:role/flow-logs"))
            .send()
    );

    Ok(LabAccount {
        id: account.to_owned(),
        reachable: true,
        trails,
        bucket: Some(bucket),
        key_arn: Some(key_arn),
        log_group: Some(LOG_GROUP.to_owned()),
        detector_id: detector.detector_id().map(str::to_owned),
        vpc_id: Some(vpc_id),
    })
}

/// The security account's plumbing: the central queue trailwarden's `watch` consumes, its
/// dead-letter queue, and a rule on the home region's default bus that delivers every
/// "AWS API Call via CloudTrail" event forwarded from member accounts to the queue.
pub(crate) async fn seed_security_account(
    clients: &AccountConfig,
    account: &str,
    members: &[String],
) -> Result<SecurityAccount, LabError> {
    let sqs = clients.sqs(HOME_REGION);
    let dlq = call!(
        account,
        "CreateQueue (dead-letter)",
        sqs.create_queue().queue_name(DEAD_LETTER_QUEUE).send()
    );
    let dlq_url = dlq.queue_url().unwrap_or_default().to_owned();
    let dlq_arn = format!("arn:aws:sqs:{HOME_REGION}:{account}:{DEAD_LETTER_QUEUE}");
    let queue_arn = format!("arn:aws:sqs:{HOME_REGION}:{account}:{EVENT_QUEUE}");
    let rule_arn = format!("arn:aws:events:{HOME_REGION}:{account}:rule/{FORWARDED_RULE}");
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "EventBridgeDelivers",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}
        }]
    });
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5});
    use trailwarden_aws::sdk::sqs::types::QueueAttributeName;
    let queue = call!(
        account,
        "CreateQueue",
        sqs.create_queue()
            .queue_name(EVENT_QUEUE)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .attributes(QueueAttributeName::VisibilityTimeout, "30")
            .send()
    );
    let queue_url = queue.queue_url().unwrap_or_default().to_owned();
    let events = clients.eventbridge(HOME_REGION);
    for member in members {
        call!(
            account,
            "PutPermission",
            events
                .put_permission()
                .action("events:PutEvents")
                .principal(member)
                .statement_id(format!("member-{member}"))
                .send()
        );
    }
    call!(
        account,
        "PutRule",
        events
            .put_rule()
            .name(FORWARDED_RULE)
            .event_pattern(r#"{"detail-type":["AWS API Call via CloudTrail"]}"#)
            .send()
    );
    call!(
        account,
        "PutTargets",
        events
            .put_targets()
            .rule(FORWARDED_RULE)
            .targets(
                trailwarden_aws::sdk::eventbridge::types::Target::builder()
                    .id("trailwarden-events")
                    .arn(&queue_arn)
                    .build()
                    .map_err(|e| crate::step_failed(account, "PutTargets", e))?,
            )
            .send()
    );
    Ok(SecurityAccount {
        id: account.to_owned(),
        role_name: SECURITY_ROLE.to_owned(),
        role_arn: format!("arn:aws:iam::{account}:role/{SECURITY_ROLE}"),
        event_bus_arn: format!("arn:aws:events:{HOME_REGION}:{account}:event-bus/default"),
        queue_url,
        queue_arn,
        dead_letter_queue_url: dlq_url,
        dead_letter_queue_arn: dlq_arn,
    })
}

/// The bucket that receives the log bucket's server access logs.
pub fn access_log_bucket(account: &str) -> String {
    format!("trailwarden-lab-{account}-access-logs")
}
