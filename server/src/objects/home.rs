//! A home in object storage: browsing requests answered from the
//! namespace in the database. Like [`crate::jail::Home`], each method is
//! one bounded step run on the user's share of blocking threads (it waits
//! for the database there), and every change is counted in the ledger.

use ferry_proto::msg::{Entry, EntryKind, RemoveMode};
use ferry_proto::{ErrorKind, RemoteError, RemotePath};

use super::Bucket;
use crate::ledger::{Cost, Ledger};
use crate::store::namespace::{Node, NsError, Removal};
use crate::store::{Store, StoreError};

/// One user's home in the bucket.
#[derive(Clone, Debug)]
pub struct ObjectHome {
    /// The owner (the namespace's key, and the blobs' prefix).
    pub user: String,
    /// Where the namespace lives.
    pub store: Store,
    /// Where the bytes live.
    pub bucket: Bucket,
    max_depth: usize,
    /// The user's places for part buffers.
    parts: std::sync::Arc<tokio::sync::Semaphore>,
    /// Names finished uploads, many in one transaction.
    pub committer: super::commit::Committer,
}

/// A part buffer's places: in the user's share, and in the server's.
pub type Places = (
    tokio::sync::OwnedSemaphorePermit,
    tokio::sync::OwnedSemaphorePermit,
);

/// A namespace error as the client sees it, naming `path`.
pub fn ns_error(path: &RemotePath, e: NsError) -> RemoteError {
    let kind = match e {
        NsError::NotFound => ErrorKind::NotFound,
        NsError::Exists => ErrorKind::AlreadyExists,
        NsError::NotADirectory => ErrorKind::NotADirectory,
        NsError::IsADirectory => ErrorKind::IsADirectory,
        NsError::NotEmpty => ErrorKind::NotEmpty,
        NsError::Store(e) => return store_error(&e),
    };
    RemoteError::new(kind, path.to_string())
}

/// A database error as the client sees it (logged here).
pub fn store_error(e: &StoreError) -> RemoteError {
    tracing::warn!(error = %e, "namespace");
    e.to_remote()
}

/// The wire entry of a row.
pub fn entry(node: &Node) -> Entry {
    Entry {
        name: node.name.clone(),
        kind: if node.is_dir {
            EntryKind::Dir
        } else {
            EntryKind::File
        },
        size: node.size,
        mtime: node.mtime,
        mode: node.mode & 0o777,
    }
}

fn now_secs() -> i64 {
    crate::store::now_ms() / 1000
}

impl ObjectHome {
    /// The home of `user`.
    pub fn new(user: &str, store: Store, bucket: Bucket, max_depth: usize) -> ObjectHome {
        let parts = std::sync::Arc::new(tokio::sync::Semaphore::new(bucket.parts_per_user));
        let committer = super::commit::Committer::new(store.clone(), user, bucket.commit_batch);
        ObjectHome {
            user: user.to_string(),
            store,
            bucket,
            max_depth,
            parts,
            committer,
        }
    }

    /// Places for one part buffer: the user's, then the server's (waited
    /// for without a thread).
    pub async fn part_places(&self) -> Option<Places> {
        let user = self.parts.clone().acquire_owned().await.ok()?;
        let server = self.bucket.part_place().await?;
        Some((user, server))
    }

    /// Places for one more part buffer if both are free now (an upload's
    /// second, while its previous part is sent).
    pub fn try_part_places(&self) -> Option<Places> {
        let user = self.parts.clone().try_acquire_owned().ok()?;
        let server = self.bucket.try_part_place()?;
        Some((user, server))
    }

    /// Refuses a path nested deeper than the limit.
    pub fn check_depth(&self, path: &RemotePath) -> Result<(), RemoteError> {
        let depth = path.parts().len();
        if depth > self.max_depth {
            return Err(RemoteError::new(
                ErrorKind::TooDeep,
                format!(
                    "{path} is {depth} levels deep; the server allows {}",
                    self.max_depth
                ),
            ));
        }
        Ok(())
    }

    /// The row of `path`; the home itself is a directory without one.
    pub fn node(&self, path: &RemotePath) -> Result<Option<Node>, RemoteError> {
        if path.is_root() {
            return Ok(Some(Node {
                name: String::new(),
                is_dir: true,
                size: 0,
                blob: None,
                sha256: None,
                mtime: 0,
                mode: 0o755,
            }));
        }
        self.store
            .wait(self.store.ns_get(&self.user, &path.to_string()))
            .map_err(|e| store_error(&e))
    }

    /// What `path` is.
    pub fn stat(&self, path: &RemotePath) -> Result<Entry, RemoteError> {
        match self.node(path)? {
            Some(n) => Ok(entry(&n)),
            None => Err(RemoteError::new(ErrorKind::NotFound, path.to_string())),
        }
    }

    /// Starts a listing of directory `path`, read in batches.
    pub fn listing(&self, path: &RemotePath) -> Result<Listing, RemoteError> {
        let moves = self
            .store
            .wait(self.store.ns_moves(&self.user))
            .map_err(|e| store_error(&e))?;
        match self.node(path)? {
            Some(n) if n.is_dir => Ok(Listing {
                store: self.store.clone(),
                user: self.user.clone(),
                dir: path.to_string(),
                after: String::new(),
                path: path.clone(),
                moves,
            }),
            Some(_) => Err(RemoteError::new(ErrorKind::NotADirectory, path.to_string())),
            None => Err(RemoteError::new(ErrorKind::NotFound, path.to_string())),
        }
    }

    /// Makes a directory (and its parents), each counted in `ledger`.
    pub fn mkdir(
        &self,
        path: &RemotePath,
        parents: bool,
        ledger: &Ledger,
    ) -> Result<(), RemoteError> {
        if path.is_root() {
            return match parents {
                true => Ok(()),
                false => Err(RemoteError::new(ErrorKind::AlreadyExists, "/")),
            };
        }
        self.check_depth(path)?;
        let mut todo = vec![path.clone()];
        if parents {
            todo.clear();
            let mut at = RemotePath::root();
            for part in path.parts() {
                at = at.child(part).map_err(|e| e.to_remote(part))?;
                todo.push(at.clone());
            }
        }
        for at in todo {
            ledger.with(|b| b.take(Cost::DIR))?;
            let made =
                self.store
                    .wait(self.store.ns_mkdir(&self.user, &at.to_string(), now_secs()));
            if let Err(e) = made {
                ledger.give(Cost::DIR);
                match e {
                    NsError::Exists if parents => match self.node(&at)? {
                        Some(n) if n.is_dir => continue,
                        _ => {
                            return Err(RemoteError::new(ErrorKind::NotADirectory, at.to_string()))
                        }
                    },
                    e => return Err(ns_error(&at, e)),
                }
            }
        }
        Ok(())
    }

    /// Removes a path (a tree in one transaction); returns what was freed.
    pub fn remove(
        &self,
        path: &RemotePath,
        mode: RemoveMode,
        ledger: &Ledger,
    ) -> Result<Cost, RemoteError> {
        if path.is_root() {
            return Err(RemoteError::new(
                ErrorKind::PermissionDenied,
                "cannot remove your home directory",
            ));
        }
        let how = match mode {
            RemoveMode::File => Removal::File,
            RemoveMode::EmptyDir => Removal::EmptyDir,
            RemoveMode::Recursive => Removal::Tree,
        };
        let freed = self
            .store
            .wait(self.store.ns_remove(&self.user, &path.to_string(), how))
            .map_err(|e| ns_error(path, e))?;
        ledger.give(freed);
        Ok(freed)
    }

    /// Renames within the home (a directory with its whole tree, in one
    /// transaction); returns what was replaced.
    pub fn rename(
        &self,
        from: &RemotePath,
        to: &RemotePath,
        overwrite: bool,
        ledger: &Ledger,
    ) -> Result<Cost, RemoteError> {
        if from.is_root() || to.is_root() {
            return Err(RemoteError::new(
                ErrorKind::PermissionDenied,
                "cannot rename your home directory",
            ));
        }
        if to.parts().starts_with(from.parts()) && to != from {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                format!("cannot move {from} into itself"),
            ));
        }
        self.check_depth(to)?;
        if to.parts().len() > from.parts().len() {
            let below = self
                .store
                .wait(self.store.ns_depth_below(&self.user, &from.to_string()))
                .map_err(|e| store_error(&e))?;
            let depth = to.parts().len() + below;
            if depth > self.max_depth {
                return Err(RemoteError::new(
                    ErrorKind::TooDeep,
                    format!(
                        "{from} moved to {to} would nest names more than {} levels deep",
                        self.max_depth
                    ),
                ));
            }
        }
        let replaced = self
            .store
            .wait(
                self.store
                    .ns_rename(&self.user, &from.to_string(), &to.to_string(), overwrite),
            )
            .map_err(|e| match e {
                NsError::Exists | NsError::IsADirectory | NsError::NotEmpty => ns_error(to, e),
                e => ns_error(from, e),
            })?;
        ledger.give(replaced);
        Ok(replaced)
    }

    /// Sets the permission bits of a file or directory (see
    /// [`crate::attrs::check_mode`]).
    pub fn chmod(&self, path: &RemotePath, mode: u32) -> Result<(), RemoteError> {
        if path.is_root() {
            return Err(RemoteError::new(
                ErrorKind::PermissionDenied,
                "cannot change your home directory's mode",
            ));
        }
        let check = |is_dir| crate::attrs::check_mode(path, mode, is_dir);
        self.store
            .wait(
                self.store
                    .ns_chmod(&self.user, &path.to_string(), mode, check),
            )
            .map_err(|e| ns_error(path, e))?
    }

    /// Sets the modification time of a file or directory (its row's;
    /// the blob is untouched).
    pub fn set_mtime(&self, path: &RemotePath, mtime: i64) -> Result<(), RemoteError> {
        if path.is_root() {
            return Err(RemoteError::new(
                ErrorKind::PermissionDenied,
                "cannot change your home directory's time",
            ));
        }
        crate::attrs::check_mtime(path, mtime)?;
        self.store
            .wait(
                self.store
                    .ns_set_mtime(&self.user, &path.to_string(), mtime),
            )
            .map_err(|e| ns_error(path, e))?
    }

    /// Copies a file or (with `recursive`) a tree in one transaction: new
    /// rows naming the same blobs, counted against the quota first.
    pub fn copy(
        &self,
        from: &RemotePath,
        to: &RemotePath,
        recursive: bool,
        ledger: &Ledger,
        max_entries: u64,
    ) -> Result<Cost, RemoteError> {
        self.check_depth(to)?;
        let below = self
            .store
            .wait(self.store.ns_depth_below(&self.user, &from.to_string()))
            .map_err(|e| store_error(&e))?;
        if to.parts().len() + below > self.max_depth {
            return Err(RemoteError::new(
                ErrorKind::TooDeep,
                format!(
                    "{from} copied to {to} would nest names more than {} levels deep",
                    self.max_depth
                ),
            ));
        }
        let taken = std::cell::Cell::new(None);
        let settle = |cost: Cost| {
            if cost.entries > max_entries {
                return Err(crate::copy::too_many(from, max_entries));
            }
            ledger.with(|b| b.take(cost))?;
            taken.set(Some(cost));
            Ok(())
        };
        let (f, t) = (from.to_string(), to.to_string());
        match self
            .store
            .wait(self.store.ns_copy(&self.user, &f, &t, recursive, settle))
        {
            Ok(r) => r,
            Err(e) => {
                if let Some(c) = taken.get() {
                    ledger.give(c);
                }
                Err(match e {
                    NsError::Exists | NsError::NotADirectory => ns_error(to, e),
                    e => ns_error(from, e),
                })
            }
        }
    }

    /// What the home holds.
    pub async fn usage(&self) -> Result<Cost, StoreError> {
        self.store.ns_usage(&self.user).await
    }
}

/// A listing being read in batches (in name order, from the database).
#[derive(Debug)]
pub struct Listing {
    store: Store,
    user: String,
    dir: String,
    after: String,
    path: RemotePath,
    /// The user's move counter when the listing began.
    moves: i64,
}

impl Listing {
    /// The next batch of at most `n` entries, and whether more follow.
    pub fn next_batch(&mut self, n: usize) -> Result<(Vec<Entry>, bool), RemoteError> {
        let n = n.max(1);
        let (store, user) = (&self.store, &self.user);
        let (rows, moves) = store
            .wait(async {
                let rows = store.ns_list(user, &self.dir, &self.after, n).await?;
                Ok::<_, StoreError>((rows, store.ns_moves(user).await?))
            })
            .map_err(|e| store_error(&e))?;
        if moves != self.moves {
            return Err(RemoteError::new(
                ErrorKind::TooBusy,
                format!(
                    "{}: names were moved while it was listed; list it again",
                    self.path
                ),
            ));
        }
        if let Some(last) = rows.last() {
            self.after = last.name.clone();
        }
        let more = rows.len() == n;
        Ok((rows.iter().map(entry).collect(), more))
    }
}
