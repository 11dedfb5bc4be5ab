//! Uploads in progress, per user and path, with the node that runs each,
//! so a second upload of the same path through another node takes over
//! as it would on one node: it marks the row wanted, the owner's node
//! (which looks for such marks with every usage sync) stops its upload
//! and lets go, and the newcomer claims the row and resumes from the
//! partial. A row of a dead node is taken over at once.

use std::time::Duration;

use sqlx::Row;

use super::{now_ms, Store, StoreError};

/// The outcome of a claim.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This node runs the upload now; `from_dead`: the bytes a dead
    /// node had reserved for it (still counted in the user's usage).
    Got { from_dead: Option<u64> },
    /// A live node runs it; it has been asked to let go.
    Asked,
}

impl Store {
    /// Claims `user`'s upload of `path` for `node`: taken if free, or held
    /// by a node silent for `gone`; else the holder is asked to let go.
    /// Only with several nodes (PostgreSQL): the row is locked while
    /// deciding.
    pub async fn claim_upload(
        &self,
        user: &str,
        path: &str,
        node: &str,
        gone: Duration,
    ) -> Result<Claim, StoreError> {
        let now = now_ms();
        let dead = now - i64::try_from(gone.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.write_tx().await?;
        let held = sqlx::query(
            "SELECT u.node AS node, u.reserved AS reserved, n.heartbeat AS heartbeat
             FROM uploads u LEFT JOIN nodes n ON n.id = u.node
             WHERE u.user_name = $1 AND u.path = $2 FOR UPDATE OF u",
        )
        .bind(user)
        .bind(path)
        .fetch_optional(&mut *tx)
        .await?;
        // Taken: a new row, or the row taken over (this node's own, or a
        // dead node's, whose reservation comes back to the caller).
        let take = match &held {
            None => Some((
                "INSERT INTO uploads (user_name, path, node, wanted_by, started, reserved)
                 VALUES ($1, $2, $3, NULL, $4, 0) ON CONFLICT (user_name, path) DO NOTHING",
                None,
            )),
            Some(row) => {
                let owner: String = row.try_get("node")?;
                let beat: Option<i64> = row.try_get("heartbeat")?;
                let reserved: i64 = row.try_get("reserved")?;
                (owner == node || beat.is_none_or(|b| b < dead)).then(|| {
                    (
                        "UPDATE uploads SET node = $3, wanted_by = NULL, started = $4, reserved = 0
                         WHERE user_name = $1 AND path = $2",
                        (owner != node).then(|| u64::try_from(reserved).unwrap_or(0)),
                    )
                })
            }
        };
        let claim = match take {
            Some((statement, from_dead)) => {
                let done = sqlx::query(statement)
                    .bind(user)
                    .bind(path)
                    .bind(node)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                match done.rows_affected() {
                    0 => Claim::Asked, // another node got there first: ask again
                    _ => Claim::Got { from_dead },
                }
            }
            None => {
                sqlx::query("UPDATE uploads SET wanted_by = $3 WHERE user_name = $1 AND path = $2")
                    .bind(user)
                    .bind(path)
                    .bind(node)
                    .execute(&mut *tx)
                    .await?;
                Claim::Asked
            }
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Takes `bytes` off a user's usage: what a dead node had reserved
    /// and not written.
    pub async fn return_reserved(&self, user: &str, bytes: u64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        super::quota::apply_in(&mut tx, user, -i64::try_from(bytes).unwrap_or(i64::MAX)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uploads held by nodes silent for `gone`: (user, path, node, reserved).
    pub async fn dead_uploads(
        &self,
        gone: Duration,
    ) -> Result<Vec<(String, String, String, u64)>, StoreError> {
        let dead = now_ms() - i64::try_from(gone.as_millis()).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT u.user_name AS user_name, u.path AS path, u.node AS node, u.reserved AS reserved
             FROM uploads u LEFT JOIN nodes n ON n.id = u.node
             WHERE n.id IS NULL OR n.heartbeat < $1",
        )
        .bind(dead)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let reserved: i64 = r.try_get("reserved")?;
                Ok((
                    r.try_get("user_name")?,
                    r.try_get("path")?,
                    r.try_get("node")?,
                    u64::try_from(reserved).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Forgets a dead node's upload and takes `unwritten` bytes off the
    /// user's usage, unless another node took the upload over meanwhile.
    pub async fn drop_dead_upload(
        &self,
        user: &str,
        path: &str,
        node: &str,
        unwritten: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let gone =
            sqlx::query("DELETE FROM uploads WHERE user_name = $1 AND path = $2 AND node = $3")
                .bind(user)
                .bind(path)
                .bind(node)
                .execute(&mut *tx)
                .await?;
        if gone.rows_affected() > 0 {
            super::quota::apply_in(&mut tx, user, -i64::try_from(unwritten).unwrap_or(i64::MAX))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Lets go of an upload this node holds.
    pub async fn release_upload(
        &self,
        user: &str,
        path: &str,
        node: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM uploads WHERE user_name = $1 AND path = $2 AND node = $3")
            .bind(user)
            .bind(path)
            .bind(node)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// This node's uploads that another node wants: (user, path).
    pub async fn wanted_uploads(&self, node: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_name, path FROM uploads WHERE node = $1 AND wanted_by IS NOT NULL",
        )
        .bind(node)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_name")?, r.try_get("path")?)))
            .collect()
    }
}
