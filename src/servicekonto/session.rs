//! Server-side login state in memory: citizen sessions keyed by a random 256-bit id (the
//! `portal_session` cookie), and logins in progress (OIDC: keyed by a browser-bound
//! `portal_login` cookie; SAML: keyed by the AuthnRequest ID). Expired entries are dropped
//! when touched and swept on insert.

use crate::tenant::TrustLevel;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

/// How long a citizen session lives.
pub const SESSION_TTL: Duration = Duration::hours(8);
/// How long a login may take at the IdP.
pub const PENDING_TTL: Duration = Duration::minutes(15);
/// At most this many logins in progress are remembered; beyond, the oldest is forgotten
/// (bounds the memory anyone can make the server spend by starting logins).
pub const MAX_PENDING: usize = 100_000;

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

/// A login started but not finished.
#[derive(Debug, Clone)]
pub enum Pending {
    Oidc { tenant: String, state: String, nonce: String, code_verifier: String, redirect_uri: String, next: String },
    Saml { tenant: String, request_id: String, acs_url: String },
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    pending: HashMap<String, (Pending, OffsetDateTime)>,
}

/// The store; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct SessionStore {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionStore { .. }")
    }
}

impl SessionStore {
    pub fn new() -> SessionStore {
        SessionStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Store a session under a new random id and return the id.
    pub fn create(&self, session: Session, now: OffsetDateTime) -> String {
        let id = super::oidc::random_token();
        let mut inner = self.lock();
        inner.sessions.retain(|_, s| s.expires > now);
        inner.sessions.insert(id.clone(), session);
        id
    }

    /// The session of an id, if it exists and has not expired.
    pub fn get(&self, id: &str, now: OffsetDateTime) -> Option<Session> {
        let mut inner = self.lock();
        match inner.sessions.get(id) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                inner.sessions.remove(id);
                None
            }
            None => None,
        }
    }

    /// End a session.
    pub fn remove(&self, id: &str) -> Option<Session> {
        self.lock().sessions.remove(id)
    }

    /// Remember a login in progress under `key`.
    pub fn put_pending(&self, key: String, pending: Pending, now: OffsetDateTime) {
        let mut inner = self.lock();
        inner.pending.retain(|_, (_, at)| *at + PENDING_TTL > now);
        if inner.pending.len() >= MAX_PENDING {
            if let Some(oldest) = inner.pending.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone()) {
                inner.pending.remove(&oldest);
            }
        }
        inner.pending.insert(key, (pending, now));
    }

    /// Take (and forget) a login in progress: each can be finished once.
    pub fn take_pending(&self, key: &str, now: OffsetDateTime) -> Option<Pending> {
        let (p, at) = self.lock().pending.remove(key)?;
        (at + PENDING_TTL > now).then_some(p)
    }

    /// Number of live sessions (for metrics and tests).
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(n: usize) -> Pending {
        Pending::Saml { tenant: "t".into(), request_id: format!("_{n}"), acs_url: String::new() }
    }

    #[test]
    fn pending_logins_are_taken_once_and_expire() {
        let store = SessionStore::new();
        let now = OffsetDateTime::now_utc();
        store.put_pending("a".into(), pending(1), now);
        assert!(store.take_pending("a", now).is_some());
        assert!(store.take_pending("a", now).is_none());
        store.put_pending("b".into(), pending(2), now);
        assert!(store.take_pending("b", now + PENDING_TTL + Duration::seconds(1)).is_none());
    }

    #[test]
    fn sessions_expire_and_can_be_removed() {
        let store = SessionStore::new();
        let now = OffsetDateTime::now_utc();
        let s = Session {
            tenant: "detmold".into(),
            name: "Erika Mustermann".into(),
            given_name: None,
            family_name: None,
            trust_level: TrustLevel::Hoch,
            protocol: "saml",
            subject: "x".into(),
            expires: now + SESSION_TTL,
        };
        let id = store.create(s, now);
        assert_eq!(id.len(), 43, "256 bits, base64url");
        assert!(store.get(&id, now).is_some());
        assert!(store.get(&id, now + SESSION_TTL).is_none());
        let id = store.create(store_session(now), now);
        assert!(store.remove(&id).is_some());
        assert!(store.get(&id, now).is_none());
    }

    fn store_session(now: OffsetDateTime) -> Session {
        Session {
            tenant: "detmold".into(),
            name: "n".into(),
            given_name: None,
            family_name: None,
            trust_level: TrustLevel::Basisregistrierung,
            protocol: "oidc",
            subject: "y".into(),
            expires: now + SESSION_TTL,
        }
    }
}
