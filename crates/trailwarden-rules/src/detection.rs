//! Compiled Sigma detections: selections of field matchers, evaluated against a JSON record.
//!
//! Semantics follow the Sigma specification: keys of one map are AND-ed, a list of maps is
//! OR-ed, a list of values is OR-ed unless `|all`; plain strings match whole values,
//! case-insensitively, with `*` and `?` wildcards. A dotted field walks nested objects, and a
//! JSON array on the way matches when any element does.

use crate::condition::Condition;
use crate::error::Problem;
use crate::yaml::{Node, Scalar};
use regex::Regex;
use serde_json::Value;
use std::net::IpAddr;

/// One named selection of a rule's `detection`.
#[derive(Debug)]
pub(crate) struct Selection {
    pub name: String,
    pub body: SelectionBody,
}

#[derive(Debug)]
pub(crate) enum SelectionBody {
    /// Maps, OR-ed; each map's fields AND-ed.
    Groups(Vec<Vec<FieldMatcher>>),
    /// Keywords: any string anywhere in the record, OR-ed (or all of them with `|all`).
    Keywords {
        values: Vec<ValueMatcher>,
        all: bool,
    },
}

#[derive(Debug)]
pub(crate) struct FieldMatcher {
    pub field: String,
    path: Vec<Box<str>>,
    kind: FieldKind,
}

#[derive(Debug)]
enum FieldKind {
    Values {
        values: Vec<ValueMatcher>,
        all: bool,
    },
    Exists(bool),
    /// `|fieldref`: equal to the value of another field.
    FieldRef(Vec<Vec<Box<str>>>),
}

#[derive(Debug)]
pub(crate) enum ValueMatcher {
    /// Missing or JSON null.
    Null,
    Bool(bool),
    /// Equal to a number, or to a string holding that number.
    Number(f64),
    Compare(Comparison, f64),
    Text(TextMatcher),
    Regex(Regex),
    Cidr(IpNet),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Comparison {
    Lt,
    Lte,
    Gt,
    Gte,
}

/// An index key for `eventName`: a whole value or a prefix, as the rule writes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NameKey {
    Exact(String),
    Prefix(String),
}

#[derive(Debug)]
pub(crate) struct TextMatcher {
    how: TextHow,
    /// Lower-cased unless `cased`.
    needle: String,
    /// The value as the rule writes it (escapes removed), for exporting patterns.
    literal: String,
    cased: bool,
}

#[derive(Debug)]
enum TextHow {
    Exact,
    Prefix,
    Suffix,
    Contains,
    /// Wildcards present: compiled to a regular expression.
    Glob(Regex),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// The modifiers of one field key (`field|contains|all`).
#[derive(Debug, Default)]
struct Modifiers {
    position: Option<&'static str>,
    all: bool,
    regex: bool,
    regex_flags: String,
    cidr: bool,
    exists: bool,
    compare: Option<Comparison>,
    cased: bool,
    fieldref: bool,
}

impl Modifiers {
    fn parse(names: &[&str], line: usize) -> Result<Self, Problem> {
        let mut m = Self::default();
        for &name in names {
            match name {
                "contains" | "startswith" | "endswith" => {
                    if let Some(other) = m.position {
                        return Err(Problem::new(
                            line,
                            format!("modifiers `{other}` and `{name}` cannot be combined"),
                        ));
                    }
                    m.position = Some(match name {
                        "contains" => "contains",
                        "startswith" => "startswith",
                        _ => "endswith",
                    });
                }
                "all" => m.all = true,
                "re" => m.regex = true,
                "i" | "m" | "s" => m.regex_flags.push_str(name),
                "cidr" => m.cidr = true,
                "exists" => m.exists = true,
                "lt" => m.compare = Some(Comparison::Lt),
                "lte" => m.compare = Some(Comparison::Lte),
                "gt" => m.compare = Some(Comparison::Gt),
                "gte" => m.compare = Some(Comparison::Gte),
                "cased" => m.cased = true,
                "fieldref" => m.fieldref = true,
                "base64" | "base64offset" | "utf16le" | "utf16be" | "utf16" | "wide"
                | "windash" | "expand" => {
                    return Err(Problem::unsupported(
                        line,
                        format!("the `{name}` value modifier"),
                    ));
                }
                "" => return Err(Problem::new(line, "empty modifier after `|`")),
                other => {
                    return Err(Problem::unsupported(
                        line,
                        format!("unknown value modifier `{other}`"),
                    ));
                }
            }
        }
        if !m.regex_flags.is_empty() && !m.regex {
            return Err(Problem::new(
                line,
                "regular-expression flags `i`, `m`, `s` need the `re` modifier",
            ));
        }
        let kinds = [
            m.regex,
            m.cidr,
            m.exists,
            m.compare.is_some(),
            m.fieldref,
            m.position.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count();
        if kinds > 1 {
            return Err(Problem::unsupported(
                line,
                format!("this combination of value modifiers `{}`", names.join("|")),
            ));
        }
        Ok(m)
    }
}

/// Compiles one selection (`name: body`).
pub(crate) fn compile_selection(name: &str, body: &Node) -> Result<Selection, Problem> {
    let body = if body.as_map().is_some() {
        SelectionBody::Groups(vec![compile_group(body)?])
    } else if let Some(items) = body.as_seq() {
        if items.is_empty() {
            return Err(Problem::new(
                body.line,
                format!("selection `{name}` is empty"),
            ));
        }
        if items.iter().all(|i| i.as_map().is_some()) {
            SelectionBody::Groups(items.iter().map(compile_group).collect::<Result<_, _>>()?)
        } else if items.iter().all(|i| i.scalar().is_some()) {
            let values = items
                .iter()
                .map(|i| compile_value(i, &Modifiers::default()))
                .collect::<Result<_, _>>()?;
            SelectionBody::Keywords { values, all: false }
        } else {
            return Err(Problem::new(
                body.line,
                format!("selection `{name}` mixes maps and plain values"),
            ));
        }
    } else {
        SelectionBody::Keywords {
            values: vec![compile_value(body, &Modifiers::default())?],
            all: false,
        }
    };
    Ok(Selection {
        name: name.to_owned(),
        body,
    })
}

fn compile_group(map: &Node) -> Result<Vec<FieldMatcher>, Problem> {
    let entries = map.as_map().unwrap_or_default();
    if entries.is_empty() {
        return Err(Problem::new(map.line, "empty map in a selection"));
    }
    entries
        .iter()
        .map(|(key, value)| compile_field(key, value))
        .collect()
}

fn compile_field(key: &Node, value: &Node) -> Result<FieldMatcher, Problem> {
    let Some(key_text) = key.text() else {
        return Err(Problem::new(
            key.line,
            "a field name must be a plain string",
        ));
    };
    let mut parts = key_text.split('|');
    let field = parts.next().unwrap_or_default().trim().to_owned();
    let names: Vec<&str> = parts.map(str::trim).collect();
    let mods = Modifiers::parse(&names, key.line)?;
    if field.is_empty() {
        return Err(Problem::unsupported(
            key.line,
            "keyword matching with modifiers (a key with no field name)",
        ));
    }
    let path = split_path(&field);
    let values: Vec<&Node> = match value.as_seq() {
        Some(items) => items.iter().collect(),
        None => vec![value],
    };
    if values.is_empty() {
        return Err(Problem::new(
            value.line,
            format!("field `{field}` has an empty list of values"),
        ));
    }
    let kind = if mods.exists {
        match values.as_slice() {
            [v] => match v.scalar() {
                Some(Scalar::Bool(b)) => FieldKind::Exists(b),
                _ => {
                    return Err(Problem::new(v.line, "`exists` takes `true` or `false`"));
                }
            },
            _ => return Err(Problem::new(value.line, "`exists` takes one value")),
        }
    } else if mods.fieldref {
        let refs = values
            .iter()
            .map(|v| match v.scalar() {
                Some(Scalar::Str(s)) => Ok(split_path(s)),
                _ => Err(Problem::new(v.line, "`fieldref` takes field names")),
            })
            .collect::<Result<_, _>>()?;
        FieldKind::FieldRef(refs)
    } else {
        let values = values
            .iter()
            .map(|v| compile_value(v, &mods))
            .collect::<Result<_, _>>()?;
        FieldKind::Values {
            values,
            all: mods.all,
        }
    };
    Ok(FieldMatcher { field, path, kind })
}

fn split_path(field: &str) -> Vec<Box<str>> {
    field.split('.').map(Box::from).collect()
}

fn compile_value(node: &Node, mods: &Modifiers) -> Result<ValueMatcher, Problem> {
    let Some(scalar) = node.scalar() else {
        return Err(Problem::new(
            node.line,
            "a value must be a string, number, boolean or null (not a list or map)",
        ));
    };
    let line = node.line;
    if let Some(op) = mods.compare {
        return match scalar {
            Scalar::Int(i) => Ok(ValueMatcher::Compare(op, i as f64)),
            Scalar::Float(f) => Ok(ValueMatcher::Compare(op, f)),
            _ => Err(Problem::new(line, "`lt`/`lte`/`gt`/`gte` take a number")),
        };
    }
    if mods.regex {
        let Some(pattern) = node.text() else {
            return Err(Problem::new(line, "`re` takes a string"));
        };
        let flags = if mods.regex_flags.is_empty() {
            String::new()
        } else {
            format!("(?{})", mods.regex_flags)
        };
        return Regex::new(&format!("{flags}{pattern}"))
            .map(ValueMatcher::Regex)
            .map_err(|e| Problem::new(line, format!("invalid regular expression: {e}")));
    }
    if mods.cidr {
        let text = node.text().unwrap_or_default();
        return parse_cidr(text)
            .map(ValueMatcher::Cidr)
            .ok_or_else(|| Problem::new(line, format!("`{text}` is not a CIDR network")));
    }
    let text = match scalar {
        Scalar::Null if mods.position.is_none() => return Ok(ValueMatcher::Null),
        Scalar::Bool(b) if mods.position.is_none() => return Ok(ValueMatcher::Bool(b)),
        Scalar::Int(i) if mods.position.is_none() => return Ok(ValueMatcher::Number(i as f64)),
        Scalar::Float(f) if mods.position.is_none() => return Ok(ValueMatcher::Number(f)),
        _ => node.text().unwrap_or_default(),
    };
    Ok(ValueMatcher::Text(TextMatcher::new(
        text,
        mods.position,
        mods.cased,
    )))
}

impl TextMatcher {
    fn new(pattern: &str, position: Option<&str>, cased: bool) -> Self {
        let (literal, has_wildcards) = unescape(pattern);
        let fold = |s: &str| {
            if cased {
                s.to_owned()
            } else {
                s.to_lowercase()
            }
        };
        if has_wildcards {
            let mut re = String::from(if cased { "(?s)" } else { "(?si)" });
            if !matches!(position, Some("contains" | "endswith")) {
                re.push('^');
            }
            re.push_str(&glob_to_regex(pattern));
            if !matches!(position, Some("contains" | "startswith")) {
                re.push('$');
            }
            // Built from escaped literals and `.*`/`.`, the pattern always compiles.
            #[allow(clippy::expect_used)]
            let compiled = Regex::new(&re)
                .or_else(|_| Regex::new("$^"))
                .expect("`$^` is a valid regular expression");
            return Self {
                how: TextHow::Glob(compiled),
                needle: fold(&literal),
                literal,
                cased,
            };
        }
        let how = match position {
            Some("contains") => TextHow::Contains,
            Some("startswith") => TextHow::Prefix,
            Some("endswith") => TextHow::Suffix,
            _ => TextHow::Exact,
        };
        Self {
            how,
            needle: fold(&literal),
            literal,
            cased,
        }
    }

    pub(crate) fn matches(&self, hay: &str) -> bool {
        let needle = self.needle.as_bytes();
        let hay_b = hay.as_bytes();
        match &self.how {
            TextHow::Glob(re) => re.is_match(hay),
            _ if !self.cased && !hay.is_ascii() => {
                // Unicode case folding needs an owned lower-case copy; rare in CloudTrail.
                let lower = hay.to_lowercase();
                self.matches_folded(lower.as_bytes(), needle, true)
            }
            _ => self.matches_folded(hay_b, needle, self.cased),
        }
    }

    fn matches_folded(&self, hay: &[u8], needle: &[u8], exact_case: bool) -> bool {
        let eq = |a: &[u8], b: &[u8]| {
            if exact_case {
                a == b
            } else {
                a.eq_ignore_ascii_case(b)
            }
        };
        match self.how {
            TextHow::Exact => hay.len() == needle.len() && eq(hay, needle),
            TextHow::Prefix => hay.len() >= needle.len() && eq(&hay[..needle.len()], needle),
            TextHow::Suffix => {
                hay.len() >= needle.len() && eq(&hay[hay.len() - needle.len()..], needle)
            }
            TextHow::Contains => {
                needle.is_empty() || hay.windows(needle.len()).any(|w| eq(w, needle))
            }
            TextHow::Glob(_) => false,
        }
    }

    /// The lookup key for an index of values: the whole value or its prefix, lower-cased.
    /// The value as written, whole or as a prefix (the index folds case itself).
    pub(crate) fn index_key(&self) -> Option<NameKey> {
        match self.how {
            TextHow::Exact => Some(NameKey::Exact(self.literal.clone())),
            TextHow::Prefix => Some(NameKey::Prefix(self.literal.clone())),
            _ => None,
        }
    }
}

/// Removes Sigma escapes; says whether unescaped wildcards remain.
fn unescape(pattern: &str) -> (String, bool) {
    let mut out = String::with_capacity(pattern.len());
    let mut wild = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('*' | '?' | '\\')) => {
                out.push(chars.next().unwrap_or('\\'));
            }
            '*' | '?' => {
                wild = true;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    (out, wild)
}

fn glob_to_regex(pattern: &str) -> String {
    let mut re = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('*' | '?' | '\\')) => {
                let escaped = chars.next().unwrap_or('\\');
                re.push_str(&regex::escape(&escaped.to_string()));
            }
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re
}

fn parse_cidr(text: &str) -> Option<IpNet> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (
            a.trim().parse::<IpAddr>().ok()?,
            p.trim().parse::<u8>().ok()?,
        ),
        None => {
            let a = text.trim().parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some(IpNet { addr, prefix })
}

impl IpNet {
    fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

impl Selection {
    pub(crate) fn matches(&self, record: &Value) -> bool {
        match &self.body {
            SelectionBody::Groups(groups) => {
                groups.iter().any(|g| g.iter().all(|f| f.matches(record)))
            }
            SelectionBody::Keywords { values, all } => {
                let hit = |v: &ValueMatcher| any_string(record, &mut |s| v.matches_str(s));
                if *all {
                    values.iter().all(hit)
                } else {
                    values.iter().any(hit)
                }
            }
        }
    }
}

impl FieldMatcher {
    fn matches(&self, record: &Value) -> bool {
        match &self.kind {
            FieldKind::Exists(want) => {
                let mut found = false;
                walk(record, &self.path, &mut |v| {
                    found |= v.is_some_and(|v| !v.is_null());
                    found
                });
                found == *want
            }
            FieldKind::Values { values, all } => {
                let one = |m: &ValueMatcher| {
                    let mut hit = false;
                    walk(record, &self.path, &mut |v| {
                        hit = m.matches(v);
                        hit
                    });
                    hit
                };
                if *all {
                    values.iter().all(one)
                } else {
                    values.iter().any(one)
                }
            }
            FieldKind::FieldRef(others) => others.iter().any(|other| {
                let mut hit = false;
                walk(record, &self.path, &mut |mine| {
                    let Some(mine) = mine else { return false };
                    walk(record, other, &mut |theirs| {
                        hit = theirs.is_some_and(|t| same_value(mine, t));
                        hit
                    });
                    hit
                });
                hit
            }),
        }
    }

    /// The values (whole or prefixes, lower-cased) this matcher restricts a field to, when
    /// it can be looked up in an index.
    pub(crate) fn index_keys(&self) -> Option<Vec<NameKey>> {
        match &self.kind {
            FieldKind::Values { values, all: false } => values
                .iter()
                .map(|v| match v {
                    ValueMatcher::Text(t) => t.index_key(),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    /// The key this matcher needs present in the record (the last part of its path), when it
    /// cannot match a record without it.
    pub(crate) fn required_key(&self) -> Option<&str> {
        let needed = match &self.kind {
            FieldKind::Exists(want) => *want,
            FieldKind::FieldRef(_) => true,
            FieldKind::Values { values, .. } => {
                !values.iter().any(|v| matches!(v, ValueMatcher::Null))
            }
        };
        needed.then(|| self.path.last().map(|k| &**k)).flatten()
    }
}

/// Calls `visit` with every value at `path` (`None` where the path ends early), descending into
/// arrays; stops as soon as `visit` returns true.
fn walk<'v>(
    value: &'v Value,
    path: &[Box<str>],
    visit: &mut dyn FnMut(Option<&'v Value>) -> bool,
) -> bool {
    match value {
        Value::Array(items) if !path.is_empty() || items.is_empty() => {
            if items.is_empty() {
                return visit(None);
            }
            items.iter().any(|item| walk(item, path, visit))
        }
        Value::Array(items) => items.iter().any(|item| visit(Some(item))),
        _ => match path.split_first() {
            None => visit(Some(value)),
            Some((key, rest)) => match value.get(&**key) {
                Some(child) => walk(child, rest, visit),
                None => visit(None),
            },
        },
    }
}

fn any_string(value: &Value, visit: &mut dyn FnMut(&str) -> bool) -> bool {
    match value {
        Value::String(s) => visit(s),
        Value::Array(items) => items.iter().any(|i| any_string(i, visit)),
        Value::Object(map) => map.values().any(|i| any_string(i, visit)),
        _ => false,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl ValueMatcher {
    fn matches(&self, value: Option<&Value>) -> bool {
        let Some(value) = value else {
            return matches!(self, Self::Null);
        };
        match (self, value) {
            (Self::Null, v) => v.is_null(),
            (_, Value::Null) => false,
            (Self::Bool(b), Value::Bool(v)) => b == v,
            (Self::Bool(b), Value::String(s)) => {
                s.eq_ignore_ascii_case(if *b { "true" } else { "false" })
            }
            (Self::Bool(_), _) => false,
            (Self::Number(n), v) => number_of(v) == Some(*n),
            (Self::Compare(op, n), v) => number_of(v).is_some_and(|x| match op {
                Comparison::Lt => x < *n,
                Comparison::Lte => x <= *n,
                Comparison::Gt => x > *n,
                Comparison::Gte => x >= *n,
            }),
            (_, Value::String(s)) => self.matches_str(s),
            (_, Value::Number(n)) => self.matches_str(&n.to_string()),
            (_, Value::Bool(b)) => self.matches_str(if *b { "true" } else { "false" }),
            // An object (or an array, seen whole) is matched as its compact JSON text.
            (_, v) => self.matches_str(&v.to_string()),
        }
    }

    fn matches_str(&self, s: &str) -> bool {
        match self {
            Self::Text(t) => t.matches(s),
            Self::Regex(re) => re.is_match(s),
            Self::Cidr(net) => s.trim().parse::<IpAddr>().is_ok_and(|ip| net.contains(ip)),
            Self::Number(n) => s.trim().parse::<f64>().ok() == Some(*n),
            Self::Bool(b) => s.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
            Self::Null | Self::Compare(..) => false,
        }
    }
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A compiled `detection`: selections and the condition over them.
#[derive(Debug)]
pub(crate) struct Detection {
    pub selections: Vec<Selection>,
    pub condition: Condition,
}

impl Detection {
    pub(crate) fn matches(&self, record: &Value) -> bool {
        self.condition
            .eval(&mut |i| self.selections[i].matches(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let net = parse_cidr("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.1.2.3".parse().unwrap()));
        let all = parse_cidr("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6 = parse_cidr("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(parse_cidr("10.0.0.0/33").is_none());
    }

    #[test]
    fn text_matching() {
        let m = TextMatcher::new("Stop*", None, false);
        assert!(m.matches("stoplogging"));
        assert!(!m.matches("xstop"));
        let m = TextMatcher::new("a\\*b", None, false);
        assert!(m.matches("A*B"));
        assert!(!m.matches("axb"));
        let m = TextMatcher::new("Deny", Some("contains"), false);
        assert!(m.matches("{\"Effect\":\"deny\"}"));
        let m = TextMatcher::new("Deny", Some("contains"), true);
        assert!(!m.matches("{\"Effect\":\"deny\"}"));
        let m = TextMatcher::new("ÄB", None, false);
        assert!(m.matches("äb"));
    }
}
