//! SAML SP key material per tenant and environment: an RSA-3072 key pair and a self-signed
//! X.509 certificate, kept as files under the secrets directory (mode 0600). Never printed
//! or logged; the `Debug` impl of [`SpKeys`] hides the key.
//!
//! Layout (local mode, `<secrets>` defaults to `.portalctl/secrets`):
//! `<secrets>/<group>/<tenant>.saml-<env>.key.pem`, `…crt.pem`; during a rebind the previous
//! pair is kept as `<tenant>.saml-<env>.previous.{key,crt}.pem` and the new metadata is left in
//! `<secrets>/<group>/pending/`.

use super::{Error, Result};
use crate::tenant::{Environment, Tenant};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::RsaPrivateKey;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// RSA modulus size of generated SP keys.
pub const RSA_BITS: usize = 3072;
/// Validity of generated SP certificates (BundID accepts self-signed certificates; renew via rebind).
pub const CERT_VALID_DAYS: i64 = 3 * 365;

/// An SP's key pair and certificate.
#[derive(Clone)]
pub struct SpKeys {
    pub private_key: RsaPrivateKey,
    /// PEM of the certificate.
    pub cert_pem: String,
    /// DER of the certificate.
    pub cert_der: Vec<u8>,
}

impl std::fmt::Debug for SpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpKeys").field("private_key", &"<redacted>").finish_non_exhaustive()
    }
}

impl SpKeys {
    /// Generate a fresh key pair and a self-signed certificate naming the tenant.
    pub fn generate(tenant: &Tenant, environment: Environment, now: OffsetDateTime) -> Result<SpKeys> {
        SpKeys::self_signed(
            &format!("{} SAML SP ({})", tenant.primary_hostname(), env_name(environment)),
            &tenant.display_name,
            now - time::Duration::minutes(5),
            now + time::Duration::days(CERT_VALID_DAYS),
        )
    }

    /// Generate an RSA key pair and a self-signed certificate with the given subject and validity.
    pub fn self_signed(
        common_name: &str,
        organization: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<SpKeys> {
        let mut rng = rand_core::OsRng;
        let private_key = RsaPrivateKey::new(&mut rng, RSA_BITS).map_err(|e| Error::Crypto(e.to_string()))?;
        let pkcs8 = private_key.to_pkcs8_pem(LineEnding::LF).map_err(|e| Error::Crypto(e.to_string()))?;
        let key_pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| Error::Crypto(e.to_string()))?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| Error::Crypto(e.to_string()))?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, common_name);
        dn.push(rcgen::DnType::OrganizationName, organization);
        dn.push(rcgen::DnType::CountryName, "DE");
        params.distinguished_name = dn;
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.self_signed(&key_pair).map_err(|e| Error::Crypto(e.to_string()))?;
        Ok(SpKeys { private_key, cert_pem: cert.pem(), cert_der: cert.der().to_vec() })
    }

    /// The private key as PKCS#8 PEM (to write it to a file; never print it).
    pub fn private_key_pem(&self) -> Result<String> {
        self.key_pem()
    }

    /// The public half of the key pair.
    pub fn public_key(&self) -> rsa::RsaPublicKey {
        rsa::RsaPublicKey::from(&self.private_key)
    }

    /// Base64 of the certificate's DER, as it appears in metadata.
    pub fn cert_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.cert_der)
    }

    fn key_pem(&self) -> Result<String> {
        Ok(self.private_key.to_pkcs8_pem(LineEnding::LF).map_err(|e| Error::Crypto(e.to_string()))?.to_string())
    }

    /// Write key and certificate to `paths` (key mode 0600, directories created).
    pub fn write(&self, paths: &KeyPaths) -> Result<()> {
        write_secret(&paths.key, self.key_pem()?.as_bytes())?;
        write_secret(&paths.cert, self.cert_pem.as_bytes())
    }

    /// Read key and certificate from `paths`.
    pub fn read(paths: &KeyPaths) -> Result<SpKeys> {
        let key_pem = std::fs::read_to_string(&paths.key).map_err(|e| Error::io(&paths.key, e))?;
        let private_key = RsaPrivateKey::from_pkcs8_pem(&key_pem)
            .map_err(|e| Error::KeyFile { path: paths.key.clone(), reason: e.to_string() })?;
        let cert_pem = std::fs::read_to_string(&paths.cert).map_err(|e| Error::io(&paths.cert, e))?;
        let cert_der = pem_to_der(&cert_pem)
            .ok_or_else(|| Error::KeyFile { path: paths.cert.clone(), reason: "no CERTIFICATE block".into() })?;
        Ok(SpKeys { private_key, cert_pem, cert_der })
    }
}

/// Where one key pair lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPaths {
    pub key: PathBuf,
    pub cert: PathBuf,
}

impl KeyPaths {
    fn with_stem(dir: &Path, stem: &str) -> KeyPaths {
        KeyPaths { key: dir.join(format!("{stem}.key.pem")), cert: dir.join(format!("{stem}.crt.pem")) }
    }

    /// The current key pair of a tenant's SAML binding.
    pub fn current(secrets: &Path, tenant: &Tenant, env: Environment) -> KeyPaths {
        KeyPaths::with_stem(&secrets.join(&tenant.group), &format!("{}.saml-{}", tenant.slug, env_name(env)))
    }

    /// The key pair kept from before a rebind until `servicekonto confirm`.
    pub fn previous(secrets: &Path, tenant: &Tenant, env: Environment) -> KeyPaths {
        KeyPaths::with_stem(&secrets.join(&tenant.group), &format!("{}.saml-{}.previous", tenant.slug, env_name(env)))
    }

    /// A new key pair staged by a rebind.
    pub fn pending(secrets: &Path, tenant: &Tenant, env: Environment) -> KeyPaths {
        KeyPaths::with_stem(&pending_dir(secrets, &tenant.group), &format!("{}.saml-{}", tenant.slug, env_name(env)))
    }

    pub fn exist(&self) -> bool {
        self.key.is_file() && self.cert.is_file()
    }
}

/// The pending area of a group.
pub fn pending_dir(secrets: &Path, group: &str) -> PathBuf {
    secrets.join(group).join("pending")
}

pub fn env_name(env: Environment) -> &'static str {
    env.as_str()
}

/// Load the tenant's current keys, generating and storing them first if there are none.
/// Returns the keys and whether they were generated now.
pub fn load_or_generate(secrets: &Path, tenant: &Tenant, env: Environment) -> Result<(SpKeys, bool)> {
    let paths = KeyPaths::current(secrets, tenant, env);
    if paths.exist() {
        return Ok((SpKeys::read(&paths)?, false));
    }
    let keys = SpKeys::generate(tenant, env, OffsetDateTime::now_utc())?;
    keys.write(&paths)?;
    Ok((keys, true))
}

/// Write a file readable by its owner only, atomically (temporary file + rename).
pub fn write_secret(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The DER of the first CERTIFICATE block of a PEM text.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = start + pem[start..].find("-----END CERTIFICATE-----")?;
    let b64: String = pem[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}
