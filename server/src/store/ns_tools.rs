//! The everyday tools on the namespace of homes in object storage: a
//! mode changed on a row; a subtree read in path order (`find`); a copy of a file or a tree as new rows naming
//! the same blobs (a blob is deleted only once no row names it: the
//! sweeper asks, `objects/sweep.rs`).

use ferry_proto::RemoteError;
use sqlx::Row;

use super::namespace::{
    dir_must_exist, find, name_of, node, parent_of, subtree_cost, Node, NsError, COLUMNS,
};
use super::{Store, StoreError};
use crate::ledger::Cost;

/// Rows of `path` and everything below it (as in `namespace.rs`).
const SUBTREE: &str = "owner = $1 AND (path = $2 OR substr(path, 1, CAST($3 AS INTEGER)) = $4)";

fn below(path: &str) -> String {
    if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    }
}

fn chars(s: &str) -> i64 {
    i64::try_from(s.chars().count()).unwrap_or(i64::MAX)
}

impl Store {
    /// Sets the mode of `path`'s row (a file or a directory); `check`
    /// learns whether it is a directory first and may refuse (the inner
    /// error: nothing changed).
    pub async fn ns_chmod(
        &self,
        owner: &str,
        path: &str,
        mode: u32,
        check: impl FnOnce(bool) -> Result<(), RemoteError>,
    ) -> Result<Result<(), RemoteError>, NsError> {
        let mut tx = self.ns_tx(owner).await?;
        let Some(found) = find(&mut tx, owner, path).await? else {
            return Err(NsError::NotFound);
        };
        if let Err(e) = check(found.is_dir) {
            return Ok(Err(e));
        }
        sqlx::query("UPDATE entries SET mode = $3 WHERE owner = $1 AND path = $2")
            .bind(owner)
            .bind(path)
            .bind(i64::from(mode))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Sets the modification time of the row at `path`.
    pub async fn ns_set_mtime(
        &self,
        owner: &str,
        path: &str,
        mtime: i64,
    ) -> Result<Result<(), RemoteError>, NsError> {
        let changed = sqlx::query("UPDATE entries SET mtime = $3 WHERE owner = $1 AND path = $2")
            .bind(owner)
            .bind(path)
            .bind(mtime)
            .execute(self.pool())
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(NsError::NotFound);
        }
        Ok(Ok(()))
    }

    /// Up to `n` rows below directory `dir` whose paths sort after
    /// `after`, in path order, with their paths (a search reads the
    /// subtree this way, a step at a time).
    pub async fn ns_subtree_after(
        &self,
        owner: &str,
        dir: &str,
        after: &str,
        n: usize,
    ) -> Result<Vec<(String, Node)>, StoreError> {
        let prefix = below(dir);
        let rows = sqlx::query(&format!(
            "SELECT path, {COLUMNS} FROM entries
             WHERE owner = $1 AND substr(path, 1, CAST($2 AS INTEGER)) = $3 AND path > $4
             ORDER BY path LIMIT $5"
        ))
        .bind(owner)
        .bind(chars(&prefix))
        .bind(&prefix)
        .bind(after)
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("path")?, node(r)?)))
            .collect()
    }

    /// Copies `from` (a file, or with `recursive` a directory and its
    /// tree) to `to`, which must not exist, in one transaction: new rows
    /// naming the same blobs. `settle` sees what the copy costs before
    /// anything is written and may refuse it (the inner error: nothing
    /// changed); it runs inside the transaction, so the tree it saw is
    /// the tree copied. Returns the cost.
    pub async fn ns_copy(
        &self,
        owner: &str,
        from: &str,
        to: &str,
        recursive: bool,
        settle: impl FnOnce(Cost) -> Result<(), RemoteError>,
    ) -> Result<Result<Cost, RemoteError>, NsError> {
        let mut tx = self.ns_tx(owner).await?;
        let Some(found) = find(&mut tx, owner, from).await? else {
            return Err(NsError::NotFound);
        };
        if found.is_dir && !recursive {
            return Err(NsError::IsADirectory);
        }
        dir_must_exist(&mut tx, owner, parent_of(to)).await?;
        if find(&mut tx, owner, to).await?.is_some() {
            return Err(NsError::Exists);
        }
        let cost = subtree_cost(&mut tx, owner, from).await?;
        if let Err(e) = settle(cost) {
            return Ok(Err(e));
        }
        let (len, prefix) = (chars(from) + 1, below(from));
        sqlx::query(&format!(
            "INSERT INTO entries (owner, path, parent, name, is_dir, size, blob, sha256, mtime, mode)
             SELECT owner, $5 || substr(path, CAST($3 AS INTEGER)),
                    CASE WHEN path = $2 THEN $6 ELSE $5 || substr(parent, CAST($3 AS INTEGER)) END,
                    CASE WHEN path = $2 THEN $7 ELSE name END,
                    is_dir, size, blob, sha256, mtime, mode
             FROM entries WHERE {SUBTREE}"
        ))
        .bind(owner)
        .bind(from)
        .bind(len)
        .bind(&prefix)
        .bind(to)
        .bind(parent_of(to))
        .bind(name_of(to))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(cost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::DIR_BYTES;
    use crate::store::bans::tests::sqlite;
    use crate::store::namespace::{NewFile, Removal};

    #[tokio::test]
    async fn a_copy_names_the_same_blobs_and_outlives_the_original() {
        let (store, _dir) = sqlite().await;
        let ok = |_| Ok(());
        store.ns_mkdir("u", "/a", 0).await.unwrap();
        store.ns_mkdir("u", "/a/b", 0).await.unwrap();
        let file = |blob: &str| NewFile {
            size: 5,
            blob: Some(blob.into()),
            sha256: "00".into(),
            mtime: 1,
            mode: 0o640,
        };
        store
            .ns_put_file("u", "/a/b/f", &file("k1"), false, None, ok)
            .await
            .unwrap();
        store
            .ns_put_file("u", "/a_x", &file("k2"), false, None, ok)
            .await
            .unwrap();
        let cost = store
            .ns_copy("u", "/a", "/c", true, |_| Ok(()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            cost,
            Cost {
                bytes: 5 + 2 * DIR_BYTES,
                entries: 3
            }
        );
        let copied = store.ns_get("u", "/c/b/f").await.unwrap().unwrap();
        assert_eq!((copied.blob.as_deref(), copied.mode), (Some("k1"), 0o640));
        assert!(store.ns_get("u", "/c/b").await.unwrap().unwrap().is_dir);
        assert!(
            store.ns_get("u", "/c_x").await.unwrap().is_none(),
            "a sibling is not copied"
        );
        // Refused: over an existing name, a directory without recursion,
        // by the settlement (nothing written).
        assert!(matches!(
            store.ns_copy("u", "/a", "/c", true, |_| Ok(())).await,
            Err(NsError::Exists)
        ));
        assert!(matches!(
            store.ns_copy("u", "/a", "/d", false, |_| Ok(())).await,
            Err(NsError::IsADirectory)
        ));
        let refuse = |_| Err(RemoteError::bare(ferry_proto::ErrorKind::QuotaExceeded));
        assert!(store
            .ns_copy("u", "/a", "/d", true, refuse)
            .await
            .unwrap()
            .is_err());
        assert!(store.ns_get("u", "/d").await.unwrap().is_none());
        // The original's removal trashes the blob, which stays named.
        store.ns_remove("u", "/a", Removal::Tree).await.unwrap();
        assert!(store.blob_named("k1").await.unwrap());
        // Two rows of one blob in one removed tree: one trash entry.
        store
            .ns_copy("u", "/c/b/f", "/c/b/g", false, |_| Ok(()))
            .await
            .unwrap()
            .unwrap();
        store.ns_remove("u", "/c", Removal::Tree).await.unwrap();
        assert!(!store.blob_named("k1").await.unwrap());
        assert_eq!(
            store.trash_due(i64::MAX, 10).await.unwrap(),
            vec!["k1".to_string()]
        );
    }
}
