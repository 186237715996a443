//! The credential store: where generated database passwords go for the portal server to
//! read — local JSON files (mode 0600) or Kubernetes Secrets, applied through [`crate::cluster`] (the one
//! client, field manager and label set of every object portalctl owns). Passwords never leave through any
//! other door: no printing, no logs.

use super::{Error, Result};
use crate::cluster::{ApplyMode, Cluster, ConnectOptions};
use crate::render::ObjectKey;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The component label of credential Secrets.
pub const COMPONENT: &str = "database-credentials";

/// One role's login, as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub username: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .finish()
    }
}

/// A fresh random password: 32 alphanumeric characters from the operating system's CSPRNG
/// (about 190 bits).
pub fn generate_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    use rand::TryRngCore;
    Alphanumeric.sample_string(&mut rand::rngs::OsRng.unwrap_err(), 32)
}

/// Whose credential: a tenant role or the group's portal role.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Tenant(String),
    Portal,
}

/// What is stored for a role that exists, as checked against the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// Stored and accepted by the server.
    LogsIn,
    /// Nothing usable stored.
    Missing,
    /// Stored, but the server refuses it (a password set by someone else, or a credential
    /// written for a transaction that never committed).
    Refused,
    /// Stored; not checked because the role may not log in yet.
    Unchecked,
}

impl Check {
    /// Why provisioning must set a new password, if it must.
    pub fn reset_reason(&self) -> Option<&'static str> {
        match self {
            Check::LogsIn | Check::Unchecked => None,
            Check::Missing => Some("no stored credential"),
            Check::Refused => Some("the stored credential does not log in"),
        }
    }

    /// For tables: `logs in`, `missing`, `does not log in`, `not checked`.
    pub fn describe(&self) -> &'static str {
        match self {
            Check::LogsIn => "logs in",
            Check::Missing => "missing",
            Check::Refused => "does not log in",
            Check::Unchecked => "not checked",
        }
    }
}

/// Look at the stored credential of an existing role and, if the role may log in, ask the
/// server whether it still does (one SCRAM handshake).
pub async fn stored_credential(
    store: &Store,
    key: &Key,
    conn: &super::connect::Resolved,
    role: &str,
    can_login: bool,
) -> Result<Check> {
    let Some(password) = store.password(key).await? else { return Ok(Check::Missing) };
    if !can_login {
        return Ok(Check::Unchecked);
    }
    Ok(if conn.logs_in(role, &password).await? { Check::LogsIn } else { Check::Refused })
}

/// Where a credential belongs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub group: String,
    pub namespace: String,
    pub cluster_context: Option<String>,
    pub owner: Owner,
}

impl Key {
    /// File name in local mode: `<tenant>.db.json` or `_portal.db.json`.
    pub fn file_name(&self) -> String {
        match &self.owner {
            Owner::Tenant(slug) => format!("{slug}.db.json"),
            Owner::Portal => "_portal.db.json".into(),
        }
    }

    /// Secret name in Kubernetes mode: `<tenant>-db` or `portal-db`.
    pub fn secret_name(&self) -> String {
        match &self.owner {
            Owner::Tenant(slug) => format!("{slug}-db"),
            Owner::Portal => "portal-db".into(),
        }
    }
}

/// Where credentials are kept.
pub enum Store {
    /// `<dir>/<group>/<file>` with mode 0600 (directories 0700).
    Local { dir: PathBuf },
    /// Secrets in the group's namespace, one connection per kubeconfig context. `connect.context`, when set,
    /// wins over a group's `clusterContext` (like `--context` for apply).
    Kubernetes { connect: ConnectOptions, clusters: tokio::sync::Mutex<HashMap<Option<String>, Cluster>> },
}

impl Store {
    pub fn local(dir: impl Into<PathBuf>) -> Store {
        Store::Local { dir: dir.into() }
    }

    pub fn kubernetes(connect: ConnectOptions) -> Store {
        Store::Kubernetes { connect, clusters: tokio::sync::Mutex::new(HashMap::new()) }
    }

    /// Where the credential lives, for messages (never its content).
    pub fn describe(&self, key: &Key) -> String {
        match self {
            Store::Local { dir } => self.local_path(dir, key).display().to_string(),
            Store::Kubernetes { .. } => format!("Secret {}/{}", key.namespace, key.secret_name()),
        }
    }

    fn local_path(&self, dir: &Path, key: &Key) -> PathBuf {
        dir.join(&key.group).join(key.file_name())
    }

    /// Whether a usable credential (with a password) is stored.
    pub async fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.password(key).await?.is_some())
    }

    /// The stored password, if a usable credential is stored (for the check that it still
    /// logs in; never printed).
    pub async fn password(&self, key: &Key) -> Result<Option<String>> {
        match self {
            Store::Local { dir } => {
                let path = self.local_path(dir, key);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(serde_json::from_slice::<Credential>(&bytes)
                        .ok()
                        .map(|c| c.password)
                        .filter(|p| !p.is_empty())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(&path)(e)),
                }
            }
            Store::Kubernetes { .. } => {
                let cluster = self.cluster(key).await?;
                let found = cluster.get(&secret_key(key)).await.map_err(kube_error)?;
                let secret: Option<Secret> =
                    found.and_then(|o| serde_json::to_value(o).ok()).and_then(|v| serde_json::from_value(v).ok());
                Ok(secret
                    .and_then(|s| s.data)
                    .and_then(|mut d| d.remove("password"))
                    .and_then(|p| String::from_utf8(p.0).ok())
                    .filter(|p| !p.is_empty()))
            }
        }
    }

    /// Read a stored credential (local mode only; the cluster's Secrets are for the server).
    pub fn read_local(&self, key: &Key) -> Result<Option<Credential>> {
        let Store::Local { dir } = self else { return Ok(None) };
        let path = self.local_path(dir, key);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path)(e)),
        }
    }

    /// Store a credential, replacing what was there.
    pub async fn put(&self, key: &Key, cred: &Credential) -> Result<()> {
        match self {
            Store::Local { dir } => write_private(&self.local_path(dir, key), cred),
            Store::Kubernetes { .. } => {
                let cluster = self.cluster(key).await?;
                let mut body = serde_json::to_value(secret_object(key, cred)).expect("a Secret serializes");
                body["apiVersion"] = "v1".into();
                body["kind"] = "Secret".into();
                let mode = ApplyMode { dry_run: false, force_conflicts: true };
                cluster.apply(&secret_key(key), &body, mode).await.map_err(kube_error)?;
                Ok(())
            }
        }
    }

    /// Remove a credential; `false` if there was none.
    pub async fn remove(&self, key: &Key) -> Result<bool> {
        match self {
            Store::Local { dir } => {
                let path = self.local_path(dir, key);
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(Error::io(&path)(e)),
                }
            }
            Store::Kubernetes { .. } => {
                let cluster = self.cluster(key).await?;
                let k = secret_key(key);
                if cluster.get(&k).await.map_err(kube_error)?.is_none() {
                    return Ok(false);
                }
                cluster.delete(&k).await.map_err(kube_error)?;
                Ok(true)
            }
        }
    }

    /// The connection for a key's cluster context (made once per context).
    async fn cluster(&self, key: &Key) -> Result<Cluster> {
        let Store::Kubernetes { connect, clusters } = self else { unreachable!("only called in Kubernetes mode") };
        let context = connect.context.clone().or_else(|| key.cluster_context.clone());
        let mut clusters = clusters.lock().await;
        if let Some(c) = clusters.get(&context) {
            return Ok(c.clone());
        }
        let opts = ConnectOptions { context: context.clone(), ..connect.clone() };
        let cluster = Cluster::connect(&opts).await.map_err(kube_error)?;
        clusters.insert(context, cluster.clone());
        Ok(cluster)
    }
}

fn secret_key(key: &Key) -> ObjectKey {
    ObjectKey { api_version: "v1", kind: "Secret", namespace: Some(key.namespace.clone()), name: key.secret_name() }
}

fn kube_error(e: crate::cluster::Error) -> Error {
    Error::Kube { what: "database credentials".into(), source: Box::new(e) }
}

/// The Secret as applied: keys `username`, `password`, `host`, `port`, `dbname`, with the
/// project's labels.
pub fn secret_object(key: &Key, cred: &Credential) -> Secret {
    let mut labels = crate::render::common_labels(&key.group, env!("CARGO_PKG_VERSION"), COMPONENT);
    if let Owner::Tenant(slug) = &key.owner {
        labels.insert(crate::render::TENANT_LABEL.into(), slug.clone());
    }
    let data = BTreeMap::from([
        ("username".to_string(), ByteString(cred.username.clone().into_bytes())),
        ("password".to_string(), ByteString(cred.password.clone().into_bytes())),
        ("host".to_string(), ByteString(cred.host.clone().into_bytes())),
        ("port".to_string(), ByteString(cred.port.to_string().into_bytes())),
        ("dbname".to_string(), ByteString(cred.dbname.clone().into_bytes())),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(key.secret_name()),
            namespace: Some(key.namespace.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Default::default()
    }
}

/// Write JSON to `path` readable by the owner only: a 0600 temporary sibling, then rename.
fn write_private(path: &Path, cred: &Credential) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = path.parent().expect("credential paths have a parent");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(Error::io(dir))?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut text = serde_json::to_string_pretty(cred).expect("a credential serializes");
    text.push('\n');
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        // The umask cannot widen 0600, but an inherited ACL-less filesystem might: be explicit.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    write().map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn key(owner: Owner) -> Key {
        Key { group: "krz".into(), namespace: "portal-krz".into(), cluster_context: None, owner }
    }

    fn cred() -> Credential {
        Credential {
            username: "t_espelkamp".into(),
            password: generate_password(),
            host: "db".into(),
            port: 5432,
            dbname: "portal".into(),
        }
    }

    #[test]
    fn passwords_are_long_random_and_alphanumeric() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let c = cred();
        assert!(!format!("{c:?}").contains(&c.password));
    }

    #[tokio::test]
    async fn local_files_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path());
        let k = key(Owner::Tenant("espelkamp".into()));
        assert!(!store.exists(&k).await.unwrap());
        let c = cred();
        store.put(&k, &c).await.unwrap();
        let path = dir.path().join("krz/espelkamp.db.json");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.path().join("krz")).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(store.exists(&k).await.unwrap());
        assert_eq!(store.read_local(&k).unwrap().unwrap(), c);
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for field in ["username", "password", "host", "port", "dbname"] {
            assert!(json.get(field).is_some(), "{field} missing");
        }
        assert_eq!(store.describe(&key(Owner::Portal)), dir.path().join("krz/_portal.db.json").display().to_string());
        assert!(store.remove(&k).await.unwrap());
        assert!(!store.remove(&k).await.unwrap());
    }

    #[test]
    fn secrets_carry_names_labels_and_keys() {
        let s = secret_object(&key(Owner::Tenant("espelkamp".into())), &cred());
        assert_eq!(s.metadata.name.as_deref(), Some("espelkamp-db"));
        let labels = s.metadata.labels.unwrap();
        assert_eq!(labels["portalctl.dev/tenant"], "espelkamp");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "portalctl");
        assert!(s.data.unwrap().contains_key("password"));
        let p = secret_object(&key(Owner::Portal), &cred());
        assert_eq!(p.metadata.name.as_deref(), Some("portal-db"));
        assert!(!p.metadata.labels.unwrap().contains_key("portalctl.dev/tenant"));
    }
}
