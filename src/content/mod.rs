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
    /// Address, opening hours, phone or e-mail are placeholders (the starter catalogue's), to be
    /// replaced before publishing.
    #[serde(default)]
    pub placeholder: Option<bool>,
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
    /// Phone or e-mail are placeholders, to be replaced before publishing.
    #[serde(default)]
    pub placeholder: Option<bool>,
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
    /// Which level of local government the service belongs to.
    #[serde(default)]
    pub competence: Option<Competence>,
    /// The key of the service in the federal service catalogue (LeiKa, FIM Leistungsschlüssel): 14 digits.
    #[serde(default)]
    pub leika_key: Option<String>,
    /// For a Kreis service that a large kreisangehörige Stadt may perform itself (its own
    /// Jugendamt or Bauaufsicht): the task's name, see [`select_for`]. Not stored.
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub published: Option<bool>,
    #[serde(skip)]
    pub line: Option<usize>,
}

/// Which level of local government a service belongs to (`competence` in content files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Competence {
    /// A municipal task (Meldewesen, dog tax, Standesamt, …).
    Gemeinde,
    /// A task of the Kreis (vehicle registration, driving licences, Jugendamt for communes
    /// without their own, building supervision for smaller communes, …).
    Kreis,
    /// Offered at either level.
    Both,
}

impl Competence {
    pub const ALL: [Competence; 3] = [Competence::Gemeinde, Competence::Kreis, Competence::Both];

    pub fn as_str(self) -> &'static str {
        match self {
            Competence::Gemeinde => "gemeinde",
            Competence::Kreis => "kreis",
            Competence::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Option<Competence> {
        Competence::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a tenant is as an authority, which decides the starter services it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authority {
    /// A kreisangehörige Gemeinde or Stadt: the municipal services.
    Gemeinde,
    /// A Kreis: the Kreis services.
    Kreis,
    /// A kreisfreie Stadt: both.
    KreisfreieStadt,
    /// A group's Dachportal: no services of its own (its search covers its members').
    Dachportal,
}

impl Authority {
    /// From the tenant's kind and, for municipalities, its AGS in the official list (which
    /// knows whether a city is kreisfrei); the declared kind only where the AGS is not listed.
    pub fn of(t: &crate::tenant::Tenant) -> Authority {
        Authority::from_kind(t.kind, t.ags.as_deref())
    }

    /// [`Authority::of`] from a tenant's declared kind and AGS (for validation, before a tenant exists).
    pub fn from_kind(kind: crate::tenant::model::MunicipalityKind, ags: Option<&str>) -> Authority {
        use crate::tenant::model::MunicipalityKind as K;
        match kind {
            K::Dachportal => Authority::Dachportal,
            K::Kreis => Authority::Kreis,
            kind => match ags.and_then(|a| crate::municipality::Registry::official().municipality(a)) {
                Some(m) if m.is_kreisfrei() => Authority::KreisfreieStadt,
                Some(_) => Authority::Gemeinde,
                None if kind == K::KreisfreieStadt => Authority::KreisfreieStadt,
                None => Authority::Gemeinde,
            },
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Authority::Gemeinde => "kreisangehörige Gemeinde",
            Authority::Kreis => "Kreis",
            Authority::KreisfreieStadt => "kreisfreie Stadt",
            Authority::Dachportal => "Dachportal",
        }
    }

    /// Whether a service of this competence is this authority's task. A service without a
    /// stated competence is everyone's.
    pub fn performs(self, c: Option<Competence>) -> bool {
        match (self, c) {
            (Authority::Dachportal, _) => false,
            (_, None | Some(Competence::Both)) | (Authority::KreisfreieStadt, _) => true,
            (Authority::Gemeinde, Some(c)) => c == Competence::Gemeinde,
            (Authority::Kreis, Some(c)) => c == Competence::Kreis,
        }
    }
}

/// Why a bundle cannot be fitted to an authority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("a Dachportal has no services of its own: its search covers the published services of its member portals")]
    Dachportal,
    #[error(
        "an own task is for a kreisangehörige Gemeinde or Stadt that performs a Kreis task itself; this tenant is a {0}"
    )]
    OwnTaskNotMunicipal(&'static str),
    #[error("no Kreis service has the task {task:?}; known tasks: {known}")]
    UnknownTask { task: String, known: String },
}

/// The Kreis tasks a Gemeinde or Stadt may perform itself: the `task` names of `b`'s Kreis services.
pub fn kreis_tasks(b: &Bundle) -> std::collections::BTreeSet<&str> {
    b.services.iter().filter(|s| s.competence == Some(Competence::Kreis)).filter_map(|s| s.task.as_deref()).collect()
}

/// The Kreis tasks of the starter catalogue ([`kreis_tasks`]), which a tenant's `spec.ownTasks` may name.
pub fn starter_kreis_tasks() -> &'static [String] {
    static TASKS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TASKS.get_or_init(|| kreis_tasks(&starter()).into_iter().map(str::to_owned).collect())
}

/// What a bundle fitted to an authority holds, and what it left out.
#[derive(Debug, Clone)]
pub struct Selected {
    pub bundle: Bundle,
    /// Services that are another level's task.
    pub left_out: Vec<String>,
}

/// The part of `b` that is `authority`'s task: its services (by [`Authority::performs`], plus
/// the Kreis services whose `task` is in `own_tasks` — a große kreisangehörige Stadt with its own
/// Jugendamt or Bauaufsicht), the facilities these services and the kept staff refer to, staff
/// whose facility is kept (or who have none); categories and Lebenslagen all.
pub fn select_for(b: &Bundle, authority: Authority, own_tasks: &[String]) -> Result<Selected, SelectError> {
    if authority == Authority::Dachportal {
        return Err(SelectError::Dachportal);
    }
    if !own_tasks.is_empty() && authority != Authority::Gemeinde {
        return Err(SelectError::OwnTaskNotMunicipal(authority.label()));
    }
    let tasks = kreis_tasks(b);
    for t in own_tasks {
        if !tasks.contains(t.as_str()) {
            let known = tasks.iter().copied().collect::<Vec<_>>().join(", ");
            return Err(SelectError::UnknownTask { task: t.clone(), known });
        }
    }
    let (services, left): (Vec<&Service>, Vec<&Service>) = b.services.iter().partition(|s| {
        authority.performs(s.competence)
            || (s.competence == Some(Competence::Kreis) && s.task.as_ref().is_some_and(|t| own_tasks.contains(t)))
    });
    let facs_of_services: HashSet<&str> = services.iter().filter_map(|s| s.facility.as_deref()).collect();
    let staff: Vec<Staff> = b
        .staff
        .iter()
        .filter(|p| p.facility.as_deref().is_none_or(|f| facs_of_services.contains(f)))
        .cloned()
        .collect();
    let facilities = b.facilities.iter().filter(|f| facs_of_services.contains(f.id.as_str())).cloned().collect();
    Ok(Selected {
        bundle: Bundle {
            file: b.file.clone(),
            categories: b.categories.clone(),
            lebenslagen: b.lebenslagen.clone(),
            facilities,
            staff,
            services: services.into_iter().cloned().collect(),
        },
        left_out: left.into_iter().map(|s| s.id.clone()).collect(),
    })
}

/// Whether a LeiKa key (FIM Leistungsschlüssel) is well-formed: exactly 14 digits.
pub fn valid_leika_key(k: &str) -> bool {
    k.len() == 14 && k.bytes().all(|c| c.is_ascii_digit())
}

/// What a bundle may import with but should not be published with: services without a LeiKa
/// key ("LeiKa key unknown"), facilities and staff marked as placeholders, and entries that look
/// like placeholders without being marked. Warnings, not errors.
pub fn warnings(b: &Bundle) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |line: Option<usize>, record: String, field: &str, message: &str| {
        out.push(Finding { file: b.file.clone(), line, record, field: field.into(), message: message.into() })
    };
    let looks_placeholder =
        |fields: &[Option<&str>]| fields.iter().flatten().any(|v| v.contains("Platzhalter") || v.ends_with(".invalid"));
    for f in &b.facilities {
        let rec = format!("facility {:?}", f.id);
        if f.placeholder == Some(true) {
            push(
                f.line,
                rec,
                "placeholder",
                "address, opening hours, phone or e-mail are placeholders; replace them before publishing",
            );
        } else if looks_placeholder(&[Some(&f.address), Some(&f.opening_hours), f.phone.as_deref(), f.email.as_deref()])
        {
            push(f.line, rec, "placeholder", "looks like a placeholder but is not marked `placeholder: true`");
        }
    }
    for p in &b.staff {
        let rec = format!("staff {:?}", p.id);
        if p.placeholder == Some(true) {
            push(p.line, rec, "placeholder", "phone or e-mail are placeholders; replace them before publishing");
        } else if looks_placeholder(&[p.phone.as_deref(), p.email.as_deref()]) {
            push(p.line, rec, "placeholder", "looks like a placeholder but is not marked `placeholder: true`");
        }
    }
    for s in &b.services {
        if s.leika_key.is_none() {
            push(s.line, format!("service {:?}", s.id), "leikaKey", LEIKA_UNKNOWN);
        }
    }
    out
}

/// The warning for a service without a LeiKa key.
pub const LEIKA_UNKNOWN: &str = "LeiKa key unknown";

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
        Kind::Facilities => {
            &["id", "name", "address", "openingHours", "phone", "email", "url", "placeholder", "published"]
        }
        Kind::Staff => {
            &["id", "name", "positionTitle", "topics", "facility", "phone", "email", "placeholder", "published"]
        }
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
            "competence",
            "leikaKey",
            "task",
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
        let placeholder = boolean("placeholder");
        let competence = match opt("competence") {
            None => None,
            Some(v) => {
                let c = Competence::parse(&v);
                if c.is_none() {
                    bad("competence", format!("{v:?} is not one of gemeinde, kreis, both"));
                }
                c
            }
        };
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
                placeholder,
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
                placeholder,
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
                competence,
                leika_key: opt("leikaKey"),
                task: opt("task"),
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
    // A reference by id to a record of this file or one already in the tenant's schema.
    fn refers(
        push: &mut impl FnMut(Option<usize>, String, &str, String),
        line: Option<usize>,
        rec: &str,
        field: &str,
        id: &String,
        here: &HashSet<String>,
        known: &HashSet<String>,
    ) {
        if !here.contains(id) && !known.contains(id) {
            let what = if field == "lebenslagen" { "Lebenslage" } else { field };
            push(line, rec.to_owned(), field, format!("no {what} {id:?} in this file or the tenant's content"));
        }
    }
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
            refers(&mut push, s.line, &rec, "facility", fac, &facs, &known.facilities);
        }
        if check_email(&s.email) {
            push(s.line, rec, "email", "is not an e-mail address".into());
        }
    }
    for s in &b.services {
        let rec = format!("service {:?}", s.id);
        if let Some(c) = &s.category {
            refers(&mut push, s.line, &rec, "category", c, &cats, &known.categories);
        }
        for l in &s.lebenslagen {
            refers(&mut push, s.line, &rec, "lebenslagen", l, &lls, &known.lebenslagen);
        }
        if let Some(fac) = &s.facility {
            refers(&mut push, s.line, &rec, "facility", fac, &facs, &known.facilities);
        }
        if let Some(t) = &s.trust_level {
            if !TRUST_LEVELS.contains(&t.as_str()) {
                push(s.line, rec.clone(), "trustLevel", format!("{t:?} is not one of {}", TRUST_LEVELS.join(", ")));
            }
        }
        if let Some(k) = &s.leika_key {
            if !valid_leika_key(k) {
                push(
                    s.line,
                    rec.clone(),
                    "leikaKey",
                    format!(
                        "{k:?} is not a LeiKa key (14 digits, e.g. \"99027002012000\"); leave it out while unknown"
                    ),
                );
            }
        }
        if s.task.as_ref().is_some_and(|t| !valid_id(t)) {
            push(s.line, rec.clone(), "task", "must be 1–63 characters of a-z, 0-9 and '-'".into());
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

    fn bundled(slug: &str) -> crate::tenant::Tenant {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let catalog = crate::tenant::load_dir(&dir).unwrap().catalog;
        catalog.tenant(slug).unwrap_or_else(|| panic!("bundled tenant {slug}")).clone()
    }

    fn ids(b: &Bundle) -> HashSet<&str> {
        b.services.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn the_authority_comes_from_kind_and_official_ags() {
        assert_eq!(Authority::of(&bundled("kreis-recklinghausen")), Authority::Kreis);
        assert_eq!(Authority::of(&bundled("espelkamp")), Authority::Gemeinde);
        assert_eq!(Authority::of(&bundled("bottrop")), Authority::KreisfreieStadt);
        assert_eq!(Authority::of(&bundled("serviceportal-emscher-lippe")), Authority::Dachportal);
        // The official list decides, not the declared kind: Bottrop declared as a Stadt is still kreisfrei.
        let mut b = bundled("bottrop");
        b.kind = crate::tenant::model::MunicipalityKind::Stadt;
        assert_eq!(Authority::of(&b), Authority::KreisfreieStadt);
    }

    #[test]
    fn each_authority_gets_its_own_services() {
        let starter = starter();
        let gemeinde = select_for(&starter, Authority::Gemeinde, &[]).unwrap().bundle;
        let kreis = select_for(&starter, Authority::Kreis, &[]).unwrap().bundle;
        let kreisfrei = select_for(&starter, Authority::KreisfreieStadt, &[]).unwrap().bundle;
        // Dog tax and Meldewesen are municipal; vehicle registration, driving licences, the Jugendamt and the
        // Bauaufsicht are the Kreis's; a kreisfreie Stadt does both.
        let municipal =
            ["hundeanmeldung", "hundeabmeldung", "wohnsitz-anmelden", "meldebescheinigung", "personalausweis"];
        let of_kreis = ["kfz-zulassung", "fuehrerschein-umtausch", "kita-platz", "baugenehmigung"];
        for id in municipal {
            assert!(ids(&gemeinde).contains(id) && !ids(&kreis).contains(id) && ids(&kreisfrei).contains(id), "{id}");
        }
        for id in of_kreis {
            assert!(!ids(&gemeinde).contains(id) && ids(&kreis).contains(id) && ids(&kreisfrei).contains(id), "{id}");
        }
        assert!(ids(&gemeinde).contains("wohngeld") && ids(&kreis).contains("wohngeld"), "both levels");
        assert_eq!(kreisfrei.services.len(), starter.services.len());
        assert_eq!(gemeinde.services.len() + kreis.services.len(), starter.services.len() + 6);
        assert!(gemeinde.services.len() >= 40, "{}", gemeinde.services.len());
        // Facilities and staff follow the services: no Bürgerbüro for a Kreis, no Straßenverkehrsamt for a Gemeinde.
        let facs = |b: &Bundle| b.facilities.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        assert!(!facs(&kreis).contains(&"buergerbuero".into()) && facs(&kreis).contains(&"strassenverkehrsamt".into()));
        assert!(
            facs(&gemeinde).contains(&"buergerbuero".into())
                && !facs(&gemeinde).contains(&"strassenverkehrsamt".into())
        );
        assert!(!kreis.staff.iter().any(|p| p.id == "team-meldewesen"));
        for b in [&gemeinde, &kreis, &kreisfrei] {
            validate(b, &Known::default()).unwrap();
        }
        // A große kreisangehörige Stadt with its own Jugendamt.
        let own = select_for(&starter, Authority::Gemeinde, &["jugendamt".into()]).unwrap().bundle;
        assert!(ids(&own).contains("kita-platz") && !ids(&own).contains("kfz-zulassung"));
        assert!(own.facilities.iter().any(|f| f.id == "jugendamt") && own.staff.iter().any(|p| p.id == "team-kita"));
        let err = select_for(&starter, Authority::Gemeinde, &["kfz".into()]).unwrap_err();
        assert!(
            err.to_string().contains("known tasks: ausbildungsfoerderung, auslaenderbehoerde, bauaufsicht"),
            "{err}"
        );
        assert_eq!(select_for(&starter, Authority::Dachportal, &[]).unwrap_err(), SelectError::Dachportal);
        assert!(matches!(
            select_for(&starter, Authority::Kreis, &["jugendamt".into()]),
            Err(SelectError::OwnTaskNotMunicipal(_))
        ));
    }

    #[test]
    fn leika_keys_are_14_digits_and_unknown_ones_are_warnings() {
        assert!(valid_leika_key("99027002012000"));
        for bad in ["9902700201200", "990270020120000", "9902700201200x", " 99027002012000", "９９027002012000"] {
            assert!(!valid_leika_key(bad), "{bad:?}");
        }
        let text = "services:\n  - id: a\n    title: A\n    leikaKey: \"99-027-002\"\n  - id: b\n    title: B\n  - id: c\n    title: C\n    leikaKey: \"99027002012000\"\n";
        let b = parse_yaml("l.yaml", text).unwrap();
        let Err(Error::Invalid(f)) = validate(&b, &Known::default()) else { panic!("expected a finding") };
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].to_string()
                .starts_with("l.yaml:2: service \"a\": field leikaKey: \"99-027-002\" is not a LeiKa key (14 digits"),
            "{}",
            f[0]
        );
        let w: Vec<String> = warnings(&b).iter().map(|w| w.to_string()).collect();
        assert!(w.contains(&"l.yaml:5: service \"b\": field leikaKey: LeiKa key unknown".to_string()), "{w:?}");
        assert!(!w.iter().any(|w| w.contains("service \"c\"")), "{w:?}");
        let csv =
            parse_csv("services.csv", "id,title,leikaKey,competence\nx,X,123,landkreis\n", Kind::Services).unwrap_err();
        assert!(
            csv.to_string().contains("field competence: \"landkreis\" is not one of gemeinde, kreis, both"),
            "{csv}"
        );
        let csv = parse_csv("services.csv", "id,title,leikaKey,competence\nx,X,123,kreis\n", Kind::Services).unwrap();
        assert_eq!(csv.services[0].competence, Some(Competence::Kreis));
        assert!(validate(&csv, &Known::default()).unwrap_err().to_string().contains("field leikaKey"));
    }

    #[test]
    fn starter_fees_and_placeholders() {
        let b = starter();
        let costs = |id: &str| b.services.iter().find(|s| s.id == id).unwrap().costs.clone();
        assert!(costs("personalausweis").starts_with("46 Euro, für Antragstellende unter 24 Jahren 27,60 Euro"));
        assert!(costs("reisepass").starts_with("70 Euro (unter 24 Jahren 37,50 Euro), Express-Zuschlag 32 Euro"));
        // Every facility and staff entry is a marked placeholder, visibly so, with an e-mail under .invalid.
        for f in &b.facilities {
            assert_eq!(f.placeholder, Some(true), "{}", f.id);
            assert!(f.address.contains("Platzhalter") && f.opening_hours.contains("Platzhalter"), "{}", f.id);
            assert!(f.phone.as_deref().unwrap().contains("Platzhalter"), "{}", f.id);
            assert!(f.email.as_deref().unwrap().ends_with("@platzhalter.invalid"), "{}", f.id);
        }
        for p in &b.staff {
            assert_eq!(p.placeholder, Some(true), "{}", p.id);
            assert!(p.email.as_deref().unwrap().ends_with("@platzhalter.invalid"), "{}", p.id);
        }
        let w = warnings(&b);
        assert_eq!(w.iter().filter(|w| w.field == "placeholder").count(), b.facilities.len() + b.staff.len());
        let known = b.services.iter().filter(|s| s.leika_key.is_some()).count();
        assert_eq!(w.iter().filter(|w| w.message == LEIKA_UNKNOWN).count(), b.services.len() - known);
        // An unmarked placeholder is reported too.
        let text = "facilities:\n  - { id: rathaus, name: Rathaus, phone: \"Platzhalter\" }\n";
        let w = warnings(&parse_yaml("f.yaml", text).unwrap());
        assert!(w[0].message.contains("not marked `placeholder: true`"), "{w:?}");
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
