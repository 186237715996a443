//! Scaffolding tenants and groups from the official municipality list: slug derivation with
//! collision resolution, and the text of new tenant and group files. Pure: returns file
//! contents; the command layer writes them.

use crate::municipality::{Kreis, Municipality, Registry};
use crate::names::{self, slugify};
use crate::tenant::model::{MunicipalityKind, API_VERSION, PLACEHOLDER_PREFIX};
use crate::theme::PALETTES;
use std::collections::{HashMap, HashSet};

/// What a scaffolded tenant is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub slug: String,
    pub display_name: String,
    pub ags: String,
    pub kind: MunicipalityKind,
    pub parent: Option<String>,
    pub hostname: String,
    /// Why the slug differs from the plain transliteration, if it does (never silent).
    pub note: Option<String>,
}

/// Strip the type word from a Kreis name: `Kreis Minden-Lübbecke` → `Minden-Lübbecke`,
/// `Rheinisch-Bergischer Kreis` → `Rheinisch-Bergischer`.
pub fn kreis_core_name(name: &str) -> &str {
    const PREFIXES: &[&str] = &[
        "Landkreis ",
        "Kreis ",
        "Stadtkreis ",
        "Stadt ",
        "Hansestadt ",
        "Freie Hansestadt ",
        "StädteRegion ",
        "Städteregion ",
        "Regionalverband ",
        "Region ",
        "Eifelkreis ",
    ];
    for p in PREFIXES {
        if let Some(rest) = name.strip_prefix(p) {
            return rest;
        }
    }
    name.strip_suffix(" Kreis").unwrap_or(name)
}

fn join_slug(base: &str, suffix: &str) -> String {
    let room = 63usize.saturating_sub(suffix.len() + 1);
    let mut b = base[..base.len().min(room)].to_string();
    while b.ends_with('-') {
        b.pop();
    }
    format!("{b}-{suffix}")
}

/// A tenant draft for a municipality, with the plain slug (the transliterated short name).
/// Collisions are resolved for a whole batch by [`resolve_collisions`].
pub fn draft_municipality(m: &Municipality) -> Draft {
    let slug = slugify(&m.short);
    let kind = if m.is_kreisfrei() {
        MunicipalityKind::KreisfreieStadt
    } else if m.typ == "gemeinde" || m.typ == "mitgliedsgemeinde" {
        MunicipalityKind::Gemeinde
    } else {
        MunicipalityKind::Stadt
    };
    Draft {
        hostname: format!("service.{slug}.de"),
        slug,
        display_name: m.name.clone(),
        ags: m.ags.clone(),
        kind,
        parent: Some(m.kreis_ags.clone()),
        note: None,
    }
}

/// Make the slugs of a batch of drafts unique among themselves and against `taken`
/// (the slugs of tenants that already exist). Deterministic and never silent:
/// every draft whose plain slug collides — all of them, not all but the first — gets
/// `-<kreis>` appended (e.g. `neuenkirchen-steinfurt`), and `-<last three AGS digits>` as
/// well where one Kreis has the name twice; each renamed draft carries a note saying why.
/// Existing tenants are never renamed. Hostnames follow the slugs.
pub fn resolve_collisions(drafts: &mut [Draft], taken: &HashSet<String>) {
    let registry = Registry::official();
    let kreis_of = |d: &Draft| d.parent.clone().unwrap_or_else(|| d.ags[..5].to_string());
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut count_in_kreis: HashMap<(String, String), usize> = HashMap::new();
    for d in drafts.iter() {
        *count.entry(d.slug.clone()).or_insert(0) += 1;
        *count_in_kreis.entry((d.slug.clone(), kreis_of(d))).or_insert(0) += 1;
    }
    for d in drafts.iter_mut() {
        let n = count[&d.slug];
        let clash_existing = taken.contains(&d.slug);
        if n <= 1 && !clash_existing {
            continue;
        }
        let kreis_ags = kreis_of(d);
        let kreis_name = registry.kreis(&kreis_ags).map(|k| k.name.clone()).unwrap_or_else(|| kreis_ags.clone());
        let kreis_slug = slugify(kreis_core_name(&kreis_name));
        let mut slug = if count_in_kreis[&(d.slug.clone(), kreis_ags.clone())] > 1 {
            join_slug(&d.slug, &format!("{kreis_slug}-{}", &d.ags[5..]))
        } else {
            join_slug(&d.slug, &kreis_slug)
        };
        if taken.contains(&slug) {
            slug = join_slug(&slug, &d.ags[5..]);
        }
        let why = if clash_existing && n <= 1 {
            format!("an existing tenant already has slug {:?}", d.slug)
        } else {
            format!("{n} municipalities here are called {:?}", d.slug)
        };
        d.note = Some(format!(
            "{why}; {} gets slug {slug:?} (its Kreis: {kreis_name}); pass --slug to choose another",
            d.display_name
        ));
        d.hostname = format!("service.{slug}.de");
        d.slug = slug;
    }
}

/// A tenant draft for a Kreis's own portal (`service.kreis-heinsberg.de`).
pub fn draft_kreis(k: &Kreis) -> Draft {
    let slug = slugify(&k.name);
    Draft {
        hostname: format!("service.{slug}.de"),
        slug,
        display_name: k.name.clone(),
        ags: format!("{}000", k.ags),
        kind: MunicipalityKind::Kreis,
        parent: None,
        note: None,
    }
}

/// Draft by AGS: 8 digits of a municipality, or a Kreis's 5 digits (+ optional `000`).
pub fn draft_by_ags(ags: &str) -> Option<Draft> {
    let r = Registry::official();
    if let Some(m) = r.municipality(ags) {
        return Some(draft_municipality(m));
    }
    let k5 = match ags.len() {
        5 => ags,
        8 if ags.ends_with("000") => &ags[..5],
        _ => return None,
    };
    r.kreis(k5).map(draft_kreis)
}

/// A deterministic placeholder palette per AGS, so that neighbouring communes differ.
fn palette_for(ags: &str) -> (&'static str, &'static str) {
    let h = ags.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    PALETTES[(h as usize) % PALETTES.len()]
}

/// Quote a string for YAML (a JSON string is a valid YAML double-quoted scalar).
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("string serialises")
}

/// The text of a new tenant file.
pub fn tenant_yaml(d: &Draft, group: &str, wave: &str, command: &str) -> String {
    let (primary, accent) = palette_for(&d.ags);
    let mut s = String::new();
    s.push_str(&format!("# {} — tenant of rollout group {group}.\n", d.display_name));
    s.push_str(&format!("# Scaffolded from the official municipality list: {command}\n"));
    s.push_str("# Theme colours are placeholders until the commune's corporate design is supplied.\n");
    s.push_str(&format!("apiVersion: {API_VERSION}\nkind: Tenant\nmetadata:\n  name: {}\nspec:\n", d.slug));
    s.push_str(&format!("  displayName: {}\n  ags: {}\n  kind: {}\n", q(&d.display_name), q(&d.ags), d.kind.as_str()));
    if let Some(p) = &d.parent {
        s.push_str(&format!("  parent: {}\n", q(p)));
    }
    s.push_str(&spec_tail(&d.slug, wave, &d.hostname, primary, accent));
    s.push_str(&legal_yaml(Some(&d.display_name)));
    s
}

/// The enforcement procedure (Schlichtungs-/Ombudsstelle) an Erklärung zur Barrierefreiheit names, for a Land whose
/// body is known here: NRW's "Ombudsstelle für barrierefreie Informationstechnik des Landes Nordrhein-Westfalen"
/// (§§ 10d, 10e BGG NRW, §§ 9 ff. BITV NRW), at the Landesbeauftragte für Menschen mit Behinderung. Other Länder:
/// `None`, a placeholder to fill in.
pub fn enforcement_url(land: &str) -> Option<&'static str> {
    match land {
        "NW" => Some("https://www.lbbp.nrw.de/ombudsstelle"),
        _ => None,
    }
}

/// The legal pages of a scaffolded tenant: the authority is the official name (a Dachportal's is not known), every
/// other value is a [`PLACEHOLDER_PREFIX`] placeholder (no address, person, phone number is ever made up), and
/// placeholders block publishing. The enforcement URL comes from the group's defaults.
fn legal_yaml(authority: Option<&str>) -> String {
    let todo = |what: &str| q(&format!("{PLACEHOLDER_PREFIX} {what}"));
    let authority = authority.map(q).unwrap_or_else(|| todo("verantwortliche Stelle"));
    let mut s = String::from(
        "  # Legal pages: every \"TODO:\" is a placeholder and blocks publishing (docs/tenant-format.md).\n",
    );
    s.push_str("  legal:\n");
    s.push_str(&format!(
        "    imprint:\n      authority: {authority}\n      address: {}\n      representative: {}\n      phone: {}\n      \
         email: {}\n",
        todo("Postanschrift der Verwaltung"),
        todo("vertretungsberechtigte Person mit Amtsbezeichnung"),
        todo("Telefonnummer"),
        todo("E-Mail-Adresse"),
    ));
    s.push_str(&format!(
        "    privacy:\n      controller: {authority}\n      dataProtectionOfficer: {}\n      text: {}\n",
        todo("Kontakt der oder des Datenschutzbeauftragten"),
        todo("Datenschutzerklärung des Serviceportals"),
    ));
    s.push_str(&format!(
        "    accessibility:\n      date: {}\n      # status: full | partial | none\n      barriers:\n        - {}\n      \
         feedbackContact: {}\n",
        todo("Datum der Erklärung (JJJJ-MM-TT)"),
        todo("nicht barrierefreie Inhalte und Begründung"),
        todo("Kontakt für Rückmeldungen zur Barrierefreiheit"),
    ));
    s.push_str(&format!(
        "    easyLanguage:\n      text: {}\n    signLanguage:\n      text: {}\n      videoUrl: {}\n",
        todo("Informationen in Leichter Sprache"),
        todo("Informationen in Deutscher Gebärdensprache"),
        todo("Link zum Video in Deutscher Gebärdensprache (https)"),
    ));
    s
}

/// What a group's Dachportal (regional umbrella portal) is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DachportalDraft {
    pub slug: String,
    pub display_name: String,
    pub hostname: String,
    /// Why the hostname is not the default, if it is not (never silent).
    pub note: Option<String>,
}

/// Errors of drafting a Dachportal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DachportalError {
    #[error("Dachportal name {0:?} yields no slug; use letters or digits")]
    EmptySlug(String),
    #[error("Dachportal slug {slug:?} (from {name:?}) is already a tenant's slug; choose another display name")]
    SlugTaken { slug: String, name: String },
    #[error("Dachportal {0}")]
    Slug(#[source] names::NameError),
    #[error("Dachportal hostname: {0}")]
    Hostname(#[source] names::NameError),
    #[error("Dachportal hostname {0} is already a tenant's hostname")]
    HostnameTaken(String),
}

/// Draft the Dachportal of group `group`: the slug is the transliterated display name (`Serviceportal
/// Emscher-Lippe` → `serviceportal-emscher-lippe`); the hostname is `service.<group>.de` unless given, or
/// `service.<slug>.de` when a tenant in `taken_hosts` already has that (a note says so). Refuses a slug that
/// `taken_slugs` (the group's new tenants and every existing tenant) holds, and a given hostname that is taken,
/// rather than renaming silently.
pub fn draft_dachportal(
    group: &str,
    display_name: &str,
    hostname: Option<&str>,
    taken_slugs: &HashSet<String>,
    taken_hosts: &HashSet<String>,
) -> Result<DachportalDraft, DachportalError> {
    let slug = slugify(display_name.trim());
    if slug.is_empty() {
        return Err(DachportalError::EmptySlug(display_name.to_string()));
    }
    names::check_slug(&slug).map_err(DachportalError::Slug)?;
    if taken_slugs.contains(&slug) {
        return Err(DachportalError::SlugTaken { slug, name: display_name.to_string() });
    }
    let mut note = None;
    let hostname = match hostname {
        Some(h) => {
            let h = names::parse_hostname(h).map_err(DachportalError::Hostname)?.ascii;
            if taken_hosts.contains(&h) {
                return Err(DachportalError::HostnameTaken(h));
            }
            h
        }
        None => {
            let by_group = format!("service.{group}.de");
            if taken_hosts.contains(&by_group) {
                let h = format!("service.{slug}.de");
                note = Some(format!(
                    "{by_group} is a member's hostname; the Dachportal gets {h} (pass --dachportal-hostname to choose)"
                ));
                h
            } else {
                by_group
            }
        }
    };
    names::parse_hostname(&hostname).map_err(DachportalError::Hostname)?;
    Ok(DachportalDraft { slug, display_name: display_name.trim().to_string(), hostname, note })
}

/// The text of a Dachportal's tenant file: no AGS, no parent; members default to the whole group.
pub fn dachportal_yaml(d: &DachportalDraft, group: &str, wave: &str, command: &str) -> String {
    let (primary, accent) = palette_for(&d.slug);
    let mut s = String::new();
    s.push_str(&format!(
        "# {} — Dachportal (regional umbrella portal) of rollout group {group}.
",
        d.display_name
    ));
    s.push_str(&format!(
        "# Scaffolded with: {command}
"
    ));
    s.push_str(
        "# It links to every other portal of the group (set spec.members to choose).
",
    );
    s.push_str(&format!(
        "# The hostname {} is a placeholder until the operator confirms the region's address.
",
        d.hostname
    ));
    s.push_str(
        "# Theme colours are placeholders until the region's corporate design is supplied.
",
    );
    s.push_str(&format!("apiVersion: {API_VERSION}\nkind: Tenant\nmetadata:\n  name: {}\nspec:\n", d.slug));
    s.push_str(&format!("  displayName: {}\n  kind: {}\n", q(&d.display_name), MunicipalityKind::Dachportal.as_str()));
    s.push_str(&spec_tail(&d.slug, wave, &d.hostname, primary, accent));
    s.push_str(&legal_yaml(None));
    s
}

/// Quote a command-line argument the way a POSIX shell reads it back (bare when that is safe).
pub fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ','));
    if safe {
        return arg.to_string();
    }
    let mut s = String::from("\"");
    for c in arg.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// What a new group is made from.
#[derive(Debug, Clone)]
pub struct GroupDraft {
    pub name: String,
    pub display_name: String,
    pub operator: Option<String>,
    /// Waves in order; a pilot wave first when pilots were named.
    pub waves: Vec<String>,
    /// The Land of the group's Kreise (`NW`), when they are all in one: it chooses the enforcement procedure of the
    /// accessibility statement ([`enforcement_url`]).
    pub land: Option<String>,
}

/// The text of a new `group.yaml`.
pub fn group_yaml(g: &GroupDraft, command: &str) -> String {
    let mut s = String::new();
    s.push_str(&format!("# Rollout group {} — scaffolded with: {command}\n", g.name));
    s.push_str(&format!("apiVersion: {API_VERSION}\nkind: RolloutGroup\nmetadata:\n  name: {}\nspec:\n", g.name));
    s.push_str(&format!("  displayName: {}\n", q(&g.display_name)));
    if let Some(o) = &g.operator {
        s.push_str(&format!("  operator: {}\n", q(o)));
    }
    s.push_str("  waves:\n");
    for w in &g.waves {
        s.push_str(&format!("    - name: {w}\n"));
    }
    s.push_str(&format!(
        "  defaults:\n    namespace: portal-{}\n    image: {}\n    contentThreshold: {}\n",
        g.name,
        crate::tenant::DEFAULT_IMAGE,
        crate::tenant::DEFAULT_CONTENT_THRESHOLD
    ));
    s.push_str(
        "    servicekonto:\n      provider: bundid\n      environment: test\n      trustLevel: basisregistrierung\n",
    );
    s.push_str("    theme:\n      onPrimaryColor: \"#ffffff\"\n      textColor: \"#1a1a1a\"\n      backgroundColor: \"#ffffff\"\n");
    let enforcement = match g.land.as_deref().and_then(enforcement_url) {
        Some(url) => q(url),
        None => q(&format!("{PLACEHOLDER_PREFIX} Schlichtungs- oder Ombudsstelle des Landes (https)")),
    };
    s.push_str(&format!(
        "    legal:\n      accessibility:\n        # the enforcement procedure of the Land (Schlichtungs-/Ombudsstelle)\n        \
         enforcementUrl: {enforcement}\n"
    ));
    s
}

/// The part of a scaffolded tenant's spec every kind shares: wave, hostname, placeholder theme, Servicekonto binding,
/// schema, and not yet published.
fn spec_tail(slug: &str, wave: &str, hostname: &str, primary: &str, accent: &str) -> String {
    let mut s = format!("  wave: {wave}\n  hostnames:\n    - {hostname}\n");
    s.push_str(&format!("  theme:\n    primaryColor: {}\n    accentColor: {}\n", q(primary), q(accent)));
    s.push_str(&format!(
        "  servicekonto:\n    trustLevel: substantiell\n    credentials:\n      secretKeyRef:\n        name: {slug}-servicekonto\n"
    ));
    s.push_str(&format!("  database:\n    schema: {}\n", names::default_schema(slug)));
    s.push_str("  goLive:\n    published: false\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn real_names_slug_as_expected() {
        let cases = [
            ("05770008", "espelkamp", "service.espelkamp.de"),
            ("05770036", "preussisch-oldendorf", "service.preussisch-oldendorf.de"),
            ("05770016", "huellhorst", "service.huellhorst.de"),
            ("05766020", "detmold", "service.detmold.de"),
            ("05512000", "bottrop", "service.bottrop.de"),
        ];
        for (ags, slug, host) in cases {
            let d = draft_by_ags(ags).unwrap();
            assert_eq!(d.slug, slug, "{ags}");
            assert_eq!(d.hostname, host);
            assert_eq!(d.note, None);
        }
        let k = draft_by_ags("05370").unwrap();
        assert_eq!((k.slug.as_str(), k.ags.as_str(), k.kind), ("kreis-heinsberg", "05370000", MunicipalityKind::Kreis));
        assert_eq!(k.hostname, "service.kreis-heinsberg.de");
    }

    fn all_drafts() -> Vec<Draft> {
        let r = Registry::official();
        r.municipalities
            .iter()
            .map(draft_municipality)
            .chain(r.kreise.iter().filter(|k| r.municipality(&format!("{}000", k.ags)).is_none()).map(draft_kreis))
            .collect()
    }

    #[test]
    fn duplicate_short_names_get_a_kreis_suffix_and_a_note() {
        let mut drafts = all_drafts();
        resolve_collisions(&mut drafts, &HashSet::new());
        let neuenkirchen: Vec<&Draft> = drafts.iter().filter(|d| d.display_name.ends_with(" Neuenkirchen")).collect();
        assert_eq!(neuenkirchen.len(), 11);
        let slugs: HashSet<&str> = neuenkirchen.iter().map(|d| d.slug.as_str()).collect();
        assert_eq!(slugs.len(), 11, "{slugs:?}");
        assert!(slugs.contains("neuenkirchen-steinfurt"), "{slugs:?}");
        for d in neuenkirchen {
            assert!(d.slug.starts_with("neuenkirchen-"), "{}", d.slug);
            assert!(d.note.as_ref().unwrap().contains("11 municipalities here"), "{:?}", d.note);
            assert_eq!(d.hostname, format!("service.{}.de", d.slug));
        }
    }

    #[test]
    fn a_dachportal_takes_its_slug_from_its_name_and_never_a_taken_one() {
        let none = HashSet::new();
        let d = draft_dachportal("emscher-lippe", " Serviceportal Emscher-Lippe ", None, &none, &none).unwrap();
        assert_eq!(
            (d.slug.as_str(), d.display_name.as_str(), d.hostname.as_str(), d.note.as_deref()),
            ("serviceportal-emscher-lippe", "Serviceportal Emscher-Lippe", "service.emscher-lippe.de", None)
        );
        let hosts: HashSet<String> = ["service.emscher-lippe.de".to_string()].into();
        let d = draft_dachportal("emscher-lippe", "Region", None, &none, &hosts).unwrap();
        assert_eq!(d.hostname, "service.region.de");
        assert!(d.note.unwrap().contains("service.emscher-lippe.de"));
        let d = draft_dachportal("g", "Münsterland", Some("portal.münsterland.de"), &none, &none).unwrap();
        assert_eq!((d.slug.as_str(), d.hostname.as_str()), ("muensterland", "portal.xn--mnsterland-9db.de"));
        let taken: HashSet<String> = ["lage".to_string()].into();
        assert!(matches!(draft_dachportal("g", "Lage", None, &taken, &none), Err(DachportalError::SlugTaken { .. })));
        assert!(matches!(draft_dachportal("g", "–", None, &none, &none), Err(DachportalError::EmptySlug(_))));
        assert!(matches!(draft_dachportal("g", "R", Some("a..de"), &none, &none), Err(DachportalError::Hostname(_))));
        let text = dachportal_yaml(&draft_dachportal("g", "R", None, &none, &none).unwrap(), "g", "main", "x");
        assert!(text.contains("kind: dachportal") && !text.contains("ags:") && text.contains("placeholder"));
    }

    #[test]
    fn recorded_arguments_are_quoted_for_a_shell() {
        assert_eq!(shell_quote("emscher-lippe"), "emscher-lippe");
        assert_eq!(shell_quote("Serviceportal Emscher-Lippe"), "\"Serviceportal Emscher-Lippe\"");
        assert_eq!(shell_quote("a\"b$c"), "\"a\\\"b\\$c\"");
        assert_eq!(shell_quote(""), "\"\"");
    }

    #[test]
    fn a_batch_without_collisions_keeps_plain_slugs_and_existing_tenants_win() {
        let mut drafts: Vec<Draft> = ["05770024", "05766040"].iter().map(|a| draft_by_ags(a).unwrap()).collect();
        resolve_collisions(&mut drafts, &HashSet::new());
        assert_eq!(drafts[0].slug, "minden");
        assert_eq!(drafts[1].slug, "lage");
        assert!(drafts.iter().all(|d| d.note.is_none()));
        let taken: HashSet<String> = ["minden".to_string()].into();
        let mut again = vec![draft_by_ags("05770024").unwrap()];
        resolve_collisions(&mut again, &taken);
        assert_eq!(again[0].slug, "minden-minden-luebbecke");
        assert!(again[0].note.as_ref().unwrap().contains("existing tenant"));
    }

    #[test]
    fn every_german_municipality_and_kreis_gets_a_unique_valid_slug_and_hostname() {
        let mut drafts = all_drafts();
        resolve_collisions(&mut drafts, &HashSet::new());
        let mut slugs = HashSet::new();
        let mut hosts = HashSet::new();
        for d in &drafts {
            names::check_slug(&d.slug).unwrap_or_else(|e| panic!("{}: {e}", d.display_name));
            let h = names::parse_hostname(&d.hostname).unwrap_or_else(|e| panic!("{}: {e}", d.display_name));
            assert_eq!(h.ascii, d.hostname);
            names::check_schema_name(&names::default_schema(&d.slug))
                .unwrap_or_else(|e| panic!("{}: {e}", d.display_name));
            assert!(slugs.insert(d.slug.clone()), "duplicate slug {}", d.slug);
            assert!(hosts.insert(d.hostname.clone()), "duplicate hostname {}", d.hostname);
        }
        assert!(drafts.len() >= 10_790 + 290, "{}", drafts.len());
    }
}
