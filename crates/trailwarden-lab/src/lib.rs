//! Dev-only: an emulated AWS estate on loopback for tests and the demo.
//!
//! [`Lab::start`] runs a private moto server behind a [`FaultProxy`], and seeds member
//! accounts (reached by AssumeRole) with a CloudTrail log bucket and trails. Some accounts can
//! be made unreachable: the proxy answers their AssumeRole with AccessDenied, as AWS does when
//! the role is missing or does not trust the caller.
//!
//! It must never be a dependency of a shipped binary. It makes AWS calls only through
//! trailwarden-aws's clients (that crate alone depends on the SDK).

use serde::{Deserialize, Serialize};
use std::time::Duration;
use trailwarden_aws::sdk::{cloudtrail, s3};
use trailwarden_aws::{AccountConfig, AwsOptions, ClientFactory, Credentials};
use trailwarden_moto::{Fault, FaultProxy, MotoServer};

pub use trailwarden_moto;

/// The role the lab's operator assumes in every member account.
pub const ROLE_NAME: &str = "TrailwardenAudit";
/// Where every account's trails live.
pub const HOME_REGION: &str = "us-east-1";
/// The single-region trail some accounts also have.
pub const REGIONAL_TRAIL_REGION: &str = "eu-west-1";

/// What to build.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Member accounts with trails, reachable by AssumeRole.
    pub accounts: usize,
    /// More member accounts whose AssumeRole is denied.
    pub denied_accounts: usize,
}

impl Default for LabSpec {
    fn default() -> Self {
        Self {
            accounts: 3,
            denied_accounts: 1,
        }
    }
}

/// A trail the lab created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabTrail {
    pub name: String,
    pub arn: String,
    pub home_region: String,
    pub multi_region: bool,
    pub logging: bool,
    pub bucket: String,
}

/// One member account of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabAccount {
    pub id: String,
    /// False for accounts whose AssumeRole the proxy denies.
    pub reachable: bool,
    pub trails: Vec<LabTrail>,
}

/// The machine-readable description other commands and tests read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabDescription {
    /// Point trailwarden here (`--endpoint-url`): the fault proxy in front of moto.
    pub endpoint: String,
    /// moto itself, without injected faults.
    pub moto_endpoint: String,
    pub role_name: String,
    pub home_region: String,
    pub accounts: Vec<LabAccount>,
    /// The process serving the lab (for `trailwarden-lab down`).
    pub pid: u32,
}

impl LabDescription {
    /// Every member account id, reachable or not, comma-separated (for `--accounts`).
    pub fn account_list(&self) -> String {
        self.accounts
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A running lab. Dropping it stops moto; the proxy stops with the tokio runtime.
#[derive(Debug)]
pub struct Lab {
    pub moto: MotoServer,
    pub proxy: FaultProxy,
    pub description: LabDescription,
}

/// The fixed credentials of the lab's operator (moto accepts any).
pub fn operator_credentials() -> Credentials {
    Credentials::new(
        "AKIALABOPERATOR00001",
        "lab-secret",
        None,
        None,
        "trailwarden-lab",
    )
}

/// Options that reach `endpoint` as the lab's operator, with quick failure on errors.
pub fn operator_options(endpoint: &str) -> AwsOptions {
    AwsOptions {
        endpoint_url: Some(endpoint.to_owned()),
        region: Some(HOME_REGION.to_owned()),
        static_credentials: Some(operator_credentials()),
        max_attempts: 3,
        call_timeout: Duration::from_secs(30),
        attempt_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        ..AwsOptions::default()
    }
}

/// Member account ids: `100000000001`, `100000000002`, ...
pub fn account_id(n: usize) -> String {
    format!("{}", 100_000_000_000u64 + n as u64)
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Harness(#[from] trailwarden_moto::HarnessError),
    #[error("fault proxy: {0}")]
    Proxy(std::io::Error),
    #[error("seeding account {account}: {what}: {message}")]
    Seed {
        account: String,
        what: String,
        message: String,
    },
}

impl Lab {
    /// Starts moto and the proxy and seeds the estate. Needs a tokio runtime (the proxy runs
    /// on it).
    pub async fn start(spec: &LabSpec) -> Result<Self, LabError> {
        let moto = MotoServer::start()?;
        let proxy = FaultProxy::start(&moto.endpoint())
            .await
            .map_err(LabError::Proxy)?;
        // Seed moto directly, so the proxy's call counts show only what tests do.
        let factory = ClientFactory::new(&operator_options(&moto.endpoint())).await;
        let mut accounts = Vec::new();
        for n in 1..=spec.accounts {
            let id = account_id(n);
            let clients = factory
                .assume_role(&format!("arn:aws:iam::{id}:role/{ROLE_NAME}"))
                .await;
            // Variety for the inventory: the second account also has a regional trail that
            // was never started.
            let regional = n == 2;
            let trails = seed_account(&clients, &id, regional).await?;
            accounts.push(LabAccount {
                id,
                reachable: true,
                trails,
            });
        }
        for n in spec.accounts + 1..=spec.accounts + spec.denied_accounts {
            let id = account_id(n);
            proxy.add(Fault::deny_assume_role(&id));
            accounts.push(LabAccount {
                id,
                reachable: false,
                trails: Vec::new(),
            });
        }
        let description = LabDescription {
            endpoint: proxy.endpoint(),
            moto_endpoint: moto.endpoint(),
            role_name: ROLE_NAME.to_owned(),
            home_region: HOME_REGION.to_owned(),
            accounts,
            pid: std::process::id(),
        };
        Ok(Self {
            moto,
            proxy,
            description,
        })
    }
}

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

async fn seed_account(
    clients: &AccountConfig,
    account: &str,
    with_regional_trail: bool,
) -> Result<Vec<LabTrail>, LabError> {
    let err = |what: &str, e: &dyn std::fmt::Display| LabError::Seed {
        account: account.to_owned(),
        what: what.to_owned(),
        message: e.to_string(),
    };
    let bucket = format!("trailwarden-lab-{account}-logs");
    let mut planned = vec![LabTrail {
        name: "management-events".into(),
        arn: format!("arn:aws:cloudtrail:{HOME_REGION}:{account}:trail/management-events"),
        home_region: HOME_REGION.into(),
        multi_region: true,
        logging: true,
        bucket: bucket.clone(),
    }];
    if with_regional_trail {
        planned.push(LabTrail {
            name: "eu-audit".into(),
            arn: format!("arn:aws:cloudtrail:{REGIONAL_TRAIL_REGION}:{account}:trail/eu-audit"),
            home_region: REGIONAL_TRAIL_REGION.into(),
            multi_region: false,
            logging: false,
            bucket: bucket.clone(),
        });
    }

    let s3 = clients.s3(HOME_REGION);
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| err("s3:CreateBucket", &s3::error::DisplayErrorContext(e)))?;
    let arns: Vec<String> = planned.iter().map(|t| t.arn.clone()).collect();
    s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(cloudtrail_bucket_policy(&bucket, account, &arns))
        .send()
        .await
        .map_err(|e| err("s3:PutBucketPolicy", &s3::error::DisplayErrorContext(e)))?;

    for trail in &planned {
        let ct = clients.cloudtrail(&trail.home_region);
        ct.create_trail()
            .name(&trail.name)
            .s3_bucket_name(&trail.bucket)
            .is_multi_region_trail(trail.multi_region)
            .include_global_service_events(trail.multi_region)
            .enable_log_file_validation(true)
            .send()
            .await
            .map_err(|e| {
                err(
                    "cloudtrail:CreateTrail",
                    &cloudtrail::error::DisplayErrorContext(e),
                )
            })?;
        if trail.logging {
            // By name, in the home region: moto answers 500 for an ARN (DESIGN.md).
            ct.start_logging()
                .name(&trail.name)
                .send()
                .await
                .map_err(|e| {
                    err(
                        "cloudtrail:StartLogging",
                        &cloudtrail::error::DisplayErrorContext(e),
                    )
                })?;
        }
    }
    Ok(planned)
}
