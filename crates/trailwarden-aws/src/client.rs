//! The client factory: one place that decides how every AWS client is configured.

use crate::own_sessions::{OwnSessions, Recording};
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Every role session trailwarden opens is named `trailwarden-<unix time>`, so its own calls can
/// be told apart in CloudTrail (together with the role name: a name alone proves nothing).
pub const SESSION_NAME_PREFIX: &str = "trailwarden";

/// The region used for account-wide calls (STS, region discovery) when none is configured.
const FALLBACK_REGION: &str = "us-east-1";

/// How to reach AWS. `Default` is what the CLI uses without flags.
#[derive(Debug, Clone)]
pub struct AwsOptions {
    /// A named profile of the shared config files (`--profile`); `None` uses the default chain.
    pub profile: Option<String>,
    /// Send every call here instead of AWS (`--endpoint-url`); `AWS_ENDPOINT_URL` also works.
    pub endpoint_url: Option<String>,
    /// Region for account-wide calls; `None` takes the chain's region, then us-east-1.
    pub region: Option<String>,
    /// Attempts per call, the first included; throttling and transient errors are retried
    /// with exponential backoff and jitter.
    pub max_attempts: u32,
    /// Limit for one call, all its retries included.
    pub call_timeout: Duration,
    /// Limit for one attempt of a call.
    pub attempt_timeout: Duration,
    pub connect_timeout: Duration,
    /// Fixed credentials instead of the chain: for emulators and tests only (the CLI never
    /// sets this). `Credentials` redacts its secret in `Debug`.
    pub static_credentials: Option<Credentials>,
    /// Added to the User-Agent as `app/<name>` (tells tools' traffic apart in CloudTrail).
    pub app_name: Option<String>,
}

impl Default for AwsOptions {
    fn default() -> Self {
        Self {
            profile: None,
            endpoint_url: None,
            region: None,
            max_attempts: 5,
            call_timeout: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
            static_credentials: None,
            app_name: None,
        }
    }
}

/// Builds configured clients for the caller's own credentials or for an assumed role.
#[derive(Debug, Clone)]
pub struct ClientFactory {
    base: SdkConfig,
    path_style_s3: bool,
    session_name: String,
    /// Every session handed out through this factory (and its clones).
    own: Arc<OwnSessions>,
}

impl ClientFactory {
    /// Loads the credential chain and applies the options. Does not call AWS.
    // The one place that loads an SDK configuration (clippy.toml bans it elsewhere).
    #[allow(clippy::disallowed_methods)]
    pub async fn new(options: &AwsOptions) -> Self {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(options.max_attempts.max(1))
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(options.connect_timeout)
                    .operation_attempt_timeout(options.attempt_timeout)
                    .operation_timeout(options.call_timeout)
                    .build(),
            );
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(credentials) = &options.static_credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        if let Some(app) = options
            .app_name
            .as_deref()
            .and_then(|a| aws_types::app_name::AppName::new(a.to_owned()).ok())
        {
            loader = loader.app_name(app);
        }
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let mut base = loader.load().await;
        if base.region().is_none() {
            base = base
                .to_builder()
                .region(Region::from_static(FALLBACK_REGION))
                .build();
        }
        // The caller's own keys are trailwarden's too: note each one handed out.
        let own = Arc::new(OwnSessions::default());
        if let Some(inner) = base.credentials_provider() {
            base = base
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(Recording {
                    inner,
                    role_arn: None,
                    sessions: own.clone(),
                }))
                .build();
        }
        // An endpoint override is an emulator or a proxy: bucket-in-hostname cannot work there.
        let path_style_s3 =
            base.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            base,
            path_style_s3,
            session_name: format!("{SESSION_NAME_PREFIX}-{unix}"),
            own,
        }
    }

    /// Another role session name (emulators and tests: an attacker must not look like
    /// trailwarden, whose sessions are `trailwarden-<time>`).
    pub fn with_session_name(mut self, name: &str) -> Self {
        self.session_name = name.to_owned();
        self
    }

    /// The region account-wide calls go to.
    pub fn home_region(&self) -> &str {
        self.base
            .region()
            .map(|r| r.as_ref())
            .unwrap_or(FALLBACK_REGION)
    }

    /// The role session name this run uses.
    pub fn session_name(&self) -> &str {
        &self.session_name
    }

    /// Clients with the caller's own credentials.
    pub fn caller(&self) -> AccountConfig {
        AccountConfig {
            config: self.base.clone(),
            path_style_s3: self.path_style_s3,
        }
    }

    /// Clients that assume `role_arn` (credentials are fetched on first use and refreshed;
    /// each session's key id is noted in [`ClientFactory::own_sessions`]).
    pub async fn assume_role(&self, role_arn: &str) -> AccountConfig {
        let provider = AssumeRoleProvider::builder(role_arn)
            .session_name(&self.session_name)
            .configure(&self.base)
            .build()
            .await;
        let recording = Recording {
            inner: SharedCredentialsProvider::new(provider),
            role_arn: Some(role_arn.to_owned()),
            sessions: self.own.clone(),
        };
        AccountConfig {
            config: self
                .base
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(recording))
                .build(),
            path_style_s3: self.path_style_s3,
        }
    }

    /// The sessions this factory has handed out: trailwarden's own credentials.
    pub fn own_sessions(&self) -> &Arc<OwnSessions> {
        &self.own
    }
}

/// One set of credentials; hands out clients for any region.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    config: SdkConfig,
    path_style_s3: bool,
}

// The one place that builds SDK clients (clippy.toml bans it elsewhere).
#[allow(clippy::disallowed_methods)]
impl AccountConfig {
    fn in_region(&self, region: &str) -> SdkConfig {
        self.config
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build()
    }

    pub fn cloudformation(&self, region: &str) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.in_region(region))
    }

    pub fn cloudtrail(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        aws_sdk_cloudtrail::Client::new(&self.in_region(region))
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.in_region(region))
    }

    pub fn sts(&self, region: &str) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.in_region(region))
    }

    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.in_region(region))
    }

    pub fn logs(&self, region: &str) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.in_region(region))
    }

    pub fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.in_region(region))
    }

    pub fn guardduty(&self, region: &str) -> aws_sdk_guardduty::Client {
        aws_sdk_guardduty::Client::new(&self.in_region(region))
    }

    pub fn config(&self, region: &str) -> aws_sdk_config::Client {
        aws_sdk_config::Client::new(&self.in_region(region))
    }

    pub fn eventbridge(&self, region: &str) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.in_region(region))
    }

    pub fn sqs(&self, region: &str) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.in_region(region))
    }

    pub fn organizations(&self, region: &str) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.in_region(region))
    }

    pub fn sns(&self, region: &str) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.in_region(region))
    }

    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.in_region(region))
            .force_path_style(self.path_style_s3)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}
