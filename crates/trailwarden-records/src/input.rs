//! Bytes in: gzip detection and decoding (through [`crate::gzip`]), position tracking, and a JSON scanner that finds
//! where a value ends without building it, so the reader can copy one record at a time (with
//! a size cap) and hand it to serde_json.

use crate::error::{ErrorKind, Position};
use crate::gzip::{CappedGzip, DecodedTooLarge, is_gzip};
use std::io::{self, BufRead, BufReader, Read};

const BUFFER_BYTES: usize = 64 * 1024;

/// Position of the next byte to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) byte: u64,
    pub(crate) line: u64,
    pub(crate) column: u64,
}

impl Pos {
    pub(crate) const START: Pos = Pos {
        byte: 0,
        line: 1,
        column: 1,
    };

    /// The position just after `bytes`, read from here.
    pub(crate) fn after(mut self, bytes: &[u8]) -> Pos {
        self.byte += bytes.len() as u64;
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                self.line += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
                self.column = (bytes.len() - last) as u64;
            }
            None => self.column += bytes.len() as u64,
        }
        self
    }

    pub(crate) fn in_record(self, record: Option<u64>) -> Position {
        Position {
            record,
            line: self.line,
            column: self.column,
            byte: self.byte,
        }
    }
}

/// Why scanning stopped early.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The source cannot be read any further (I/O, gzip, input limit).
    Fatal(ErrorKind, Pos),
    /// Broken JSON structure: JSON Lines can go on at the next line, other shapes cannot.
    Broken(ErrorKind, Pos),
    /// No JSON value starts here; in JSON Lines the next line may still be fine.
    NotJson(ErrorKind, Pos),
    /// The caller asked to stop.
    Stopped,
}

/// A copy of the bytes of one value, up to a limit; past it only the fact is kept, so memory
/// stays bounded however large the value is.
#[derive(Debug)]
pub(crate) struct Capture {
    bytes: Vec<u8>,
    limit: usize,
    enabled: bool,
    overflowed: bool,
}

impl Capture {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
            enabled: true,
            overflowed: false,
        }
    }

    pub(crate) fn off() -> Self {
        Self {
            enabled: false,
            ..Self::new(0)
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if !self.enabled || self.overflowed {
            return;
        }
        if self.bytes.len() + chunk.len() > self.limit {
            self.overflowed = true;
            self.bytes = Vec::new();
        } else {
            self.bytes.extend_from_slice(chunk);
        }
    }

    /// Appends what `other` captured; if `other` overflowed, this one has too.
    pub(crate) fn append(&mut self, other: &Capture) {
        if other.overflowed && self.enabled {
            self.overflowed = true;
            self.bytes = Vec::new();
        } else {
            self.push(&other.bytes);
        }
    }

    /// Stops capturing and frees what was captured.
    pub(crate) fn disable(&mut self) {
        self.enabled = false;
        self.bytes = Vec::new();
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// The decoded input, read through a buffer, with the position of the next byte.
pub(crate) struct Input<'a> {
    reader: BufReader<Box<dyn Read + 'a>>,
    head: Vec<u8>,
    pos: Pos,
    gzip: bool,
    limit: u64,
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("pos", &self.pos)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl<'a> Input<'a> {
    /// Wraps `raw`, gunzipping it when it starts with the gzip magic bytes (the file name is
    /// not trusted: S3 keys end in `.json.gz` whatever the content). At most `limit` decoded
    /// bytes are read, gzip or not.
    pub(crate) fn open<R: Read + 'a>(mut raw: R, limit: u64) -> Result<Self, Fault> {
        let magic = read_head(&mut raw, 2).map_err(|e| io_fault(false, e))?;
        let gzip = is_gzip(&magic);
        let raw = io::Cursor::new(magic).chain(raw);
        let mut decoded: Box<dyn Read + 'a> = if gzip {
            Box::new(CappedGzip::new(
                BufReader::with_capacity(BUFFER_BYTES, raw),
                limit,
            ))
        } else {
            Box::new(raw)
        };
        // Read apart so that a whole magic number or byte order mark can be seen at once.
        let head = read_head(&mut decoded, HEAD_BYTES).map_err(|e| io_fault(gzip, e))?;
        let decoded: Box<dyn Read + 'a> = Box::new(io::Cursor::new(head.clone()).chain(decoded));
        Ok(Self {
            reader: BufReader::with_capacity(BUFFER_BYTES, decoded),
            head,
            pos: Pos::START,
            gzip,
            limit,
        })
    }

    /// The first bytes of the decoded input (fewer only if the input is shorter).
    pub(crate) fn head(&self) -> &[u8] {
        &self.head
    }

    pub(crate) fn is_gzip(&self) -> bool {
        self.gzip
    }

    pub(crate) fn pos(&self) -> Pos {
        self.pos
    }

    /// Makes sure bytes are buffered unless the input is at its end; returns the buffer.
    fn fill(&mut self) -> Result<&[u8], Fault> {
        loop {
            match self.reader.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fault::Fatal(io_error(self.gzip, e), self.pos)),
            }
        }
        // Plain input stops here; gzip already stops in its decoder, at the same byte.
        let buffer = self.reader.buffer();
        if self.pos.byte >= self.limit && !buffer.is_empty() {
            return Err(Fault::Fatal(
                ErrorKind::InputTooLarge { limit: self.limit },
                self.pos,
            ));
        }
        Ok(self.reader.buffer())
    }

    /// The next byte, not consumed; `None` at the end of the input.
    pub(crate) fn peek(&mut self) -> Result<Option<u8>, Fault> {
        Ok(self.fill()?.first().copied())
    }

    /// The buffered bytes from the next one on (at least one unless at the end), not consumed.
    pub(crate) fn peek_some(&mut self) -> Result<&[u8], Fault> {
        self.fill()
    }

    /// Consumes `n` buffered bytes (at most what `fill` returned), copying them to `capture`.
    fn consume(&mut self, n: usize, capture: &mut Capture) {
        let bytes = &self.reader.buffer()[..n];
        capture.push(bytes);
        self.pos = self.pos.after(bytes);
        self.reader.consume(n);
    }

    /// Consumes the next byte, which the caller has peeked.
    pub(crate) fn bump(&mut self, capture: &mut Capture) {
        if !self.reader.buffer().is_empty() {
            self.consume(1, capture);
        }
    }

    /// Skips spaces, tabs and carriage returns, and newlines too unless `stop_at_newline`.
    pub(crate) fn skip_whitespace(
        &mut self,
        capture: &mut Capture,
        stop_at_newline: bool,
    ) -> Result<(), Fault> {
        loop {
            let buffer = self.fill()?;
            if buffer.is_empty() {
                return Ok(());
            }
            let n = buffer
                .iter()
                .position(|&b| {
                    !matches!(b, b' ' | b'\t' | b'\r') && (stop_at_newline || b != b'\n')
                })
                .unwrap_or(buffer.len());
            let more = n == buffer.len();
            self.consume(n, capture);
            if !more {
                return Ok(());
            }
        }
    }

    /// Skips the rest of the line, newline included.
    pub(crate) fn skip_line(&mut self) -> Result<(), Fault> {
        let mut nothing = Capture::off();
        loop {
            let buffer = self.fill()?;
            if buffer.is_empty() {
                return Ok(());
            }
            match buffer.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.consume(i + 1, &mut nothing);
                    return Ok(());
                }
                None => {
                    let n = buffer.len();
                    self.consume(n, &mut nothing);
                }
            }
        }
    }

    /// Consumes one JSON value (string, number, literal, object or array) starting at the next
    /// byte, copying it to `capture`. Only its extent is found here (strings and nesting);
    /// whether it is valid JSON is for serde_json to say on the copy. With `single_line`, a
    /// newline inside the value is an error and is not consumed (JSON Lines).
    pub(crate) fn scan_value(
        &mut self,
        capture: &mut Capture,
        single_line: bool,
    ) -> Result<(), Fault> {
        let start = self.pos;
        let Some(first) = self.peek()? else {
            return Err(Fault::Broken(ErrorKind::UnexpectedEnd, self.pos));
        };
        if matches!(first, b',' | b':' | b'}' | b']') {
            return Err(Fault::Broken(
                ErrorKind::Syntax(format!("expected a value, found `{}`", first as char)),
                self.pos,
            ));
        }
        let scalar = !matches!(first, b'"' | b'{' | b'[');
        let mut depth: u64 = 0;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let buffer = self.fill()?;
            if buffer.is_empty() {
                if scalar {
                    return Ok(());
                }
                return Err(Fault::Broken(ErrorKind::UnexpectedEnd, self.pos));
            }
            let mut end = None;
            let mut line_end = None;
            for (i, &b) in buffer.iter().enumerate() {
                if scalar {
                    if matches!(
                        b,
                        b' ' | b'\t'
                            | b'\r'
                            | b'\n'
                            | b','
                            | b':'
                            | b'}'
                            | b']'
                            | b'"'
                            | b'{'
                            | b'['
                    ) {
                        end = Some(i);
                        break;
                    }
                } else if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    } else if b == b'\n' && single_line {
                        line_end = Some(i);
                        break;
                    }
                } else {
                    match b {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                end = Some(i + 1);
                                break;
                            }
                        }
                        b'\n' if single_line => {
                            line_end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
            }
            if let Some(i) = line_end {
                self.consume(i, capture);
                return Err(Fault::Broken(line_ends_inside(start), self.pos));
            }
            match end {
                Some(i) => {
                    self.consume(i, capture);
                    return Ok(());
                }
                None => {
                    let n = buffer.len();
                    self.consume(n, capture);
                }
            }
        }
    }
}

const HEAD_BYTES: usize = 8;

/// Reads up to `n` bytes, fewer only at the end of the input.
fn read_head(reader: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    reader.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn io_error(gzip: bool, e: io::Error) -> ErrorKind {
    if let Some(DecodedTooLarge { limit }) = DecodedTooLarge::find(&e) {
        return ErrorKind::InputTooLarge { limit };
    }
    match (gzip, e.kind()) {
        (true, io::ErrorKind::UnexpectedEof) => ErrorKind::TruncatedGzip,
        (true, io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData) => {
            ErrorKind::CorruptGzip(e)
        }
        _ => ErrorKind::Io(e),
    }
}

fn io_fault(gzip: bool, e: io::Error) -> Fault {
    Fault::Fatal(io_error(gzip, e), Pos::START)
}

fn line_ends_inside(start: Pos) -> ErrorKind {
    ErrorKind::Syntax(format!(
        "the line ends inside the JSON value that starts at column {} \
         (JSON Lines need one complete value per line)",
        start.column
    ))
}
