//! Each user's usage (bytes and entries) in the store, shared by every
//! node. Nodes keep a copy in their ledger (`ledger.rs`) and send what
//! changed as deltas; on PostgreSQL an upload's reservation is one
//! conditional update of the user's row (`bytes + n - lean <= limit`),
//! so parallel uploads through several nodes fit exactly as the quota
//! allows. The row lock serialises them; nothing is checked in between.

use sqlx::Row;

use super::{now_ms, Store, StoreError};
use crate::ledger::{Cost, Delta};

/// A user's usage as the store has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage(pub Cost);

fn usage(row: &sqlx::any::AnyRow) -> Result<Usage, StoreError> {
    let bytes: i64 = row.try_get("bytes")?;
    let entries: i64 = row.try_get("entries")?;
    Ok(Usage(Cost {
        bytes: u64::try_from(bytes).unwrap_or(0),
        entries: u64::try_from(entries).unwrap_or(0),
    }))
}

/// Adds `d` to a user's row inside `tx`, never below zero.
async fn apply(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user: &str,
    d: Delta,
) -> Result<(), StoreError> {
    if d.is_zero() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE usage SET
            bytes = CASE WHEN bytes + $2 < 0 THEN 0 ELSE bytes + $2 END,
            entries = CASE WHEN entries + $3 < 0 THEN 0 ELSE entries + $3 END
         WHERE user_name = $1",
    )
    .bind(user)
    .bind(d.bytes)
    .bind(d.entries)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The outcome of a reservation.
#[derive(Debug)]
pub enum Reserved {
    /// Taken; the usage after it.
    Taken(Usage),
    /// Does not fit; the usage as it is.
    Refused(Usage),
}

/// Adds `bytes` (negative: takes off) to a user's usage inside `tx`.
pub(super) async fn apply_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user: &str,
    bytes: i64,
) -> Result<(), StoreError> {
    apply(tx, user, Delta { bytes, entries: 0 }).await
}

impl Store {
    /// A user's usage, if the store has one.
    pub async fn usage(&self, user: &str) -> Result<Option<Usage>, StoreError> {
        let row = sqlx::query("SELECT bytes, entries FROM usage WHERE user_name = $1")
            .bind(user)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(usage).transpose()
    }

    /// Records a measured usage (a walk of the home), replacing any.
    pub async fn set_usage(&self, user: &str, used: Cost) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO usage (user_name, bytes, entries, measured_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_name) DO UPDATE SET bytes = $2, entries = $3, measured_at = $4",
        )
        .bind(user)
        .bind(i64::try_from(used.bytes).unwrap_or(i64::MAX))
        .bind(i64::try_from(used.entries).unwrap_or(i64::MAX))
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Adds a node's changes to a user's usage; returns the usage after.
    /// One statement (one round trip, no transaction to open and close).
    pub async fn add_usage(&self, user: &str, d: Delta) -> Result<Option<Usage>, StoreError> {
        if d.is_zero() {
            return self.usage(user).await;
        }
        let row = sqlx::query(
            "UPDATE usage SET
                bytes = CASE WHEN bytes + $2 < 0 THEN 0 ELSE bytes + $2 END,
                entries = CASE WHEN entries + $3 < 0 THEN 0 ELSE entries + $3 END
             WHERE user_name = $1
             RETURNING bytes, entries",
        )
        .bind(user)
        .bind(d.bytes)
        .bind(d.entries)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(usage).transpose()
    }

    /// Applies `pending` (this node's changes not sent yet), then reserves
    /// `n` bytes if `bytes + n - lean <= limit` (no limit: always), in
    /// one transaction; notes them on the upload's row (path, node), if
    /// one is given (else in one statement when it fits).
    pub async fn reserve(
        &self,
        user: &str,
        pending: Delta,
        n: u64,
        lean: u64,
        limit: Option<u64>,
        upload: Option<(&str, &str)>,
    ) -> Result<Reserved, StoreError> {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if upload.is_none() {
            // Most reservations (every eager upload's) fit: pending
            // changes and the reservation in one statement, one round
            // trip. One that does not fit takes the longer way below,
            // which applies the pending changes alone.
            let taken = sqlx::query(
                "UPDATE usage SET
                    bytes = CASE WHEN bytes + $5 < 0 THEN 0 ELSE bytes + $5 END + $2,
                    entries = CASE WHEN entries + $6 < 0 THEN 0 ELSE entries + $6 END
                 WHERE user_name = $1 AND ($3 < 0
                    OR CASE WHEN bytes + $5 < 0 THEN 0 ELSE bytes + $5 END + $2 - $4 <= $3)
                 RETURNING bytes, entries",
            )
            .bind(user)
            .bind(int(n))
            .bind(limit.map_or(-1, int))
            .bind(int(lean))
            .bind(pending.bytes)
            .bind(pending.entries)
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = taken {
                return Ok(Reserved::Taken(usage(&row)?));
            }
        }
        let mut tx = self.write_tx().await?;
        apply(&mut tx, user, pending).await?;
        let taken = sqlx::query(
            "UPDATE usage SET bytes = bytes + $2
             WHERE user_name = $1 AND ($3 < 0 OR bytes + $2 - $4 <= $3)
             RETURNING bytes, entries",
        )
        .bind(user)
        .bind(int(n))
        .bind(limit.map_or(-1, int))
        .bind(int(lean))
        .fetch_optional(&mut *tx)
        .await?;
        let out = match taken {
            Some(row) => {
                if let Some((path, node)) = upload {
                    // Known with the upload, so a dead node's reservation
                    // can be given back (`store/uploads.rs`).
                    sqlx::query(
                        "UPDATE uploads SET reserved = reserved + $4
                         WHERE user_name = $1 AND path = $2 AND node = $3",
                    )
                    .bind(user)
                    .bind(path)
                    .bind(node)
                    .bind(int(n))
                    .execute(&mut *tx)
                    .await?;
                }
                Reserved::Taken(usage(&row)?)
            }
            None => {
                let row = sqlx::query("SELECT bytes, entries FROM usage WHERE user_name = $1")
                    .bind(user)
                    .fetch_optional(&mut *tx)
                    .await?;
                match row {
                    Some(row) => Reserved::Refused(usage(&row)?),
                    None => {
                        return Err(StoreError::Damaged(format!("no usage row for {user}")));
                    }
                }
            }
        };
        tx.commit().await?;
        Ok(out)
    }
}
