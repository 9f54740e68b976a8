//! Trusted inputs, pinned: the baseline decides what the guard restores, so an attacker who
//! can write the file (or the bucket it is read from) must not be able to make the guard
//! learn their state as good. A baseline can be pinned by its SHA-256, given where the
//! attacker cannot reach it (the service's command line, the function's configuration).
//! The hash is over the bytes as read, never over a re-serialisation.

use sha2::{Digest, Sha256};
use std::path::Path;
use trailwarden_posture::Baseline;
use trailwarden_posture::baseline::BaselineError;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(
        "{source_name}: SHA-256 {actual} is not the pinned {expected}: the baseline was changed since it was pinned; refusing to start (review the change, then pin the new hash)"
    )]
    Mismatch {
        source_name: String,
        expected: String,
        actual: String,
    },
    #[error("{0:?} is not a SHA-256 (64 hexadecimal digits)")]
    NotASha256(String),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error("{source_name}: the baseline is not UTF-8 text")]
    NotText { source_name: String },
}

/// Lower-case hexadecimal SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A pin as given: 64 hexadecimal digits, any case, `sha256:` prefix allowed.
pub fn parse_pin(text: &str) -> Result<String, PinError> {
    let hex = text
        .trim()
        .trim_start_matches("sha256:")
        .to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(PinError::NotASha256(text.to_owned()))
    }
}

/// The baseline in `bytes` (read from `source_name`), checked against `pin` when one is given.
pub fn baseline_from_bytes(
    bytes: &[u8],
    source_name: &str,
    pin: Option<&str>,
) -> Result<Baseline, PinError> {
    if let Some(pin) = pin {
        let expected = parse_pin(pin)?;
        let actual = sha256_hex(bytes);
        if actual != expected {
            return Err(PinError::Mismatch {
                source_name: source_name.to_owned(),
                expected,
                actual,
            });
        }
    }
    let text = std::str::from_utf8(bytes).map_err(|_| PinError::NotText {
        source_name: source_name.to_owned(),
    })?;
    Ok(Baseline::from_toml(text, source_name)?)
}

/// The baseline file at `path`, checked against `pin` when one is given.
pub fn load_baseline(path: &Path, pin: Option<&str>) -> Result<Baseline, PinError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| BaselineError::Read {
        path: shown.clone(),
        source,
    })?;
    baseline_from_bytes(&bytes, &shown, pin)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "format = 1\ncaptured_at = \"x\"\ncaptured_by = \"t\"\n";

    #[test]
    fn a_pinned_baseline_loads_only_unchanged() {
        let pin = sha256_hex(TEXT.as_bytes());
        assert!(baseline_from_bytes(TEXT.as_bytes(), "b.toml", Some(&pin)).is_ok());
        assert!(
            baseline_from_bytes(
                TEXT.as_bytes(),
                "b.toml",
                Some(&format!("sha256:{}", pin.to_uppercase()))
            )
            .is_ok()
        );
        let tampered = TEXT.replace("captured_by = \"t\"", "captured_by = \"mallory\"");
        let err = baseline_from_bytes(tampered.as_bytes(), "b.toml", Some(&pin))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.toml") && err.contains("refusing to start"),
            "{err}"
        );
        // Unpinned, anything parseable loads.
        assert!(baseline_from_bytes(tampered.as_bytes(), "b.toml", None).is_ok());
        assert!(matches!(
            baseline_from_bytes(TEXT.as_bytes(), "b.toml", Some("abc")),
            Err(PinError::NotASha256(_))
        ));
    }

    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
