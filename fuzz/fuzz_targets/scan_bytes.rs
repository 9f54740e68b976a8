//! Arbitrary bytes (as they are and gzip'ed) through the scan pipeline with the built-in
//! pack: the fast path and the streaming fallback must never panic, and every record they
//! count is accounted for.

#![no_main]

use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::sync::OnceLock;
use trailwarden_engine::scan::{Input, ScanOptions, scan_input};
use trailwarden_rules::RuleSet;

fn pack() -> &'static RuleSet {
    static PACK: OnceLock<RuleSet> = OnceLock::new();
    PACK.get_or_init(|| RuleSet::built_in().expect("the built-in pack loads"))
}

fuzz_target!(|data: &[u8]| {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).expect("in memory");
    let gzipped = encoder.finish().expect("in memory");
    let options = ScanOptions { workers: 1, ..ScanOptions::default() };
    for bytes in [data.to_vec(), gzipped] {
        let result = scan_input(Input::Bytes { name: "fuzz".into(), bytes }, pack(), &options);
        assert!(result.findings.len() as u64 <= result.records * pack().len() as u64);
        assert!(result.errors.iter().all(|e| e.starts_with("fuzz")));
    }
});
