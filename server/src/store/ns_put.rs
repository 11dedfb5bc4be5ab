//! Pointing paths at new files (uploads' commits), many in one
//! transaction: each file keeps its own outcome, and a refused one (its
//! parent gone, a directory or a file in the way, the quota) changes
//! nothing while the others of its transaction go in.

use sqlx::{Any, Transaction};

use super::namespace::{dir_must_exist, find, name_of, parent_of, NewFile, Node, NsError};
use super::{now_ms, Store, StoreError};
use crate::ledger::Cost;

/// One file of a commit.
#[derive(Clone, Debug)]
pub struct PutFile {
    /// Its stored path (`/a/b`).
    pub path: String,
    /// Its row.
    pub file: NewFile,
    /// A file already there is replaced (else refused).
    pub overwrite: bool,
    /// The multipart upload whose row goes with it (by its id).
    pub upload: Option<String>,
}

/// Why one file of a commit was refused (nothing of it was written).
#[derive(Debug)]
pub enum Refused<E> {
    /// By the namespace (never [`NsError::Store`]: that fails them all).
    Ns(NsError),
    /// By the caller's settlement (the quota).
    Settle(E),
}

/// Each file's outcome: what it replaced, or why it was refused.
pub type PutOutcome<E> = Result<Option<Cost>, Refused<E>>;

impl Store {
    /// Points each of `files` at its new row in one transaction holding
    /// `owner`'s namespace lock, in order (a later file sees an earlier
    /// one). A file's parent must be a directory; a file there is replaced
    /// (its blob to the trash) when it may be. `settle` is called with the
    /// file's index and what it would replace before anything of it is
    /// written, and may refuse it. The upload's row goes with its file.
    /// An error of the database fails them all (nothing is written).
    pub async fn ns_put_files<E>(
        &self,
        owner: &str,
        files: &[PutFile],
        mut settle: impl FnMut(usize, Option<Cost>) -> Result<(), E>,
    ) -> Result<Vec<PutOutcome<E>>, StoreError> {
        let mut tx = self.ns_tx(owner).await?;
        let mut out = Vec::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            out.push(put_one(&mut tx, owner, f, |r| settle(i, r)).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// [`Store::ns_put_files`] of one file: what it replaced, or why not.
    pub async fn ns_put_file(
        &self,
        owner: &str,
        path: &str,
        file: &NewFile,
        overwrite: bool,
        upload: Option<&str>,
        settle: impl FnOnce(Option<Cost>) -> Result<(), NsError>,
    ) -> Result<Option<Cost>, NsError> {
        let put = PutFile {
            path: path.to_string(),
            file: file.clone(),
            overwrite,
            upload: upload.map(str::to_string),
        };
        let mut settle = Some(settle);
        let mut out = self
            .ns_put_files(owner, std::slice::from_ref(&put), |_, r| {
                settle.take().map_or(Ok(()), |s| s(r))
            })
            .await?;
        match out.pop() {
            Some(Ok(r)) => Ok(r),
            Some(Err(Refused::Ns(e) | Refused::Settle(e))) => Err(e),
            None => Err(NsError::Store(StoreError::Damaged(
                "a commit of one file gave no outcome".into(),
            ))),
        }
    }
}

/// One file inside the commit's transaction: every check comes before
/// any write, so a refused file leaves nothing behind.
async fn put_one<E>(
    tx: &mut Transaction<'static, Any>,
    owner: &str,
    f: &PutFile,
    settle: impl FnOnce(Option<Cost>) -> Result<(), E>,
) -> Result<PutOutcome<E>, StoreError> {
    let refused = |e: NsError| match e {
        NsError::Store(e) => Err(e),
        e => Ok(Err(Refused::Ns(e))),
    };
    let path = f.path.as_str();
    if let Err(e) = dir_must_exist(tx, owner, parent_of(path)).await {
        return refused(e);
    }
    let there = find(tx, owner, path).await?;
    if let Some(t) = &there {
        if t.is_dir {
            return refused(NsError::IsADirectory);
        }
        if !f.overwrite {
            return refused(NsError::Exists);
        }
    }
    let replaced = there.as_ref().map(Node::cost);
    if let Err(e) = settle(replaced) {
        return Ok(Err(Refused::Settle(e)));
    }
    if let Some(blob) = there.as_ref().and_then(|t| t.blob.as_ref()) {
        sqlx::query(super::namespace::TRASH)
            .bind(blob)
            .bind(now_ms())
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("DELETE FROM entries WHERE owner = $1 AND path = $2")
        .bind(owner)
        .bind(path)
        .execute(&mut **tx)
        .await?;
    let file = &f.file;
    sqlx::query(
        "INSERT INTO entries (owner, path, parent, name, is_dir, size, blob, sha256, mtime, mode)
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9)",
    )
    .bind(owner)
    .bind(path)
    .bind(parent_of(path))
    .bind(name_of(path))
    .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
    .bind(file.blob.as_deref())
    .bind(&file.sha256)
    .bind(file.mtime)
    .bind(i64::from(file.mode))
    .execute(&mut **tx)
    .await?;
    if let Some(id) = &f.upload {
        sqlx::query("DELETE FROM object_uploads WHERE owner = $1 AND path = $2 AND upload_id = $3")
            .bind(owner)
            .bind(path)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(Ok(replaced))
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

    fn put(path: &str, size: u64, blob: &str, overwrite: bool) -> PutFile {
        PutFile {
            path: path.into(),
            file: file(size, blob),
            overwrite,
            upload: None,
        }
    }

    #[tokio::test]
    async fn a_refused_file_of_a_batch_leaves_the_others_in() {
        let (store, _dir) = sqlite().await;
        store.ns_mkdir("u", "/d", 0).await.unwrap();
        store
            .ns_put_file("u", "/old", &file(3, "k0"), false, None, |_| Ok(()))
            .await
            .unwrap();
        let files = vec![
            put("/d/a", 1, "k1", false),
            put("/gone/b", 2, "k2", false), // parent missing
            put("/d", 3, "k3", true),       // a directory
            put("/old", 4, "k4", false),    // exists, not to be replaced
            put("/q", 5, "k5", false),      // refused by the quota
            put("/old", 6, "k6", true),     // replaces
            put("/d/a", 7, "k7", true),     // replaces the first of this batch
        ];
        let out = store
            .ns_put_files(
                "u",
                &files,
                |i, _| if i == 4 { Err("quota") } else { Ok(()) },
            )
            .await
            .unwrap();
        assert!(matches!(out[0], Ok(None)));
        assert!(matches!(out[1], Err(Refused::Ns(NsError::NotFound))));
        assert!(matches!(out[2], Err(Refused::Ns(NsError::IsADirectory))));
        assert!(matches!(out[3], Err(Refused::Ns(NsError::Exists))));
        assert!(matches!(out[4], Err(Refused::Settle("quota"))));
        assert_eq!(out[5].as_ref().unwrap(), &Some(Cost::file(3)));
        assert_eq!(out[6].as_ref().unwrap(), &Some(Cost::file(1)));
        assert_eq!(store.ns_get("u", "/d/a").await.unwrap().unwrap().size, 7);
        assert_eq!(store.ns_get("u", "/old").await.unwrap().unwrap().size, 6);
        assert!(store.ns_get("u", "/q").await.unwrap().is_none());
        assert!(store.ns_get("u", "/gone/b").await.unwrap().is_none());
        assert!(store.ns_get("u", "/d").await.unwrap().unwrap().is_dir);
        let mut trash = store.trash_due(i64::MAX, 10).await.unwrap();
        trash.sort();
        assert_eq!(trash, vec!["k0".to_string(), "k1".to_string()]);
    }

    #[tokio::test]
    async fn a_new_file_replaces_only_when_asked_and_trashes_the_old_blob() {
        let (store, _dir) = sqlite().await;
        let ok = |_| Ok(());
        store
            .ns_put_file("u", "/f", &file(5, "old"), false, None, ok)
            .await
            .unwrap();
        assert!(matches!(
            store
                .ns_put_file("u", "/f", &file(6, "new"), false, None, ok)
                .await,
            Err(NsError::Exists)
        ));
        // Refused by the quota: nothing changes.
        let refused = store
            .ns_put_file("u", "/f", &file(6, "new"), true, None, |_| {
                Err(NsError::NotEmpty)
            })
            .await;
        assert!(refused.is_err());
        assert_eq!(store.ns_get("u", "/f").await.unwrap().unwrap().size, 5);
        let replaced = store
            .ns_put_file("u", "/f", &file(6, "new"), true, None, ok)
            .await
            .unwrap();
        assert_eq!(replaced, Some(Cost::file(5)));
        assert_eq!(
            store.trash_due(i64::MAX, 10).await.unwrap(),
            vec!["old".to_string()]
        );
        assert!(store.blob_named("new").await.unwrap());
        assert!(!store.blob_named("old").await.unwrap());
        // A renamed file onto itself changes nothing.
        assert_eq!(
            store.ns_rename("u", "/f", "/f", true).await.unwrap(),
            Cost::ZERO
        );
        assert_eq!(store.ns_usage("u").await.unwrap(), Cost::file(6));
    }
}
