//! What went wrong, and where.

use std::fmt;
use std::io;

/// A place in a source. Lines and columns count from 1; columns and byte offsets count bytes
/// of the decoded input (after gunzip), as serde_json does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Which record of the source (1 for the first), counting every record slot, including
    /// the ones that failed; `None` outside any record (between values, a log file's wrapper).
    pub record: Option<u64>,
    /// Line number.
    pub line: u64,
    /// Column, in bytes from the start of the line.
    pub column: u64,
    /// Offset in bytes from the start of the decoded input.
    pub byte: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.record {
            Some(n) => write!(f, "record {n} (line {}, column {})", self.line, self.column),
            None => write!(f, "line {}, column {}", self.line, self.column),
        }
    }
}

/// One problem with one source. Displays as a single line:
/// `path/to/file.json.gz: record 17 (line 1, column 48213): record larger than the ...`.
#[derive(Debug)]
pub struct ReadError {
    /// The display name the caller gave for the source (a path, `<stdin>`, an S3 URL).
    pub source_name: String,
    /// Where in the source, when the problem is inside it.
    pub position: Option<Position>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl ReadError {
    pub(crate) fn new(source_name: &str, position: Option<Position>, kind: ErrorKind) -> Self {
        Self {
            source_name: source_name.to_owned(),
            position,
            kind,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.position {
            Some(position) => write!(f, "{}: {position}: {}", self.source_name, self.kind),
            None => write!(f, "{}: {}", self.source_name, self.kind),
        }
    }
}

// The message already carries the I/O error's text, so `source()` stays empty (no duplicates
// when a caller prints the chain).
impl std::error::Error for ReadError {}

/// The kinds of [`ReadError`]. Whether reading went on after the error depends on the kind and
/// the shape: see the crate documentation.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The path could not be opened.
    Open(io::Error),
    /// A directory could not be listed.
    ListDir(io::Error),
    /// A directory (reached through a symbolic link) is one of its own ancestors.
    SymlinkLoop,
    /// Reading failed.
    Io(io::Error),
    /// The gzip data stops before its end: a partial download or upload.
    TruncatedGzip,
    /// The gzip data is damaged (bad header, bad checksum, trailing garbage).
    CorruptGzip(io::Error),
    /// More decoded bytes than [`crate::ReadOptions::max_input_bytes`].
    InputTooLarge {
        /// The limit that was reached.
        limit: u64,
    },
    /// A compressed or binary format this crate does not read (zip, zstd, UTF-16 text...).
    UnsupportedFormat(&'static str),
    /// Not JSON where a JSON value should start.
    NotJson(String),
    /// Text that is not UTF-8.
    NotUtf8,
    /// Broken JSON; the message is serde_json's or names what was expected.
    Syntax(String),
    /// The input ends inside a JSON value.
    UnexpectedEnd,
    /// A record larger than [`crate::ReadOptions::max_record_bytes`]; it was skipped.
    RecordTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// Valid JSON, but not a CloudTrail record.
    NotCloudTrail(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open(e) => write!(f, "cannot open: {e}"),
            Self::ListDir(e) => write!(f, "cannot list directory: {e}"),
            Self::SymlinkLoop => f.write_str("symbolic link loop: directory is its own ancestor"),
            Self::Io(e) => write!(f, "read error: {e}"),
            Self::TruncatedGzip => {
                f.write_str("truncated gzip: unexpected end of file inside the compressed data")
            }
            Self::CorruptGzip(e) => write!(f, "corrupt gzip: {e}"),
            Self::InputTooLarge { limit } => {
                write!(
                    f,
                    "more than {limit} bytes of decoded input; stopped reading"
                )
            }
            Self::UnsupportedFormat(what) => f.write_str(what),
            Self::NotJson(what) => write!(f, "not JSON: {what}"),
            Self::NotUtf8 => f.write_str("not UTF-8 text"),
            Self::Syntax(message) => write!(f, "invalid JSON: {message}"),
            Self::UnexpectedEnd => f.write_str("unexpected end of input inside a JSON value"),
            Self::RecordTooLarge { limit } => {
                write!(f, "record larger than the {limit}-byte limit; skipped")
            }
            Self::NotCloudTrail(what) => write!(f, "not a CloudTrail record: {what}"),
        }
    }
}
