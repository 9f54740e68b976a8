//! The only crate of trailwarden that talks to AWS.
//!
//! Every AWS call of the project goes through [`ClientFactory`]: it applies the credential
//! chain, `--profile`, `--endpoint-url` (or `AWS_ENDPOINT_URL`), timeouts and retries with
//! backoff, and it assumes roles into member accounts. [`fanout`] turns a selection of
//! accounts × regions into concrete targets and runs work over them with bounded concurrency;
//! a target that fails becomes a [`Gap`](trailwarden_model::target::Gap) and never stops the
//! others. [`trails`] reads the trail inventory.
//!
//! This crate must not decide what is good or bad (that is the rules' and the engine's job) and
//! must not print: it returns data and gaps.

// A library returns errors and data: it neither panics on input nor prints.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod client;
mod failure;
pub mod fanout;
pub mod forwarding;
pub mod log_objects;
pub mod organization;
pub mod own_sessions;
pub mod queue;
pub mod restore;
pub mod snapshot;
pub mod stack_sets;
pub mod topics;
pub mod trails;

pub use aws_credential_types::Credentials;
pub use client::{AccountConfig, AwsOptions, ClientFactory, SESSION_NAME_PREFIX};
pub use failure::{CallError, GapScope, gap_from_sdk};
pub use own_sessions::{OwnSession, OwnSessions};

/// The SDK service crates, for dev tooling (the lab, tests) that must make raw calls through
/// this crate's clients instead of depending on the SDK itself.
pub mod sdk {
    pub use aws_sdk_cloudformation as cloudformation;
    pub use aws_sdk_cloudtrail as cloudtrail;
    pub use aws_sdk_cloudwatch as cloudwatch;
    pub use aws_sdk_cloudwatchlogs as logs;
    pub use aws_sdk_config as config;
    pub use aws_sdk_ec2 as ec2;
    pub use aws_sdk_eventbridge as eventbridge;
    pub use aws_sdk_guardduty as guardduty;
    pub use aws_sdk_kms as kms;
    pub use aws_sdk_organizations as organizations;
    pub use aws_sdk_s3 as s3;
    pub use aws_sdk_sqs as sqs;
    pub use aws_sdk_sts as sts;
}
