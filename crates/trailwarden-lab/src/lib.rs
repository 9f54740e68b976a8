//! Dev-only: an emulated AWS estate on loopback for tests and the demo.
//!
//! [`Lab::start`] runs a private moto server behind a [`FaultProxy`], and seeds member
//! accounts (reached by AssumeRole) with a CloudTrail log bucket and trails. Some accounts can
//! be made unreachable: the proxy answers their AssumeRole with AccessDenied, as AWS does when
//! the role is missing or does not trust the caller.
//!
//! It must never be a dependency of a shipped binary. It makes AWS calls only through
//! trailwarden-aws's clients (that crate alone depends on the SDK).

/// Awaits an SDK call of a lab step; its error becomes a [`LabError`] naming the account, the
/// call and the SDK's whole error chain.
macro_rules! call {
    ($account:expr, $what:literal, $fut:expr) => {
        $fut.await.map_err(|e| {
            crate::step_failed(
                $account,
                $what,
                trailwarden_aws::sdk::sts::error::DisplayErrorContext(e),
            )
        })?
    };
}

pub mod attacks;
pub mod digest;
mod estate;
pub mod guarded;
pub mod organization;
pub mod recorder;

use serde::{Deserialize, Serialize};
use std::time::Duration;
use trailwarden_aws::{AccountConfig, AwsOptions, ClientFactory, Credentials};
use trailwarden_moto::{Fault, FaultProxy, MotoServer};

pub use estate::{
    ALARM, ALERT_SUBSCRIBER, ALERT_TOPIC, FLOW_LOG_GROUP, LOG_GROUP, METRIC_FILTER, RETENTION_RULE,
    alert_topic_arn, alert_topic_policy, cloudtrail_bucket_policy, cloudtrail_key_policy,
};
pub use trailwarden_moto;

/// The role the lab's operator assumes in every member account.
pub const ROLE_NAME: &str = "TrailwardenAudit";
/// Where every account's trails live.
pub const HOME_REGION: &str = "us-east-1";
/// The single-region trail some accounts also have.
pub const REGIONAL_TRAIL_REGION: &str = "eu-west-1";
/// The security account trailwarden's service runs in (separate from every member).
pub const SECURITY_ACCOUNT: &str = "100000000000";
/// The role trailwarden's service assumes in the security account.
pub const SECURITY_ROLE: &str = "TrailwardenWatch";
/// The role session name of trailwarden's service in the security account
/// ([`Lab::service_credentials`]).
pub const SERVICE_SESSION: &str = "watch-service";
/// The security account's central queue of forwarded CloudTrail events, and its dead letters.
pub const EVENT_QUEUE: &str = "trailwarden-events";
pub const DEAD_LETTER_QUEUE: &str = "trailwarden-events-dlq";
/// The rule on the security account's default bus that delivers forwarded events to the queue.
pub const FORWARDED_RULE: &str = "trailwarden-forwarded-events";

/// What to build.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Member accounts with trails, reachable by AssumeRole.
    pub accounts: usize,
    /// More member accounts whose AssumeRole is denied.
    pub denied_accounts: usize,
    /// How often recorded CloudTrail records are written to the trails' buckets.
    pub log_interval: Duration,
}

impl Default for LabSpec {
    fn default() -> Self {
        Self {
            accounts: 3,
            denied_accounts: 1,
            log_interval: Duration::from_secs(2),
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
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub key_arn: Option<String>,
    #[serde(default)]
    pub log_group: Option<String>,
    #[serde(default)]
    pub detector_id: Option<String>,
    #[serde(default)]
    pub vpc_id: Option<String>,
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
    /// The regions the emulated accounts have enabled (EC2 DescribeRegions).
    #[serde(default)]
    pub regions: Vec<String>,
    pub accounts: Vec<LabAccount>,
    /// Where trailwarden's service runs: the central queue and its dead-letter queue.
    pub security: SecurityAccount,
    /// The process serving the lab (for `trailwarden-lab down`).
    pub pid: u32,
    /// The key that signs the trails' digest files (log-file validation), as CloudTrail's
    /// `ListPublicKeys` gives it.
    #[serde(default)]
    pub digest_public_key: digest::DigestPublicKey,
}

/// The security account, reached by AssumeRole like the members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityAccount {
    pub id: String,
    pub role_name: String,
    pub role_arn: String,
    /// Member accounts may put events on it (events:PutPermission per member).
    pub event_bus_arn: String,
    /// The central queue: every "AWS API Call via CloudTrail" event that reaches the bus.
    pub queue_url: String,
    pub queue_arn: String,
    /// Messages the queue gave up on (5 receives).
    pub dead_letter_queue_url: String,
    pub dead_letter_queue_arn: String,
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

/// A running lab. Dropping it stops moto (when the lab started it); the proxy stops with the
/// tokio runtime.
#[derive(Debug)]
pub struct Lab {
    /// The moto the lab started, or `None` when it seeded one already running.
    pub moto: Option<MotoServer>,
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

/// The lab operator's credentials as a process takes them from its environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), for running trailwarden's binaries.
pub fn operator_env() -> Vec<(&'static str, String)> {
    let c = operator_credentials();
    vec![
        ("AWS_ACCESS_KEY_ID", c.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_owned()),
    ]
}

/// A role session's credentials (an STS AssumeRole answer) as a process takes them from its
/// environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
pub fn session_env(
    credentials: &trailwarden_aws::sdk::sts::types::Credentials,
) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id().to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            credentials.secret_access_key().to_owned(),
        ),
        ("AWS_SESSION_TOKEN", credentials.session_token().to_owned()),
    ]
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
    #[error("account {account}: {what}: {message}")]
    Seed {
        account: String,
        what: String,
        message: String,
    },
}

pub(crate) fn step_failed(account: &str, what: &str, e: impl std::fmt::Display) -> LabError {
    LabError::Seed {
        account: account.to_owned(),
        what: what.to_owned(),
        message: e.to_string(),
    }
}

impl Lab {
    /// Starts moto and the proxy and seeds the estate. Needs a tokio runtime (the proxy runs
    /// on it).
    pub async fn start(spec: &LabSpec) -> Result<Self, LabError> {
        Self::start_on(spec, None).await
    }

    /// [`Lab::start`] on a moto already running at `moto_endpoint` (a fresh one: the lab's
    /// accounts and names must not exist yet), or on a new one when `None`.
    pub async fn start_on(spec: &LabSpec, moto_endpoint: Option<&str>) -> Result<Self, LabError> {
        let moto = match moto_endpoint {
            Some(_) => None,
            None => Some(MotoServer::start()?),
        };
        let moto_endpoint = moto.as_ref().map_or_else(
            || moto_endpoint.unwrap_or_default().to_owned(),
            MotoServer::endpoint,
        );
        let proxy = FaultProxy::start(&moto_endpoint)
            .await
            .map_err(LabError::Proxy)?;
        // Seed moto directly, so the proxy's call counts show only what tests do.
        let factory = ClientFactory::new(&operator_options(&moto_endpoint)).await;
        let regions = enabled_regions(&factory.caller()).await?;
        let mut accounts = Vec::new();
        for n in 1..=spec.accounts {
            let id = account_id(n);
            let clients = factory
                .assume_role(&format!("arn:aws:iam::{id}:role/{ROLE_NAME}"))
                .await;
            // Variety for the inventory: the second account also has a regional trail that
            // was never started.
            let regional = n == 2;
            accounts.push(estate::seed_account(&clients, &id, regional).await?);
        }
        let members: Vec<String> = accounts.iter().map(|a: &LabAccount| a.id.clone()).collect();
        let security_clients = factory
            .assume_role(&format!(
                "arn:aws:iam::{SECURITY_ACCOUNT}:role/{SECURITY_ROLE}"
            ))
            .await;
        let security =
            estate::seed_security_account(&security_clients, SECURITY_ACCOUNT, &members).await?;
        // CloudTrail for the emulated estate: records to EventBridge and to the trails' buckets.
        recorder::start(&proxy, &moto_endpoint, spec.log_interval);
        // GuardDuty operations moto lacks answer as an account without filters or IP sets
        // would; attacks override them per detector.
        proxy.add(
            Fault::reply(r#"{"filterNames":[]}"#)
                .service("guardduty")
                .operation("ListFilters"),
        );
        proxy.add(
            Fault::reply(r#"{"ipSetIds":[]}"#)
                .service("guardduty")
                .operation("ListIPSets"),
        );
        for n in spec.accounts + 1..=spec.accounts + spec.denied_accounts {
            let id = account_id(n);
            proxy.add(Fault::deny_assume_role(&id));
            accounts.push(LabAccount {
                id,
                reachable: false,
                trails: Vec::new(),
                bucket: None,
                key_arn: None,
                log_group: None,
                detector_id: None,
                vpc_id: None,
            });
        }
        let description = LabDescription {
            endpoint: proxy.endpoint(),
            moto_endpoint: moto_endpoint.clone(),
            regions,
            role_name: ROLE_NAME.to_owned(),
            home_region: HOME_REGION.to_owned(),
            accounts,
            security,
            pid: std::process::id(),
            digest_public_key: digest::public_key(),
        };
        Ok(Self {
            moto,
            proxy,
            description,
        })
    }

    /// Clients acting in member account `account` as an attacker who holds a role there
    /// (straight to moto, so the proxy's counts show only trailwarden's calls).
    pub async fn attacker(&self, account: &str) -> AccountConfig {
        self.description.attacker(account).await
    }

    /// Whether the `management-events` trail of `account` logs, read straight from moto (not
    /// through the proxy, so trailwarden's call counts are not touched); `false` when it
    /// cannot be read.
    pub async fn trail_logging(&self, account: &str) -> bool {
        self.operator_in(account)
            .await
            .cloudtrail(HOME_REGION)
            .get_trail_status()
            .name("management-events")
            .send()
            .await
            .map(|s| s.is_logging().unwrap_or(false))
            .unwrap_or(false)
    }

    /// Reads the state of every member account as trailwarden's auditor does (through the
    /// proxy), in `regions`; with a `baseline`, also the resources it names.
    pub async fn read_state(
        &self,
        regions: &trailwarden_model::target::RegionSelection,
        baseline: Option<&trailwarden_aws::snapshot::Snapshots>,
    ) -> (
        Vec<trailwarden_aws::fanout::Account>,
        trailwarden_aws::snapshot::Snapshots,
    ) {
        let factory = ClientFactory::new(&operator_options(&self.description.endpoint)).await;
        let selection = trailwarden_aws::fanout::Selection {
            accounts: Some(
                self.description
                    .accounts
                    .iter()
                    .map(|a| a.id.parse().expect("lab account ids are valid"))
                    .collect(),
            ),
            role_name: Some(ROLE_NAME.into()),
            regions: regions.clone(),
            concurrency: 16,
            ..Default::default()
        };
        let state = trailwarden_engine::state::read_state(
            &factory,
            &selection,
            baseline.map_or(&[][..], |b| &b.accounts),
            &trailwarden_engine::state::no_progress,
        )
        .await
        .expect("the lab's operator can always resolve");
        (state.accounts, state.snapshots)
    }

    /// The credentials trailwarden's service (`watch`) runs with in the security account, as
    /// a process takes them from its environment ([`session_env`]): the operator assumes
    /// [`SECURITY_ROLE`] with the role session [`SERVICE_SESSION`]. Straight to moto, so the
    /// proxy's counts and the emulated CloudTrail do not see it.
    /// The lab operator's clients in member `account`, straight to moto (not counted by the
    /// proxy, not recorded by CloudTrail).
    pub(crate) async fn operator_in(&self, account: &str) -> AccountConfig {
        ClientFactory::new(&operator_options(&self.description.moto_endpoint))
            .await
            .assume_role(&format!("arn:aws:iam::{account}:role/{ROLE_NAME}"))
            .await
    }

    pub async fn service_credentials(&self) -> Result<Vec<(&'static str, String)>, LabError> {
        let security = &self.description.security;
        let factory = ClientFactory::new(&operator_options(&self.description.moto_endpoint)).await;
        let assumed = call!(
            &security.id,
            "AssumeRole",
            factory
                .caller()
                .sts(HOME_REGION)
                .assume_role()
                .role_arn(&security.role_arn)
                .role_session_name(SERVICE_SESSION)
                .send()
        );
        let credentials = assumed.credentials().ok_or_else(|| {
            step_failed(
                &security.id,
                "AssumeRole",
                "the answer holds no credentials",
            )
        })?;
        Ok(session_env(credentials))
    }

    /// Performs a technique of [`attacks::TECHNIQUES`] against a member account.
    pub async fn attack(&self, technique: &str, account: &str) -> Result<String, LabError> {
        self.attack_as(technique, account, &self.attacker(account).await)
            .await
    }

    /// Performs a technique with the given attacker's clients (a chosen role and session
    /// name, or calls that CloudTrail never records).
    pub async fn attack_as(
        &self,
        technique: &str,
        account: &str,
        attacker: &AccountConfig,
    ) -> Result<String, LabError> {
        let target = self.description.member(account)?;
        for fault in attacks::setup_faults(technique) {
            self.proxy.add_first(fault);
        }
        let done = attacks::perform(technique, attacker, target).await?;
        for fake in done.fakes {
            self.proxy.add_first(fake);
        }
        Ok(done.summary)
    }
}

impl LabDescription {
    /// A member account of the lab, or an error naming the ones there are.
    pub fn member(&self, account: &str) -> Result<&LabAccount, LabError> {
        self.accounts
            .iter()
            .find(|a| a.id == account && a.reachable)
            .ok_or_else(|| LabError::Seed {
                account: account.to_owned(),
                what: "lookup".into(),
                message: format!(
                    "not a reachable member account of this lab (accounts: {})",
                    self.account_list()
                ),
            })
    }

    /// Clients of an attacker holding a role in `account`. They go through the proxy, so
    /// CloudTrail (the recorder) sees every call, and carry `app/trailwarden-lab` so the
    /// proxy's call counts stay those of the tool under test.
    pub async fn attacker(&self, account: &str) -> AccountConfig {
        self.attacker_as(account, ATTACKER_ROLE, ATTACKER_SESSION, Recorded::Yes)
            .await
    }

    /// An attacker who has read trailwarden's code: assumes `role` in `account` with the
    /// session name `session` (`trailwarden-…`, or trailwarden's own role). With
    /// [`Recorded::No`] the calls go straight to moto: CloudTrail records none of them (the
    /// events are lost, as when every trail is stopped), so only a sweep can see the change.
    pub async fn attacker_as(
        &self,
        account: &str,
        role: &str,
        session: &str,
        recorded: Recorded,
    ) -> AccountConfig {
        let endpoint = match recorded {
            Recorded::Yes => &self.endpoint,
            Recorded::No => &self.moto_endpoint,
        };
        let mut options = operator_options(endpoint);
        options.app_name = Some("trailwarden-lab".into());
        options.static_credentials = Some(Credentials::new(
            "AKIALABATTACKER00001",
            "attacker-secret",
            None,
            None,
            "trailwarden-lab",
        ));
        ClientFactory::new(&options)
            .await
            .with_session_name(session)
            .assume_role(&format!("arn:aws:iam::{account}:role/{role}"))
            .await
    }
}

/// Whether CloudTrail (the lab's recorder) sees an attacker's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Yes,
    No,
}

/// Regions that need no opt-in or are opted in, as EC2 reports them.
async fn enabled_regions(clients: &AccountConfig) -> Result<Vec<String>, LabError> {
    let out = call!(
        "-",
        "DescribeRegions",
        clients
            .ec2(HOME_REGION)
            .describe_regions()
            .all_regions(true)
            .send()
    );
    let mut regions: Vec<String> = out
        .regions()
        .iter()
        .filter(|r| r.opt_in_status() != Some("not-opted-in"))
        .filter_map(|r| r.region_name().map(str::to_owned))
        .collect();
    regions.sort();
    Ok(regions)
}

/// The role the lab's attacks run as.
pub const ATTACKER_ROLE: &str = "compromised-admin";

/// The attacker's role session name (trailwarden's own sessions are `trailwarden-<time>`).
pub const ATTACKER_SESSION: &str = "mallory";
