//! Reads every record file of the third-party corpus (`shared/corpus`, described by its
//! MANIFEST.md and one `manifest.csv` per folder) and checks the counts the manifests state.
//!
//! The corpus lives outside the repository: set `TRAILWARDEN_CORPUS` to its directory (CI
//! sets `../shared/corpus`; a relative path is taken from the repository root). Without it
//! the test fails, naming the variable (`trailwarden_testkit::corpus`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::ops::ControlFlow;
use trailwarden_records::{Item, ReadOptions, Shape, read_path, walk};
use trailwarden_testkit::corpus;

/// The one file the corpus keeps broken on purpose (MANIFEST.md, section 3).
const MALFORMED: &str = "zmallen-cloudtrail2sightings/aws.execution.ec2-user-data.json";

/// The leading number of a cell: `"3 (by text count)"` is 3.
fn leading_number(cell: &str) -> Option<u64> {
    cell.split_whitespace().next()?.parse().ok()
}

/// What MANIFEST.md's table states for each folder.
#[derive(Debug)]
struct Stated {
    files: Option<u64>,
    records: u64,
    digests: u64,
}

fn stated_counts(manifest: &str) -> BTreeMap<String, Stated> {
    let mut out = BTreeMap::new();
    for line in manifest.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | folder | source | commit | licence | files | CloudTrail records |
        let (Some(folder), Some(files), Some(records)) = (cells.get(1), cells.get(5), cells.get(6))
        else {
            continue;
        };
        let folder = folder.trim_matches(|c| c == '`' || c == '/').to_owned();
        let words: Vec<&str> = records.split_whitespace().collect();
        let mut stated = Stated {
            files: leading_number(files),
            records: 0,
            digests: 0,
        };
        let mut any = false;
        for (i, word) in words.iter().enumerate() {
            let Ok(n) = word.parse::<u64>() else { continue };
            if words.get(i + 1).is_some_and(|w| w.starts_with("digest")) {
                stated.digests += n;
                any = true;
            } else if i == 0 {
                stated.records = n;
                any = true;
            }
        }
        if any {
            out.insert(folder, stated);
        }
    }
    out
}

#[derive(Debug, Default)]
struct Tally {
    files: u64,
    records: u64,
    digests: u64,
    errors: u64,
}

#[test]
fn every_corpus_record_file_reads_as_the_manifests_say() {
    let root = corpus::dir();
    let manifest = std::fs::read_to_string(root.join("MANIFEST.md")).expect("MANIFEST.md");
    let stated = stated_counts(&manifest);
    assert!(
        stated.len() >= 8,
        "MANIFEST.md table not understood: {stated:?}"
    );

    let options = ReadOptions::default();
    let mut problems = Vec::new();
    let mut total = Tally::default();
    let mut report = String::new();
    for (folder, stated) in &stated {
        let dir = root.join(folder);
        let rows = corpus::manifest(folder);
        if let Some(files) = stated.files {
            assert_eq!(
                rows.len() as u64,
                files,
                "{folder}: manifest.csv rows vs MANIFEST.md"
            );
        }
        let mut listed = BTreeSet::new();
        let mut tally = Tally::default();
        let mut manifest_records = 0;
        for row in &rows {
            let file = &row["file"];
            let name = format!("{folder}/{file}");
            let path = dir.join(file);
            listed.insert(path.clone());
            let kind = row.get("kind").map_or("", String::as_str);
            // Panther's manifest has no count column: one record per test.
            let count_cell = row.get("records").or_else(|| row.get("events"));
            let expected = match count_cell {
                _ if kind == "digest" => Some(0),
                Some(cell) => leading_number(cell),
                None => Some(1),
            };
            let expected = expected.unwrap_or_else(|| panic!("{name}: no record count in {row:?}"));
            manifest_records += expected;

            let mut records = 0u64;
            let mut errors = Vec::new();
            let summary = read_path(&path, &options, |item| {
                match item {
                    Item::Record { .. } => records += 1,
                    Item::Error(e) => errors.push(e.to_string()),
                }
                ControlFlow::Continue(())
            });
            tally.files += 1;
            tally.records += records;
            tally.digests += summary.digests;
            tally.errors += summary.errors;

            if name == MALFORMED {
                // `},` is missing after the first record: it is read, then the file ends.
                if errors.len() != 1 || !errors[0].contains(MALFORMED) || records != 1 {
                    problems.push(format!(
                        "{name}: want 1 record then 1 error naming the file, got {records} and {errors:?}"
                    ));
                }
            } else if kind == "digest" {
                if summary.shape != Some(Shape::Digest)
                    || summary.digests != 1
                    || !errors.is_empty()
                {
                    problems.push(format!(
                        "{name}: not recognised as a digest: {summary:?} {errors:?}"
                    ));
                }
            } else if !errors.is_empty() || records != expected {
                problems.push(format!(
                    "{name}: {records} records (manifest.csv says {expected}), errors: {errors:?}"
                ));
            }
        }

        // Every data file is in the manifest, so none is silently left out.
        for path in walk([&dir]) {
            let path = path.expect("corpus folders are readable");
            if path.file_name().is_some_and(|n| n != "manifest.csv") && !listed.contains(&path) {
                problems.push(format!(
                    "{} is not listed in {folder}/manifest.csv",
                    path.display()
                ));
            }
        }

        if manifest_records != stated.records {
            problems.push(format!(
                "{folder}: manifest.csv counts {manifest_records} records, MANIFEST.md says {}",
                stated.records
            ));
        }
        let unreadable = if folder.as_str() == MALFORMED.split('/').next().unwrap_or_default() {
            // By text count 3 records are in the broken file; only the first can be read.
            2
        } else {
            0
        };
        if tally.records + unreadable != stated.records || tally.digests != stated.digests {
            problems.push(format!(
                "{folder}: read {} records (+{unreadable} unreadable) and {} digests, \
                 MANIFEST.md says {} and {}",
                tally.records, tally.digests, stated.records, stated.digests
            ));
        }
        report.push_str(&format!(
            "corpus {folder}: {} files, {} records, {} digests, {} errors\n",
            tally.files, tally.records, tally.digests, tally.errors
        ));
        total.files += tally.files;
        total.records += tally.records;
        total.digests += tally.digests;
        total.errors += tally.errors;
    }
    report.push_str(&format!(
        "corpus total: {} files, {} records, {} digests, {} errors (1 expected)\n",
        total.files, total.records, total.digests, total.errors
    ));
    // Straight to stdout, past the test harness's capture, so CI logs show the counts.
    std::io::stdout()
        .write_all(report.as_bytes())
        .expect("stdout");
    assert!(
        problems.is_empty(),
        "corpus problems:\n{}",
        problems.join("\n")
    );
}
