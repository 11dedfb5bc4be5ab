//! Login failures, proofs being checked and bans per source, shared by
//! every node, so failures spread over nodes add up to one ban and a ban
//! holds on all of them (the policy is `penalty.rs`'s).
//!
//! A source is kept as the text of its address (an IPv6 network by its
//! first address); the network a source belongs to, whose failures add up
//! to a ban of their own, as CIDR text (`10.0.0.0/24`), so the two never
//! meet. Failures are counted per (source, user name key) and
//! forgotten together once the source's newest is older than the
//! forgetting time; a proof being checked is a row of its own that counts
//! until it ends or outlives the login deadline; a ban is a row with its
//! end. Every statement stands alone (no transaction): each count is read
//! after its own write committed, so of two nodes counting at once the
//! later sees both.

use sqlx::Row;

use super::{Store, StoreError};

/// What the store knows of a source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceState {
    /// Failures not yet forgotten (a try counted as it took its turn
    /// included).
    pub failures: u32,
    /// Proofs being checked on any node.
    pub attempts: u32,
    /// The end of its ban (Unix ms), if it is banned now.
    pub banned_until: Option<i64>,
}

fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn random_id() -> Result<String, StoreError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| StoreError::Config(format!("no system randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Store {
    /// The state of `source` (an address or a network) at `now`: its
    /// failures (none if the newest is before `forget_before`), its proofs
    /// begun since `stale_before`, and its ban. One statement.
    pub async fn source_state(
        &self,
        source: &str,
        now: i64,
        forget_before: i64,
        stale_before: i64,
    ) -> Result<SourceState, StoreError> {
        let row = sqlx::query(
            "SELECT
                CAST(COALESCE((SELECT SUM(failures) FROM login_failures WHERE source = $1), 0) AS BIGINT) AS failures,
                CAST(COALESCE((SELECT MAX(last_failure) FROM login_failures WHERE source = $1), 0) AS BIGINT) AS newest,
                CAST((SELECT COUNT(*) FROM login_attempts WHERE source = $1 AND started >= $2)
                    + (SELECT COUNT(*) FROM login_attempts WHERE network = $1 AND started >= $2) AS BIGINT) AS attempts,
                CAST(COALESCE((SELECT MAX(banned_until) FROM login_bans WHERE source = $1), 0) AS BIGINT) AS banned_until",
        )
        .bind(source)
        .bind(stale_before)
        .fetch_one(self.pool())
        .await?;
        let newest: i64 = row.try_get("newest")?;
        let failures: i64 = row.try_get("failures")?;
        let until: i64 = row.try_get("banned_until")?;
        Ok(SourceState {
            failures: if newest >= forget_before {
                count(failures)
            } else {
                0
            },
            attempts: count(row.try_get("attempts")?),
            banned_until: (until > now).then_some(until),
        })
    }

    /// Registers a proof from `source` (in `network`, if networks count)
    /// being checked now; returns its id (for [`Store::end_attempt`]) and
    /// the state of the source and of its network, this proof included.
    pub async fn begin_attempt(
        &self,
        source: &str,
        network: Option<&str>,
        now: i64,
        forget_before: i64,
        stale_before: i64,
    ) -> Result<(String, SourceState, Option<SourceState>), StoreError> {
        let id = random_id()?;
        sqlx::query(
            "INSERT INTO login_attempts (id, source, network, started) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(source)
        .bind(network.unwrap_or(""))
        .bind(now)
        .execute(self.pool())
        .await?;
        let states = async {
            let state = self
                .source_state(source, now, forget_before, stale_before)
                .await?;
            let net = match network {
                Some(net) => Some(
                    self.source_state(net, now, forget_before, stale_before)
                        .await?,
                ),
                None => None,
            };
            Ok::<_, StoreError>((state, net))
        };
        match states.await {
            Ok((state, net)) => Ok((id, state, net)),
            Err(e) => {
                // Best effort: it expires with the login deadline anyway.
                let _ = self.end_attempt(&id).await;
                Err(e)
            }
        }
    }

    /// Ends a proof's check.
    pub async fn end_attempt(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_attempts WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Counts a failure of `source` against the user name `name` (a key,
    /// never the name a client sent); returns the source's failures now
    /// (on every node). Failures of a source whose newest is before
    /// `forget_before` are forgotten first.
    pub async fn record_failure(
        &self,
        source: &str,
        name: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<u32, StoreError> {
        sqlx::query(
            "DELETE FROM login_failures WHERE source = $1
             AND (SELECT MAX(last_failure) FROM login_failures WHERE source = $1) < $2",
        )
        .bind(source)
        .bind(forget_before)
        .execute(self.pool())
        .await?;
        sqlx::query(
            "INSERT INTO login_failures (source, name, failures, last_failure) VALUES ($1, $2, 1, $3)
             ON CONFLICT (source, name) DO UPDATE
             SET failures = login_failures.failures + 1, last_failure = excluded.last_failure",
        )
        .bind(source)
        .bind(name)
        .bind(now)
        .execute(self.pool())
        .await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(failures), 0) AS BIGINT) AS n FROM login_failures WHERE source = $1",
        )
        .bind(source)
        .fetch_one(self.pool())
        .await?;
        Ok(count(row.try_get("n")?))
    }

    /// Clears the failures of `source` against `name` (its login passed).
    pub async fn clear_failures(&self, source: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE source = $1 AND name = $2")
            .bind(source)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Bans `source` until `until` (Unix ms; a longer ban already there
    /// stays) and forgets its failures: when the ban ends it starts again
    /// from nothing.
    pub async fn ban(&self, source: &str, until: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_bans (source, banned_until) VALUES ($1, $2)
             ON CONFLICT (source) DO UPDATE SET banned_until = CASE
                WHEN excluded.banned_until > login_bans.banned_until THEN excluded.banned_until
                ELSE login_bans.banned_until END",
        )
        .bind(source)
        .bind(until)
        .execute(self.pool())
        .await?;
        self.announce(super::notify::Topic::Bans).await?;
        sqlx::query("DELETE FROM login_failures WHERE source = $1")
            .bind(source)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends the check of a proof from `source` (in `network`) that
    /// passed, and returns the end of the ban of the source or its network
    /// if either is banned at `now`: one statement (two if the row was
    /// pruned meanwhile).
    pub async fn end_attempt_banned_until(
        &self,
        id: &str,
        source: &str,
        network: Option<&str>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM login_attempts WHERE id = $1
             RETURNING CAST(COALESCE((SELECT MAX(banned_until) FROM login_bans
                WHERE source IN ($2, $4) AND banned_until > $3), 0) AS BIGINT) AS until",
        )
        .bind(id)
        .bind(source)
        .bind(now)
        .bind(network.unwrap_or(source))
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => {
                let until: i64 = row.try_get("until")?;
                Ok((until > now).then_some(until))
            }
            None => self.banned_until(source, network, now).await,
        }
    }

    /// The end of the ban of `source` or of its `network`, if either is
    /// banned at `now`.
    pub async fn banned_until(
        &self,
        source: &str,
        network: Option<&str>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(banned_until) AS until FROM login_bans
             WHERE source IN ($1, $3) AND banned_until > $2",
        )
        .bind(source)
        .bind(now)
        .bind(network.unwrap_or(source))
        .fetch_one(self.pool())
        .await?;
        let until: Option<i64> = row.try_get("until")?;
        Ok(until)
    }

    /// Every ban in force at `now`: (source, end in Unix ms).
    pub async fn bans(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT source, banned_until FROM login_bans WHERE banned_until > $1")
                .bind(now)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("source")?, r.try_get("banned_until")?)))
            .collect()
    }

    /// Deletes what no longer counts: bans over at `now`, proofs begun
    /// before `stale_before` (their node died or lost the store), and the
    /// failures of sources whose newest is before `forget_before`.
    /// Returns the rows deleted.
    pub async fn prune_logins(
        &self,
        now: i64,
        forget_before: i64,
        stale_before: i64,
    ) -> Result<u64, StoreError> {
        let bans = sqlx::query("DELETE FROM login_bans WHERE banned_until <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        let attempts = sqlx::query("DELETE FROM login_attempts WHERE started < $1")
            .bind(stale_before)
            .execute(self.pool())
            .await?;
        let failures = sqlx::query(
            "DELETE FROM login_failures WHERE source IN
             (SELECT source FROM login_failures GROUP BY source HAVING MAX(last_failure) < $1)",
        )
        .bind(forget_before)
        .execute(self.pool())
        .await?;
        Ok(bans.rows_affected() + attempts.rows_affected() + failures.rows_affected())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;

    /// A store in a temporary root (SQLite), kept with its directory.
    pub(crate) async fn sqlite() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            root: dir.path().to_path_buf(),
            ..Config::default()
        };
        (Store::open(&config).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn failures_add_up_and_clear_per_name() {
        let (store, _dir) = sqlite().await;
        let src = "10.0.0.1";
        assert_eq!(store.record_failure(src, "a", 1000, 0).await.unwrap(), 1);
        assert_eq!(store.record_failure(src, "b", 1001, 0).await.unwrap(), 2);
        assert_eq!(store.record_failure(src, "a", 1002, 0).await.unwrap(), 3);
        assert_eq!(
            store
                .record_failure("10.0.0.2", "a", 1002, 0)
                .await
                .unwrap(),
            1
        );
        store.clear_failures(src, "a").await.unwrap();
        let state = store.source_state(src, 1003, 0, 0).await.unwrap();
        assert_eq!(state.failures, 1);
        // Forgotten together once the newest is old.
        let state = store.source_state(src, 5000, 1002, 0).await.unwrap();
        assert_eq!(state.failures, 0);
        assert_eq!(store.record_failure(src, "c", 5000, 1002).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn attempts_count_until_they_end_or_go_stale() {
        let (store, _dir) = sqlite().await;
        let src = "10.0.0.1";
        let (a, state, _) = store.begin_attempt(src, None, 1000, 0, 0).await.unwrap();
        assert_eq!(state.attempts, 1);
        let (_b, state, _) = store.begin_attempt(src, None, 2000, 0, 0).await.unwrap();
        assert_eq!(state.attempts, 2);
        store.end_attempt(&a).await.unwrap();
        assert_eq!(
            store.source_state(src, 2000, 0, 0).await.unwrap().attempts,
            1
        );
        // Begun before the deadline's reach: its node is gone.
        assert_eq!(
            store
                .source_state(src, 9000, 0, 5000)
                .await
                .unwrap()
                .attempts,
            0
        );
        assert_eq!(store.prune_logins(9000, 0, 5000).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_proof_that_passed_ends_and_learns_of_a_ban_in_one_go() {
        let (store, _dir) = sqlite().await;
        let src = "10.0.0.1";
        let (a, _, _) = store.begin_attempt(src, None, 1000, 0, 0).await.unwrap();
        let (b, _, _) = store.begin_attempt(src, None, 1000, 0, 0).await.unwrap();
        let until = store
            .end_attempt_banned_until(&a, src, None, 1000)
            .await
            .unwrap();
        assert_eq!(until, None);
        store.ban(src, 3000).await.unwrap();
        let until = store
            .end_attempt_banned_until(&b, src, None, 2000)
            .await
            .unwrap();
        assert_eq!(until, Some(3000));
        assert_eq!(
            store.source_state(src, 2000, 0, 0).await.unwrap().attempts,
            0
        );
        // Its row gone (pruned), the ban is still looked up.
        let until = store
            .end_attempt_banned_until(&b, src, None, 2500)
            .await
            .unwrap();
        assert_eq!(until, Some(3000));
        let until = store
            .end_attempt_banned_until(&b, src, None, 3000)
            .await
            .unwrap();
        assert_eq!(until, None);
    }

    #[tokio::test]
    async fn a_ban_keeps_the_longer_end_and_forgets_failures() {
        let (store, _dir) = sqlite().await;
        let src = "2001:db8::";
        store.record_failure(src, "a", 1000, 0).await.unwrap();
        store.ban(src, 60_000).await.unwrap();
        store.ban(src, 30_000).await.unwrap();
        assert_eq!(
            store.banned_until(src, None, 1000).await.unwrap(),
            Some(60_000)
        );
        assert_eq!(
            store.banned_until("10.0.0.9", None, 1000).await.unwrap(),
            None
        );
        let state = store.source_state(src, 1000, 0, 0).await.unwrap();
        assert_eq!(state.failures, 0);
        assert_eq!(state.banned_until, Some(60_000));
        assert_eq!(
            store.bans(1000).await.unwrap(),
            vec![(src.to_string(), 60_000)]
        );
        assert!(store.bans(60_000).await.unwrap().is_empty());
        assert_eq!(store.banned_until(src, None, 60_000).await.unwrap(), None);
        store.prune_logins(60_000, 0, 0).await.unwrap();
        store.ban(src, 70_000).await.unwrap();
        assert_eq!(
            store.banned_until(src, None, 60_000).await.unwrap(),
            Some(70_000)
        );
    }
}
