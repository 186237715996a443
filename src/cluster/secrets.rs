//! Resolving Secret references at apply time (IO: environment and files). Values are never
//! printed or logged; errors name the tenant and the reference, not the value.

use super::{Error, Result};
use crate::render::SecretSource;

/// Read the value a reference points to.
pub fn resolve(tenant: &str, source: &SecretSource) -> Result<Vec<u8>> {
    let err = |message: String| Error::Secret { tenant: tenant.to_string(), reference: source.describe(), message };
    let value = match source {
        SecretSource::Env(name) => std::env::var_os(name)
            .ok_or_else(|| err(format!("environment variable {name} is not set")))?
            .into_encoded_bytes(),
        SecretSource::File(path) => std::fs::read(path).map_err(|e| err(format!("cannot read {path}: {e}")))?,
    };
    if value.is_empty() {
        return Err(err("the value is empty".into()));
    }
    Ok(value)
}
