//! One rule-id scheme for event rules and state checks (rules/README.md, "Rule ids").

use trailwarden_engine::forwarding;
use trailwarden_rules::RuleSet;

const AREAS: [&str; 8] = [
    "trail",
    "bucket",
    "kms",
    "cloudwatch",
    "detection",
    "sources",
    "organization",
    "responder",
];

/// `<area>-<what>`: an area of the pack, then lower-case words joined by `-`.
fn follows_the_scheme(id: &str) -> bool {
    AREAS.iter().any(|area| {
        id.strip_prefix(area)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|what| {
                !what.is_empty()
                    && what.split('-').all(|w| {
                        !w.is_empty()
                            && w.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    })
            })
    })
}

#[test]
fn every_event_rule_and_state_check_follows_one_scheme() {
    let pack = RuleSet::built_in().unwrap();
    for rule in pack.rules() {
        assert!(
            follows_the_scheme(&rule.rule_id),
            "event rule {} ({})",
            rule.rule_id,
            rule.source
        );
        // The area is the folder the rule file sits in.
        let folder = rule.source.split('/').rev().nth(1).unwrap_or_default();
        assert!(
            rule.rule_id.starts_with(&format!("{folder}-")),
            "{} is in rules/{folder}/",
            rule.rule_id
        );
    }
    for check in trailwarden_posture::checks::ALL {
        assert!(follows_the_scheme(check.id), "state check {}", check.id);
    }
    assert!(follows_the_scheme(forwarding::RULE_ID));
    for bad in [
        "trail.logging-stopped",
        "Trail-x",
        "trail-",
        "x-y",
        "trail--x",
    ] {
        assert!(!follows_the_scheme(bad), "{bad}");
    }
}
