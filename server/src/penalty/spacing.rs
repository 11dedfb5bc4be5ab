//! The per-user part of the penalties shared through the store
//! (`store/spacing.rs`): failures against a user name on every node add
//! up, a turn is booked once for all nodes, and the sources a user logged
//! in from through any node are not slowed on any.

use std::time::{Duration, Instant};

use ferry_proto::RemoteError;

use super::shared::{hex, ms};
use super::{Attempt, Name, Origin, Penalties, Place};
use crate::logfmt::q;
use crate::store::now_ms;

impl Penalties {
    /// [`Penalties::turn`]'s booking in the store: None if logins as
    /// `key` from this source are not spaced now, else whether a turn was
    /// granted and how long until it comes. A store that does not answer
    /// refuses the login as busy.
    pub(super) async fn book_shared(
        &self,
        origin: Origin,
        key: Name,
        deadline: Instant,
    ) -> Result<Option<(bool, Duration)>, RemoteError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let src = Place::Source(origin.source);
        let name = hex(&key);
        let now = now_ms();
        let unavailable = |e| self.unavailable(src, &e);
        let state = store
            .user_state(&name, &src.to_string(), self.forget_before(now))
            .await
            .map_err(unavailable)?;
        if state.failures < self.cfg.user_penalty_after || state.known {
            return Ok(None);
        }
        let delay = ms(self.user_delay(state.failures));
        // Only a source with no failures against the user waits for a
        // turn to come.
        let until = match state.failed_here {
            true => now,
            false => now.saturating_add(ms(deadline.saturating_duration_since(Instant::now()))),
        };
        let slot = store
            .book_turn(&name, now, until, delay)
            .await
            .map_err(unavailable)?;
        Ok(Some(match slot {
            Some(slot) => {
                let wait = u64::try_from(slot.saturating_sub(now)).unwrap_or(0);
                (true, Duration::from_millis(wait))
            }
            None => (false, Duration::ZERO),
        }))
    }

    /// Counts a failed proof against its user name in the store and, past
    /// `user_penalty_after`, spaces the user's logins from new sources. A
    /// store that does not answer loses it (the login is over either way).
    pub(super) async fn user_failed_shared(&self, attempt: &Attempt<'_>) {
        let Some(store) = &self.store else {
            return;
        };
        let name = hex(&attempt.key);
        let now = now_ms();
        let failures = match store.user_failed(&name, now, self.forget_before(now)).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot count a failed login against its user in the store");
                return;
            }
        };
        let penalized = self.cfg.user_penalty_after;
        if failures < penalized {
            return;
        }
        if failures == penalized {
            tracing::warn!(target: "audit", user = %q(&attempt.user), failures, "repeated failed logins as this user: its logins from new addresses are spaced out");
        }
        let slot = now.saturating_add(ms(self.user_delay(failures)));
        if let Err(e) = store.space_user(&name, slot).await {
            tracing::warn!(error = %e, "cannot space a user's logins in the store");
        }
    }

    /// Records in the store that the user of a passed proof logged in from
    /// its source. A store that does not answer costs the user only that.
    pub(super) async fn known_shared(&self, attempt: &Attempt<'_>) {
        let Some(store) = &self.store else {
            return;
        };
        let src = attempt.origin.source.to_string();
        if let Err(e) = store.user_known(&hex(&attempt.key), &src, now_ms()).await {
            tracing::warn!(error = %e, "cannot record a user's source in the store");
        }
    }
}
