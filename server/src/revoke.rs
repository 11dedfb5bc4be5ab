//! Changes to the user store reach live sessions: the sessions of a
//! removed user, and those that logged in with a password since changed,
//! are closed; new limits hold from the next reservation. `ferryd user` is
//! another process, so the server looks at the store's generation every
//! `auth.user_store_check_ms` and reads the users again when it changed or
//! sessions began since the last reading: one single-row query a second
//! on either engine, so a change on one node reaches every node's sessions
//! within about a second.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::ledger::Limits;
use crate::store::notify::Topic;
use crate::store::Store;
use crate::users::UserRecord;

/// Ends one session from outside.
#[derive(Debug, Default)]
pub struct Revoke {
    token: CancellationToken,
    why: OnceLock<&'static str>,
}

impl Revoke {
    /// Ends the session for `why`; false if it was ended already.
    pub fn revoke(&self, why: &'static str) -> bool {
        let first = self.why.set(why).is_ok();
        self.token.cancel();
        first
    }

    /// Whether the session is to end.
    pub fn is_revoked(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Waits until the session is to end; says why.
    pub async fn revoked(&self) -> &'static str {
        self.token.cancelled().await;
        self.why.get().copied().unwrap_or("revoked")
    }
}

/// What a live session depends on in the user store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserState {
    /// What a login is checked against (the SCRAM StoredKey): it changes
    /// with the password.
    pub credential: String,
    /// The user's limits.
    pub limits: Limits,
}

impl UserState {
    /// A stored user's state, with the server's entry limit where the
    /// record sets none.
    pub fn of(record: &UserRecord, default_max_entries: u64) -> UserState {
        UserState {
            credential: record.stored_key.clone(),
            limits: record.limits(default_max_entries),
        }
    }
}

/// Watches the store every `every` and applies what changed to live
/// sessions, until the task is dropped. A store that cannot be read
/// changes nothing (it is logged).
pub async fn run(store: Store, accounts: Arc<Accounts>, default_max_entries: u64, every: Duration) {
    // The store's generation and the sessions begun at the last reading.
    let mut seen = None;
    loop {
        // On PostgreSQL a change announced by any node ends the wait at
        // once; the poll catches what a lost listener missed.
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = store.changed(Topic::Users) => {}
        }
        let begun = accounts.begun();
        let generation = match store.generation().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look at the user store");
                continue;
            }
        };
        let now = (generation, begun);
        if seen.as_ref() == Some(&now) {
            continue;
        }
        // Read after its generation: at least as new as that.
        let users = match store.users().await {
            Ok(users) => users,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the user store; live sessions are left as they are");
                continue;
            }
        };
        let state: HashMap<String, UserState> = users
            .into_iter()
            .map(|(name, rec)| {
                let state = UserState::of(&rec, default_max_entries);
                (name, state)
            })
            .collect();
        accounts.apply(begun, |name| state.get(name).cloned());
        seen = Some(now);
    }
}
