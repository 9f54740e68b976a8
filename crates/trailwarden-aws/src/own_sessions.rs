//! The credentials trailwarden itself obtains: the access key id of every session it gets
//! (its own credentials, each role it assumes), recorded as they are issued. A CloudTrail
//! record is trailwarden's own call only when its `userIdentity.accessKeyId` is one of these:
//! a role-session name proves nothing, since anyone who can assume a role chooses it.
//!
//! Key ids are not secrets (AWS prints them in every CloudTrail record); the secrets and
//! session tokens are never kept here.

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// One session trailwarden obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnSession {
    pub access_key_id: String,
    /// The role assumed (`arn:aws:iam::<account>:role/<name>`); `None` for the credentials
    /// trailwarden was started with (an instance or execution role, a profile).
    pub role_arn: Option<String>,
}

type Listener = Arc<dyn Fn(&OwnSession) + Send + Sync>;

/// Every session obtained by one process, and who to tell about new ones (the state store,
/// so that other processes sharing it know them too).
#[derive(Default)]
pub struct OwnSessions {
    keys: Mutex<HashMap<String, OwnSession>>,
    listener: Mutex<Option<Listener>>,
}

impl std::fmt::Debug for OwnSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnSessions")
            .field("sessions", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl OwnSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, OwnSession>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes a session; the listener hears of it once.
    pub fn record(&self, access_key_id: &str, role_arn: Option<&str>) {
        let session = OwnSession {
            access_key_id: access_key_id.to_owned(),
            role_arn: role_arn.map(str::to_owned),
        };
        let new = self
            .lock()
            .insert(access_key_id.to_owned(), session.clone())
            .is_none();
        if new {
            let listener = self
                .listener
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(listener) = listener {
                listener(&session);
            }
        }
    }

    /// The session with this access key id, if this process obtained it.
    pub fn get(&self, access_key_id: &str) -> Option<OwnSession> {
        self.lock().get(access_key_id).cloned()
    }

    /// Every session so far.
    pub fn all(&self) -> Vec<OwnSession> {
        self.lock().values().cloned().collect()
    }

    /// Calls `listener` for every session obtained from now on, and at once for those
    /// obtained before.
    pub fn on_new(&self, listener: impl Fn(&OwnSession) + Send + Sync + 'static) {
        let listener: Listener = Arc::new(listener);
        for session in self.all() {
            listener(&session);
        }
        *self.listener.lock().unwrap_or_else(PoisonError::into_inner) = Some(listener);
    }
}

/// A credentials provider that notes the key id of whatever its inner provider hands out.
#[derive(Debug)]
pub(crate) struct Recording {
    pub(crate) inner: SharedCredentialsProvider,
    pub(crate) role_arn: Option<String>,
    pub(crate) sessions: Arc<OwnSessions>,
}

impl ProvideCredentials for Recording {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            let credentials: Credentials = self.inner.provide_credentials().await?;
            self.sessions
                .record(credentials.access_key_id(), self.role_arn.as_deref());
            Ok(credentials)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn every_key_handed_out_is_noted_once_and_heard_of() {
        let sessions = Arc::new(OwnSessions::default());
        let heard = Arc::new(AtomicUsize::new(0));
        let counter = heard.clone();
        sessions.on_new(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let recording = Recording {
            inner: SharedCredentialsProvider::new(Credentials::new(
                "ASIAOWNKEY0000000001",
                "secret",
                None,
                None,
                "test",
            )),
            role_arn: Some("arn:aws:iam::111111111111:role/TrailwardenAudit".into()),
            sessions: sessions.clone(),
        };
        for _ in 0..3 {
            recording.provide_credentials().await.unwrap();
        }
        assert_eq!(heard.load(Ordering::Relaxed), 1);
        let session = sessions.get("ASIAOWNKEY0000000001").unwrap();
        assert_eq!(
            session.role_arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/TrailwardenAudit")
        );
        assert!(sessions.get("ASIAATTACKER00000001").is_none());
        // Nothing but the key id is kept.
        assert!(!format!("{sessions:?}").contains("secret"));
    }
}
