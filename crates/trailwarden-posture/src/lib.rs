//! Pure posture logic: the state snapshot of an account, the baseline file, and the audit
//! checks that compare what is with what must be (catalog sections A–F).
//!
//! This crate must not talk to AWS or do I/O beyond reading and writing a baseline file:
//! trailwarden-aws fills the snapshots, the binaries render the findings.

// A library returns errors and data: it neither panics on input nor prints.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

pub mod baseline;
pub mod bucket_policy;
pub mod checks;
pub mod estate;
#[cfg(test)]
mod fixtures;
pub mod plan;
pub mod selectors;
pub mod snapshot;

pub use baseline::{Baseline, BaselineError, Settings};
pub use checks::{audit_account, coverage_matrix, uncovered_regions};
pub use snapshot::AccountSnapshot;
