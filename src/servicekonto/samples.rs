//! SAML documents for the regression tests, the fuzz seed corpus and the benchmark: a
//! well-formed Response (to be signed with [`super::xmldsig::sign_enveloped`]) and the hostile
//! shapes that were seen to break the parser before it was bounded.

use super::saml::{timestamp, ASSERTION_NS, PROTOCOL_NS, STATUS_SUCCESS};
use super::xml::escape;
use time::OffsetDateTime;

/// Where [`Response::xml`] leaves room for the assertion's enveloped signature.
pub const ASSERTION_SIG: &str = "<!--ASSERTION-SIG-->";
/// Where [`Response::xml`] leaves room for the response's enveloped signature.
pub const RESPONSE_SIG: &str = "<!--RESPONSE-SIG-->";

/// A successful SAML Response with one assertion (IDs `_resp` and `_assert`).
#[derive(Debug, Clone)]
pub struct Response {
    pub idp_entity_id: String,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub in_response_to: String,
    pub name_id: String,
    pub given_name: String,
    pub family_name: String,
    /// Trust level as the IdP states it, e.g. `STORK-QAA-Level-3`.
    pub level: String,
    pub not_before: OffsetDateTime,
    pub not_on_or_after: OffsetDateTime,
}

impl Response {
    /// The XML, with [`ASSERTION_SIG`] and [`RESPONSE_SIG`] where signatures go. Text values
    /// are escaped except `name_id`, which is inserted raw (tests put comments or CDATA there).
    pub fn xml(&self) -> String {
        let (nb, na) = (timestamp(self.not_before), timestamp(self.not_on_or_after));
        format!(
            concat!(
                r#"<samlp:Response xmlns:samlp="{p}" xmlns:saml="{a}" ID="_resp" Version="2.0" IssueInstant="{nb}" Destination="{acs}" InResponseTo="{irt}">"#,
                r#"<saml:Issuer>{idp}</saml:Issuer>{rsig}<samlp:Status><samlp:StatusCode Value="{ok}"/></samlp:Status>"#,
                r#"<saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="_assert" Version="2.0" IssueInstant="{nb}">"#,
                r#"<saml:Issuer>{idp}</saml:Issuer>{asig}"#,
                r#"<saml:Subject><saml:NameID>{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
                r#"<saml:SubjectConfirmationData NotOnOrAfter="{na}" Recipient="{acs}" InResponseTo="{irt}"/></saml:SubjectConfirmation></saml:Subject>"#,
                r#"<saml:Conditions NotBefore="{nb}" NotOnOrAfter="{na}"><saml:AudienceRestriction><saml:Audience>{sp}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
                r#"<saml:AttributeStatement>"#,
                r#"<saml:Attribute Name="urn:oid:2.5.4.42"><saml:AttributeValue xsi:type="xs:string">{given}</saml:AttributeValue></saml:Attribute>"#,
                r#"<saml:Attribute Name="urn:oid:2.5.4.4"><saml:AttributeValue xsi:type="xs:string">{family}</saml:AttributeValue></saml:Attribute>"#,
                r#"<saml:Attribute Name="urn:oid:1.2.40.0.10.2.1.1.261.94"><saml:AttributeValue>{level}</saml:AttributeValue></saml:Attribute>"#,
                r#"</saml:AttributeStatement></saml:Assertion></samlp:Response>"#
            ),
            nb = nb,
            na = na,
            p = PROTOCOL_NS,
            a = ASSERTION_NS,
            ok = STATUS_SUCCESS,
            acs = escape(&self.acs_url),
            irt = escape(&self.in_response_to),
            idp = escape(&self.idp_entity_id),
            sp = escape(&self.sp_entity_id),
            name_id = self.name_id,
            given = escape(&self.given_name),
            family = escape(&self.family_name),
            level = escape(&self.level),
            rsig = RESPONSE_SIG,
            asig = ASSERTION_SIG,
        )
    }
}

fn response_open(in_response_to: &str, extra: &str) -> String {
    format!(r#"<samlp:Response xmlns:samlp="{PROTOCOL_NS}" ID="_h" InResponseTo="{}"{extra}>"#, escape(in_response_to))
}

/// A Response holding `depth` nested elements (40,000 overflowed the stack of the recursive
/// parser and aborted the process).
pub fn deep_nesting(depth: usize, in_response_to: &str) -> String {
    format!("{}{}{}</samlp:Response>", response_open(in_response_to, ""), "<a>".repeat(depth), "</a>".repeat(depth))
}

/// A Response whose root declares `k` namespaces and has `n` children that each declare one
/// more (a parser that copies the namespace map per element needs k·n space).
pub fn namespace_bomb(k: usize, n: usize, in_response_to: &str) -> String {
    let decls: String = (0..k).map(|i| format!(r#" xmlns:n{i}="urn:x:{i:08}""#)).collect();
    let children: String = (0..n).map(|i| format!(r#"<c xmlns:m{i}="urn:y:{i}"/>"#)).collect();
    format!("{}{children}</samlp:Response>", response_open(in_response_to, &decls))
}

/// A Response of at most `bytes` bytes made of as many small sibling elements as fit, each
/// with a prefixed attribute (the most elements and namespace lookups per byte).
pub fn wide(bytes: usize, in_response_to: &str) -> String {
    let decls: String = (0..200).map(|i| format!(r#" xmlns:n{i}="urn:x:{i}""#)).collect();
    let mut out = response_open(in_response_to, &decls);
    let end = "</samlp:Response>";
    for i in 0.. {
        let e = format!(r#"<n{}:e n0:a="{i}"/>"#, i % 200);
        if out.len() + e.len() + end.len() > bytes {
            break;
        }
        out.push_str(&e);
    }
    out.push_str(end);
    out
}

/// A Response of at most `bytes` bytes of text in one element, with entity references.
pub fn text_heavy(bytes: usize, in_response_to: &str) -> String {
    let mut out = response_open(in_response_to, "");
    out.push_str("<t>");
    let (chunk, end) = ("&amp;&lt;&#x41;abcdefgh", "</t></samlp:Response>");
    while out.len() + chunk.len() + end.len() <= bytes {
        out.push_str(chunk);
    }
    out.push_str(end);
    out
}
