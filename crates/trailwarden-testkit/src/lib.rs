//! Dev-only: helpers shared by the workspace's tests, benches and examples.
//!
//! - [`isolated_command`]: runs a binary of the workspace with nothing of the developer's
//!   shell (no `AWS_*`, no `TRAILWARDEN_*`, no AWS config files, no instance metadata), only
//!   the credentials and settings the test gives it.
//! - [`corpus`]: the third-party CloudTrail corpus (`TRAILWARDEN_CORPUS`) and its record sets.
//! - [`iam_policy`]: the shipped IAM policies of `docs/iam/`, the IAM action of an API
//!   operation, and the check that every call a test saw is allowed by them.
//! - [`service`]: a service under test on loopback: HTTP requests, its metrics, a webhook
//!   receiver, a child killed when the test ends, waiting with a deadline.
//!
//! What it must not do: be a dependency of a shipped binary (it is only ever a
//! `[dev-dependencies]` entry, and `publish = false`), or assert what a particular test
//! expects. Its assertions are about the fixtures and invariants every test shares (a corpus
//! that is there, a call a policy allows); a test's own expectations stay in the test.
//! It depends on no other crate of the workspace, so the pure crates' tests stay free of the
//! AWS SDK and the lab.

pub mod bench;
pub mod corpus;
pub mod iam_policy;
pub mod isolated_command;
pub mod service;

pub use isolated_command::IsolatedCommand;
