//! The one place in trailwarden's product crates that decodes gzip (`clippy.toml` bans the
//! flate2 decoders everywhere else): CloudTrail log files, digests and S3 objects come from
//! a bucket an attacker may be able to write to, so every decoder here stops at a size cap
//! instead of inflating a gzip bomb without end.
//!
//! Gzip is recognised by its magic bytes, never by a file name (S3 keys end in `.json.gz`
//! whatever the content), and multi-member gzip is read to its end.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, Read};

/// The first two bytes of every gzip member.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether `bytes` start like gzip data.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// The error a [`CappedGzip`] returns, wrapped in an [`io::Error`], once the data decodes to
/// more than its cap: the bytes up to the cap were delivered, and nothing after them will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedTooLarge {
    /// The cap, in decoded bytes.
    pub limit: u64,
}

impl fmt::Display for DecodedTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gzip data decodes to more than {} bytes", self.limit)
    }
}

impl std::error::Error for DecodedTooLarge {}

impl DecodedTooLarge {
    /// The cap that `error` reports, when it is a [`DecodedTooLarge`].
    pub fn find(error: &io::Error) -> Option<Self> {
        error.get_ref()?.downcast_ref::<Self>().copied()
    }
}

// The one allowed use of the flate2 decoders: every use goes through the cap below.
#[allow(clippy::disallowed_types)]
type Decoder<R> = flate2::bufread::MultiGzDecoder<R>;

/// A `Read` adaptor that gunzips (multi-member) gzip data and fails with [`DecodedTooLarge`]
/// once more than `limit` bytes come out. Exactly `limit` bytes are fine.
pub struct CappedGzip<R: BufRead> {
    decoder: Decoder<R>,
    limit: u64,
    remaining: u64,
}

impl<R: BufRead> fmt::Debug for CappedGzip<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CappedGzip")
            .field("limit", &self.limit)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> CappedGzip<R> {
    /// Decodes the gzip data `compressed` yields, at most `limit` bytes of it.
    pub fn new(compressed: R, limit: u64) -> Self {
        Self {
            decoder: Decoder::new(compressed),
            limit,
            remaining: limit,
        }
    }
}

impl<R: BufRead> Read for CappedGzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            // At the cap: the end of the data is fine, one byte more is not.
            let mut probe = [0u8; 1];
            return match self.decoder.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(DecodedTooLarge { limit: self.limit })),
            };
        }
        let room = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.decoder.read(&mut buf[..room])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Gunzips the whole of `compressed` (multi-member gzip) into memory, at most `limit` bytes
/// of it: for small inputs held whole, such as a CloudTrail log file. Errors are the
/// decoder's (truncated or corrupt data) or [`DecodedTooLarge`] (see [`DecodedTooLarge::find`]).
pub fn gunzip(compressed: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let mut decoded = Vec::with_capacity(size_hint(compressed, limit));
    CappedGzip::new(compressed, limit).read_to_end(&mut decoded)?;
    Ok(decoded)
}

/// The text of an input held whole: `bytes` themselves when they are not gzip, else
/// [`gunzip`]ped (at most `limit` bytes).
pub fn decode_whole(bytes: &[u8], limit: u64) -> io::Result<Cow<'_, [u8]>> {
    if is_gzip(bytes) {
        gunzip(bytes, limit).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(bytes))
    }
}

/// The decoded size the gzip trailer states for the last member: only a hint (it is the
/// size mod 2^32, and an attacker writes it), so it is capped by `limit` and by 40 times the
/// compressed size.
fn size_hint(compressed: &[u8], limit: u64) -> usize {
    let Some(tail) = compressed
        .len()
        .checked_sub(4)
        .and_then(|at| compressed.get(at..))
    else {
        return 0;
    };
    let size = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    size.min(usize::try_from(limit).unwrap_or(usize::MAX))
        .min(compressed.len().saturating_mul(40))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    }

    #[test]
    fn gunzip_reads_every_member_up_to_the_cap() {
        let mut data = gzip(b"hello, ");
        data.extend(gzip(b"world"));
        assert!(is_gzip(&data));
        assert_eq!(gunzip(&data, 12).expect("decodes"), b"hello, world");
        let error = gunzip(&data, 11).expect_err("one byte over the cap");
        assert_eq!(
            DecodedTooLarge::find(&error),
            Some(DecodedTooLarge { limit: 11 })
        );
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let bomb = gzip(&vec![b' '; 10 << 20]);
        assert!(bomb.len() * 100 < 10 << 20, "{} bytes", bomb.len());
        let mut decoder = CappedGzip::new(&bomb[..], 1 << 20);
        let mut out = Vec::new();
        let error = decoder.read_to_end(&mut out).expect_err("capped");
        assert_eq!(out.len(), 1 << 20);
        assert!(DecodedTooLarge::find(&error).is_some(), "{error}");
        assert_eq!(
            error.to_string(),
            "gzip data decodes to more than 1048576 bytes"
        );
    }

    #[test]
    fn damage_is_the_decoders_error_not_the_cap() {
        let data = gzip(b"{\"Records\": []}");
        let error = gunzip(&data[..data.len() - 3], 1 << 20).expect_err("truncated");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(DecodedTooLarge::find(&error).is_none());
    }

    #[test]
    fn decode_whole_borrows_plain_text() {
        let text = b"{\"Records\": []}";
        assert!(matches!(decode_whole(text, 1), Ok(Cow::Borrowed(t)) if t == text));
        let zipped = gzip(text);
        let decoded = decode_whole(&zipped, 100).expect("decodes");
        assert_eq!(&decoded[..], text);
        assert!(decode_whole(&zipped, 5).is_err());
    }

    #[test]
    fn a_lying_trailer_is_only_a_hint() {
        let mut data = gzip(b"{}");
        let at = data.len() - 4;
        data[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(size_hint(&data, 1 << 30) <= data.len() * 40);
        assert!(
            gunzip(&data, 1 << 30).is_err(),
            "the trailer's size is checked"
        );
    }
}
