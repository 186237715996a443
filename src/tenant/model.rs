//! The file format of `tenants/<group>/group.yaml` and `tenants/<group>/<tenant>.yaml`,
//! exactly as written by operators. Fields that validation points at are
//! [`Spanned`] so that every finding can name its line and column.
//!
//! Versioned like Kubernetes objects: `apiVersion: portalctl.dev/v1alpha1`, `kind: Tenant`
//! or `kind: RolloutGroup`. Unknown fields are errors.

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// The only file format version this build reads and writes.
pub const API_VERSION: &str = "portalctl.dev/v1alpha1";
/// `kind` of a group file.
pub const KIND_GROUP: &str = "RolloutGroup";
/// `kind` of a tenant file.
pub const KIND_TENANT: &str = "Tenant";

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// The slug: a DNS label; for tenants it must equal the file name.
    pub name: S<String>,
}

/// `group.yaml`: a rollout group, its waves and the defaults its tenants inherit.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupFile {
    pub api_version: S<String>,
    pub kind: S<String>,
    pub metadata: Metadata,
    pub spec: GroupSpec,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupSpec {
    /// Human name of the group, e.g. "Serviceportale Kreis Heinsberg".
    pub display_name: String,
    /// The IT service provider that operates the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Waves in rollout order; the first is usually the pilot.
    pub waves: Vec<WaveSpec>,
    #[serde(default)]
    pub defaults: GroupDefaults,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaveSpec {
    pub name: S<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Values every tenant of the group inherits unless it sets its own.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupDefaults {
    /// Kubernetes namespace of the group (default: `portal-<group>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<S<String>>,
    /// kubeconfig context to deploy to (default: the current context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_context: Option<String>,
    /// Portal server image, pinned by tag or digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<S<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servicekonto: Option<ServicekontoSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<ThemeSpec>,
    /// Published services a tenant needs to count as content-ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Legal pages every tenant inherits (page by page, field by field) unless it sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal: Option<LegalSpec>,
}

/// `<tenant>.yaml`: one commune's (or district's) portal.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantFile {
    pub api_version: S<String>,
    pub kind: S<String>,
    pub metadata: Metadata,
    pub spec: TenantSpec,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantSpec {
    /// Official name, e.g. "Stadt Espelkamp".
    pub display_name: S<String>,
    /// Amtlicher Gemeindeschlüssel, 8 digits (a Kreis: its 5 digits + `000`). Required for every kind except
    /// `dachportal`, which stands for a region and has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ags: Option<S<String>>,
    pub kind: S<MunicipalityKind>,
    /// AGS of the Kreis (5 digits); a kreisfreie Stadt names itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<S<String>>,
    /// `dachportal` only: slugs of the group's tenants it links to (default: every other tenant of the group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<S<Vec<S<String>>>>,
    /// Rollout wave; must be one of the group's waves (default: the group's last wave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<S<String>>,
    /// Service hostnames; the first is canonical, the rest are aliases.
    pub hostnames: Vec<S<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<ThemeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servicekonto: Option<ServicekontoSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go_live: Option<GoLiveSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<LinksSpec>,
    /// Impressum, Datenschutzerklärung, Erklärung zur Barrierefreiheit, Leichte Sprache, DGS; merged over the
    /// group's `defaults.legal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal: Option<LegalSpec>,
    /// Published services needed for content-ready (overrides the group default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_threshold: Option<u32>,
    /// Kreis tasks this kreisangehörige Gemeinde or Stadt performs itself (e.g. `jugendamt`, `bauaufsicht` for a
    /// große kreisangehörige Stadt): the starter catalogue gives it those Kreis services as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_tasks: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MunicipalityKind {
    Gemeinde,
    Stadt,
    Kreis,
    KreisfreieStadt,
    /// A rollout group's regional umbrella portal ("Dachportal"): no AGS, no Kreis; it links to the group's
    /// local portals.
    Dachportal,
}

impl MunicipalityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MunicipalityKind::Gemeinde => "gemeinde",
            MunicipalityKind::Stadt => "stadt",
            MunicipalityKind::Kreis => "kreis",
            MunicipalityKind::KreisfreieStadt => "kreisfreie-stadt",
            MunicipalityKind::Dachportal => "dachportal",
        }
    }

    /// The regional umbrella portal of a group, the one kind without an AGS.
    pub fn is_dachportal(self) -> bool {
        self == MunicipalityKind::Dachportal
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Served by the group's shared portal-server Deployment.
    #[default]
    Shared,
    /// Its own Deployment (large cities).
    Dedicated,
}

/// Corporate design. Every field optional: unset fields come from the group, then the
/// built-in default theme.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ThemeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_color: Option<S<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_primary_color: Option<S<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_color: Option<S<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<S<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<S<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font: Option<String>,
}

/// The binding to the citizen account ("Servicekonto").
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicekontoSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<S<Provider>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Minimum trust level (Vertrauensniveau) for logging in; services may require more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_level: Option<TrustLevel>,
    /// SAML: where the IdP's metadata is published (given by the IdP operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_metadata_url: Option<S<String>>,
    /// OIDC: the issuer URL (discovery at `/.well-known/openid-configuration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<S<String>>,
    /// SAML: the SP entity ID of the binding's environment (default: `https://<hostname>/saml/metadata` in
    /// production, `https://<hostname>/saml/metadata/integration` in integration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<S<String>>,
    /// OIDC: the client ID registered with the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<S<String>>,
    /// Where the SP key / client secret is kept. Never the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<S<SecretRef>>,
    /// BundID: the online service's ID (`OnlineServiceId` of the request's `DisplayInformation`), if one was
    /// assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_service_id: Option<S<String>>,
    /// BundID: the attributes requested with each login (default: name, birthdate, address, e-mail, bPK2 and the
    /// trust level; see docs/servicekonto.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_attributes: Option<S<Vec<RequestedAttribute>>>,
    /// SAML: also accept AES-CBC encrypted assertions (XML Encryption 1.0). Off by default;
    /// only for an IdP that cannot send AES-GCM yet. Every such login is logged as a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_legacy_cbc: Option<S<bool>>,
    /// Rejected: secrets do not belong in tenant files.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<S<String>>,
    /// Rejected: secrets do not belong in tenant files.
    #[serde(default, skip_serializing)]
    pub private_key: Option<S<String>>,
}

/// One attribute a BundID login asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestedAttribute {
    pub name: CitizenAttribute,
    /// Whether BundID must deliver it (`RequiredAttribute`); default false.
    #[serde(default)]
    pub required: bool,
}

/// The citizen attributes BundID delivers, named as in the tenant file; [`CitizenAttribute::oid`] gives the SAML
/// attribute name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CitizenAttribute {
    GivenName,
    Surname,
    Birthdate,
    PostalAddress,
    PostalCode,
    Locality,
    Mail,
    #[serde(rename = "bpk2")]
    Bpk2,
    TrustLevel,
}

impl CitizenAttribute {
    pub const ALL: [CitizenAttribute; 9] = [
        CitizenAttribute::GivenName,
        CitizenAttribute::Surname,
        CitizenAttribute::Birthdate,
        CitizenAttribute::PostalAddress,
        CitizenAttribute::PostalCode,
        CitizenAttribute::Locality,
        CitizenAttribute::Mail,
        CitizenAttribute::Bpk2,
        CitizenAttribute::TrustLevel,
    ];

    /// The SAML attribute name (`urn:oid:…`) BundID uses.
    pub const fn oid(self) -> &'static str {
        match self {
            CitizenAttribute::GivenName => "urn:oid:2.5.4.42",
            CitizenAttribute::Surname => "urn:oid:2.5.4.4",
            CitizenAttribute::Birthdate => "urn:oid:1.2.40.0.10.2.1.1.55",
            CitizenAttribute::PostalAddress => "urn:oid:2.5.4.16",
            CitizenAttribute::PostalCode => "urn:oid:2.5.4.17",
            CitizenAttribute::Locality => "urn:oid:2.5.4.7",
            CitizenAttribute::Mail => "urn:oid:0.9.2342.19200300.100.1.3",
            CitizenAttribute::Bpk2 => "urn:oid:1.3.6.1.4.1.25484.494450.3",
            CitizenAttribute::TrustLevel => "urn:oid:1.2.40.0.10.2.1.1.261.94",
        }
    }

    /// The name in tenant files.
    pub fn as_str(self) -> &'static str {
        match self {
            CitizenAttribute::GivenName => "givenName",
            CitizenAttribute::Surname => "surname",
            CitizenAttribute::Birthdate => "birthdate",
            CitizenAttribute::PostalAddress => "postalAddress",
            CitizenAttribute::PostalCode => "postalCode",
            CitizenAttribute::Locality => "locality",
            CitizenAttribute::Mail => "mail",
            CitizenAttribute::Bpk2 => "bpk2",
            CitizenAttribute::TrustLevel => "trustLevel",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// The federal BundID (SAML 2.0). The login behind NRW's portals since July 2024.
    Bundid,
    /// Servicekonto.NRW (SAML 2.0), shut down in July 2024. Legacy bindings only.
    ServicekontoNrw,
    /// BayernID (SAML 2.0).
    Bayernid,
    /// Any other SAML 2.0 identity provider.
    Saml,
    /// Any OpenID Connect provider.
    Oidc,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Bundid => "bundid",
            Provider::ServicekontoNrw => "servicekonto-nrw",
            Provider::Bayernid => "bayernid",
            Provider::Saml => "saml",
            Provider::Oidc => "oidc",
        }
    }

    pub fn protocol(self) -> Protocol {
        match self {
            Provider::Oidc => Protocol::Oidc,
            _ => Protocol::Saml,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Saml,
    Oidc,
}

/// The IdP environment a binding logs in against. BundID registers each separately, with its own SP key pair and
/// entity ID: `integration` (https://int.id.bund.de/idp) for tests, `production` (https://id.bund.de/idp).
/// `test` and `live` are read as their former names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    #[serde(alias = "test")]
    Integration,
    #[serde(alias = "live")]
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Integration => "integration",
            Environment::Production => "production",
        }
    }
}

/// Vertrauensniveau, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    #[default]
    Basisregistrierung,
    Substantiell,
    Hoch,
}

/// A reference to a secret: exactly one of `env`, `file`, `secretKeyRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of an environment variable of the process that applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Path of a file (e.g. a mounted secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A Kubernetes Secret in the group's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretKeyRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// PostgreSQL schema of the tenant (default: `t_<slug>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<S<String>>,
    /// Rejected: the role's password is generated by `db provision`.
    #[serde(default, skip_serializing)]
    pub password: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GoLiveSpec {
    /// Planned go-live date, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_date: Option<S<String>>,
    /// The portal is published ("online"): the last rung of the go-live ladder.
    #[serde(default)]
    pub published: bool,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinksSpec {
    /// The commune's own website. (Impressum, Datenschutz and Barrierefreiheit are legal pages: `spec.legal`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
}

/// A value written into a file as a stand-in until the real one is known (scaffolding writes them for everything
/// the official data does not say). A placeholder blocks publishing.
pub const PLACEHOLDER_PREFIX: &str = "TODO:";

/// Whether `value` is a placeholder ([`PLACEHOLDER_PREFIX`]).
pub fn is_placeholder(value: &str) -> bool {
    value.trim_start().starts_with(PLACEHOLDER_PREFIX)
}

/// The legal pages of a portal (group default `spec.defaults.legal`, tenant `spec.legal`). Every page is either
/// content served by the portal itself (its fields) or an external page (`url`); a tenant's page replaces the
/// group's when it sets `url`, and otherwise is merged over it field by field. The same shape is the resolved value.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegalSpec {
    /// Impressum (§ 5 DDG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imprint: Option<ImprintSpec>,
    /// Datenschutzerklärung (Art. 13 DSGVO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacySpec>,
    /// Erklärung zur Barrierefreiheit (model of EU Implementing Decision 2018/1523).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessibility: Option<AccessibilitySpec>,
    /// Entry page in Leichte Sprache (§ 4 BITV 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub easy_language: Option<EntryPageSpec>,
    /// Entry page in Deutscher Gebärdensprache (§ 4 BITV 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_language: Option<EntryPageSpec>,
}

/// Impressum: who is responsible for the portal.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImprintSpec {
    /// An external Impressum instead of the portal's own page (https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The responsible authority, e.g. "Stadt Erkelenz".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Postal address (lines separated by newlines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Who represents the authority (e.g. the mayor), with the office.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub representative: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Umsatzsteuer-Identifikationsnummer, where the authority has one (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_id: Option<String>,
    /// Another identifier of the authority, e.g. its Behördennummer (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_id: Option<String>,
}

/// Datenschutzerklärung.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrivacySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The controller (Verantwortlicher) with address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// How to reach the data protection officer (Datenschutzbeauftragte/r).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_protection_officer: Option<String>,
    /// The statement as one text (paragraphs separated by blank lines) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// … or in sections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sections: Option<Vec<SectionSpec>>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SectionSpec {
    pub heading: String,
    pub text: String,
}

/// Erklärung zur Barrierefreiheit, structured like the model statement of EU Implementing Decision 2018/1523.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessibilitySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Date the statement was made or last reviewed, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Compliance status with BITV 2.0 / EN 301 549.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ComplianceStatus>,
    /// Content that is not accessible, and why (required unless the status is `full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barriers: Option<Vec<String>>,
    /// The feedback mechanism: where to report barriers (e-mail address, phone, postal address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_contact: Option<String>,
    /// The enforcement procedure (Schlichtungsstelle / Ombudsstelle), https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement_url: Option<String>,
}

/// How far the portal meets the accessibility requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComplianceStatus {
    /// vollständig vereinbar
    Full,
    /// teilweise vereinbar
    Partial,
    /// nicht vereinbar
    None,
}

impl ComplianceStatus {
    /// The wording of the model statement.
    pub fn german(self) -> &'static str {
        match self {
            ComplianceStatus::Full => "vollständig vereinbar",
            ComplianceStatus::Partial => "teilweise vereinbar",
            ComplianceStatus::None => "nicht vereinbar",
        }
    }
}

/// An entry page in Leichte Sprache or Deutscher Gebärdensprache.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPageSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The page's text (paragraphs separated by blank lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A video (https), e.g. the DGS video; required for the DGS page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_url: Option<String>,
}
