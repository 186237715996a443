//! SAML metadata: our SP metadata (rendered from `templates/servicekonto/sp-metadata.xml`)
//! for the IdP operator, and the parts of an IdP's metadata we need (entity ID, SSO and SLO
//! endpoints, signing certificates). Pure: no IO.

use super::keys::SpKeys;
use super::xml::{self, escape, Limits};
use super::{Error, Result};
use crate::tenant::{Environment, Tenant};
use base64::Engine as _;
use time::OffsetDateTime;

pub const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

const SP_TEMPLATE: &str = include_str!("../../templates/servicekonto/sp-metadata.xml");

/// Path of the assertion consumer service on the tenant's host.
pub const ACS_PATH: &str = "/anmelden/saml/acs";
/// Path of the OIDC redirect URI on the tenant's host.
pub const OIDC_CALLBACK_PATH: &str = "/anmelden/oidc/callback";

/// What SP metadata is rendered from.
#[derive(Debug)]
pub struct SpMetadataParams<'a> {
    pub entity_id: std::borrow::Cow<'a, str>,
    /// `https://<canonical hostname>` (no trailing slash).
    pub base_url: &'a str,
    pub organization: &'a str,
    pub keys: &'a SpKeys,
}

impl<'a> SpMetadataParams<'a> {
    /// The parameters of a tenant's SAML binding on its canonical hostname, for the binding's
    /// environment.
    pub fn for_tenant(tenant: &'a Tenant, base_url: &'a str, keys: &'a SpKeys) -> Result<SpMetadataParams<'a>> {
        let entity_id = tenant
            .servicekonto
            .as_ref()
            .and_then(|b| b.entity_id.as_deref())
            .ok_or_else(|| Error::NotSaml { tenant: tenant.slug.clone() })?;
        Ok(SpMetadataParams {
            entity_id: std::borrow::Cow::Borrowed(entity_id),
            base_url,
            organization: &tenant.display_name,
            keys,
        })
    }

    /// The parameters for one environment's registration: the binding's entity ID in its own
    /// environment, the default entity ID of `env` in the other one (each registration has its own).
    pub fn for_environment(
        tenant: &'a Tenant,
        env: Environment,
        base_url: &'a str,
        keys: &'a SpKeys,
    ) -> Result<SpMetadataParams<'a>> {
        let mut p = SpMetadataParams::for_tenant(tenant, base_url, keys)?;
        if tenant.servicekonto.as_ref().is_some_and(|b| b.environment != env) {
            p.entity_id = std::borrow::Cow::Owned(default_entity_id(tenant.primary_hostname(), env));
        }
        Ok(p)
    }
}

/// The SP entity ID of a tenant's registration in `env` unless the file names one:
/// `https://<host>/saml/metadata` in production, `https://<host>/saml/metadata/integration` in integration.
pub fn default_entity_id(host: &str, env: Environment) -> String {
    match env {
        Environment::Production => format!("https://{host}/saml/metadata"),
        Environment::Integration => format!("https://{host}/saml/metadata/{}", env.as_str()),
    }
}

/// `https://<canonical hostname>` of a tenant.
pub fn canonical_base_url(tenant: &Tenant) -> String {
    format!("https://{}", tenant.primary_hostname())
}

/// Render SP metadata XML.
pub fn sp_metadata(p: &SpMetadataParams<'_>) -> Result<String> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_template("sp-metadata.xml", SP_TEMPLATE).map_err(|e| Error::Template(e.to_string()))?;
    let mut cx = tera::Context::new();
    cx.insert("entity_id", &escape(&p.entity_id));
    cx.insert("base_url", &escape(p.base_url));
    cx.insert("organization", &escape(p.organization));
    cx.insert("certificate", &p.keys.cert_base64());
    tera.render("sp-metadata.xml", &cx).map_err(|e| Error::Template(e.to_string()))
}

/// What we use of an IdP's SAML metadata.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// SingleSignOnService location for the HTTP-Redirect binding, if the IdP offers it.
    pub sso_redirect: Option<String>,
    /// SingleSignOnService location for the HTTP-POST binding, if the IdP offers it.
    pub sso_post: Option<String>,
    /// SingleLogoutService location for the HTTP-Redirect binding, if any.
    pub slo_redirect: Option<String>,
    /// DER of each signing certificate (KeyDescriptor use="signing" or without use).
    pub signing_certs: Vec<Vec<u8>>,
}

/// Parse IdP metadata: an `EntityDescriptor` with an `IDPSSODescriptor`, or an
/// `EntitiesDescriptor` whose first such entity is taken.
pub fn parse_idp_metadata(text: &str) -> Result<IdpMetadata> {
    let doc = xml::parse(text, &Limits::METADATA).map_err(|e| Error::Metadata(e.to_string()))?;
    let root = doc.root();
    let entity = if root.is(MD_NS, "EntityDescriptor") {
        root
    } else if root.is(MD_NS, "EntitiesDescriptor") {
        root.descendants(MD_NS, "EntityDescriptor")
            .into_iter()
            .find(|e| e.child(MD_NS, "IDPSSODescriptor").is_some())
            .ok_or_else(|| Error::Metadata("no EntityDescriptor with an IDPSSODescriptor".into()))?
    } else {
        return Err(Error::Metadata(format!("root element is {:?}, not md:EntityDescriptor", root.local())));
    };
    let entity_id =
        entity.attr("entityID").ok_or_else(|| Error::Metadata("EntityDescriptor has no entityID".into()))?.to_string();
    let idp = entity
        .child(MD_NS, "IDPSSODescriptor")
        .ok_or_else(|| Error::Metadata(format!("{entity_id}: no IDPSSODescriptor")))?;
    let endpoint = |name: &str, binding: &str| {
        idp.children_named(MD_NS, name)
            .find(|s| s.attr("Binding") == Some(binding))
            .and_then(|s| s.attr("Location"))
            .map(str::to_string)
    };
    let sso_redirect = endpoint("SingleSignOnService", REDIRECT_BINDING);
    let sso_post = endpoint("SingleSignOnService", POST_BINDING);
    if sso_redirect.is_none() && sso_post.is_none() {
        return Err(Error::Metadata(format!("{entity_id}: no SingleSignOnService for HTTP-Redirect or HTTP-POST")));
    }
    let slo_redirect = endpoint("SingleLogoutService", REDIRECT_BINDING);
    let mut signing_certs = Vec::new();
    for kd in idp.children_named(MD_NS, "KeyDescriptor") {
        if kd.attr("use").is_some_and(|u| u != "signing") {
            continue;
        }
        for c in kd.descendants(super::xmldsig::DSIG_NS, "X509Certificate") {
            let b64: String = c.text().chars().filter(|c| !c.is_whitespace()).collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| Error::Metadata(format!("{entity_id}: X509Certificate is not base64")))?;
            signing_certs.push(der);
        }
    }
    if signing_certs.is_empty() {
        return Err(Error::Metadata(format!("{entity_id}: no signing certificate")));
    }
    Ok(IdpMetadata { entity_id, sso_redirect, sso_post, slo_redirect, signing_certs })
}

/// How an AuthnRequest travels to the IdP (SAML bindings §3.4, §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoBinding {
    /// DEFLATE + base64 in the query, signed over the query string.
    Redirect,
    /// base64 in a form field the browser posts, with an enveloped XML signature.
    Post,
}

impl IdpMetadata {
    /// Where and how to send an AuthnRequest. With `prefer_post` (the BundID profile, whose documented
    /// endpoint is `…/SAML2/POST/SSO`) the HTTP-POST endpoint when the metadata has one; otherwise the
    /// HTTP-Redirect endpoint when it has one. Either way the other binding when only that one is offered.
    pub fn sso_endpoint(&self, prefer_post: bool) -> Option<(SsoBinding, &str)> {
        let post = self.sso_post.as_deref().map(|l| (SsoBinding::Post, l));
        let redirect = self.sso_redirect.as_deref().map(|l| (SsoBinding::Redirect, l));
        if prefer_post {
            post.or(redirect)
        } else {
            redirect.or(post)
        }
    }
}

/// Facts about one certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub subject: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Parse a DER certificate's subject and validity.
pub fn cert_info(der: &[u8]) -> Result<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| Error::Certificate(e.to_string()))?;
    let validity = cert.validity();
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
    })
}

/// The RSA public key of a DER certificate.
pub fn cert_rsa_key(der: &[u8]) -> Result<rsa::RsaPublicKey> {
    use rsa::pkcs8::DecodePublicKey as _;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| Error::Certificate(e.to_string()))?;
    rsa::RsaPublicKey::from_public_key_der(cert.public_key().raw)
        .map_err(|e| Error::Certificate(format!("not an RSA key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data><ds:X509Certificate>MIIB</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>";

    fn idp_md(services: &[(&str, &str)]) -> String {
        let sso: String = services
            .iter()
            .map(|(b, l)| {
                format!(
                    r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:{b}" Location="{l}"/>"#
                )
            })
            .collect();
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example">
          <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{CERT}{sso}</md:IDPSSODescriptor></md:EntityDescriptor>"#
        )
    }

    #[test]
    fn idp_metadata_needs_a_single_sign_on_endpoint_and_a_certificate() {
        let err = parse_idp_metadata(&idp_md(&[("SOAP", "https://idp.example/soap")])).unwrap_err().to_string();
        assert!(err.contains("no SingleSignOnService for HTTP-Redirect or HTTP-POST"), "{err}");
        let no_cert = idp_md(&[("HTTP-POST", "https://idp.example/post")]).replace(CERT, "");
        assert!(parse_idp_metadata(&no_cert).unwrap_err().to_string().contains("no signing certificate"));
        assert!(parse_idp_metadata("<x/>").unwrap_err().to_string().contains("not md:EntityDescriptor"));
    }

    /// The BundID profile posts; other SAML IdPs get a redirect when they offer one. An IdP that
    /// offers only one binding gets that one, and a POST-only IdP is no longer refused.
    #[test]
    fn the_sso_binding_follows_the_profile_and_what_the_idp_offers() {
        let both = parse_idp_metadata(&idp_md(&[
            ("HTTP-Redirect", "https://idp.example/redirect"),
            ("HTTP-POST", "https://idp.example/post"),
        ]))
        .unwrap();
        assert_eq!(both.sso_endpoint(true), Some((SsoBinding::Post, "https://idp.example/post")));
        assert_eq!(both.sso_endpoint(false), Some((SsoBinding::Redirect, "https://idp.example/redirect")));
        let post_only = parse_idp_metadata(&idp_md(&[("HTTP-POST", "https://idp.example/post")])).unwrap();
        assert_eq!(post_only.sso_redirect, None);
        assert_eq!(post_only.sso_endpoint(false), Some((SsoBinding::Post, "https://idp.example/post")));
        let redirect_only = parse_idp_metadata(&idp_md(&[("HTTP-Redirect", "https://idp.example/r")])).unwrap();
        assert_eq!(redirect_only.sso_endpoint(true), Some((SsoBinding::Redirect, "https://idp.example/r")));
    }
}
