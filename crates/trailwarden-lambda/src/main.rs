//! `trailwarden-lambda`: trailwarden's guard as an AWS Lambda function (custom runtime,
//! `provided.al2023`), deployed in each account (or centrally, with `TRAILWARDEN_ROLE_NAME`).
//!
//! What it is for: the original design's "chain CloudWatch Events to a Lambda function that
//! re-enables logging to a known good state". Each "AWS API Call via CloudTrail" event that an
//! EventBridge rule delivers goes through the same guard as `trailwarden watch`
//! (`trailwarden::guard`): the rule pack, then a targeted restore of the baseline (plan →
//! apply → verify → journal). A "Scheduled Event" runs a sweep of the whole baseline against
//! reality, which catches what no event reports. The invocation returns a JSON summary; a
//! restore that fails returns an error, so Lambda's retries and on-failure destination take over.
//!
//! What it must not do: decide anything itself (detection, planning and restoring are the
//! library's), change the baseline (only `trailwarden baseline capture` writes it), act on a
//! failed attempt (`errorCode`) or on trailwarden's own calls, swallow a failed restore as
//! success, or start without a valid configuration: every environment variable is checked
//! at cold start and all mistakes are reported together before any event is taken.
//! Configuration is environment variables only; see `docs/lambda.md`.

mod config;
mod handler;

use anyhow::{Context, Result, bail};
use config::{BaselineSource, Config};
use handler::State;
use std::process::ExitCode;
use std::sync::Arc;
use tracing::{error, info};
use trailwarden_aws::fanout::Selection;
use trailwarden_aws::{AwsOptions, ClientFactory};
use trailwarden_engine::guard::{Guard, GuardSettings};
use trailwarden_engine::journal::Journal;
use trailwarden_engine::metrics::Metrics;
use trailwarden_engine::notify::Sinks;
use trailwarden_model::target::{AccountId, RegionSelection};
use trailwarden_posture::Baseline;

/// Exit code for "could not run" (as the CLI's).
const ERROR: u8 = 2;
/// Largest baseline read from S3.
const MAX_BASELINE_BYTES: u64 = 16 * 1024 * 1024;

fn main() -> ExitCode {
    let Some(runtime_api) = std::env::var_os("AWS_LAMBDA_RUNTIME_API") else {
        eprintln!(
            "trailwarden-lambda is an AWS Lambda function (custom runtime, provided.al2023): it \
             takes its events from the Lambda Runtime API, which AWS_LAMBDA_RUNTIME_API points \
             to, and that is not set here.\n\
             To guard an estate from a shell, use `trailwarden watch` (service mode) or \
             `trailwarden remediate`; to build and deploy this function, see docs/lambda.md."
        );
        return ExitCode::from(ERROR);
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(ERROR);
        }
    };
    let state = match runtime.block_on(cold_start()) {
        Ok(state) => state,
        Err(e) => {
            let message = format!("{e:#}");
            error!(error = %message, "cold start failed; no event is taken");
            report_init_error(&runtime_api.to_string_lossy(), &message);
            return ExitCode::from(ERROR);
        }
    };
    // The state lives as long as the process (a warm container reuses it).
    let state: &'static State = Box::leak(Box::new(state));
    let result = runtime.block_on(lambda_runtime::run(lambda_runtime::service_fn(
        move |event| handler::handle(state, event),
    )));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "the Lambda runtime stopped");
            ExitCode::from(ERROR)
        }
    }
}

/// JSON lines on stdout, which Lambda sends to CloudWatch Logs (one event per line, so
/// Logs Insights sees the fields). `RUST_LOG` overrides the level.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,lambda_runtime=warn")
    });
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .try_init();
}

/// Reads and checks everything an invocation needs, once per container.
async fn cold_start() -> Result<State> {
    let config = Config::from_env(|name| std::env::var(name).ok()).map_err(|errors| {
        anyhow::anyhow!(
            "invalid configuration ({} problem(s)): {}",
            errors.len(),
            errors.join("; ")
        )
    })?;
    let options = AwsOptions {
        endpoint_url: config.endpoint_url.clone(),
        ..AwsOptions::default()
    };
    let factory = ClientFactory::new(&options).await;
    // A packaged baseline is checked before anything is asked of AWS; one in S3 needs the
    // function's account first (the bucket's expected owner).
    let packaged = match &config.baseline {
        BaselineSource::File(path) => Some(
            trailwarden_engine::pinned::load_baseline(path, config.baseline_sha256.as_deref())
                .with_context(|| format!("TRAILWARDEN_BASELINE={}", config.baseline))?,
        ),
        BaselineSource::S3 { .. } => None,
    };
    let (own_account, principal) = trailwarden_aws::fanout::caller_identity(&factory)
        .await
        .map_err(|e| anyhow::anyhow!("the function's role: {e}"))?;
    let baseline = match packaged {
        Some(baseline) => baseline,
        None => load_baseline(&factory, &config, &own_account)
            .await
            .with_context(|| format!("TRAILWARDEN_BASELINE={}", config.baseline))?,
    };
    if baseline.accounts.is_empty() {
        bail!(
            "TRAILWARDEN_BASELINE={}: the baseline declares no account",
            config.baseline
        );
    }
    let dirs: Vec<&std::path::Path> = config.rules.iter().map(|p| p.as_path()).collect();
    let (rules, report) = trailwarden_rules::RuleSet::from_dirs(&dirs, true).map_err(|errors| {
        anyhow::anyhow!(
            "{}: {} rule file(s) could not be loaded: {}",
            match &config.rules {
                Some(dir) => format!("TRAILWARDEN_RULES={}", dir.display()),
                None => "the built-in rule pack".to_owned(),
            },
            errors.len(),
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    if let Some((file, why)) = report.skipped.first() {
        info!(skipped = report.skipped.len(), example = %file, why = %why,
            "rule files for other log sources than AWS CloudTrail skipped");
    }
    let journal = Journal::open(&config.state)
        .with_context(|| format!("TRAILWARDEN_STATE={}", config.state.display()))?;
    if config.role_name.is_none() && baseline.account(&own_account).is_none() {
        bail!(
            "TRAILWARDEN_BASELINE={}: the function runs in account {own_account}, which the baseline does not declare (it has {}); \
             capture this account too, or set TRAILWARDEN_ROLE_NAME to guard the baseline's accounts from here",
            config.baseline,
            baseline
                .accounts
                .iter()
                .map(|a| a.account.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    info!(
        account = %own_account,
        principal = %principal,
        baseline = %config.baseline,
        baseline_pinned = config.baseline_sha256.is_some(),
        baseline_accounts = baseline.accounts.len(),
        remediate = config.remediate,
        role_name = config.role_name.as_deref().unwrap_or("-"),
        regions = %match &config.regions {
            RegionSelection::AllEnabled => "all".to_owned(),
            RegionSelection::List(list) => list.join(","),
        },
        rules = rules.len(),
        state = %config.state.display(),
        notify_sns = config.notify_sns.as_deref().unwrap_or("-"),
        endpoint = config.endpoint_url.as_deref().unwrap_or("-"),
        "ready"
    );
    let mut settings = GuardSettings::new(
        config.remediate,
        config.role_name.clone(),
        Selection {
            accounts: None,
            role_name: config.role_name.clone(),
            regions: config.regions.clone(),
            concurrency: config.concurrency,
            ..Default::default()
        },
    );
    settings.verify_attempts = config.verify_attempts;
    // The function's own execution role: its calls are proven by the keys Lambda hands it.
    settings.own_role_names = trailwarden_aws::fanout::role_of_session(&principal)
        .map(str::to_owned)
        .into_iter()
        .collect();
    // The forwarding rules are the security account's concern (`watch --event-bus-arn`).
    settings.forwarding = None;
    let sinks = Sinks {
        sns_topics: config.notify_sns.iter().cloned().collect(),
        webhooks: Vec::new(),
        attempts: 3,
    };
    Ok(State {
        guard: Guard::new(
            factory,
            Arc::new(rules),
            Arc::new(baseline),
            Arc::new(journal),
            Arc::new(Metrics::default()),
            settings,
            sinks,
            None,
        ),
        webhooks: trailwarden_engine::notify::webhook_client(),
    })
}

/// The baseline, from the package or from S3 (whose bucket must belong to the expected owner:
/// S3 refuses the read otherwise), checked against its pinned SHA-256 when one is set.
async fn load_baseline(
    factory: &ClientFactory,
    config: &Config,
    own_account: &AccountId,
) -> Result<Baseline> {
    let pin = config.baseline_sha256.as_deref();
    match &config.baseline {
        BaselineSource::File(path) => Ok(trailwarden_engine::pinned::load_baseline(path, pin)?),
        BaselineSource::S3 { bucket, key } => {
            let caller = factory.caller();
            let owner = config
                .baseline_bucket_owner
                .clone()
                .unwrap_or_else(|| own_account.to_string());
            let region = trailwarden_aws::log_objects::bucket_region(
                &caller,
                factory.home_region(),
                bucket,
                Some(&owner),
            )
            .await?;
            let bytes = trailwarden_aws::log_objects::fetch(
                &caller,
                &region,
                bucket,
                key,
                MAX_BASELINE_BYTES,
                Some(&owner),
            )
            .await?;
            Ok(trailwarden_engine::pinned::baseline_from_bytes(
                &bytes,
                &config.baseline.to_string(),
                pin,
            )?)
        }
    }
}

/// Tells the Runtime API why initialisation failed (Lambda shows it as the init error); the
/// log line above has the same message. Best effort: the process exits either way.
fn report_init_error(runtime_api: &str, message: &str) {
    use std::io::{Read, Write};
    let body = serde_json::json!({"errorType": "Runtime.ConfigError", "errorMessage": message})
        .to_string();
    let Ok(mut stream) = std::net::TcpStream::connect(runtime_api) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let _ = write!(
        stream,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {runtime_api}\r\n\
         Lambda-Runtime-Function-Error-Type: Runtime.ConfigError\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut answer = [0u8; 256];
    let _ = stream.read(&mut answer);
}
