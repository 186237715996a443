//! What the portal server knows about a tenant: the subset of the resolved tenant
//! (`tenant.json` in the tenant's ConfigMap is `serde_json` of [`crate::tenant::Tenant`])
//! that pages and database access need, checked again because it may come from a cluster.

use crate::tenant::model::{LegalSpec, LinksSpec};
use crate::theme::Rgb;
use serde::{Deserialize, Serialize};

/// One tenant as served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    pub slug: String,
    pub group: String,
    pub display_name: String,
    /// ASCII hostnames; the first is canonical.
    pub hostnames: Vec<String>,
    pub theme: SiteTheme,
    /// PostgreSQL schema, and the name of the tenant's role.
    pub schema: String,
    #[serde(default)]
    pub published: bool,
    #[serde(default)]
    pub links: Links,
    /// Impressum, Datenschutz, Barrierefreiheit, Leichte Sprache, DGS: served as pages or linked.
    #[serde(default)]
    pub legal: LegalSpec,
    /// A Dachportal's member portals (public configuration only); empty for every other tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<crate::tenant::MemberPortal>,
    /// The full resolved tenant when it came from tenant files (the Servicekonto login needs
    /// its binding); not part of `tenant.json`.
    #[serde(skip)]
    pub tenant: TenantRef,
}

/// The resolved tenant behind a [`Site`], if known. Compared by content.
#[derive(Debug, Clone, Default)]
pub struct TenantRef(pub Option<std::sync::Arc<crate::tenant::Tenant>>);

impl PartialEq for TenantRef {
    fn eq(&self, other: &TenantRef) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                std::sync::Arc::ptr_eq(a, b) || serde_json::to_value(&**a).ok() == serde_json::to_value(&**b).ok()
            }
            _ => false,
        }
    }
}

/// Colours and font as CSS custom properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteTheme {
    pub primary_color: String,
    pub on_primary_color: String,
    pub text_color: String,
    pub background_color: String,
    pub accent_color: String,
    #[serde(default)]
    pub logo: Option<String>,
    pub font: String,
}

/// Other links of the commune (its own website).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Links {
    #[serde(default)]
    pub homepage: Option<String>,
}

impl From<&LinksSpec> for Links {
    fn from(l: &LinksSpec) -> Self {
        Links { homepage: l.homepage.clone() }
    }
}

impl Site {
    /// From a tenant resolved by the tenant model.
    pub fn from_tenant(t: &crate::tenant::Tenant) -> Site {
        Site {
            slug: t.slug.clone(),
            group: t.group.clone(),
            display_name: t.display_name.clone(),
            hostnames: t.hostnames.clone(),
            theme: SiteTheme {
                primary_color: t.theme.primary_color.clone(),
                on_primary_color: t.theme.on_primary_color.clone(),
                text_color: t.theme.text_color.clone(),
                background_color: t.theme.background_color.clone(),
                accent_color: t.theme.accent_color.clone(),
                logo: t.theme.logo.clone(),
                font: t.theme.font.clone(),
            },
            schema: t.schema.clone(),
            published: t.published,
            links: Links::from(&t.links),
            legal: t.legal.clone(),
            members: t.members.clone(),
            tenant: TenantRef(Some(std::sync::Arc::new(t.clone()))),
        }
    }

    /// Parse and check `tenant.json` (from a ConfigMap).
    pub fn from_json(text: &str) -> Result<Site, String> {
        let mut site: Site = serde_json::from_str(text).map_err(|e| format!("tenant.json: {e}"))?;
        site.check()?;
        // The full tenant (for the Servicekonto binding), when the file is a resolved tenant.
        if let Ok(t) = serde_json::from_str::<crate::tenant::Tenant>(text) {
            if t.slug == site.slug && t.schema == site.schema && t.hostnames == site.hostnames {
                site.tenant = TenantRef(Some(std::sync::Arc::new(t)));
            }
        }
        Ok(site)
    }

    /// Everything that reaches SQL or CSS must be safe: schema name, hostnames, colours, font.
    pub fn check(&self) -> Result<(), String> {
        let who = &self.slug;
        crate::names::check_slug(&self.slug).map_err(|e| format!("tenant {who:?}: slug: {e}"))?;
        crate::names::check_schema_name(&self.schema).map_err(|e| format!("tenant {who}: schema: {e}"))?;
        if self.hostnames.is_empty() {
            return Err(format!("tenant {who}: no hostnames"));
        }
        for h in &self.hostnames {
            let parsed = crate::names::parse_hostname(h).map_err(|e| format!("tenant {who}: {e}"))?;
            if parsed.ascii != *h {
                return Err(format!("tenant {who}: hostname {h:?} is not in ASCII form"));
            }
        }
        for m in &self.members {
            crate::names::check_slug(&m.slug).map_err(|e| format!("tenant {who}: member {e}"))?;
            let parsed = crate::names::parse_hostname(&m.hostname).map_err(|e| format!("tenant {who}: member {e}"))?;
            if parsed.ascii != m.hostname {
                return Err(format!("tenant {who}: member hostname {:?} is not in ASCII form", m.hostname));
            }
        }
        let t = &self.theme;
        for (name, c) in [
            ("primaryColor", &t.primary_color),
            ("onPrimaryColor", &t.on_primary_color),
            ("textColor", &t.text_color),
            ("backgroundColor", &t.background_color),
            ("accentColor", &t.accent_color),
        ] {
            if Rgb::parse(c).is_none() {
                return Err(format!("tenant {who}: theme.{name} {c:?} is not a #rrggbb colour"));
            }
        }
        if t.font.chars().any(|c| matches!(c, ';' | '{' | '}' | '<' | '>' | '\\')) {
            return Err(format!("tenant {who}: theme.font {:?} has characters not allowed in CSS", t.font));
        }
        Ok(())
    }

    /// Whether citizens can log in here: the tenant has a Servicekonto binding with its identity provider
    /// configured (SAML: the IdP metadata URL; OIDC: the issuer). Without one the layout shows no "Anmelden" button
    /// and `/anmelden` answers with the tenant's page "Anmeldung nicht verfügbar".
    pub fn login_available(&self) -> bool {
        use crate::tenant::model::Protocol;
        self.tenant.0.as_ref().and_then(|t| t.servicekonto.as_ref()).is_some_and(|b| match b.protocol {
            Protocol::Saml => b.idp_metadata_url.is_some(),
            Protocol::Oidc => b.issuer.is_some(),
        })
    }

    /// The logo if it is a URL or an absolute path (anything else is ignored).
    pub fn logo(&self) -> Option<&str> {
        self.theme
            .logo
            .as_deref()
            .filter(|l| l.starts_with("https://") || l.starts_with("http://") || l.starts_with('/'))
    }
}

impl SiteTheme {
    /// The theme as CSS custom properties (`/static/theme.css`). The values were checked when
    /// the tenant was loaded (colours `#rrggbb`, a font list without CSS syntax characters).
    pub fn css(&self) -> String {
        format!(
            ":root {{\n  --primary: {};\n  --on-primary: {};\n  --text: {};\n  --background: {};\n  --accent: {};\n  --font: {};\n}}\n",
            self.primary_color, self.on_primary_color, self.text_color, self.background_color, self.accent_color, self.font
        )
    }
}

/// The logged-in citizen, when the Servicekonto login put one into the request's
/// extensions. The layout shows name and trust level.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentUser {
    pub name: String,
    /// basisregistrierung, substantiell or hoch.
    pub trust_level: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tenant.json` in a tenant ConfigMap is `serde_json` of the resolved tenant; the server
    /// must read back exactly what it would have built from the files.
    #[test]
    fn configmap_json_of_every_bundled_tenant_round_trips() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let built = crate::tenant::load_dir(&dir).unwrap();
        assert_eq!(built.error_count(), 0);
        assert!(built.catalog.tenants.len() >= 60);
        for t in &built.catalog.tenants {
            let json = serde_json::to_string(t).unwrap();
            let site = Site::from_json(&json).unwrap();
            assert_eq!(site, Site::from_tenant(t), "{}", t.slug);
            // The Servicekonto login needs the binding back from the ConfigMap too.
            let back = site.tenant.0.as_ref().expect("the full tenant is kept");
            assert_eq!(back.servicekonto.is_some(), t.servicekonto.is_some(), "{}", t.slug);
            assert_eq!(serde_json::to_value(&**back).unwrap(), serde_json::to_value(t).unwrap());
        }
        assert!(built.catalog.tenants.iter().any(|t| t.servicekonto.is_some()), "some tenants have a binding");
    }

    #[test]
    fn unsafe_values_from_a_cluster_are_rejected() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let t = crate::tenant::load_dir(&dir).unwrap().catalog.tenants[0].clone();
        let good = serde_json::to_value(&t).unwrap();
        let mut bad = good.clone();
        bad["schema"] = "t_x\"; DROP SCHEMA t_y; --".into();
        assert!(Site::from_json(&bad.to_string()).unwrap_err().contains("schema"));
        let mut bad = good.clone();
        bad["theme"]["font"] = "Arial; } body { display: none".into();
        assert!(Site::from_json(&bad.to_string()).unwrap_err().contains("font"));
        let mut bad = good.clone();
        bad["theme"]["primaryColor"] = "red;background:url(x)".into();
        assert!(Site::from_json(&bad.to_string()).unwrap_err().contains("primaryColor"));
        let mut bad = good.clone();
        bad["hostnames"] = serde_json::json!([]);
        assert!(Site::from_json(&bad.to_string()).is_err());
        let mut bad = good;
        bad["members"] = serde_json::json!([
            { "slug": "x", "displayName": "X", "hostname": "evil.de\"><script>", "published": true }
        ]);
        assert!(Site::from_json(&bad.to_string()).unwrap_err().contains("member"));
    }
}
