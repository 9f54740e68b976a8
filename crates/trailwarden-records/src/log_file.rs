//! A CloudTrail log file held whole, its records split but not parsed.

use serde::Deserialize;
use serde_json::value::RawValue;

/// A CloudTrail log file, `{"Records": [...]}`, read only as far as its records: each one is
/// its exact JSON text, for callers that look at a few fields of every record and parse the
/// rest only when they need to (`trailwarden_engine::scan`'s fast path).
///
/// The whole text is checked for syntax; other top-level keys are ignored and a duplicate
/// `Records` key is an error, as in the streaming reader ([`crate::read_records`]), which is
/// the way to read anything else and to learn where a broken file breaks.
#[derive(Debug, Deserialize)]
pub struct LogFile<'a> {
    /// The records, in file order, as written.
    #[serde(borrow, rename = "Records")]
    pub records: Vec<&'a RawValue>,
}

impl<'a> LogFile<'a> {
    /// `text` (decoded, see [`crate::gzip::decode_whole`]) as a log file; `None` when it is
    /// not a well-formed one.
    pub fn parse(text: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::LogFile;

    #[test]
    fn records_are_split_not_parsed() {
        let text = br#"{"x": 1, "Records": [{"eventName": "A", "n": [1, 2]}, 7]}"#;
        let file = LogFile::parse(text).expect("a log file");
        let records: Vec<&str> = file.records.iter().map(|r| r.get()).collect();
        assert_eq!(records, [r#"{"eventName": "A", "n": [1, 2]}"#, "7"]);
    }

    #[test]
    fn anything_else_is_not_a_log_file() {
        for text in [
            &br#"{"Records": [{}], "Records": []}"#[..],
            br#"{"Records": [{}]} trailing"#,
            br#"{"Records": [{]}"#,
            br#"{"Records": 7}"#,
            br#"{"eventName": "A"}"#,
            b"",
        ] {
            assert!(
                LogFile::parse(text).is_none(),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
