//! The acting side of trailwarden. For now it holds one thing: the local state store, the
//! [`journal`] in which every action trailwarden takes, or declines to take, is recorded.
//!
//! This crate must not hold credentials or write them anywhere: the journal stores what was
//! called with which parameters, never the keys it was called with. It must not render
//! output either; the binaries do that from [`journal::Entry`] values.

pub mod journal;

pub use journal::{Entry, Filter, Journal, JournalError, NewEntry, Outcome};
