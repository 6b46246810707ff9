//! MLflow's search language over runs: a filter of `field op value` clauses joined by `AND`
//! (attributes, metrics, params and tags; `=`, `!=`, `<`, `<=`, `>`, `>=`, `LIKE`, `ILIKE`,
//! `IN`, `NOT IN`), matched and ordered in memory, with `LIKE` patterns checked so that none
//! can take exponential time.

use crate::ControlError;
use crate::runs::tracking::RunData;
use crate::store::runs::RunRow;
use std::cmp::Ordering;

/// Kiln's run states in MLflow's words.
pub fn mlflow_status(status: &str) -> &'static str {
    match status {
        "queued" | "preparing" => "SCHEDULED",
        "running" => "RUNNING",
        "completed" => "FINISHED",
        "failed" => "FAILED",
        _ => "KILLED",
    }
}

/// What a search clause compares: an attribute, a metric, a param or a tag.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// A run attribute: `status`, `run_name`, `run_id`, `user_id`, `start_time`, ...
    Attribute(String),
    /// A metric's latest value.
    Metric(String),
    /// A parameter.
    Param(String),
    /// A tag.
    Tag(String),
}

/// One `field op value` clause of a filter.
#[derive(Clone, Debug)]
pub struct Clause {
    /// What it compares.
    pub field: Field,
    /// How: `=`, `!=`, `<`, `<=`, `>`, `>=`, `LIKE`, `ILIKE`, `IN`, `NOT IN`.
    pub op: String,
    /// With what.
    pub values: Vec<Literal>,
}

/// A value a clause compares with.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// Quoted text.
    Text(String),
    /// A number.
    Number(f64),
}

/// Splits a filter into tokens: identifiers (with backquoted or quoted keys), strings,
/// numbers, operators, parentheses and commas.
fn tokens(filter: &str) -> Result<Vec<String>, ControlError> {
    let bad = |why: &str| ControlError::Invalid(format!("invalid filter '{filter}': {why}"));
    let chars: Vec<char> = filter.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' || c == '`' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or_else(|| bad("an unclosed quote"))?;
            out.push(chars[i..i + end + 2].iter().collect());
            i += end + 2;
        } else if "(),".contains(c) {
            out.push(c.to_string());
            i += 1;
        } else if "=!<>".contains(c) {
            let two = chars.get(i + 1) == Some(&'=');
            out.push(chars[i..i + 1 + usize::from(two)].iter().collect());
            i += 1 + usize::from(two);
        } else {
            let start = i;
            while i < chars.len() {
                let d = chars[i];
                if d.is_whitespace() || "(),=!<>".contains(d) {
                    break;
                }
                if (d == '`' || d == '"' || d == '\'') && i > start {
                    // entity.`key with spaces`
                    let end = chars[i + 1..]
                        .iter()
                        .position(|&e| e == d)
                        .ok_or_else(|| bad("an unclosed quote"))?;
                    i += end + 2;
                    continue;
                }
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    Ok(out)
}

fn unquote(text: &str) -> String {
    let t = text.trim();
    for q in ['\'', '"', '`'] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return t[1..t.len() - 1].to_string();
        }
    }
    t.to_string()
}

/// The field an identifier names: `metrics.KEY`, `params.KEY`, `tags.KEY`,
/// `attributes.NAME` or a bare attribute name.
pub fn field(identifier: &str) -> Result<Field, ControlError> {
    let (entity, key) = match identifier.split_once('.') {
        Some((entity, key)) => (entity.to_ascii_lowercase(), unquote(key)),
        None => ("attributes".into(), unquote(identifier)),
    };
    Ok(match entity.as_str() {
        "metrics" | "metric" => Field::Metric(key),
        "params" | "param" | "parameters" | "parameter" => Field::Param(key),
        "tags" | "tag" => Field::Tag(key),
        "attributes" | "attribute" | "attr" | "run" => Field::Attribute(key),
        other => {
            return Err(ControlError::Invalid(format!(
                "invalid filter: unknown entity '{other}' (metrics, params, tags, attributes)"
            )));
        }
    })
}

fn literal(token: &str) -> Result<Literal, ControlError> {
    if token.starts_with('\'') || token.starts_with('"') {
        return Ok(Literal::Text(unquote(token)));
    }
    token
        .parse::<f64>()
        .map(Literal::Number)
        .map_err(|_| ControlError::Invalid(format!("invalid filter: '{token}' is not a value")))
}

/// Parses `clause AND clause ...`.
pub fn parse_filter(filter: &str) -> Result<Vec<Clause>, ControlError> {
    let tokens = tokens(filter)?;
    let mut clauses = Vec::new();
    let mut i = 0;
    let bad = |why: String| ControlError::Invalid(format!("invalid filter '{filter}': {why}"));
    while i < tokens.len() {
        let field = field(&tokens[i])?;
        i += 1;
        let mut op = tokens
            .get(i)
            .ok_or_else(|| bad("a comparison is missing".into()))?
            .to_ascii_uppercase();
        i += 1;
        if op == "NOT" {
            let next = tokens.get(i).map(|t| t.to_ascii_uppercase());
            if next.as_deref() != Some("IN") {
                return Err(bad("NOT is only NOT IN".into()));
            }
            op = "NOT IN".into();
            i += 1;
        }
        let values = if op == "IN" || op == "NOT IN" {
            if tokens.get(i).map(String::as_str) != Some("(") {
                return Err(bad(format!("{op} needs a list in parentheses")));
            }
            i += 1;
            let mut values = Vec::new();
            while let Some(token) = tokens.get(i) {
                i += 1;
                match token.as_str() {
                    ")" => break,
                    "," => continue,
                    value => values.push(literal(value)?),
                }
            }
            values
        } else {
            if !["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE"].contains(&op.as_str()) {
                return Err(bad(format!("unknown comparison '{op}'")));
            }
            let value = tokens
                .get(i)
                .ok_or_else(|| bad(format!("'{op}' needs a value")))?;
            i += 1;
            let value = literal(value)?;
            if let (true, Literal::Text(pattern)) = (op.ends_with("LIKE"), &value) {
                check_like(pattern)?;
            }
            vec![value]
        };
        clauses.push(Clause { field, op, values });
        match tokens.get(i).map(|t| t.to_ascii_uppercase()) {
            None => {}
            Some(and) if and == "AND" => i += 1,
            Some(other) => return Err(bad(format!("expected AND, found '{other}'"))),
        }
    }
    Ok(clauses)
}

/// The longest `LIKE` pattern a filter may hold, in characters.
pub(super) const MAX_LIKE_CHARS: usize = 256;

/// The most wildcards (`%` and `_`) a `LIKE` pattern may hold.
pub(super) const MAX_LIKE_WILDCARDS: usize = 32;

/// Refuses a `LIKE` pattern longer than [`MAX_LIKE_CHARS`] or with more than
/// [`MAX_LIKE_WILDCARDS`] wildcards, with the limit named.
pub fn check_like(pattern: &str) -> Result<(), ControlError> {
    let chars = pattern.chars().count();
    if chars > MAX_LIKE_CHARS {
        return Err(ControlError::Invalid(format!(
            "a LIKE pattern may hold at most {MAX_LIKE_CHARS} characters, not {chars}"
        )));
    }
    let wildcards = pattern.chars().filter(|c| matches!(c, '%' | '_')).count();
    if wildcards > MAX_LIKE_WILDCARDS {
        return Err(ControlError::Invalid(format!(
            "a LIKE pattern may hold at most {MAX_LIKE_WILDCARDS} wildcards (% and _), not {wildcards}"
        )));
    }
    Ok(())
}

/// SQL `LIKE` with `%` and `_`, in time linear in the text for each `%` of the pattern (the
/// matcher goes back only to the last `%`, never further: O(text x pattern) at worst, not
/// exponential).
pub fn like(text: &str, pattern: &str, fold: bool) -> bool {
    let (text, pattern) = if fold {
        (text.to_lowercase(), pattern.to_lowercase())
    } else {
        (text.to_string(), pattern.to_string())
    };
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    // After the last `%` seen: where the pattern goes on, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '%' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if let Some((after, tried)) = star {
            // The last `%` takes one more character.
            star = Some((after, tried + 1));
            pi = after;
            ti = tried + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// A run with what it logged, for search.
pub struct Candidate {
    /// The run.
    pub view: RunRow,
    /// What it logged.
    pub data: RunData,
}

impl Candidate {
    /// The run's value of a field, if it has one.
    pub fn get(&self, field: &Field) -> Option<Literal> {
        match field {
            Field::Metric(key) => self
                .data
                .metrics
                .iter()
                .find(|m| m.key == *key)
                .map(|m| Literal::Number(m.number())),
            Field::Param(key) => self
                .data
                .params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Literal::Text(v.clone())),
            Field::Tag(key) => self
                .data
                .tags
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Literal::Text(v.clone())),
            Field::Attribute(key) => match key.as_str() {
                "status" => Some(Literal::Text(mlflow_status(&self.view.status).into())),
                "run_name" | "runName" => Some(Literal::Text(self.view.display_name())),
                "run_id" | "run_uuid" => Some(Literal::Text(self.view.id.clone())),
                "user_id" => Some(Literal::Text(self.view.created_by.clone())),
                "start_time" => Some(Literal::Number(
                    self.view.started_at.unwrap_or(self.view.created_at) as f64,
                )),
                "end_time" => self.view.finished_at.map(|t| Literal::Number(t as f64)),
                "experiment_id" => Some(Literal::Text(self.view.experiment_id.clone())),
                _ => None,
            },
        }
    }

    /// Whether the run satisfies a clause (a run without the field never does).
    pub fn matches(&self, clause: &Clause) -> bool {
        let Some(actual) = self.get(&clause.field) else {
            return false;
        };
        let order = |expected: &Literal| -> Option<Ordering> {
            match (&actual, expected) {
                (Literal::Number(a), Literal::Number(b)) => a.partial_cmp(b),
                (Literal::Text(a), Literal::Text(b)) => Some(a.cmp(b)),
                (Literal::Number(a), Literal::Text(b)) => {
                    b.parse::<f64>().ok().and_then(|b| a.partial_cmp(&b))
                }
                (Literal::Text(a), Literal::Number(b)) => {
                    a.parse::<f64>().ok().and_then(|a| a.partial_cmp(b))
                }
            }
        };
        let expected = &clause.values;
        match clause.op.as_str() {
            "IN" => expected.iter().any(|e| order(e) == Some(Ordering::Equal)),
            "NOT IN" => !expected.iter().any(|e| order(e) == Some(Ordering::Equal)),
            "LIKE" | "ILIKE" => match (&actual, expected.first()) {
                (Literal::Text(a), Some(Literal::Text(p))) => like(a, p, clause.op == "ILIKE"),
                _ => false,
            },
            op => match expected.first().and_then(order) {
                Some(o) => match op {
                    "=" => o == Ordering::Equal,
                    "!=" => o != Ordering::Equal,
                    "<" => o == Ordering::Less,
                    "<=" => o != Ordering::Greater,
                    ">" => o == Ordering::Greater,
                    ">=" => o != Ordering::Less,
                    _ => false,
                },
                None => false,
            },
        }
    }
}

/// Orders runs by `order` (runs without a value last either way).
pub fn sort_candidates(candidates: &mut [Candidate], order: &[(Field, bool)]) {
    candidates.sort_by(|a, b| {
        for (field, descending) in order {
            let (x, y) = (a.get(field), b.get(field));
            let o = match (x, y) {
                (Some(Literal::Number(x)), Some(Literal::Number(y))) => {
                    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
                }
                (Some(Literal::Text(x)), Some(Literal::Text(y))) => x.cmp(&y),
                // Runs without the value come last either way.
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                _ => Ordering::Equal,
            };
            let o = if *descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        let clauses = parse_filter(
            "metrics.accuracy > 0.9 AND params.solver = 'lbfgs' and tags.`my tag` IN ('a', 'b') AND attributes.status != 'FAILED'",
        )
        .expect("parses");
        assert_eq!(clauses.len(), 4);
        assert_eq!(clauses[0].field, Field::Metric("accuracy".into()));
        assert_eq!(clauses[0].values, vec![Literal::Number(0.9)]);
        assert_eq!(clauses[2].field, Field::Tag("my tag".into()));
        assert_eq!(clauses[2].op, "IN");
        assert_eq!(clauses[2].values.len(), 2);
        assert!(parse_filter("metrics.a >").is_err());
        assert!(parse_filter("bogus.a = 1").is_err());
        assert!(parse_filter("params.a = 'x' OR params.b = 'y'").is_err());
        assert!(parse_filter("").expect("empty").is_empty());
    }

    #[test]
    fn like_matches_as_sql_does() {
        assert!(like("logistic", "log%", false));
        assert!(like("logistic", "%IST%", true));
        assert!(!like("logistic", "%IST%", false));
        assert!(like("ab", "a_", false));
        assert!(!like("abc", "a_", false));
        assert!(like("abc", "%", false));
        assert!(like("", "%%", false));
        assert!(!like("", "_", false));
        assert!(like("mississippi", "%sis%ip_i", false));
        assert!(!like("mississippi", "%sis%ip_x", false));
        assert!(like("a%b", "a%b", false));
        assert!(like("aaa", "%a%a%a%", false));
        assert!(!like("aa", "%a%a%a%", false));
    }

    #[test]
    fn like_agrees_with_a_plain_backtracking_matcher() {
        fn reference(t: &[char], p: &[char]) -> bool {
            match p.first() {
                None => t.is_empty(),
                Some('%') => (0..=t.len()).any(|i| reference(&t[i..], &p[1..])),
                Some('_') => !t.is_empty() && reference(&t[1..], &p[1..]),
                Some(c) => t.first() == Some(c) && reference(&t[1..], &p[1..]),
            }
        }
        // Every text and pattern over a small alphabet, up to lengths 5 and 4.
        fn all(alphabet: &[char], up_to: usize) -> Vec<String> {
            let mut out = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..up_to {
                last = last
                    .iter()
                    .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                    .collect();
                out.extend(last.iter().cloned());
            }
            out
        }
        for text in all(&['a', 'b'], 5) {
            for pattern in all(&['a', 'b', '%', '_'], 4) {
                let t: Vec<char> = text.chars().collect();
                let p: Vec<char> = pattern.chars().collect();
                assert_eq!(
                    like(&text, &pattern, false),
                    reference(&t, &p),
                    "{text} {pattern}"
                );
            }
        }
    }

    #[test]
    fn pathological_like_patterns_are_fast_or_refused() {
        // 16 pairs of `%_` against a 32-character id: exponential for a backtracking matcher.
        let pattern = format!("{}!", "%_".repeat(16));
        assert!(check_like(&pattern).is_ok());
        assert!(!like(&"a".repeat(32), &pattern, false));
        let long = "%_".repeat(17);
        let refused = check_like(&long).expect_err("too many wildcards");
        assert!(
            refused.to_string().contains("at most 32 wildcards"),
            "{refused}"
        );
        let refused = check_like(&"x".repeat(300)).expect_err("too long");
        assert!(
            refused.to_string().contains("at most 256 characters"),
            "{refused}"
        );
        assert!(parse_filter(&format!("attributes.run_id LIKE '{long}'")).is_err());
    }
}
