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
    /// This node runs the upload now.
    Got,
    /// A live node runs it; it has been asked to let go.
    Asked,
}

impl Store {
    /// Claims `user`'s upload of `path` for `node`: taken if free or held
    /// by a node silent for `expiry`; else the holder is asked to let go.
    pub async fn claim_upload(
        &self,
        user: &str,
        path: &str,
        node: &str,
        expiry: Duration,
    ) -> Result<Claim, StoreError> {
        let now = now_ms();
        let dead = now - i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.pool().begin().await?;
        // Free, or its node is gone or silent: ours.
        let got = sqlx::query(
            "INSERT INTO uploads (user_name, path, node, wanted_by, started)
             VALUES ($1, $2, $3, NULL, $4)
             ON CONFLICT (user_name, path) DO UPDATE SET node = $3, wanted_by = NULL, started = $4
             WHERE uploads.node = $3
                OR uploads.node NOT IN (SELECT id FROM nodes WHERE heartbeat >= $5)",
        )
        .bind(user)
        .bind(path)
        .bind(node)
        .bind(now)
        .bind(dead)
        .execute(&mut *tx)
        .await?;
        let claim = if got.rows_affected() > 0 {
            Claim::Got
        } else {
            sqlx::query("UPDATE uploads SET wanted_by = $3 WHERE user_name = $1 AND path = $2")
                .bind(user)
                .bind(path)
                .bind(node)
                .execute(&mut *tx)
                .await?;
            Claim::Asked
        };
        tx.commit().await?;
        Ok(claim)
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
