//! Multipart uploads into object storage in progress, one per user and
//! path: the store's upload id, the tags of the parts done and the
//! SHA-256 state after them. The row is the truth (S3 has no reliable
//! list of parts), so any node can continue the upload from the end of
//! its last part, and the sweeper aborts the ones left behind.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, Store, StoreError};
use crate::transfer::{hex, unhex};

/// One upload's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectUpload {
    /// The object being written (completed into this key).
    pub blob: String,
    /// The store's multipart upload id.
    pub upload_id: String,
    /// Declared size of the file.
    pub size: u64,
    /// Bytes per part (the last one may be shorter).
    pub part_size: u64,
    /// Tags of the parts done, in order.
    pub parts: Vec<String>,
    /// Bytes in those parts.
    pub done: u64,
    /// The SHA-256 state after `done` bytes (see `objects::sha`).
    pub state: Vec<u8>,
}

fn upload(row: &AnyRow) -> Result<ObjectUpload, StoreError> {
    let damaged = |what: &str| StoreError::Damaged(format!("object upload: {what}"));
    let num = |c: &str| -> Result<u64, StoreError> {
        let v: i64 = row.try_get(c)?;
        u64::try_from(v).map_err(|_| damaged(c))
    };
    let parts: String = row.try_get("parts")?;
    let state: String = row.try_get("state")?;
    Ok(ObjectUpload {
        blob: row.try_get("blob")?,
        upload_id: row.try_get("upload_id")?,
        size: num("size")?,
        part_size: num("part_size")?,
        parts: parts
            .split('\n')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        done: num("done")?,
        state: unhex(&state).ok_or_else(|| damaged("state"))?,
    })
}

impl Store {
    /// `owner`'s upload of `path` in progress, if any.
    pub async fn object_upload(
        &self,
        owner: &str,
        path: &str,
    ) -> Result<Option<ObjectUpload>, StoreError> {
        let row = sqlx::query(
            "SELECT blob, upload_id, size, part_size, parts, done, state
             FROM object_uploads WHERE owner = $1 AND path = $2",
        )
        .bind(owner)
        .bind(path)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(upload).transpose()
    }

    /// Records a new upload of `path`, replacing any older row (whose
    /// upload the caller has aborted or will leave to the sweeper).
    pub async fn object_upload_begin(
        &self,
        owner: &str,
        path: &str,
        u: &ObjectUpload,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM object_uploads WHERE owner = $1 AND path = $2")
            .bind(owner)
            .bind(path)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO object_uploads
                 (owner, path, blob, upload_id, size, part_size, parts, done, state, updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(owner)
        .bind(path)
        .bind(&u.blob)
        .bind(&u.upload_id)
        .bind(i64::try_from(u.size).unwrap_or(i64::MAX))
        .bind(i64::try_from(u.part_size).unwrap_or(i64::MAX))
        .bind(u.parts.join("\n"))
        .bind(i64::try_from(u.done).unwrap_or(i64::MAX))
        .bind(hex(&u.state))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a part done: its tag, the bytes now done and the hash state
    /// after them. False when the row is no longer this upload's (another
    /// upload of the path took over).
    pub async fn object_upload_part(
        &self,
        owner: &str,
        path: &str,
        u: &ObjectUpload,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE object_uploads SET parts = $4, done = $5, state = $6, updated = $7
             WHERE owner = $1 AND path = $2 AND upload_id = $3",
        )
        .bind(owner)
        .bind(path)
        .bind(&u.upload_id)
        .bind(u.parts.join("\n"))
        .bind(i64::try_from(u.done).unwrap_or(i64::MAX))
        .bind(hex(&u.state))
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets an upload (completed or aborted).
    pub async fn object_upload_end(
        &self,
        owner: &str,
        path: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM object_uploads WHERE owner = $1 AND path = $2 AND upload_id = $3")
            .bind(owner)
            .bind(path)
            .bind(upload_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Forgets an upload that is over (another file took its name):
    /// the bytes its row counted, if this removed it.
    pub async fn object_upload_drop(
        &self,
        owner: &str,
        path: &str,
        upload_id: &str,
    ) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM object_uploads WHERE owner = $1 AND path = $2 AND upload_id = $3
             RETURNING done",
        )
        .bind(owner)
        .bind(path)
        .bind(upload_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let done: i64 = r.try_get("done")?;
            u64::try_from(done).map_err(|_| StoreError::Damaged("object upload: done".into()))
        })
        .transpose()
    }

    /// Uploads untouched since before `before` (Unix ms), at most `n`:
    /// (owner, path, row).
    pub async fn object_uploads_stale(
        &self,
        before: i64,
        n: usize,
    ) -> Result<Vec<(String, String, ObjectUpload)>, StoreError> {
        let rows = sqlx::query(
            "SELECT owner, path, blob, upload_id, size, part_size, parts, done, state
             FROM object_uploads WHERE updated < $1 ORDER BY updated LIMIT $2",
        )
        .bind(before)
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("owner")?, r.try_get("path")?, upload(r)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let b = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&b)), Some(b));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("+a"), None);
        assert_eq!(unhex(""), Some(vec![]));
    }
}
