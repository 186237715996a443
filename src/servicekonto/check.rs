//! IdP metadata and discovery checks.
