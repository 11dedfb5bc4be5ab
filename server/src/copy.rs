//! Server-side copies (`Copy`): a file, or a directory with its tree,
//! within one home. The whole copy is measured and counted against the
//! quota (bytes and entries) before anything is written; then, on disk,
//! it runs in bounded steps on the user's share of threads (at most
//! [`STEP_ENTRIES`] entries or [`STEP_BYTES`] bytes a step), each file
//! cloned where the file system shares extents (`FICLONE`), else copied
//! by the kernel (`copy_file_range`). A copy that fails midway removes
//! what it made. In object storage it is one transaction of new rows
//! naming the same blobs (`store/ns_tools.rs`).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::Arc;

use cap_std::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use ferry_proto::msg::RemoveMode;
use ferry_proto::{ErrorKind, RemoteError, RemotePath};

use crate::accounts::Account;
use crate::jail::{io_error, Home};
use crate::ledger::Cost;
use crate::threads::Threads;

/// Entries one step of a copy makes at most.
pub const STEP_ENTRIES: usize = 256;
/// Bytes one step of a copy moves at most (a clone moves none).
pub const STEP_BYTES: u64 = 64 << 20;

fn internal() -> RemoteError {
    RemoteError::new(ErrorKind::Io, "internal error")
}

/// Refuses a copy that cannot be: of or onto the home, into itself.
pub fn check_paths(from: &RemotePath, to: &RemotePath) -> Result<(), RemoteError> {
    if from.is_root() || to.is_root() {
        return Err(RemoteError::new(
            ErrorKind::PermissionDenied,
            "cannot copy your home directory, or onto it",
        ));
    }
    if to.parts().starts_with(from.parts()) {
        return Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("cannot copy {from} into itself"),
        ));
    }
    Ok(())
}

/// The refusal of a tree with more entries than one copy may make.
pub fn too_many(from: &RemotePath, max: u64) -> RemoteError {
    RemoteError::new(
        ErrorKind::BadRequest,
        format!("{from} holds more than {max} entries, the most one copy makes (copy it in parts)"),
    )
}

/// Copies `from` to `to` in the user's home; returns what the copy
/// counts against the quota.
pub async fn copy(
    from: RemotePath,
    to: RemotePath,
    recursive: bool,
    account: Arc<Account>,
    threads: &Threads,
    max_entries: u64,
) -> Result<Cost, RemoteError> {
    check_paths(&from, &to)?;
    if account.home.objects().is_some() {
        let a = account.clone();
        return threads
            .run(move || {
                let home = a.home.objects().ok_or_else(internal)?;
                home.copy(&from, &to, recursive, &a.ledger, max_entries)
            })
            .await
            .ok_or_else(internal)?;
    }
    let a = account.clone();
    let mut job = threads
        .run(move || Job::plan(&a, from, to, recursive, max_entries))
        .await
        .ok_or_else(internal)??;
    loop {
        let a = account.clone();
        let (back, r) = threads
            .run_bulk(move || {
                let r = job.step(&a);
                (job, r)
            })
            .await
            .ok_or_else(internal)?;
        job = back;
        match r {
            Ok(true) => continue,
            Ok(false) => break,
            Err(e) => {
                let a = account.clone();
                threads.run(move || job.undo(&a)).await;
                return Err(e);
            }
        }
    }
    let a = account.clone();
    threads
        .run(move || job.finish(&a))
        .await
        .ok_or_else(internal)
}

/// What is left to make.
#[derive(Debug)]
enum Item {
    Dir,
    File,
    Link,
}

/// A file being copied by the kernel, across steps.
#[derive(Debug)]
struct Moving {
    src: File,
    dst: File,
    done: u64,
    size: u64,
    to: RemotePath,
    md: cap_std::fs::Metadata,
}

/// A copy on disk in progress.
#[derive(Debug)]
struct Job {
    to: RemotePath,
    /// Counted in the ledger before it began.
    reserved: Cost,
    /// Made so far.
    made: Cost,
    /// Directories made whose entries are still to be listed.
    dirs: Vec<(RemotePath, RemotePath)>,
    /// Entries of the directory listed last, still to make.
    todo: VecDeque<(RemotePath, RemotePath, Item)>,
    moving: Option<Moving>,
    /// Whether anything was made (else an undo has nothing to remove).
    started: bool,
}

fn home(account: &Account) -> Result<&Home, RemoteError> {
    account.home.disk()
}

fn changed(from: &RemotePath) -> RemoteError {
    RemoteError::new(
        ErrorKind::TooBusy,
        format!("{from} changed while it was copied; nothing was copied"),
    )
}

impl Job {
    /// Looks at `from` and `to`, measures the tree and counts it against
    /// the quota: nothing is written unless all of it fits.
    fn plan(
        account: &Account,
        from: RemotePath,
        to: RemotePath,
        recursive: bool,
        max_entries: u64,
    ) -> Result<Job, RemoteError> {
        let h = home(account)?;
        h.check_depth(&to)?;
        let md = h
            .dir()
            .symlink_metadata(from.to_relative())
            .map_err(|e| io_error(&from, e))?;
        match h.dir().symlink_metadata(to.to_relative()) {
            Ok(_) => return Err(RemoteError::new(ErrorKind::AlreadyExists, to.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&to, e)),
        }
        let ft = md.file_type();
        let (item, cost) = if ft.is_dir() {
            if !recursive {
                return Err(RemoteError::new(ErrorKind::IsADirectory, from.to_string()));
            }
            let root = h.open_dir_nofollow(&from)?;
            let room = h.max_depth().saturating_sub(to.parts().len());
            if crate::walk::deeper_than(&root, room).map_err(|e| io_error(&from, e))? {
                return Err(RemoteError::new(
                    ErrorKind::TooDeep,
                    format!(
                        "{from} copied to {to} would nest names more than {} levels deep",
                        h.max_depth()
                    ),
                ));
            }
            let below = crate::walk::usage_up_to(&root, max_entries)
                .map_err(|e| io_error(&from, e))?
                .ok_or_else(|| too_many(&from, max_entries))?;
            (Item::Dir, below + Cost::DIR)
        } else if ft.is_file() {
            (Item::File, Cost::file(md.len()))
        } else if ft.is_symlink() {
            (Item::Link, Cost::ENTRY)
        } else {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                format!("{from}: only files, directories and links are copied"),
            ));
        };
        if cost.entries > max_entries {
            return Err(too_many(&from, max_entries));
        }
        account.ledger.with(|b| b.take(cost))?;
        Ok(Job {
            to: to.clone(),
            reserved: cost,
            made: Cost::ZERO,
            dirs: Vec::new(),
            todo: VecDeque::from([(from, to, item)]),
            moving: None,
            started: false,
        })
    }

    /// One bounded step; true while more is left.
    fn step(&mut self, account: &Account) -> Result<bool, RemoteError> {
        let h = home(account)?;
        let (mut entries, mut bytes) = (0, 0u64);
        while entries < STEP_ENTRIES && bytes < STEP_BYTES {
            if let Some(m) = &mut self.moving {
                let n = move_bytes(m, STEP_BYTES - bytes).map_err(|e| io_error(&m.to, e))?;
                bytes += n.max(1);
                if m.done >= m.size || n == 0 {
                    let m = self.moving.take().ok_or_else(internal)?;
                    finish_file(&m).map_err(|e| io_error(&m.to, e))?;
                }
                continue;
            }
            if let Some((src, dst, item)) = self.todo.pop_front() {
                entries += 1;
                self.make(h, src, dst, item)?;
                continue;
            }
            if let Some((src, dst)) = self.dirs.pop() {
                self.list(h, &src, &dst)?;
                continue;
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// Counts one more entry made, refusing what the plan did not count
    /// (the tree grew meanwhile).
    fn count(&mut self, from: &RemotePath, cost: Cost) -> Result<(), RemoteError> {
        let made = self.made + cost;
        if made.bytes > self.reserved.bytes || made.entries > self.reserved.entries {
            return Err(changed(from));
        }
        self.made = made;
        Ok(())
    }

    fn make(
        &mut self,
        h: &Home,
        src: RemotePath,
        dst: RemotePath,
        item: Item,
    ) -> Result<(), RemoteError> {
        h.check_depth(&dst)?;
        let md = h
            .dir()
            .symlink_metadata(src.to_relative())
            .map_err(|e| io_error(&src, e))?;
        match item {
            Item::Dir => {
                if !md.is_dir() {
                    return Err(changed(&src));
                }
                self.count(&src, Cost::DIR)?;
                h.dir()
                    .create_dir(dst.to_relative())
                    .map_err(|e| io_error(&dst, e))?;
                self.started = true;
                let mode = (md.mode() & 0o777) | 0o700;
                h.dir()
                    .set_permissions(dst.to_relative(), cap_std::fs::Permissions::from_mode(mode))
                    .map_err(|e| io_error(&dst, e))?;
                self.dirs.push((src, dst));
            }
            Item::File => {
                if !md.is_file() {
                    return Err(changed(&src));
                }
                self.count(&src, Cost::file(md.len()))?;
                let from = crate::read::open_nonblocking(h, &src)?;
                let mut opts = cap_std::fs::OpenOptions::new();
                opts.write(true).create_new(true).mode(0o600);
                let to = h
                    .dir()
                    .open_with(dst.to_relative(), &opts)
                    .map_err(|e| io_error(&dst, e))?
                    .into_std();
                self.started = true;
                let mut m = Moving {
                    size: md.len(),
                    src: from,
                    dst: to,
                    done: 0,
                    to: dst,
                    md,
                };
                // A clone shares the extents: the whole file in one call.
                if m.size == 0 || rustix::fs::ioctl_ficlone(&m.dst, &m.src).is_ok() {
                    m.done = m.size;
                    finish_file(&m).map_err(|e| io_error(&m.to, e))?;
                } else {
                    self.moving = Some(m);
                }
            }
            Item::Link => {
                if !md.is_symlink() {
                    return Err(changed(&src));
                }
                self.count(&src, Cost::ENTRY)?;
                let (sp, sname) = h.open_entry_parent(&src)?;
                let (dp, dname) = h.open_entry_parent(&dst)?;
                let target = rustix::fs::readlinkat(&sp, sname.as_c_str(), Vec::new())
                    .map_err(|e| io_error(&src, e.into()))?;
                rustix::fs::symlinkat(target.as_c_str(), &dp, dname.as_c_str())
                    .map_err(|e| io_error(&dst, e.into()))?;
                self.started = true;
            }
        }
        Ok(())
    }

    /// Reads the entries of the directory `src` (copied to `dst`) into
    /// the list of what is left: names only, one directory at a time.
    fn list(&mut self, h: &Home, src: &RemotePath, dst: &RemotePath) -> Result<(), RemoteError> {
        let rd = h
            .dir()
            .read_dir(src.to_relative())
            .map_err(|e| io_error(src, e))?;
        for item in rd {
            let item = item.map_err(|e| io_error(src, e))?;
            let ft = item.file_type().map_err(|e| io_error(src, e))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else {
                return Err(RemoteError::new(
                    ErrorKind::InvalidPath,
                    format!("{src} holds a name that is not UTF-8; it cannot be copied"),
                ));
            };
            // Names no path may hold (the partial area) are not copied.
            let (Ok(s), Ok(d)) = (src.child(name), dst.child(name)) else {
                continue;
            };
            let kind = if ft.is_dir() {
                Item::Dir
            } else if ft.is_file() {
                Item::File
            } else if ft.is_symlink() {
                Item::Link
            } else {
                continue; // fifos, sockets, devices: never copied
            };
            if (self.made.entries + self.todo.len() as u64) >= self.reserved.entries {
                return Err(changed(src));
            }
            self.todo.push_back((s, d, kind));
        }
        Ok(())
    }

    /// Gives back what was counted and not made.
    fn finish(self, account: &Account) -> Cost {
        account.ledger.give(minus(self.reserved, self.made));
        self.made
    }

    /// Removes what was made (uncounted as it goes), and gives back the
    /// rest of what was counted.
    fn undo(self, account: &Account) {
        let Job {
            to,
            reserved,
            made,
            moving,
            started,
            ..
        } = self;
        drop(moving);
        account.ledger.give(minus(reserved, made));
        if !started {
            return;
        }
        if let Ok(h) = home(account) {
            if let Err(e) = h.remove(&to, RemoveMode::Recursive, &account.ledger) {
                tracing::warn!(path = %crate::logfmt::q(&to), error = %e, "a failed copy was not removed");
            }
        }
    }
}

fn minus(a: Cost, b: Cost) -> Cost {
    Cost {
        bytes: a.bytes.saturating_sub(b.bytes),
        entries: a.entries.saturating_sub(b.entries),
    }
}

/// Moves up to `max` more bytes of a file (the kernel copies them);
/// returns how many (0: the source ended early).
fn move_bytes(m: &mut Moving, max: u64) -> io::Result<u64> {
    let want = (m.size - m.done).min(max);
    let mut moved = 0;
    while moved < want {
        let (mut i, mut o) = (m.done, m.done);
        let n = (want - moved).min(1 << 30) as usize;
        let got = match rustix::fs::copy_file_range(&m.src, Some(&mut i), &m.dst, Some(&mut o), n) {
            Ok(got) => got as u64,
            Err(e)
                if [
                    rustix::io::Errno::XDEV,
                    rustix::io::Errno::NOSYS,
                    rustix::io::Errno::OPNOTSUPP,
                    rustix::io::Errno::INVAL,
                ]
                .contains(&e) =>
            {
                copy_by_hand(m, want - moved)?
            }
            Err(e) => return Err(e.into()),
        };
        if got == 0 {
            break;
        }
        m.done += got;
        moved += got;
    }
    Ok(moved)
}

/// Where the kernel does not copy between these files: read and write.
fn copy_by_hand(m: &Moving, n: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; n.min(1 << 20) as usize];
    let got = m.src.read_at(&mut buf, m.done)?;
    m.dst.write_all_at(&buf[..got], m.done)?;
    Ok(got as u64)
}

/// Gives a copied file its source's permission bits and times.
fn finish_file(m: &Moving) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if m.done < m.size {
        return Err(io::Error::other("the source shrank while it was copied"));
    }
    m.dst
        .set_permissions(std::fs::Permissions::from_mode(m.md.mode() & 0o777))?;
    let times = std::fs::FileTimes::new()
        .set_modified(m.md.modified()?.into_std())
        .set_accessed(m.md.accessed()?.into_std());
    m.dst.set_times(times)
}
