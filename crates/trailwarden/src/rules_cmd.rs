//! `trailwarden rules list|test|lint`, `trailwarden techniques`, and loading the rule set every
//! detecting command uses.

use crate::args::{Format, RulesArgs, RulesSource, TechniquesArgs};
use crate::exit;
use crate::output::{self, print, table};
use serde_json::json;
use trailwarden_engine::coverage;
use trailwarden_posture::plan::Remedy;
use trailwarden_rules::RuleSet;

/// The rules to use: the built-in pack, or the `--rules` directories (plus the pack with
/// `--built-in`). A rule that cannot load stops the command, each problem named.
pub fn load(source: &RulesSource) -> anyhow::Result<RuleSet> {
    let dirs: Vec<&std::path::Path> = source.rules.iter().map(|p| p.as_path()).collect();
    let (set, report) = RuleSet::from_dirs(&dirs, source.built_in).map_err(|errors| {
        for e in &errors {
            eprintln!("error: {e}");
        }
        anyhow::anyhow!(
            "{} rule file(s) could not be loaded (see above)",
            errors.len()
        )
    })?;
    if let Some((file, why)) = report.skipped.first() {
        eprintln!(
            "note: skipped {} rule file(s) for other log sources than AWS CloudTrail (e.g. {file}: {why})",
            report.skipped.len(),
        );
    }
    Ok(set)
}

pub fn list(args: &RulesArgs, format: Option<Format>) -> anyhow::Result<u8> {
    let set = load(&args.source)?;
    let rules = set.rules();
    let text = match output::choose(format) {
        Format::Table => {
            let mut t = table(&["rule", "level", "catalog", "ATT&CK", "restores", "title"]);
            for r in rules {
                t.add_row(vec![
                    r.rule_id.clone(),
                    r.level.to_string(),
                    r.catalog.join(","),
                    r.attack_technique().unwrap_or_default(),
                    match r.remediation {
                        trailwarden_rules::Remediation::None => "-",
                        other => other.as_str(),
                    }
                    .to_owned(),
                    r.title.clone(),
                ]);
            }
            format!("{t}\n{} rules\n", rules.len())
        }
        format => {
            let items: Vec<_> = rules
                .iter()
                .map(|r| {
                    json!({
                        "rule_id": r.rule_id, "id": r.uuid, "title": r.title, "level": r.level,
                        "catalog": r.catalog, "attack": r.attack_technique(),
                        "remediation": r.remediation.as_str(),
                        "tests": r.tests.len(), "source": r.source,
                    })
                })
                .collect();
            if format == Format::Json {
                serde_json::to_string_pretty(&items)? + "\n"
            } else {
                items.iter().map(|i| i.to_string() + "\n").collect()
            }
        }
    };
    print(&text)?;
    Ok(exit::OK)
}

pub fn test(args: &RulesArgs) -> anyhow::Result<u8> {
    let set = load(&args.source)?;
    let outcomes = set.run_tests();
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
    let mut text = String::new();
    for o in &failed {
        text.push_str(&format!(
            "FAIL {}:{} {} — {}: {}\n",
            o.source, o.line, o.rule_id, o.test, o.detail
        ));
    }
    let untested = set.rules().iter().filter(|r| r.tests.is_empty()).count();
    text.push_str(&format!(
        "{} rules, {} tests: {} passed, {} failed{}\n",
        set.len(),
        outcomes.len(),
        outcomes.len() - failed.len(),
        failed.len(),
        if untested > 0 {
            format!(" ({untested} rules have no tests)")
        } else {
            String::new()
        }
    ));
    print(&text)?;
    Ok(if failed.is_empty() {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

pub fn lint(args: &RulesArgs) -> anyhow::Result<u8> {
    let set = load(&args.source)?;
    // The shipped pack is held to its own standard; user rules get advice.
    let pack = args.source.rules.is_empty();
    let lints = set.lint(pack);
    let mut text = String::new();
    for l in &lints {
        let level = if l.error { "error" } else { "warning" };
        text.push_str(&format!(
            "{level}: {} ({}): {}\n",
            l.source, l.rule_id, l.message
        ));
    }
    let errors = lints.iter().filter(|l| l.error).count();
    text.push_str(&format!(
        "{} rules: {errors} errors, {} warnings\n",
        set.len(),
        lints.len() - errors
    ));
    print(&text)?;
    Ok(if errors == 0 {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

pub fn techniques(args: &TechniquesArgs, format: Option<Format>) -> anyhow::Result<u8> {
    let set = load(&args.source)?;
    let unknown = coverage::unknown_references(&set);
    for (rule, reference) in &unknown {
        eprintln!("error: rule {rule} names catalog technique {reference}, which does not exist");
    }
    let items = coverage::coverage(&set);
    let text = if args.markdown {
        coverage::markdown(&items)
    } else {
        match output::choose(format) {
            Format::Table => {
                let mut t = table(&[
                    "catalog",
                    "technique",
                    "event rules",
                    "state checks → answered by",
                    "lab attacks",
                    "status",
                ]);
                for c in &items {
                    let checks: Vec<String> = c
                        .checks
                        .iter()
                        .map(|s| match s.remedy {
                            Remedy::Restores { calls } => {
                                format!("{} → {}", s.id, calls.join(", "))
                            }
                            Remedy::Escalates { .. } => format!("{} → escalation", s.id),
                        })
                        .collect();
                    let mut status = c.status.as_str().to_owned();
                    if let Some(why) = c.stateless {
                        status = format!("{status}: {why}");
                    }
                    t.add_row(vec![
                        c.id.to_owned(),
                        c.title.to_owned(),
                        c.rules.join("\n"),
                        checks.join("\n"),
                        c.lab_attacks.join("\n"),
                        status,
                    ]);
                }
                let counts: Vec<String> = coverage::summary(&items)
                    .iter()
                    .map(|(s, n)| format!("{n} {}", s.as_str()))
                    .collect();
                format!("{t}\n{} techniques: {}\n", items.len(), counts.join(", "))
            }
            Format::Json => serde_json::to_string_pretty(&items)? + "\n",
            _ => items
                .iter()
                .map(|i| serde_json::to_string(i).map(|s| s + "\n"))
                .collect::<Result<String, _>>()?,
        }
    };
    print(&text)?;
    Ok(if unknown.is_empty() {
        exit::OK
    } else {
        exit::FINDINGS
    })
}
