//! Names that leave the process — slugs, hostnames, PostgreSQL identifiers, Kubernetes names —
//! and the rules they must satisfy. Pure functions, no IO.
//!
//! Every name that reaches SQL, DNS or Kubernetes passes through one of the validators here
//! first; nothing downstream interpolates an unchecked string.

use std::fmt;

/// Why a name was rejected. The message is written for the operator who typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

fn err<T>(msg: impl Into<String>) -> Result<T, NameError> {
    Err(NameError(msg.into()))
}

/// A tenant or group slug: an RFC 1123 DNS label (lower-case ASCII letters, digits, `-`,
/// 1–63 characters, no leading/trailing `-`). Slugs become Kubernetes object names,
/// label values and DNS labels, so this is the strictest of the three.
pub fn check_slug(slug: &str) -> Result<(), NameError> {
    check_dns_label(slug).map_err(|e| NameError(format!("slug {slug:?}: {e}")))
}

/// One label of a DNS name (RFC 1123): `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`.
pub fn check_dns_label(label: &str) -> Result<(), NameError> {
    if label.is_empty() {
        return err("is empty");
    }
    if label.len() > 63 {
        return err(format!("is {} characters long; a DNS label has at most 63", label.len()));
    }
    if let Some(c) = label.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return err(format!("contains {c:?}; only lower-case ASCII letters, digits and '-' are allowed"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return err("must not start or end with '-'");
    }
    Ok(())
}

/// A Kubernetes object name of the DNS-subdomain kind (Secrets, ConfigMaps): lower-case
/// alphanumerics, `-` and `.`, starting and ending alphanumeric, at most 253 characters
/// (Kubernetes' `IsDNS1123Subdomain`; unlike hostnames, parts are not limited to 63).
pub fn check_dns_subdomain(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > 253 {
        return err(format!("{name:?} must be 1 to 253 characters long"));
    }
    for part in name.split('.') {
        let ok = !part.is_empty()
            && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !part.starts_with('-')
            && !part.ends_with('-');
        if !ok {
            return err(format!("{name:?} is not a DNS subdomain name (a-z, 0-9, '-', '.')"));
        }
    }
    Ok(())
}

/// A hostname as written in a tenant file, with its ASCII (punycode) form for DNS,
/// TLS and Ingress rules. Unicode input is converted explicitly with IDNA (UTS 46),
/// never mangled: the original spelling is kept for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hostname {
    /// The ASCII form (`service.xn--mnster-3ya.de`), the one machines see.
    pub ascii: String,
    /// The form as written, when it differs from `ascii` (`service.münster.de`).
    pub unicode: Option<String>,
}

/// Parse and check a hostname: IDNA to ASCII, then RFC 1123 per label, each label ≤ 63,
/// total ≤ 253, at least two labels, no wildcard, no trailing dot, no IP address.
pub fn parse_hostname(input: &str) -> Result<Hostname, NameError> {
    if input.is_empty() {
        return err("hostname is empty");
    }
    if input != input.trim() {
        return err(format!("hostname {input:?} has leading or trailing white space"));
    }
    if input.ends_with('.') {
        return err(format!("hostname {input:?} ends with '.'; write it without the root dot"));
    }
    if input.contains('*') {
        return err(format!("hostname {input:?} is a wildcard; a tenant needs concrete hostnames"));
    }
    if input.contains("://") || input.contains('/') || input.contains(':') {
        return err(format!("hostname {input:?} looks like a URL; write only the host name"));
    }
    let ascii = if input.is_ascii() {
        if input.chars().any(|c| c.is_ascii_uppercase()) {
            return err(format!("hostname {input:?} has upper-case letters; write it in lower case"));
        }
        input.to_string()
    } else {
        idna::domain_to_ascii_strict(input)
            .map_err(|_| NameError(format!("hostname {input:?} is not a valid internationalised domain name (IDNA)")))?
    };
    if ascii.len() > 253 {
        return err(format!("hostname {input:?} is {} characters long in ASCII form; at most 253", ascii.len()));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return err(format!("hostname {input:?} has no domain; expected e.g. service.<commune>.de"));
    }
    for label in &labels {
        check_dns_label(label).map_err(|e| NameError(format!("hostname {input:?}: label {label:?} {e}")))?;
    }
    if labels.iter().all(|l| l.chars().all(|c| c.is_ascii_digit())) {
        return err(format!("hostname {input:?} is an IP address; a tenant needs a DNS name"));
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return err(format!("hostname {input:?} has a numeric top-level domain"));
    }
    let unicode = (ascii != input).then(|| input.to_string());
    Ok(Hostname { ascii, unicode })
}

/// Schema names are PostgreSQL identifiers used unquoted-safe: `[a-z_][a-z0-9_]*`,
/// at most 63 bytes (NAMEDATALEN − 1), not a reserved or system schema.
pub fn check_schema_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return err("schema name is empty");
    }
    if name.len() > 63 {
        return err(format!(
            "schema name {name:?} is {} bytes long; PostgreSQL truncates identifiers at 63",
            name.len()
        ));
    }
    let mut chars = name.chars();
    let first = chars.next().unwrap_or('_');
    if !(first.is_ascii_lowercase() || first == '_') {
        return err(format!("schema name {name:?} must start with a lower-case letter or '_'"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        return err(format!("schema name {name:?} contains {c:?}; only a-z, 0-9 and '_' are allowed"));
    }
    if name.starts_with("pg_") || RESERVED_SCHEMAS.contains(&name) {
        return err(format!("schema name {name:?} is reserved by PostgreSQL or shared by all tenants"));
    }
    if SQL_KEYWORDS.contains(&name) {
        return err(format!("schema name {name:?} is an SQL keyword"));
    }
    Ok(())
}

const RESERVED_SCHEMAS: &[&str] = &["public", "information_schema", "portalctl"];

/// Reserved SQL keywords that cannot be used as bare identifiers (a subset of PostgreSQL's
/// fully reserved list that could plausibly come out of a commune's name).
const SQL_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "default",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "into",
    "leading",
    "limit",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "primary",
    "references",
    "select",
    "table",
    "then",
    "to",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "when",
    "where",
    "with",
];

/// The default schema of a tenant: `t_` + slug with `-` as `_` (e.g. `t_preussisch_oldendorf`).
pub fn default_schema(slug: &str) -> String {
    format!("t_{}", slug.replace('-', "_"))
}

/// Transliterate German (and a few other Latin) letters to ASCII the way German
/// administrations write them in domain names: ä→ae, ö→oe, ü→ue, ß→ss, é→e, …
/// Characters with no rule are returned as `None` so that callers notice.
pub fn transliterate_char(c: char) -> Option<&'static str> {
    Some(match c {
        'ä' => "ae",
        'ö' => "oe",
        'ü' => "ue",
        'ß' | 'ẞ' => "ss",
        'Ä' => "ae",
        'Ö' => "oe",
        'Ü' => "ue",
        'á' | 'à' | 'â' | 'å' | 'ã' => "a",
        'é' | 'è' | 'ê' | 'ë' => "e",
        'í' | 'ì' | 'î' | 'ï' => "i",
        'ó' | 'ò' | 'ô' | 'õ' => "o",
        'ú' | 'ù' | 'û' => "u",
        'ç' => "c",
        'ñ' => "n",
        'ø' => "oe",
        'æ' => "ae",
        _ => return None,
    })
}

/// Turn a display name into a DNS-label slug: lower case, transliterated, every run of
/// other characters (space, `.`, `/`, `(`, `)`, `-`, `'`) folded into one `-`.
/// Deterministic; never fails — characters without a transliteration are dropped,
/// which `slugify_checked` reports.
pub fn slugify(name: &str) -> String {
    slugify_checked(name).0
}

/// Like [`slugify`], also returning the characters that had to be dropped.
pub fn slugify_checked(name: &str) -> (String, Vec<char>) {
    let mut out = String::with_capacity(name.len() + 4);
    let mut dropped = Vec::new();
    let mut pending_dash = false;
    for c in name.chars() {
        let piece: Option<String> = if c.is_ascii_alphanumeric() {
            Some(c.to_ascii_lowercase().to_string())
        } else if let Some(t) = transliterate_char(c) {
            Some(t.to_string())
        } else if c.is_alphanumeric() {
            dropped.push(c);
            None
        } else {
            pending_dash = true;
            None
        };
        if let Some(p) = piece {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push_str(&p);
        }
    }
    if out.len() > 63 {
        out.truncate(63);
        while out.ends_with('-') {
            out.pop();
        }
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_of_real_names() {
        let cases = [
            ("Preußisch Oldendorf", "preussisch-oldendorf"),
            ("Hüllhorst", "huellhorst"),
            ("Wickede (Ruhr)", "wickede-ruhr"),
            ("Sulzbach/Saar", "sulzbach-saar"),
            ("Castrop-Rauxel", "castrop-rauxel"),
            ("Frankfurt am Main", "frankfurt-am-main"),
            ("St. Ingbert", "st-ingbert"),
            ("Kreis Minden-Lübbecke", "kreis-minden-luebbecke"),
            ("Übach-Palenberg", "uebach-palenberg"),
            ("Löhne", "loehne"),
            ("Halle (Westf.)", "halle-westf"),
        ];
        for (name, slug) in cases {
            assert_eq!(slugify(name), slug, "{name}");
            check_slug(slug).unwrap();
        }
    }

    #[test]
    fn hostnames() {
        let h = parse_hostname("service.espelkamp.de").unwrap();
        assert_eq!(h.ascii, "service.espelkamp.de");
        assert_eq!(h.unicode, None);
        let h = parse_hostname("service.münster.de").unwrap();
        assert_eq!(h.ascii, "service.xn--mnster-3ya.de");
        assert_eq!(h.unicode.as_deref(), Some("service.münster.de"));
        for bad in [
            "",
            "service",
            "Service.Espelkamp.de",
            "service..de",
            "-service.espelkamp.de",
            "service.espelkamp.de.",
            "*.espelkamp.de",
            "https://service.espelkamp.de",
            "service.espel_kamp.de",
            "10.0.0.1",
            &format!("{}.de", "a".repeat(64)),
            &format!("{}de", "abcdefghi.".repeat(26)),
        ] {
            assert!(parse_hostname(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn schema_names() {
        check_schema_name("t_espelkamp").unwrap();
        check_schema_name(&default_schema("preussisch-oldendorf")).unwrap();
        for bad in ["", "public", "pg_catalog", "T_x", "t-x", "1abc", "x;drop", "select", &"a".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
