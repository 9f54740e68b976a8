//! Arbitrary rule text and arbitrary records into the Sigma engine: loading either succeeds
//! or names a line, and evaluating never panics. Input: rule text, a 0 byte, a JSON record.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use trailwarden_rules::RuleSet;

fn pack() -> &'static RuleSet {
    static PACK: OnceLock<RuleSet> = OnceLock::new();
    PACK.get_or_init(|| RuleSet::built_in().expect("the built-in pack loads"))
}

fuzz_target!(|data: &[u8]| {
    let (rule, record) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let record: serde_json::Value = serde_json::from_slice(record).unwrap_or_default();
    let text = String::from_utf8_lossy(rule).into_owned();
    match RuleSet::load([("fuzz.yml".to_owned(), text)]) {
        Ok((set, _)) => {
            set.for_each_match(&record, |_, _| {});
            let _ = set.run_tests();
            let _ = set.lint(true);
        }
        Err(errors) => assert!(errors.iter().all(|e| e.file == "fuzz.yml")),
    }
    pack().for_each_match(&record, |_, _| {});
});
