//! The coverage table of `rules/README.md` is what `trailwarden techniques --markdown` prints:
//! the documentation cannot claim a state check or a restore the code does not have.

use trailwarden_engine::coverage::{coverage, markdown};
use trailwarden_rules::RuleSet;

const BEGIN: &str = "<!-- techniques:begin -->\n";
const END: &str = "<!-- techniques:end -->";

#[test]
fn the_readme_table_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules/README.md");
    let readme = std::fs::read_to_string(path).expect("rules/README.md");
    let (Some(start), Some(end)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("rules/README.md has no {BEGIN:?} … {END:?} section");
    };
    let (pack, _) = RuleSet::from_dirs(&[], true).expect("the built-in pack loads");
    let generated = markdown(&coverage(&pack));
    let written = &readme[start + BEGIN.len()..end];
    if written != generated {
        if std::env::var_os("TRAILWARDEN_BLESS").is_some() {
            let updated = format!(
                "{}{generated}{}",
                &readme[..start + BEGIN.len()],
                &readme[end..]
            );
            std::fs::write(path, updated).expect("rewrite rules/README.md");
            return;
        }
        panic!(
            "rules/README.md's coverage table differs from `trailwarden techniques --markdown`; \
             rerun with TRAILWARDEN_BLESS=1 to rewrite it, and review the diff.\n--- written\n{written}\n--- generated\n{generated}"
        );
    }
}
