//! The SAML response path as the ACS runs it, on arbitrary XML: the root-tag peek, the bounded
//! parser, exclusive canonicalization, and the full validation (signature verification,
//! decryption, conditions) with a fixed IdP/SP key pair (fuzz/keys, test only) and a fixed
//! clock, so that the seed corpus's signed responses stay valid.
//!
//! Run bounded with `cargo xtask fuzz [--seconds N]`.

#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use portalctl::servicekonto::keys::{KeyPaths, SpKeys};
use portalctl::servicekonto::metadata::IdpMetadata;
use portalctl::servicekonto::saml::{self, Expectations};
use portalctl::servicekonto::samples;
use portalctl::servicekonto::xml::{self, Limits};
use std::sync::{Arc, OnceLock};

fn expectations() -> &'static Expectations {
    static EX: OnceLock<Expectations> = OnceLock::new();
    EX.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys");
        let keys =
            SpKeys::read(&KeyPaths { key: dir.join("idp.key.pem"), cert: dir.join("idp.crt.pem") }).expect("fuzz/keys");
        let params = samples::Response::fixed();
        let idp = IdpMetadata {
            entity_id: params.idp_entity_id.clone(),
            sso_redirect: "https://idp.example/sso".into(),
            slo_redirect: None,
            signing_certs: vec![keys.cert_der.clone()],
        };
        Expectations {
            entity_id: params.sp_entity_id.clone(),
            acs_url: params.acs_url.clone(),
            request_id: params.in_response_to.clone(),
            idp: Arc::new(idp),
            sp_key: Some(keys.private_key),
            allow_legacy_cbc: true,
            now: samples::FIXED_NOW,
            skew: time::Duration::seconds(90),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let form = base64::engine::general_purpose::STANDARD.encode(text);
    let _ = saml::peek_in_response_to(&form);
    if let Ok(doc) = xml::parse(text, &Limits::SAML) {
        let root = doc.root();
        let _ = xml::exc_c14n(root, None, &[]);
        let _ = root.in_scope_namespaces();
    }
    let _ = saml::validate_response(&form, expectations());
});
