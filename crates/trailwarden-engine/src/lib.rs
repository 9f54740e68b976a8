//! trailwarden's pipelines, between the pure crates and the binaries: [`scan`] runs the rule
//! pack over CloudTrail records on every core, and [`journal`] is the local state store in
//! which every action trailwarden takes, or declines to take, is recorded.
//!
//! This crate does not call AWS (inputs arrive as files or bytes; `trailwarden-aws` fetches
//! them). It must not hold credentials or write them anywhere: the journal stores what was
//! called with which parameters, never the keys it was called with. It must not render
//! output either; the binaries do that from [`journal::Entry`] and [`scan::SourceResult`].

pub mod incidents;
pub mod journal;
pub mod scan;

pub use journal::{
    Detection, Entry, Filter, Journal, JournalError, NewEntry, Outcome, PendingNotification,
};
