//! Failed logins per user name, shared by every node, so failures against
//! one user through several nodes add up to one spacing of that user's
//! logins from new sources, a turn booked on one node is taken on all,
//! and a source the user logged in from through any node is known to
//! every node (the policy is `penalty.rs`'s).
//!
//! Names are keys (a hash of the name a client sent, never the name).
//! Each statement stands alone; a turn is booked by one conditional
//! update, so of two nodes booking at once one gets it.

use sqlx::Row;

use super::{Store, StoreError};

/// Sources a user's record remembers logging in from.
pub const KNOWN_PER_USER: i64 = 8;
/// How stale a known source's time may get before a login refreshes it.
pub const KNOWN_REFRESH_MS: i64 = 3_600_000;

/// What the store knows of a user name, as seen from one source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserState {
    /// Failures against the name, from anywhere, not yet forgotten.
    pub failures: u32,
    /// The earliest time (Unix ms) a login from an unknown source is
    /// checked.
    pub next_slot: i64,
    /// The user logged in from this source lately.
    pub known: bool,
    /// This source has failures against the name.
    pub failed_here: bool,
}

fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

impl Store {
    /// The state of the user name `name` seen from `source` at `now`
    /// (failures none if the newest is before `forget_before`). One
    /// statement.
    pub async fn user_state(
        &self,
        name: &str,
        source: &str,
        forget_before: i64,
    ) -> Result<UserState, StoreError> {
        let row = sqlx::query(
            "SELECT
                CAST(COALESCE((SELECT failures FROM login_users WHERE name = $1 AND last_failure >= $3), 0) AS BIGINT) AS failures,
                CAST(COALESCE((SELECT next_slot FROM login_users WHERE name = $1), 0) AS BIGINT) AS next_slot,
                CAST((SELECT COUNT(*) FROM login_known WHERE name = $1 AND source = $2) AS BIGINT) AS known,
                CAST((SELECT COUNT(*) FROM login_failures WHERE name = $1 AND source = $2) AS BIGINT) AS failed_here",
        )
        .bind(name)
        .bind(source)
        .bind(forget_before)
        .fetch_one(self.pool())
        .await?;
        Ok(UserState {
            failures: count(row.try_get("failures")?),
            next_slot: row.try_get("next_slot")?,
            known: row.try_get::<i64, _>("known")? > 0,
            failed_here: row.try_get::<i64, _>("failed_here")? > 0,
        })
    }

    /// Books the next turn of `name` if it comes by `until` (Unix ms):
    /// the turn is at the later of its next slot and `now`, and the slot
    /// after it `delay_ms` later. Returns the turn's time, or None if the
    /// next slot is after `until`. One conditional update: of two nodes
    /// booking at once, one gets the turn.
    pub async fn book_turn(
        &self,
        name: &str,
        now: i64,
        until: i64,
        delay_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "UPDATE login_users
             SET next_slot = (CASE WHEN next_slot > $2 THEN next_slot ELSE $2 END) + $4
             WHERE name = $1 AND next_slot <= $3
             RETURNING CAST(next_slot - $4 AS BIGINT) AS slot",
        )
        .bind(name)
        .bind(now)
        .bind(until)
        .bind(delay_ms)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| r.try_get("slot"))
            .transpose()
            .map_err(Into::into)
    }

    /// Counts a failure against `name` at `now` (those before
    /// `forget_before` forgotten first); returns the failures now.
    pub async fn user_failed(
        &self,
        name: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<u32, StoreError> {
        let row = sqlx::query(
            "INSERT INTO login_users (name, failures, last_failure, next_slot) VALUES ($1, 1, $2, 0)
             ON CONFLICT (name) DO UPDATE SET
                failures = CASE WHEN login_users.last_failure < $3 THEN 1
                    ELSE login_users.failures + 1 END,
                last_failure = excluded.last_failure
             RETURNING failures",
        )
        .bind(name)
        .bind(now)
        .bind(forget_before)
        .fetch_one(self.pool())
        .await?;
        Ok(count(row.try_get("failures")?))
    }

    /// Moves `name`'s next slot to `slot` unless it is later already.
    pub async fn space_user(&self, name: &str, slot: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE login_users SET next_slot = $2 WHERE name = $1 AND next_slot < $2")
            .bind(name)
            .bind(slot)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records that `name` logged in from `source` at `now`, keeping the
    /// newest [`KNOWN_PER_USER`] sources. A source seen within the last
    /// [`KNOWN_REFRESH_MS`] is left as it is: most logins write nothing.
    pub async fn user_known(&self, name: &str, source: &str, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO login_known (name, source, at) VALUES ($1, $2, $3)
             ON CONFLICT (name, source) DO UPDATE SET at = excluded.at
             WHERE login_known.at < $4",
        )
        .bind(name)
        .bind(source)
        .bind(now)
        .bind(now.saturating_sub(KNOWN_REFRESH_MS))
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(());
        }
        sqlx::query(
            "DELETE FROM login_known WHERE name = $1 AND at <
             (SELECT at FROM login_known WHERE name = $1 ORDER BY at DESC LIMIT 1 OFFSET $2)",
        )
        .bind(name)
        .bind(KNOWN_PER_USER - 1)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes the user records whose failures are before `forget_before`
    /// and whose next slot has passed at `now`; returns how many.
    pub async fn prune_users(&self, now: i64, forget_before: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM login_users WHERE last_failure < $1 AND next_slot <= $2")
                .bind(forget_before)
                .bind(now)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::bans::tests::sqlite;

    #[tokio::test]
    async fn failures_add_up_and_are_forgotten() {
        let (store, _dir) = sqlite().await;
        assert_eq!(store.user_failed("n", 1000, 0).await.unwrap(), 1);
        assert_eq!(store.user_failed("n", 1001, 0).await.unwrap(), 2);
        let s = store.user_state("n", "10.0.0.1", 0).await.unwrap();
        assert_eq!(s.failures, 2);
        assert!(!s.known && !s.failed_here);
        // Forgotten once the newest is old; counting starts again.
        assert_eq!(
            store
                .user_state("n", "10.0.0.1", 1002)
                .await
                .unwrap()
                .failures,
            0
        );
        assert_eq!(store.user_failed("n", 5000, 1002).await.unwrap(), 1);
        assert_eq!(store.prune_users(6000, 5001).await.unwrap(), 1);
        assert_eq!(store.user_state("n", "x", 0).await.unwrap().failures, 0);
    }

    #[tokio::test]
    async fn a_turn_is_booked_once() {
        let (store, _dir) = sqlite().await;
        // No record: no turn to book (nothing spaces the name).
        assert_eq!(store.book_turn("n", 1000, 1000, 500).await.unwrap(), None);
        store.user_failed("n", 1000, 0).await.unwrap();
        store.space_user("n", 2000).await.unwrap();
        store.space_user("n", 1500).await.unwrap();
        assert_eq!(store.user_state("n", "s", 0).await.unwrap().next_slot, 2000);
        // Not free now; free by a deadline after it.
        assert_eq!(store.book_turn("n", 1000, 1000, 500).await.unwrap(), None);
        assert_eq!(
            store.book_turn("n", 1000, 3000, 500).await.unwrap(),
            Some(2000)
        );
        // Booked: the next is 500 ms later.
        assert_eq!(store.book_turn("n", 1000, 2000, 500).await.unwrap(), None);
        assert_eq!(
            store.book_turn("n", 4000, 4000, 500).await.unwrap(),
            Some(4000)
        );
    }

    #[tokio::test]
    async fn known_sources_keep_the_newest_eight() {
        let (store, _dir) = sqlite().await;
        for i in 0..10 {
            store
                .user_known("n", &format!("10.0.0.{i}"), 1000 + i)
                .await
                .unwrap();
        }
        let known = |s: String| {
            let store = store.clone();
            async move { store.user_state("n", &s, 0).await.unwrap().known }
        };
        assert!(!known("10.0.0.0".into()).await && !known("10.0.0.1".into()).await);
        assert!(known("10.0.0.2".into()).await && known("10.0.0.9".into()).await);
        // Seen again an hour later, an old one is new.
        let later = 1010 + super::KNOWN_REFRESH_MS;
        store.user_known("n", "10.0.0.2", later).await.unwrap();
        store.user_known("n", "10.0.0.0", later + 1).await.unwrap();
        assert!(known("10.0.0.2".into()).await && !known("10.0.0.3".into()).await);
    }
}
