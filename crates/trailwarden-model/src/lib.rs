//! Pure data types of trailwarden: findings and their outcomes, AWS targets (accounts,
//! regions, partitions), CloudTrail log-object keys, the trail inventory, and the clock.
//!
//! CloudTrail records have no type here: the readers (`trailwarden-records`) deliver them as
//! `serde_json::Value`, exactly as written, because that is what the Sigma rules evaluate and
//! what every consumer (scan, the guard, the Lambda) reads its fields from.
//!
//! This crate must not do I/O, talk to AWS or depend on the AWS SDK: it is shared by the
//! rules, the engine, the AWS layer and the binaries, and it must build in seconds and be
//! fuzzable on its own.

// A library returns errors and data: it neither panics on input nor prints.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

pub mod clock;
pub mod finding;
pub mod log_key;
pub mod organization;
pub mod outcome;
pub mod target;
pub mod technique;
pub mod trail;
