//! What trailwarden covers of the tamper catalog, computed from what it ships: the rule pack's
//! `catalog` references, the state checks' techniques, how each check's findings are answered
//! (restore calls or an escalation) and the lab's attacks. `trailwarden techniques` prints it;
//! `rules/README.md`'s coverage table is generated from it.
//!
//! Nothing here is declared twice: a technique is "rule only" because no check names it, not
//! because a table says so.

use crate::forwarding;
use crate::guard::responder_rules;
use serde::Serialize;
use std::collections::BTreeSet;
use trailwarden_model::technique::{CATALOG, LAB_ATTACKS, Technique};
use trailwarden_posture::plan::{Remedy, remedy};
use trailwarden_rules::RuleSet;

/// A state check: what the sweep and `audit` compare, and how its findings are answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateCheck {
    pub id: &'static str,
    pub remedy: Remedy,
}

/// How far one technique is covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// An event rule, a state check answered by a restore or an escalation, and a lab attack.
    EndToEnd,
    /// Rule and state check, but no lab attack performs it.
    NoLabAttack,
    /// Seen only by an event rule: stop the event path and nothing sees it.
    RuleOnly,
    /// Seen only in state (the technique leaves no decisive record).
    StateOnly,
    /// Changes no configuration: an event rule is all there can be (the reason says why).
    Stateless,
    /// Neither a rule nor a check.
    Uncovered,
}

impl Status {
    /// The name in every output (the JSON's too).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndToEnd => "end-to-end",
            Self::NoLabAttack => "no-lab-attack",
            Self::RuleOnly => "rule-only",
            Self::StateOnly => "state-only",
            Self::Stateless => "stateless",
            Self::Uncovered => "uncovered",
        }
    }
}

/// One technique and everything that answers it.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub id: &'static str,
    pub title: &'static str,
    /// Event rules whose `catalog` names the technique.
    pub rules: Vec<String>,
    pub checks: Vec<StateCheck>,
    /// Lab attacks that perform it.
    pub lab_attacks: Vec<&'static str>,
    pub status: Status,
    /// Why no state check can exist, for stateless techniques.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stateless: Option<&'static str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub note: &'static str,
}

/// State checks the engine owns (beside the audit's): trailwarden's own plumbing, read on every
/// sweep.
fn engine_checks() -> [(&'static str, &'static str, Remedy); 2] {
    [
        (
            forwarding::RULE_ID,
            "H1",
            Remedy::Restores {
                calls: &["events:PutRule", "events:PutTargets"],
            },
        ),
        (
            responder_rules::ACCOUNT_UNREADABLE,
            "H3",
            Remedy::Escalates {
                reason: "trailwarden cannot read the account: its role, the role's policies or an SCP were changed; restore them from the security account (deploy) or the management account",
            },
        ),
    ]
}

/// Every state check with its technique.
fn all_checks() -> Vec<(&'static str, &'static str, Remedy)> {
    trailwarden_posture::checks::ALL
        .iter()
        .map(|c| (c.id, c.technique, remedy(c.id)))
        .chain(engine_checks())
        .collect()
}

/// The coverage of every catalog technique by `rules`.
pub fn coverage(rules: &RuleSet) -> Vec<Coverage> {
    let checks = all_checks();
    CATALOG
        .iter()
        .map(|t| of_technique(t, rules, &checks))
        .collect()
}

fn of_technique(
    t: &'static Technique,
    rules: &RuleSet,
    checks: &[(&'static str, &'static str, Remedy)],
) -> Coverage {
    let rule_ids: Vec<String> = rules
        .rules()
        .iter()
        .filter(|r| r.catalog.iter().any(|c| c == t.id))
        .map(|r| r.rule_id.clone())
        .collect();
    let shown_by = trailwarden_model::technique::shown_by(t.id);
    let state: Vec<StateCheck> = checks
        .iter()
        .filter(|(_, techniques, _)| techniques.split(',').any(|x| shown_by.contains(&x)))
        .map(|&(id, _, remedy)| StateCheck { id, remedy })
        .collect();
    let attacks: Vec<&'static str> = LAB_ATTACKS
        .iter()
        .filter(|a| a.catalog == t.id)
        .map(|a| a.id)
        .collect();
    let status = match (rule_ids.is_empty(), state.is_empty()) {
        (false, false) if attacks.is_empty() => Status::NoLabAttack,
        (false, false) => Status::EndToEnd,
        (true, false) => Status::StateOnly,
        (_, true) if t.stateless.is_some() => Status::Stateless,
        (false, true) => Status::RuleOnly,
        (true, true) => Status::Uncovered,
    };
    Coverage {
        id: t.id,
        title: t.title,
        rules: rule_ids,
        checks: state,
        lab_attacks: attacks,
        status,
        stateless: t.stateless,
        note: t.note,
    }
}

/// Catalog references in `rules` that name no technique (a typo would silently leave a
/// technique uncovered).
pub fn unknown_references(rules: &RuleSet) -> Vec<(String, String)> {
    let known: BTreeSet<&str> = CATALOG.iter().map(|t| t.id).collect();
    rules
        .rules()
        .iter()
        .flat_map(|r| {
            r.catalog
                .iter()
                .filter(|c| !known.contains(c.as_str()))
                .map(|c| (r.rule_id.clone(), c.clone()))
        })
        .collect()
}

/// The coverage as the Markdown table of `rules/README.md`.
pub fn markdown(coverage: &[Coverage]) -> String {
    let code = |items: &mut dyn Iterator<Item = String>| {
        let v: Vec<String> = items.map(|i| format!("`{i}`")).collect();
        if v.is_empty() {
            "—".to_owned()
        } else {
            v.join(", ")
        }
    };
    let mut out = String::from(
        "| catalog | technique | event rules | state checks | answered by | lab attacks | status |\n|---|---|---|---|---|---|---|\n",
    );
    for c in coverage {
        let remedies: BTreeSet<String> = c
            .checks
            .iter()
            .map(|s| match s.remedy {
                Remedy::Restores { calls } => calls[0].to_owned(),
                Remedy::Escalates { .. } => "escalation".to_owned(),
            })
            .collect();
        let mut status = c.status.as_str().to_owned();
        if let Some(why) = c.stateless {
            status = format!("{status}: {why}");
        }
        let technique = if c.note.is_empty() {
            c.title.to_owned()
        } else {
            format!("{} ({})", c.title, c.note)
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            c.id,
            technique,
            code(&mut c.rules.iter().cloned()),
            code(&mut c.checks.iter().map(|s| s.id.to_owned())),
            code(&mut remedies.into_iter()),
            code(&mut c.lab_attacks.iter().map(|a| (*a).to_owned())),
            status,
        ));
    }
    out
}

/// How many techniques have each status.
pub fn summary(coverage: &[Coverage]) -> Vec<(Status, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for c in coverage {
        *counts.entry(c.status).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack() -> RuleSet {
        match RuleSet::from_dirs(&[], true) {
            Ok((set, _)) => set,
            Err(e) => panic!("the built-in pack loads: {e:?}"),
        }
    }

    #[test]
    fn every_rule_names_catalog_techniques_that_exist() {
        assert_eq!(unknown_references(&pack()), Vec::<(String, String)>::new());
    }

    #[test]
    fn every_state_check_names_a_catalog_technique() {
        for (id, techniques, _) in all_checks() {
            for technique in techniques.split(',') {
                assert!(
                    trailwarden_model::technique::technique(technique).is_some(),
                    "{id}: {technique}"
                );
            }
        }
    }

    #[test]
    fn a_technique_without_a_check_is_rule_only_unless_it_says_why() {
        let c = coverage(&pack());
        let a1 = c.iter().find(|c| c.id == "A1").map(|c| c.status);
        assert_eq!(a1, Some(Status::EndToEnd));
        let i2 = c.iter().find(|c| c.id == "I2").map(|c| c.status);
        assert_eq!(i2, Some(Status::Stateless));
        // B8 (server access logging) has a rule and, today, no check.
        let b8 = c.iter().find(|c| c.id == "B8");
        assert!(b8.is_some_and(|b| !b.rules.is_empty()));
        assert!(b8.is_some_and(|b| (b.status == Status::RuleOnly) == b.checks.is_empty()));
    }
}
