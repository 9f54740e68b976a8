//! Test fixtures shared by the unit tests of this crate.

use crate::snapshot::{
    AccountSnapshot, BucketSnapshot, ConfigDelivery, ConfigRecorder, EventSelectors, TrailSnapshot,
};

/// A healthy multi-region trail homed in us-east-1, owned by 111111111111 or, when `foreign`,
/// an organization trail of 999999999999.
pub fn trail(foreign: bool) -> TrailSnapshot {
    let owner = if foreign {
        "999999999999"
    } else {
        "111111111111"
    };
    TrailSnapshot {
        name: "org".into(),
        arn: format!("arn:aws:cloudtrail:us-east-1:{owner}:trail/org"),
        home_region: "us-east-1".into(),
        multi_region: true,
        organization: foreign,
        foreign,
        s3_bucket: Some("logs".into()),
        s3_key_prefix: None,
        sns_topic_arn: None,
        include_global_service_events: true,
        log_file_validation: true,
        kms_key_id: None,
        cloudwatch_logs_log_group_arn: None,
        cloudwatch_logs_role_arn: None,
        logging: true,
        delivery: None,
        event_selectors: Some(EventSelectors::default()),
        insight_selectors: Some(vec![]),
        tags: Default::default(),
        unread: vec![],
    }
}

/// Account 111111111111, read in us-east-1 and eu-west-1, with these trails.
pub fn account(trails: Vec<TrailSnapshot>) -> AccountSnapshot {
    let mut a = AccountSnapshot::new("111111111111".parse().expect("valid id"));
    a.regions = vec!["us-east-1".into(), "eu-west-1".into()];
    a.trails = trails;
    a
}

/// The trails' bucket `logs`, with versioning on, S3-managed default encryption (as every
/// bucket has had since 2023) and nothing else set.
pub fn bucket() -> BucketSnapshot {
    BucketSnapshot {
        name: "logs".into(),
        region: Some("us-east-1".into()),
        exists: true,
        policy: None,
        lifecycle_rules: vec![],
        versioning: "Enabled".into(),
        mfa_delete: None,
        public_access_block: None,
        object_lock: None,
        notifications: vec![],
        replication_rules: vec![],
        owner: Some("111111111111".into()),
        encryption: Some(crate::snapshot::BucketEncryption {
            algorithm: "AES256".into(),
            kms_key: None,
            bucket_key: false,
        }),
        access_logging: None,
        acl: None,
    }
}

/// A recording, all-supported Config recorder with its role and delivery channel.
pub fn config_recorder() -> ConfigRecorder {
    ConfigRecorder {
        name: "default".into(),
        recording: true,
        all_supported: true,
        delivery_channel: Some("default".into()),
        role_arn: Some("arn:aws:iam::111111111111:role/aws-config".into()),
        include_global_resource_types: Some(true),
        resource_types: vec![],
        delivery: Some(ConfigDelivery {
            bucket: "config-history".into(),
            prefix: None,
            sns_topic: None,
        }),
    }
}
