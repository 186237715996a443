//! Portal content of one tenant as operators write it (YAML or CSV): OZG categories,
//! Lebenslagen, facilities, staff contacts and services — parsed and validated here, with
//! every finding naming its file, line or record, and field.
//!
//! **Architecture invariant:** this module does no IO except in [`store`], which writes a
//! validated [`Bundle`] into a tenant's schema.

pub mod store;

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashSet;
use std::fmt;

/// The starter catalogue shipped with portalctl: common municipal services in German.
pub const STARTER_YAML: &str = include_str!("../../data/catalogue/starter.yaml");
/// The name the starter catalogue is reported under.
pub const STARTER_NAME: &str = "data/catalogue/starter.yaml";

/// Trust levels (Vertrauensniveau) a service may require, in increasing order.
pub const TRUST_LEVELS: &[&str] = &["basisregistrierung", "substantiell", "hoch"];

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem in a content file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    /// 1-based line (YAML) or record number (CSV, header excluded) where known.
    pub line: Option<usize>,
    /// What the record is, e.g. `service "hundeanmeldung"` or `record 3`.
    pub record: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}: field {}: {}", self.file, self.record, self.field, self.message),
            None => write!(f, "{}: {}: field {}: {}", self.file, self.record, self.field, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{} problem(s) in the content:\n{}", .0.len(), .0.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Finding>),
    #[error("{file}: cannot tell what the CSV holds; name the file services.csv, facilities.csv, staff.csv, categories.csv or lebenslagen.csv, or pass --kind")]
    UnknownKind { file: String },
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("{0}")]
    NotFound(String),
}

/// What a CSV file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Services,
    Facilities,
    Staff,
    Categories,
    Lebenslagen,
}

impl Kind {
    pub fn from_stem(stem: &str) -> Option<Kind> {
        Some(match stem {
            "services" | "service" => Kind::Services,
            "facilities" | "facility" => Kind::Facilities,
            "staff" => Kind::Staff,
            "categories" | "category" => Kind::Categories,
            "lebenslagen" | "lebenslage" => Kind::Lebenslagen,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Category {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub position: Option<i32>,
    #[serde(skip)]
    pub line: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Lebenslage {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub position: Option<i32>,
    #[serde(skip)]
    pub line: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Facility {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub opening_hours: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub published: Option<bool>,
    #[serde(skip)]
    pub line: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Staff {
    pub id: String,
    /// A role or team ("Bürgerbüro, Team Meldewesen"), or a person's name where the commune publishes it.
    pub name: String,
    #[serde(default)]
    pub position_title: String,
    #[serde(default)]
    pub topics: String,
    #[serde(default)]
    pub facility: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub published: Option<bool>,
    #[serde(skip)]
    pub line: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Service {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub lebenslagen: Vec<String>,
    #[serde(default)]
    pub office: String,
    #[serde(default)]
    pub facility: Option<String>,
    #[serde(default)]
    pub costs: String,
    #[serde(default)]
    pub documents: Vec<String>,
    #[serde(default)]
    pub online_url: Option<String>,
    #[serde(default)]
    pub external_portal: Option<String>,
    #[serde(default)]
    pub trust_level: Option<String>,
    #[serde(default)]
    pub published: Option<bool>,
    #[serde(skip)]
    pub line: Option<usize>,
}

/// Everything one content file holds.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    pub file: String,
    pub categories: Vec<Category>,
    pub lebenslagen: Vec<Lebenslage>,
    pub facilities: Vec<Facility>,
    pub staff: Vec<Staff>,
    pub services: Vec<Service>,
}

impl Bundle {
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
            && self.lebenslagen.is_empty()
            && self.facilities.is_empty()
            && self.staff.is_empty()
            && self.services.is_empty()
    }

    /// Counts per kind, for reporting.
    pub fn counts(&self) -> [(&'static str, usize); 5] {
        [
            ("categories", self.categories.len()),
            ("lebenslagen", self.lebenslagen.len()),
            ("facilities", self.facilities.len()),
            ("staff", self.staff.len()),
            ("services", self.services.len()),
        ]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlFile {
    #[serde(default)]
    categories: Vec<Spanned<Category>>,
    #[serde(default)]
    lebenslagen: Vec<Spanned<Lebenslage>>,
    #[serde(default)]
    facilities: Vec<Spanned<Facility>>,
    #[serde(default)]
    staff: Vec<Spanned<Staff>>,
    #[serde(default)]
    services: Vec<Spanned<Service>>,
}

fn unspan<T>(items: Vec<Spanned<T>>, set: impl Fn(&mut T, usize)) -> Vec<T> {
    items
        .into_iter()
        .map(|s| {
            let line = s.referenced.line() as usize;
            let mut v = s.value;
            set(&mut v, line);
            v
        })
        .collect()
}

/// Parse a YAML content file (any of the sections `categories`, `lebenslagen`,
/// `facilities`, `staff`, `services`).
pub fn parse_yaml(file: &str, text: &str) -> Result<Bundle> {
    let y: YamlFile = serde_saphyr::from_str(text).map_err(|e| {
        let loc = e.location().map(|l| format!("line {}, column {}: ", l.line(), l.column())).unwrap_or_default();
        let msg = e.without_snippet().to_string();
        let msg = msg.lines().next().unwrap_or("").to_string();
        Error::Syntax { file: file.to_string(), message: format!("{loc}{msg}") }
    })?;
    Ok(Bundle {
        file: file.to_string(),
        categories: unspan(y.categories, |v, l| v.line = Some(l)),
        lebenslagen: unspan(y.lebenslagen, |v, l| v.line = Some(l)),
        facilities: unspan(y.facilities, |v, l| v.line = Some(l)),
        staff: unspan(y.staff, |v, l| v.line = Some(l)),
        services: unspan(y.services, |v, l| v.line = Some(l)),
    })
}

/// Parse a CSV content file of one kind. Header names are the YAML field names; list
/// fields (`documents`, `lebenslagen`) separate their items with `|`.
pub fn parse_csv(file: &str, text: &str, kind: Kind) -> Result<Bundle> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| Error::Syntax { file: file.to_string(), message: e.to_string() })?.clone();
    let allowed: &[&str] = match kind {
        Kind::Categories => &["id", "title", "position"],
        Kind::Lebenslagen => &["id", "title", "description", "icon", "position"],
        Kind::Facilities => &["id", "name", "address", "openingHours", "phone", "email", "url", "published"],
        Kind::Staff => &["id", "name", "positionTitle", "topics", "facility", "phone", "email", "published"],
        Kind::Services => &[
            "id",
            "title",
            "summary",
            "description",
            "category",
            "lebenslagen",
            "office",
            "facility",
            "costs",
            "documents",
            "onlineUrl",
            "externalPortal",
            "trustLevel",
            "published",
        ],
    };
    let mut findings = Vec::new();
    for h in headers.iter() {
        if !allowed.contains(&h) {
            findings.push(Finding {
                file: file.into(),
                line: Some(1),
                record: "header".into(),
                field: h.into(),
                message: format!("unknown column; expected some of: {}", allowed.join(", ")),
            });
        }
    }
    if !findings.is_empty() {
        return Err(Error::Invalid(findings));
    }
    let mut bundle = Bundle { file: file.to_string(), ..Default::default() };
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::Syntax { file: file.to_string(), message: e.to_string() })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(i + 2);
        let get = |name: &str| -> String {
            headers.iter().position(|h| h == name).and_then(|j| rec.get(j)).unwrap_or("").to_string()
        };
        let opt = |name: &str| Some(get(name)).filter(|s| !s.is_empty());
        let list = |name: &str| -> Vec<String> {
            get(name).split('|').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        };
        let mut bad = |field: &str, message: String| {
            findings.push(Finding {
                file: file.into(),
                line: Some(line),
                record: format!("record {}", i + 1),
                field: field.into(),
                message,
            })
        };
        let mut int = |name: &str| -> Option<i32> {
            let v = opt(name)?;
            match v.parse() {
                Ok(n) => Some(n),
                Err(_) => {
                    bad(name, format!("{v:?} is not a whole number"));
                    None
                }
            }
        };
        let position = int("position");
        let mut boolean = |name: &str| -> Option<bool> {
            let v = opt(name)?;
            match v.to_ascii_lowercase().as_str() {
                "true" | "ja" | "yes" | "1" => Some(true),
                "false" | "nein" | "no" | "0" => Some(false),
                _ => {
                    bad(name, format!("{v:?} is not true or false"));
                    None
                }
            }
        };
        let published = boolean("published");
        let line = Some(line);
        match kind {
            Kind::Categories => bundle.categories.push(Category { id: get("id"), title: get("title"), position, line }),
            Kind::Lebenslagen => bundle.lebenslagen.push(Lebenslage {
                id: get("id"),
                title: get("title"),
                description: get("description"),
                icon: opt("icon"),
                position,
                line,
            }),
            Kind::Facilities => bundle.facilities.push(Facility {
                id: get("id"),
                name: get("name"),
                address: get("address"),
                opening_hours: get("openingHours"),
                phone: opt("phone"),
                email: opt("email"),
                url: opt("url"),
                published,
                line,
            }),
            Kind::Staff => bundle.staff.push(Staff {
                id: get("id"),
                name: get("name"),
                position_title: get("positionTitle"),
                topics: get("topics"),
                facility: opt("facility"),
                phone: opt("phone"),
                email: opt("email"),
                published,
                line,
            }),
            Kind::Services => bundle.services.push(Service {
                id: get("id"),
                title: get("title"),
                summary: get("summary"),
                description: get("description"),
                category: opt("category"),
                lebenslagen: list("lebenslagen"),
                office: get("office"),
                facility: opt("facility"),
                costs: get("costs"),
                documents: list("documents"),
                online_url: opt("onlineUrl"),
                external_portal: opt("externalPortal"),
                trust_level: opt("trustLevel"),
                published,
                line,
            }),
        }
    }
    if !findings.is_empty() {
        return Err(Error::Invalid(findings));
    }
    Ok(bundle)
}

/// Ids already present in the tenant's schema, so that a file may refer to them.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub categories: HashSet<String>,
    pub lebenslagen: HashSet<String>,
    pub facilities: HashSet<String>,
}

/// Whether an id is acceptable: `^[a-z0-9][a-z0-9-]{0,62}$` (the schema's CHECK).
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn valid_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://"))
        && u.len() > 10
        && !u.chars().any(|c| c.is_whitespace() || c == '"' || c == '<' || c == '>')
}

/// Check a bundle: ids, required text, trust levels, URLs, e-mail addresses, duplicate ids
/// and references (to records of the same file or already in the schema). All findings at once.
pub fn validate(b: &Bundle, known: &Known) -> Result<()> {
    let mut out = Vec::new();
    let file = &b.file;
    let mut push = |line: Option<usize>, record: String, field: &str, message: String| {
        out.push(Finding { file: file.clone(), line, record, field: field.into(), message })
    };
    macro_rules! ids {
        ($list:expr, $what:literal, $title:ident) => {{
            let mut seen = HashSet::new();
            for r in &$list {
                let rec = format!("{} {:?}", $what, r.id);
                if !valid_id(&r.id) {
                    push(
                        r.line,
                        rec.clone(),
                        "id",
                        "must be 1–63 characters of a-z, 0-9 and '-', starting with a letter or digit".into(),
                    );
                }
                if !seen.insert(r.id.clone()) {
                    push(r.line, rec.clone(), "id", "appears more than once in this file".into());
                }
                if r.$title.trim().is_empty() {
                    push(r.line, rec, stringify!($title), "must not be empty".into());
                }
            }
            seen
        }};
    }
    let cats = ids!(b.categories, "category", title);
    let lls = ids!(b.lebenslagen, "lebenslage", title);
    let facs = ids!(b.facilities, "facility", name);
    ids!(b.staff, "staff", name);
    ids!(b.services, "service", title);
    let check_email =
        |e: &Option<String>| e.as_ref().is_some_and(|e| !e.contains('@') || e.contains(char::is_whitespace));
    for f in &b.facilities {
        let rec = format!("facility {:?}", f.id);
        if f.url.as_ref().is_some_and(|u| !valid_url(u)) {
            push(f.line, rec.clone(), "url", "must be an http(s) URL".into());
        }
        if check_email(&f.email) {
            push(f.line, rec, "email", "is not an e-mail address".into());
        }
    }
    for s in &b.staff {
        let rec = format!("staff {:?}", s.id);
        if let Some(fac) = &s.facility {
            if !facs.contains(fac) && !known.facilities.contains(fac) {
                push(
                    s.line,
                    rec.clone(),
                    "facility",
                    format!("no facility {fac:?} in this file or the tenant's content"),
                );
            }
        }
        if check_email(&s.email) {
            push(s.line, rec, "email", "is not an e-mail address".into());
        }
    }
    for s in &b.services {
        let rec = format!("service {:?}", s.id);
        if let Some(c) = &s.category {
            if !cats.contains(c) && !known.categories.contains(c) {
                push(
                    s.line,
                    rec.clone(),
                    "category",
                    format!("no category {c:?} in this file or the tenant's content"),
                );
            }
        }
        for l in &s.lebenslagen {
            if !lls.contains(l) && !known.lebenslagen.contains(l) {
                push(
                    s.line,
                    rec.clone(),
                    "lebenslagen",
                    format!("no Lebenslage {l:?} in this file or the tenant's content"),
                );
            }
        }
        if let Some(fac) = &s.facility {
            if !facs.contains(fac) && !known.facilities.contains(fac) {
                push(
                    s.line,
                    rec.clone(),
                    "facility",
                    format!("no facility {fac:?} in this file or the tenant's content"),
                );
            }
        }
        if let Some(t) = &s.trust_level {
            if !TRUST_LEVELS.contains(&t.as_str()) {
                push(s.line, rec.clone(), "trustLevel", format!("{t:?} is not one of {}", TRUST_LEVELS.join(", ")));
            }
        }
        if s.online_url.as_ref().is_some_and(|u| !valid_url(u)) {
            push(s.line, rec.clone(), "onlineUrl", "must be an http(s) URL".into());
        }
        if s.documents.iter().any(|d| d.trim().is_empty()) {
            push(s.line, rec, "documents", "an entry is empty".into());
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(out))
    }
}

/// The starter catalogue, parsed.
pub fn starter() -> Bundle {
    parse_yaml(STARTER_NAME, STARTER_YAML).expect("the embedded starter catalogue parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starter_catalogue_is_valid_and_large_enough() {
        let b = starter();
        validate(&b, &Known::default()).unwrap();
        assert!(b.services.len() >= 40, "{} services", b.services.len());
        assert!(b.categories.len() >= 10);
        assert!(b.lebenslagen.len() >= 6);
        for s in &b.services {
            assert!(s.category.is_some(), "{} has no category", s.id);
            assert!(!s.summary.is_empty(), "{} has no summary", s.id);
        }
        let gewerbe = b.services.iter().find(|s| s.id == "gewerbeanmeldung").unwrap();
        assert!(gewerbe.external_portal.is_some());
    }

    #[test]
    fn yaml_findings_name_line_and_field() {
        let text = "services:\n  - id: ok\n    title: Gut\n  - id: Bad_Id\n    title: ''\n    trustLevel: mittel\n    category: nope\n";
        let b = parse_yaml("x.yaml", text).unwrap();
        let Err(Error::Invalid(f)) = validate(&b, &Known::default()) else { panic!("expected findings") };
        let shown: Vec<String> = f.iter().map(|f| f.to_string()).collect();
        assert!(shown.contains(&"x.yaml:4: service \"Bad_Id\": field id: must be 1–63 characters of a-z, 0-9 and '-', starting with a letter or digit".to_string()), "{shown:#?}");
        assert!(shown.iter().any(|s| s.starts_with("x.yaml:4:") && s.contains("field title")));
        assert!(shown.iter().any(|s| s.contains("field trustLevel") && s.contains("mittel")));
        assert!(shown.iter().any(|s| s.contains("field category") && s.contains("nope")));
    }

    #[test]
    fn yaml_unknown_field_is_a_syntax_error_with_location() {
        let err = parse_yaml("y.yaml", "services:\n  - id: a\n    titel: A\n").unwrap_err();
        let s = err.to_string();
        assert!(s.starts_with("y.yaml: line 3"), "{s}");
        assert!(s.contains("titel"), "{s}");
    }

    #[test]
    fn csv_records_and_errors() {
        let text = "id,title,category,documents,trustLevel,published\nhund,Hundeanmeldung,,Ausweis|Nachweis,substantiell,ja\nx,,,,,vielleicht\n";
        let err = parse_csv("services.csv", text, Kind::Services).unwrap_err();
        assert!(err.to_string().contains("services.csv:3: record 2: field published"), "{err}");
        let ok = "id,title,documents\nhund,Hundeanmeldung,Ausweis|Nachweis\n";
        let b = parse_csv("services.csv", ok, Kind::Services).unwrap();
        assert_eq!(b.services[0].documents, vec!["Ausweis", "Nachweis"]);
        let bad_header = parse_csv("services.csv", "id,titel\n", Kind::Services).unwrap_err();
        assert!(bad_header.to_string().contains("field titel"), "{bad_header}");
    }
}
