//! Arbitrary bytes, as they are and gzip'ed, into `read_records`: it must not panic, its
//! summary must match what it delivered, and whatever serde_json rejects it must report.

#![no_main]

use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::ops::ControlFlow;
use trailwarden_records::{Item, ReadOptions, read_records};

fuzz_target!(|data: &[u8]| {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).expect("in memory");
    let gzipped = encoder.finish().expect("in memory");
    // A small record limit too, so that the oversize paths get exercised.
    for max_record_bytes in [64 * 1024, 200] {
        let options = ReadOptions {
            max_record_bytes,
            ..ReadOptions::default()
        };
        check(data, data, &options);
        check(&gzipped, data, &options);
    }
});

/// Reads `input`, whose decoded content is `decoded`.
fn check(input: &[u8], decoded: &[u8], options: &ReadOptions) {
    let (mut records, mut errors) = (0, 0);
    let summary = read_records(input, "fuzz", options, |item| {
        match item {
            Item::Record { .. } => records += 1,
            Item::Error(e) => {
                assert!(!e.to_string().contains('\n'), "one-line messages");
                errors += 1;
            }
        }
        ControlFlow::Continue(())
    });
    assert_eq!(summary.records, records);
    assert_eq!(summary.errors, errors);

    // The reader skips a UTF-8 byte order mark, which serde_json rejects.
    if !decoded.starts_with(b"\xef\xbb\xbf") {
        let serde_accepts = serde_json::Deserializer::from_slice(decoded)
            .into_iter::<serde::de::IgnoredAny>()
            .all(|r| r.is_ok());
        assert!(
            serde_accepts || errors > 0,
            "serde_json rejects it, the reader did not"
        );
    }
}
