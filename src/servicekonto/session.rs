//! Server-side login state: citizen sessions (keyed by the session cookie's random 256-bit
//! token) and logins in progress (keyed by the browser's login cookie), in PostgreSQL so that
//! any replica of the portal server can finish any login, see any session, and a restart logs
//! no one out.
//!
//! **Where:** per rollout group in the schema `login_<group>` ([`crate::db::login_schema`]),
//! created by `db provision` next to the group role `portal_<group>`, owned by the
//! administrating role, usable only by that group role (tenant roles have no access; the
//! server reaches it as the group role, before any `SET ROLE`).
//!
//! **Invariants:** only SHA-256 hashes of cookie tokens are stored, never the tokens; every
//! row carries its expiry (unix seconds) and is ignored once expired; expired rows are swept
//! at most once a minute per group and process; a login in progress is taken with
//! `DELETE … RETURNING`, so of several replicas racing to finish it exactly one succeeds.
//!
//! [`LoginStore::memory`] keeps the same state in process memory, for tests without a database.

use crate::portal::db::Pools;
use crate::tenant::TrustLevel;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

/// How long a citizen session lives.
pub const SESSION_TTL: Duration = Duration::hours(8);
/// How long a login may take at the IdP.
pub const PENDING_TTL: Duration = Duration::minutes(15);
/// At most this many logins in progress are kept in memory; beyond, the oldest is forgotten
/// (bounds the memory anyone can make the in-memory store spend by starting logins).
pub const MAX_PENDING: usize = 100_000;
/// Expired rows are swept at most this often per group and process.
pub const SWEEP_INTERVAL: Duration = Duration::minutes(1);

/// Why the login state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("login store: {0}")]
    Name(#[from] crate::db::Error),
    #[error("login store: database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("login store: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("login store: stored entry is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A logged-in citizen.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The tenant the session belongs to; a session is valid only on that tenant's hosts.
    pub tenant: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    pub trust_level: TrustLevel,
    /// `saml` or `oidc`.
    pub protocol: &'static str,
    #[serde(skip)]
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
}

/// A session as stored (JSON in the `data` column).
#[derive(Serialize, Deserialize)]
struct Stored {
    tenant: String,
    name: String,
    given_name: Option<String>,
    family_name: Option<String>,
    trust_level: TrustLevel,
    protocol: String,
    subject: String,
    expires: i64,
}

impl From<Session> for Stored {
    fn from(s: Session) -> Stored {
        Stored {
            tenant: s.tenant,
            name: s.name,
            given_name: s.given_name,
            family_name: s.family_name,
            trust_level: s.trust_level,
            protocol: s.protocol.to_string(),
            subject: s.subject,
            expires: s.expires.unix_timestamp(),
        }
    }
}

impl TryFrom<Stored> for Session {
    type Error = serde_json::Error;

    fn try_from(s: Stored) -> Result<Session, serde_json::Error> {
        use serde::de::Error as _;
        let protocol = match s.protocol.as_str() {
            "saml" => "saml",
            "oidc" => "oidc",
            other => return Err(serde_json::Error::custom(format!("unknown protocol {other:?}"))),
        };
        let expires = OffsetDateTime::from_unix_timestamp(s.expires).map_err(serde_json::Error::custom)?;
        Ok(Session {
            tenant: s.tenant,
            name: s.name,
            given_name: s.given_name,
            family_name: s.family_name,
            trust_level: s.trust_level,
            protocol,
            subject: s.subject,
            expires,
        })
    }
}

/// A login started but not finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "lowercase")]
pub enum Pending {
    Oidc {
        tenant: String,
        state: String,
        nonce: String,
        code_verifier: String,
        redirect_uri: String,
        next: String,
        /// The trust level this login must reach (the binding's, or more for a service that needs more).
        #[serde(default)]
        min_level: TrustLevel,
    },
    Saml {
        tenant: String,
        request_id: String,
        acs_url: String,
        next: String,
        /// The trust level this login must reach (the binding's, or more for a service that needs more).
        #[serde(default)]
        min_level: TrustLevel,
    },
}

impl Pending {
    pub fn tenant(&self) -> &str {
        match self {
            Pending::Oidc { tenant, .. } | Pending::Saml { tenant, .. } => tenant,
        }
    }

    /// The trust level this login must reach.
    pub fn min_level(&self) -> TrustLevel {
        match self {
            Pending::Oidc { min_level, .. } | Pending::Saml { min_level, .. } => *min_level,
        }
    }
}

/// SHA-256 of a cookie token: what the store keeps instead of the token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Sessions and logins in progress; cheap to clone (shared).
#[derive(Clone)]
pub struct LoginStore(Backend);

#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<Memory>>),
    Postgres { pools: Pools, last_sweep: Arc<Mutex<HashMap<String, i64>>> },
}

#[derive(Default)]
struct Memory {
    sessions: HashMap<(String, Vec<u8>), Session>,
    pending: HashMap<(String, Vec<u8>), (Pending, OffsetDateTime)>,
}

impl std::fmt::Debug for LoginStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Backend::Memory(_) => "LoginStore::Memory",
            Backend::Postgres { .. } => "LoginStore::Postgres",
        })
    }
}

impl LoginStore {
    /// In this process's memory only: for tests without a database (one replica, lost on restart).
    pub fn memory() -> LoginStore {
        LoginStore(Backend::Memory(Arc::default()))
    }

    /// In PostgreSQL, schema `login_<group>`, over the server's pool (connected as the group role).
    pub fn postgres(pools: Pools) -> LoginStore {
        LoginStore(Backend::Postgres { pools, last_sweep: Arc::default() })
    }

    /// Store a session of a tenant of `group` under a new random token and return the token.
    pub async fn create_session(&self, group: &str, session: Session, now: OffsetDateTime) -> Result<String> {
        let token = super::oidc::random_token();
        let hash = token_hash(&token);
        match &self.0 {
            Backend::Memory(m) => {
                let mut m = lock(m);
                m.sessions.retain(|_, s| s.expires > now);
                m.sessions.insert((group.to_string(), hash), session);
            }
            Backend::Postgres { pools, .. } => {
                let schema = crate::db::login_schema(group)?;
                self.sweep(&schema, now).await;
                let expires = session.expires.unix_timestamp();
                let tenant = session.tenant.clone();
                let data = serde_json::to_string(&Stored::from(session))?;
                let sql = format!(
                    "INSERT INTO {}.login_session (id_hash, tenant, data, expires_at) VALUES ($1, $2, $3, $4)",
                    crate::db::quote::ident(&schema)
                );
                let conn = pools.get(&schema).await?;
                conn.execute(&sql, &[&hash, &tenant, &data, &expires]).await?;
            }
        }
        Ok(token)
    }

    /// The session of a token, if it exists and has not expired.
    pub async fn session(&self, group: &str, token: &str, now: OffsetDateTime) -> Result<Option<Session>> {
        let hash = token_hash(token);
        match &self.0 {
            Backend::Memory(m) => {
                let mut m = lock(m);
                let key = (group.to_string(), hash);
                match m.sessions.get(&key) {
                    Some(s) if s.expires > now => Ok(Some(s.clone())),
                    Some(_) => {
                        m.sessions.remove(&key);
                        Ok(None)
                    }
                    None => Ok(None),
                }
            }
            Backend::Postgres { pools, .. } => {
                let schema = crate::db::login_schema(group)?;
                let sql = format!(
                    "SELECT data FROM {}.login_session WHERE id_hash = $1 AND expires_at > $2",
                    crate::db::quote::ident(&schema)
                );
                let conn = pools.get(&schema).await?;
                let row = conn.query_opt(&sql, &[&hash, &now.unix_timestamp()]).await?;
                row.map(|r| {
                    let s: Stored = serde_json::from_str(r.get::<_, &str>(0))?;
                    Ok(Session::try_from(s)?)
                })
                .transpose()
            }
        }
    }

    /// End a session (nothing happens if it does not exist).
    pub async fn remove_session(&self, group: &str, token: &str) -> Result<()> {
        let hash = token_hash(token);
        match &self.0 {
            Backend::Memory(m) => {
                lock(m).sessions.remove(&(group.to_string(), hash));
            }
            Backend::Postgres { pools, .. } => {
                let schema = crate::db::login_schema(group)?;
                let sql = format!("DELETE FROM {}.login_session WHERE id_hash = $1", crate::db::quote::ident(&schema));
                pools.get(&schema).await?.execute(&sql, &[&hash]).await?;
            }
        }
        Ok(())
    }

    /// Remember a login in progress under the login cookie's token.
    pub async fn put_pending(&self, group: &str, token: &str, pending: Pending, now: OffsetDateTime) -> Result<()> {
        let hash = token_hash(token);
        match &self.0 {
            Backend::Memory(m) => {
                let mut m = lock(m);
                m.pending.retain(|_, (_, at)| *at + PENDING_TTL > now);
                if m.pending.len() >= MAX_PENDING {
                    if let Some(oldest) = m.pending.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone()) {
                        m.pending.remove(&oldest);
                    }
                }
                m.pending.insert((group.to_string(), hash), (pending, now));
            }
            Backend::Postgres { pools, .. } => {
                let schema = crate::db::login_schema(group)?;
                self.sweep(&schema, now).await;
                let data = serde_json::to_string(&pending)?;
                let sql = format!(
                    "INSERT INTO {}.login_pending (key_hash, tenant, data, expires_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (key_hash) DO UPDATE SET tenant = EXCLUDED.tenant, data = EXCLUDED.data,
                                                          expires_at = EXCLUDED.expires_at",
                    crate::db::quote::ident(&schema)
                );
                let expires = (now + PENDING_TTL).unix_timestamp();
                let conn = pools.get(&schema).await?;
                conn.execute(&sql, &[&hash, &pending.tenant(), &data, &expires]).await?;
            }
        }
        Ok(())
    }

    /// The login in progress of a token, left in place (to check a response before taking it).
    pub async fn pending(&self, group: &str, token: &str, now: OffsetDateTime) -> Result<Option<Pending>> {
        let hash = token_hash(token);
        match &self.0 {
            Backend::Memory(m) => Ok(lock(m)
                .pending
                .get(&(group.to_string(), hash))
                .filter(|(_, at)| *at + PENDING_TTL > now)
                .map(|(p, _)| p.clone())),
            Backend::Postgres { pools, .. } => {
                let schema = crate::db::login_schema(group)?;
                let sql = format!(
                    "SELECT data FROM {}.login_pending WHERE key_hash = $1 AND expires_at > $2",
                    crate::db::quote::ident(&schema)
                );
                let conn = pools.get(&schema).await?;
                let row = conn.query_opt(&sql, &[&hash, &now.unix_timestamp()]).await?;
                Ok(row.map(|r| serde_json::from_str(r.get::<_, &str>(0))).transpose()?)
            }
        }
    }

    /// Take (and forget) the login in progress of a token: each can be finished once, also
    /// when several replicas try at the same moment.
    pub async fn take_pending(&self, group: &str, token: &str, now: OffsetDateTime) -> Result<Option<Pending>> {
        let hash = token_hash(token);
        match &self.0 {
            Backend::Memory(m) => {
                let taken = lock(m).pending.remove(&(group.to_string(), hash));
                Ok(taken.and_then(|(p, at)| (at + PENDING_TTL > now).then_some(p)))
            }
            Backend::Postgres { pools, .. } => {
                let schema = crate::db::login_schema(group)?;
                let sql = format!(
                    "DELETE FROM {}.login_pending WHERE key_hash = $1 RETURNING data, expires_at",
                    crate::db::quote::ident(&schema)
                );
                let conn = pools.get(&schema).await?;
                let row = conn.query_opt(&sql, &[&hash]).await?;
                match row {
                    Some(r) if r.get::<_, i64>(1) > now.unix_timestamp() => {
                        Ok(Some(serde_json::from_str(r.get::<_, &str>(0))?))
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    /// Delete expired rows of a group, at most once per [`SWEEP_INTERVAL`] in this process.
    /// A failed sweep is logged and retried at the next interval; it never fails a login.
    async fn sweep(&self, schema: &str, now: OffsetDateTime) {
        let Backend::Postgres { pools, last_sweep } = &self.0 else { return };
        let now_s = now.unix_timestamp();
        {
            let mut last = lock(last_sweep);
            match last.get(schema) {
                Some(at) if now_s - at < SWEEP_INTERVAL.whole_seconds() => return,
                _ => last.insert(schema.to_string(), now_s),
            };
        }
        let q = crate::db::quote::ident(schema);
        let sql = format!(
            "DELETE FROM {q}.login_session WHERE expires_at <= {now_s}; DELETE FROM {q}.login_pending WHERE expires_at <= {now_s}"
        );
        let result = match pools.get(schema).await {
            Ok(conn) => conn.batch_execute(&sql).await.map_err(Error::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::warn!(schema, error = %e, "sweeping expired logins failed");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(n: usize) -> Pending {
        Pending::Saml {
            tenant: "t".into(),
            request_id: format!("_{n}"),
            acs_url: String::new(),
            next: "/".into(),
            min_level: TrustLevel::Substantiell,
        }
    }

    fn session(now: OffsetDateTime) -> Session {
        Session {
            tenant: "detmold".into(),
            name: "Erika Mustermann".into(),
            given_name: None,
            family_name: None,
            trust_level: TrustLevel::Hoch,
            protocol: "saml",
            subject: "x".into(),
            expires: now + SESSION_TTL,
        }
    }

    #[tokio::test]
    async fn pending_logins_are_taken_once_and_expire() {
        let store = LoginStore::memory();
        let now = OffsetDateTime::now_utc();
        store.put_pending("g", "a", pending(1), now).await.unwrap();
        assert_eq!(store.pending("g", "a", now).await.unwrap(), Some(pending(1)), "peeking leaves it");
        assert!(store.pending("other", "a", now).await.unwrap().is_none(), "per group");
        assert!(store.take_pending("g", "a", now).await.unwrap().is_some());
        assert!(store.take_pending("g", "a", now).await.unwrap().is_none());
        store.put_pending("g", "b", pending(2), now).await.unwrap();
        assert!(store.take_pending("g", "b", now + PENDING_TTL + Duration::seconds(1)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn sessions_expire_and_can_be_removed() {
        let store = LoginStore::memory();
        let now = OffsetDateTime::now_utc();
        let id = store.create_session("g", session(now), now).await.unwrap();
        assert_eq!(id.len(), 43, "256 bits, base64url");
        assert!(store.session("g", &id, now).await.unwrap().is_some());
        assert!(store.session("g", &id, now + SESSION_TTL).await.unwrap().is_none());
        let id = store.create_session("g", session(now), now).await.unwrap();
        store.remove_session("g", &id).await.unwrap();
        assert!(store.session("g", &id, now).await.unwrap().is_none());
    }

    #[test]
    fn stored_sessions_round_trip_with_their_subject() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let text = serde_json::to_string(&Stored::from(session(now))).unwrap();
        let back = Session::try_from(serde_json::from_str::<Stored>(&text).unwrap()).unwrap();
        assert_eq!((back.subject.as_str(), back.protocol, back.expires), ("x", "saml", now + SESSION_TTL));
        let p = pending(3);
        assert_eq!(serde_json::from_str::<Pending>(&serde_json::to_string(&p).unwrap()).unwrap(), p);
    }

    #[test]
    fn token_hashes_are_sha256() {
        assert_eq!(
            token_hash("abc").iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
