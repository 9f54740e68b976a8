//! The Sigma `condition` grammar: `and`, `or`, `not`, parentheses, `1 of X*`, `all of X*`,
//! `1 of them`, `all of them`. Aggregations (`| count() ...`) and `near` are rejected.

use crate::error::Problem;

/// A condition compiled to selection indices.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    Selection(usize),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

impl Condition {
    /// Evaluates with short-circuiting; `selection(i)` tells whether selection `i` matches.
    pub(crate) fn eval(&self, selection: &mut dyn FnMut(usize) -> bool) -> bool {
        match self {
            Self::Selection(i) => selection(*i),
            Self::And(items) => items.iter().all(|c| c.eval(selection)),
            Self::Or(items) => items.iter().any(|c| c.eval(selection)),
            Self::Not(inner) => !inner.eval(selection),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    And,
    Or,
    Not,
    Open,
    Close,
    OneOf,
    AllOf,
}

fn tokenize(text: &str, line: usize) -> Result<Vec<Token>, Problem> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' | ')' => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                words.push(c.to_string());
            }
            '|' => {
                return Err(Problem::unsupported(
                    line,
                    "aggregation in the condition (`| count() ...`): Sigma v1 aggregations are \
                     not supported; use a correlation-free rule",
                ));
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i].as_str();
        let next_is_of = words
            .get(i + 1)
            .is_some_and(|w| w.eq_ignore_ascii_case("of"));
        let token = match word.to_ascii_lowercase().as_str() {
            "and" => Token::And,
            "or" => Token::Or,
            "not" => Token::Not,
            "(" => Token::Open,
            ")" => Token::Close,
            "1" | "any" if next_is_of => {
                i += 1;
                Token::OneOf
            }
            "all" if next_is_of => {
                i += 1;
                Token::AllOf
            }
            "near" => {
                return Err(Problem::unsupported(line, "`near` in the condition"));
            }
            "of" => return Err(Problem::new(line, "`of` must follow `1` or `all`")),
            _ if next_is_of => {
                return Err(Problem::unsupported(
                    line,
                    format!("`{word} of`: only `1 of` and `all of` are Sigma"),
                ));
            }
            _ => Token::Ident(word.to_owned()),
        };
        tokens.push(token);
        i += 1;
    }
    Ok(tokens)
}

/// Parses `text` against the selection `names` (in order).
pub(crate) fn parse(text: &str, names: &[String], line: usize) -> Result<Condition, Problem> {
    let tokens = tokenize(text, line)?;
    if tokens.is_empty() {
        return Err(Problem::new(line, "the condition is empty"));
    }
    let mut parser = ConditionParser {
        tokens: &tokens,
        at: 0,
        names,
        line,
    };
    let condition = parser.or()?;
    if parser.at < tokens.len() {
        return Err(Problem::new(
            line,
            format!(
                "unexpected {} in the condition",
                describe(&tokens[parser.at])
            ),
        ));
    }
    Ok(condition)
}

fn describe(token: &Token) -> String {
    match token {
        Token::Ident(name) => format!("`{name}`"),
        Token::And => "`and`".into(),
        Token::Or => "`or`".into(),
        Token::Not => "`not`".into(),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::OneOf => "`1 of`".into(),
        Token::AllOf => "`all of`".into(),
    }
}

struct ConditionParser<'a> {
    tokens: &'a [Token],
    at: usize,
    names: &'a [String],
    line: usize,
}

impl ConditionParser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<Condition, Problem> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Condition::Or(items)
        })
    }

    fn and(&mut self) -> Result<Condition, Problem> {
        let mut items = vec![self.not()?];
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Condition::And(items)
        })
    }

    fn not(&mut self) -> Result<Condition, Problem> {
        if self.peek() == Some(&Token::Not) {
            self.at += 1;
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, Problem> {
        let line = self.line;
        let Some(token) = self.peek().cloned() else {
            return Err(Problem::new(line, "the condition ends too early"));
        };
        self.at += 1;
        match token {
            Token::Open => {
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(Problem::new(line, "missing `)` in the condition"));
                }
                self.at += 1;
                Ok(inner)
            }
            Token::Ident(name) => self
                .names
                .iter()
                .position(|n| *n == name)
                .map(Condition::Selection)
                .ok_or_else(|| {
                    Problem::new(
                        line,
                        format!("the condition names `{name}`, which is not a selection"),
                    )
                }),
            Token::OneOf | Token::AllOf => {
                let Some(Token::Ident(pattern)) = self.peek().cloned() else {
                    return Err(Problem::new(
                        line,
                        "`1 of`/`all of` needs a selection name pattern or `them`",
                    ));
                };
                self.at += 1;
                let picked: Vec<Condition> = self
                    .names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| {
                        if pattern == "them" {
                            !n.starts_with('_')
                        } else {
                            glob_matches(&pattern, n)
                        }
                    })
                    .map(|(i, _)| Condition::Selection(i))
                    .collect();
                if picked.is_empty() {
                    return Err(Problem::new(
                        line,
                        format!("`{pattern}` in the condition matches no selection"),
                    ));
                }
                Ok(if token == Token::OneOf {
                    Condition::Or(picked)
                } else {
                    Condition::And(picked)
                })
            }
            other => Err(Problem::new(
                line,
                format!("unexpected {} in the condition", describe(&other)),
            )),
        }
    }
}

/// Sigma identifier patterns: `*` matches any run of characters.
fn glob_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            if !tail.contains('*') {
                return rest.ends_with(tail);
            }
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob_matches(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn eval(cond: &Condition, truth: &[bool]) -> bool {
        cond.eval(&mut |i| truth[i])
    }

    #[test]
    fn precedence_not_and_or() {
        let n = names(&["a", "b", "c"]);
        let c = parse("a or b and not c", &n, 1).unwrap();
        assert!(eval(&c, &[true, false, true]));
        assert!(eval(&c, &[false, true, false]));
        assert!(!eval(&c, &[false, true, true]));
        let c = parse("(a or b) and not c", &n, 1).unwrap();
        assert!(!eval(&c, &[true, false, true]));
    }

    #[test]
    fn of_patterns() {
        let n = names(&["selection_a", "selection_b", "filter", "_hidden"]);
        let c = parse("1 of selection_* and not filter", &n, 1).unwrap();
        assert!(eval(&c, &[false, true, false, false]));
        assert!(!eval(&c, &[false, true, true, false]));
        let c = parse("all of them", &n, 1).unwrap();
        assert!(eval(&c, &[true, true, true, false]));
        let c = parse("all of selection*", &n, 1).unwrap();
        assert!(!eval(&c, &[true, false, false, false]));
    }

    #[test]
    fn errors_are_named() {
        let n = names(&["selection"]);
        assert!(
            parse("selection | count() > 5", &n, 7)
                .unwrap_err()
                .to_string()
                .contains("aggregation")
        );
        assert!(
            parse("sel", &n, 1)
                .unwrap_err()
                .to_string()
                .contains("`sel`")
        );
        assert!(parse("1 of x*", &n, 1).is_err());
        assert!(parse("(selection", &n, 1).is_err());
        assert!(parse("selection and", &n, 1).is_err());
        assert!(parse("selection selection", &n, 1).is_err());
    }

    #[test]
    fn glob() {
        assert!(glob_matches("sel*", "selection"));
        assert!(glob_matches("*tion", "selection"));
        assert!(glob_matches("s*c*n", "selection"));
        assert!(!glob_matches("x*", "selection"));
    }
}
