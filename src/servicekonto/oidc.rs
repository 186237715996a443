//! OpenID Connect, relying-party side: discovery, the authorization request (code flow with
//! PKCE S256, state and nonce), the token exchange and ID token verification (signature via
//! the provider's JWKS, `iss`, `aud`, `exp`, `nonce`).

use super::trust;
use super::{Error, Result};
use crate::tenant::TrustLevel;
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The parts of `/.well-known/openid-configuration` we use.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// Fetch and check an issuer's discovery document.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Discovery> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let d: Discovery = super::http_get_json(http, &url).await?;
    if d.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(Error::Discovery { url, reason: format!("it names issuer {:?}, expected {issuer:?}", d.issuer) });
    }
    Ok(d)
}

/// Fetch a provider's signing keys.
pub async fn fetch_jwks(http: &reqwest::Client, jwks_uri: &str) -> Result<JwkSet> {
    super::http_get_json(http, jwks_uri).await
}

/// A random URL-safe token of 256 bits.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What an authorization request is made of.
#[derive(Debug)]
pub struct AuthParams<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub code_verifier: &'a str,
    pub min_level: TrustLevel,
}

/// The URL the browser is sent to.
pub fn authorization_url(d: &Discovery, p: &AuthParams<'_>) -> Result<String> {
    let mut url = url::Url::parse(&d.authorization_endpoint)
        .map_err(|e| Error::Discovery { url: d.authorization_endpoint.clone(), reason: e.to_string() })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", p.client_id)
        .append_pair("redirect_uri", p.redirect_uri)
        .append_pair("scope", "openid profile")
        .append_pair("state", p.state)
        .append_pair("nonce", p.nonce)
        .append_pair("code_challenge", &pkce_challenge(p.code_verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("acr_values", trust::requested_value(p.min_level));
    Ok(url.into())
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// Exchange the code for tokens (client_secret_basic) and return the raw ID token.
pub async fn exchange_code(
    http: &reqwest::Client,
    d: &Discovery,
    client_id: &str,
    client_secret: &str,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<String> {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let resp = http
        .post(&d.token_endpoint)
        .basic_auth(enc(client_id), Some(enc(client_secret)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ])
        .send()
        .await
        .map_err(|e| Error::Http { url: d.token_endpoint.clone(), reason: super::error_chain(&e) })?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        return Err(Error::Http { url: d.token_endpoint.clone(), reason: format!("HTTP {status}: {body}") });
    }
    let tokens: TokenResponse = resp
        .json()
        .await
        .map_err(|e| Error::Http { url: d.token_endpoint.clone(), reason: format!("bad token response: {e}") })?;
    tokens.id_token.ok_or_else(|| Error::IdToken("the token response has no id_token".into()))
}

/// `aud`: one value or several (the values themselves are checked by `jsonwebtoken`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(#[allow(dead_code)] String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    nonce: Option<String>,
    #[serde(default)]
    acr: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
    #[serde(default)]
    trust_level: Option<String>,
}

/// The citizen as the ID token states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenIdentity {
    pub subject: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub trust_level: TrustLevel,
}

/// Verify an ID token: asymmetric signature by a key of `jwks`, issuer, audience (and `azp`
/// when there are several audiences), expiry (60 s leeway) and nonce.
pub fn verify_id_token(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    client_id: &str,
    nonce: &str,
) -> Result<IdTokenIdentity> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| Error::IdToken(e.to_string()))?;
    let allowed = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
    ];
    if !allowed.contains(&header.alg) {
        return Err(Error::IdToken(format!("algorithm {:?} is not accepted", header.alg)));
    }
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(|| Error::IdToken(format!("no key {:?} in the provider's JWKS", header.kid)))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| Error::IdToken(e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 60;
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| Error::IdToken(e.to_string()))?;
    let claims = data.claims;
    // OIDC Core 3.1.3.7: with several audiences the token must name us as its authorized
    // party; an `azp` that is present must be us in any case.
    let several = matches!(&claims.aud, Audience::Many(v) if v.len() > 1);
    match claims.azp.as_deref() {
        Some(azp) if azp != client_id => {
            return Err(Error::IdToken(format!("azp {azp:?} is not our client id")));
        }
        None if several => {
            return Err(Error::IdToken("the ID token has several audiences but no azp".into()));
        }
        _ => {}
    }
    if claims.nonce.as_deref() != Some(nonce) {
        return Err(Error::IdToken("nonce does not match the login request".into()));
    }
    let trust_level = claims
        .trust_level
        .as_deref()
        .and_then(trust::from_asserted)
        .or_else(|| claims.acr.as_deref().and_then(trust::from_asserted))
        .ok_or_else(|| Error::IdToken("the ID token states no known trust level (acr)".into()))?;
    Ok(IdTokenIdentity {
        subject: claims.sub,
        given_name: claims.given_name,
        family_name: claims.family_name,
        trust_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    mod id_token {
        use super::super::*;
        use jsonwebtoken::{encode, EncodingKey, Header};
        use rsa::pkcs1::{EncodeRsaPrivateKey as _, LineEnding};
        use rsa::traits::PublicKeyParts as _;
        use std::sync::OnceLock;

        const ISS: &str = "https://idp.example";
        const AUD: &str = "portal-detmold";

        fn key() -> &'static (EncodingKey, JwkSet) {
            static KEY: OnceLock<(EncodingKey, JwkSet)> = OnceLock::new();
            KEY.get_or_init(|| {
                let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
                let pem = private.to_pkcs1_pem(LineEnding::LF).unwrap();
                let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
                let jwks: JwkSet = serde_json::from_value(serde_json::json!({"keys": [{
                    "kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                    "n": b64(private.n().to_bytes_be()), "e": b64(private.e().to_bytes_be()),
                }]}))
                .unwrap();
                (EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(), jwks)
            })
        }

        fn claims(f: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let mut c = serde_json::json!({
                "iss": ISS, "aud": AUD, "sub": "erika", "iat": now, "exp": now + 300, "nonce": "n-1",
                "acr": "STORK-QAA-Level-4", "given_name": "Erika", "family_name": "Mustermann",
            });
            f(&mut c);
            c
        }

        fn sign(c: &serde_json::Value, kid: &str) -> String {
            let mut h = Header::new(Algorithm::RS256);
            h.kid = Some(kid.to_string());
            encode(&h, c, &key().0).unwrap()
        }

        fn verify(token: &str) -> Result<IdTokenIdentity> {
            verify_id_token(token, &key().1, ISS, AUD, "n-1")
        }

        #[test]
        fn a_valid_token_yields_name_and_trust_level() {
            let id = verify(&sign(&claims(|_| {}), "k1")).unwrap();
            assert_eq!(id.given_name.as_deref(), Some("Erika"));
            assert_eq!(id.trust_level, TrustLevel::Hoch);
        }

        #[test]
        fn wrong_nonce_audience_issuer_expiry_and_level_are_rejected() {
            type Mutation = Box<dyn FnOnce(&mut serde_json::Value)>;
            let cases: Vec<(&str, Mutation)> = vec![
                ("nonce", Box::new(|c| c["nonce"] = "other".into())),
                ("aud", Box::new(|c| c["aud"] = "another-client".into())),
                ("iss", Box::new(|c| c["iss"] = "https://evil.example".into())),
                ("exp", Box::new(|c| c["exp"] = (time::OffsetDateTime::now_utc().unix_timestamp() - 3600).into())),
                ("acr", Box::new(|c| c["acr"] = "urn:unknown".into())),
                // Several audiences without azp (observed accepted), or with someone else's azp.
                ("aud+azp", Box::new(|c| c["aud"] = serde_json::json!([AUD, "other-client"]))),
                (
                    "azp",
                    Box::new(|c| {
                        c["aud"] = serde_json::json!([AUD, "other-client"]);
                        c["azp"] = "other-client".into();
                    }),
                ),
                ("azp alone", Box::new(|c| c["azp"] = "other-client".into())),
            ];
            for (what, f) in cases {
                assert!(verify(&sign(&claims(f), "k1")).is_err(), "{what} must be checked");
            }
        }

        #[test]
        fn several_audiences_are_accepted_with_our_azp() {
            let token = sign(
                &claims(|c| {
                    c["aud"] = serde_json::json!([AUD, "other-client"]);
                    c["azp"] = AUD.into();
                }),
                "k1",
            );
            verify(&token).unwrap();
            verify(&sign(&claims(|c| c["aud"] = serde_json::json!([AUD])), "k1")).unwrap();
        }

        #[test]
        fn tampered_unknown_key_and_symmetric_tokens_are_rejected() {
            let token = sign(&claims(|_| {}), "k1");
            let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
            let forged = claims(|c| c["given_name"] = "Eve".into());
            parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
            assert!(verify(&parts.join(".")).is_err());
            assert!(verify(&sign(&claims(|_| {}), "k2")).unwrap_err().to_string().contains("no key"));
            let hs = encode(&Header::new(Algorithm::HS256), &claims(|_| {}), &EncodingKey::from_secret(b"k")).unwrap();
            assert!(verify(&hs).unwrap_err().to_string().contains("not accepted"));
        }
    }
}
