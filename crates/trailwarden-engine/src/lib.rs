//! trailwarden's response engine, between the pure crates and the binaries:
//!
//! - [`state`] reads the real state of accounts × regions (and turns a healthy one into a
//!   baseline);
//! - [`respond`] audits it against the baseline and restores it: plan → apply → verify →
//!   journal;
//! - [`guard`] decides what one forwarded event, one S3 log-file notification or one sweep
//!   leads to, for `trailwarden watch` and `trailwarden-lambda` alike; [`forwarding`] keeps
//!   trailwarden's own forwarding rules as part of the known-good state; [`notify`] delivers
//!   detections through the journal's outbox; [`metrics`] counts;
//! - [`scan`] runs the rule pack over CloudTrail records on every core;
//! - [`journal`] is the state store in which every action trailwarden takes, every detection
//!   and every handled event is recorded; [`incidents`] groups detections.
//!
//! AWS calls go through `trailwarden-aws` only: this crate builds no SDK client. It renders
//! nothing for people (no tables, no progress bars, no printing: it logs through `tracing`
//! and returns data), parses no command line, and never holds or writes credentials: the
//! journal stores what was called with which parameters, never the keys it was called with.

// A library returns errors and data: it neither panics on input nor prints.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

pub mod coverage;
pub mod forwarding;
pub mod guard;
pub mod incidents;
pub mod journal;
pub mod lanes;
pub mod metrics;
pub mod notify;
pub mod pinned;
pub mod provenance;
pub mod respond;
pub mod scan;
pub mod stack_templates;
pub mod state;

pub use journal::{
    Detection, Entry, Filter, FoundBy, Journal, JournalError, NewEntry, OwnCredential,
    PendingNotification, StepOutcome,
};
