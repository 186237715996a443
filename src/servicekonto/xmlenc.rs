//! XML Encryption, decrypting side, for SAML `EncryptedAssertion`: the content key is
//! RSA-OAEP encrypted for our SP key (`rsa-oaep-mgf1p` with SHA-1, or xmlenc 1.1 `rsa-oaep` with
//! SHA-1/MGF1-SHA-1 or SHA-256/MGF1-SHA-256), the assertion is AES-GCM encrypted (128 or 256
//! bit). AES-CBC (XML Encryption 1.0, malleable and open to padding-oracle attacks) only when
//! the tenant opted in ([`Options::allow_legacy_cbc`]).
//!
//! The RSA-OAEP decryption runs in aws-lc (constant time), not in the `rsa` crate, whose
//! private-key operations are not (RUSTSEC-2023-0071). Everything that can be checked without
//! the key (algorithms, sizes) is checked before it is used.

use super::xml::Element;
use super::xmldsig::DSIG_NS;
use aes_gcm::aead::{Aead as _, KeyInit as _};
use aws_lc_rs::rsa::{OaepAlgorithm, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256};
use base64::Engine as _;
use cbc::cipher::{block_padding::NoPadding, BlockDecryptMut as _, KeyIvInit as _};
use rsa::pkcs8::EncodePrivateKey as _;
use rsa::RsaPrivateKey;

pub const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
pub const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";
const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const MGF1_SHA256: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha256";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecryptError {
    #[error("malformed encrypted element: {0}")]
    Malformed(&'static str),
    #[error("unsupported encryption algorithm {0}")]
    Unsupported(String),
    #[error("AES-CBC encrypted assertions are refused (the tenant has not set allowLegacyCbc)")]
    LegacyCbc,
    #[error("the content key cannot be decrypted with our SP key")]
    Key,
    #[error("the encrypted content cannot be decrypted")]
    Data,
}

fn b64(e: Option<Element<'_>>) -> Result<Vec<u8>, DecryptError> {
    let text = e.map(|e| e.text()).ok_or(DecryptError::Malformed("no CipherValue"))?;
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map_err(|_| DecryptError::Malformed("CipherValue is not base64"))
}

fn cipher_value(e: Element<'_>) -> Result<Vec<u8>, DecryptError> {
    b64(e.child(XENC_NS, "CipherData").and_then(|c| c.child(XENC_NS, "CipherValue")))
}

/// Decrypt the `EncryptedData` inside `encrypted` (e.g. `saml:EncryptedAssertion`) and return
/// the plaintext XML.
/// What the decrypting side accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Accept AES-CBC content encryption (XML Encryption 1.0). Off unless the tenant's binding
    /// sets `allowLegacyCbc: true`.
    pub allow_legacy_cbc: bool,
}

/// The content encryption, decided before the key is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Cbc(usize),
    Gcm(usize),
}

/// A decrypted assertion.
#[derive(Debug)]
pub struct Decrypted {
    pub xml: String,
    /// Whether it was AES-CBC encrypted (allowed by [`Options::allow_legacy_cbc`]).
    pub legacy_cbc: bool,
}

/// Decrypt the `EncryptedData` inside `encrypted` (e.g. `saml:EncryptedAssertion`) and return
/// the plaintext XML.
pub fn decrypt(encrypted: Element<'_>, key: &RsaPrivateKey, options: Options) -> Result<Decrypted, DecryptError> {
    let data = encrypted.child(XENC_NS, "EncryptedData").ok_or(DecryptError::Malformed("no EncryptedData"))?;
    let data_alg = data
        .child(XENC_NS, "EncryptionMethod")
        .and_then(|m| m.attr("Algorithm"))
        .ok_or(DecryptError::Malformed("no EncryptionMethod"))?;
    let content = match data_alg {
        AES128_GCM => Content::Gcm(16),
        AES256_GCM => Content::Gcm(32),
        AES128_CBC | AES256_CBC if !options.allow_legacy_cbc => return Err(DecryptError::LegacyCbc),
        AES128_CBC => Content::Cbc(16),
        AES256_CBC => Content::Cbc(32),
        other => return Err(DecryptError::Unsupported(other.to_string())),
    };
    let enc_key = data
        .child(DSIG_NS, "KeyInfo")
        .and_then(|k| k.child(XENC_NS, "EncryptedKey"))
        .or_else(|| encrypted.child(XENC_NS, "EncryptedKey"))
        .ok_or(DecryptError::Malformed("no EncryptedKey"))?;
    let method =
        enc_key.child(XENC_NS, "EncryptionMethod").ok_or(DecryptError::Malformed("no key EncryptionMethod"))?;
    let key_alg = method.attr("Algorithm").unwrap_or("");
    let digest = method.child(DSIG_NS, "DigestMethod").and_then(|d| d.attr("Algorithm")).unwrap_or(SHA1);
    let mgf = method.child(XENC11_NS, "MGF").and_then(|m| m.attr("Algorithm"));
    if method.child(XENC_NS, "OAEPparams").is_some() {
        return Err(DecryptError::Unsupported("RSA-OAEP with OAEPparams".into()));
    }
    let padding: &'static OaepAlgorithm = match (key_alg, digest, mgf) {
        (RSA_OAEP_MGF1P, SHA1, None) | (RSA_OAEP, SHA1, None) => &OAEP_SHA1_MGF1SHA1,
        (RSA_OAEP, SHA256, Some(MGF1_SHA256)) => &OAEP_SHA256_MGF1SHA256,
        _ => return Err(DecryptError::Unsupported(format!("{key_alg} ({digest}, {mgf:?})"))),
    };
    let wrapped = cipher_value(enc_key)?;
    let ct = cipher_value(data)?;
    let min_len = match content {
        Content::Cbc(_) => 32,
        Content::Gcm(_) => 12 + 16,
    };
    if ct.len() < min_len || matches!(content, Content::Cbc(_)) && ct.len() % 16 != 0 {
        return Err(DecryptError::Data);
    }
    let pkcs8 = key.to_pkcs8_der().map_err(|_| DecryptError::Key)?;
    let private = PrivateDecryptingKey::from_pkcs8(pkcs8.as_bytes()).map_err(|_| DecryptError::Key)?;
    let private = OaepPrivateDecryptingKey::new(private).map_err(|_| DecryptError::Key)?;
    if wrapped.len() != private.key_size_bytes() {
        return Err(DecryptError::Key);
    }
    let mut buf = vec![0u8; private.min_output_size()];
    let content_key = private.decrypt(padding, &wrapped, &mut buf, None).map_err(|_| DecryptError::Key)?;
    let plain = match content {
        Content::Cbc(len) => {
            if content_key.len() != len {
                return Err(DecryptError::Data);
            }
            let (iv, body) = ct.split_at(16);
            let mut buf = body.to_vec();
            let out = match len {
                16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(content_key, iv)
                    .map_err(|_| DecryptError::Data)?
                    .decrypt_padded_mut::<NoPadding>(&mut buf)
                    .map_err(|_| DecryptError::Data)?
                    .len(),
                _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(content_key, iv)
                    .map_err(|_| DecryptError::Data)?
                    .decrypt_padded_mut::<NoPadding>(&mut buf)
                    .map_err(|_| DecryptError::Data)?
                    .len(),
            };
            buf.truncate(out);
            // XML Encryption padding: the last byte is the pad length, the other pad bytes are arbitrary.
            let pad = *buf.last().ok_or(DecryptError::Data)? as usize;
            if pad == 0 || pad > 16 || pad > buf.len() {
                return Err(DecryptError::Data);
            }
            buf.truncate(buf.len() - pad);
            buf
        }
        Content::Gcm(len) => {
            if content_key.len() != len {
                return Err(DecryptError::Data);
            }
            let (nonce, body) = ct.split_at(12);
            let nonce = aes_gcm::Nonce::from_slice(nonce);
            match len {
                16 => aes_gcm::Aes128Gcm::new_from_slice(content_key)
                    .map_err(|_| DecryptError::Data)?
                    .decrypt(nonce, body)
                    .map_err(|_| DecryptError::Data)?,
                _ => aes_gcm::Aes256Gcm::new_from_slice(content_key)
                    .map_err(|_| DecryptError::Data)?
                    .decrypt(nonce, body)
                    .map_err(|_| DecryptError::Data)?,
            }
        }
    };
    let xml = String::from_utf8(plain).map_err(|_| DecryptError::Data)?;
    Ok(Decrypted { xml, legacy_cbc: matches!(content, Content::Cbc(_)) })
}
