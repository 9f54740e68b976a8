//! The third-party CloudTrail corpus (real records of Stratus Red Team, Panther, SigmaHQ,
//! Cribl and others, described by its `MANIFEST.md` and one `manifest.csv` per folder).
//!
//! It lives outside the repository: `TRAILWARDEN_CORPUS` names its directory, and a relative
//! value is taken from the repository root (CI sets `TRAILWARDEN_CORPUS=../shared/corpus`).
//! A test that needs it fails loudly, naming the variable, when it is not there: it never
//! passes without having read it.

use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The variable that names the corpus directory.
pub const VARIABLE: &str = "TRAILWARDEN_CORPUS";

/// The Stratus Red Team detonation logs: one JSON array of records per technique.
pub const STRATUS_DETONATIONS: &str = "stratus-red-team/detonation-logs";

const HOW: &str = "set TRAILWARDEN_CORPUS to the third-party CloudTrail corpus directory (the \
                   one holding MANIFEST.md), e.g. `TRAILWARDEN_CORPUS=../shared/corpus cargo \
                   test` (a relative path is taken from the repository root; on the dev \
                   machines it is /work/shared/corpus)";

/// The repository root (this crate is `crates/trailwarden-testkit`).
fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The corpus directory `value` names: absolute as it is, relative from the repository root;
/// it must hold `MANIFEST.md`.
#[track_caller]
fn resolve(value: Option<OsString>) -> PathBuf {
    let Some(value) = value else {
        panic!("{VARIABLE} is not set: this test cannot run without the corpus; {HOW}");
    };
    let path = repository_root().join(&value);
    assert!(
        path.join("MANIFEST.md").is_file(),
        "{VARIABLE}={} but {} has no MANIFEST.md; {HOW}",
        value.to_string_lossy(),
        path.display()
    );
    path
}

/// The corpus directory, from `TRAILWARDEN_CORPUS`.
///
/// # Panics
///
/// When the variable is not set or names a directory without `MANIFEST.md`; the message names
/// the variable and how to set it.
#[track_caller]
pub fn dir() -> PathBuf {
    resolve(std::env::var_os(VARIABLE))
}

/// The CloudTrail records of one file of the corpus (`relative` to its directory, or an
/// absolute path): a JSON array of records, a log file's `{"Records": [...]}`, or one record.
pub fn records(relative: impl AsRef<Path>) -> Vec<Value> {
    let path = dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    records_of(doc).unwrap_or_else(|| panic!("{}: `Records` is not an array", path.display()))
}

fn records_of(doc: Value) -> Option<Vec<Value>> {
    match doc {
        Value::Array(items) => Some(items),
        Value::Object(mut o) if o.contains_key("Records") => match o.remove("Records") {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        },
        other => Some(vec![other]),
    }
}

/// Every record of every Stratus Red Team detonation ([`STRATUS_DETONATIONS`]).
pub fn stratus_detonations() -> Vec<Value> {
    record_files(STRATUS_DETONATIONS)
        .into_iter()
        .flat_map(records)
        .collect()
}

/// The files of one corpus folder that hold records: all but its `manifest.csv`, sorted.
pub fn record_files(folder: impl AsRef<Path>) -> Vec<PathBuf> {
    let folder = dir().join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
                .path()
        })
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "manifest.csv"))
        .collect();
    files.sort();
    files
}

/// The rows of a corpus folder's `manifest.csv`, each by its header's column names.
pub fn manifest(folder: impl AsRef<Path>) -> Vec<BTreeMap<String, String>> {
    let path = dir().join(folder).join("manifest.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    csv(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Rows of CSV text (RFC 4180: quoted fields may hold commas, doubled quotes and newlines),
/// keyed by the first row.
fn csv(text: &str) -> Result<Vec<BTreeMap<String, String>>, String> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    let mut rows = rows.into_iter();
    let header = rows.next().ok_or("no header row")?;
    rows.map(|r| {
        if r.len() == header.len() {
            Ok(header.iter().cloned().zip(r).collect())
        } else {
            Err(format!(
                "{} fields, the header has {}: {r:?}",
                r.len(),
                header.len()
            ))
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_absent_variable_fails_naming_it() {
        let panic = std::panic::catch_unwind(|| resolve(None)).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.starts_with("TRAILWARDEN_CORPUS is not set"),
            "{message}"
        );
    }

    #[test]
    fn a_directory_without_a_manifest_fails_naming_the_variable_and_the_path() {
        let panic =
            std::panic::catch_unwind(|| resolve(Some("no-such-corpus".into()))).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.starts_with("TRAILWARDEN_CORPUS=no-such-corpus but ")
                && message.contains("no-such-corpus has no MANIFEST.md"),
            "{message}"
        );
    }

    #[test]
    fn a_relative_value_is_taken_from_the_repository_root() {
        // The repository's own crates folder has no MANIFEST.md, so this fails, naming where
        // it looked.
        let panic = std::panic::catch_unwind(|| resolve(Some("crates".into()))).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        let looked = repository_root().join("crates");
        assert!(
            message.contains(&format!("{} has no MANIFEST.md", looked.display())),
            "{message}"
        );
    }

    #[test]
    fn records_come_from_arrays_log_files_and_single_records() {
        let r = json!({"eventName": "StopLogging"});
        for doc in [json!([r, r]), json!({"Records": [r, r]})] {
            assert_eq!(records_of(doc), Some(vec![r.clone(), r.clone()]));
        }
        assert_eq!(records_of(r.clone()), Some(vec![r.clone()]));
        assert_eq!(records_of(json!({"Records": "x"})), None);
    }

    #[test]
    fn csv_fields_may_hold_commas_quotes_and_newlines() {
        let rows = csv("file,note\r\na.json,\"x, \"\"y\"\"\nz\"\nb.json,\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["file"], "a.json");
        assert_eq!(rows[0]["note"], "x, \"y\"\nz");
        assert_eq!(rows[1]["note"], "");
        assert!(csv("a,b\n1\n").unwrap_err().contains("1 fields"));
    }
}
