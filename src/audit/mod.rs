//! The accessibility audit of the portals (`portalctl audit`): each tenant's pages (home, A–Z, one service, search
//! results, login, the not-found page and the legal pages its footer links to) loaded in headless Chromium and
//! checked with axe-core, plus the security headers of every page.
//!
//! The browser half is `tools/audit/audit.mjs` (node: playwright-core driving the system's Chromium, axe-core),
//! run by [`browser`]; it only reports what it saw ([`RawTenant`]). This module judges: [`assess`] turns the raw
//! report into [`TenantAudit`]s (violations by impact with rule, page and selector, header problems, the checks
//! axe-core could not decide as "needs review", the legal pages), pure. [`report`] renders them as one HTML file;
//! [`record`] keeps each tenant's result in `portalctl.audit` for the go-live status.

pub mod browser;
pub mod record;
pub mod report;

use crate::portal::legal::LegalLink;
use crate::tenant::{LegalGap, LegalPage, Tenant};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Errors of running the audit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("node.js not found ({0}); install it (apt-get install nodejs) or pass --node PATH")]
    NoNode(String),
    #[error("Chromium not found at {0}; install it (apt-get install chromium) or pass --chromium PATH")]
    NoChromium(String),
    #[error(
        "the audit tools are not installed in {0}: run `npm ci --prefix tools/audit` in the portalctl sources, or pass \
         --tools-dir DIR"
    )]
    NoTools(String),
    #[error("the browser could not be started: {0}")]
    Browser(String),
    #[error("the audit script failed (exit {code:?}): {stderr}")]
    Script { code: Option<i32>, stderr: String },
    #[error("the audit script's report is not readable: {0}")]
    Report(String),
    #[error("cannot run {what}: {source}")]
    Io { what: String, source: std::io::Error },
}

impl Error {
    /// A program the audit needs (node, Chromium, the npm packages) is missing or does not start: a required
    /// service is not available (exit code 3), not a finding.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::NoNode(_) | Error::NoChromium(_) | Error::NoTools(_) | Error::Browser(_))
    }
}

/// The pages every tenant offers at these paths and links from its footer when it has them: Impressum,
/// Datenschutzerklärung, Erklärung zur Barrierefreiheit, Leichte Sprache, Gebärdensprache.
pub const LEGAL_PATHS: &[&str] =
    &["/impressum", "/datenschutz", "/barrierefreiheit", "/leichte-sprache", "/gebaerdensprache"];

/// What the browser reported for one page.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawPage {
    /// `home`, `a-z`, `service`, `search`, `login`, `not-found`, `legal`.
    pub name: String,
    pub path: String,
    pub status: Option<u16>,
    /// Where the page ended up after redirects (a path on the portal, or an absolute URL elsewhere).
    #[serde(default)]
    pub final_path: Option<String>,
    /// Response headers, names in lower case.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub violations: Vec<RawViolation>,
    /// The checks axe-core could not decide on this page (its "incomplete" results): to be looked at by a person.
    #[serde(default)]
    pub incomplete: Vec<RawViolation>,
    /// The page could not be loaded or checked.
    #[serde(default)]
    pub error: Option<String>,
}

/// One axe-core rule that failed on a page (or that axe-core could not decide).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawViolation {
    pub id: String,
    pub impact: String,
    pub help: String,
    #[serde(default)]
    pub help_url: String,
    pub nodes: Vec<RawNode>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawNode {
    pub target: Vec<String>,
    #[serde(default)]
    pub html: String,
}

/// A link of the home page's footer: a path on the portal, or an absolute URL elsewhere.
#[derive(Debug, Clone, Deserialize)]
pub struct RawLink {
    pub href: String,
    #[serde(default)]
    pub text: String,
}

/// What the browser reported for one tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawTenant {
    pub tenant: String,
    /// The links of the home page's footer.
    #[serde(default)]
    pub footer_links: Vec<RawLink>,
    pub pages: Vec<RawPage>,
}

/// The browser's whole report.
#[derive(Debug, Clone, Deserialize)]
pub struct RawReport {
    pub tenants: Vec<RawTenant>,
}

/// How bad a violation is (axe-core's impact levels; a missing security header counts as serious).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impact {
    Critical,
    Serious,
    Moderate,
    Minor,
}

impl Impact {
    pub fn parse(s: &str) -> Impact {
        match s {
            "critical" => Impact::Critical,
            "serious" => Impact::Serious,
            "moderate" => Impact::Moderate,
            _ => Impact::Minor,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::Critical => "critical",
            Impact::Serious => "serious",
            Impact::Moderate => "moderate",
            Impact::Minor => "minor",
        }
    }

    /// The impact in German, as the HTML report says it.
    pub fn german(self) -> &'static str {
        match self {
            Impact::Critical => "kritisch",
            Impact::Serious => "schwerwiegend",
            Impact::Moderate => "mittel",
            Impact::Minor => "gering",
        }
    }

    /// Serious and critical violations fail the audit.
    pub fn blocks(self) -> bool {
        self <= Impact::Serious
    }
}

/// One finding: a rule that failed on a page, with the elements it failed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub impact: Impact,
    /// The axe-core rule id (`color-contrast`), or `security-header` for a header check.
    pub rule: String,
    /// What the rule asks for, in one line.
    pub help: String,
    /// Which page: `home`, `a-z`, `service`, …
    pub page: String,
    pub path: String,
    /// CSS selectors of the failing elements (the header's name for a header check).
    pub selectors: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help_url: String,
}

/// One page as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageResult {
    pub page: String,
    pub path: String,
    pub status: Option<u16>,
    /// Why the page was not checked (could not be loaded; a login that leaves for the identity provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One legal page of a tenant as the audit found it: declared in the tenant's files (and complete there), linked from
/// the footer, and, when the portal serves it itself, answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegalCheck {
    /// `imprint`, `privacy`, `accessibility`, `easyLanguage`, `signLanguage` (the key under `spec.legal`).
    pub key: String,
    /// Its German name: `Impressum`, …
    pub name: String,
    /// Where the footer must link: the portal's own page (`/impressum`) or the external https page. `None`: the
    /// tenant declares no such page (or no https URL for it).
    pub href: Option<String>,
    /// The home page's footer links there.
    pub linked: bool,
    /// What the portal's own page answered (`None` for an external page, or when it was not asked).
    pub status: Option<u16>,
    /// What is missing or a placeholder in the tenant's files (`spec.legal.imprint.address: placeholder`).
    pub gaps: Vec<String>,
    /// Declared, complete, linked, and (the portal's own page) answering 2xx.
    pub ok: bool,
}

/// What the tenant's files declare about its legal pages: the footer links its portal must show, and the gaps.
#[derive(Debug, Clone, Default)]
pub struct LegalDeclared {
    pub links: Vec<LegalLink>,
    pub gaps: Vec<LegalGap>,
}

impl LegalDeclared {
    pub fn of(tenant: &Tenant) -> LegalDeclared {
        LegalDeclared {
            links: crate::portal::legal::links(&crate::portal::site::Site::from_tenant(tenant)),
            gaps: tenant.legal_gaps(),
        }
    }
}

/// Each legal page: declared, complete, linked from the footer, answering.
pub fn legal_checks(raw: &RawTenant, declared: &LegalDeclared) -> Vec<LegalCheck> {
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    LegalPage::ALL
        .into_iter()
        .map(|page| {
            let href = declared.links.iter().find(|l| l.key == page.key()).map(|l| l.href.clone());
            let linked = href.as_deref().is_some_and(|h| raw.footer_links.iter().any(|l| same(&l.href, h)));
            let own = href.as_deref().is_some_and(|h| h.starts_with('/'));
            let status = if own {
                raw.pages.iter().find(|p| p.name == "legal" && p.path == page.path()).and_then(|p| p.status)
            } else {
                None
            };
            let gaps: Vec<String> = declared.gaps.iter().filter(|g| g.page == page).map(LegalGap::blocker).collect();
            let ok = href.is_some() && linked && gaps.is_empty() && (!own || matches!(status, Some(200..=299)));
            LegalCheck { key: page.key().into(), name: page.german().into(), href, linked, status, gaps, ok }
        })
        .collect()
}

/// One tenant's audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantAudit {
    pub tenant: String,
    pub critical: u32,
    pub serious: u32,
    pub moderate: u32,
    pub minor: u32,
    /// Pages that could not be loaded: the audit is incomplete, which fails it.
    pub failed_pages: u32,
    pub pages: Vec<PageResult>,
    /// Most severe first, then by page and rule.
    pub violations: Vec<Violation>,
    /// The checks axe-core could not decide ("incomplete", e.g. the contrast of text over a background image): for a
    /// person to look at. They never fail the audit. Ordered like `violations`.
    #[serde(default)]
    pub needs_review: Vec<Violation>,
    /// The legal pages: declared and complete, linked from the footer, answering.
    #[serde(default)]
    pub legal: Vec<LegalCheck>,
}

impl TenantAudit {
    /// No serious or critical violation, every page checked.
    pub fn passed(&self) -> bool {
        self.critical == 0 && self.serious == 0 && self.failed_pages == 0
    }

    /// The blocking findings in one line each, e.g. `2 serious on /leistungen (color-contrast)`: what `status`
    /// names as blocking the `compliant` rung.
    pub fn findings(&self) -> Vec<String> {
        summarize(&self.violations)
    }
}

/// Serious and critical violations counted by (impact, path, rule), in one line each.
pub fn summarize(violations: &[Violation]) -> Vec<String> {
    let mut counts: BTreeMap<(Impact, &str, &str), usize> = BTreeMap::new();
    for v in violations.iter().filter(|v| v.impact.blocks()) {
        *counts.entry((v.impact, v.path.as_str(), v.rule.as_str())).or_default() += v.selectors.len().max(1);
    }
    counts.into_iter().map(|((impact, path, rule), n)| format!("{n} {} on {path} ({rule})", impact.as_str())).collect()
}

/// The security headers every page must carry, and what each must say.
fn header_problems(headers: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let csp = headers.get("content-security-policy").map(|s| s.to_ascii_lowercase());
    match &csp {
        None => problems.push(("content-security-policy", "missing".to_string())),
        Some(csp) => {
            let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
            let has = |name: &str| directives.iter().find(|d| d.split_whitespace().next() == Some(name)).copied();
            if has("default-src").is_none() {
                problems.push(("content-security-policy", "no default-src".to_string()));
            }
            if directives.iter().any(|d| d.contains("'unsafe-inline'") || d.contains("'unsafe-eval'")) {
                problems.push(("content-security-policy", "allows 'unsafe-inline' or 'unsafe-eval'".to_string()));
            }
            match has("frame-ancestors") {
                Some(d)
                    if d.split_whitespace().nth(1) == Some("'none'")
                        || d.split_whitespace().nth(1) == Some("'self'") => {}
                Some(d) => problems.push(("content-security-policy", format!("frame-ancestors too wide ({d})"))),
                None => problems.push(("content-security-policy", "no frame-ancestors".to_string())),
            }
        }
    }
    match headers.get("x-content-type-options") {
        Some(v) if v.trim().eq_ignore_ascii_case("nosniff") => {}
        Some(v) => problems.push(("x-content-type-options", format!("{v:?} instead of nosniff"))),
        None => problems.push(("x-content-type-options", "missing (nosniff)".to_string())),
    }
    const REFERRER_OK: &[&str] = &[
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "origin",
        "origin-when-cross-origin",
    ];
    match headers.get("referrer-policy") {
        Some(v) if REFERRER_OK.contains(&v.trim().to_ascii_lowercase().as_str()) => {}
        Some(v) => problems.push(("referrer-policy", format!("{v:?} leaks the full address"))),
        None => problems.push(("referrer-policy", "missing".to_string())),
    }
    problems
}

/// One axe-core result on a page as a finding.
fn finding(p: &RawPage, v: &RawViolation) -> Violation {
    Violation {
        impact: Impact::parse(&v.impact),
        rule: v.id.clone(),
        help: v.help.clone(),
        page: p.name.clone(),
        path: p.path.clone(),
        selectors: v.nodes.iter().map(|n| n.target.join(" ")).collect(),
        help_url: v.help_url.clone(),
    }
}

/// Judge the browser's report for one tenant, with what its files declare about its legal pages.
pub fn assess(raw: &RawTenant, declared: &LegalDeclared) -> TenantAudit {
    let mut pages = Vec::new();
    let mut violations = Vec::new();
    let mut needs_review = Vec::new();
    let mut failed_pages = 0;
    for p in &raw.pages {
        let mut note = None;
        if let Some(e) = &p.error {
            failed_pages += 1;
            note = Some(format!("not checked: {e}"));
        } else if p.final_path.as_deref().is_some_and(|f| f.starts_with("http://") || f.starts_with("https://")) {
            note = Some(format!("leaves the portal for {}", p.final_path.as_deref().unwrap_or_default()));
        } else if !matches!(p.status, Some(200..=299)) && !matches!(p.name.as_str(), "not-found" | "login") {
            failed_pages += 1;
            note = Some(format!("answers {}", p.status.map(|s| s.to_string()).unwrap_or_else(|| "nothing".into())));
        }
        if p.error.is_none() {
            for (header, problem) in header_problems(&p.headers) {
                violations.push(Violation {
                    impact: Impact::Serious,
                    rule: "security-header".into(),
                    help: format!("{header}: {problem}"),
                    page: p.name.clone(),
                    path: p.path.clone(),
                    selectors: vec![header.to_string()],
                    help_url: String::new(),
                });
            }
        }
        violations.extend(p.violations.iter().map(|v| finding(p, v)));
        needs_review.extend(p.incomplete.iter().map(|v| finding(p, v)));
        pages.push(PageResult { page: p.name.clone(), path: p.path.clone(), status: p.status, note });
    }
    violations.sort_by(|a, b| (a.impact, &a.path, &a.rule).cmp(&(b.impact, &b.path, &b.rule)));
    needs_review.sort_by(|a, b| (a.impact, &a.path, &a.rule).cmp(&(b.impact, &b.path, &b.rule)));
    let count = |i: Impact| violations.iter().filter(|v| v.impact == i).count() as u32;
    TenantAudit {
        tenant: raw.tenant.clone(),
        critical: count(Impact::Critical),
        serious: count(Impact::Serious),
        moderate: count(Impact::Moderate),
        minor: count(Impact::Minor),
        failed_pages,
        pages,
        violations,
        needs_review,
        legal: legal_checks(raw, declared),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_headers() -> BTreeMap<String, String> {
        [
            (
                "content-security-policy",
                "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "strict-origin-when-cross-origin"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn page(name: &str, path: &str, headers: BTreeMap<String, String>, violations: Vec<RawViolation>) -> RawPage {
        RawPage {
            name: name.into(),
            path: path.into(),
            status: Some(200),
            final_path: Some(path.into()),
            headers,
            violations,
            incomplete: Vec::new(),
            error: None,
        }
    }

    fn tenant(name: &str, pages: Vec<RawPage>) -> RawTenant {
        RawTenant { tenant: name.into(), footer_links: Vec::new(), pages }
    }

    fn contrast(targets: &[&str]) -> RawViolation {
        RawViolation {
            id: "color-contrast".into(),
            impact: "serious".into(),
            help: "Elements must meet minimum color contrast ratio thresholds".into(),
            help_url: String::new(),
            nodes: targets.iter().map(|t| RawNode { target: vec![t.to_string()], html: String::new() }).collect(),
        }
    }

    #[test]
    fn violations_are_counted_by_impact_and_summarised_per_page_and_rule() {
        let raw = tenant(
            "espelkamp",
            vec![
                page("home", "/", good_headers(), vec![]),
                page("a-z", "/leistungen", good_headers(), vec![contrast(&[".letters a", "footer p"])]),
            ],
        );
        let a = assess(&raw, &LegalDeclared::default());
        assert_eq!((a.critical, a.serious, a.failed_pages), (0, 1, 0));
        assert!(!a.passed());
        assert_eq!(a.violations[0].selectors, [".letters a", "footer p"]);
        assert_eq!(a.findings(), ["2 serious on /leistungen (color-contrast)"]);
    }

    #[test]
    fn missing_or_weak_security_headers_are_serious() {
        let mut weak = good_headers();
        weak.insert("content-security-policy".into(), "default-src *; frame-ancestors *".into());
        weak.remove("x-content-type-options");
        weak.insert("referrer-policy".into(), "unsafe-url".into());
        let a = assess(&tenant("detmold", vec![page("home", "/", weak, vec![])]), &LegalDeclared::default());
        let helps: Vec<&str> = a.violations.iter().map(|v| v.help.as_str()).collect();
        assert_eq!(a.serious, 3, "{helps:?}");
        assert!(helps.iter().any(|h| h.contains("frame-ancestors too wide")), "{helps:?}");
        assert!(helps.iter().any(|h| h.starts_with("x-content-type-options: missing")), "{helps:?}");
        assert!(helps.iter().any(|h| h.starts_with("referrer-policy")), "{helps:?}");
        let ok = assess(&tenant("detmold", vec![page("home", "/", good_headers(), vec![])]), &LegalDeclared::default());
        assert!(ok.passed(), "{:?}", ok.violations);
    }

    #[test]
    fn a_page_that_did_not_load_fails_the_audit_but_a_login_that_leaves_does_not() {
        let mut broken = page("a-z", "/leistungen", good_headers(), vec![]);
        broken.error = Some("net::ERR_CONNECTION_REFUSED".into());
        let mut login = page("login", "/anmelden", good_headers(), vec![]);
        login.final_path = Some("https://int.id.bund.de/idp/profile/SAML2/POST/SSO".into());
        let a = assess(&tenant("lage", vec![broken, login]), &LegalDeclared::default());
        assert_eq!(a.failed_pages, 1);
        assert!(!a.passed());
        assert!(a.pages[1].note.as_deref().unwrap().contains("leaves the portal"));
        // Headers of a page that did not load are not judged.
        assert_eq!(a.serious, 0, "{:?}", a.violations);
    }

    #[test]
    fn undecided_checks_need_review_and_never_fail_the_audit() {
        let mut home = page("home", "/", good_headers(), vec![]);
        let mut undecided = contrast(&["main > .hero h1"]);
        undecided.help_url = "https://dequeuniversity.com/rules/axe/4.11/color-contrast".into();
        home.incomplete = vec![undecided];
        let a = assess(&tenant("espelkamp", vec![home]), &LegalDeclared::default());
        assert!(a.passed(), "{a:?}");
        assert_eq!((a.serious, a.violations.len()), (0, 0));
        assert_eq!(a.needs_review.len(), 1);
        let r = &a.needs_review[0];
        assert_eq!((r.rule.as_str(), r.impact, r.page.as_str()), ("color-contrast", Impact::Serious, "home"));
        assert_eq!(r.selectors, ["main > .hero h1"]);
        assert!(a.findings().is_empty(), "not a blocker of `compliant`");
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["needsReview"][0]["rule"], "color-contrast", "{json:#}");
        assert_eq!(json["needsReview"][0]["helpUrl"], "https://dequeuniversity.com/rules/axe/4.11/color-contrast");
    }

    #[test]
    fn legal_pages_are_checked_declared_linked_and_answering() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let catalog = crate::tenant::load_dir(&dir).unwrap().catalog;
        let t = catalog.tenant("espelkamp").unwrap();
        let declared = LegalDeclared::of(t);
        let own: Vec<&str> = declared.links.iter().map(|l| l.href.as_str()).filter(|h| h.starts_with('/')).collect();
        assert!(own.contains(&"/impressum"), "{own:?}");
        let mut raw = tenant("espelkamp", vec![page("home", "/", good_headers(), vec![])]);
        // The footer links every declared page but the Impressum; the Erklärung zur Barrierefreiheit answers 200.
        raw.footer_links = declared
            .links
            .iter()
            .filter(|l| l.href != "/impressum")
            .map(|l| RawLink { href: l.href.clone(), text: l.label.into() })
            .collect();
        raw.pages.push(page("legal", "/barrierefreiheit", good_headers(), vec![]));
        let a = assess(&raw, &declared);
        let check = |key: &str| a.legal.iter().find(|c| c.key == key).unwrap();
        assert_eq!(a.legal.len(), 5);
        let imprint = check("imprint");
        assert!(!imprint.linked && !imprint.ok, "{imprint:?}");
        let statement = check("accessibility");
        assert_eq!(statement.name, "Erklärung zur Barrierefreiheit");
        assert!(statement.linked && statement.status == Some(200), "{statement:?}");
        assert_eq!(statement.ok, statement.gaps.is_empty(), "{statement:?}");
        // Not asked (no page entry): not ok, even when linked.
        let privacy = check("privacy");
        assert!(privacy.status.is_none() && !privacy.ok, "{privacy:?}");
        // Nothing declared at all: every page is named, none is ok.
        let none = assess(&raw, &LegalDeclared::default());
        assert!(none.legal.iter().all(|c| c.href.is_none() && !c.ok), "{:?}", none.legal);
    }
}
