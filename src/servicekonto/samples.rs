//! SAML documents for the regression tests, the fuzz seed corpus and the benchmark: a
//! well-formed Response (to be signed with [`super::xmldsig::sign_enveloped`]) and the hostile
//! shapes that were seen to break the parser before it was bounded.

use super::metadata::IdpMetadata;
use super::saml::{timestamp, Expectations, ASSERTION_NS, PROTOCOL_NS, STATUS_SUCCESS};
use super::xml::escape;
use time::OffsetDateTime;

/// Where [`Response::xml`] leaves room for the assertion's enveloped signature.
pub const ASSERTION_SIG: &str = "<!--ASSERTION-SIG-->";
/// Where [`Response::xml`] leaves room for the response's enveloped signature.
pub const RESPONSE_SIG: &str = "<!--RESPONSE-SIG-->";

/// The clock of [`Response::fixed`], for signed documents that must stay valid (the fuzz
/// seed corpus): 2026-01-01T00:00:00Z.
pub const FIXED_NOW: OffsetDateTime = time::macros::datetime!(2026-01-01 00:00:00 UTC);

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
    /// Erika Mustermann at level substantiell, valid for five minutes around [`FIXED_NOW`].
    pub fn fixed() -> Response {
        Response::at(FIXED_NOW)
    }

    /// Erika Mustermann at level substantiell, valid for five minutes around `now`.
    pub fn at(now: OffsetDateTime) -> Response {
        Response {
            idp_entity_id: "https://idp.example/metadata".into(),
            sp_entity_id: "https://service.detmold.de/saml/metadata".into(),
            acs_url: "https://service.detmold.de/anmelden/saml/acs".into(),
            in_response_to: "_req1".into(),
            name_id: "erika".into(),
            given_name: "Erika".into(),
            family_name: "Mustermann".into(),
            level: "STORK-QAA-Level-3".into(),
            not_before: now - time::Duration::minutes(1),
            not_on_or_after: now + time::Duration::minutes(5),
        }
    }

    /// What the SP expects of this response: its entity ID, ACS and request ID, signed by the IdP
    /// whose certificate (DER) is `idp_cert`, checked at `now` with 90 s of clock skew; no SP key
    /// (set `sp_key` for encrypted assertions).
    pub fn expectations(&self, idp_cert: Vec<u8>, now: OffsetDateTime) -> Expectations {
        Expectations {
            entity_id: self.sp_entity_id.clone(),
            acs_url: self.acs_url.clone(),
            request_id: self.in_response_to.clone(),
            idp: std::sync::Arc::new(IdpMetadata {
                entity_id: self.idp_entity_id.clone(),
                sso_redirect: Some("https://idp.example/sso".into()),
                sso_post: None,
                slo_redirect: None,
                signing_certs: vec![idp_cert],
            }),
            sp_key: None,
            allow_legacy_cbc: false,
            now,
            skew: time::Duration::seconds(90),
        }
    }

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
    let decls: String = (0..31).map(|i| format!(r#" xmlns:n{i}="urn:x:{i}""#)).collect();
    let mut out = response_open(in_response_to, &decls);
    let end = "</samlp:Response>";
    for i in 0.. {
        let e = format!(r#"<n{}:e n0:a="{i}"/>"#, i % 31);
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

/// One document of [`signed_corpus`].
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub xml: String,
    /// Whether a correct SAML validation accepts it (signature and profile).
    pub accepted: bool,
}

/// Signed responses, valid and tampered: signatures on the assertion, the response or both;
/// comments, CDATA and processing instructions in the NameID (before and after signing);
/// changed text and attributes, a foreign key, a moved or removed signature, and the eight
/// XML signature wrapping shapes (XSW1–XSW8). `idp` signs, `foreign` is a key the SP does
/// not trust.
pub fn signed_corpus(
    r: &Response,
    idp: &rsa::RsaPrivateKey,
    foreign: &rsa::RsaPrivateKey,
) -> Result<Vec<Case>, super::Error> {
    use super::xmldsig::sign_enveloped;
    let assertion_signed = |r: &Response, key| -> Result<String, super::Error> {
        sign_enveloped(&r.xml().replace(RESPONSE_SIG, ""), "_assert", ASSERTION_SIG, key)
    };
    let response_signed = |r: &Response| -> Result<String, super::Error> {
        sign_enveloped(&r.xml().replace(ASSERTION_SIG, ""), "_resp", RESPONSE_SIG, idp)
    };
    let good = assertion_signed(r, idp)?;
    let rgood = response_signed(r)?;
    let both = sign_enveloped(&sign_enveloped(&r.xml(), "_assert", ASSERTION_SIG, idp)?, "_resp", RESPONSE_SIG, idp)?;
    let with_name = |name_id: &str| Response { name_id: name_id.into(), ..r.clone() };
    let mallory = with_name("mallory");

    let span = |doc: &str, open: &str, close: &str| -> (usize, usize) {
        let start = doc.find(open).expect("open tag");
        let end = start + doc[start..].find(close).expect("close tag") + close.len();
        (start, end)
    };
    let cut = |doc: &str, open: &str, close: &str| -> String {
        let (s, e) = span(doc, open, close);
        doc[s..e].to_string()
    };
    let signature = |doc: &str| cut(doc, "<ds:Signature", "</ds:Signature>");
    let assertion = |doc: &str| cut(doc, "<saml:Assertion", "</saml:Assertion>");
    let response_unsigned = rgood.replacen(&signature(&rgood), "", 1);
    let evil_assertion =
        assertion(&mallory.xml().replace(ASSERTION_SIG, "").replace(RESPONSE_SIG, "")).replacen("_assert", "_evil", 1);
    let signed_assertion = assertion(&good);
    let sig = signature(&good);
    let unsigned_assertion = signed_assertion.replacen(&sig, "", 1);
    let issuer_end = |doc: &str| doc.find("</saml:Issuer>").expect("issuer") + "</saml:Issuer>".len();
    let with_object = |sig: &str, inner: &str| {
        sig.replacen("</ds:Signature>", &format!("<ds:Object>{inner}</ds:Object></ds:Signature>"), 1)
    };
    let evil_response = response_unsigned.replacen("ID=\"_resp\"", "ID=\"_evil\"", 1).replacen(
        &assertion(&response_unsigned),
        &evil_assertion,
        1,
    );
    let insert_after_issuer = |doc: &str, what: &str| {
        let at = issuer_end(doc);
        format!("{}{what}{}", &doc[..at], &doc[at..])
    };
    let evil_with_sig = |sig: String| insert_after_issuer(&evil_assertion, &sig);
    let signed_in_name_id = |name: &str| assertion_signed(&with_name(name), idp);

    let mut cases = vec![
        Case { name: "assertion-signed", xml: good.clone(), accepted: true },
        Case { name: "response-signed", xml: rgood.clone(), accepted: true },
        Case { name: "both-signed", xml: both, accepted: true },
        Case { name: "comment-in-name-id", xml: signed_in_name_id("erika<!-- x -->.evil")?, accepted: true },
        Case { name: "cdata-in-name-id", xml: signed_in_name_id("<![CDATA[erika]]>.evil")?, accepted: true },
        Case { name: "pi-in-name-id", xml: signed_in_name_id("erika<?x y?>.evil")?, accepted: true },
        Case {
            name: "comment-injected-after-signing",
            xml: signed_in_name_id("erika.evil")?.replacen("erika.evil", "erika<!---->.evil", 1),
            accepted: true,
        },
        Case { name: "tampered-text", xml: good.replacen(">Erika<", ">Eve<", 1), accepted: false },
        Case {
            name: "tampered-attribute",
            xml: good.replacen("ID=\"_assert\" Version=\"2.0\"", "ID=\"_assert\" Version=\"2.1\"", 1),
            accepted: false,
        },
        Case { name: "tampered-response-signed", xml: rgood.replacen(">Erika<", ">Eve<", 1), accepted: false },
        Case { name: "wrong-key", xml: assertion_signed(r, foreign)?, accepted: false },
        Case { name: "signature-removed", xml: good.replacen(&sig, "", 1), accepted: false },
        Case { name: "moved-signature", xml: insert_after_issuer(&good.replacen(&sig, "", 1), &sig), accepted: false },
    ];
    // XSW1: a forged response carries the original response's signature, the original inside its Object.
    let rsig = signature(&rgood);
    cases.push(Case {
        name: "xsw1",
        xml: insert_after_issuer(&evil_response, &with_object(&rsig, &response_unsigned)),
        accepted: false,
    });
    // XSW2: the same with the original response detached before the signature.
    cases.push(Case {
        name: "xsw2",
        xml: insert_after_issuer(&evil_response, &format!("{response_unsigned}{rsig}")),
        accepted: false,
    });
    // XSW3: a forged assertion before the signed one.
    cases.push(Case {
        name: "xsw3",
        xml: good.replacen(&signed_assertion, &format!("{evil_assertion}{signed_assertion}"), 1),
        accepted: false,
    });
    // XSW4: a forged assertion wrapping the signed one.
    let wrapped = evil_assertion.replacen("</saml:Assertion>", &format!("{signed_assertion}</saml:Assertion>"), 1);
    cases.push(Case { name: "xsw4", xml: good.replacen(&signed_assertion, &wrapped, 1), accepted: false });
    // XSW5: the signature moved into a forged assertion with the same ID, the original appended unsigned.
    let forged_same_id = evil_with_sig(sig.clone()).replacen("ID=\"_evil\"", "ID=\"_assert\"", 1);
    cases.push(Case {
        name: "xsw5",
        xml: good.replacen(&signed_assertion, &forged_same_id, 1).replacen(
            "</samlp:Response>",
            &format!("{unsigned_assertion}</samlp:Response>"),
            1,
        ),
        accepted: false,
    });
    // XSW6: a forged assertion with the signature, the original assertion inside its Object.
    cases.push(Case {
        name: "xsw6",
        xml: good.replacen(&signed_assertion, &evil_with_sig(with_object(&sig, &unsigned_assertion)), 1),
        accepted: false,
    });
    // XSW7: the signed assertion hidden in Extensions, a forged one in its place.
    cases.push(Case {
        name: "xsw7",
        xml: good.replacen(
            &signed_assertion,
            &format!("<samlp:Extensions>{signed_assertion}</samlp:Extensions>{evil_assertion}"),
            1,
        ),
        accepted: false,
    });
    // XSW8: a forged assertion whose signature's Object holds the original assertion unsigned.
    cases.push(Case {
        name: "xsw8",
        xml: good.replacen(
            &signed_assertion,
            &evil_with_sig(with_object(&sig, &format!("<ds:Object>{unsigned_assertion}</ds:Object>"))),
            1,
        ),
        accepted: false,
    });
    Ok(cases)
}

/// Encrypt the assertion of a response for the SP's public key (RSA-OAEP-MGF1P key transport)
/// with AES-128-GCM or, for `legacy_cbc`, AES-256-CBC, as an IdP does.
pub fn encrypt_assertion(xml: &str, sp: &rsa::RsaPublicKey, legacy_cbc: bool) -> Result<String, super::Error> {
    use aes_gcm::aead::{Aead as _, KeyInit as _};
    use base64::Engine as _;
    use cbc::cipher::{block_padding::Pkcs7, BlockEncryptMut as _, KeyIvInit as _};
    use rand::RngCore as _;
    let crypto = |e: String| super::Error::Crypto(e);
    let start = xml.find("<saml:Assertion").ok_or_else(|| crypto("no assertion".into()))?;
    let end = xml.find("</saml:Assertion>").ok_or_else(|| crypto("no assertion".into()))? + "</saml:Assertion>".len();
    let plain = &xml.as_bytes()[start..end];
    let mut rng = rand::rng();
    let (alg, key, body) = if legacy_cbc {
        let (mut key, mut iv) = ([0u8; 32], [0u8; 16]);
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut iv);
        let mut buf = vec![0u8; plain.len() + 16];
        buf[..plain.len()].copy_from_slice(plain);
        let ct = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
            .map_err(|e| crypto(e.to_string()))?
            .to_vec();
        ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", key.to_vec(), [iv.to_vec(), ct].concat())
    } else {
        let (mut key, mut nonce) = ([0u8; 16], [0u8; 12]);
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut nonce);
        let ct = aes_gcm::Aes128Gcm::new_from_slice(&key)
            .map_err(|e| crypto(e.to_string()))?
            .encrypt(aes_gcm::Nonce::from_slice(&nonce), plain)
            .map_err(|e| crypto(e.to_string()))?;
        ("http://www.w3.org/2009/xmlenc11#aes128-gcm", key.to_vec(), [nonce.to_vec(), ct].concat())
    };
    let wrapped =
        sp.encrypt(&mut rand_core::OsRng, rsa::Oaep::new::<sha1::Sha1>(), &key).map_err(|e| crypto(e.to_string()))?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let encrypted = format!(
        concat!(
            r#"<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="{alg}"/><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{key}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{body}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>"#
        ),
        alg = alg,
        key = b64(&wrapped),
        body = b64(&body),
    );
    Ok(format!("{}{encrypted}{}", &xml[..start], &xml[end..]))
}
