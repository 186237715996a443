//! Quoting for the places where PostgreSQL cannot bind parameters (identifiers, and
//! literals in utility statements such as `ALTER ROLE ... PASSWORD`).
//!
//! Both functions produce text that the server reads back as exactly the input, whatever
//! the input contains; they are the only way names and literals enter dynamic SQL here.

/// Quote an identifier: wrap in double quotes, double any inner double quote
/// (PostgreSQL's `quote_ident`, but always quoting).
pub fn ident(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for c in name.chars() {
        if c == '"' {
            s.push('"');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Quote a string literal: single quotes, inner single quotes doubled; if the text holds a
/// backslash the escape-string form `E'...'` is used with backslashes doubled, so the result
/// is read the same whatever `standard_conforming_strings` says (PostgreSQL's `quote_literal`).
pub fn literal(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 3);
    if text.contains('\\') {
        s.push('E');
    }
    s.push('\'');
    for c in text.chars() {
        match c {
            '\'' => s.push_str("''"),
            '\\' => s.push_str("\\\\"),
            c => s.push(c),
        }
    }
    s.push('\'');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted_and_inner_quotes_doubled() {
        assert_eq!(ident("t_espelkamp"), r#""t_espelkamp""#);
        assert_eq!(ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(ident(r#"x"; DROP SCHEMA public CASCADE; --"#), r#""x""; DROP SCHEMA public CASCADE; --""#);
        assert_eq!(ident(""), r#""""#);
        assert_eq!(ident("Groß"), "\"Groß\"");
    }

    #[test]
    fn hostile_identifiers_stay_one_token() {
        // Whatever the input, the quoted form starts and ends with the only unpaired quotes.
        for hostile in [r#"""#, r#""""#, r#"a" OR "1"="1"#, "t_a\"; GRANT ALL ON SCHEMA t_b TO t_a; --", "\"\n\""] {
            let q = ident(hostile);
            let inner = &q[1..q.len() - 1];
            assert_eq!(inner.replace("\"\"", ""), hostile.replace('"', ""), "{hostile:?}");
            assert!(q.starts_with('"') && q.ends_with('"'));
        }
    }

    #[test]
    fn literals_double_quotes_and_escape_backslashes() {
        assert_eq!(literal("secret"), "'secret'");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("'; DROP ROLE postgres; --"), "'''; DROP ROLE postgres; --'");
        assert_eq!(literal(r"a\b"), r"E'a\\b'");
        assert_eq!(literal(r"\'"), r"E'\\'''");
        assert_eq!(literal(""), "''");
    }
}
