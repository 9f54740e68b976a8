//! Scanning CloudTrail records for tampering, on every core, with bounded memory.
//!
//! Each input (a file, stdin, or an object's bytes) is scanned by one worker thread. A
//! CloudTrail log file takes the fast path: it is gunzipped whole (log files are small), its
//! `Records` are split without being parsed ([`LogFile`]), and each record's `eventName` alone
//! is read; only the records some rule could match ([`RuleSet::may_match`]) are parsed in full
//! and evaluated. Everything else — JSON Lines, single records, EventBridge envelopes, arrays,
//! digests, broken or oversized input — goes through the streaming reader of
//! `trailwarden-records`, which reports each problem with its position and goes on. Gzip is
//! recognised and decoded by `trailwarden-records` on both paths, always with a size cap.

use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError, mpsc};
use trailwarden_model::clock::parse_rfc3339;
use trailwarden_model::finding::Finding;
use trailwarden_records::{Item, LogFile, ReadOptions, Shape, gzip, read_records};
use trailwarden_rules::{RuleSet, event_finding};

/// Inputs above this size (compressed or decoded) are streamed instead of held whole: with
/// two workers, memory stays well under 256 MiB whatever the input.
const WHOLE_INPUT_LIMIT: u64 = 32 * 1024 * 1024;

/// One thing to scan.
#[derive(Debug)]
pub enum Input {
    File(PathBuf),
    Stdin,
    /// Bytes already fetched (an S3 object), named for reports (`s3://bucket/key`).
    Bytes {
        name: String,
        bytes: Vec<u8>,
    },
    /// A local copy of something named otherwise (a large S3 object spooled to disk).
    NamedFile {
        name: String,
        path: PathBuf,
    },
    /// A source that could not be fetched; reported as an error in its turn.
    Failed {
        name: String,
        error: String,
    },
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Stdin => "<stdin>".to_owned(),
            Self::Bytes { name, .. } | Self::Failed { name, .. } | Self::NamedFile { name, .. } => {
                name.clone()
            }
        }
    }
}

/// Which matched records become findings; empty means all.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// Seconds since the epoch, inclusive.
    pub since: Option<u64>,
    pub until: Option<u64>,
}

impl RecordFilter {
    fn keeps(&self, record: &Value) -> bool {
        let field = |k: &str| record.get(k).and_then(Value::as_str);
        let account = field("recipientAccountId")
            .or_else(|| record.get("userIdentity")?.get("accountId")?.as_str());
        if !self.accounts.is_empty()
            && !account.is_some_and(|a| self.accounts.iter().any(|x| x == a))
        {
            return false;
        }
        if !self.regions.is_empty()
            && !field("awsRegion").is_some_and(|r| self.regions.iter().any(|x| x == r))
        {
            return false;
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(time) = field("eventTime").and_then(parse_rfc3339) else {
                return false;
            };
            if self.since.is_some_and(|s| time < s) || self.until.is_some_and(|u| time > u) {
                return false;
            }
        }
        true
    }
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Worker threads (default: the number of cores).
    pub workers: usize,
    pub read: ReadOptions,
    pub filter: RecordFilter,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            read: ReadOptions::default(),
            filter: RecordFilter::default(),
        }
    }
}

/// What one input gave.
#[derive(Debug, Default)]
pub struct SourceResult {
    pub name: String,
    pub records: u64,
    /// Bytes read (compressed, as stored).
    pub read_bytes: u64,
    /// Bytes of JSON text after gunzip.
    pub decoded_bytes: u64,
    pub digests: u64,
    pub shape: Option<Shape>,
    pub findings: Vec<Finding>,
    /// One line per problem, naming the source and the position.
    pub errors: Vec<String>,
}

/// Scans every input on `options.workers` threads, handing each input's result to
/// `on_result` (on the calling thread) as soon as it is done.
pub fn scan<I>(
    inputs: I,
    rules: &RuleSet,
    options: &ScanOptions,
    mut on_result: impl FnMut(SourceResult),
) where
    I: Iterator<Item = Input> + Send,
{
    let inputs = Mutex::new(inputs);
    let workers = options.workers.max(1);
    let (sender, receiver) = mpsc::sync_channel::<SourceResult>(workers * 2);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let inputs = &inputs;
            scope.spawn(move || {
                loop {
                    let next = inputs.lock().unwrap_or_else(PoisonError::into_inner).next();
                    let Some(input) = next else { break };
                    if sender.send(scan_input(input, rules, options)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for result in receiver {
            on_result(result);
        }
    });
}

/// Scans one input completely.
pub fn scan_input(input: Input, rules: &RuleSet, options: &ScanOptions) -> SourceResult {
    let name = input.name();
    let mut scanner = SourceScanner {
        rules,
        options,
        result: SourceResult {
            name: name.clone(),
            ..SourceResult::default()
        },
    };
    match input {
        Input::Stdin => scanner.stream(CountingReader::new(io::stdin().lock())),
        Input::Failed { error, .. } => scanner.result.errors.push(format!("{name}: {error}")),
        Input::Bytes { bytes, .. } => scanner.bytes(&bytes),
        Input::File(path) | Input::NamedFile { path, .. } => {
            let file = std::fs::File::open(&path).and_then(|f| {
                let meta = f.metadata()?;
                if meta.is_dir() {
                    return Err(io::Error::from(io::ErrorKind::IsADirectory));
                }
                Ok((f, meta.len()))
            });
            match file {
                Err(e) => scanner
                    .result
                    .errors
                    .push(format!("{name}: cannot open: {e}")),
                Ok((file, len)) if len > WHOLE_INPUT_LIMIT => {
                    scanner.stream(CountingReader::new(file))
                }
                Ok((mut file, len)) => {
                    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                    match file.read_to_end(&mut bytes) {
                        Ok(_) => scanner.bytes(&bytes),
                        Err(e) => scanner
                            .result
                            .errors
                            .push(format!("{name}: cannot read: {e}")),
                    }
                }
            }
        }
    }
    scanner.result
}

/// The one field read from every record (some pipelines lower-case every key).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, rename = "eventName")]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eventname")]
    event_name_lower: Option<Cow<'a, str>>,
}

struct SourceScanner<'r> {
    rules: &'r RuleSet,
    options: &'r ScanOptions,
    result: SourceResult,
}

impl SourceScanner<'_> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.result.read_bytes = bytes.len() as u64;
        if let Ok(text) = gzip::decode_whole(bytes, WHOLE_INPUT_LIMIT)
            && self.log_file(&text)
        {
            return;
        }
        // Broken, huge or another shape: the streaming reader says exactly what and where.
        self.stream(CountingReader::new(bytes));
    }

    /// The fast path; false when `text` is not a well-formed log file.
    fn log_file(&mut self, text: &[u8]) -> bool {
        let Some(file) = LogFile::parse(text) else {
            return false;
        };
        self.result.decoded_bytes = text.len() as u64;
        self.result.shape = Some(Shape::LogFile);
        let limit = self.options.read.max_record_bytes;
        for (i, raw) in file.records.iter().enumerate() {
            let n = i + 1;
            self.result.records += 1;
            let text = raw.get();
            if text.len() > limit {
                let name = &self.result.name;
                self.result.errors.push(format!(
                    "{name}: record {n}: larger than the limit of {limit} bytes; skipped"
                ));
                continue;
            }
            let head = match serde_json::from_str::<Head<'_>>(text) {
                Ok(head) => head,
                Err(e) => {
                    let name = &self.result.name;
                    self.result
                        .errors
                        .push(format!("{name}: record {n}: not a CloudTrail record: {e}"));
                    continue;
                }
            };
            let event_name = head
                .event_name
                .as_deref()
                .or(head.event_name_lower.as_deref());
            if !self.rules.may_match_text(event_name, text) {
                continue;
            }
            match serde_json::from_str::<Value>(text) {
                Ok(record) => self.evaluate(&record, n as u64),
                Err(e) => {
                    let name = &self.result.name;
                    self.result.errors.push(format!("{name}: record {n}: {e}"));
                }
            }
        }
        true
    }

    fn stream<R: Read>(&mut self, mut reader: CountingReader<R>) {
        let name = self.result.name.clone();
        let options = self.options.read.clone();
        let mut records = 0;
        let summary = read_records(&mut reader, &name, &options, |item| {
            match item {
                Item::Record { record, position } => {
                    records += 1;
                    let event_name = record
                        .get("eventName")
                        .or_else(|| record.get("eventname"))
                        .and_then(Value::as_str);
                    if self.rules.may_match(event_name) {
                        self.evaluate(&record, position.record.unwrap_or(records));
                    }
                }
                Item::Error(e) => self.result.errors.push(e.to_string()),
            }
            ControlFlow::Continue(())
        });
        self.result.records += summary.records;
        self.result.digests += summary.digests;
        self.result.shape = summary.shape;
        if self.result.read_bytes == 0 {
            self.result.read_bytes = reader.count;
        }
        if !summary.gzip {
            self.result.decoded_bytes = reader.count;
        }
    }

    fn evaluate(&mut self, record: &Value, n: u64) {
        if !self.options.filter.keeps(record) {
            return;
        }
        let name = &self.result.name;
        let findings = &mut self.result.findings;
        self.rules.for_each_match(record, |rule, verdict| {
            findings.push(event_finding(
                rule,
                verdict,
                record,
                Some(format!("{name}#{n}")),
            ));
        });
    }
}

/// Counts the bytes read, for the summary of streamed inputs.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R> CountingReader<R> {
    fn new(inner: R) -> Self {
        Self { inner, count: 0 }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}
