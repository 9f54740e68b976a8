//! One Sigma rule: its metadata, trailwarden's extensions and the compiled detection.

use crate::condition::{self, Condition};
use crate::detection::{Detection, NameKey, SelectionBody, compile_selection};
use crate::error::{LoadError, Problem};
use crate::yaml::{self, Node, Scalar};
use serde_json::Value;
use trailwarden_model::finding::Severity;

/// Whether restoring the baseline state undoes what a rule detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remediation {
    /// `remediate` / `watch --remediate` put the state back.
    State,
    /// The guard puts trailwarden's own forwarding rule back (`watch --event-bus-arn`).
    Forwarding,
    /// Detect only: nothing to put back (deleted objects, a finding archived, ...).
    None,
}

impl Remediation {
    /// The name a rule file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Forwarding => "forwarding",
            Self::None => "none",
        }
    }
}

/// A test case a rule carries: a record and whether the rule must match it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTest {
    pub name: String,
    /// Line of the test in the rule file.
    pub line: usize,
    pub expect_match: bool,
    /// The expected severity of the finding, when the test states one.
    pub severity: Option<Severity>,
    pub record: Value,
}

/// What a rule says about one record it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub severity: Severity,
    /// The call failed (`errorCode` present): an attempt, reported lower and never remediated.
    pub failed: bool,
    pub remediable: bool,
}

/// A loaded, compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// The rule id used in findings: `name` when the rule has one, else the file stem.
    pub rule_id: String,
    /// The Sigma `id` (a UUID), when present.
    pub uuid: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub status: Option<String>,
    pub author: Option<String>,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    /// Severity of a successful call (Sigma `level`).
    pub level: Severity,
    /// Whether `level` was stated (Sigma's default is medium).
    pub level_stated: bool,
    /// Tamper-catalog entries (trailwarden extension `trailwarden.catalog`).
    pub catalog: Vec<String>,
    pub remediation: Remediation,
    pub tests: Vec<RuleTest>,
    /// The file the rule came from.
    pub source: String,
    pub(crate) detection: Detection,
}

impl Rule {
    /// The MITRE ATT&CK technique from the tags (`attack.t1562.008` → `T1562.008`).
    pub fn attack_technique(&self) -> Option<String> {
        self.tags.iter().find_map(|t| {
            let id = t.strip_prefix("attack.")?;
            let rest = id.strip_prefix('t')?;
            rest.starts_with(|c: char| c.is_ascii_digit())
                .then(|| format!("T{}", rest.to_ascii_uppercase()))
        })
    }

    /// Whether the rule matches, and how it reports the match.
    pub fn evaluate(&self, record: &Value) -> Option<Verdict> {
        self.detection.matches(record).then(|| self.verdict(record))
    }

    fn verdict(&self, record: &Value) -> Verdict {
        let failed = match record.get("errorCode") {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(_) => true,
        };
        let severity = if failed {
            attempt_severity(self.level)
        } else {
            self.level
        };
        Verdict {
            severity,
            failed,
            remediable: !failed && self.remediation != Remediation::None,
        }
    }

    /// The `eventName`s (whole or prefixes, lower-cased) a record must have to match, or
    /// `None` when the rule may match any event.
    pub(crate) fn event_names(&self) -> Option<Vec<NameKey>> {
        names_of(&self.detection.condition, &self.detection)
    }

    /// Keys that must appear in a record's JSON text for the rule to match (as `"key"`), from
    /// the selections the condition requires; empty when nothing is known.
    pub(crate) fn needles(&self) -> Vec<String> {
        let required: Vec<usize> = match &self.detection.condition {
            Condition::Selection(i) => vec![*i],
            Condition::And(items) => items
                .iter()
                .filter_map(|c| match c {
                    Condition::Selection(i) => Some(*i),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut needles = Vec::new();
        for i in required {
            if let SelectionBody::Groups(groups) = &self.detection.selections[i].body
                && let [group] = groups.as_slice()
            {
                needles.extend(
                    group
                        .iter()
                        .filter_map(|f| f.required_key())
                        .map(|k| format!("\"{k}\"")),
                );
            }
        }
        needles.sort();
        needles.dedup();
        needles
    }
}

/// A failed attempt is worth knowing but blinded nothing: low, or info for low rules.
fn attempt_severity(level: Severity) -> Severity {
    match level {
        Severity::Critical | Severity::High | Severity::Medium => Severity::Low,
        Severity::Low | Severity::Info => Severity::Info,
    }
}

fn names_of(condition: &Condition, detection: &Detection) -> Option<Vec<NameKey>> {
    match condition {
        Condition::Selection(i) => match &detection.selections[*i].body {
            SelectionBody::Keywords { .. } => None,
            SelectionBody::Groups(groups) => {
                let mut all = Vec::new();
                for group in groups {
                    // Some pipelines lower-case every key (`eventname`).
                    let names = group
                        .iter()
                        .filter(|f| f.field.eq_ignore_ascii_case("eventName"))
                        .find_map(|f| f.index_keys())?;
                    all.extend(names);
                }
                Some(all)
            }
        },
        Condition::Not(_) => None,
        Condition::Or(items) => {
            let mut all = Vec::new();
            for item in items {
                all.extend(names_of(item, detection)?);
            }
            Some(all)
        }
        // Every part must match, so any part's names will do.
        Condition::And(items) => items.iter().find_map(|i| names_of(i, detection)),
    }
}

/// What loading one file gave.
#[derive(Debug)]
pub(crate) enum Loaded {
    Rule(Box<Rule>),
    /// A rule for another log source: not for CloudTrail, skipped and counted.
    OtherLogSource(String),
}

/// Parses and compiles the rule in `text`; `source` names it in errors.
pub(crate) fn load(source: &str, text: &str) -> Result<Loaded, LoadError> {
    let documents = yaml::parse(text).map_err(|(line, message)| {
        Problem::new(line, format!("not valid YAML: {message}")).in_source(source)
    })?;
    let doc = match documents.as_slice() {
        [doc] => doc,
        [] => return Err(Problem::new(1, "the file holds no rule").in_source(source)),
        [_, second, ..] => {
            return Err(Problem::unsupported(
                second.line,
                "several YAML documents in one file (rule collections / `action: global`)",
            )
            .in_source(source));
        }
    };
    compile(source, doc).map_err(|p| p.in_source(source))
}

fn compile(source: &str, doc: &Node) -> Result<Loaded, Problem> {
    if doc.as_map().is_none() {
        return Err(Problem::new(doc.line, "a rule must be a YAML map"));
    }
    for (key, feature) in [
        ("correlation", "correlation rules"),
        ("filter", "Sigma filter (meta) rules"),
        ("action", "rule collections (`action:`)"),
        ("timeframe", "`timeframe` (it belongs to aggregations)"),
    ] {
        if let Some(node) = doc.get(key) {
            return Err(Problem::unsupported(node.line, feature));
        }
    }
    let logsource = doc
        .get("logsource")
        .ok_or_else(|| Problem::new(doc.line, "missing `logsource`"))?;
    let product = text_of(logsource.get("product"));
    let service = text_of(logsource.get("service"));
    let is_cloudtrail = product.is_none_or(|p| p.eq_ignore_ascii_case("aws"))
        && service.is_none_or(|s| s.eq_ignore_ascii_case("cloudtrail"))
        && (product.is_some() || service.is_some());
    if !is_cloudtrail {
        return Ok(Loaded::OtherLogSource(format!(
            "logsource product {:?} service {:?}",
            product.unwrap_or("-"),
            service.unwrap_or("-")
        )));
    }
    let title = text_of(doc.get("title"))
        .ok_or_else(|| Problem::new(doc.line, "missing `title`"))?
        .to_owned();
    let detection_node = doc
        .get("detection")
        .ok_or_else(|| Problem::new(doc.line, "missing `detection`"))?;
    let detection = compile_detection(detection_node)?;
    let (level, level_stated) = match doc.get("level") {
        None => (Severity::Medium, false),
        Some(node) => (parse_level(node)?, true),
    };
    let uuid = text_of(doc.get("id")).map(str::to_owned);
    let stem = std::path::Path::new(source)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(source);
    // A name reads better in findings than a UUID; SigmaHQ's file names are stable names.
    let rule_id = text_of(doc.get("name")).unwrap_or(stem).to_owned();
    let ext = doc.get("trailwarden");
    let catalog = match ext.and_then(|e| e.get("catalog")) {
        None => Vec::new(),
        Some(node) => strings(node)?,
    };
    let remediation = match ext.and_then(|e| e.get("remediation")) {
        None => Remediation::None,
        Some(node) => match node.text() {
            Some("state") => Remediation::State,
            Some("forwarding") => Remediation::Forwarding,
            Some("none") => Remediation::None,
            _ => {
                return Err(Problem::new(
                    node.line,
                    "`trailwarden.remediation` must be `state`, `forwarding` or `none`",
                ));
            }
        },
    };
    let tests = match ext.and_then(|e| e.get("tests")) {
        None => Vec::new(),
        Some(node) => parse_tests(node)?,
    };
    Ok(Loaded::Rule(Box::new(Rule {
        rule_id,
        uuid,
        title,
        description: text_of(doc.get("description")).map(str::to_owned),
        status: text_of(doc.get("status")).map(str::to_owned),
        author: text_of(doc.get("author")).map(str::to_owned),
        references: doc
            .get("references")
            .map(strings)
            .transpose()?
            .unwrap_or_default(),
        tags: doc
            .get("tags")
            .map(strings)
            .transpose()?
            .unwrap_or_default(),
        level,
        level_stated,
        catalog,
        remediation,
        tests,
        source: source.to_owned(),
        detection,
    })))
}

fn compile_detection(node: &Node) -> Result<Detection, Problem> {
    let Some(entries) = node.as_map() else {
        return Err(Problem::new(node.line, "`detection` must be a map"));
    };
    let mut selections = Vec::new();
    let mut condition_node = None;
    for (key, value) in entries {
        match key.text() {
            Some("condition") => condition_node = Some(value),
            Some("timeframe") => {
                return Err(Problem::unsupported(
                    key.line,
                    "`timeframe` (it belongs to aggregations)",
                ));
            }
            Some(name) => selections.push(compile_selection(name, value)?),
            None => return Err(Problem::new(key.line, "a selection name must be a string")),
        }
    }
    let condition_node =
        condition_node.ok_or_else(|| Problem::new(node.line, "`detection` has no `condition`"))?;
    let names: Vec<String> = selections.iter().map(|s| s.name.clone()).collect();
    let condition = match (condition_node.as_seq(), condition_node.text()) {
        (Some(list), _) => Condition::Or(
            list.iter()
                .map(|c| {
                    let text = c
                        .text()
                        .ok_or_else(|| Problem::new(c.line, "a condition must be a string"))?;
                    condition::parse(text, &names, c.line)
                })
                .collect::<Result<_, _>>()?,
        ),
        (None, Some(text)) => condition::parse(text, &names, condition_node.line)?,
        (None, None) => {
            return Err(Problem::new(
                condition_node.line,
                "the condition must be a string",
            ));
        }
    };
    Ok(Detection {
        selections,
        condition,
    })
}

fn parse_level(node: &Node) -> Result<Severity, Problem> {
    match node.text().map(str::to_ascii_lowercase).as_deref() {
        Some("informational" | "info") => Ok(Severity::Info),
        Some("low") => Ok(Severity::Low),
        Some("medium") => Ok(Severity::Medium),
        Some("high") => Ok(Severity::High),
        Some("critical") => Ok(Severity::Critical),
        _ => Err(Problem::new(
            node.line,
            "`level` must be informational, low, medium, high or critical",
        )),
    }
}

fn parse_tests(node: &Node) -> Result<Vec<RuleTest>, Problem> {
    let Some(items) = node.as_seq() else {
        return Err(Problem::new(
            node.line,
            "`trailwarden.tests` must be a list",
        ));
    };
    items
        .iter()
        .map(|item| {
            let name = text_of(item.get("name"))
                .ok_or_else(|| Problem::new(item.line, "a test needs a `name`"))?
                .to_owned();
            let expect_match = match item.get("match").and_then(Node::scalar) {
                Some(Scalar::Bool(b)) => b,
                _ => {
                    return Err(Problem::new(
                        item.line,
                        format!("test `{name}` needs `match: true` or `match: false`"),
                    ));
                }
            };
            let severity = item.get("severity").map(parse_level).transpose()?;
            let record = item
                .get("record")
                .filter(|r| r.as_map().is_some())
                .ok_or_else(|| {
                    Problem::new(item.line, format!("test `{name}` needs a `record` map"))
                })?
                .to_json();
            Ok(RuleTest {
                name,
                line: item.line,
                expect_match,
                severity,
                record,
            })
        })
        .collect()
}

fn text_of(node: Option<&Node>) -> Option<&str> {
    node.and_then(Node::text)
}

fn strings(node: &Node) -> Result<Vec<String>, Problem> {
    match (node.as_seq(), node.text()) {
        (Some(items), _) => items
            .iter()
            .map(|i| {
                i.text()
                    .map(str::to_owned)
                    .ok_or_else(|| Problem::new(i.line, "expected a string"))
            })
            .collect(),
        (None, Some(text)) => Ok(vec![text.to_owned()]),
        (None, None) => Err(Problem::new(
            node.line,
            "expected a string or a list of strings",
        )),
    }
}
