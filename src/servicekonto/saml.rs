//! SAML 2.0 Web SSO, SP side: the signed AuthnRequest for the HTTP-Redirect binding
//! ([`redirect_url`]) or the HTTP-POST binding ([`post_form`]), and the validation of the
//! Response that comes back through HTTP-POST. Pure apart from the clock value passed in.
//!
//! The Response is unauthenticated input until its signature is checked. [`validate_response`]
//! parses it with the bounded parser ([`xml::Limits::SAML`]); [`Verifier::validate`] runs it on
//! the blocking thread pool behind a concurrency bound, so that neither parsing nor RSA work
//! occupies the async worker threads, and fails fast ([`SamlError::Busy`]) instead of queueing
//! without end when the bound stays exhausted.

use super::bundid::{CitizenAttributes, RequestExtension};
use super::keys::SpKeys;
use super::metadata::{cert_rsa_key, IdpMetadata};
use super::trust;
use super::xml::{self, escape, Element, Limits};
use super::xmldsig::{self, SignatureError};
use super::xmlenc::{self, DecryptError};
use crate::tenant::TrustLevel;
use base64::Engine as _;
use std::io::Write as _;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

pub const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// Largest SAMLResponse (base64) accepted.
pub const MAX_RESPONSE_LEN: usize = 512 * 1024;

/// Why a SAML response was rejected. Shown to the citizen only generically.
#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    #[error("SAMLResponse is not base64 or too large")]
    Encoding,
    #[error("SAMLResponse is not valid XML: {0}")]
    Xml(#[from] xml::XmlError),
    #[error("not a samlp:Response")]
    NotAResponse,
    #[error("the IdP reports status {0}")]
    Status(String),
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("neither the response nor the assertion is signed")]
    Unsigned,
    #[error("the response must hold exactly one assertion")]
    AssertionCount,
    #[error("encrypted assertion: {0}")]
    Decrypt(#[from] DecryptError),
    #[error("{field} is {found:?}, expected {expected:?}")]
    Mismatch { field: &'static str, expected: String, found: String },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("the assertion is not valid yet ({0})")]
    NotYetValid(String),
    #[error("the assertion has expired ({0})")]
    Expired(String),
    #[error("bad timestamp {0:?}")]
    Time(String),
    #[error("the IdP's signing certificate is unusable: {0}")]
    Certificate(String),
    #[error("the assertion states no known trust level")]
    NoTrustLevel,
    #[error("too many SAML responses are being verified; try again")]
    Busy,
    #[error("the verification failed unexpectedly: {0}")]
    Internal(String),
}

impl SamlError {
    /// Whether the request itself is unusable (not base64, not well-formed, over a limit, not a
    /// Response): a client error rather than a rejected login.
    pub fn is_malformed(&self) -> bool {
        matches!(self, SamlError::Encoding | SamlError::Xml(_) | SamlError::NotAResponse)
    }
}

/// An AuthnRequest ready to be sent: its ID (kept for InResponseTo) and the redirect URL.
#[derive(Debug, Clone)]
pub struct AuthnRequest {
    pub id: String,
    pub url: String,
}

/// The longest RelayState a binding may carry, in bytes (SAML bindings §3.4.3, §3.5.3).
pub const RELAY_STATE_MAX: usize = 80;

/// What an AuthnRequest is made of.
#[derive(Debug)]
pub struct AuthnRequestParams<'a> {
    pub id: &'a str,
    pub entity_id: &'a str,
    pub acs_url: &'a str,
    pub destination: &'a str,
    pub min_level: TrustLevel,
    /// BundID's `akdb:AuthenticationRequest` extension (bindings with `provider: bundid`).
    pub extension: Option<RequestExtension<'a>>,
    pub relay_state: Option<&'a str>,
    pub now: OffsetDateTime,
}

/// The AuthnRequest XML.
pub fn authn_request_xml(p: &AuthnRequestParams<'_>) -> String {
    authn_request_xml_with(p, "")
}

/// Where the enveloped signature of a POSTed AuthnRequest goes: right after `saml:Issuer`, as
/// the schema orders it (Issuer, Signature, Extensions, …). Every value before it is escaped,
/// so the first occurrence is this slot.
const SIGNATURE_SLOT: &str = "<!--signature-->";

/// The AuthnRequest XML with `after_issuer` (markup) right after the `saml:Issuer`.
fn authn_request_xml_with(p: &AuthnRequestParams<'_>, after_issuer: &str) -> String {
    format!(
        concat!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion""#,
            r#" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" AssertionConsumerServiceURL="{acs}""#,
            r#" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>{after_issuer}{extensions}"#,
            r#"<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/>"#,
            r#"<samlp:RequestedAuthnContext Comparison="minimum"><saml:AuthnContextClassRef>{level}</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>"#,
            r#"</samlp:AuthnRequest>"#
        ),
        id = escape(p.id),
        now = timestamp(p.now),
        dest = escape(p.destination),
        acs = escape(p.acs_url),
        issuer = escape(p.entity_id),
        extensions = p.extension.as_ref().map(RequestExtension::to_xml).unwrap_or_default(),
        level = trust::requested_value(p.min_level),
        after_issuer = after_issuer,
    )
}

/// Build the HTTP-Redirect URL: DEFLATE + base64 + URL-encode the request, and sign
/// `SAMLRequest=…&RelayState=…&SigAlg=…` with RSA-SHA256 (SAML bindings §3.4.4.1).
pub fn redirect_url(p: &AuthnRequestParams<'_>, keys: &SpKeys) -> Result<AuthnRequest, super::Error> {
    let xml = authn_request_xml(p);
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(xml.as_bytes()).map_err(|e| super::Error::Crypto(e.to_string()))?;
    let deflated = enc.finish().map_err(|e| super::Error::Crypto(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(deflated);
    let mut query = format!("SAMLRequest={}", urlencode(&b64));
    if let Some(rs) = p.relay_state {
        query.push_str(&format!("&RelayState={}", urlencode(rs)));
    }
    query.push_str(&format!("&SigAlg={}", urlencode(xmldsig::RSA_SHA256)));
    let sig = xmldsig::sign_rsa_sha256(&keys.private_key, query.as_bytes())?;
    query.push_str(&format!("&Signature={}", urlencode(&base64::engine::general_purpose::STANDARD.encode(sig))));
    let sep = if p.destination.contains('?') { '&' } else { '?' };
    Ok(AuthnRequest { id: p.id.to_string(), url: format!("{}{sep}{query}", p.destination) })
}

/// An AuthnRequest for the HTTP-POST binding (SAML bindings §3.5): the form the browser posts to
/// the IdP's HTTP-POST single sign-on location.
#[derive(Debug, Clone)]
pub struct PostForm {
    /// The request's ID (kept for InResponseTo).
    pub id: String,
    /// The form's target: the IdP's HTTP-POST SingleSignOnService location.
    pub action: String,
    /// The form field `SAMLRequest`: the signed AuthnRequest, base64 (not deflated).
    pub saml_request: String,
    /// The form field `RelayState`, if any (not covered by the signature in this binding).
    pub relay_state: Option<String>,
}

/// Build the HTTP-POST form: the AuthnRequest with an enveloped XML signature (exclusive c14n,
/// RSA-SHA256, SHA-256 digest; [`xmldsig::sign_enveloped`]) right after its `Issuer`, base64.
pub fn post_form(p: &AuthnRequestParams<'_>, keys: &SpKeys) -> Result<PostForm, super::Error> {
    let unsigned = authn_request_xml_with(p, SIGNATURE_SLOT);
    let signed = xmldsig::sign_enveloped(&unsigned, p.id, SIGNATURE_SLOT, &keys.private_key)?;
    Ok(PostForm {
        id: p.id.to_string(),
        action: p.destination.to_string(),
        saml_request: base64::engine::general_purpose::STANDARD.encode(signed),
        relay_state: p.relay_state.map(str::to_string),
    })
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// SAML timestamp (UTC, seconds).
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// What a response is checked against.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub entity_id: String,
    pub acs_url: String,
    pub request_id: String,
    pub idp: Arc<IdpMetadata>,
    /// Our SP private key, to decrypt an `EncryptedAssertion`.
    pub sp_key: Option<rsa::RsaPrivateKey>,
    /// Accept AES-CBC encrypted assertions (the tenant's `allowLegacyCbc`).
    pub allow_legacy_cbc: bool,
    pub now: OffsetDateTime,
    pub skew: Duration,
}

/// The citizen as the IdP asserted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    /// The attributes by OID (BundID's names; other IdPs' friendly names for the name).
    pub attributes: CitizenAttributes,
    pub trust_level: TrustLevel,
}

/// The XML of a `SAMLResponse` form value (base64, at most [`MAX_RESPONSE_LEN`]).
pub fn decode_response(saml_response: &str) -> Result<String, SamlError> {
    if saml_response.len() > MAX_RESPONSE_LEN {
        return Err(SamlError::Encoding);
    }
    let clean: String = saml_response.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(clean).map_err(|_| SamlError::Encoding)?;
    String::from_utf8(bytes).map_err(|_| SamlError::Encoding)
}

/// Decode and validate a `SAMLResponse` form value. CPU-bound (parsing, canonicalization, RSA):
/// call it through [`Verifier::validate`] from async code.
pub fn validate_response(saml_response: &str, ex: &Expectations) -> Result<Identity, SamlError> {
    let text = decode_response(saml_response)?;
    let doc = xml::parse(&text, &Limits::SAML)?;
    validate_document(doc.root(), ex)
}

/// Runs [`validate_response`] on the blocking thread pool, at most `concurrency` at a time.
#[derive(Debug)]
pub struct Verifier {
    permits: Arc<tokio::sync::Semaphore>,
    max_wait: std::time::Duration,
}

impl Verifier {
    /// A verifier running at most `concurrency` validations at once; a call that cannot start
    /// within `max_wait` fails with [`SamlError::Busy`].
    pub fn new(concurrency: usize, max_wait: std::time::Duration) -> Verifier {
        Verifier { permits: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))), max_wait }
    }

    /// The process-wide verifier: one validation per CPU, waiting at most 2 s for a turn.
    pub fn global() -> &'static Verifier {
        static GLOBAL: std::sync::OnceLock<Verifier> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(|| {
            let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
            Verifier::new(cpus, std::time::Duration::from_secs(2))
        })
    }

    /// A turn to validate: waits at most `max_wait` for a free slot, else [`SamlError::Busy`].
    /// The slot is held until the returned permit is dropped.
    pub async fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, SamlError> {
        tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| SamlError::Busy)?
            .map_err(|_| SamlError::Busy)
    }

    /// Validate off the async worker threads.
    pub async fn validate(&self, saml_response: String, ex: Expectations) -> Result<Identity, SamlError> {
        let permit = self.admit().await?;
        tokio::task::spawn_blocking(move || {
            let result = validate_response(&saml_response, &ex);
            drop(permit);
            result
        })
        .await
        .map_err(|e| SamlError::Internal(e.to_string()))?
    }
}

fn validate_document(root: Element<'_>, ex: &Expectations) -> Result<Identity, SamlError> {
    if !root.is(PROTOCOL_NS, "Response") {
        return Err(SamlError::NotAResponse);
    }
    let keys: Vec<rsa::RsaPublicKey> = ex
        .idp
        .signing_certs
        .iter()
        .map(|c| cert_rsa_key(c).map_err(|e| SamlError::Certificate(e.to_string())))
        .collect::<Result<_, _>>()?;
    let response_signed = xmldsig::is_signed(root);
    if response_signed {
        xmldsig::verify(root, &keys)?;
    }
    let status = root
        .child(PROTOCOL_NS, "Status")
        .and_then(|s| s.child(PROTOCOL_NS, "StatusCode"))
        .and_then(|c| c.attr("Value"))
        .ok_or(SamlError::Missing("Status"))?;
    if status != STATUS_SUCCESS {
        return Err(SamlError::Status(status.to_string()));
    }
    expect("Response Destination", root.attr("Destination").ok_or(SamlError::Missing("Destination"))?, &ex.acs_url)?;
    expect("Response InResponseTo", root.attr("InResponseTo").unwrap_or(""), &ex.request_id)?;
    if let Some(issuer) = root.child(ASSERTION_NS, "Issuer") {
        expect("Response Issuer", &issuer.text(), &ex.idp.entity_id)?;
    }
    // Everything that can be checked without our key has been checked (the response's
    // signature if it has one, status, destination, InResponseTo, issuer); only now is an
    // encrypted assertion decrypted.
    let plain: Vec<Element<'_>> = root.children_named(ASSERTION_NS, "Assertion").collect();
    let encrypted: Vec<Element<'_>> = root.children_named(ASSERTION_NS, "EncryptedAssertion").collect();
    let decrypted: xml::Document;
    let assertion: Element<'_> = match (plain.as_slice(), encrypted.as_slice()) {
        ([a], []) => *a,
        ([], [e]) => {
            let key = ex.sp_key.as_ref().ok_or(SamlError::Decrypt(DecryptError::Key))?;
            let options = xmlenc::Options { allow_legacy_cbc: ex.allow_legacy_cbc };
            let plain = xmlenc::decrypt(*e, key, options)?;
            if plain.legacy_cbc {
                tracing::warn!(sp = %ex.entity_id, "accepted an AES-CBC encrypted assertion (allowLegacyCbc); ask the IdP for AES-GCM");
            }
            decrypted = xml::parse_in_scope(&plain.xml, &e.in_scope_namespaces(), &Limits::SAML)?;
            if !decrypted.root().is(ASSERTION_NS, "Assertion") {
                return Err(SamlError::AssertionCount);
            }
            decrypted.root()
        }
        _ => return Err(SamlError::AssertionCount),
    };
    if xmldsig::is_signed(assertion) {
        xmldsig::verify(assertion, &keys)?;
    } else if !response_signed {
        return Err(SamlError::Unsigned);
    }
    let issuer = assertion.child(ASSERTION_NS, "Issuer").ok_or(SamlError::Missing("Assertion Issuer"))?;
    expect("Assertion Issuer", &issuer.text(), &ex.idp.entity_id)?;

    // Conditions: time window and audience.
    let conditions = assertion.child(ASSERTION_NS, "Conditions").ok_or(SamlError::Missing("Conditions"))?;
    check_window(conditions.attr("NotBefore"), conditions.attr("NotOnOrAfter"), ex)?;
    let audiences: Vec<String> = conditions
        .children_named(ASSERTION_NS, "AudienceRestriction")
        .flat_map(|r| r.children_named(ASSERTION_NS, "Audience"))
        .map(|a| a.text())
        .collect();
    if audiences.iter().all(|a| *a != ex.entity_id) {
        return Err(SamlError::Mismatch {
            field: "Audience",
            expected: ex.entity_id.to_string(),
            found: audiences.join(", "),
        });
    }

    // Subject and its bearer confirmation.
    let subject = assertion.child(ASSERTION_NS, "Subject").ok_or(SamlError::Missing("Subject"))?;
    let name_id = subject.child(ASSERTION_NS, "NameID").map(|n| n.text()).ok_or(SamlError::Missing("NameID"))?;
    let confirmation = subject
        .children_named(ASSERTION_NS, "SubjectConfirmation")
        .find(|c| c.attr("Method") == Some("urn:oasis:names:tc:SAML:2.0:cm:bearer"))
        .ok_or(SamlError::Missing("bearer SubjectConfirmation"))?;
    let data = confirmation
        .child(ASSERTION_NS, "SubjectConfirmationData")
        .ok_or(SamlError::Missing("SubjectConfirmationData"))?;
    expect("Recipient", data.attr("Recipient").ok_or(SamlError::Missing("Recipient"))?, &ex.acs_url)?;
    expect("SubjectConfirmationData InResponseTo", data.attr("InResponseTo").unwrap_or(""), &ex.request_id)?;
    let not_on_or_after =
        data.attr("NotOnOrAfter").ok_or(SamlError::Missing("SubjectConfirmationData NotOnOrAfter"))?;
    check_window(data.attr("NotBefore"), Some(not_on_or_after), ex)?;

    // Attributes.
    let mut attrs: Vec<(String, String)> = Vec::new();
    for statement in assertion.children_named(ASSERTION_NS, "AttributeStatement") {
        for a in statement.children_named(ASSERTION_NS, "Attribute") {
            let name = a.attr("Name").unwrap_or("").to_string();
            if let Some(v) = a.child(ASSERTION_NS, "AttributeValue") {
                attrs.push((name, v.text()));
            }
        }
    }
    let attr = |names: &[&str]| attrs.iter().find(|(n, _)| names.contains(&n.as_str())).map(|(_, v)| v.clone());
    let attributes = CitizenAttributes::from_pairs(attrs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let class_ref = assertion
        .child(ASSERTION_NS, "AuthnStatement")
        .and_then(|s| s.child(ASSERTION_NS, "AuthnContext"))
        .and_then(|c| c.child(ASSERTION_NS, "AuthnContextClassRef"))
        .map(|c| c.text());
    let trust_level = attr(&[trust::TRUST_LEVEL_ATTRIBUTE, "trustLevel"])
        .as_deref()
        .and_then(trust::from_asserted)
        .or_else(|| class_ref.as_deref().and_then(trust::from_asserted))
        .ok_or(SamlError::NoTrustLevel)?;
    Ok(Identity { subject: name_id, attributes, trust_level })
}

fn expect(field: &'static str, found: &str, expected: &str) -> Result<(), SamlError> {
    if found == expected {
        Ok(())
    } else {
        Err(SamlError::Mismatch { field, expected: expected.to_string(), found: found.to_string() })
    }
}

fn parse_time(s: &str) -> Result<OffsetDateTime, SamlError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| SamlError::Time(s.to_string()))
}

fn check_window(not_before: Option<&str>, not_on_or_after: Option<&str>, ex: &Expectations) -> Result<(), SamlError> {
    if let Some(nb) = not_before {
        if ex.now + ex.skew < parse_time(nb)? {
            return Err(SamlError::NotYetValid(format!("NotBefore {nb}")));
        }
    }
    if let Some(na) = not_on_or_after {
        if ex.now - ex.skew >= parse_time(na)? {
            return Err(SamlError::Expired(format!("NotOnOrAfter {na}")));
        }
    }
    Ok(())
}

/// The `InResponseTo` of an (unverified) response, to find the login it answers. Only the
/// root element's start tag is read (cheap enough for an async handler); nothing else is
/// read before the signature is checked.
pub fn peek_in_response_to(saml_response: &str) -> Option<String> {
    let text = decode_response(saml_response).ok()?;
    let doc = xml::parse_root_tag(&text, &Limits::SAML).ok()?;
    let root = doc.root();
    root.is(PROTOCOL_NS, "Response").then(|| root.attr("InResponseTo").map(str::to_string)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    const SP: &str = "https://service.detmold.de/saml/metadata";
    const ACS: &str = "https://service.detmold.de/anmelden/saml/acs";
    const IDP: &str = "https://idp.example/metadata";
    const REQ: &str = "_req1";

    fn idp_keys() -> &'static (SpKeys, SpKeys) {
        static KEYS: OnceLock<(SpKeys, SpKeys)> = OnceLock::new();
        KEYS.get_or_init(|| {
            let now = OffsetDateTime::now_utc();
            let k = || SpKeys::self_signed("IdP", "Test", now - Duration::days(1), now + Duration::days(30)).unwrap();
            (k(), k())
        })
    }

    /// Sign the element with `id`, placing the signature where `<!--SIG-->` stands.
    fn sign(xml: &str, id: &str, keys: &SpKeys) -> String {
        xmldsig::sign_enveloped(xml, id, "<!--SIG-->", &keys.private_key).unwrap()
    }

    struct R {
        audience: &'static str,
        recipient: &'static str,
        destination: &'static str,
        in_response_to: &'static str,
        not_before: OffsetDateTime,
        not_on_or_after: OffsetDateTime,
        name_id: &'static str,
        level: &'static str,
    }

    fn base() -> R {
        let now = OffsetDateTime::now_utc();
        R {
            audience: SP,
            recipient: ACS,
            destination: ACS,
            in_response_to: REQ,
            not_before: now - Duration::minutes(1),
            not_on_or_after: now + Duration::minutes(5),
            name_id: "erika",
            level: "STORK-QAA-Level-3",
        }
    }

    fn response_xml(r: &R) -> String {
        let (nb, na) = (timestamp(r.not_before), timestamp(r.not_on_or_after));
        format!(
            r#"<samlp:Response xmlns:samlp="{PROTOCOL_NS}" xmlns:saml="{ASSERTION_NS}" ID="_resp" Version="2.0" IssueInstant="{nb}" Destination="{dest}" InResponseTo="{irt}"><saml:Issuer>{IDP}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{STATUS_SUCCESS}"/></samlp:Status><saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="_assert" Version="2.0" IssueInstant="{nb}"><saml:Issuer>{IDP}</saml:Issuer><!--SIG--><saml:Subject><saml:NameID>{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{na}" Recipient="{rcp}" InResponseTo="{irt}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{nb}" NotOnOrAfter="{na}"><saml:AudienceRestriction><saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AttributeStatement><saml:Attribute Name="urn:oid:2.5.4.42"><saml:AttributeValue xsi:type="xs:string">Erika</saml:AttributeValue></saml:Attribute><saml:Attribute Name="urn:oid:2.5.4.4"><saml:AttributeValue xsi:type="xs:string">Mustermann</saml:AttributeValue></saml:Attribute><saml:Attribute Name="urn:oid:1.2.40.0.10.2.1.1.261.94"><saml:AttributeValue>{level}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>"#,
            dest = r.destination,
            irt = r.in_response_to,
            rcp = r.recipient,
            aud = r.audience,
            name_id = r.name_id,
            level = r.level,
        )
    }

    fn expectations() -> Expectations {
        let idp = IdpMetadata {
            entity_id: IDP.into(),
            sso_redirect: Some("https://idp.example/sso".into()),
            sso_post: None,
            slo_redirect: None,
            signing_certs: vec![idp_keys().0.cert_der.clone()],
        };
        Expectations {
            entity_id: SP.into(),
            acs_url: ACS.into(),
            request_id: REQ.into(),
            idp: Arc::new(idp),
            sp_key: None,
            allow_legacy_cbc: false,
            now: OffsetDateTime::now_utc(),
            skew: Duration::seconds(90),
        }
    }

    fn check(xml: &str) -> Result<Identity, SamlError> {
        validate_response(&base64::engine::general_purpose::STANDARD.encode(xml), &expectations())
    }

    fn signed(r: &R) -> String {
        sign(&response_xml(r), "_assert", &idp_keys().0)
    }

    /// The HTTP-POST binding: the request carries an enveloped signature right after its Issuer
    /// (the schema's order), which verifies with the SP's key and breaks on any change.
    #[test]
    fn post_binding_requests_carry_an_enveloped_signature_after_the_issuer() {
        let sp = &idp_keys().1;
        let p = AuthnRequestParams {
            id: "_post1",
            entity_id: SP,
            acs_url: ACS,
            destination: "https://idp.example/idp/profile/SAML2/POST/SSO",
            min_level: TrustLevel::Hoch,
            extension: None,
            relay_state: Some("/konto"),
            now: OffsetDateTime::now_utc(),
        };
        let form = post_form(&p, sp).unwrap();
        assert_eq!((form.id.as_str(), form.action.as_str()), ("_post1", p.destination));
        assert_eq!(form.relay_state.as_deref(), Some("/konto"));
        let xml =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&form.saml_request).unwrap()).unwrap();
        assert!(!xml.contains(SIGNATURE_SLOT), "{xml}");
        let doc = xml::parse(&xml, &Limits::SAML).unwrap();
        let root = doc.root();
        assert!(root.is(PROTOCOL_NS, "AuthnRequest"));
        let order: Vec<&str> = root.elements().map(|e| e.local()).collect();
        assert_eq!(order, ["Issuer", "Signature", "NameIDPolicy", "RequestedAuthnContext"]);
        xmldsig::verify(root, &[sp.public_key()]).unwrap();
        assert_eq!(xmldsig::verify(root, &[idp_keys().0.public_key()]), Err(SignatureError::BadSignature));
        let tampered = xml.replace("STORK-QAA-Level-4", "STORK-QAA-Level-1");
        let doc = xml::parse(&tampered, &Limits::SAML).unwrap();
        assert_eq!(xmldsig::verify(doc.root(), &[sp.public_key()]), Err(SignatureError::Digest));
    }

    #[test]
    fn a_signed_response_yields_the_citizen() {
        let id = check(&signed(&base())).unwrap();
        assert_eq!(id.subject, "erika");
        assert_eq!(
            (id.attributes.given_name.as_deref(), id.attributes.surname.as_deref()),
            (Some("Erika"), Some("Mustermann"))
        );
        assert_eq!(id.trust_level, TrustLevel::Substantiell);
    }

    #[test]
    fn each_condition_is_checked() {
        let now = OffsetDateTime::now_utc();
        let mismatch = |r: R, field: &str| match check(&signed(&r)) {
            Err(SamlError::Mismatch { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        };
        mismatch(R { audience: "https://other/saml/metadata", ..base() }, "Audience");
        mismatch(R { recipient: "https://evil/acs", ..base() }, "Recipient");
        mismatch(R { destination: "https://evil/acs", ..base() }, "Response Destination");
        mismatch(R { in_response_to: "_other", ..base() }, "Response InResponseTo");
        let expired =
            R { not_before: now - Duration::minutes(20), not_on_or_after: now - Duration::minutes(10), ..base() };
        assert!(matches!(check(&signed(&expired)), Err(SamlError::Expired(_))));
        let early = R { not_before: now + Duration::minutes(10), ..base() };
        assert!(matches!(check(&signed(&early)), Err(SamlError::NotYetValid(_))));
        let skewed = R { not_before: now + Duration::seconds(30), ..base() };
        assert!(check(&signed(&skewed)).is_ok(), "a small clock skew is tolerated");
        assert!(matches!(check(&signed(&R { level: "urn:unknown", ..base() })), Err(SamlError::NoTrustLevel)));
    }

    #[test]
    fn unsigned_tampered_and_foreign_signatures_are_rejected() {
        let xml = response_xml(&base()).replace("<!--SIG-->", "");
        assert!(matches!(check(&xml), Err(SamlError::Unsigned)));
        let tampered = signed(&base()).replace(">Erika<", ">Eve<");
        assert!(matches!(check(&tampered), Err(SamlError::Signature(SignatureError::Digest))));
        let foreign = sign(&response_xml(&base()), "_assert", &idp_keys().1);
        assert!(matches!(check(&foreign), Err(SamlError::Signature(SignatureError::BadSignature))));
    }

    #[test]
    fn wrapped_assertions_are_rejected() {
        // The signed assertion moved into Extensions, an unsigned forged one in its place.
        let good = signed(&base());
        let start = good.find("<saml:Assertion").unwrap();
        let end = good.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
        let signed_assertion = &good[start..end];
        let forged = response_xml(&R { name_id: "mallory", ..base() }).replace("<!--SIG-->", "");
        let forged_assertion =
            &forged[forged.find("<saml:Assertion").unwrap()..forged.find("</saml:Assertion>").unwrap() + 17];
        let wrapped = good.replacen(
            signed_assertion,
            &format!("<samlp:Extensions>{signed_assertion}</samlp:Extensions>{forged_assertion}"),
            1,
        );
        assert!(matches!(check(&wrapped), Err(SamlError::Unsigned)));
        // Two assertions side by side.
        let doubled = good.replacen(signed_assertion, &format!("{signed_assertion}{forged_assertion}"), 1);
        assert!(matches!(check(&doubled), Err(SamlError::AssertionCount)));
    }

    #[test]
    fn comments_do_not_truncate_signed_text() {
        let xml = signed(&R { name_id: "erika<!-- x -->.evil", ..base() });
        assert_eq!(check(&xml).unwrap().subject, "erika.evil");
    }

    fn encrypt_assertion(xml: &str, sp: &SpKeys, cbc: bool) -> String {
        super::super::samples::encrypt_assertion(xml, &rsa::RsaPublicKey::from(&sp.private_key), cbc).unwrap()
    }

    #[test]
    fn encrypted_assertions_gcm_by_default_cbc_only_by_opt_in() {
        let sp = &idp_keys().1;
        let with_key =
            |cbc: bool| Expectations { sp_key: Some(sp.private_key.clone()), allow_legacy_cbc: cbc, ..expectations() };
        let b64 = |x: &str| base64::engine::general_purpose::STANDARD.encode(x);
        let gcm = encrypt_assertion(&signed(&base()), sp, false);
        assert!(!gcm.contains("Mustermann"));
        assert_eq!(validate_response(&b64(&gcm), &with_key(false)).unwrap().subject, "erika");
        let cbc = encrypt_assertion(&signed(&base()), sp, true);
        assert!(matches!(
            validate_response(&b64(&cbc), &with_key(false)),
            Err(SamlError::Decrypt(DecryptError::LegacyCbc))
        ));
        assert_eq!(validate_response(&b64(&cbc), &with_key(true)).unwrap().subject, "erika");
        // A flipped ciphertext byte fails the GCM tag.
        let at = gcm.rfind("</xenc:CipherValue>").unwrap() - 10;
        let flipped = if &gcm[at..at + 1] == "A" { "B" } else { "A" };
        let tampered = format!("{}{flipped}{}", &gcm[..at], &gcm[at + 1..]);
        assert!(matches!(
            validate_response(&b64(&tampered), &with_key(false)),
            Err(SamlError::Decrypt(DecryptError::Data))
        ));
    }

    #[test]
    fn the_checks_that_need_no_key_come_before_decryption() {
        // Without any SP key, a misaddressed encrypted response fails on its address, not the key.
        let sp = &idp_keys().1;
        let misaddressed = encrypt_assertion(&signed(&R { destination: "https://evil/acs", ..base() }), sp, false);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&misaddressed);
        match validate_response(&b64, &expectations()) {
            Err(SamlError::Mismatch { field, .. }) => assert_eq!(field, "Response Destination"),
            other => panic!("{other:?}"),
        }
        let foreign_issuer = misaddressed.replacen(
            "<saml:Issuer>https://idp.example/metadata</saml:Issuer>",
            "<saml:Issuer>https://evil</saml:Issuer>",
            1,
        );
        let foreign_issuer = foreign_issuer.replace("https://evil/acs", ACS);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&foreign_issuer);
        match validate_response(&b64, &expectations()) {
            Err(SamlError::Mismatch { field, .. }) => assert_eq!(field, "Response Issuer"),
            other => panic!("{other:?}"),
        }
    }
}
