//! Tests of the journal's public API, each on a fresh file in a temporary folder.

use serde_json::json;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use trailwarden_engine::journal::SCHEMA_VERSION;
use trailwarden_engine::{Entry, Filter, Journal, JournalError, NewEntry, StepOutcome};
use trailwarden_model::outcome::Outcome;

fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    (dir, path)
}

fn entry(run_id: &str, time: &str, account: &str) -> NewEntry {
    NewEntry {
        run_id: run_id.to_owned(),
        time: time.to_owned(),
        account: account.to_owned(),
        region: "us-east-1".to_owned(),
        resource: "arn:aws:cloudtrail:us-east-1:111111111111:trail/org".to_owned(),
        call: "cloudtrail:StartLogging".to_owned(),
        parameters: json!({"Name": "org"}),
        outcome: StepOutcome::Applied,
        error: None,
        finding: None,
    }
}

fn as_new(e: &Entry) -> NewEntry {
    NewEntry {
        run_id: e.run_id.clone(),
        time: e.time.clone(),
        account: e.account.clone(),
        region: e.region.clone(),
        resource: e.resource.clone(),
        call: e.call.clone(),
        parameters: e.parameters.clone(),
        outcome: e.outcome,
        error: e.error.clone(),
        finding: e.finding.clone(),
    }
}

fn all(journal: &Journal) -> Vec<Entry> {
    journal.list(&Filter::default()).unwrap()
}

fn times(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.time.as_str()).collect()
}

/// A raw connection, to look at or damage the file behind the journal's back.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn every_field_round_trips() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path).unwrap();
    let full = NewEntry {
        run_id: "run-7f3a".to_owned(),
        time: "2025-03-01T10:15:30.123Z".to_owned(),
        account: "222222222222".to_owned(),
        region: "eu-central-2".to_owned(),
        resource: "arn:aws:cloudtrail:eu-central-2:222222222222:trail/main".to_owned(),
        call: "cloudtrail:PutEventSelectors".to_owned(),
        parameters: json!({
            "TrailName": "main",
            "EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": true}],
            "Limit": 5,
            "Ratio": 0.5,
            "Nothing": null,
            "Unicode": "Zürich ✓ 'quoted' \"double\"",
        }),
        outcome: StepOutcome::NotRestored,
        error: Some("AccessDenied: not authorized to perform PutEventSelectors".to_owned()),
        finding: Some("trail.selectors-narrowed".to_owned()),
    };
    let bare = NewEntry {
        parameters: json!({}),
        outcome: StepOutcome::Skipped,
        ..entry("run-7f3a", "2025-03-01T10:15:00Z", "222222222222")
    };
    let full_id = journal.record(&full).unwrap();
    let bare_id = journal.record(&bare).unwrap();
    assert_ne!(full_id, bare_id);

    let got = all(&journal);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, full_id);
    assert_eq!(as_new(&got[0]), full);
    assert_eq!(got[1].id, bare_id);
    assert_eq!(as_new(&got[1]), bare);
    // The key order of the parameters is kept, so what is shown is what was called.
    let keys: Vec<&String> = got[0].parameters.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "TrailName",
            "EventSelectors",
            "Limit",
            "Ratio",
            "Nothing",
            "Unicode"
        ]
    );
}

#[test]
fn every_outcome_is_stored_and_read_back() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path).unwrap();
    for (i, outcome) in StepOutcome::ALL.into_iter().enumerate() {
        let time = format!("2025-01-01T00:00:0{i}Z");
        journal
            .record(&NewEntry {
                outcome,
                ..entry("r", &time, "111111111111")
            })
            .unwrap();
    }
    let mut stored: Vec<String> = raw(&path)
        .prepare("SELECT outcome FROM entries ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        stored,
        ["applied", "failed", "skipped", "verified", "notrestored"]
    );
    stored.reverse();
    let read: Vec<String> = all(&journal)
        .iter()
        .map(|e| e.outcome.to_string())
        .collect();
    assert_eq!(read, stored);
}

#[test]
fn entries_serialize_with_lowercase_outcomes() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path).unwrap();
    let id = journal
        .record(&NewEntry {
            outcome: StepOutcome::NotRestored,
            finding: Some("trail-logging-stopped".to_owned()),
            ..entry("r", "2025-01-01T00:00:00Z", "111111111111")
        })
        .unwrap();
    let value = serde_json::to_value(&all(&journal)[0]).unwrap();
    assert_eq!(value["id"], json!(id));
    assert_eq!(value["outcome"], json!("notrestored"));
    assert_eq!(value["parameters"], json!({"Name": "org"}));
    assert_eq!(value["finding"], json!("trail-logging-stopped"));
    assert_eq!(value["error"], json!(null));
}

#[test]
fn newest_first_and_limit() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path).unwrap();
    // Recorded out of time order; two share a time, and then the later row is newer.
    for time in [
        "2025-01-02T00:00:00Z",
        "2025-01-01T00:00:00Z",
        "2025-01-03T00:00:00Z",
        "2025-01-02T00:00:00Z",
    ] {
        journal.record(&entry("r", time, "111111111111")).unwrap();
    }
    let got = all(&journal);
    assert_eq!(
        times(&got),
        [
            "2025-01-03T00:00:00Z",
            "2025-01-02T00:00:00Z",
            "2025-01-02T00:00:00Z",
            "2025-01-01T00:00:00Z"
        ]
    );
    assert!(got[1].id > got[2].id, "equal times: the later row first");

    let limited = journal
        .list(&Filter {
            limit: Some(2),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(limited, got[..2]);
    let none = journal
        .list(&Filter {
            limit: Some(0),
            ..Filter::default()
        })
        .unwrap();
    assert!(none.is_empty());
    let more_than_there_are = journal
        .list(&Filter {
            limit: Some(usize::MAX),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(more_than_there_are, got);
}

#[test]
fn filters_by_account_run_and_since() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path).unwrap();
    let a = "111111111111";
    let b = "222222222222";
    journal
        .record(&entry("run-1", "2025-01-01T00:00:00Z", a))
        .unwrap();
    journal
        .record(&entry("run-1", "2025-01-01T00:00:01Z", b))
        .unwrap();
    journal
        .record(&entry("run-2", "2025-01-02T00:00:00Z", a))
        .unwrap();
    journal
        .record(&entry("run-2", "2025-01-03T00:00:00Z", b))
        .unwrap();

    let list = |filter: Filter| journal.list(&filter).unwrap();
    let by_account = list(Filter {
        account: Some(a.to_owned()),
        ..Filter::default()
    });
    assert_eq!(
        times(&by_account),
        ["2025-01-02T00:00:00Z", "2025-01-01T00:00:00Z"]
    );
    assert!(by_account.iter().all(|e| e.account == a));

    let by_run = list(Filter {
        run_id: Some("run-1".to_owned()),
        ..Filter::default()
    });
    assert_eq!(
        times(&by_run),
        ["2025-01-01T00:00:01Z", "2025-01-01T00:00:00Z"]
    );

    // `since` is inclusive.
    let since = list(Filter {
        since: Some("2025-01-02T00:00:00Z".to_owned()),
        ..Filter::default()
    });
    assert_eq!(
        times(&since),
        ["2025-01-03T00:00:00Z", "2025-01-02T00:00:00Z"]
    );

    let combined = list(Filter {
        account: Some(b.to_owned()),
        run_id: Some("run-2".to_owned()),
        since: Some("2025-01-01T00:00:00Z".to_owned()),
        limit: Some(10),
    });
    assert_eq!(times(&combined), ["2025-01-03T00:00:00Z"]);

    let nothing = list(Filter {
        account: Some("333333333333".to_owned()),
        ..Filter::default()
    });
    assert!(nothing.is_empty());
}

#[test]
fn reopening_keeps_the_data() {
    let (_dir, path) = temp_db();
    let first = {
        let journal = Journal::open(&path).unwrap();
        journal
            .record(&entry("r", "2025-01-01T00:00:00Z", "111111111111"))
            .unwrap();
        all(&journal)
    };
    let journal = Journal::open(&path).unwrap();
    assert_eq!(all(&journal), first);
    let id = journal
        .record(&entry("r", "2025-01-02T00:00:00Z", "111111111111"))
        .unwrap();
    assert!(id > first[0].id);
    assert_eq!(all(&journal).len(), 2);
}

#[test]
fn open_creates_folders_schema_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/state.db");
    let journal = Journal::open(&path).unwrap();
    assert!(path.is_file());
    assert_eq!(journal.path(), path);

    let conn = raw(&path);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'entries' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        ["entries_account_time", "entries_run", "entries_time"]
    );
}

#[test]
fn two_handles_on_one_file_interleave() {
    let (_dir, path) = temp_db();
    let cli = Journal::open(&path).unwrap();
    let service = Journal::open(&path).unwrap();
    let mut ids = Vec::new();
    for (i, journal) in [&cli, &service, &cli, &service].into_iter().enumerate() {
        let time = format!("2025-01-01T00:00:0{i}Z");
        ids.push(
            journal
                .record(&entry(&format!("run-{i}"), &time, "111111111111"))
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");
    for journal in [&cli, &service] {
        let runs: Vec<String> = all(journal).into_iter().map(|e| e.run_id).collect();
        assert_eq!(runs, ["run-3", "run-2", "run-1", "run-0"]);
    }
}

#[test]
fn concurrent_writers_wait_instead_of_failing() {
    let (_dir, path) = temp_db();
    // Create the schema first, so both threads race only on inserts.
    drop(Journal::open(&path).unwrap());
    const PER_THREAD: usize = 100;
    std::thread::scope(|s| {
        for writer in ["cli", "service"] {
            let path = &path;
            s.spawn(move || {
                let journal = Journal::open(path).unwrap();
                for i in 0..PER_THREAD {
                    journal
                        .record(&entry(writer, "2025-01-01T00:00:00Z", "111111111111"))
                        .unwrap_or_else(|e| panic!("{writer} write {i}: {e}"));
                }
            });
        }
    });
    let journal = Journal::open(&path).unwrap();
    for writer in ["cli", "service"] {
        let rows = journal
            .list(&Filter {
                run_id: Some(writer.to_owned()),
                ..Filter::default()
            })
            .unwrap();
        assert_eq!(rows.len(), PER_THREAD, "{writer}");
    }
}

#[cfg(unix)]
#[test]
fn the_state_store_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path).unwrap();
    journal
        .record(&entry("r", "2025-01-01T00:00:00Z", "111111111111"))
        .unwrap();
    for file in [
        path.clone(),
        PathBuf::from(format!("{}-wal", path.display())),
    ] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: {mode:o}", file.display());
    }
}

#[test]
fn concurrent_first_opens_create_the_schema_once() {
    let (_dir, path) = temp_db();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let journal = Journal::open(&path).unwrap();
                journal
                    .record(&entry("r", "2025-01-01T00:00:00Z", "111111111111"))
                    .unwrap();
            });
        }
    });
    assert_eq!(all(&Journal::open(&path).unwrap()).len(), 4);
}

#[test]
fn a_corrupt_file_is_an_error_naming_the_path() {
    let (_dir, path) = temp_db();
    // Pseudo-random bytes (xorshift), the same on every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(&path, &bytes).unwrap();

    let err = Journal::open(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, JournalError::Sqlite { .. }), "{err:?}");
    assert!(
        message.starts_with(&format!("journal {}: ", path.display())),
        "{message}"
    );
    assert!(message.contains("file is not a database"), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is left alone"
    );
}

#[test]
fn a_newer_schema_is_refused_not_downgraded() {
    let (_dir, path) = temp_db();
    {
        let journal = Journal::open(&path).unwrap();
        journal
            .record(&entry("r", "2025-01-01T00:00:00Z", "111111111111"))
            .unwrap();
    }
    let newer = SCHEMA_VERSION + 1;
    raw(&path)
        .pragma_update(None, "user_version", newer)
        .unwrap();

    let err = Journal::open(&path).unwrap_err();
    match &err {
        JournalError::NewerSchema { found, known, .. } => {
            assert_eq!((*found, *known), (newer, SCHEMA_VERSION));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains(&format!("version {newer}")), "{message}");
    assert!(
        message.contains(&format!("version {SCHEMA_VERSION}")),
        "{message}"
    );

    let version: i64 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, newer, "the version is left as it was");
}

#[test]
fn another_programs_database_is_refused() {
    let (_dir, path) = temp_db();
    raw(&path)
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep');")
        .unwrap();

    let err = Journal::open(&path).unwrap_err();
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let tables: i64 = raw(&path)
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "no journal table was added");
}

#[test]
fn parameters_that_look_like_secrets_are_refused() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path).unwrap();
    let cases = [
        (
            json!({"SecretAccessKey": "wJalrXUtnFEMI"}),
            "SecretAccessKey",
            "wJalrXUtnFEMI",
        ),
        (
            json!({"sessionToken": "FwoGZXIvYXdz"}),
            "sessionToken",
            "FwoGZXIvYXdz",
        ),
        (
            json!({"Name": "t", "PASSWORD": "hunter2"}),
            "PASSWORD",
            "hunter2",
        ),
        (
            json!({"Config": {"client_secret": "s3cr3t"}}),
            "Config.client_secret",
            "s3cr3t",
        ),
    ];
    for (parameters, key, secret) in cases {
        let err = journal
            .record(&NewEntry {
                parameters,
                ..entry("r", "2025-01-01T00:00:00Z", "111111111111")
            })
            .unwrap_err();
        match &err {
            JournalError::SecretParameter { key: found, .. } => assert_eq!(found, key),
            other => panic!("expected SecretParameter for {key}, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(key), "{message}");
        assert!(!message.contains(secret), "the value leaked: {message}");
    }
    assert!(all(&journal).is_empty(), "nothing was written");

    // Ordinary CloudTrail parameters pass.
    journal
        .record(&NewEntry {
            parameters: json!({"Name": "org", "KmsKeyId": "alias/trail", "S3BucketName": "logs"}),
            ..entry("r", "2025-01-01T00:00:00Z", "111111111111")
        })
        .unwrap();
    assert_eq!(all(&journal).len(), 1);
}

#[test]
fn handled_events_are_remembered_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let journal = Journal::open(&path).unwrap();
    assert!(!journal.event_handled("111111111111", "e-1").unwrap());
    journal
        .mark_event_handled(
            "111111111111",
            "e-1",
            "2026-11-28T10:00:00Z",
            Some(Outcome::Restored),
        )
        .unwrap();
    journal
        .mark_event_handled(
            "111111111111",
            "e-1",
            "2026-11-28T10:00:01Z",
            Some(Outcome::Restored),
        )
        .unwrap();
    drop(journal);
    let journal = Journal::open(&path).unwrap();
    assert!(journal.event_handled("111111111111", "e-1").unwrap());
    assert!(!journal.event_handled("111111111111", "e-2").unwrap());
    // The same eventID in another account is another event (a forged copy cannot pre-empt it).
    assert!(!journal.event_handled("222222222222", "e-1").unwrap());
    assert_eq!(
        journal.accounts_that_handled("e-1").unwrap(),
        vec!["111111111111".to_owned()]
    );
    assert!(journal.accounts_that_handled("e-%").unwrap().is_empty());
}

#[test]
fn the_notification_outbox_retries_then_sends_or_gives_up_and_survives_reopening() {
    let (_dir, path) = temp_db();
    {
        let journal = Journal::open(&path).unwrap();
        journal
            .queue_notification(
                "webhook:http://127.0.0.1:1/x",
                "{\"n\":1}",
                "2026-11-28T10:00:00Z",
            )
            .unwrap();
        journal
            .queue_notification(
                "sns:arn:aws:sns:us-east-1:1:t",
                "{\"n\":2}",
                "2026-11-28T10:00:00Z",
            )
            .unwrap();
    }
    // Reopened (a restart): both still pending, oldest first.
    let journal = Journal::open(&path).unwrap();
    let due = journal.due_notifications(1_000, 10).unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].payload, "{\"n\":1}");
    assert_eq!(due[0].attempts, 0);
    // The first fails and is retried at 1002: not due before.
    journal
        .notification_attempted(due[0].id, Some("HTTP 503"), Some(1_002))
        .unwrap();
    journal
        .notification_attempted(due[1].id, None, None)
        .unwrap();
    assert!(journal.due_notifications(1_001, 10).unwrap().is_empty());
    let again = journal.due_notifications(1_002, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(journal.notification_counts().unwrap(), (1, 1, 0));
    // Given up: kept, but never due again.
    journal
        .notification_attempted(again[0].id, Some("HTTP 503"), None)
        .unwrap();
    assert!(
        journal
            .due_notifications(u64::MAX / 2, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(journal.notification_counts().unwrap(), (0, 1, 1));
}

#[test]
fn a_retried_detection_updates_its_outcome_instead_of_adding_a_row() {
    let (_dir, path) = temp_db();
    let journal = Journal::open(&path).unwrap();
    let detection = |event_id: Option<&str>, outcome: &str| trailwarden_engine::Detection {
        event_time: "2026-11-28T10:00:00Z".into(),
        account: "111111111111".into(),
        region: "us-east-1".into(),
        rule_id: "trail-stop-logging".into(),
        severity: "high".into(),
        event_id: event_id.map(str::to_owned),
        event_name: Some("StopLogging".into()),
        actor: Some("arn:aws:sts::111111111111:assumed-role/x/mallory".into()),
        access_key: None,
        source_ip: None,
        outcome: outcome.parse().unwrap(),
        title: "CloudTrail logging stopped".into(),
        technique: Some("A1".into()),
        resource: None,
        found_by: trailwarden_engine::FoundBy::Event,
    };
    assert!(
        journal
            .record_detection(&detection(Some("e1"), "not restored"))
            .unwrap()
    );
    // The same attempt again: nothing new.
    assert!(
        !journal
            .record_detection(&detection(Some("e1"), "not restored"))
            .unwrap()
    );
    // The retry restored it: the row's outcome changes.
    assert!(
        journal
            .record_detection(&detection(Some("e1"), "restored"))
            .unwrap()
    );
    // Without an event id nothing identifies a repeat: each is kept.
    assert!(
        journal
            .record_detection(&detection(None, "restored"))
            .unwrap()
    );
    assert!(
        journal
            .record_detection(&detection(None, "restored"))
            .unwrap()
    );
    let all = journal.detections(None).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].outcome, Outcome::Restored);
    assert_eq!(all[0].event_id.as_deref(), Some("e1"));
}
