//! The audit as one self-contained HTML file for people (`portalctl audit -o html`): per tenant the pages audited,
//! the violations by impact (rule, page, selector, help), the checks that need review, the legal pages and the
//! security headers. Rendered from `templates/report/audit.html.tera` with the style of the status report, escaped
//! by tera. Pure.

use super::{Impact, LegalCheck, TenantAudit, Violation};
use crate::status::report::{german_time, machine_time, reason_de};
use serde::Serialize;

/// One tenant of the report: who it is, and its audit.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub display_name: &'a str,
    /// The hostname its pages were asked under.
    pub host: &'a str,
    pub audit: &'a TenantAudit,
}

#[derive(Serialize)]
struct Finding<'a> {
    impact_de: &'static str,
    /// `critical`, …: the CSS class.
    level: &'static str,
    #[serde(flatten)]
    v: &'a Violation,
}

#[derive(Serialize)]
struct HtmlLegal<'a> {
    #[serde(flatten)]
    check: &'a LegalCheck,
    /// The gaps in German, each field under `spec.legal.<page>.`: `address: Platzhalter`.
    gaps_de: Vec<String>,
}

impl<'a> HtmlLegal<'a> {
    fn of(check: &'a LegalCheck) -> HtmlLegal<'a> {
        let prefix = format!("spec.legal.{}.", check.key);
        let gaps_de = check.gaps.iter().map(|g| reason_de(g).trim_start_matches(prefix.as_str()).to_string()).collect();
        HtmlLegal { check, gaps_de }
    }
}

#[derive(Serialize)]
struct HtmlTenant<'a> {
    slug: &'a str,
    display_name: &'a str,
    host: &'a str,
    passed: bool,
    audit: &'a TenantAudit,
    /// (German impact, count), most severe first.
    counts: Vec<(&'static str, u32)>,
    /// The axe-core violations, most severe first.
    violations: Vec<Finding<'a>>,
    needs_review: Vec<Finding<'a>>,
    /// The security header problems (rule `security-header`).
    headers: Vec<Finding<'a>>,
    legal: Vec<HtmlLegal<'a>>,
    /// Pages whose headers were judged (loaded).
    header_pages: usize,
}

fn findings<'a>(v: impl Iterator<Item = &'a Violation>) -> Vec<Finding<'a>> {
    v.map(|v| Finding { impact_de: v.impact.german(), level: v.impact.as_str(), v }).collect()
}

/// The report of these tenants' audits, made at `generated_at`.
pub fn html(entries: &[Entry], generated_at: time::OffsetDateTime) -> Result<String, tera::Error> {
    let mut tera = tera::Tera::default();
    tera.add_raw_template("report.css", include_str!("../../templates/report/report.css"))?;
    tera.add_raw_template("audit.html", include_str!("../../templates/report/audit.html.tera"))?;
    let tenants: Vec<HtmlTenant> = entries
        .iter()
        .map(|e| {
            let a = e.audit;
            let security = |v: &&Violation| v.rule == "security-header";
            HtmlTenant {
                slug: &a.tenant,
                display_name: e.display_name,
                host: e.host,
                passed: a.passed(),
                audit: a,
                counts: vec![
                    (Impact::Critical.german(), a.critical),
                    (Impact::Serious.german(), a.serious),
                    (Impact::Moderate.german(), a.moderate),
                    (Impact::Minor.german(), a.minor),
                    ("zu prüfen", a.needs_review.len() as u32),
                ],
                violations: findings(a.violations.iter().filter(|v| !security(v))),
                needs_review: findings(a.needs_review.iter()),
                headers: findings(a.violations.iter().filter(security)),
                legal: a.legal.iter().map(HtmlLegal::of).collect(),
                header_pages: a
                    .pages
                    .iter()
                    .filter(|p| p.note.as_deref().is_none_or(|n| !n.starts_with("not checked")))
                    .count(),
            }
        })
        .collect();
    let passed = entries.iter().all(|e| e.audit.passed());
    let mut ctx = tera::Context::new();
    ctx.insert("tenants", &tenants);
    ctx.insert("passed", &passed);
    ctx.insert("generated_at", &machine_time(generated_at));
    ctx.insert("generated_at_de", &german_time(generated_at));
    ctx.insert("version", env!("CARGO_PKG_VERSION"));
    tera.render("audit.html", &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{LegalCheck, PageResult};

    fn violation(impact: Impact, rule: &str, path: &str, selector: &str) -> Violation {
        Violation {
            impact,
            rule: rule.into(),
            help: format!("help for {rule} <script>"),
            page: "home".into(),
            path: path.into(),
            selectors: vec![selector.into()],
            help_url: format!("https://dequeuniversity.com/rules/axe/4.11/{rule}"),
        }
    }

    #[test]
    fn the_report_shows_violations_review_items_legal_pages_and_headers_escaped() {
        let audit = TenantAudit {
            tenant: "espelkamp".into(),
            critical: 1,
            serious: 1,
            moderate: 0,
            minor: 0,
            failed_pages: 0,
            pages: vec![
                PageResult { page: "home".into(), path: "/".into(), status: Some(200), note: None },
                PageResult {
                    page: "login".into(),
                    path: "/anmelden".into(),
                    status: Some(200),
                    note: Some("leaves the portal for https://int.id.bund.de/idp".into()),
                },
            ],
            violations: vec![
                violation(Impact::Critical, "image-alt", "/", "img[src=\"x\"]"),
                Violation {
                    help_url: String::new(),
                    ..violation(Impact::Serious, "security-header", "/", "referrer-policy")
                },
            ],
            needs_review: vec![violation(Impact::Serious, "color-contrast", "/", ".hero h1")],
            legal: vec![LegalCheck {
                key: "imprint".into(),
                name: "Impressum".into(),
                href: Some("/impressum".into()),
                linked: true,
                status: Some(200),
                gaps: vec!["spec.legal.imprint.address: placeholder".into()],
                ok: false,
            }],
        };
        let entries = [Entry { display_name: "Stadt Espelkamp", host: "service.espelkamp.de", audit: &audit }];
        let page = html(&entries, time::macros::datetime!(2026-11-29 17:06 UTC)).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains("lang=\"de\""));
        assert!(page.contains("Stadt Espelkamp") && page.contains("29.11.2026, 18:06 Uhr"), "{page}");
        assert!(!page.contains("<script>") && page.contains("help for image-alt &lt;script&gt;"), "escaped: {page}");
        assert!(page.contains("img[src=&quot;x&quot;]"), "{page}");
        assert!(page.contains(">kritisch<") && page.contains("color-contrast") && page.contains(".hero h1"), "{page}");
        assert!(page.contains("<li>address: Platzhalter</li>"), "{page}");
        assert!(page.contains("referrer-policy"), "{page}");
        assert!(page.contains("nicht bestanden"), "{page}");
        // One style, the status report's, and no external asset.
        assert!(page.contains("--accent: #005ea8"), "{page}");
        assert!(!page.contains("<link") && !page.contains("src=\"http"), "{page}");
    }
}
