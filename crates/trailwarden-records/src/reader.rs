//! The reading loop: detects the shape, walks the JSON structure above the records itself,
//! and leaves each record (one captured value) to serde_json.

use crate::error::{ErrorKind, Position, ReadError};
use crate::gzip::GZIP_MAGIC;
use crate::input::{Capture, Fault, Input, Pos};
use serde::de::IgnoredAny;
use serde_json::Value;
use std::fs::File;
use std::io::{self, Read};
use std::ops::{ControlFlow, Range};
use std::path::Path;

/// Limits for reading untrusted input (log buckets may be writable by an attacker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest record, in bytes of JSON text; a larger one is an error and is skipped.
    /// Memory use is bounded by about this much. Default 32 MiB.
    pub max_record_bytes: usize,
    /// Most decoded (decompressed) bytes read from one source before giving up with an
    /// error: a gzip bomb costs time, not only memory. Default 4 GiB.
    pub max_input_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_record_bytes: 32 * 1024 * 1024,
            max_input_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// What a source turned out to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A CloudTrail log file, `{"Records": [...]}`.
    LogFile,
    /// A JSON array of records.
    Array,
    /// One record.
    Record,
    /// One EventBridge event carrying a record in `detail`.
    EventBridge,
    /// A CloudTrail digest file: valid, but it holds no records.
    Digest,
    /// Several values, one per line.
    JsonLines,
    /// Several values one after the other, not one per line (`jq` output, say).
    JsonSequence,
    /// Nothing but whitespace (or nothing at all).
    Empty,
}

/// Counts for one source, returned when reading it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// The shape, when one was recognised (`None` for input that is not JSON, say).
    pub shape: Option<Shape>,
    /// Whether the input was gzip-compressed.
    pub gzip: bool,
    /// Records delivered.
    pub records: u64,
    /// Errors delivered.
    pub errors: u64,
    /// Digest files seen (they are not records, and not errors either).
    pub digests: u64,
    /// Whether the callback stopped the reading early.
    pub stopped: bool,
}

/// What the callback receives, in input order.
#[derive(Debug)]
pub enum Item {
    /// A record, with the position where it starts.
    Record {
        /// The record, exactly as written (detection rules want every key as it is).
        record: Value,
        /// Where it starts in the source.
        position: Position,
    },
    /// A problem; see [`ErrorKind`] for which ones end the source.
    Error(ReadError),
}

/// Reads every record in `input`, whatever its [`Shape`], calling `on_item` for each record and
/// each error as soon as it is read. `source` names the input in errors (a path, `<stdin>`).
/// Returning [`ControlFlow::Break`] from `on_item` stops reading.
pub fn read_records<R: Read>(
    input: R,
    source: &str,
    options: &ReadOptions,
    mut on_item: impl FnMut(Item) -> ControlFlow<()>,
) -> Summary {
    let input = match Input::open(input, options.max_input_bytes) {
        Ok(input) => input,
        Err(fault) => return failed_before_reading(source, fault, &mut on_item),
    };
    let mut reader = Reader {
        summary: Summary {
            gzip: input.is_gzip(),
            ..Summary::default()
        },
        input,
        source,
        options,
        on_item: &mut on_item,
        slot: 0,
        current: None,
        lines: false,
        values: 0,
        first_shape: None,
    };
    match reader.run() {
        Ok(()) => {}
        Err(Fault::Stopped) => reader.summary.stopped = true,
        Err(Fault::Fatal(kind, at) | Fault::Broken(kind, at) | Fault::NotJson(kind, at)) => {
            if reader.error(kind, at).is_err() {
                reader.summary.stopped = true;
            }
        }
    }
    reader.summary.shape = match reader.values {
        0 if reader.summary.errors == 0 => Some(Shape::Empty),
        0 => None,
        1 => reader.first_shape,
        _ if reader.lines => Some(Shape::JsonLines),
        _ => Some(Shape::JsonSequence),
    };
    reader.summary
}

/// Opens `path` and reads it with [`read_records`]; a path that cannot be opened (or is a
/// directory) gives one error naming it.
pub fn read_path(
    path: &Path,
    options: &ReadOptions,
    mut on_item: impl FnMut(Item) -> ControlFlow<()>,
) -> Summary {
    let source = path.display().to_string();
    let opened = File::open(path).and_then(|file| {
        if file.metadata()?.is_dir() {
            Err(io::Error::from(io::ErrorKind::IsADirectory))
        } else {
            Ok(file)
        }
    });
    match opened {
        Ok(file) => read_records(file, &source, options, on_item),
        Err(e) => {
            let error = ReadError::new(&source, None, ErrorKind::Open(e));
            Summary {
                errors: 1,
                stopped: on_item(Item::Error(error)).is_break(),
                ..Summary::default()
            }
        }
    }
}

fn failed_before_reading(
    source: &str,
    fault: Fault,
    on_item: &mut impl FnMut(Item) -> ControlFlow<()>,
) -> Summary {
    let mut summary = Summary::default();
    if let Fault::Fatal(kind, at) | Fault::Broken(kind, at) | Fault::NotJson(kind, at) = fault {
        summary.errors = 1;
        let error = ReadError::new(source, Some(at.in_record(None)), kind);
        summary.stopped = on_item(Item::Error(error)).is_break();
    }
    summary
}

/// Keys only a digest file has.
const DIGEST_KEYS: &[&str] = &[
    "digestStartTime",
    "digestEndTime",
    "digestS3Bucket",
    "digestS3Object",
    "digestPublicKeyFingerprint",
    "digestSignatureAlgorithm",
    "logFiles",
];

/// The top-level keys of a CloudTrail record (any one makes an object a record), spelled as
/// in the JSON; compared in any case.
const RECORD_KEYS: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "apiVersion",
    "managementEvent",
    "recipientAccountId",
    "sharedEventID",
    "vpcEndpointId",
    "eventCategory",
    "tlsDetails",
    "sessionCredentialFromConsole",
];

const UTF8_BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

struct Reader<'a, 'f> {
    input: Input<'a>,
    source: &'a str,
    options: &'a ReadOptions,
    on_item: &'f mut dyn FnMut(Item) -> ControlFlow<()>,
    summary: Summary,
    /// Record slots started so far (records, failed records, non-records in their place).
    slot: u64,
    /// The slot a problem now would belong to.
    current: Option<u64>,
    /// JSON Lines: each value must fit on its line, and a broken line is skipped.
    lines: bool,
    /// Top-level values started so far.
    values: u64,
    /// The shape of the first top-level value, once known.
    first_shape: Option<Shape>,
}

/// A JSON object whose members were scanned one by one; its text was captured unless its
/// `Records` were streamed.
#[derive(Debug)]
struct Scanned {
    start: Pos,
    text: Capture,
    /// Ranges of the member values in `text`.
    members: Vec<Range<usize>>,
    streamed: bool,
    records: bool,
    record_like: bool,
    digest_like: bool,
    detail: Option<Range<usize>>,
    detail_type: Option<Range<usize>>,
    log_type: Option<Range<usize>>,
}

impl Scanned {
    fn new(start: Pos, limit: usize) -> Self {
        Self {
            start,
            text: Capture::new(limit),
            members: Vec::new(),
            streamed: false,
            records: false,
            record_like: false,
            digest_like: false,
            detail: None,
            detail_type: None,
            log_type: None,
        }
    }

    fn note(&mut self, key: Option<&str>, value: Range<usize>) {
        self.members.push(value.clone());
        let Some(key) = key else {
            return;
        };
        match key {
            "Records" => self.records = true,
            "detail" => self.detail = Some(value),
            "detail-type" => self.detail_type = Some(value),
            "p_log_type" => self.log_type = Some(value),
            _ => {}
        }
        if DIGEST_KEYS.contains(&key) {
            self.digest_like = true;
        }
        // Any case: some exports lower-case every key (`eventname`).
        if RECORD_KEYS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(key))
        {
            self.record_like = true;
        }
    }

    /// Panther exports mark CloudTrail records with `p_log_type`, and some carry nothing else.
    fn is_panther_cloudtrail(&self) -> bool {
        self.log_type.as_ref().is_some_and(|range| {
            serde_json::from_slice::<String>(&self.text.bytes()[range.clone()])
                .is_ok_and(|t| t == "AWS.CloudTrail")
        })
    }
}

impl Reader<'_, '_> {
    fn run(&mut self) -> Result<(), Fault> {
        if self.input.head().starts_with(&UTF8_BOM) {
            for _ in UTF8_BOM {
                self.input.peek()?;
                self.input.bump(&mut Capture::off());
            }
        }
        let mut first_on_one_line = false;
        let mut last_end_line = 0;
        loop {
            self.input.skip_whitespace(&mut Capture::off(), false)?;
            let Some(first) = self.input.peek()? else {
                return Ok(());
            };
            let start = self.input.pos();
            self.values += 1;
            if self.values == 2 && !self.lines {
                self.lines = first_on_one_line && start.line > last_end_line;
            }
            match self.top_value(first, start) {
                Ok(()) if self.lines => self.rest_of_line()?,
                Ok(()) => {}
                Err(Fault::Broken(kind, at)) => {
                    // The first value can still be a broken first line of JSON Lines, if
                    // nothing past its line has been read.
                    let resync =
                        self.lines || (self.values == 1 && self.input.pos().line == start.line);
                    self.error(kind, at)?;
                    if !resync {
                        return Ok(());
                    }
                    self.current = None;
                    self.input.skip_line()?;
                    self.lines = true;
                }
                Err(Fault::NotJson(kind, at)) => {
                    self.error(kind, at)?;
                    if !self.lines {
                        return Ok(());
                    }
                    self.current = None;
                    self.input.skip_line()?;
                }
                Err(fault) => return Err(fault),
            }
            if self.values == 1 {
                first_on_one_line = self.input.pos().line == start.line;
            }
            last_end_line = self.input.pos().line;
        }
    }

    /// JSON Lines: after a value, only whitespace may follow on its line.
    fn rest_of_line(&mut self) -> Result<(), Fault> {
        self.input.skip_whitespace(&mut Capture::off(), true)?;
        match self.input.peek()? {
            None | Some(b'\n') => Ok(()),
            Some(b) => {
                let at = self.input.pos();
                self.error(
                    ErrorKind::Syntax(format!(
                        "unexpected {} after the JSON value on this line",
                        describe(b)
                    )),
                    at,
                )?;
                self.input.skip_line()
            }
        }
    }

    fn top_value(&mut self, first: u8, start: Pos) -> Result<(), Fault> {
        match first {
            b'{' => self.object_value(start, true),
            b'[' => {
                self.note_shape(Shape::Array);
                self.array_of_records()
            }
            _ => Err(self.not_json(start)),
        }
    }

    /// An object in a record's place: a record, an envelope, a digest, or (at the top) a log
    /// file whose records are streamed.
    fn object_value(&mut self, start: Pos, top: bool) -> Result<(), Fault> {
        self.slot += 1;
        self.current = Some(self.slot);
        let scanned = self.scan_object(start, top)?;
        self.classify(scanned, top)?;
        self.current = None;
        Ok(())
    }

    fn scan_object(&mut self, start: Pos, allow_stream: bool) -> Result<Scanned, Fault> {
        let single_line = self.lines;
        let limit = self.options.max_record_bytes;
        let mut s = Scanned::new(start, limit);
        self.input.bump(&mut s.text);
        self.input.skip_whitespace(&mut s.text, single_line)?;
        if self.input.peek()? == Some(b'}') {
            self.input.bump(&mut s.text);
            return Ok(s);
        }
        loop {
            let key_at = self.input.pos();
            match self.input.peek()? {
                Some(b'"') => {}
                other => return Err(self.unexpected(other, "a key (a string)")),
            }
            let mut key = Capture::new(limit);
            self.input.scan_value(&mut key, single_line)?;
            s.text.append(&key);
            let name = if key.overflowed() {
                None
            } else {
                Some(decode_key(key.bytes(), key_at)?)
            };
            self.input.skip_whitespace(&mut s.text, single_line)?;
            match self.input.peek()? {
                Some(b':') => self.input.bump(&mut s.text),
                other => return Err(self.unexpected(other, "`:` after a key")),
            }
            self.input.skip_whitespace(&mut s.text, single_line)?;
            let name = name.as_deref();
            if name == Some("Records") && s.records {
                return Err(Fault::Broken(
                    ErrorKind::Syntax("duplicate key `Records`".to_owned()),
                    key_at,
                ));
            }
            if allow_stream && name == Some("Records") && self.input.peek()? == Some(b'[') {
                self.start_streaming(&mut s)?;
                self.array_of_records()?;
            } else {
                let from = s.text.len();
                if s.text.is_enabled() {
                    self.input.scan_value(&mut s.text, single_line)?;
                } else {
                    // Members after `Records`: checked, then dropped.
                    let value_at = self.input.pos();
                    let mut value = Capture::new(limit);
                    self.input.scan_value(&mut value, single_line)?;
                    if value.overflowed() {
                        // Not a record, but it cannot be checked either: say so.
                        self.error(ErrorKind::RecordTooLarge { limit }, value_at)?;
                    } else {
                        validate(value.bytes(), value_at)?;
                    }
                }
                s.note(name, from..s.text.len());
            }
            self.input.skip_whitespace(&mut s.text, single_line)?;
            match self.input.peek()? {
                Some(b',') => {
                    self.input.bump(&mut s.text);
                    self.input.skip_whitespace(&mut s.text, single_line)?;
                }
                Some(b'}') => {
                    self.input.bump(&mut s.text);
                    return Ok(s);
                }
                other => return Err(self.unexpected(other, "`,` or `}` in an object")),
            }
        }
    }

    /// A log file's `Records` array is next: its wrapper is not a record, and its records
    /// will be delivered one by one instead of being kept.
    fn start_streaming(&mut self, s: &mut Scanned) -> Result<(), Fault> {
        self.slot -= 1;
        self.current = None;
        if s.text.overflowed() {
            let limit = self.options.max_record_bytes;
            self.error(ErrorKind::RecordTooLarge { limit }, s.start)?;
        } else {
            let text = s.text.bytes();
            for member in &s.members {
                validate(&text[member.clone()], s.start.after(&text[..member.start]))?;
            }
        }
        s.text.disable();
        s.records = true;
        s.streamed = true;
        self.note_shape(Shape::LogFile);
        Ok(())
    }

    /// `[record, record, ...]`, the next byte being `[`.
    fn array_of_records(&mut self) -> Result<(), Fault> {
        let single_line = self.lines;
        let mut none = Capture::off();
        self.input.bump(&mut none);
        self.current = Some(self.slot + 1);
        self.input.skip_whitespace(&mut none, single_line)?;
        if self.input.peek()? == Some(b']') {
            self.input.bump(&mut none);
            self.current = None;
            return Ok(());
        }
        loop {
            let start = self.input.pos();
            match self.input.peek()? {
                Some(b'{') => self.object_value(start, false)?,
                Some(b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' | b'[') => {
                    self.slot += 1;
                    self.current = Some(self.slot);
                    self.non_object_element(start)?;
                }
                other => return Err(self.unexpected(other, "a record")),
            }
            self.current = Some(self.slot + 1);
            self.input.skip_whitespace(&mut none, single_line)?;
            match self.input.peek()? {
                Some(b',') => {
                    self.input.bump(&mut none);
                    self.input.skip_whitespace(&mut none, single_line)?;
                }
                Some(b']') => {
                    self.input.bump(&mut none);
                    self.current = None;
                    return Ok(());
                }
                other => return Err(self.unexpected(other, "`,` or `]` after a record")),
            }
        }
    }

    fn non_object_element(&mut self, start: Pos) -> Result<(), Fault> {
        let limit = self.options.max_record_bytes;
        let mut value = Capture::new(limit);
        self.input.scan_value(&mut value, self.lines)?;
        if value.overflowed() {
            return self.error(ErrorKind::RecordTooLarge { limit }, start);
        }
        validate(value.bytes(), start)?;
        let found = match value.bytes().first() {
            Some(b'"') => "a string",
            Some(b'[') => "an array",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            _ => "a number",
        };
        self.error(
            ErrorKind::NotCloudTrail(format!("found {found} where a record should be")),
            start,
        )
    }

    fn classify(&mut self, s: Scanned, top: bool) -> Result<(), Fault> {
        if s.streamed {
            return Ok(());
        }
        let start = s.start;
        if s.text.overflowed() {
            let limit = self.options.max_record_bytes;
            return self.error(ErrorKind::RecordTooLarge { limit }, start);
        }
        let text = s.text.bytes();
        if let Err(e) = std::str::from_utf8(text) {
            // Broken syntax must still end the source; the stand-in characters keep it intact.
            validate(String::from_utf8_lossy(text).as_bytes(), start)?;
            return self.error(ErrorKind::NotUtf8, start.after(&text[..e.valid_up_to()]));
        }
        if s.records {
            validate(text, start)?;
            let what = "its `Records` is not an array".to_owned();
            return self.error(ErrorKind::NotCloudTrail(what), start);
        }
        if s.digest_like && !s.record_like {
            validate(text, start)?;
            self.summary.digests += 1;
            if top {
                self.note_shape(Shape::Digest);
            }
            return Ok(());
        }
        if let (Some(detail), Some(detail_type)) = (s.detail.clone(), s.detail_type.clone()) {
            validate(text, start)?;
            if top {
                self.note_shape(Shape::EventBridge);
            }
            let what = match serde_json::from_slice::<String>(&text[detail_type]) {
                Ok(t) if crate::envelope::is_cloudtrail_detail_type(&t) => None,
                Ok(t) => Some(format!("an EventBridge event of type {t:?}")),
                Err(_) => Some("an EventBridge event whose detail-type is not a string".to_owned()),
            };
            if let Some(what) = what {
                return self.error(ErrorKind::NotCloudTrail(what), start);
            }
            let detail_at = start.after(&text[..detail.start]);
            return self.record(&text[detail], detail_at, start);
        }
        if s.record_like || s.is_panther_cloudtrail() {
            if top {
                self.note_shape(Shape::Record);
            }
            return self.record(text, start, start);
        }
        validate(text, start)?;
        let what = "a JSON object without any CloudTrail record field".to_owned();
        self.error(ErrorKind::NotCloudTrail(what), start)
    }

    /// Parses the record in `text` (which starts at `at`) and delivers it, or the error.
    fn record(&mut self, text: &[u8], at: Pos, record_start: Pos) -> Result<(), Fault> {
        match serde_json::from_slice::<Value>(text) {
            Ok(record) => {
                self.summary.records += 1;
                let position = record_start.in_record(self.current);
                self.emit(Item::Record { record, position })
            }
            Err(e) => Err(Fault::Broken(syntax_kind(&e, text), locate(at, text, &e))),
        }
    }

    fn note_shape(&mut self, shape: Shape) {
        if self.values == 1 && self.first_shape.is_none() {
            self.first_shape = Some(shape);
        }
    }

    fn unexpected(&self, found: Option<u8>, expected: &str) -> Fault {
        let at = self.input.pos();
        let kind = match found {
            None => ErrorKind::UnexpectedEnd,
            Some(b'\n') if self.lines => ErrorKind::Syntax(format!(
                "the line ends where {expected} should be (JSON Lines need one complete value per line)"
            )),
            Some(b) => ErrorKind::Syntax(format!("expected {expected}, found {}", describe(b))),
        };
        Fault::Broken(kind, at)
    }

    /// No JSON value starts at `at`: say what the input looks like instead.
    fn not_json(&mut self, at: Pos) -> Fault {
        if let (0, Some(format)) = (at.byte, sniff_format(self.input.head())) {
            return Fault::NotJson(ErrorKind::UnsupportedFormat(format), at);
        }
        let head = match self.input.peek_some() {
            Ok(head) => head,
            Err(fault) => return fault,
        };
        let kind = match head.first() {
            Some(&b) if b.is_ascii_graphic() => ErrorKind::NotJson(format!(
                "found {} where a JSON object or array should start",
                describe(b)
            )),
            _ => match std::str::from_utf8(head) {
                Err(e) if e.error_len().is_some() || e.valid_up_to() == 0 => ErrorKind::NotUtf8,
                _ => ErrorKind::NotJson("found text that is not a JSON object or array".to_owned()),
            },
        };
        Fault::NotJson(kind, at)
    }

    fn emit(&mut self, item: Item) -> Result<(), Fault> {
        match (self.on_item)(item) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Fault::Stopped),
        }
    }

    fn error(&mut self, kind: ErrorKind, at: Pos) -> Result<(), Fault> {
        self.summary.errors += 1;
        let position = Some(at.in_record(self.current));
        self.emit(Item::Error(ReadError::new(self.source, position, kind)))
    }
}

/// Formats that are easy to mistake for (or find instead of) CloudTrail JSON.
fn sniff_format(head: &[u8]) -> Option<&'static str> {
    const FORMATS: &[(&[u8], &str)] = &[
        (
            b"PK\x03\x04",
            "a zip archive: unpack it first (only gzip is read directly)",
        ),
        (
            b"\x28\xb5\x2f\xfd",
            "zstd-compressed data: only gzip is read",
        ),
        (b"BZh", "bzip2-compressed data: only gzip is read"),
        (b"\xfd7zXZ\x00", "xz-compressed data: only gzip is read"),
        (&GZIP_MAGIC, "gzip inside gzip: decompress it once first"),
        (b"\xff\xfe", "UTF-16 text: only UTF-8 is read"),
        (b"\xfe\xff", "UTF-16 text: only UTF-8 is read"),
    ];
    FORMATS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|&(_, name)| name)
}

fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

fn decode_key(bytes: &[u8], at: Pos) -> Result<String, Fault> {
    serde_json::from_slice::<String>(bytes)
        .map_err(|e| Fault::Broken(syntax_kind(&e, bytes), locate(at, bytes, &e)))
}

/// Checks that `text` (which starts at `at`) is one valid JSON value.
fn validate(text: &[u8], at: Pos) -> Result<(), Fault> {
    serde_json::from_slice::<IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| Fault::Broken(syntax_kind(&e, text), locate(at, text, &e)))
}

/// The error serde_json found in `text`, a copy of one value whose end the scanner found: so
/// an "EOF" there is a value cut short (`tru`), not the end of the input.
fn syntax_kind(e: &serde_json::Error, text: &[u8]) -> ErrorKind {
    if !e.is_eof() {
        return ErrorKind::Syntax(message(e));
    }
    match std::str::from_utf8(text) {
        Ok(short) if short.len() <= 24 => {
            ErrorKind::Syntax(format!("`{short}` is not a complete JSON value"))
        }
        _ => ErrorKind::Syntax("the value is not complete".to_owned()),
    }
}

/// serde_json's message without its " at line L column C", which is relative to the copy.
fn message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => full,
    }
}

/// Where in the source serde_json's error in `text` (which starts at `at`) is.
fn locate(at: Pos, text: &[u8], e: &serde_json::Error) -> Pos {
    if e.line() == 0 {
        return at;
    }
    let line_start = if e.line() == 1 {
        0
    } else {
        text.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(e.line() - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    let index = (line_start + e.column().saturating_sub(1)).min(text.len());
    at.after(&text[..index])
}
