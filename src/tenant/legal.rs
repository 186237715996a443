//! The legal pages of a tenant (Impressum, Datenschutzerklärung, Erklärung zur Barrierefreiheit, Leichte Sprache,
//! Deutsche Gebärdensprache): inheritance from the group's defaults, and what is still missing or a placeholder.
//! Validation reports the gaps (a warning while the tenant is a draft, an error once it is published) and the
//! go-live ladder's rung `compliant` requires that there are none. Pure.

use super::model::*;
use serde::Serialize;

/// One of the legal pages, with its German name and its path in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LegalPage {
    Imprint,
    Privacy,
    Accessibility,
    EasyLanguage,
    SignLanguage,
}

impl LegalPage {
    pub const ALL: [LegalPage; 5] = [
        LegalPage::Imprint,
        LegalPage::Privacy,
        LegalPage::Accessibility,
        LegalPage::EasyLanguage,
        LegalPage::SignLanguage,
    ];

    /// The key under `spec.legal`.
    pub fn key(self) -> &'static str {
        match self {
            LegalPage::Imprint => "imprint",
            LegalPage::Privacy => "privacy",
            LegalPage::Accessibility => "accessibility",
            LegalPage::EasyLanguage => "easyLanguage",
            LegalPage::SignLanguage => "signLanguage",
        }
    }

    /// The page's name as citizens and status reports call it.
    pub fn german(self) -> &'static str {
        match self {
            LegalPage::Imprint => "Impressum",
            LegalPage::Privacy => "Datenschutzerklärung",
            LegalPage::Accessibility => "Erklärung zur Barrierefreiheit",
            LegalPage::EasyLanguage => "Leichte Sprache",
            LegalPage::SignLanguage => "Gebärdensprache",
        }
    }

    /// Where the portal serves the page when it is content, not an external link.
    pub fn path(self) -> &'static str {
        match self {
            LegalPage::Imprint => "/impressum",
            LegalPage::Privacy => "/datenschutz",
            LegalPage::Accessibility => "/barrierefreiheit",
            LegalPage::EasyLanguage => "/leichte-sprache",
            LegalPage::SignLanguage => "/gebaerdensprache",
        }
    }

    pub fn by_path(path: &str) -> Option<LegalPage> {
        LegalPage::ALL.into_iter().find(|p| p.path() == path)
    }
}

/// What is wrong with a legal page or one of its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Gap {
    Missing,
    Placeholder,
}

/// One gap in a tenant's legal pages: the whole page missing (`field` is `None`) or one field missing or a
/// placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegalGap {
    pub page: LegalPage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub gap: Gap,
}

impl LegalGap {
    /// The field path in the tenant file, e.g. `spec.legal.imprint.address` (or `spec.legal.imprint`).
    pub fn path(&self) -> String {
        match &self.field {
            Some(f) => format!("spec.legal.{}.{f}", self.page.key()),
            None => format!("spec.legal.{}", self.page.key()),
        }
    }

    /// What blocks `compliant`, in one line: "Impressum missing", "spec.legal.imprint.address: placeholder".
    pub fn blocker(&self) -> String {
        match (&self.field, self.gap) {
            (None, _) => format!("{} missing", self.page.german()),
            (Some(_), Gap::Missing) => format!("{}: missing", self.path()),
            (Some(_), Gap::Placeholder) => format!("{}: placeholder", self.path()),
        }
    }
}

/// The tenant's legal pages: the group's defaults with the tenant's own pages over them. A page the tenant gives with
/// `url` replaces the group's; otherwise the tenant's fields are merged over the group's, field by field.
pub fn merge(group: Option<&LegalSpec>, own: Option<&LegalSpec>) -> LegalSpec {
    let (g, o) = (group.cloned().unwrap_or_default(), own.cloned().unwrap_or_default());
    LegalSpec {
        imprint: merge_page(g.imprint, o.imprint),
        privacy: merge_page(g.privacy, o.privacy),
        accessibility: merge_page(g.accessibility, o.accessibility),
        easy_language: merge_page(g.easy_language, o.easy_language),
        sign_language: merge_page(g.sign_language, o.sign_language),
    }
}

fn merge_page<T: Page>(group: Option<T>, own: Option<T>) -> Option<T> {
    match (group, own) {
        (g, None) => g,
        (None, Some(o)) => Some(o),
        (Some(_), Some(o)) if o.url().is_some() => Some(o),
        (Some(g), Some(o)) if o.is_empty() => Some(g),
        (Some(g), Some(o)) => Some(o.over(g)),
    }
}

/// Every gap of `legal`, in page order. Empty: every page is there and complete.
pub fn gaps(legal: &LegalSpec) -> Vec<LegalGap> {
    let mut out = Vec::new();
    page_gaps(&mut out, LegalPage::Imprint, legal.imprint.as_ref());
    page_gaps(&mut out, LegalPage::Privacy, legal.privacy.as_ref());
    page_gaps(&mut out, LegalPage::Accessibility, legal.accessibility.as_ref());
    page_gaps(&mut out, LegalPage::EasyLanguage, legal.easy_language.as_ref());
    page_gaps(&mut out, LegalPage::SignLanguage, legal.sign_language.as_ref());
    out
}

/// Every URL of `legal` that must be `https://` (placeholders excepted; they are gaps), with its field path.
pub fn urls(legal: &LegalSpec) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    fn push<'a>(out: &mut Vec<(String, &'a str)>, page: LegalPage, field: &str, v: Option<&'a String>) {
        if let Some(v) = v.filter(|v| !is_placeholder(v)) {
            out.push((format!("spec.legal.{}.{field}", page.key()), v.as_str()));
        }
    }
    if let Some(p) = &legal.imprint {
        push(&mut out, LegalPage::Imprint, "url", p.url.as_ref());
    }
    if let Some(p) = &legal.privacy {
        push(&mut out, LegalPage::Privacy, "url", p.url.as_ref());
    }
    if let Some(p) = &legal.accessibility {
        push(&mut out, LegalPage::Accessibility, "url", p.url.as_ref());
        push(&mut out, LegalPage::Accessibility, "enforcementUrl", p.enforcement_url.as_ref());
    }
    for (page, p) in [(LegalPage::EasyLanguage, &legal.easy_language), (LegalPage::SignLanguage, &legal.sign_language)]
    {
        if let Some(p) = p {
            push(&mut out, page, "url", p.url.as_ref());
            push(&mut out, page, "videoUrl", p.video_url.as_ref());
        }
    }
    out
}

/// Whether `url` is an https URL that may be put into a link (no whitespace, no quotes or angle brackets).
pub fn is_https_url(url: &str) -> bool {
    url.len() > "https://".len()
        && url.starts_with("https://")
        && !url.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '\\'))
}

fn page_gaps<T: Page>(out: &mut Vec<LegalGap>, page: LegalPage, p: Option<&T>) {
    let Some(p) = p else {
        out.push(LegalGap { page, field: None, gap: Gap::Missing });
        return;
    };
    let gap = |field: &str, gap| LegalGap { page, field: Some(field.to_string()), gap };
    if let Some(url) = p.url() {
        if is_placeholder(url) {
            out.push(gap("url", Gap::Placeholder));
        }
        return;
    }
    for (field, value, required) in p.fields() {
        match value {
            None if required => out.push(gap(&field, Gap::Missing)),
            Some(v) if v.trim().is_empty() && required => out.push(gap(&field, Gap::Missing)),
            Some(v) if is_placeholder(v) => out.push(gap(&field, Gap::Placeholder)),
            _ => {}
        }
    }
}

/// What the pages have in common: an external `url` or content fields.
trait Page: Clone {
    fn url(&self) -> Option<&String>;
    /// Every content field: (name, value, required).
    fn fields(&self) -> Vec<(String, Option<&str>, bool)>;
    /// `self`'s fields over `base`'s (the external URL dropped: `self` is content).
    fn over(self, base: Self) -> Self;
    fn is_empty(&self) -> bool {
        self.url().is_none() && self.fields().iter().all(|(_, v, _)| v.is_none())
    }
}

fn s(v: &Option<String>) -> Option<&str> {
    v.as_deref()
}

impl Page for ImprintSpec {
    fn url(&self) -> Option<&String> {
        self.url.as_ref()
    }
    fn fields(&self) -> Vec<(String, Option<&str>, bool)> {
        vec![
            ("authority".into(), s(&self.authority), true),
            ("address".into(), s(&self.address), true),
            ("representative".into(), s(&self.representative), true),
            ("phone".into(), s(&self.phone), true),
            ("email".into(), s(&self.email), true),
            ("vatId".into(), s(&self.vat_id), false),
            ("authorityId".into(), s(&self.authority_id), false),
        ]
    }
    fn over(self, b: Self) -> Self {
        ImprintSpec {
            url: None,
            authority: self.authority.or(b.authority),
            address: self.address.or(b.address),
            representative: self.representative.or(b.representative),
            phone: self.phone.or(b.phone),
            email: self.email.or(b.email),
            vat_id: self.vat_id.or(b.vat_id),
            authority_id: self.authority_id.or(b.authority_id),
        }
    }
}

impl Page for PrivacySpec {
    fn url(&self) -> Option<&String> {
        self.url.as_ref()
    }
    fn fields(&self) -> Vec<(String, Option<&str>, bool)> {
        let mut f = vec![
            ("controller".into(), s(&self.controller), true),
            ("dataProtectionOfficer".into(), s(&self.data_protection_officer), true),
        ];
        let sections = self.sections.as_deref().unwrap_or_default();
        // The statement itself: a text or sections, one of them.
        f.push(("text".into(), s(&self.text), sections.is_empty()));
        for (i, sec) in sections.iter().enumerate() {
            f.push((format!("sections[{i}].heading"), Some(sec.heading.as_str()), true));
            f.push((format!("sections[{i}].text"), Some(sec.text.as_str()), true));
        }
        f
    }
    fn over(self, b: Self) -> Self {
        // Text and sections are one statement: the tenant's replaces the group's as a whole.
        let own_statement = self.text.is_some() || self.sections.is_some();
        PrivacySpec {
            url: None,
            controller: self.controller.or(b.controller),
            data_protection_officer: self.data_protection_officer.or(b.data_protection_officer),
            text: if own_statement { self.text } else { b.text },
            sections: if own_statement { self.sections } else { b.sections },
        }
    }
}

impl Page for AccessibilitySpec {
    fn url(&self) -> Option<&String> {
        self.url.as_ref()
    }
    fn fields(&self) -> Vec<(String, Option<&str>, bool)> {
        let status = self.status.map(|st| match st {
            ComplianceStatus::Full => "full",
            ComplianceStatus::Partial => "partial",
            ComplianceStatus::None => "none",
        });
        let barriers = self.barriers.as_deref().unwrap_or_default();
        let mut f = vec![
            ("date".into(), s(&self.date), true),
            ("status".into(), status, true),
            ("feedbackContact".into(), s(&self.feedback_contact), true),
            ("enforcementUrl".into(), s(&self.enforcement_url), true),
        ];
        // Known barriers are required unless the portal fully complies.
        if barriers.is_empty() {
            f.push(("barriers".into(), None, self.status != Some(ComplianceStatus::Full)));
        }
        for (i, b) in barriers.iter().enumerate() {
            f.push((format!("barriers[{i}]"), Some(b.as_str()), true));
        }
        f
    }
    fn over(self, b: Self) -> Self {
        AccessibilitySpec {
            url: None,
            date: self.date.or(b.date),
            status: self.status.or(b.status),
            barriers: self.barriers.or(b.barriers),
            feedback_contact: self.feedback_contact.or(b.feedback_contact),
            enforcement_url: self.enforcement_url.or(b.enforcement_url),
        }
    }
    fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.date.is_none()
            && self.status.is_none()
            && self.barriers.is_none()
            && self.feedback_contact.is_none()
            && self.enforcement_url.is_none()
    }
}

impl Page for EntryPageSpec {
    fn url(&self) -> Option<&String> {
        self.url.as_ref()
    }
    fn fields(&self) -> Vec<(String, Option<&str>, bool)> {
        vec![("text".into(), s(&self.text), true), ("videoUrl".into(), s(&self.video_url), false)]
    }
    fn over(self, b: Self) -> Self {
        EntryPageSpec { url: None, text: self.text.or(b.text), video_url: self.video_url.or(b.video_url) }
    }
}

/// A complete set of legal pages with example data (for tests only: the names and addresses are made up).
#[cfg(test)]
pub(crate) fn example_complete() -> LegalSpec {
    tests::complete()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn complete() -> LegalSpec {
        serde_saphyr::from_str(
            r#"
imprint:
  authority: "Stadt Erkelenz"
  address: "Musterstraße 1, 12345 Musterstadt"
  representative: "Erika Mustermann, Bürgermeisterin"
  phone: "+49 0000 000000"
  email: "info@example.org"
privacy:
  controller: "Stadt Erkelenz"
  dataProtectionOfficer: "datenschutz@example.org"
  sections:
    - { heading: "Zweck", text: "Bereitstellung des Serviceportals." }
accessibility:
  date: "2026-11-01"
  status: partial
  barriers: ["Einige PDF-Formulare sind nicht barrierefrei."]
  feedbackContact: "barrierefreiheit@example.org"
  enforcementUrl: "https://www.example.org/schlichtung"
easyLanguage: { text: "Hier finden Sie Hilfe." }
signLanguage: { url: "https://www.example.org/dgs" }
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_complete_set_has_no_gaps() {
        assert_eq!(gaps(&complete()), []);
    }

    #[test]
    fn missing_pages_fields_and_placeholders_are_named() {
        let mut l = complete();
        l.imprint = None;
        l.privacy.as_mut().unwrap().data_protection_officer =
            Some("TODO: Kontakt der/des Datenschutzbeauftragten".into());
        l.accessibility.as_mut().unwrap().barriers = None;
        let blockers: Vec<String> = gaps(&l).iter().map(LegalGap::blocker).collect();
        assert_eq!(
            blockers,
            [
                "Impressum missing",
                "spec.legal.privacy.dataProtectionOfficer: placeholder",
                "spec.legal.accessibility.barriers: missing"
            ]
        );
        // Full compliance needs no list of barriers.
        l.accessibility.as_mut().unwrap().status = Some(ComplianceStatus::Full);
        assert_eq!(gaps(&l).len(), 2);
    }

    #[test]
    fn a_tenant_merges_over_the_group_and_a_url_replaces_the_page() {
        let group = complete();
        let own: LegalSpec = serde_saphyr::from_str(
            "imprint: { address: \"TODO: Postanschrift\" }\nprivacy: { url: \"https://www.example.org/datenschutz\" }\n",
        )
        .unwrap();
        let m = merge(Some(&group), Some(&own));
        let imprint = m.imprint.as_ref().unwrap();
        assert_eq!(imprint.address.as_deref(), Some("TODO: Postanschrift"));
        assert_eq!(imprint.authority.as_deref(), Some("Stadt Erkelenz"), "inherited field by field");
        assert_eq!(m.privacy.as_ref().unwrap().controller, None, "an external page replaces the group's");
        assert_eq!(
            gaps(&m).iter().map(LegalGap::blocker).collect::<Vec<_>>(),
            ["spec.legal.imprint.address: placeholder"]
        );
        assert_eq!(merge(Some(&group), None), group);
    }

    #[test]
    fn only_https_urls_are_links() {
        assert!(is_https_url("https://www.schlichtungsstelle-bgg.de"));
        for bad in ["http://example.org", "https://", "javascript:alert(1)", "https://a.de/\"><script>", "https://a b"]
        {
            assert!(!is_https_url(bad), "{bad}");
        }
        let legal = complete();
        let urls = urls(&legal);
        assert_eq!(
            urls.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
            ["spec.legal.accessibility.enforcementUrl", "spec.legal.signLanguage.url"]
        );
    }
}
