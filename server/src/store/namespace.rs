//! The namespace of homes kept in object storage: each user's paths, in
//! rows (path -> immutable blob key, size, SHA-256, mtime, mode), so a
//! rename, a directory rename or a move is one transaction and listings
//! come from the database. Blobs no path names any more wait in
//! `blob_trash` for the sweeper (`objects/sweep.rs`), after a grace period
//! in which downloads already reading them finish.
//!
//! Paths are stored as ferry writes them (`/a/b`; the home is `/`); a
//! directory's subtree is every path that starts with its path and `/`
//! (compared with `substr`, never `LIKE`: names may hold `%` and `_`).
//! Every change of one user's namespace holds that user's lock (a
//! transaction-scoped advisory lock on PostgreSQL; SQLite's write lock).

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{now_ms, Store, StoreError};
use crate::ledger::{Cost, DIR_BYTES};

/// One path's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Last component.
    pub name: String,
    /// A directory (else a regular file).
    pub is_dir: bool,
    /// Bytes (0 for a directory).
    pub size: u64,
    /// The object holding the bytes (files only; none for an empty file).
    pub blob: Option<String>,
    /// The bytes' SHA-256, lowercase hex (files only).
    pub sha256: Option<String>,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    /// Permission bits.
    pub mode: u32,
}

impl Node {
    /// What the entry costs against the quota (see [`crate::ledger`]).
    pub fn cost(&self) -> Cost {
        Cost::of(self.is_dir, !self.is_dir, self.size)
    }
}

/// Why a namespace change was refused.
#[derive(Debug, thiserror::Error)]
pub enum NsError {
    /// The path (or its parent) does not exist.
    #[error("no such file or directory")]
    NotFound,
    /// The target exists.
    #[error("already exists")]
    Exists,
    /// A path names a file where a directory is needed.
    #[error("not a directory")]
    NotADirectory,
    /// A path names a directory where a file is needed.
    #[error("is a directory")]
    IsADirectory,
    /// A directory to remove or replace holds entries.
    #[error("directory not empty")]
    NotEmpty,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for NsError {
    fn from(e: sqlx::Error) -> NsError {
        NsError::Store(StoreError::Unavailable(e))
    }
}

/// How a path is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// A file only.
    File,
    /// An empty directory only.
    EmptyDir,
    /// A file, or a directory with everything in it.
    Tree,
}

/// A new file's row, written at an upload's commit.
#[derive(Clone, Debug)]
pub struct NewFile {
    /// Bytes.
    pub size: u64,
    /// The completed object (none for an empty file).
    pub blob: Option<String>,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    /// Permission bits.
    pub mode: u32,
}

pub(super) const COLUMNS: &str = "name, is_dir, size, blob, sha256, mtime, mode";

/// Puts a blob in the trash, or renews its time there: copies share
/// blobs, so one may be trashed again (by another row) before it is
/// swept, and the sweeper deletes it only once no row names it.
pub(super) const TRASH: &str = "INSERT INTO blob_trash (blob, since) VALUES ($1, $2)
     ON CONFLICT (blob) DO UPDATE SET since = excluded.since";

pub(super) fn node(row: &AnyRow) -> Result<Node, StoreError> {
    let damaged = |what: &str| StoreError::Damaged(format!("namespace row: {what}"));
    Ok(Node {
        name: row.try_get("name").map_err(StoreError::Unavailable)?,
        is_dir: row
            .try_get::<i64, _>("is_dir")
            .map_err(StoreError::Unavailable)?
            != 0,
        size: u64::try_from(
            row.try_get::<i64, _>("size")
                .map_err(StoreError::Unavailable)?,
        )
        .map_err(|_| damaged("negative size"))?,
        blob: row.try_get("blob").map_err(StoreError::Unavailable)?,
        sha256: row.try_get("sha256").map_err(StoreError::Unavailable)?,
        mtime: row.try_get("mtime").map_err(StoreError::Unavailable)?,
        mode: u32::try_from(
            row.try_get::<i64, _>("mode")
                .map_err(StoreError::Unavailable)?,
        )
        .map_err(|_| damaged("bad mode"))?,
    })
}

/// The parent of a stored path (`/a/b` -> `/a`, `/a` -> `/`).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a stored path.
pub fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// The prefix of everything below a directory (`/a` -> `/a/`, `/` -> `/`).
fn below(path: &str) -> String {
    if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    }
}

/// Characters (as SQL's `length` and `substr` count them) of `s`.
fn chars(s: &str) -> i64 {
    i64::try_from(s.chars().count()).unwrap_or(i64::MAX)
}

/// Rows of `path` and everything below it.
const SUBTREE: &str = "owner = $1 AND (path = $2 OR substr(path, 1, CAST($3 AS INTEGER)) = $4)";

/// The counter of `owner`'s moves: bumped by every rename and removal of
/// a tree, read by listings around each batch (see [`Store::ns_moves`]).
fn moves_key(owner: &str) -> String {
    format!("ns-moves/{owner}")
}

async fn bump_moves(tx: &mut Transaction<'static, Any>, owner: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO counters (name, value) VALUES ($1, 1)
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
    )
    .bind(moves_key(owner))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// How many times `owner`'s names were moved or removed by the tree.
    /// A listing reads it before it starts and after each batch: a batch
    /// read after a move that committed meanwhile would mix the tree's old
    /// and new names, so the listing is refused instead (the client lists
    /// again), and nobody sees half of a directory that moved.
    pub async fn ns_moves(&self, owner: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT value FROM counters WHERE name = $1")
            .bind(moves_key(owner))
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => r.try_get("value")?,
            None => 0,
        })
    }

    /// A transaction holding `owner`'s namespace lock.
    pub(super) async fn ns_tx(&self, owner: &str) -> Result<Transaction<'static, Any>, StoreError> {
        let mut tx = self.write_tx().await?;
        if self.engine() == super::Engine::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(1717, hashtext($1))")
                .bind(owner)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// The row of `path` (the home itself has none: it always exists).
    pub async fn ns_get(&self, owner: &str, path: &str) -> Result<Option<Node>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM entries WHERE owner = $1 AND path = $2"
        ))
        .bind(owner)
        .bind(path)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(node).transpose()
    }

    /// Up to `n` entries of directory `dir` whose names sort after
    /// `after`, in name order (a listing reads its batches this way).
    pub async fn ns_list(
        &self,
        owner: &str,
        dir: &str,
        after: &str,
        n: usize,
    ) -> Result<Vec<Node>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM entries WHERE owner = $1 AND parent = $2 AND name > $3
             ORDER BY name LIMIT $4"
        ))
        .bind(owner)
        .bind(dir)
        .bind(after)
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(node).collect()
    }

    /// What `owner`'s home holds: bytes of files, a block per directory,
    /// an entry each, and each upload in progress (an entry, and the
    /// bytes of its parts done), as a partial file counts on disk.
    pub async fn ns_usage(&self, owner: &str) -> Result<Cost, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes,
                    CAST(COALESCE(SUM(is_dir), 0) AS BIGINT) AS dirs
             FROM entries WHERE owner = $1",
        )
        .bind(owner)
        .fetch_one(self.pool())
        .await?;
        let uploads = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(done), 0) AS BIGINT) AS bytes,
                    CAST(0 AS BIGINT) AS dirs
             FROM object_uploads WHERE owner = $1",
        )
        .bind(owner)
        .fetch_one(self.pool())
        .await?;
        Ok(sum_cost(&row)? + sum_cost(&uploads)?)
    }

    /// How many levels the deepest path below `path` lies below it.
    pub async fn ns_depth_below(&self, owner: &str, path: &str) -> Result<usize, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT CAST(COALESCE(MAX(length(path) - length(replace(path, '/', ''))), 0) AS BIGINT) AS d
             FROM entries WHERE {SUBTREE}"
        ))
        .bind(owner)
        .bind(path)
        .bind(chars(path) + 1)
        .bind(below(path))
        .fetch_one(self.pool())
        .await?;
        let deepest = usize::try_from(row.try_get::<i64, _>("d")?).unwrap_or(0);
        Ok(deepest.saturating_sub(path.matches('/').count()))
    }

    /// Makes directory `path`; its parent must be a directory.
    pub async fn ns_mkdir(&self, owner: &str, path: &str, mtime: i64) -> Result<(), NsError> {
        let mut tx = self.ns_tx(owner).await?;
        dir_must_exist(&mut tx, owner, parent_of(path)).await?;
        if find(&mut tx, owner, path).await?.is_some() {
            return Err(NsError::Exists);
        }
        sqlx::query(
            "INSERT INTO entries (owner, path, parent, name, is_dir, size, blob, sha256, mtime, mode)
             VALUES ($1, $2, $3, $4, 1, 0, NULL, NULL, $5, 493)",
        )
        .bind(owner)
        .bind(path)
        .bind(parent_of(path))
        .bind(name_of(path))
        .bind(mtime)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes `path` (with everything below it for [`Removal::Tree`]) in
    /// one transaction; the blobs go to the trash. Returns what was freed.
    pub async fn ns_remove(&self, owner: &str, path: &str, how: Removal) -> Result<Cost, NsError> {
        let mut tx = self.ns_tx(owner).await?;
        let Some(found) = find(&mut tx, owner, path).await? else {
            return Err(NsError::NotFound);
        };
        match (how, found.is_dir) {
            (Removal::File, true) => return Err(NsError::IsADirectory),
            (Removal::EmptyDir, false) => return Err(NsError::NotADirectory),
            (Removal::EmptyDir, true) if has_children(&mut tx, owner, path).await? => {
                return Err(NsError::NotEmpty)
            }
            _ => {}
        }
        let freed = subtree_cost(&mut tx, owner, path).await?;
        let (len, prefix) = (chars(path) + 1, below(path));
        sqlx::query(&format!(
            "INSERT INTO blob_trash (blob, since)
             SELECT DISTINCT blob, $5 FROM entries WHERE {SUBTREE} AND blob IS NOT NULL
             ON CONFLICT (blob) DO UPDATE SET since = excluded.since"
        ))
        .bind(owner)
        .bind(path)
        .bind(len)
        .bind(&prefix)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("DELETE FROM entries WHERE {SUBTREE}"))
            .bind(owner)
            .bind(path)
            .bind(len)
            .bind(&prefix)
            .execute(&mut *tx)
            .await?;
        if found.is_dir {
            bump_moves(&mut tx, owner).await?;
        }
        tx.commit().await?;
        Ok(freed)
    }

    /// Renames `from` (a file, or a directory with its whole subtree) to
    /// `to` in one transaction. An existing `to` is an error unless
    /// `overwrite`; then a file replaces a file and a directory an empty
    /// directory, as rename(2) does. Returns what was replaced.
    pub async fn ns_rename(
        &self,
        owner: &str,
        from: &str,
        to: &str,
        overwrite: bool,
    ) -> Result<Cost, NsError> {
        let mut tx = self.ns_tx(owner).await?;
        let Some(moved) = find(&mut tx, owner, from).await? else {
            return Err(NsError::NotFound);
        };
        if from == to {
            return Ok(Cost::ZERO);
        }
        dir_must_exist(&mut tx, owner, parent_of(to)).await?;
        let mut replaced = Cost::ZERO;
        if let Some(there) = find(&mut tx, owner, to).await? {
            if !overwrite {
                return Err(NsError::Exists);
            }
            match (moved.is_dir, there.is_dir) {
                (false, true) => return Err(NsError::IsADirectory),
                (true, false) => return Err(NsError::NotADirectory),
                (true, true) if has_children(&mut tx, owner, to).await? => {
                    return Err(NsError::NotEmpty)
                }
                _ => {}
            }
            if let Some(blob) = &there.blob {
                sqlx::query(TRASH)
                    .bind(blob)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM entries WHERE owner = $1 AND path = $2")
                .bind(owner)
                .bind(to)
                .execute(&mut *tx)
                .await?;
            replaced = there.cost();
        }
        let len = chars(from) + 1;
        sqlx::query(&format!(
            "UPDATE entries SET
                 parent = CASE WHEN path = $2 THEN $6 ELSE $5 || substr(parent, CAST($3 AS INTEGER)) END,
                 name = CASE WHEN path = $2 THEN $7 ELSE name END,
                 path = $5 || substr(path, CAST($3 AS INTEGER))
             WHERE {SUBTREE}"
        ))
        .bind(owner)
        .bind(from)
        .bind(len)
        .bind(below(from))
        .bind(to)
        .bind(parent_of(to))
        .bind(name_of(to))
        .execute(&mut *tx)
        .await?;
        bump_moves(&mut tx, owner).await?;
        tx.commit().await?;
        Ok(replaced)
    }

    /// Blobs in the trash since before `before` (Unix ms), at most `n`.
    pub async fn trash_due(&self, before: i64, n: usize) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT blob FROM blob_trash WHERE since < $1 ORDER BY since LIMIT $2")
                .bind(before)
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| r.try_get("blob").map_err(StoreError::Unavailable))
            .collect()
    }

    /// Forgets a blob the sweeper deleted from the bucket.
    pub async fn trash_forget(&self, blob: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM blob_trash WHERE blob = $1")
            .bind(blob)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Puts a blob no row names into the trash (an aborted or replaced
    /// upload's object).
    pub async fn trash_add(&self, blob: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO blob_trash (blob, since) VALUES ($1, $2) ON CONFLICT (blob) DO NOTHING",
        )
        .bind(blob)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether any row names `blob` (the sweeper never deletes those).
    pub async fn blob_named(&self, blob: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM entries WHERE blob = $1 LIMIT 1")
            .bind(blob)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }
}

/// What the subtree at `path` (itself included) costs: its bytes, a
/// directory's share each, and its entries.
pub(super) async fn subtree_cost(
    tx: &mut Transaction<'static, Any>,
    owner: &str,
    path: &str,
) -> Result<Cost, StoreError> {
    let (len, prefix) = (chars(path) + 1, below(path));
    let row = sqlx::query(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes,
                CAST(COALESCE(SUM(is_dir), 0) AS BIGINT) AS dirs FROM entries WHERE {SUBTREE}"
    ))
    .bind(owner)
    .bind(path)
    .bind(len)
    .bind(&prefix)
    .fetch_one(&mut **tx)
    .await
    .map_err(StoreError::Unavailable)?;
    sum_cost(&row)
}

fn sum_cost(row: &AnyRow) -> Result<Cost, StoreError> {
    let get = |c: &str| -> Result<u64, StoreError> {
        let v: i64 = row.try_get(c).map_err(StoreError::Unavailable)?;
        u64::try_from(v).map_err(|_| StoreError::Damaged(format!("namespace sum {c}")))
    };
    let dirs = get("dirs")?;
    Ok(Cost {
        bytes: get("bytes")?.saturating_add(dirs.saturating_mul(DIR_BYTES)),
        entries: get("n")?,
    })
}

pub(super) async fn find(
    tx: &mut Transaction<'static, Any>,
    owner: &str,
    path: &str,
) -> Result<Option<Node>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM entries WHERE owner = $1 AND path = $2"
    ))
    .bind(owner)
    .bind(path)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(node).transpose()
}

async fn has_children(
    tx: &mut Transaction<'static, Any>,
    owner: &str,
    path: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 AS one FROM entries WHERE owner = $1 AND parent = $2 LIMIT 1")
        .bind(owner)
        .bind(path)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// Refuses unless `dir` is the home or a directory.
pub(super) async fn dir_must_exist(
    tx: &mut Transaction<'static, Any>,
    owner: &str,
    dir: &str,
) -> Result<(), NsError> {
    if dir == "/" {
        return Ok(());
    }
    match find(tx, owner, dir).await? {
        Some(n) if n.is_dir => Ok(()),
        Some(_) => Err(NsError::NotADirectory),
        None => Err(NsError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::bans::tests::sqlite;

    fn file(size: u64, blob: &str) -> NewFile {
        NewFile {
            size,
            blob: Some(blob.into()),
            sha256: "00".into(),
            mtime: 1,
            mode: 0o644,
        }
    }

    async fn names(store: &Store, dir: &str) -> Vec<String> {
        let rows = store.ns_list("u", dir, "", 100).await.unwrap();
        rows.into_iter().map(|n| n.name).collect()
    }

    #[tokio::test]
    async fn a_directory_moves_with_its_tree_in_one_step() {
        let (store, _dir) = sqlite().await;
        let ok = |_| Ok(());
        store.ns_mkdir("u", "/a", 0).await.unwrap();
        store.ns_mkdir("u", "/a/b", 0).await.unwrap();
        // A sibling whose name starts like the moved one stays.
        store.ns_mkdir("u", "/a_b", 0).await.unwrap();
        store
            .ns_put_file("u", "/a/b/f%_", &file(5, "k1"), false, None, ok)
            .await
            .unwrap();
        store
            .ns_put_file("u", "/a/g", &file(7, "k2"), false, None, ok)
            .await
            .unwrap();
        assert!(matches!(
            store.ns_mkdir("u", "/x/y", 0).await,
            Err(NsError::NotFound)
        ));
        let replaced = store.ns_rename("u", "/a", "/c", false).await.unwrap();
        assert_eq!(replaced, Cost::ZERO);
        assert_eq!(names(&store, "/").await, vec!["a_b", "c"]);
        assert_eq!(names(&store, "/c").await, vec!["b", "g"]);
        assert_eq!(names(&store, "/c/b").await, vec!["f%_"]);
        assert!(store.ns_get("u", "/a/g").await.unwrap().is_none());
        assert_eq!(store.ns_depth_below("u", "/c").await.unwrap(), 2);
        // Not into itself's shape check is the caller's; a file over a
        // directory is refused; a tree goes in one step with its cost.
        assert!(matches!(
            store.ns_rename("u", "/c/g", "/a_b", true).await,
            Err(NsError::IsADirectory)
        ));
        let freed = store.ns_remove("u", "/c", Removal::Tree).await.unwrap();
        assert_eq!(
            freed,
            Cost {
                bytes: 12 + 2 * DIR_BYTES,
                entries: 4
            }
        );
        assert_eq!(names(&store, "/").await, vec!["a_b"]);
        let trash = store.trash_due(i64::MAX, 10).await.unwrap();
        assert_eq!(trash.len(), 2);
        assert_eq!(store.ns_usage("u").await.unwrap(), Cost::DIR);
        assert_eq!(store.ns_usage("other").await.unwrap(), Cost::ZERO);
    }
}
