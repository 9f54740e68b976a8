//! What became of a finding: the one vocabulary the responder, the journal's detections,
//! the metrics, the notifications and every output use.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The fate of one finding (one detection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A step changed the state and a read afterwards found it as the baseline says.
    Restored,
    /// The state was already as the baseline says: nothing to do.
    AlreadyGood,
    /// A step was applied (or tried) and the state is still wrong.
    NotRestored,
    /// Not restorable by trailwarden from here: a human must act (the detail says why).
    Escalated,
    /// Dry run: the restore that would be applied.
    Planned,
    /// Restorable, but the responder runs without remediation.
    NotRemediating,
    /// Nothing to put back (the technique leaves no state to restore).
    DetectOnly,
    /// The call failed (`errorCode`): reported, never acted on.
    FailedAttempt,
    /// trailwarden's own call, proven by its credentials: recorded, not an incident.
    OwnCall,
    /// The account is not one the baseline declares: nothing to restore it to.
    NotInBaseline,
}

impl Outcome {
    pub const ALL: [Outcome; 10] = [
        Self::Restored,
        Self::AlreadyGood,
        Self::NotRestored,
        Self::Escalated,
        Self::Planned,
        Self::NotRemediating,
        Self::DetectOnly,
        Self::FailedAttempt,
        Self::OwnCall,
        Self::NotInBaseline,
    ];

    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restored => "restored",
            Self::AlreadyGood => "already-good",
            Self::NotRestored => "not-restored",
            Self::Escalated => "escalated",
            Self::Planned => "planned",
            Self::NotRemediating => "not-remediating",
            Self::DetectOnly => "detect-only",
            Self::FailedAttempt => "failed-attempt",
            Self::OwnCall => "own-call",
            Self::NotInBaseline => "not-in-baseline",
        }
    }

    /// A restore was needed and did not happen: the message or sweep must be retried.
    pub fn is_failure(self) -> bool {
        self == Self::NotRestored
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeParseError(pub String);

impl fmt::Display for OutcomeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not an outcome (", self.0)?;
        for (i, o) in Outcome::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(o.as_str())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for OutcomeParseError {}

impl FromStr for Outcome {
    type Err = OutcomeParseError;

    /// Also reads the free-text spellings journals of trailwarden before 0.1 stored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(o) = Self::ALL.into_iter().find(|o| o.as_str() == s) {
            return Ok(o);
        }
        Ok(match s {
            "not restored" => Self::NotRestored,
            "detect only" => Self::DetectOnly,
            "detect only (forwarding rule intact)" => Self::AlreadyGood,
            "failed attempt" => Self::FailedAttempt,
            "trailwarden's own call" => Self::OwnCall,
            "account not in the baseline" | "not an account id" => Self::NotInBaseline,
            "restorable (not restoring: no --remediate)" => Self::NotRemediating,
            _ => return Err(OutcomeParseError(s.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(o));
            assert_eq!(
                serde_json::to_value(o).unwrap(),
                serde_json::Value::String(o.as_str().into())
            );
        }
    }

    #[test]
    fn old_free_text_spellings_are_read() {
        assert_eq!("not restored".parse(), Ok(Outcome::NotRestored));
        assert_eq!("trailwarden's own call".parse(), Ok(Outcome::OwnCall));
        let err = "maybe".parse::<Outcome>().unwrap_err().to_string();
        assert!(err.contains("restored, already-good"), "{err}");
    }
}
