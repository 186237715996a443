//! The trust level (Vertrauensniveau) an identity provider asserts, mapped to ours.
//!
//! | asserted value (SAML attribute, `AuthnContextClassRef`, or OIDC `acr`)          | level              |
//! |---------------------------------------------------------------------------------|--------------------|
//! | `STORK-QAA-Level-1`, `STORK-QAA-Level-2`, `http://eidas.europa.eu/LoA/low`, `basisregistrierung`, `niedrig`, `normal` | basisregistrierung |
//! | `STORK-QAA-Level-3`, `http://eidas.europa.eu/LoA/substantial`, `substantiell`   | substantiell       |
//! | `STORK-QAA-Level-4`, `http://eidas.europa.eu/LoA/high`, `hoch`                  | hoch               |
//!
//! SAML: the attribute [`TRUST_LEVEL_ATTRIBUTE`] (BundID's "Vertrauensniveau der
//! Authentifizierung") wins; otherwise the assertion's `AuthnContextClassRef`. Anything
//! unknown maps to nothing, and a login without a known level is refused.

use crate::tenant::TrustLevel;

/// SAML attribute carrying the trust level of the authentication (BundID/PVP naming).
pub const TRUST_LEVEL_ATTRIBUTE: &str = crate::tenant::CitizenAttribute::TrustLevel.oid();

/// Map an asserted value to a trust level.
pub fn from_asserted(value: &str) -> Option<TrustLevel> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    match lower.as_str() {
        "stork-qaa-level-1"
        | "stork-qaa-level-2"
        | "http://eidas.europa.eu/loa/low"
        | "basisregistrierung"
        | "niedrig"
        | "normal" => Some(TrustLevel::Basisregistrierung),
        "stork-qaa-level-3" | "http://eidas.europa.eu/loa/substantial" | "substantiell" => {
            Some(TrustLevel::Substantiell)
        }
        "stork-qaa-level-4" | "http://eidas.europa.eu/loa/high" | "hoch" => Some(TrustLevel::Hoch),
        _ => None,
    }
}

/// The value we request from an IdP for a minimum level (`RequestedAuthnContext`, `acr_values`).
pub fn requested_value(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Basisregistrierung => "STORK-QAA-Level-1",
        TrustLevel::Substantiell => "STORK-QAA-Level-3",
        TrustLevel::Hoch => "STORK-QAA-Level-4",
    }
}

/// Our name of a level, as shown and serialized.
pub fn name(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Basisregistrierung => "basisregistrierung",
        TrustLevel::Substantiell => "substantiell",
        TrustLevel::Hoch => "hoch",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_stork_eidas_and_own_names() {
        assert_eq!(from_asserted("STORK-QAA-Level-1"), Some(TrustLevel::Basisregistrierung));
        assert_eq!(from_asserted("http://eidas.europa.eu/LoA/substantial"), Some(TrustLevel::Substantiell));
        assert_eq!(from_asserted(" hoch "), Some(TrustLevel::Hoch));
        assert_eq!(from_asserted("urn:oasis:names:tc:SAML:2.0:ac:classes:Password"), None);
        for l in [TrustLevel::Basisregistrierung, TrustLevel::Substantiell, TrustLevel::Hoch] {
            assert_eq!(from_asserted(requested_value(l)), Some(l));
        }
    }
}
