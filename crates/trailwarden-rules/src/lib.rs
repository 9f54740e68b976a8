//! Detection rules for CloudTrail records in the Sigma format, and trailwarden's built-in
//! tamper rule pack (`rules/` at the workspace root, embedded at build time).
//!
//! Rules are compiled once ([`RuleSet`]); evaluating a record walks the compiled matchers
//! over a `serde_json::Value` and allocates nothing in the common case. Rules are indexed by
//! the `eventName`s they can match, so a record is only shown to the rules that could fire,
//! and [`RuleSet::may_match`] lets a reader skip parsing records no rule wants.
//!
//! Supported Sigma: `logsource` (AWS CloudTrail rules; others are skipped and counted), named
//! selections (field maps, lists of maps, keyword lists), dotted field paths through objects
//! and arrays, `null`/boolean/number values, `*`/`?` wildcards, the modifiers `contains`,
//! `startswith`, `endswith`, `all`, `re` (with `i`, `m`, `s`), `cidr`, `exists`, `lt`,
//! `lte`, `gt`, `gte`, `cased` and `fieldref`, and the full condition grammar without
//! aggregation. Anything else is rejected when the rule loads, with the file, the line and
//! the feature named ([`LoadError`]) — never silently ignored.
//!
//! trailwarden's extension block `trailwarden:` carries the tamper-catalog reference, whether
//! restoring state undoes the technique, and the rule's own test cases ([`RuleSet::run_tests`]).
//!
//! This crate is pure: no AWS, no files except those it is asked to load, no output.

// A library returns errors and data: it neither panics on input nor prints.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod condition;
mod detection;
mod error;
mod finding;
mod pack;
mod rule;
mod yaml;

pub use error::LoadError;
pub use finding::event_finding;
pub use pack::{ForwardedEvents, Lint, LoadReport, RuleSet, TestOutcome};
pub use rule::{Remediation, Rule, RuleTest, Verdict};

#[cfg(test)]
mod tests;
