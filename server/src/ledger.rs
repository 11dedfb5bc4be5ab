//! A user's quota ledger: the bytes and entries her home holds, their
//! limits, and what uploads in progress have reserved. Every change to a
//! home looks at the disk and changes the ledger under the ledger's one
//! lock ([`Ledger::with`]), so two operations can never both count the
//! same file (one replacing it, the other removing it).
//!
//! What counts: a regular file its size in bytes, a directory
//! [`DIR_BYTES`] (the block it takes, as `du` counts it), anything else
//! (a symlink) no bytes; every entry (file, directory, symlink, partial
//! file) one entry.

use std::sync::{Arc, Mutex};

use ferry_proto::{ErrorKind, RemoteError};

/// Bytes a directory costs: the block it takes on disk (as `du` counts
/// it). Without a charge, 100,000 empty directories took 400 MiB of disk
/// under a 10 MiB quota.
pub const DIR_BYTES: u64 = 4096;

/// What entries cost, or hold: bytes and entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Bytes.
    pub bytes: u64,
    /// Entries (inodes).
    pub entries: u64,
}

impl Cost {
    /// Nothing.
    pub const ZERO: Cost = Cost {
        bytes: 0,
        entries: 0,
    };
    /// One entry without bytes (a symlink, an empty partial file).
    pub const ENTRY: Cost = Cost {
        bytes: 0,
        entries: 1,
    };
    /// One directory.
    pub const DIR: Cost = Cost {
        bytes: DIR_BYTES,
        entries: 1,
    };

    /// Bytes alone (file content), no entry.
    pub fn bytes(bytes: u64) -> Cost {
        Cost { bytes, entries: 0 }
    }

    /// A regular file of `bytes`.
    pub fn file(bytes: u64) -> Cost {
        Cost { bytes, entries: 1 }
    }

    /// An entry of a given kind (never followed through a symlink).
    pub fn of(is_dir: bool, is_file: bool, size: u64) -> Cost {
        if is_dir {
            Cost::DIR
        } else if is_file {
            Cost::file(size)
        } else {
            Cost::ENTRY
        }
    }

    /// An entry from its metadata (taken without following a symlink).
    pub fn of_metadata(md: &cap_std::fs::Metadata) -> Cost {
        Cost::of(md.is_dir(), md.is_file(), md.len())
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            bytes: self.bytes.saturating_add(o.bytes),
            entries: self.entries.saturating_add(o.entries),
        }
    }
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        *self = *self + o;
    }
}

/// A signed change of usage: what a node has changed and not yet told
/// the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// Bytes added (negative: freed).
    pub bytes: i64,
    /// Entries added (negative: removed).
    pub entries: i64,
}

impl Delta {
    /// From `before` to `after`.
    pub fn between(before: Cost, after: Cost) -> Delta {
        let d = |a: u64, b: u64| {
            (i128::from(b) - i128::from(a)).clamp(i64::MIN.into(), i64::MAX.into()) as i64
        };
        Delta {
            bytes: d(before.bytes, after.bytes),
            entries: d(before.entries, after.entries),
        }
    }

    /// No change.
    pub fn is_zero(&self) -> bool {
        self.bytes == 0 && self.entries == 0
    }

    /// `c` moved by this change (never below zero).
    pub fn applied_to(self, c: Cost) -> Cost {
        let f = |v: u64, d: i64| {
            u64::try_from((i128::from(v) + i128::from(d)).max(0)).unwrap_or(u64::MAX)
        };
        Cost {
            bytes: f(c.bytes, self.bytes),
            entries: f(c.entries, self.entries),
        }
    }
}

impl std::ops::AddAssign for Delta {
    fn add_assign(&mut self, o: Delta) {
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.entries = self.entries.saturating_add(o.entries);
    }
}

/// A user's limits; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes.
    pub bytes: Option<u64>,
    /// Entries.
    pub entries: Option<u64>,
}

/// The numbers, changed only under [`Ledger::with`].
#[derive(Debug)]
pub struct Books {
    used: Cost,
    limits: Limits,
    /// Changes not yet sent to the state store (with a mirror).
    pending: Delta,
}

impl Books {
    /// Counts `c` if it fits under the limits, else refuses and counts
    /// nothing.
    pub fn take(&mut self, c: Cost) -> Result<(), RemoteError> {
        self.take_leaning(c, 0)
    }

    /// [`Books::take`], where `lean` of the bytes will be freed by the
    /// change itself (the file an upload replaces), so only the rest must
    /// be free now.
    pub fn take_leaning(&mut self, c: Cost, lean: u64) -> Result<(), RemoteError> {
        let after = self.used + c;
        if let Some(limit) = self.limits.bytes {
            if c.bytes > 0 && after.bytes.saturating_sub(lean.min(c.bytes)) > limit {
                let need = c.bytes - lean.min(c.bytes);
                return Err(RemoteError::new(
                    ErrorKind::QuotaExceeded,
                    format!(
                        "needs {need} bytes, {} of {limit} free",
                        limit.saturating_sub(self.used.bytes)
                    ),
                ));
            }
        }
        if let Some(max) = self.limits.entries {
            if c.entries > 0 && after.entries > max {
                return Err(RemoteError::new(
                    ErrorKind::QuotaExceeded,
                    format!(
                        "{} of {max} entries (files and directories) in use",
                        self.used.entries
                    ),
                ));
            }
        }
        self.used = after;
        Ok(())
    }

    /// Counts `c` without looking at the limits (what a change already did).
    pub fn add(&mut self, c: Cost) {
        self.used += c;
    }

    /// Uncounts `c` (what a change freed).
    pub fn give(&mut self, c: Cost) {
        self.used.bytes = self.used.bytes.saturating_sub(c.bytes);
        self.used.entries = self.used.entries.saturating_sub(c.entries);
    }

    /// Whether the byte count is within the limit.
    pub fn bytes_fit(&self) -> bool {
        self.limits.bytes.is_none_or(|l| self.used.bytes <= l)
    }

    /// What is used.
    pub fn used(&self) -> Cost {
        self.used
    }
}

/// A user's ledger.
#[derive(Debug)]
pub struct Ledger {
    books: Mutex<Books>,
    mirror: Option<Mirror>,
}

/// A ledger's tie to the user's usage in the state store.
#[derive(Debug)]
pub struct Mirror {
    store: crate::store::Store,
    user: String,
    /// Reservations are taken in the store (several nodes share it); else
    /// the ledger decides alone and the store follows.
    exact: bool,
    /// Wakes the task that sends changes to the store.
    wake: Arc<tokio::sync::Notify>,
    /// This node's id (uploads' rows note their reservations with it).
    node: Option<String>,
}

impl Mirror {
    /// A mirror of `user`'s usage in `store`; `exact`: reservations are
    /// decided there (PostgreSQL, several nodes).
    pub fn new(
        store: crate::store::Store,
        user: &str,
        exact: bool,
        wake: Arc<tokio::sync::Notify>,
        node: Option<String>,
    ) -> Mirror {
        Mirror {
            store,
            user: user.to_string(),
            exact,
            wake,
            node,
        }
    }
}

impl Ledger {
    /// A ledger for a home holding `used`.
    pub fn new(used: Cost, limits: Limits) -> Ledger {
        Ledger {
            books: Mutex::new(Books {
                used,
                limits,
                pending: Delta::default(),
            }),
            mirror: None,
        }
    }

    /// The same, told to the state store as it changes.
    pub fn mirrored(used: Cost, limits: Limits, mirror: Mirror) -> Ledger {
        Ledger {
            mirror: Some(mirror),
            ..Ledger::new(used, limits)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        // A panic while holding the lock leaves plain numbers behind.
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends what changed since the last time to the store and takes the
    /// store's usage (other nodes' changes included) as its own; with
    /// nothing to send, asks only if `refresh` and other nodes may have
    /// changed it. A store that does not answer keeps the changes for the
    /// next time.
    pub async fn sync(&self, refresh: bool) -> Result<(), crate::store::StoreError> {
        let Some(m) = &self.mirror else {
            return Ok(());
        };
        let sent = std::mem::take(&mut self.lock().pending);
        if sent.is_zero() && !(refresh && m.exact) {
            return Ok(());
        }
        match m.store.add_usage(&m.user, sent).await {
            Ok(Some(u)) => {
                let mut b = self.lock();
                b.used = b.pending.applied_to(u.0);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                self.lock().pending += sent;
                Err(e)
            }
        }
    }

    /// Runs `f` under the ledger's lock: look at the disk, change it,
    /// count the change, all in one step. Keep `f` short (a few system
    /// calls): the commit thread of every user may wait for it.
    pub fn with<T>(&self, f: impl FnOnce(&mut Books) -> T) -> T {
        let mut books = self.lock();
        let before = books.used;
        let out = f(&mut books);
        if let Some(m) = &self.mirror {
            let d = Delta::between(before, books.used);
            if !d.is_zero() {
                books.pending += d;
                m.wake.notify_one();
            }
        }
        out
    }

    /// What is used and the limits.
    pub fn usage(&self) -> (Cost, Limits) {
        self.with(|b| (b.used, b.limits))
    }

    /// Sets new limits; they hold from the next reservation on.
    pub fn set_limits(&self, limits: Limits) {
        self.with(|b| b.limits = limits);
    }

    /// Uncounts what a change freed.
    pub fn give(&self, c: Cost) {
        self.with(|b| b.give(c));
    }

    /// Reserves `bytes` for an upload that will replace a file of
    /// `replaced` bytes: only the growth must be free now (the rest leans
    /// on the file it replaces, checked again at the rename, see
    /// [`Reservation::settle`]). Refused when it does not fit.
    pub fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        replaced: u64,
    ) -> Result<Reservation, RemoteError> {
        self.reserve_for(bytes, replaced, None)
    }

    /// [`Ledger::reserve`] for the upload of `path` (whose row in the
    /// store notes what it reserved, with several nodes).
    pub fn reserve_for(
        self: &Arc<Self>,
        bytes: u64,
        replaced: u64,
        path: Option<String>,
    ) -> Result<Reservation, RemoteError> {
        let lean = replaced.min(bytes);
        match &self.mirror {
            Some(m) if m.exact && bytes > 0 => {
                self.reserve_shared(m, bytes, lean, path.as_deref())?
            }
            _ => self.with(|b| b.take_leaning(Cost::bytes(bytes), lean))?,
        }
        Ok(Reservation {
            ledger: self.clone(),
            reserved: bytes,
            written: 0,
            lean,
            path,
        })
    }
}

/// Bytes counted for an upload in progress: reserved up front, used as
/// they are written, and what is not written given back when it is
/// dropped.
impl Ledger {
    /// Reserves in the store, in one conditional update with this node's
    /// pending changes, and takes the store's usage. Blocking: call from
    /// a blocking thread (file work runs on those).
    fn reserve_shared(
        &self,
        m: &Mirror,
        bytes: u64,
        lean: u64,
        path: Option<&str>,
    ) -> Result<(), RemoteError> {
        use crate::store::quota::Reserved;
        let (sent, limit) = {
            let mut b = self.lock();
            (std::mem::take(&mut b.pending), b.limits.bytes)
        };
        let upload = path.zip(m.node.as_deref());
        let asked = m.store.reserve(&m.user, sent, bytes, lean, limit, upload);
        let outcome = m.store.wait(asked);
        let mut b = self.lock();
        match outcome {
            Ok(Reserved::Taken(u)) => {
                b.used = b.pending.applied_to(u.0);
                Ok(())
            }
            Ok(Reserved::Refused(u)) => {
                b.used = b.pending.applied_to(u.0);
                let need = bytes - lean;
                Err(RemoteError::new(
                    ErrorKind::QuotaExceeded,
                    format!(
                        "needs {need} bytes, {} of {} free",
                        limit.unwrap_or(0).saturating_sub(b.used.bytes),
                        limit.unwrap_or(0)
                    ),
                ))
            }
            Err(e) => {
                b.pending += sent;
                tracing::warn!(user = %crate::logfmt::q(&m.user), error = %e, "cannot reserve in the state store");
                Err(e.to_remote())
            }
        }
    }
}

#[derive(Debug)]
pub struct Reservation {
    ledger: Arc<Ledger>,
    reserved: u64,
    written: u64,
    /// Bytes reserved beyond the free space, leaning on the file the
    /// upload replaces.
    lean: u64,
    /// The upload's path, when its row in the store notes what it holds.
    path: Option<String>,
}

impl Reservation {
    /// Counts bytes already in the ledger (a truncated partial) as reserved.
    pub fn adopt(&mut self, bytes: u64) {
        self.reserved += bytes;
    }

    /// Reserves more, or refuses when the quota is full.
    pub fn grow(&mut self, bytes: u64) -> Result<(), RemoteError> {
        match &self.ledger.mirror {
            Some(m) if m.exact && bytes > 0 => {
                self.ledger
                    .reserve_shared(m, bytes, 0, self.path.as_deref())?
            }
            _ => self.ledger.with(|b| b.take(Cost::bytes(bytes)))?,
        }
        self.reserved += bytes;
        Ok(())
    }

    /// Records bytes written to disk.
    pub fn use_bytes(&mut self, bytes: u64) {
        self.written += bytes;
    }

    /// Bytes counted as written that are gone after all (parts of an
    /// upload started afresh): reserved again, given back if unused.
    pub fn unuse_bytes(&mut self, bytes: u64) {
        self.written = self.written.saturating_sub(bytes);
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The final rename of an upload, counted by what it actually replaced
    /// (looked at with lstat right before renaming, under the ledger's
    /// lock): the replaced entry is uncounted; the partial's bytes and
    /// entry, counted as they were made, now are the file's. When the file
    /// the reservation leaned on has shrunk or gone meanwhile (moved,
    /// removed), the upload must fit without it, or the rename is refused
    /// (`EDQUOT`) and the partial kept for a later attempt.
    pub fn settle(
        &self,
        rename: impl FnOnce() -> std::io::Result<()>,
        replaced: impl FnOnce() -> std::io::Result<Option<Cost>>,
    ) -> std::io::Result<()> {
        self.ledger.with(|b| {
            let old = replaced()?.unwrap_or(Cost::ZERO);
            if old.bytes < self.lean {
                let after = Cost {
                    bytes: b.used().bytes.saturating_sub(old.bytes),
                    ..b.used()
                };
                if b.limits.bytes.is_some_and(|l| after.bytes > l) {
                    return Err(std::io::Error::from_raw_os_error(libc::EDQUOT));
                }
            }
            rename()?;
            b.give(old);
            Ok(())
        })
    }
}

impl Reservation {
    /// [`Reservation::settle`]'s check alone, for a commit made elsewhere
    /// (a database transaction, never run under the ledger's lock): does
    /// the upload fit when it replaces `replaced`? The caller gives back
    /// what its commit actually replaced.
    pub fn fits(&self, replaced: Cost) -> Result<(), RemoteError> {
        self.ledger.with(|b| {
            if replaced.bytes >= self.lean {
                return Ok(());
            }
            let after = b.used().bytes.saturating_sub(replaced.bytes);
            match b.limits.bytes {
                Some(limit) if after > limit => Err(RemoteError::new(
                    ErrorKind::QuotaExceeded,
                    format!(
                        "needs {} bytes more than the quota of {limit}",
                        after - limit
                    ),
                )),
                _ => Ok(()),
            }
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let unused = self.reserved.saturating_sub(self.written);
        if unused > 0 {
            self.ledger.give(Cost::bytes(unused));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(bytes: u64, limit: Option<u64>) -> Arc<Ledger> {
        Arc::new(Ledger::new(
            Cost::file(bytes),
            Limits {
                bytes: limit,
                entries: Some(3),
            },
        ))
    }

    #[test]
    fn an_overwrite_needs_only_its_growth_free() {
        // 86 of 200 used by the file to be replaced, plus 88 by others.
        let l = ledger(174, Some(200));
        assert!(l.reserve(86, 0).is_err(), "all new bytes do not fit");
        let r = l.reserve(86, 86).unwrap();
        assert_eq!(l.usage().0.bytes, 260, "the partial counts while it exists");
        drop(r);
        assert_eq!(l.usage().0.bytes, 174);
        assert!(l.reserve(113, 86).is_err(), "the growth (27) does not fit");
    }

    #[test]
    fn a_rename_is_refused_when_what_it_leaned_on_has_moved_away() {
        // 90 of 100 used: 50 by the file the upload replaces.
        let l = ledger(90, Some(100));
        let r = l.reserve(50, 50).unwrap();
        // Moved away meanwhile: still counted, nothing to replace.
        let err = r.settle(|| Ok(()), || Ok(None)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EDQUOT));
        assert_eq!(l.usage().0.bytes, 140, "the partial still counts");
    }

    #[test]
    fn a_rename_after_what_it_leaned_on_was_removed_fits() {
        let l = ledger(90, Some(100));
        let r = l.reserve(50, 50).unwrap();
        l.give(Cost::file(50)); // removed (and uncounted) meanwhile
        r.settle(|| Ok(()), || Ok(None)).unwrap();
        assert_eq!(l.usage().0.bytes, 90);
    }

    #[test]
    fn a_rename_over_the_file_it_leaned_on_frees_that_file() {
        let l = ledger(90, Some(100));
        l.with(|b| b.take(Cost::ENTRY)).unwrap(); // the partial
        let mut r = l.reserve(50, 50).unwrap();
        r.use_bytes(50);
        r.settle(|| Ok(()), || Ok(Some(Cost::file(50)))).unwrap();
        drop(r);
        assert_eq!(l.usage().0, Cost::file(90));
    }

    #[test]
    fn entries_are_limited() {
        let l = ledger(0, None);
        l.with(|b| b.take(Cost::DIR)).unwrap();
        l.with(|b| b.take(Cost::ENTRY)).unwrap();
        let err = l.with(|b| b.take(Cost::ENTRY)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::QuotaExceeded);
        assert_eq!(
            l.usage().0,
            Cost {
                bytes: 4096,
                entries: 3
            }
        );
    }
}
