//! A set of compiled rules, indexed by `eventName`, with the pack's tests and lint.

use crate::detection::NameKey;
use crate::error::LoadError;
use crate::rule::{self, Loaded, Rule, Verdict};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/built_in.rs"));

/// Compiled rules, ready to evaluate records.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Lower-cased `eventName` → the rules that can only match that name (indices, ascending).
    by_event_name: HashMap<Box<str>, Vec<u32>>,
    /// Lower-cased `eventName` prefixes (versioned names such as Lambda's
    /// `UpdateFunctionConfiguration20150331v2`) and their rules.
    by_prefix: Vec<(Box<str>, u32)>,
    /// Rules that may match any event, with the keys (`"key"`) a record's text must contain
    /// for them to match.
    always: Vec<(u32, Vec<String>)>,
}

/// The events a forwarding rule must deliver (see [`RuleSet::forwarded_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedEvents {
    pub names: Vec<String>,
    pub prefixes: Vec<String>,
    pub complete: bool,
}

impl ForwardedEvents {
    /// The EventBridge event pattern: "AWS API Call via CloudTrail" events with one of the
    /// names or prefixes, from an AWS service (`source` `aws.*`: no custom event sent with
    /// PutEvents can match, since only AWS may send those sources).
    pub fn event_pattern(&self) -> serde_json::Value {
        let mut names: Vec<serde_json::Value> =
            self.names.iter().map(|n| serde_json::json!(n)).collect();
        names.extend(
            self.prefixes
                .iter()
                .map(|p| serde_json::json!({"prefix": p})),
        );
        serde_json::json!({
            "source": [{"prefix": "aws."}],
            "detail-type": ["AWS API Call via CloudTrail"],
            "detail": {"eventName": names},
        })
    }
}

/// What loading skipped (never an error: rules for other log sources).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// `(file, why)` for each rule that is not for CloudTrail.
    pub skipped: Vec<(String, String)>,
}

/// The result of one rule test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub rule_id: String,
    pub source: String,
    pub test: String,
    pub line: usize,
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub detail: String,
}

/// One lint message about a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    pub rule_id: String,
    pub source: String,
    /// An error fails `rules lint`; a warning is advice.
    pub error: bool,
    pub message: String,
}

impl RuleSet {
    /// The rule pack shipped in the binary.
    pub fn built_in() -> Result<Self, Vec<LoadError>> {
        Self::load(
            BUILT_IN
                .iter()
                .map(|(name, text)| ((*name).to_owned(), (*text).to_owned())),
        )
        .map(|(set, _)| set)
    }

    /// Names and texts of the shipped rule files.
    pub fn built_in_sources() -> &'static [(&'static str, &'static str)] {
        BUILT_IN
    }

    /// Compiles rules from `(file name, text)` pairs. Every problem is collected, so one run
    /// names all the broken rules; any problem fails the whole load.
    pub fn load(
        sources: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, LoadReport), Vec<LoadError>> {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        let mut report = LoadReport::default();
        for (name, text) in sources {
            match rule::load(&name, &text) {
                Ok(Loaded::Rule(rule)) => rules.push(*rule),
                Ok(Loaded::OtherLogSource(why)) => report.skipped.push((name, why)),
                Err(e) => errors.push(e),
            }
        }
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for rule in &rules {
            if let Some(first) = seen.insert(&rule.rule_id, &rule.source) {
                errors.push(LoadError {
                    file: rule.source.clone(),
                    line: 1,
                    message: format!("rule id `{}` is also used by {first}", rule.rule_id),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok((Self::index(rules), report))
    }

    /// Loads every `.yml`/`.yaml` file under `dir` (recursively, in name order).
    pub fn load_dir(dir: &Path) -> Result<(Self, LoadReport), Vec<LoadError>> {
        Self::load_dirs(&[dir])
    }

    /// Loads every rule file under each of `dirs` (a directory or one file each).
    pub fn load_dirs(dirs: &[&Path]) -> Result<(Self, LoadReport), Vec<LoadError>> {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for dir in dirs {
            if dir.is_file() {
                files.push(dir.to_path_buf());
            } else {
                collect_files(dir, &mut files, &mut errors);
            }
        }
        files.sort();
        let mut sources = Vec::new();
        for file in files {
            let name = file.display().to_string();
            match std::fs::read_to_string(&file) {
                Ok(text) => sources.push((name, text)),
                Err(e) => errors.push(LoadError {
                    file: name,
                    line: 0,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        match Self::load(sources) {
            Ok(loaded) if errors.is_empty() => Ok(loaded),
            Ok(_) => Err(errors),
            Err(more) => {
                errors.extend(more);
                Err(errors)
            }
        }
    }

    /// The rules a detecting command uses: the built-in pack when `dirs` is empty; else the
    /// rules under `dirs`, plus the pack with `with_built_in`. Every problem is returned (none
    /// is printed); a set without any CloudTrail rule is an error naming the directories.
    pub fn from_dirs(
        dirs: &[&Path],
        with_built_in: bool,
    ) -> Result<(Self, LoadReport), Vec<LoadError>> {
        if dirs.is_empty() {
            return Ok((Self::built_in()?, LoadReport::default()));
        }
        let (mut set, report) = Self::load_dirs(dirs)?;
        if with_built_in {
            set = Self::built_in()?.merge(set)?;
        }
        if set.is_empty() {
            return Err(vec![LoadError {
                file: dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                line: 0,
                message: "no AWS CloudTrail rules found".to_owned(),
            }]);
        }
        Ok((set, report))
    }

    /// The rule with this id.
    pub fn rule(&self, rule_id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.rule_id == rule_id)
    }

    /// Adds the rules of `other` (ids must stay unique).
    pub fn merge(self, other: Self) -> Result<Self, Vec<LoadError>> {
        let mut rules = self.rules;
        let mut errors = Vec::new();
        for rule in other.rules {
            if let Some(first) = rules.iter().find(|r| r.rule_id == rule.rule_id) {
                errors.push(LoadError {
                    file: rule.source.clone(),
                    line: 1,
                    message: format!(
                        "rule id `{}` is also used by {}",
                        rule.rule_id, first.source
                    ),
                });
            } else {
                rules.push(rule);
            }
        }
        if errors.is_empty() {
            Ok(Self::index(rules))
        } else {
            Err(errors)
        }
    }

    fn index(rules: Vec<Rule>) -> Self {
        let mut by_event_name: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let mut by_prefix = Vec::new();
        let mut always = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            // A rule set is loaded from files: it never holds 4 billion rules.
            #[allow(clippy::expect_used)]
            let i = u32::try_from(i).expect("fewer than 4 billion rules");
            match rule.event_names() {
                None => always.push((i, rule.needles())),
                Some(mut names) => {
                    names.sort();
                    names.dedup();
                    for name in names {
                        match name {
                            NameKey::Exact(name) => by_event_name
                                .entry(name.to_lowercase().into())
                                .or_default()
                                .push(i),
                            NameKey::Prefix(prefix) => {
                                by_prefix.push((prefix.to_lowercase().into(), i))
                            }
                        }
                    }
                }
            }
        }
        Self {
            rules,
            by_event_name,
            by_prefix,
            always,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The whole `eventName`s rules are restricted to (lower-cased), and whether some rule
    /// also matches by prefix or may match any event.
    pub fn event_names(&self) -> (Vec<&str>, bool) {
        let mut names: Vec<&str> = self.by_event_name.keys().map(|k| &**k).collect();
        names.sort_unstable();
        (names, !self.always.is_empty() || !self.by_prefix.is_empty())
    }

    /// What an EventBridge rule must forward for these rules to see every event they could
    /// match: `eventName`s as the rules write them, and prefixes; `complete` is false when
    /// some rule is not restricted by `eventName` (then no pattern short of "everything" is
    /// enough for it).
    pub fn forwarded_events(&self) -> ForwardedEvents {
        let mut names = std::collections::BTreeSet::new();
        let mut prefixes = std::collections::BTreeSet::new();
        let mut complete = true;
        for rule in &self.rules {
            match rule.event_names() {
                None => complete = false,
                Some(keys) => {
                    for key in keys {
                        match key {
                            NameKey::Exact(n) => names.insert(n),
                            NameKey::Prefix(p) => prefixes.insert(p),
                        };
                    }
                }
            }
        }
        ForwardedEvents {
            names: names.into_iter().collect(),
            prefixes: prefixes.into_iter().collect(),
            complete,
        }
    }

    /// Rules whose `eventName` index admits `name` (may repeat).
    fn named(&self, name: &str, out: &mut Vec<u32>) {
        let mut buffer = [0u8; 96];
        let key = lower_case(name, &mut buffer);
        if let Some(rules) = self.by_event_name.get(&*key) {
            out.extend_from_slice(rules);
        }
        for (prefix, rule) in &self.by_prefix {
            if key.starts_with(&**prefix) {
                out.push(*rule);
            }
        }
    }

    fn has_named(&self, name: &str) -> bool {
        let mut buffer = [0u8; 96];
        let key = lower_case(name, &mut buffer);
        self.by_event_name.contains_key(&*key)
            || self
                .by_prefix
                .iter()
                .any(|(prefix, _)| key.starts_with(&**prefix))
    }

    /// Whether any rule could match a record with this `eventName` (so a reader can skip
    /// parsing the records none could). Conservative: true when a rule may match any event.
    pub fn may_match(&self, event_name: Option<&str>) -> bool {
        !self.always.is_empty() || event_name.is_some_and(|n| self.has_named(n))
    }

    /// [`RuleSet::may_match`] with the record's JSON text at hand: rules that are not
    /// restricted by `eventName` are ruled out by the keys they need (a record without
    /// `"omitted"` cannot match a rule on `requestParameters.omitted`). The keys of CloudTrail
    /// records are written by AWS, never escaped.
    pub fn may_match_text(&self, event_name: Option<&str>, text: &str) -> bool {
        event_name.is_some_and(|n| self.has_named(n))
            || self
                .always
                .iter()
                .any(|(_, needles)| needles.iter().all(|n| text.contains(n.as_str())))
    }

    /// Calls `on_match` for each rule that matches `record`, in rule order.
    pub fn for_each_match<'s>(
        &'s self,
        record: &Value,
        mut on_match: impl FnMut(&'s Rule, Verdict),
    ) {
        let name = record
            .get("eventName")
            .or_else(|| record.get("eventname"))
            .and_then(Value::as_str);
        let mut candidates = Vec::new();
        if let Some(name) = name {
            self.named(name, &mut candidates);
        }
        candidates.extend(self.always.iter().map(|(i, _)| *i));
        candidates.sort_unstable();
        candidates.dedup();
        for i in candidates {
            let rule = &self.rules[i as usize];
            if let Some(verdict) = rule.evaluate(record) {
                on_match(rule, verdict);
            }
        }
    }

    /// Runs every rule's own test cases, through the index as scanning does.
    pub fn run_tests(&self) -> Vec<TestOutcome> {
        let mut outcomes = Vec::new();
        for rule in &self.rules {
            for test in &rule.tests {
                let mut verdict = None;
                self.for_each_match(&test.record, |r, v| {
                    if std::ptr::eq(r, rule) {
                        verdict = Some(v);
                    }
                });
                let direct = rule.evaluate(&test.record);
                let detail = if direct != verdict {
                    "the rule index disagrees with the rule (engine bug)".to_owned()
                } else {
                    match (test.expect_match, verdict, test.severity) {
                        (true, None, _) => "expected a match, the rule did not match".to_owned(),
                        (false, Some(_), _) => "expected no match, the rule matched".to_owned(),
                        (true, Some(v), Some(want)) if v.severity != want => {
                            format!("matched at severity {}, expected {want}", v.severity)
                        }
                        _ => String::new(),
                    }
                };
                outcomes.push(TestOutcome {
                    rule_id: rule.rule_id.clone(),
                    source: rule.source.clone(),
                    test: test.name.clone(),
                    line: test.line,
                    passed: detail.is_empty(),
                    detail,
                });
            }
        }
        outcomes
    }

    /// Checks the rules are complete and consistent. `pack` applies the shipped pack's
    /// stricter standard (catalog reference, tests both ways, file named after the rule).
    pub fn lint(&self, pack: bool) -> Vec<Lint> {
        let mut lints = Vec::new();
        let mut uuids: HashMap<&str, &str> = HashMap::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let mut say = |error: bool, message: String| {
                lints.push(Lint {
                    rule_id: rule.rule_id.clone(),
                    source: rule.source.clone(),
                    error,
                    message,
                });
            };
            match &rule.uuid {
                None => say(pack, "no `id` (a UUID)".into()),
                Some(id) if !is_uuid(id) => say(pack, format!("`id` {id:?} is not a UUID")),
                Some(id) => {
                    if let Some(other) = uuids.insert(id, &rule.rule_id) {
                        say(true, format!("`id` {id} is also the id of `{other}`"));
                    }
                }
            }
            if !rule.level_stated {
                say(
                    pack,
                    "no `level` (Sigma's default, medium, is assumed)".into(),
                );
            }
            if rule
                .description
                .as_deref()
                .is_none_or(|d| d.trim().is_empty())
            {
                say(pack, "no `description`".into());
            }
            if rule.attack_technique().is_none() {
                say(pack, "no ATT&CK technique tag (`attack.tNNNN`)".into());
            }
            if rule.author.is_none() {
                say(false, "no `author`".into());
            }
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if let Some((_, needles)) = self.always.iter().find(|(r, _)| *r == i) {
                let message = if needles.is_empty() {
                    "not restricted by `eventName` and needs no particular key: every record is parsed and evaluated (slow)".to_owned()
                } else {
                    format!(
                        "not restricted by `eventName`: records are pre-filtered only by the keys {}",
                        needles.join(", ")
                    )
                };
                say(false, message);
            }
            if pack {
                if rule.catalog.is_empty() {
                    say(
                        true,
                        "no tamper-catalog reference (`trailwarden.catalog`)".into(),
                    );
                }
                let stem = Path::new(&rule.source).file_stem().and_then(|s| s.to_str());
                if stem != Some(rule.rule_id.as_str()) {
                    say(
                        true,
                        format!("the file should be named `{}.yml`", rule.rule_id),
                    );
                }
                if !rule.tests.iter().any(|t| t.expect_match) {
                    say(true, "no positive test (`match: true`)".into());
                }
                if !rule.tests.iter().any(|t| !t.expect_match) {
                    say(true, "no negative test (`match: false`)".into());
                }
            }
        }
        lints
    }
}

/// `name` lower-cased, in `buffer` when it fits (no allocation for an `eventName`).
fn lower_case<'b>(name: &'b str, buffer: &'b mut [u8; 96]) -> std::borrow::Cow<'b, str> {
    if name.len() <= buffer.len() && name.is_ascii() {
        let bytes = &mut buffer[..name.len()];
        bytes.copy_from_slice(name.as_bytes());
        bytes.make_ascii_lowercase();
        std::borrow::Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default())
    } else {
        std::borrow::Cow::Owned(name.to_lowercase())
    }
}

fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn collect_files(dir: &Path, files: &mut Vec<std::path::PathBuf>, errors: &mut Vec<LoadError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(LoadError {
                file: dir.display().to_string(),
                line: 0,
                message: format!("cannot read the rules directory: {e}"),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, files, errors);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            files.push(path);
        }
    }
}
