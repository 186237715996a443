//! The legal pages of a portal (Impressum, Datenschutz, Erklärung zur Barrierefreiheit, Leichte Sprache,
//! Gebärdensprache): served from the tenant's configuration as themed pages, or linked when the tenant names an
//! external page; the links of every page's footer ("Rechtliches") and of the start page. No query is involved.

use super::error::AppError;
use super::site::Site;
use super::{AppState, TenantCtx};
use crate::tenant::legal::is_https_url;
use crate::tenant::model::LegalSpec;
use crate::tenant::LegalPage;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Serialize;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for page in LegalPage::ALL {
        r = r.route(page.path(), get(move |state: State<AppState>, ctx: TenantCtx| show(state, ctx, page)));
    }
    r
}

/// A link to a legal page, in the footer and (Leichte Sprache, DGS) on the start page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegalLink {
    /// `imprint`, `privacy`, `accessibility`, `easyLanguage`, `signLanguage`.
    pub key: &'static str,
    pub label: &'static str,
    /// The portal's own page or the external https page.
    pub href: String,
}

/// The short label of a page in the footer.
fn label(page: LegalPage) -> &'static str {
    match page {
        LegalPage::Imprint => "Impressum",
        LegalPage::Privacy => "Datenschutz",
        LegalPage::Accessibility => "Barrierefreiheit",
        LegalPage::EasyLanguage => "Leichte Sprache",
        LegalPage::SignLanguage => "Gebärdensprache",
    }
}

/// The page's external URL (`Some(None)`: given, but not an https URL, so not linked), or `None` when it is content.
fn external(legal: &LegalSpec, page: LegalPage) -> Option<Option<&str>> {
    let url = match page {
        LegalPage::Imprint => legal.imprint.as_ref().and_then(|p| p.url.as_deref()),
        LegalPage::Privacy => legal.privacy.as_ref().and_then(|p| p.url.as_deref()),
        LegalPage::Accessibility => legal.accessibility.as_ref().and_then(|p| p.url.as_deref()),
        LegalPage::EasyLanguage => legal.easy_language.as_ref().and_then(|p| p.url.as_deref()),
        LegalPage::SignLanguage => legal.sign_language.as_ref().and_then(|p| p.url.as_deref()),
    }?;
    Some(Some(url).filter(|u| is_https_url(u)))
}

fn declared(legal: &LegalSpec, page: LegalPage) -> bool {
    match page {
        LegalPage::Imprint => legal.imprint.is_some(),
        LegalPage::Privacy => legal.privacy.is_some(),
        LegalPage::Accessibility => legal.accessibility.is_some(),
        LegalPage::EasyLanguage => legal.easy_language.is_some(),
        LegalPage::SignLanguage => legal.sign_language.is_some(),
    }
}

/// The links to every legal page the tenant has, in footer order.
pub fn links(site: &Site) -> Vec<LegalLink> {
    LegalPage::ALL
        .into_iter()
        .filter(|p| declared(&site.legal, *p))
        .filter_map(|page| {
            let href = match external(&site.legal, page) {
                None => page.path().to_string(),
                Some(Some(url)) => url.to_string(),
                Some(None) => return None,
            };
            Some(LegalLink { key: page.key(), label: label(page), href })
        })
        .collect()
}

/// Text split into paragraphs at blank lines.
fn paragraphs(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default().split("\n\n").map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

fn lines(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default().lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

/// A `mailto:` link for something that looks like one e-mail address.
fn mailto(email: Option<&str>) -> Option<String> {
    let e = email?.trim();
    let ok = e.contains('@') && !e.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '<' | '>' | ':'));
    ok.then(|| format!("mailto:{e}"))
}

#[derive(Serialize, Default)]
struct Section {
    heading: String,
    paragraphs: Vec<String>,
}

#[derive(Serialize, Default)]
struct View {
    key: &'static str,
    title: &'static str,
    /// Imprint: address lines; Privacy: –.
    address: Vec<String>,
    paragraphs: Vec<String>,
    sections: Vec<Section>,
    barriers: Vec<String>,
    email_href: Option<String>,
    video_href: Option<String>,
    enforcement_href: Option<String>,
    status_de: Option<&'static str>,
}

async fn show(State(state): State<AppState>, ctx: TenantCtx, page: LegalPage) -> Result<Response, AppError> {
    // An external page or none: this portal has no such page.
    if !declared(&ctx.site.legal, page) || external(&ctx.site.legal, page).is_some() {
        return Ok(super::pages::not_found(&state, &ctx.site, ctx.user.as_ref()));
    }
    let legal = &ctx.site.legal;
    let mut view = View { key: page.key(), title: page.german(), ..View::default() };
    let mut c = super::pages::base(&ctx);
    match page {
        LegalPage::Imprint => {
            let p = legal.imprint.clone().unwrap_or_default();
            view.address = lines(p.address.as_deref());
            view.email_href = mailto(p.email.as_deref());
            c.insert("imprint", &p);
        }
        LegalPage::Privacy => {
            let p = legal.privacy.clone().unwrap_or_default();
            view.paragraphs = paragraphs(p.text.as_deref());
            view.sections = p
                .sections
                .iter()
                .flatten()
                .map(|s| Section { heading: s.heading.clone(), paragraphs: paragraphs(Some(&s.text)) })
                .collect();
            c.insert("privacy", &p);
        }
        LegalPage::Accessibility => {
            let p = legal.accessibility.clone().unwrap_or_default();
            view.barriers = p.barriers.clone().unwrap_or_default();
            view.email_href = mailto(p.feedback_contact.as_deref());
            view.enforcement_href = p.enforcement_url.clone().filter(|u| is_https_url(u));
            view.status_de = p.status.map(|s| s.german());
            c.insert("accessibility", &p);
        }
        LegalPage::EasyLanguage | LegalPage::SignLanguage => {
            let p = if page == LegalPage::EasyLanguage { &legal.easy_language } else { &legal.sign_language };
            let p = p.clone().unwrap_or_default();
            view.paragraphs = paragraphs(p.text.as_deref());
            view.video_href = p.video_url.clone().filter(|u| is_https_url(u));
        }
    }
    c.insert("page", &view);
    super::pages::page(&state, "legal.html", &c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_links_use_own_pages_or_https_pages_only() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let t = crate::tenant::load_dir(&dir).unwrap().catalog.tenant("erkelenz").unwrap().clone();
        let mut site = Site::from_tenant(&t);
        let hrefs: Vec<String> = links(&site).into_iter().map(|l| l.href).collect();
        assert_eq!(hrefs, ["/impressum", "/datenschutz", "/barrierefreiheit", "/leichte-sprache", "/gebaerdensprache"]);
        site.legal.privacy.as_mut().unwrap().url = Some("https://www.example.org/datenschutz".into());
        site.legal.imprint.as_mut().unwrap().url = Some("javascript:alert(1)".into());
        site.legal.sign_language = None;
        let got: Vec<(&str, String)> = links(&site).into_iter().map(|l| (l.label, l.href)).collect();
        assert_eq!(
            got,
            [
                ("Datenschutz", "https://www.example.org/datenschutz".to_string()),
                ("Barrierefreiheit", "/barrierefreiheit".to_string()),
                ("Leichte Sprache", "/leichte-sprache".to_string())
            ]
        );
        assert_eq!(mailto(Some("info@example.org")).as_deref(), Some("mailto:info@example.org"));
        assert_eq!(mailto(Some("TODO: E-Mail-Adresse")), None);
    }
}
