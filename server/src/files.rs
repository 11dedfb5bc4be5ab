//! The storage interface: a user's home is a directory on the local disk
//! ([`crate::jail::Home`], the embedded default) or a namespace in the
//! database over blobs in object storage ([`crate::objects::home`]).
//! Browsing requests go through here and behave the same on both;
//! transfers pick their own engine by the kind of home (`conn.rs`).

use ferry_proto::msg::{Entry, RemoveMode};
use ferry_proto::{ErrorKind, RemoteError, RemotePath};

use crate::jail::{self, Home};
use crate::ledger::{Cost, Ledger};
use crate::objects::home::{self as objhome, ObjectHome};

/// Where one user's files live.
#[derive(Debug)]
pub enum Files {
    /// A directory on the local disk.
    Disk(Home),
    /// A namespace in the database, bytes in the bucket.
    Objects(ObjectHome),
}

/// A listing read in batches.
#[derive(Debug)]
pub enum Listing {
    /// Of a directory on disk.
    Disk(jail::Listing),
    /// Of a directory in the namespace.
    Objects(objhome::Listing),
}

impl Listing {
    /// The next batch of at most `n` entries, and whether more follow.
    pub fn next_batch(&mut self, n: usize) -> Result<(Vec<Entry>, bool), RemoteError> {
        match self {
            Listing::Disk(l) => l.next_batch(n),
            Listing::Objects(l) => l.next_batch(n),
        }
    }
}

impl Files {
    /// The home on disk, for what only the disk engine does.
    pub fn disk(&self) -> Result<&Home, RemoteError> {
        match self {
            Files::Disk(h) => Ok(h),
            Files::Objects(_) => Err(RemoteError::new(
                ErrorKind::Io,
                "internal error: a disk operation on a home in object storage",
            )),
        }
    }

    /// The home in object storage, if it is one.
    pub fn objects(&self) -> Option<&ObjectHome> {
        match self {
            Files::Disk(_) => None,
            Files::Objects(h) => Some(h),
        }
    }

    /// Refuses a path nested deeper than the limit.
    pub fn check_depth(&self, path: &RemotePath) -> Result<(), RemoteError> {
        match self {
            Files::Disk(h) => h.check_depth(path),
            Files::Objects(h) => h.check_depth(path),
        }
    }

    /// What `path` is.
    pub fn stat(&self, path: &RemotePath) -> Result<Entry, RemoteError> {
        match self {
            Files::Disk(h) => h.stat(path),
            Files::Objects(h) => h.stat(path),
        }
    }

    /// Starts a listing of directory `path`.
    pub fn listing(&self, path: &RemotePath) -> Result<Listing, RemoteError> {
        match self {
            Files::Disk(h) => h.listing(path).map(Listing::Disk),
            Files::Objects(h) => h.listing(path).map(Listing::Objects),
        }
    }

    /// Makes a directory (with its parents), counted in `ledger`.
    pub fn mkdir(
        &self,
        path: &RemotePath,
        parents: bool,
        ledger: &Ledger,
    ) -> Result<(), RemoteError> {
        match self {
            Files::Disk(h) => h.mkdir(path, parents, ledger),
            Files::Objects(h) => h.mkdir(path, parents, ledger),
        }
    }

    /// Removes a path; returns what was freed (uncounted from `ledger`).
    pub fn remove(
        &self,
        path: &RemotePath,
        mode: RemoveMode,
        ledger: &Ledger,
    ) -> Result<Cost, RemoteError> {
        match self {
            Files::Disk(h) => h.remove(path, mode, ledger),
            Files::Objects(h) => h.remove(path, mode, ledger),
        }
    }

    /// Renames; returns what was replaced (uncounted from `ledger`).
    pub fn rename(
        &self,
        from: &RemotePath,
        to: &RemotePath,
        overwrite: bool,
        ledger: &Ledger,
    ) -> Result<Cost, RemoteError> {
        match self {
            Files::Disk(h) => h.rename(from, to, overwrite, ledger),
            Files::Objects(h) => h.rename(from, to, overwrite, ledger),
        }
    }

    /// Sets the permission bits of a file or directory, never through a
    /// symbolic link (see [`crate::attrs`]).
    pub fn chmod(&self, path: &RemotePath, mode: u32) -> Result<(), RemoteError> {
        match self {
            Files::Disk(h) => crate::attrs::chmod_on_disk(h, path, mode),
            Files::Objects(h) => h.chmod(path, mode),
        }
    }

    /// Sets the modification time of a file or directory, never through a
    /// symbolic link (see [`crate::attrs`]).
    pub fn set_mtime(&self, path: &RemotePath, mtime: i64) -> Result<(), RemoteError> {
        match self {
            Files::Disk(h) => crate::attrs::set_mtime_on_disk(h, path, mtime),
            Files::Objects(h) => h.set_mtime(path, mtime),
        }
    }
}
