//! XML Encryption, decrypting side, for SAML `EncryptedAssertion`: the content key is
//! RSA-OAEP encrypted for our SP key (`rsa-oaep-mgf1p`, or xmlenc 1.1 `rsa-oaep` with SHA-1 or
//! SHA-256 digest and MGF1), the assertion is AES-CBC or AES-GCM encrypted (128 or 256 bit).

use super::xml::Element;
use super::xmldsig::DSIG_NS;
use aes_gcm::aead::{Aead as _, KeyInit as _};
use base64::Engine as _;
use cbc::cipher::{block_padding::NoPadding, BlockDecryptMut as _, KeyIvInit as _};
use rsa::{Oaep, RsaPrivateKey};

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
    #[error("the content key cannot be decrypted with our SP key")]
    Key,
    #[error("the encrypted content cannot be decrypted")]
    Data,
}

fn b64(e: Option<&Element>) -> Result<Vec<u8>, DecryptError> {
    let text = e.map(|e| e.text()).ok_or(DecryptError::Malformed("no CipherValue"))?;
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map_err(|_| DecryptError::Malformed("CipherValue is not base64"))
}

fn cipher_value(e: &Element) -> Result<Vec<u8>, DecryptError> {
    b64(e.child(XENC_NS, "CipherData").and_then(|c| c.child(XENC_NS, "CipherValue")))
}

/// Decrypt the `EncryptedData` inside `encrypted` (e.g. `saml:EncryptedAssertion`) and return
/// the plaintext XML.
pub fn decrypt(encrypted: &Element, key: &RsaPrivateKey) -> Result<String, DecryptError> {
    let data = encrypted.child(XENC_NS, "EncryptedData").ok_or(DecryptError::Malformed("no EncryptedData"))?;
    let data_alg = data
        .child(XENC_NS, "EncryptionMethod")
        .and_then(|m| m.attr("Algorithm"))
        .ok_or(DecryptError::Malformed("no EncryptionMethod"))?;
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
    let padding = match (key_alg, digest, mgf) {
        (RSA_OAEP_MGF1P, SHA1, None) | (RSA_OAEP, SHA1, None) => Oaep::new::<sha1::Sha1>(),
        (RSA_OAEP_MGF1P, SHA256, None) | (RSA_OAEP, SHA256, None) => {
            Oaep::new_with_mgf_hash::<sha2::Sha256, sha1::Sha1>()
        }
        (RSA_OAEP, SHA256, Some(MGF1_SHA256)) => Oaep::new::<sha2::Sha256>(),
        _ => return Err(DecryptError::Unsupported(format!("{key_alg} ({digest}, {mgf:?})"))),
    };
    let content_key = key.decrypt(padding, &cipher_value(enc_key)?).map_err(|_| DecryptError::Key)?;
    let ct = cipher_value(data)?;
    let plain = match data_alg {
        AES128_CBC | AES256_CBC => {
            if ct.len() < 32 || ct.len() % 16 != 0 {
                return Err(DecryptError::Data);
            }
            let (iv, body) = ct.split_at(16);
            let mut buf = body.to_vec();
            let out = match (data_alg, content_key.len()) {
                (AES128_CBC, 16) => cbc::Decryptor::<aes::Aes128>::new_from_slices(&content_key, iv)
                    .map_err(|_| DecryptError::Data)?
                    .decrypt_padded_mut::<NoPadding>(&mut buf)
                    .map_err(|_| DecryptError::Data)?
                    .len(),
                (AES256_CBC, 32) => cbc::Decryptor::<aes::Aes256>::new_from_slices(&content_key, iv)
                    .map_err(|_| DecryptError::Data)?
                    .decrypt_padded_mut::<NoPadding>(&mut buf)
                    .map_err(|_| DecryptError::Data)?
                    .len(),
                _ => return Err(DecryptError::Data),
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
        AES128_GCM | AES256_GCM => {
            if ct.len() < 12 + 16 {
                return Err(DecryptError::Data);
            }
            let (nonce, body) = ct.split_at(12);
            let nonce = aes_gcm::Nonce::from_slice(nonce);
            match (data_alg, content_key.len()) {
                (AES128_GCM, 16) => aes_gcm::Aes128Gcm::new_from_slice(&content_key)
                    .map_err(|_| DecryptError::Data)?
                    .decrypt(nonce, body)
                    .map_err(|_| DecryptError::Data)?,
                (AES256_GCM, 32) => aes_gcm::Aes256Gcm::new_from_slice(&content_key)
                    .map_err(|_| DecryptError::Data)?
                    .decrypt(nonce, body)
                    .map_err(|_| DecryptError::Data)?,
                _ => return Err(DecryptError::Data),
            }
        }
        other => return Err(DecryptError::Unsupported(other.to_string())),
    };
    String::from_utf8(plain).map_err(|_| DecryptError::Data)
}
