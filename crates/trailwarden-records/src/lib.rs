//! Streaming readers for CloudTrail records, in every shape they arrive in.
//!
//! The shape is detected from the content, never from the file name ([`Shape`]):
//!
//! - a CloudTrail log file, `{"Records": [...]}`, as delivered to S3 (other top-level keys
//!   are checked for syntax and otherwise ignored);
//! - a JSON array of records (Stratus Red Team detonation logs);
//! - one record, possibly pretty-printed;
//! - an EventBridge event whose `detail-type` ends in "via CloudTrail"; the record is its
//!   `detail`;
//! - JSON Lines: one record, envelope or log file per line, blank lines allowed;
//! - several values one after the other, not one per line (as `jq` prints them).
//!
//! Any of these may be gzip-compressed, which is detected by the magic bytes; multi-member
//! gzip is read to its end. [`gzip`] is the one place in trailwarden's product crates that
//! decodes gzip, and it always stops at a size cap ([`ReadOptions::max_input_bytes`] here):
//! the objects come from a bucket an attacker may be able to write to. A UTF-8 byte order
//! mark at the start is skipped. A CloudTrail digest file is recognised and counted
//! ([`Shape::Digest`], [`Summary::digests`]): it holds no records, and it is not an error
//! either.
//!
//! Reading streams: each record is delivered as soon as it is read, a log file's `Records`
//! one at a time, so memory stays bounded by the largest record, which
//! [`ReadOptions::max_record_bytes`] caps. A record is delivered as a `serde_json::Value`,
//! exactly as written: an object is a record when it has any of CloudTrail's top-level keys
//! (in any case), and what its fields hold is for the rules to judge. A key written twice in
//! one object keeps its last value, as in serde_json. A small log file held whole can also be
//! split into its records without parsing them ([`LogFile`], after
//! [`gzip::decode_whole`]).
//!
//! Errors ([`ReadError`]) name the source and the position (record number, line, column and
//! byte offset of the decoded input). What happens next depends on the error:
//!
//! - a record over the size limit, text that is not UTF-8 inside a record, or a value that is
//!   not a CloudTrail record: that one is skipped, and reading goes on;
//! - broken JSON: in JSON Lines that line is skipped and reading goes on at the next line; in
//!   the other shapes (a log file, an array, a pretty-printed record) where the next record
//!   starts cannot be trusted, so reading of that source ends there, after the records
//!   before it were delivered;
//! - read errors, truncated or corrupt gzip, or more than [`ReadOptions::max_input_bytes`]
//!   of decoded input: reading ends, after the records decoded so far were delivered.
//!
//! JSON Lines are recognised when the first value fits on its line and the next one starts
//! on a later line. So if the *first* line is broken in a way that shows only on a later
//! line (an object left open), the input cannot be told from a broken pretty-printed
//! document, and reading ends with one error.
//!
//! This crate only reads the bytes and the files it is given: no AWS, no network, and no
//! judgement on the records (rules and integrity checks live elsewhere).

// A library returns errors and data: it neither panics on input nor prints.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

pub mod envelope;
mod error;
pub mod gzip;
mod input;
mod log_file;
mod reader;
mod walk;

pub use error::{ErrorKind, Position, ReadError};
pub use log_file::LogFile;
pub use reader::{Item, ReadOptions, Shape, Summary, read_path, read_records};
pub use walk::{Walk, walk};

#[cfg(test)]
mod tests;
