//! Label selectors as used in `?labelSelector=`: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`,
//! joined by commas (AND).

use std::collections::BTreeMap;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(pub Vec<Requirement>);

impl Selector {
    /// Parse a selector string; an empty string selects everything.
    pub fn parse(input: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for term in split_terms(input)? {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_term(term)?);
        }
        Ok(Selector(reqs))
    }

    /// Whether a label map satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

/// Split at commas that are not inside parentheses.
fn split_terms(input: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced parenthesis in label selector {input:?}"));
                }
            }
            ',' if depth == 0 => {
                out.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parenthesis in label selector {input:?}"));
    }
    out.push(&input[start..]);
    Ok(out)
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(check_key(key.trim())?));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(check_key(k.trim())?, check_value(v.trim())?));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Equals(check_key(k.trim())?, check_value(v.trim())?));
    }
    for (op, notin) in [(" notin ", true), (" in ", false)] {
        if let Some((k, rest)) = term.split_once(op) {
            let rest = rest.trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("expected a parenthesised value list in {term:?}"))?;
            let values = inner.split(',').map(|v| check_value(v.trim())).collect::<Result<Vec<String>, String>>()?;
            let key = check_key(k.trim())?;
            return Ok(if notin { Requirement::NotIn(key, values) } else { Requirement::In(key, values) });
        }
    }
    Ok(Requirement::Exists(check_key(term)?))
}

fn check_key(key: &str) -> Result<String, String> {
    let valid = !key.is_empty()
        && key.len() <= 317
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_string())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

fn check_value(value: &str) -> Result<String, String> {
    let valid = value.len() <= 63 && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn all_operators() {
        let l = labels(&[("app", "portal"), ("portalctl.dev/tenant", "espelkamp"), ("tier", "web")]);
        let ok = |s: &str| Selector::parse(s).unwrap().matches(&l);
        assert!(ok(""));
        assert!(ok("app=portal"));
        assert!(ok("app==portal"));
        assert!(!ok("app=other"));
        assert!(ok("app!=other"));
        assert!(!ok("app!=portal"));
        assert!(ok("portalctl.dev/tenant"));
        assert!(!ok("!portalctl.dev/tenant"));
        assert!(ok("!missing"));
        assert!(ok("tier in (db, web)"));
        assert!(!ok("tier in (db)"));
        assert!(ok("tier notin (db)"));
        assert!(ok("missing notin (db)"));
        assert!(ok("app=portal,tier in (web,db),!missing"));
        assert!(!ok("app=portal,tier in (db),!missing"));
    }

    #[test]
    fn rejects_malformed() {
        assert!(Selector::parse("tier in (a,b").is_err());
        assert!(Selector::parse("tier in a").is_err());
        assert!(Selector::parse("a=b c").is_err());
        assert!(Selector::parse("=x").is_err());
    }
}
