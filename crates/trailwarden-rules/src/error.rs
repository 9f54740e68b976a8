//! Load errors that name the rule file, the line and what is wrong.

use std::fmt;

/// A problem at a line of a rule file, before the file is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub line: usize,
    pub message: String,
}

impl Problem {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }

    /// A Sigma feature this engine does not implement: the rule is rejected, never half-used.
    pub fn unsupported(line: usize, feature: impl fmt::Display) -> Self {
        Self::new(line, format!("unsupported Sigma feature: {feature}"))
    }

    pub fn in_source(self, source: &str) -> LoadError {
        LoadError {
            file: source.to_owned(),
            line: self.line,
            message: self.message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A rule that cannot be loaded: `source:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct LoadError {
    /// The rule file (or `<built-in>/...` for the embedded pack).
    pub file: String,
    /// 1-based line in that file (0 when the file could not be read at all).
    pub line: usize,
    pub message: String,
}
