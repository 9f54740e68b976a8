//! Pure data types of trailwarden: CloudTrail records, AWS targets (accounts, regions,
//! partitions) and the trail inventory.
//!
//! This crate must not do I/O, talk to AWS or depend on the AWS SDK: it is shared by the
//! readers, the rules, the AWS layer and the binaries, and it must build in seconds and be
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
pub mod outcome;
pub mod record;
pub mod target;
pub mod trail;
