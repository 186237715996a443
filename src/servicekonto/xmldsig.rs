//! XML signature verification for the subset SAML uses: an enveloped `ds:Signature` as a
//! direct child of the signed element, one `Reference` to that element's `ID`, transforms
//! enveloped-signature + exclusive c14n, RSA-SHA256 over exclusively canonicalized `SignedInfo`.
//!
//! The key comes from the IdP's metadata, never from the message's own `KeyInfo`. Callers
//! read data only from the element that was verified (no lookup by ID elsewhere in the
//! document), which rules out signature-wrapping.

use super::xml::{self, exc_c14n, Element, Limits};
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::EncodePrivateKey as _;
use rsa::signature::Verifier as _;
use rsa::RsaPublicKey;
use sha2::{Digest, Sha256};

pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// Most prefixes accepted in an `InclusiveNamespaces` PrefixList (each is looked up at every
/// canonicalized element; real signers list a handful).
pub const MAX_INCLUSIVE_PREFIXES: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the element is not signed")]
    Missing,
    #[error("the element carries more than one signature")]
    Multiple,
    #[error("malformed signature: {0}")]
    Malformed(&'static str),
    #[error("unsupported signature algorithm {0}")]
    Unsupported(String),
    #[error("the signature references {found:?}, not the signed element's ID {expected:?}")]
    WrongReference { expected: String, found: String },
    #[error("digest mismatch: the signed content was changed")]
    Digest,
    #[error("the signature does not verify with any of the IdP's signing certificates")]
    BadSignature,
}

/// Whether `element` has an enveloped signature child.
pub fn is_signed(element: Element<'_>) -> bool {
    element.child(DSIG_NS, "Signature").is_some()
}

/// Verify the enveloped signature of `element` against the trusted keys.
pub fn verify(element: Element<'_>, keys: &[RsaPublicKey]) -> Result<(), SignatureError> {
    let mut sigs = element.children_named(DSIG_NS, "Signature");
    let signature = sigs.next().ok_or(SignatureError::Missing)?;
    if sigs.next().is_some() {
        return Err(SignatureError::Multiple);
    }
    let signed_info = signature.child(DSIG_NS, "SignedInfo").ok_or(SignatureError::Malformed("no SignedInfo"))?;
    let c14n = signed_info
        .child(DSIG_NS, "CanonicalizationMethod")
        .ok_or(SignatureError::Malformed("no CanonicalizationMethod"))?;
    let c14n_alg = c14n.attr("Algorithm").unwrap_or("");
    if c14n_alg != EXC_C14N {
        return Err(SignatureError::Unsupported(c14n_alg.to_string()));
    }
    let si_prefixes = inclusive_prefixes(c14n)?;
    let method = signed_info
        .child(DSIG_NS, "SignatureMethod")
        .and_then(|m| m.attr("Algorithm"))
        .ok_or(SignatureError::Malformed("no SignatureMethod"))?;
    if method != RSA_SHA256 {
        return Err(SignatureError::Unsupported(method.to_string()));
    }
    let mut refs = signed_info.children_named(DSIG_NS, "Reference");
    let reference = refs.next().ok_or(SignatureError::Malformed("no Reference"))?;
    if refs.next().is_some() {
        return Err(SignatureError::Malformed("more than one Reference"));
    }
    let id = element.attr("ID").ok_or(SignatureError::Malformed("the signed element has no ID"))?;
    let uri = reference.attr("URI").unwrap_or("");
    if uri.strip_prefix('#') != Some(id) {
        return Err(SignatureError::WrongReference { expected: id.to_string(), found: uri.to_string() });
    }
    let mut enveloped = false;
    let mut exclusive: Option<Vec<String>> = None;
    if let Some(transforms) = reference.child(DSIG_NS, "Transforms") {
        for t in transforms.children_named(DSIG_NS, "Transform") {
            match t.attr("Algorithm").unwrap_or("") {
                ENVELOPED => enveloped = true,
                EXC_C14N => exclusive = Some(inclusive_prefixes(t)?),
                other => return Err(SignatureError::Unsupported(other.to_string())),
            }
        }
    }
    if !enveloped {
        return Err(SignatureError::Malformed("the reference lacks the enveloped-signature transform"));
    }
    let prefixes = exclusive.ok_or(SignatureError::Malformed("the reference lacks exclusive canonicalization"))?;
    let digest_alg = reference
        .child(DSIG_NS, "DigestMethod")
        .and_then(|m| m.attr("Algorithm"))
        .ok_or(SignatureError::Malformed("no DigestMethod"))?;
    if digest_alg != SHA256 {
        return Err(SignatureError::Unsupported(digest_alg.to_string()));
    }
    let expected = decode_b64(&reference.child(DSIG_NS, "DigestValue").map(|d| d.text()).unwrap_or_default())
        .ok_or(SignatureError::Malformed("DigestValue is not base64"))?;
    let actual = Sha256::digest(exc_c14n(element, Some(signature), &prefixes).as_bytes());
    if actual.as_slice() != expected.as_slice() {
        return Err(SignatureError::Digest);
    }
    let value = decode_b64(&signature.child(DSIG_NS, "SignatureValue").map(|d| d.text()).unwrap_or_default())
        .ok_or(SignatureError::Malformed("SignatureValue is not base64"))?;
    let sig = Signature::try_from(value.as_slice()).map_err(|_| SignatureError::Malformed("bad SignatureValue"))?;
    let canonical_si = exc_c14n(signed_info, None, &si_prefixes);
    for key in keys {
        let vk = VerifyingKey::<Sha256>::new(key.clone());
        if vk.verify(canonical_si.as_bytes(), &sig).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::BadSignature)
}

fn inclusive_prefixes(transform: Element<'_>) -> Result<Vec<String>, SignatureError> {
    let mut prefixes: Vec<String> = transform
        .elements()
        .find(|e| e.is(EXC_C14N, "InclusiveNamespaces"))
        .and_then(|e| e.attr("PrefixList"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    prefixes.sort_unstable();
    prefixes.dedup();
    if prefixes.len() > MAX_INCLUSIVE_PREFIXES {
        return Err(SignatureError::Malformed("InclusiveNamespaces PrefixList too long"));
    }
    Ok(prefixes)
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

/// RSASSA-PKCS1-v1_5 with SHA-256 by aws-lc (constant time; the `rsa` crate's private-key
/// operations are not, RUSTSEC-2023-0071).
pub fn sign_rsa_sha256(key: &rsa::RsaPrivateKey, message: &[u8]) -> Result<Vec<u8>, super::Error> {
    use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    let crypto = |e: String| super::Error::Crypto(e);
    let pkcs8 = key.to_pkcs8_der().map_err(|e| crypto(e.to_string()))?;
    let pair = RsaKeyPair::from_pkcs8(pkcs8.as_bytes()).map_err(|e| crypto(e.to_string()))?;
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), message, &mut sig)
        .map_err(|e| crypto(e.to_string()))?;
    Ok(sig)
}

/// Sign the element whose `ID` is `id` in the document `text` with an enveloped signature of
/// the kind [`verify`] accepts, inserted in place of `marker` (which should stand right inside
/// that element, e.g. after its `Issuer`). The portal signs its HTTP-POST AuthnRequests with it
/// (`saml::post_form`); test identity providers, fixtures and benchmarks sign responses.
pub fn sign_enveloped(text: &str, id: &str, marker: &str, key: &rsa::RsaPrivateKey) -> Result<String, super::Error> {
    let malformed = |why: String| super::Error::Crypto(format!("cannot sign: {why}"));
    let unsigned = text.replacen(marker, "", 1);
    let doc = xml::parse(&unsigned, &Limits::SAML).map_err(|e| malformed(e.to_string()))?;
    let element = doc.root().find_by_id(id).ok_or_else(|| malformed(format!("no element with ID {id:?}")))?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let digest = b64(&Sha256::digest(exc_c14n(element, None, &[]).as_bytes()));
    let signed_info = format!(
        r##"<ds:SignedInfo xmlns:ds="{DSIG_NS}"><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/><ds:SignatureMethod Algorithm="{RSA_SHA256}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="{ENVELOPED}"/><ds:Transform Algorithm="{EXC_C14N}"/></ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"/><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>"##,
        id = xml::escape(id),
    );
    let si = xml::parse(&signed_info, &Limits::SAML).map_err(|e| malformed(e.to_string()))?;
    let sig = sign_rsa_sha256(key, exc_c14n(si.root(), None, &[]).as_bytes())?;
    let signature = format!(
        r#"<ds:Signature xmlns:ds="{DSIG_NS}">{signed_info}<ds:SignatureValue>{}</ds:SignatureValue></ds:Signature>"#,
        b64(&sig)
    );
    Ok(text.replacen(marker, &signature, 1))
}
