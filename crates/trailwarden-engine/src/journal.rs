//! The journal: a local SQLite file holding one row per action trailwarden took or declined
//! to take (restoring a trail's logging, verifying it, skipping it), so that every change it
//! makes to an account can be shown and audited afterwards.
//!
//! Several processes may write the same file at once (the CLI and a long-running service):
//! the file is in WAL mode and every handle waits up to [`BUSY_TIMEOUT`] for a lock. One
//! [`Journal`] belongs to one thread; open another handle for another thread.
//!
//! The schema is versioned with `PRAGMA user_version` and the file is marked with
//! `PRAGMA application_id`. Opening a file written by a newer trailwarden is refused, never
//! downgraded; opening a SQLite file that belongs to something else is refused, never written.
//!
//! **No secrets.** Callers must not pass credentials in [`NewEntry::parameters`] (or in any
//! other field): the journal is a plain file that people read and share. As a guard,
//! [`Journal::record`] refuses parameters with a key that looks like a secret.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, ToSql, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use trailwarden_model::finding::Finding;
use trailwarden_model::outcome::Outcome;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 5;

/// How long a write waits for another process's lock before it fails. Writes are single
/// short inserts, so a wait this long means something is stuck, not busy.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Marks the file as a trailwarden journal ("TWJL"), so a foreign database is never used.
const APPLICATION_ID: i32 = 0x5457_4A4C;

/// `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // AUTOINCREMENT so that an id is never reused, even after rows are deleted: entries are
    // cited by id in reports.
    "CREATE TABLE entries (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id     TEXT NOT NULL,
        time       TEXT NOT NULL,
        account    TEXT NOT NULL,
        region     TEXT NOT NULL,
        resource   TEXT NOT NULL,
        call       TEXT NOT NULL,
        parameters TEXT NOT NULL,
        outcome    TEXT NOT NULL,
        error      TEXT,
        finding    TEXT
    );
    CREATE INDEX entries_account_time ON entries (account, time);
    CREATE INDEX entries_time ON entries (time);
    CREATE INDEX entries_run ON entries (run_id);",
    // Events `watch` has handled, by CloudTrail eventID: a redelivered message is recognised
    // and never acted on twice.
    "CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        time     TEXT NOT NULL,
        outcome  TEXT NOT NULL
    ) WITHOUT ROWID;",
    // What `watch` detected, for incidents: one row per finding raised by an event.
    "CREATE TABLE detections (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        event_time TEXT NOT NULL,
        account    TEXT NOT NULL,
        region     TEXT NOT NULL,
        rule_id    TEXT NOT NULL,
        severity   TEXT NOT NULL,
        event_id   TEXT,
        event_name TEXT,
        actor      TEXT,
        access_key TEXT,
        source_ip  TEXT,
        outcome    TEXT NOT NULL,
        title      TEXT NOT NULL
    );
    CREATE INDEX detections_time ON detections (event_time);",
    // The notification outbox: a detection's notification is written with the detection and
    // delivered (with retries) from here, so a crash or a sink outage loses none.
    "CREATE TABLE notifications (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        sink         TEXT NOT NULL,
        payload      TEXT NOT NULL,
        created      TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL DEFAULT 0,
        state        TEXT NOT NULL DEFAULT 'pending',
        last_error   TEXT
    );
    CREATE INDEX notifications_due ON notifications (state, next_attempt);",
    // Detections found by sweeps as well as by events: what the finding was about; the access
    // key ids of the sessions trailwarden obtained (its own calls are proven by them, never by
    // a name); and accounts a sweep could not read, sweep after sweep.
    "ALTER TABLE detections ADD COLUMN technique TEXT;
    ALTER TABLE detections ADD COLUMN resource TEXT;
    ALTER TABLE detections ADD COLUMN found_by TEXT NOT NULL DEFAULT 'event';
    CREATE INDEX detections_account_rule ON detections (account, rule_id, event_time);
    CREATE TABLE own_credentials (
        access_key_id TEXT PRIMARY KEY,
        role_arn      TEXT NOT NULL,
        account       TEXT NOT NULL,
        obtained      TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE unread_streaks (
        account   TEXT NOT NULL,
        region    TEXT NOT NULL,
        since     TEXT NOT NULL,
        sweeps    INTEGER NOT NULL,
        last_gap  TEXT NOT NULL,
        PRIMARY KEY (account, region)
    ) WITHOUT ROWID;",
];

/// Parameter keys containing one of these (compared lowercased, with everything but letters
/// and digits removed, so `Session_Token` matches) are refused by [`Journal::record`].
/// `secret` already covers `secretaccesskey`; both are listed so the list reads as intended.
const SECRET_KEY_WORDS: [&str; 4] = ["secretaccesskey", "sessiontoken", "password", "secret"];

const COLUMNS: &str =
    "id, run_id, time, account, region, resource, call, parameters, outcome, error, finding";

/// A notification waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingNotification {
    pub id: i64,
    /// Where it goes: `sns:<topic arn>` or `webhook:<url>`.
    pub sink: String,
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// A finding the responder detected (from an event or a sweep), and what it did about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    pub event_time: String,
    pub account: String,
    pub region: String,
    pub rule_id: String,
    pub severity: String,
    pub event_id: Option<String>,
    pub event_name: Option<String>,
    /// Principal ARN.
    pub actor: Option<String>,
    pub access_key: Option<String>,
    pub source_ip: Option<String>,
    /// What the responder did about it.
    pub outcome: Outcome,
    pub title: String,
    /// The tamper-catalog technique, e.g. `A1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technique: Option<String>,
    /// The resource concerned (a trail ARN, a bucket, ...), where the finding names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// What found it: a CloudTrail event, or a sweep of the real state.
    #[serde(default)]
    pub found_by: FoundBy,
}

/// Which signal raised a detection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FoundBy {
    /// A CloudTrail record (a forwarded event, a log file).
    #[default]
    Event,
    /// A sweep comparing the real state with the baseline (trusts no CloudTrail record).
    Sweep,
}

impl FoundBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Sweep => "sweep",
        }
    }
}

/// A session trailwarden obtained itself: calls made with its access key are its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCredential {
    pub access_key_id: String,
    pub role_arn: String,
    pub account: String,
    /// RFC 3339.
    pub obtained: String,
}

impl Detection {
    /// The detection of `finding`, with what was done about it; `now` (RFC 3339) stands for
    /// the event time of a finding no event raised (a sweep's).
    pub fn new(finding: &Finding, outcome: Outcome, now: &str) -> Self {
        let event = finding.event.as_ref();
        Self {
            event_time: event
                .and_then(|e| e.event_time.clone())
                .unwrap_or_else(|| now.to_owned()),
            account: finding.account.to_string(),
            region: finding.region.clone(),
            rule_id: finding.rule_id.clone(),
            severity: finding.severity.to_string(),
            event_id: event.and_then(|e| e.event_id.clone()),
            event_name: event.and_then(|e| e.event_name.clone()),
            actor: event.and_then(|e| e.actor.principal_arn.clone()),
            access_key: event.and_then(|e| e.actor.access_key_id.clone()),
            source_ip: event.and_then(|e| e.actor.source_ip.clone()),
            outcome,
            title: finding.title.clone(),
            technique: finding.technique.clone(),
            resource: finding.resource.clone(),
            found_by: if event.is_some() {
                FoundBy::Event
            } else {
                FoundBy::Sweep
            },
        }
    }
}

/// What happened to one action (one step of a restore, or its verification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    /// The call was made and succeeded.
    Applied,
    /// The call was made and failed; [`Entry::error`] says why.
    Failed,
    /// The call was not made (dry run, excluded, nothing to do).
    Skipped,
    /// The setting was read back after a change and found as intended.
    Verified,
    /// The setting was read back after a change and found still wrong.
    NotRestored,
}

impl StepOutcome {
    pub const ALL: [StepOutcome; 5] = [
        Self::Applied,
        Self::Failed,
        Self::Skipped,
        Self::Verified,
        Self::NotRestored,
    ];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Verified => "verified",
            Self::NotRestored => "notrestored",
        }
    }
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the [`StepOutcome`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an outcome (applied, failed, skipped, verified, notrestored)")]
pub struct OutcomeParseError(pub String);

impl FromStr for StepOutcome {
    type Err = OutcomeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| OutcomeParseError(s.to_owned()))
    }
}

impl ToSql for StepOutcome {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for StepOutcome {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// One action to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEntry {
    /// Groups the entries of one invocation (one CLI run, one service cycle).
    pub run_id: String,
    /// When the action was taken, RFC 3339 in UTC with a `Z` (`2025-01-31T12:00:00Z`): rows
    /// are ordered and filtered by comparing this text, which matches time order only then.
    pub time: String,
    pub account: String,
    pub region: String,
    /// The resource acted on, usually a trail ARN.
    pub resource: String,
    /// The API call, e.g. `cloudtrail:StartLogging`.
    pub call: String,
    /// The call's parameters. Must not hold secrets: see the module docs.
    pub parameters: serde_json::Value,
    pub outcome: StepOutcome,
    /// Why the call failed, for [`StepOutcome::Failed`] and [`StepOutcome::NotRestored`].
    pub error: Option<String>,
    /// The rule id of the finding this action answers, e.g. `trail-logging-stopped`.
    pub finding: Option<String>,
}

/// One recorded action, as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The row id, never reused.
    pub id: i64,
    pub run_id: String,
    pub time: String,
    pub account: String,
    pub region: String,
    pub resource: String,
    pub call: String,
    pub parameters: serde_json::Value,
    pub outcome: StepOutcome,
    pub error: Option<String>,
    pub finding: Option<String>,
}

impl Entry {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let parameters: String = row.get(7)?;
        let parameters = serde_json::from_str(&parameters).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
        })?;
        Ok(Self {
            id: row.get(0)?,
            run_id: row.get(1)?,
            time: row.get(2)?,
            account: row.get(3)?,
            region: row.get(4)?,
            resource: row.get(5)?,
            call: row.get(6)?,
            parameters,
            outcome: row.get(8)?,
            error: row.get(9)?,
            finding: row.get(10)?,
        })
    }
}

/// Which entries [`Journal::list`] returns; every field left `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub account: Option<String>,
    pub run_id: Option<String>,
    /// Entries at or after this RFC 3339 time (compared as text, like [`NewEntry::time`]).
    pub since: Option<String>,
    /// At most this many entries, the newest ones.
    pub limit: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: cannot create its folder {}: {source}", path.display(), dir.display())]
    CreateDir {
        path: PathBuf,
        dir: PathBuf,
        source: io::Error,
    },
    #[error("journal {}: cannot make it private to its owner (chmod 600): {source}", path.display())]
    Permissions { path: PathBuf, source: io::Error },
    #[error("journal {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "journal {}: schema version {found} was written by a newer trailwarden; this one knows \
         up to version {known} and leaves the file as it is",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "journal {}: a SQLite database, but not a trailwarden journal (application_id {application_id:#x}, \
         user_version {user_version}); refusing to use it",
        path.display()
    )]
    NotAJournal {
        path: PathBuf,
        application_id: i32,
        user_version: i64,
    },
    #[error(
        "journal {}: refusing to record {call}: parameter {key} looks like a secret, and the \
         journal must never hold credentials",
        path.display()
    )]
    SecretParameter {
        path: PathBuf,
        call: String,
        /// Where the key is in the parameters, e.g. `Credentials.SessionToken`. Never the value.
        key: String,
    },
    #[error(
        "journal: no place for the state database: set TRAILWARDEN_STATE (a file), \
         XDG_STATE_HOME or HOME"
    )]
    NoDefaultPath,
    /// Internal to `open`: the switch to WAL did not happen yet (retried).
    #[error("journal: not in WAL mode yet")]
    NotWal,
}

/// An open journal file.
#[derive(Debug)]
pub struct Journal {
    /// One connection, shared by the tasks of a process (statements are short; SQLite
    /// serialises writers anyway).
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating the file, parent folders and schema if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::CreateDir {
                path: path.to_owned(),
                dir: dir.to_owned(),
                source,
            })?;
        }
        let sql = |source| JournalError::Sqlite {
            path: path.to_owned(),
            source,
        };
        // No SQLITE_OPEN_URI: the path is a file name, even if it starts with "file:".
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // The first statements that read the file: a corrupt one fails here. Switching to WAL
        // and creating the schema need the file to themselves, and SQLite answers "busy" at
        // once (without waiting for the busy timeout) while another process does the same on
        // a new file, or leaves the old mode: try again for a while. Where WAL is not possible
        // (some network file systems) SQLite keeps a rollback journal, slower with several
        // writers but still correct, so after that the answer is taken as it is.
        let busy = |e: &JournalError| {
            matches!(e, JournalError::Sqlite { source: rusqlite::Error::SqliteFailure(f, _), .. }
                if f.code == rusqlite::ErrorCode::DatabaseBusy)
        };
        let mut attempt = 0u64;
        loop {
            let prepared = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
                .map_err(sql)
                .and_then(|mode| {
                    if !mode.eq_ignore_ascii_case("wal") && attempt < 10 {
                        return Err(JournalError::NotWal);
                    }
                    prepare_schema(&mut conn, path)
                });
            match prepared {
                Ok(()) => break,
                Err(e) if (busy(&e) || matches!(e, JournalError::NotWal)) && attempt < 100 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(5 + 5 * attempt.min(20)));
                }
                Err(e) => return Err(e),
            }
        }
        restrict_to_owner(path)?;
        Ok(Journal {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        })
    }

    /// The default path: `$TRAILWARDEN_STATE` if set, else
    /// `$XDG_STATE_HOME/trailwarden/state.db`, else `$HOME/.local/state/trailwarden/state.db`.
    /// Empty variables count as unset, and a relative `XDG_STATE_HOME` is ignored (as the XDG
    /// spec says).
    pub fn default_path() -> Result<PathBuf, JournalError> {
        resolve_default_path(
            std::env::var_os("TRAILWARDEN_STATE").as_deref(),
            std::env::var_os("XDG_STATE_HOME").as_deref(),
            std::env::var_os("HOME").as_deref(),
        )
    }

    /// The file this journal was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one action and returns its row id. Refuses parameters with a key that looks
    /// like a secret ([`JournalError::SecretParameter`]); nothing is written then.
    pub fn record(&self, entry: &NewEntry) -> Result<i64, JournalError> {
        if let Some(key) = secret_key(&entry.parameters) {
            return Err(JournalError::SecretParameter {
                path: self.path.clone(),
                call: entry.call.clone(),
                key,
            });
        }
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO entries (run_id, time, account, region, resource, call, parameters, \
                 outcome, error, finding) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 RETURNING id",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_row(
            rusqlite::params![
                entry.run_id,
                entry.time,
                entry.account,
                entry.region,
                entry.resource,
                entry.call,
                entry.parameters.to_string(),
                entry.outcome,
                entry.error,
                entry.finding,
            ],
            |r| r.get(0),
        )
        .map_err(|e| self.sql(e))
    }

    /// Whether the CloudTrail event `event_id` of `account` was handled already. Events are
    /// kept by account and eventID: a forged copy of a real event under another account
    /// cannot make the real one a duplicate.
    pub fn event_handled(&self, account: &str, event_id: &str) -> Result<bool, JournalError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT 1 FROM events WHERE event_id = ?1",
            [event_key(account, event_id)],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
        .map_err(|source| JournalError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Records that the event was handled (after acting on it, before the message is
    /// deleted): a crash in between means it is handled again, which restoring tolerates.
    pub fn mark_event_handled(
        &self,
        account: &str,
        event_id: &str,
        time: &str,
        outcome: Option<Outcome>,
    ) -> Result<(), JournalError> {
        let conn = self.conn();
        let outcome = outcome.map_or("no-finding", Outcome::as_str);
        conn.execute(
            "INSERT OR IGNORE INTO events (event_id, time, outcome) VALUES (?1, ?2, ?3)",
            [event_key(account, event_id).as_str(), time, outcome],
        )
        .map(|_| ())
        .map_err(|source| JournalError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// The accounts in which the CloudTrail event `event_id` was handled (an eventID is unique
    /// only within an account).
    pub fn accounts_that_handled(&self, event_id: &str) -> Result<Vec<String>, JournalError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT event_id FROM events WHERE event_id LIKE ?1 ESCAPE '\\'")
            .map_err(|e| self.sql(e))?;
        let escaped = event_id
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let rows = stmt
            .query_map([format!("%/{escaped}")], |r| r.get::<_, String>(0))
            .map_err(|e| self.sql(e))?;
        let keys: Vec<String> = rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.split_once('/').map(|(a, _)| a.to_owned()))
            .collect())
    }

    /// Records a detection (a finding raised by an event) and what was done about it. The same
    /// event and rule again (a redelivered message whose restore is retried) updates the row's
    /// outcome instead of adding one; returns whether anything new was recorded.
    pub fn record_detection(&self, d: &Detection) -> Result<bool, JournalError> {
        let conn = self.conn();
        if let Some(event_id) = &d.event_id {
            let existing: Option<String> = conn
                .query_row(
                    "SELECT outcome FROM detections WHERE event_id = ?1 AND rule_id = ?2
                     ORDER BY id DESC LIMIT 1",
                    [event_id, &d.rule_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.sql(e))?;
            match existing {
                Some(outcome) if outcome == d.outcome.as_str() => return Ok(false),
                Some(_) => {
                    return conn
                        .execute(
                            "UPDATE detections SET outcome = ?3 WHERE event_id = ?1 AND rule_id = ?2",
                            [event_id.as_str(), d.rule_id.as_str(), d.outcome.as_str()],
                        )
                        .map(|_| true)
                        .map_err(|e| self.sql(e));
                }
                None => {}
            }
        }
        conn.execute(
            "INSERT INTO detections (event_time, account, region, rule_id, severity, event_id,
                 event_name, actor, access_key, source_ip, outcome, title, technique, resource,
                 found_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            rusqlite::params![
                d.event_time,
                d.account,
                d.region,
                d.rule_id,
                d.severity,
                d.event_id,
                d.event_name,
                d.actor,
                d.access_key,
                d.source_ip,
                d.outcome.as_str(),
                d.title,
                d.technique,
                d.resource,
                d.found_by.as_str(),
            ],
        )
        .map(|_| true)
        .map_err(|source| JournalError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Queues a notification of `payload` to `sink` (delivered by [`Journal::due_notifications`]
    /// readers; `pending` until sent or given up).
    pub fn queue_notification(
        &self,
        sink: &str,
        payload: &str,
        created: &str,
    ) -> Result<(), JournalError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO notifications (sink, payload, created) VALUES (?1, ?2, ?3)",
            [sink, payload, created],
        )
        .map(|_| ())
        .map_err(|e| self.sql(e))
    }

    /// Pending notifications whose next attempt is due at `now` (Unix seconds), oldest first.
    pub fn due_notifications(
        &self,
        now: u64,
        limit: usize,
    ) -> Result<Vec<PendingNotification>, JournalError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, sink, payload, attempts FROM notifications
                 WHERE state = 'pending' AND next_attempt <= ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(rusqlite::params![now as i64, limit as i64], |r| {
                Ok(PendingNotification {
                    id: r.get(0)?,
                    sink: r.get(1)?,
                    payload: r.get(2)?,
                    attempts: r.get(3)?,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Records one delivery attempt: sent (`error` None), retried at `retry_at`, or given up
    /// (`retry_at` None).
    pub fn notification_attempted(
        &self,
        id: i64,
        error: Option<&str>,
        retry_at: Option<u64>,
    ) -> Result<(), JournalError> {
        let conn = self.conn();
        let state = match (error, retry_at) {
            (None, _) => "sent",
            (Some(_), Some(_)) => "pending",
            (Some(_), None) => "failed",
        };
        conn.execute(
            "UPDATE notifications SET attempts = attempts + 1, state = ?2, last_error = ?3,
                 next_attempt = ?4 WHERE id = ?1",
            rusqlite::params![id, state, error, retry_at.unwrap_or(0) as i64],
        )
        .map(|_| ())
        .map_err(|e| self.sql(e))
    }

    /// Notifications by state: (pending, sent, failed).
    pub fn notification_counts(&self) -> Result<(u64, u64, u64), JournalError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'sent'), 0),
                 COALESCE(SUM(state = 'failed'), 0) FROM notifications",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            },
        )
        .map_err(|e| self.sql(e))
    }

    /// Every detection at or after `since` (RFC 3339; `None`: all), oldest first.
    pub fn detections(&self, since: Option<&str>) -> Result<Vec<Detection>, JournalError> {
        let sql = |source| JournalError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT event_time, account, region, rule_id, severity, event_id, event_name,
                 actor, access_key, source_ip, outcome, title, technique, resource, found_by
                 FROM detections WHERE event_time >= ?1 ORDER BY event_time, id",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([since.unwrap_or("")], |r| {
                Ok(Detection {
                    event_time: r.get(0)?,
                    account: r.get(1)?,
                    region: r.get(2)?,
                    rule_id: r.get(3)?,
                    severity: r.get(4)?,
                    event_id: r.get(5)?,
                    event_name: r.get(6)?,
                    actor: r.get(7)?,
                    access_key: r.get(8)?,
                    source_ip: r.get(9)?,
                    outcome: r.get::<_, String>(10)?.parse().map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            10,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?,
                    title: r.get(11)?,
                    technique: r.get(12)?,
                    resource: r.get(13)?,
                    found_by: match r.get::<_, String>(14)?.as_str() {
                        "sweep" => FoundBy::Sweep,
                        _ => FoundBy::Event,
                    },
                })
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// How many detections of `rule_id` in `account` since `since` (RFC 3339): the measure of
    /// a repeated tampering pattern.
    pub fn count_detections(
        &self,
        account: &str,
        rule_id: &str,
        since: &str,
    ) -> Result<u64, JournalError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT count(*) FROM detections WHERE account = ?1 AND rule_id = ?2
             AND event_time >= ?3 AND outcome NOT IN ('own-call', 'failed-attempt')",
            [account, rule_id, since],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| self.sql(e))
    }

    /// The latest detection raised by an event in `account` since `since` whose resource is
    /// `resource` or, failing that, whose technique is `technique`: who most probably caused
    /// what a sweep found.
    pub fn last_event_detection(
        &self,
        account: &str,
        resource: Option<&str>,
        technique: Option<&str>,
        since: &str,
    ) -> Result<Option<Detection>, JournalError> {
        let found = self.detections(Some(since))?;
        let events = || {
            found
                .iter()
                .rev()
                .filter(|d| {
                    d.found_by == FoundBy::Event && d.account == account && d.actor.is_some()
                })
                .filter(|d| !matches!(d.outcome, Outcome::OwnCall | Outcome::FailedAttempt))
        };
        let by_resource = resource.and_then(|r| {
            events().find(|d| {
                d.resource.as_deref().is_some_and(|x| {
                    x == r || r.ends_with(&format!("/{x}")) || r.ends_with(&format!(":{x}"))
                })
            })
        });
        let by_technique = || {
            technique.and_then(|t| {
                events().find(|d| {
                    d.technique
                        .as_deref()
                        .is_some_and(|x| x.split(',').any(|x| t.split(',').any(|t| t == x)))
                })
            })
        };
        Ok(by_resource.or_else(by_technique).cloned())
    }

    /// Remembers a session trailwarden obtained (its access key id, never its secret).
    pub fn remember_own_credential(&self, c: &OwnCredential) -> Result<(), JournalError> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO own_credentials (access_key_id, role_arn, account, obtained)
             VALUES (?1, ?2, ?3, ?4)",
            [&c.access_key_id, &c.role_arn, &c.account, &c.obtained],
        )
        .map(|_| ())
        .map_err(|e| self.sql(e))
    }

    /// The session trailwarden obtained with this access key id, if it did.
    pub fn own_credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<OwnCredential>, JournalError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT access_key_id, role_arn, account, obtained FROM own_credentials
             WHERE access_key_id = ?1",
            [access_key_id],
            |r| {
                Ok(OwnCredential {
                    access_key_id: r.get(0)?,
                    role_arn: r.get(1)?,
                    account: r.get(2)?,
                    obtained: r.get(3)?,
                })
            },
        )
        .optional()
        .map_err(|e| self.sql(e))
    }

    /// A sweep could not read `account` (`region`, or `-` for the whole account): the number
    /// of sweeps in a row that could not, this one included, and since when.
    pub fn note_unread(
        &self,
        account: &str,
        region: &str,
        gap: &str,
        now: &str,
    ) -> Result<(u32, String), JournalError> {
        let conn = self.conn();
        conn.query_row(
            "INSERT INTO unread_streaks (account, region, since, sweeps, last_gap)
             VALUES (?1, ?2, ?4, 1, ?3)
             ON CONFLICT (account, region) DO UPDATE SET sweeps = sweeps + 1, last_gap = ?3
             RETURNING sweeps, since",
            [account, region, gap, now],
            |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)),
        )
        .map_err(|e| self.sql(e))
    }

    /// Ends the streaks of everything in `account` except `still_unread` (regions, `-` for the
    /// account): the sweep read them.
    pub fn clear_unread(&self, account: &str, still_unread: &[&str]) -> Result<(), JournalError> {
        let conn = self.conn();
        let streaks: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT region FROM unread_streaks WHERE account = ?1")
                .map_err(|e| self.sql(e))?;
            let rows = stmt
                .query_map([account], |r| r.get(0))
                .map_err(|e| self.sql(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))?
        };
        for region in streaks
            .iter()
            .filter(|r| !still_unread.contains(&r.as_str()))
        {
            conn.execute(
                "DELETE FROM unread_streaks WHERE account = ?1 AND region = ?2",
                [account, region.as_str()],
            )
            .map_err(|e| self.sql(e))?;
        }
        Ok(())
    }

    pub fn list(&self, filter: &Filter) -> Result<Vec<Entry>, JournalError> {
        let conn = self.conn();
        let mut conditions: Vec<&str> = Vec::new();
        let mut values: Vec<&dyn ToSql> = Vec::new();
        // Conditions are added only for the fields given, so SQLite can use the indexes.
        for (condition, value) in [
            ("account = ?", &filter.account),
            ("run_id = ?", &filter.run_id),
            ("time >= ?", &filter.since),
        ] {
            if let Some(value) = value {
                conditions.push(condition);
                values.push(value);
            }
        }
        // SQLite reads a negative LIMIT as "no limit".
        let limit = filter
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        values.push(&limit);
        let mut sql = format!("SELECT {COLUMNS} FROM entries");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(" ORDER BY time DESC, id DESC LIMIT ?");

        let mut stmt = conn.prepare(&sql).map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(values.as_slice(), Entry::from_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.sql(e))
    }

    /// The connection; a panic in another task while it held the lock leaves SQLite in a
    /// consistent state (every write is one statement or one transaction), so go on.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sql(&self, source: rusqlite::Error) -> JournalError {
        JournalError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

/// What the file says it is.
struct FileMarks {
    application_id: i32,
    user_version: i64,
    /// Tables, indexes and the like already in the file.
    objects: i64,
}

impl FileMarks {
    /// All three from one snapshot of the file: read one by one, another process's schema
    /// creation could commit in between (a new user_version beside an old application_id).
    fn read(conn: &Connection) -> rusqlite::Result<Self> {
        conn.query_row(
            "SELECT (SELECT application_id FROM pragma_application_id),
                    (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM sqlite_schema)",
            [],
            |r| {
                Ok(Self {
                    application_id: r.get(0)?,
                    user_version: r.get(1)?,
                    objects: r.get(2)?,
                })
            },
        )
    }

    /// The schema version to migrate from, or why the file must not be used.
    fn usable_version(&self, path: &Path) -> Result<usize, JournalError> {
        let fresh = self.application_id == 0 && self.user_version == 0 && self.objects == 0;
        let version = usize::try_from(self.user_version).ok();
        if (self.application_id != APPLICATION_ID && !fresh) || version.is_none() {
            return Err(JournalError::NotAJournal {
                path: path.to_owned(),
                application_id: self.application_id,
                user_version: self.user_version,
            });
        }
        if self.user_version > SCHEMA_VERSION {
            return Err(JournalError::NewerSchema {
                path: path.to_owned(),
                found: self.user_version,
                known: SCHEMA_VERSION,
            });
        }
        Ok(version.unwrap_or_default())
    }
}

/// How a handled event is kept: its account and its eventID.
fn event_key(account: &str, event_id: &str) -> String {
    format!("{account}/{event_id}")
}

/// The journal holds incidents, actors and notification sinks: readable by its owner only
/// (SQLite creates the `-wal` and `-shm` files with the database file's permissions).
fn restrict_to_owner(path: &Path) -> Result<(), JournalError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [
            path.to_owned(),
            PathBuf::from(format!("{}-wal", path.display())),
            PathBuf::from(format!("{}-shm", path.display())),
        ] {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && file.as_path() != path => {}
                other => other.map_err(|source| JournalError::Permissions {
                    path: path.to_owned(),
                    source,
                })?,
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Checks the file's marks and brings its schema up to [`SCHEMA_VERSION`].
fn prepare_schema(conn: &mut Connection, path: &Path) -> Result<(), JournalError> {
    let sql = |source| JournalError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let from = FileMarks::read(conn).map_err(sql)?.usable_version(path)?;
    if from == MIGRATIONS.len() {
        return Ok(());
    }
    // IMMEDIATE takes the write lock first, and the marks are read again under it: two
    // processes opening a new file at once must not both create the schema.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let from = FileMarks::read(&tx).map_err(sql)?.usable_version(path)?;
    for step in &MIGRATIONS[from..] {
        tx.execute_batch(step).map_err(sql)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(sql)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sql)?;
    tx.commit().map_err(sql)
}

/// Where a key that looks like a secret is in `value` (`Credentials.SessionToken`,
/// `items[2].password`), searching nested objects and arrays.
fn secret_key(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => map.iter().find_map(|(key, inner)| {
            let normalized: String = key
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect();
            if SECRET_KEY_WORDS.iter().any(|w| normalized.contains(w)) {
                Some(key.clone())
            } else {
                secret_key(inner).map(|below| join_place(key.clone(), &below))
            }
        }),
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            secret_key(item).map(|below| join_place(format!("[{i}]"), &below))
        }),
        _ => None,
    }
}

fn join_place(mut outer: String, inner: &str) -> String {
    if !inner.starts_with('[') {
        outer.push('.');
    }
    outer.push_str(inner);
    outer
}

/// [`Journal::default_path`] from the values of `TRAILWARDEN_STATE`, `XDG_STATE_HOME` and
/// `HOME`, so it can be tested without touching the process environment.
fn resolve_default_path(
    trailwarden_state: Option<&OsStr>,
    xdg_state_home: Option<&OsStr>,
    home: Option<&OsStr>,
) -> Result<PathBuf, JournalError> {
    let set = |v: Option<&OsStr>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = set(trailwarden_state) {
        return Ok(path);
    }
    if let Some(dir) = set(xdg_state_home).filter(|d| d.is_absolute()) {
        return Ok(dir.join("trailwarden").join("state.db"));
    }
    if let Some(home) = set(home) {
        return Ok(home.join(".local/state/trailwarden/state.db"));
    }
    Err(JournalError::NoDefaultPath)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(
        state: Option<&str>,
        xdg: Option<&str>,
        home: Option<&str>,
    ) -> Result<PathBuf, JournalError> {
        resolve_default_path(
            state.map(OsStr::new),
            xdg.map(OsStr::new),
            home.map(OsStr::new),
        )
    }

    #[test]
    fn trailwarden_state_wins_over_everything() {
        let path = resolve(Some("/srv/tw/journal.db"), Some("/xdg"), Some("/home/u")).unwrap();
        assert_eq!(path, PathBuf::from("/srv/tw/journal.db"));
        // Given explicitly, a relative path is the user's choice and is kept.
        let path = resolve(Some("state.db"), None, Some("/home/u")).unwrap();
        assert_eq!(path, PathBuf::from("state.db"));
    }

    #[test]
    fn xdg_state_home_then_home() {
        assert_eq!(
            resolve(None, Some("/xdg"), Some("/home/u")).unwrap(),
            PathBuf::from("/xdg/trailwarden/state.db")
        );
        assert_eq!(
            resolve(None, None, Some("/home/u")).unwrap(),
            PathBuf::from("/home/u/.local/state/trailwarden/state.db")
        );
    }

    #[test]
    fn empty_and_relative_values_are_skipped() {
        assert_eq!(
            resolve(Some(""), Some(""), Some("/home/u")).unwrap(),
            PathBuf::from("/home/u/.local/state/trailwarden/state.db")
        );
        assert_eq!(
            resolve(None, Some("relative/state"), Some("/home/u")).unwrap(),
            PathBuf::from("/home/u/.local/state/trailwarden/state.db")
        );
        let err = resolve(None, None, Some("")).unwrap_err();
        assert!(matches!(err, JournalError::NoDefaultPath), "{err}");
    }

    #[test]
    fn secret_keys_are_found_anywhere_and_named_by_their_place() {
        assert_eq!(secret_key(&json!({"Name": "t", "KmsKeyId": "k"})), None);
        assert_eq!(
            secret_key(&json!({"Name": "t", "SecretAccessKey": "x"})),
            Some("SecretAccessKey".to_owned())
        );
        assert_eq!(
            secret_key(&json!({"Credentials": {"Session_Token": "x"}})),
            Some("Credentials.Session_Token".to_owned())
        );
        assert_eq!(
            secret_key(&json!({"users": [{"name": "a"}, {"DB-PASSWORD": "x"}]})),
            Some("users[1].DB-PASSWORD".to_owned())
        );
        assert_eq!(
            secret_key(&json!([[{"clientSecret": "x"}]])),
            Some("[0][0].clientSecret".to_owned())
        );
        // Values are not keys: a value that merely mentions a secret is fine.
        assert_eq!(secret_key(&json!({"Name": "password"})), None);
    }

    #[test]
    fn outcome_names_round_trip_through_text_and_serde() {
        for outcome in StepOutcome::ALL {
            assert_eq!(outcome.as_str().parse::<StepOutcome>(), Ok(outcome));
            assert_eq!(outcome.to_string(), outcome.as_str());
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                json!(outcome.as_str())
            );
        }
        assert!("Applied".parse::<StepOutcome>().is_err());
    }
}
