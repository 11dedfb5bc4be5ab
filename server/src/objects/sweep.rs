//! The sweeper of object storage, run by one node at a time (a
//! PostgreSQL advisory lock elects it; on SQLite there is one node): it
//! deletes blobs in the trash once their grace period is over, aborts
//! multipart uploads nobody touched for long, and deletes blobs under the
//! prefix that no path and no upload names (left by a node that died
//! between storing and naming them) once they are older than both the
//! grace and the stale-upload age (no upload lasts that long).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::multipart::MultipartStore;
use object_store::ObjectStore;

use super::Bucket;
use crate::accounts::Accounts;
use crate::ledger::Cost;
use crate::store::{now_ms, Engine, Store, StoreError};

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Blobs deleted from the trash.
    pub trashed: usize,
    /// Multipart uploads aborted.
    pub aborted: usize,
    /// Blobs deleted that nothing named.
    pub orphans: usize,
}

/// How long things wait before the sweeper takes them.
#[derive(Clone, Copy, Debug)]
pub struct Ages {
    /// Blobs in the trash, and unnamed blobs.
    pub grace: Duration,
    /// Multipart uploads untouched.
    pub stale: Duration,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One sweep, if this node is elected for it (else `Ok(None)`).
pub async fn sweep_once(
    store: &Store,
    bucket: &Bucket,
    accounts: Option<&Accounts>,
    ages: Ages,
) -> Result<Option<Swept>, StoreError> {
    let mut lock = store.pool().acquire().await?;
    if store.engine() == Engine::Postgres {
        use sqlx::Row;
        let got: bool = sqlx::query("SELECT pg_try_advisory_lock(1717, 0) AS got")
            .fetch_one(&mut *lock)
            .await?
            .try_get("got")?;
        if !got {
            return Ok(None);
        }
    }
    let swept = sweep(store, bucket, accounts, ages).await;
    if store.engine() == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_unlock(1717, 0)")
            .execute(&mut *lock)
            .await?;
    }
    swept.map(Some)
}

async fn sweep(
    store: &Store,
    bucket: &Bucket,
    accounts: Option<&Accounts>,
    ages: Ages,
) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    let now = now_ms();
    // The trash, past its grace.
    loop {
        let due = store.trash_due(now - ms(ages.grace), 500).await?;
        if due.is_empty() {
            break;
        }
        let n = due.len();
        for blob in due {
            if !store.blob_named(&blob).await? {
                if let Err(e) = bucket.delete(&blob).await {
                    tracing::warn!(error = %e, "sweeper: cannot delete a blob; trying again later");
                    return Ok(swept);
                }
                swept.trashed += 1;
            }
            store.trash_forget(&blob).await?;
        }
        if n < 500 {
            break;
        }
    }
    // Uploads nobody touched for long.
    for (owner, path, u) in store
        .object_uploads_stale(now - ms(ages.stale), 500)
        .await?
    {
        let at = bucket.path(&u.blob);
        match bucket.s3().abort_multipart(&at, &u.upload_id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, "sweeper: cannot abort an upload; trying again later");
                continue;
            }
        }
        store.object_upload_end(&owner, &path, &u.upload_id).await?;
        if let Some(a) = accounts {
            a.credit(&owner, Cost::file(u.done)).await;
        }
        swept.aborted += 1;
    }
    // Blobs nothing names, older than the grace.
    let named = store.named_blobs().await?;
    // Only blobs older than any upload can take: an eager upload stores
    // its blob before the transaction that names it, and a grace of 0 s
    // once deleted 8 of 1,000 such blobs under their names.
    let old = now - ms(ages.grace.max(ages.stale));
    let mut listing = bucket.s3().list(Some(&bucket.root()));
    while let Some(meta) = listing.next().await {
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "sweeper: cannot list the bucket");
                break;
            }
        };
        let Some(blob) = bucket.blob_of(&meta.location) else {
            continue;
        };
        if meta.last_modified.timestamp_millis() >= old || named.contains(&blob) {
            continue;
        }
        // Named meanwhile (an upload committed after the list above)?
        if store.blob_named(&blob).await? {
            continue;
        }
        if bucket.delete(&blob).await.is_ok() {
            swept.orphans += 1;
        }
    }
    Ok(swept)
}

/// Sweeps every `every` for as long as the server runs.
pub async fn run(
    store: Store,
    bucket: Bucket,
    accounts: Arc<Accounts>,
    ages: Ages,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        match sweep_once(&store, &bucket, Some(&accounts), ages).await {
            Ok(Some(s)) if s != Swept::default() => {
                tracing::info!(
                    trashed = s.trashed,
                    aborted = s.aborted,
                    orphans = s.orphans,
                    "object store swept"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweeper: database unavailable"),
        }
    }
}

impl Store {
    /// The blobs named by a path or by an upload in progress.
    pub async fn named_blobs(&self) -> Result<HashSet<String>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT blob FROM entries WHERE blob IS NOT NULL
             UNION SELECT blob FROM object_uploads",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>("blob")
                    .map_err(StoreError::Unavailable)
            })
            .collect()
    }
}
