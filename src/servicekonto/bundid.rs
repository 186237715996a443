//! The BundID profile of a SAML binding (`provider: bundid`): BundID's two environments, the
//! `akdb:AuthenticationRequest` extension of the AuthnRequest (requested attributes by OID and
//! the display information), and the citizen attributes of its assertions. Pure.
//!
//! | environment   | IdP entity ID                | SSO                                          |
//! |---------------|------------------------------|----------------------------------------------|
//! | `integration` | `https://int.id.bund.de/idp` | `https://int.id.bund.de/idp/profile/SAML2/POST/SSO` |
//! | `production`  | `https://id.bund.de/idp`     | `https://id.bund.de/idp/profile/SAML2/POST/SSO`     |
//!
//! Each environment is a registration of its own: its own SP key pair
//! ([`super::keys::KeyPaths::current`]) and its own SP entity ID
//! ([`super::metadata::default_entity_id`]).

use super::xml::escape;
use crate::tenant::{Binding, CitizenAttribute, Environment, Provider, RequestedAttribute};
use std::borrow::Cow;

/// Namespace of BundID's (AKDB's) request extension.
pub const AKDB_NS: &str = "https://www.akdb.de/request/2018/09";
/// Namespace of the `DisplayInformation` content (classic UI, version 1).
pub const CLASSIC_UI_NS: &str = "https://www.akdb.de/request/2018/09/classic-ui/v1";
/// Path of BundID's single sign-on service below the host.
pub const SSO_PATH: &str = "/idp/profile/SAML2/POST/SSO";

/// BundID's IdP entity ID in an environment.
pub fn idp_entity_id(env: Environment) -> &'static str {
    match env {
        Environment::Integration => "https://int.id.bund.de/idp",
        Environment::Production => "https://id.bund.de/idp",
    }
}

/// BundID's SSO endpoint in an environment.
pub fn sso_url(env: Environment) -> String {
    let entity = idp_entity_id(env);
    let host = entity.trim_end_matches("/idp");
    format!("{host}{SSO_PATH}")
}

fn bundid_host(env: Environment) -> &'static str {
    match env {
        Environment::Integration => "int.id.bund.de",
        Environment::Production => "id.bund.de",
    }
}

/// If `url` (an IdP metadata URL) is on BundID's host of the *other* environment than `env`,
/// that environment: a binding that would log citizens in against the wrong registration.
pub fn other_environment_of_url(url: &str, env: Environment) -> Option<Environment> {
    let host = url::Url::parse(url).ok()?.host_str()?.to_ascii_lowercase();
    [Environment::Integration, Environment::Production].into_iter().find(|e| *e != env && host == bundid_host(*e))
}

/// The attributes a BundID login asks for unless the tenant lists its own: name, birthdate,
/// postal address, e-mail, bPK2 and the trust level; the name, bPK2 and trust level required.
pub fn default_requested_attributes() -> Vec<RequestedAttribute> {
    use CitizenAttribute::*;
    [
        (GivenName, true),
        (Surname, true),
        (Birthdate, false),
        (PostalAddress, false),
        (PostalCode, false),
        (Locality, false),
        (Mail, false),
        (Bpk2, true),
        (TrustLevel, true),
    ]
    .into_iter()
    .map(|(name, required)| RequestedAttribute { name, required })
    .collect()
}

/// What the extension of one AuthnRequest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestExtension<'a> {
    pub attributes: Cow<'a, [RequestedAttribute]>,
    /// Shown by BundID before it returns the citizen (the tenant's display name).
    pub organization_display_name: &'a str,
    pub online_service_id: Option<&'a str>,
}

impl<'a> RequestExtension<'a> {
    /// The extension of a binding, if it follows the BundID profile.
    pub fn of(binding: &'a Binding, organization_display_name: &'a str) -> Option<RequestExtension<'a>> {
        (binding.provider == Provider::Bundid).then(|| RequestExtension {
            attributes: match binding.requested_attributes.as_slice() {
                [] => Cow::Owned(default_requested_attributes()),
                listed => Cow::Borrowed(listed),
            },
            organization_display_name,
            online_service_id: binding.online_service_id.as_deref(),
        })
    }

    /// `<samlp:Extensions>` with the `akdb:AuthenticationRequest` (the `samlp` prefix must be
    /// bound to the protocol namespace where it is inserted).
    pub fn to_xml(&self) -> String {
        let mut x = format!(r#"<samlp:Extensions><akdb:AuthenticationRequest xmlns:akdb="{AKDB_NS}" Version="2">"#);
        if !self.attributes.is_empty() {
            x.push_str("<akdb:RequestedAttributes>");
            for a in self.attributes.iter() {
                x.push_str(&format!(
                    r#"<akdb:RequestedAttribute Name="{}" RequiredAttribute="{}"/>"#,
                    a.name.oid(),
                    a.required
                ));
            }
            x.push_str("</akdb:RequestedAttributes>");
        }
        x.push_str(&format!(
            r#"<akdb:DisplayInformation><classic-ui:Version xmlns:classic-ui="{CLASSIC_UI_NS}"><classic-ui:OrganizationDisplayName>{}</classic-ui:OrganizationDisplayName>"#,
            escape(self.organization_display_name)
        ));
        if let Some(id) = self.online_service_id {
            x.push_str(&format!("<classic-ui:OnlineServiceId>{}</classic-ui:OnlineServiceId>", escape(id)));
        }
        x.push_str("</classic-ui:Version></akdb:DisplayInformation></akdb:AuthenticationRequest></samlp:Extensions>");
        x
    }
}

/// The citizen attributes of an assertion, by OID. Personal data: never logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CitizenAttributes {
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// As BundID sends it (`YYYY-MM-DD`).
    pub birthdate: Option<String>,
    pub postal_address: Option<String>,
    pub postal_code: Option<String>,
    pub locality: Option<String>,
    pub mail: Option<String>,
    /// The sector-specific identifier (bereichsspezifisches Personenkennzeichen).
    pub bpk2: Option<String>,
}

impl std::fmt::Debug for CitizenAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CitizenAttributes").field("present", &self.present()).finish_non_exhaustive()
    }
}

impl CitizenAttributes {
    /// Collect the attributes from `(name, value)` pairs of an assertion (first value wins).
    /// Besides the OIDs, the friendly names `givenName`, `surname`/`sn` are understood.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> CitizenAttributes {
        let mut a = CitizenAttributes::default();
        for (name, value) in pairs {
            let slot = match name {
                n if n == CitizenAttribute::GivenName.oid() || n == "givenName" => &mut a.given_name,
                n if n == CitizenAttribute::Surname.oid() || n == "surname" || n == "sn" => &mut a.surname,
                n if n == CitizenAttribute::Birthdate.oid() => &mut a.birthdate,
                n if n == CitizenAttribute::PostalAddress.oid() => &mut a.postal_address,
                n if n == CitizenAttribute::PostalCode.oid() => &mut a.postal_code,
                n if n == CitizenAttribute::Locality.oid() => &mut a.locality,
                n if n == CitizenAttribute::Mail.oid() => &mut a.mail,
                n if n == CitizenAttribute::Bpk2.oid() => &mut a.bpk2,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.to_string());
            }
        }
        a
    }

    /// The names (as in tenant files) of the attributes present, never their values.
    pub fn present(&self) -> Vec<&'static str> {
        use CitizenAttribute::*;
        [
            (GivenName, &self.given_name),
            (Surname, &self.surname),
            (Birthdate, &self.birthdate),
            (PostalAddress, &self.postal_address),
            (PostalCode, &self.postal_code),
            (Locality, &self.locality),
            (Mail, &self.mail),
            (Bpk2, &self.bpk2),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| n.as_str())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servicekonto::xml::{self, Limits};

    #[test]
    fn environments_choose_the_idp() {
        assert_eq!(sso_url(Environment::Integration), "https://int.id.bund.de/idp/profile/SAML2/POST/SSO");
        assert_eq!(sso_url(Environment::Production), "https://id.bund.de/idp/profile/SAML2/POST/SSO");
        let prod = "https://id.bund.de/idp/shibboleth";
        assert_eq!(other_environment_of_url(prod, Environment::Integration), Some(Environment::Production));
        assert_eq!(other_environment_of_url(prod, Environment::Production), None);
        assert_eq!(
            other_environment_of_url("https://int.id.bund.de/idp/shibboleth", Environment::Production),
            Some(Environment::Integration)
        );
        assert_eq!(other_environment_of_url("http://127.0.0.1:8080/metadata", Environment::Production), None);
    }

    #[test]
    fn the_extension_lists_attributes_by_oid_and_the_display_information() {
        let attrs = default_requested_attributes();
        let ext = RequestExtension {
            attributes: Cow::Borrowed(&attrs),
            organization_display_name: "Stadt Detmold <Bürgerbüro> & Co",
            online_service_id: Some("DE-NW-4711"),
        };
        let wrapped =
            format!(r#"<samlp:R xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">{}</samlp:R>"#, ext.to_xml());
        let doc = xml::parse(&wrapped, &Limits::SAML).unwrap();
        let req = doc.root().descendants(AKDB_NS, "AuthenticationRequest");
        assert_eq!(req.len(), 1);
        assert_eq!(req[0].attr("Version"), Some("2"));
        let listed: Vec<(String, String)> = req[0]
            .descendants(AKDB_NS, "RequestedAttribute")
            .iter()
            .map(|a| (a.attr("Name").unwrap().to_string(), a.attr("RequiredAttribute").unwrap().to_string()))
            .collect();
        assert_eq!(listed.len(), 9);
        assert!(listed.contains(&("urn:oid:1.3.6.1.4.1.25484.494450.3".into(), "true".into())));
        assert!(listed.contains(&("urn:oid:1.2.40.0.10.2.1.1.55".into(), "false".into())));
        let name = doc.root().descendants(CLASSIC_UI_NS, "OrganizationDisplayName");
        assert_eq!(name[0].text(), "Stadt Detmold <Bürgerbüro> & Co");
        assert_eq!(doc.root().descendants(CLASSIC_UI_NS, "OnlineServiceId")[0].text(), "DE-NW-4711");
    }

    #[test]
    fn attributes_map_by_oid_and_debug_shows_no_values() {
        let a = CitizenAttributes::from_pairs([
            ("urn:oid:2.5.4.42", "Erika"),
            ("urn:oid:2.5.4.4", "Mustermann"),
            ("urn:oid:1.2.40.0.10.2.1.1.55", "1964-08-12"),
            ("urn:oid:2.5.4.16", "Heidestraße 17"),
            ("urn:oid:2.5.4.17", "51147"),
            ("urn:oid:2.5.4.7", "Köln"),
            ("urn:oid:0.9.2342.19200300.100.1.3", "erika@example.org"),
            ("urn:oid:1.3.6.1.4.1.25484.494450.3", "bpk2-secret"),
            ("urn:oid:2.5.4.42", "Second"),
        ]);
        assert_eq!(a.given_name.as_deref(), Some("Erika"));
        assert_eq!(a.birthdate.as_deref(), Some("1964-08-12"));
        assert_eq!(a.locality.as_deref(), Some("Köln"));
        assert_eq!(a.bpk2.as_deref(), Some("bpk2-secret"));
        assert_eq!(a.present().len(), 8);
        let shown = format!("{a:?}");
        assert!(!shown.contains("Erika") && !shown.contains("bpk2-secret") && !shown.contains("1964"), "{shown}");
    }
}
