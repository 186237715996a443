//! The tenant model: groups and tenants as resolved from their files — defaults inherited,
//! names checked, everything validated — and the whole catalog of a `tenants/` directory.
//!
//! **Architecture invariant:** this module does no IO. [`build`] takes file contents and
//! returns a [`Catalog`] plus every [`Diagnostic`]; reading the directory is
//! [`load`]'s job, at the edge.

pub mod legal;
pub mod load;
pub mod model;
mod validate;

use crate::diagnostics::{Diagnostic, Position, Severity};
use crate::theme::Theme;
use model::*;
use serde::{Deserialize, Serialize};

pub use legal::{LegalGap, LegalPage};
pub use load::{load_dir, read_dir, LoadError};
pub use model::{
    CitizenAttribute, Environment, MunicipalityKind, Placement, Protocol, Provider, RequestedAttribute, SecretRef,
    TrustLevel,
};

/// Default content threshold: published services a portal needs to be content-ready.
pub const DEFAULT_CONTENT_THRESHOLD: u32 = 40;
/// Default portal-server image when a group names none.
pub const DEFAULT_IMAGE: &str = concat!("portalctl/portalctl:", env!("CARGO_PKG_VERSION"));

/// One file handed to [`build`]: where it came from and what it says.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as shown to the user, e.g. `tenants/krz/espelkamp.yaml`.
    pub path: String,
    /// Name of the group directory the file sits in (`krz`).
    pub group_dir: String,
    /// File name without extension (`espelkamp`, or `group` for the group file).
    pub stem: String,
    pub text: String,
}

impl SourceFile {
    pub fn is_group_file(&self) -> bool {
        self.stem == "group"
    }
}

/// A rollout group, defaults resolved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Waves in rollout order.
    pub waves: Vec<Wave>,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_context: Option<String>,
    pub image: String,
    pub content_threshold: u32,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Wave {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Group {
    /// Position of a wave in the rollout order.
    pub fn wave_index(&self, wave: &str) -> Option<usize> {
        self.waves.iter().position(|w| w.name == wave)
    }
}

/// A tenant, everything inherited and checked: what the rest of portalctl works with.
/// Deserializable so that the portal server can read it back from a tenant ConfigMap.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub slug: String,
    pub group: String,
    pub display_name: String,
    /// The official AGS (8 digits); `None` for a Dachportal only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ags: Option<String>,
    pub kind: MunicipalityKind,
    /// AGS of the Kreis (5 digits); `None` for a Dachportal only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kreis: Option<String>,
    /// A Dachportal's member portals (public configuration of tenants of the same group), in slug order; empty for
    /// every other kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberPortal>,
    pub wave: String,
    /// First is canonical; the rest are aliases. ASCII (punycode) forms.
    pub hostnames: Vec<String>,
    /// Unicode spellings of hostnames that were written with umlauts, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames_unicode: Vec<String>,
    pub theme: Theme,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servicekonto: Option<Binding>,
    pub schema: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_date: Option<String>,
    pub published: bool,
    pub placement: Placement,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_context: Option<String>,
    pub image: String,
    pub content_threshold: u32,
    /// Kreis tasks this Gemeinde or Stadt performs itself (`spec.ownTasks`), validated against the starter
    /// catalogue's tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub own_tasks: Vec<String>,
    pub links: LinksSpec,
    /// The legal pages, the group's defaults merged in ([`legal::merge`]).
    #[serde(default)]
    pub legal: LegalSpec,
    pub source: String,
}

impl Tenant {
    /// The canonical hostname (the first one declared).
    pub fn primary_hostname(&self) -> &str {
        &self.hostnames[0]
    }

    /// The group's regional umbrella portal (kind `dachportal`).
    pub fn is_dachportal(&self) -> bool {
        self.kind.is_dachportal()
    }

    /// What is missing from the legal pages or still a placeholder (empty: complete).
    pub fn legal_gaps(&self) -> Vec<LegalGap> {
        legal::gaps(&self.legal)
    }
}

/// A portal a Dachportal links to: only what is public anyway (name, address, whether it is online). Never anything
/// from the member's database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberPortal {
    pub slug: String,
    pub display_name: String,
    /// The member's canonical hostname (ASCII).
    pub hostname: String,
    /// The member is published ("online").
    pub published: bool,
}

/// A tenant's resolved Servicekonto binding.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub provider: Provider,
    pub protocol: Protocol,
    pub environment: Environment,
    pub trust_level: TrustLevel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idp_metadata_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// SAML SP entity ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// OIDC client ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretRef>,
    /// SAML: AES-CBC encrypted assertions accepted (`allowLegacyCbc`); AES-GCM only otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_legacy_cbc: bool,
    /// BundID: `OnlineServiceId` of the request's `DisplayInformation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_service_id: Option<String>,
    /// BundID: the attributes each AuthnRequest asks for, as the tenant lists them; empty: the default
    /// (`servicekonto::bundid::default_requested_attributes`). Empty for other providers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested_attributes: Vec<RequestedAttribute>,
}

/// Every group and tenant of a `tenants/` directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Catalog {
    pub groups: Vec<Group>,
    pub tenants: Vec<Tenant>,
}

impl Catalog {
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn tenant(&self, slug: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.slug == slug)
    }

    pub fn tenants_of<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Tenant> + 'a {
        self.tenants.iter().filter(move |t| t.group == group)
    }

    /// The group's Dachportal, if it has one (validation allows at most one).
    pub fn dachportal_of(&self, group: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.group == group && t.is_dachportal())
    }
}

/// The result of [`build`]: the catalog (complete only if there are no errors) and all findings.
#[derive(Debug, Default)]
pub struct Built {
    pub catalog: Catalog,
    pub diagnostics: Vec<Diagnostic>,
}

impl Built {
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count()
    }
}

/// Parse, resolve and validate a set of files. Pure: no IO, deterministic output order.
pub fn build(files: &[SourceFile]) -> Built {
    validate::build(files)
}

/// Turn a serde-saphyr error into a finding at its location.
pub(crate) fn parse_error(file: &SourceFile, err: &serde_saphyr::Error) -> Diagnostic {
    let position = match err.location() {
        Some(loc) => Position::at(&file.path, loc),
        None => Position::file(&file.path),
    };
    let message = first_line_of_error(err);
    let (code, hint) = if message.contains("unknown field") {
        ("unknown-field", "check the spelling against the documented format (docs/tenant-format.md)")
    } else if message.contains("missing field") {
        ("missing-field", "add the field; see docs/tenant-format.md")
    } else if message.contains("unknown variant") {
        ("invalid-value", "use one of the listed values")
    } else if message.contains("invalid type") {
        ("invalid-type", "check the value's type (quote AGS and dates as strings)")
    } else {
        ("yaml-syntax", "the file is not valid YAML at this point")
    };
    Diagnostic::error(code, position, message).hint(hint)
}

fn first_line_of_error(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    let line = text.lines().next().unwrap_or("").trim();
    // Drop a trailing " at line X column Y" — the position is reported separately.
    let line = match line.find(" at line ") {
        Some(i) => &line[..i],
        None => line,
    };
    line.to_string()
}
