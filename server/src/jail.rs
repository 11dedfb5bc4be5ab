//! A user's home as a directory capability. Every filesystem operation on
//! behalf of a client goes through [`Home`], which resolves paths beneath
//! the home only (cap-std: openat2 RESOLVE_BENEATH where available), so
//! neither `..` nor a symlink can lead out. Symlinks are listed and removed,
//! never followed by removal. Trees are walked iteratively (see
//! [`crate::walk`]), and no operation nests anything deeper than the
//! home's depth limit.

use cap_std::fs::MetadataExt;
use std::ffi::CString;
use std::io;
use std::path::Path;
use std::sync::RwLock;

use crate::logfmt::q;
use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata};
use ferry_proto::msg::{Entry, EntryKind, RemoveMode};
use ferry_proto::{ErrorKind, RemoteError, RemotePath};

use crate::ledger::{Cost, Ledger};

/// How many levels below the home an operation may nest a name when no
/// limit is configured (`limits.max_depth`).
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// A jailed home directory.
#[derive(Debug)]
pub struct Home {
    dir: Dir,
    /// Deepest level below the home an operation may create.
    max_depth: usize,
    /// Held shared by `mkdir` and exclusively by every move, so no
    /// directory grows under a tree while its depth is measured for a
    /// move that deepens it.
    shape: RwLock<()>,
    /// The partial area, once an upload opened it.
    partials: std::sync::OnceLock<Dir>,
}

/// Maps an I/O error on `path` to the wire error the client sees.
pub fn io_error(path: &RemotePath, e: io::Error) -> RemoteError {
    let kind = match e.raw_os_error() {
        Some(libc::ENOSPC) => ErrorKind::DiskFull,
        Some(libc::EDQUOT) => ErrorKind::QuotaExceeded,
        Some(libc::ENOTEMPTY) => ErrorKind::NotEmpty,
        Some(libc::ENOTDIR) => ErrorKind::NotADirectory,
        Some(libc::EISDIR) => ErrorKind::IsADirectory,
        Some(libc::EXDEV) => ErrorKind::OutsideHome,
        Some(libc::ENAMETOOLONG) => ErrorKind::InvalidPath,
        Some(libc::ELOOP) => ErrorKind::OutsideHome,
        _ => match e.kind() {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            // cap-std reports escapes as PermissionDenied with this text.
            io::ErrorKind::PermissionDenied
                if e.to_string().contains("outside of the filesystem") =>
            {
                ErrorKind::OutsideHome
            }
            io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::Io,
        },
    };
    if kind == ErrorKind::Io {
        tracing::warn!(path = %q(path), error = %q(&e), "unexpected I/O error");
    }
    RemoteError::new(kind, path.to_string())
}

/// Converts metadata (not following symlinks) into a wire entry.
pub fn entry(name: String, md: &Metadata) -> Entry {
    let ft = md.file_type();
    let kind = EntryKind::classify(ft.is_symlink(), ft.is_dir(), ft.is_file());
    Entry {
        name,
        kind,
        size: md.size(),
        mtime: md.mtime(),
        mode: md.mode() & 0o7777,
    }
}

impl Home {
    /// Opens a home directory on disk.
    pub fn open(path: &Path) -> io::Result<Home> {
        Ok(Home {
            dir: Dir::open_ambient_dir(path, ambient_authority())?,
            max_depth: DEFAULT_MAX_DEPTH,
            shape: RwLock::new(()),
            partials: std::sync::OnceLock::new(),
        })
    }

    /// Sets how many levels below the home operations may nest names.
    pub fn with_max_depth(mut self, max_depth: usize) -> Home {
        self.max_depth = max_depth;
        self
    }

    /// Refuses a path deeper than the limit, for an operation that would
    /// create it.
    pub fn check_depth(&self, path: &RemotePath) -> Result<(), RemoteError> {
        let depth = path.parts().len();
        if depth > self.max_depth {
            return Err(too_deep(path, depth, self.max_depth));
        }
        Ok(())
    }

    /// How many levels below the home operations may nest names.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Opens the directory `path` itself, never through a final symlink.
    pub fn open_dir_nofollow(
        &self,
        path: &RemotePath,
    ) -> Result<std::os::fd::OwnedFd, RemoteError> {
        let (parent, name) = self.open_entry_parent(path)?;
        open_dir_nofollow(&parent, &name).map_err(|e| io_error(path, e))
    }

    /// The capability, for the transfer code.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The user's partial area (see [`crate::transfer::partials`]),
    /// created on first use.
    pub fn partials(&self) -> io::Result<&Dir> {
        if let Some(dir) = self.partials.get() {
            return Ok(dir);
        }
        let dir = crate::transfer::partials::open_area(&self.dir)?;
        Ok(self.partials.get_or_init(|| dir))
    }

    /// Metadata without following a final symlink.
    pub fn stat(&self, path: &RemotePath) -> Result<Entry, RemoteError> {
        let md = self
            .dir
            .symlink_metadata(path.to_relative())
            .map_err(|e| io_error(path, e))?;
        Ok(entry(path.file_name().unwrap_or("/").to_string(), &md))
    }

    /// Lists a directory, calling `batch` with up to `batch_size` entries
    /// at a time, so a huge directory never becomes one giant message.
    /// `batch` returns false to stop early (the client went away).
    pub fn list(
        &self,
        path: &RemotePath,
        batch_size: usize,
        mut batch: impl FnMut(Vec<Entry>, bool) -> bool,
    ) -> Result<(), RemoteError> {
        let mut listing = self.listing(path)?;
        loop {
            let (entries, more) = listing.next_batch(batch_size)?;
            if !batch(entries, more) || !more {
                return Ok(());
            }
        }
    }

    /// Starts listing a directory, to be read a batch at a time
    /// ([`Listing::next_batch`]), each batch one bounded step.
    pub fn listing(&self, path: &RemotePath) -> Result<Listing, RemoteError> {
        let io = |e| io_error(path, e);
        let rd = self.dir.read_dir(path.to_relative()).map_err(io)?;
        Ok(Listing {
            dir: self.dir.try_clone().map_err(io)?,
            path: path.clone(),
            rd,
        })
    }

    /// Creates a directory, optionally with its parents. Each directory
    /// made is counted in `ledger` (refused when it does not fit).
    pub fn mkdir(
        &self,
        path: &RemotePath,
        parents: bool,
        ledger: &Ledger,
    ) -> Result<(), RemoteError> {
        if path.is_root() {
            return if parents {
                Ok(())
            } else {
                Err(RemoteError::new(ErrorKind::AlreadyExists, "/"))
            };
        }
        self.check_depth(path)?;
        let _shape = self.shape.read().unwrap_or_else(|p| p.into_inner());
        if !parents {
            return self.mkdir_one(path, ledger);
        }
        let mut at = RemotePath::root();
        for part in path.parts() {
            at = at.child(part).map_err(|e| e.to_remote(part))?;
            if self.dir.is_dir(at.to_relative()) {
                continue;
            }
            match self.mkdir_one(&at, ledger) {
                Err(e)
                    if e.kind == ErrorKind::AlreadyExists && self.dir.is_dir(at.to_relative()) => {}
                r => r?,
            }
        }
        Ok(())
    }

    /// Makes one directory and counts it.
    fn mkdir_one(&self, path: &RemotePath, ledger: &Ledger) -> Result<(), RemoteError> {
        ledger.with(|books| {
            books.take(Cost::DIR)?;
            self.dir.create_dir(path.to_relative()).map_err(|e| {
                books.give(Cost::DIR);
                io_error(path, e)
            })
        })
    }

    /// Removes a path; returns what was freed, which is uncounted from
    /// `ledger` entry by entry as it goes.
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
        let rel = path.to_relative();
        let md = self
            .dir
            .symlink_metadata(&rel)
            .map_err(|e| io_error(path, e))?;
        match (mode, md.is_dir()) {
            (RemoveMode::File, true) => {
                Err(RemoteError::new(ErrorKind::IsADirectory, path.to_string()))
            }
            (RemoveMode::EmptyDir, false) => {
                Err(RemoteError::new(ErrorKind::NotADirectory, path.to_string()))
            }
            (RemoveMode::Recursive, true) => self.remove_tree(path, ledger),
            (_, is_dir) => ledger.with(|books| {
                // Looked at again under the lock: what is removed is what
                // is uncounted.
                let md = self
                    .dir
                    .symlink_metadata(&rel)
                    .map_err(|e| io_error(path, e))?;
                if md.is_dir() != is_dir {
                    return Err(RemoteError::new(ErrorKind::Io, format!("{path} changed")));
                }
                if is_dir {
                    self.dir.remove_dir(&rel)
                } else {
                    self.dir.remove_file(&rel)
                }
                .map_err(|e| io_error(path, e))?;
                let freed = Cost::of_metadata(&md);
                books.give(freed);
                Ok(freed)
            }),
        }
    }

    /// Removes a directory and everything in it, one level at a time (see
    /// [`crate::walk`]): every entry is looked at with lstat, so a symlink
    /// (to a directory or anywhere) is unlinked, never entered.
    fn remove_tree(&self, path: &RemotePath, ledger: &Ledger) -> Result<Cost, RemoteError> {
        let (parent, name) = self.open_entry_parent(path)?;
        let root = open_dir_nofollow(&parent, &name).map_err(|e| io_error(path, e))?;
        let freed = crate::walk::remove_contents(&root, ledger).map_err(|e| io_error(path, e))?;
        drop(root);
        ledger.with(|books| {
            rustix::fs::unlinkat(&parent, name.as_c_str(), rustix::fs::AtFlags::REMOVEDIR)
                .map_err(|e| io_error(path, e.into()))?;
            books.give(Cost::DIR);
            Ok(freed + Cost::DIR)
        })
    }

    /// The directory holding `path` (within the home) and the last name.
    pub fn open_entry_parent(&self, path: &RemotePath) -> Result<(Dir, CString), RemoteError> {
        let name = path
            .file_name()
            .and_then(|n| CString::new(n).ok())
            .ok_or_else(|| RemoteError::new(ErrorKind::InvalidPath, path.to_string()))?;
        let parent = self
            .dir
            .open_dir(path.parent().to_relative())
            .map_err(|e| io_error(&path.parent(), e))?;
        Ok((parent, name))
    }

    /// Refuses a move of the directory `from` to `to` that would nest
    /// anything deeper than the limit: the target's depth plus the depth
    /// of the tree under `from`, measured (up to what would be too deep).
    fn check_move_depth(&self, from: &RemotePath, to: &RemotePath) -> Result<(), RemoteError> {
        let depth = to.parts().len();
        let (parent, name) = self.open_entry_parent(from)?;
        let root = open_dir_nofollow(&parent, &name).map_err(|e| io_error(from, e))?;
        let room = self.max_depth.saturating_sub(depth);
        if crate::walk::deeper_than(&root, room).map_err(|e| io_error(from, e))? {
            return Err(RemoteError::new(
                ErrorKind::TooDeep,
                format!(
                    "{from} moved to {to} would nest names more than {} levels deep",
                    self.max_depth
                ),
            ));
        }
        Ok(())
    }

    /// Renames within the home. Without `overwrite`, an existing target is
    /// an error. Returns what was replaced, uncounted from `ledger`.
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
        // Every move holds the shape lock: a sideways move could otherwise
        // put a deep tree into one being measured for a deeper move (and
        // whether `from` is a directory can change until the lock is held).
        let _shape = self.shape.write().unwrap_or_else(|p| p.into_inner());
        let from_md = self
            .dir
            .symlink_metadata(from.to_relative())
            .map_err(|e| io_error(from, e))?;
        // A directory moved deeper takes its tree with it; moved up or
        // sideways it nests nothing deeper than it already was.
        if from_md.is_dir() && to.parts().len() > from.parts().len() {
            self.check_move_depth(from, to)?;
        }
        // Looked at and done under the ledger's lock: what is uncounted is
        // what the rename replaced, and nothing when it replaced nothing
        // else (a name renamed onto itself or onto another link to it).
        ledger.with(|books| {
            let from_md = self
                .dir
                .symlink_metadata(from.to_relative())
                .map_err(|e| io_error(from, e))?;
            let replaced = match self.dir.symlink_metadata(to.to_relative()) {
                Ok(_) if !overwrite => {
                    return Err(RemoteError::new(ErrorKind::AlreadyExists, to.to_string()))
                }
                Ok(md) if (md.dev(), md.ino()) == (from_md.dev(), from_md.ino()) => Cost::ZERO,
                Ok(md) => Cost::of_metadata(&md),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Cost::ZERO,
                Err(e) => return Err(io_error(to, e)),
            };
            self.dir
                .rename(from.to_relative(), &self.dir, to.to_relative())
                .map_err(|e| io_error(from, e))?;
            books.give(replaced);
            Ok(replaced)
        })
    }

    /// What the home holds (see [`crate::ledger`]), partial files included,
    /// however deep the tree. The partial area itself is ferryd's and
    /// costs nothing.
    pub fn usage(&self) -> io::Result<Cost> {
        let all = crate::walk::usage(&self.dir)?;
        let area = self
            .dir
            .symlink_metadata(crate::transfer::partials::PARTIALS_DIR);
        Ok(match area {
            Ok(md) if md.is_dir() => Cost {
                bytes: all.bytes.saturating_sub(Cost::DIR.bytes),
                entries: all.entries.saturating_sub(1),
            },
            _ => all,
        })
    }
}
/// Opens the directory `name` in `parent`, never through a symlink.
fn open_dir_nofollow(parent: &Dir, name: &CString) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{openat, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(openat(parent, name.as_c_str(), flags, Mode::empty())?)
}

/// The error for a path nested deeper than the limit.
fn too_deep(path: &RemotePath, depth: usize, max: usize) -> RemoteError {
    RemoteError::new(
        ErrorKind::TooDeep,
        format!("{path} is {depth} levels deep; the server allows {max}"),
    )
}

/// A directory being listed (see [`Home::listing`]).
#[derive(Debug)]
pub struct Listing {
    dir: Dir,
    path: RemotePath,
    rd: cap_std::fs::ReadDir,
}

impl Listing {
    /// Up to `n` more entries, and whether there may be more.
    pub fn next_batch(&mut self, n: usize) -> Result<(Vec<Entry>, bool), RemoteError> {
        let path = &self.path;
        let mut buf = Vec::with_capacity(n.min(1024));
        while buf.len() < n {
            let Some(item) = self.rd.next() else {
                return Ok((buf, false));
            };
            let item = item.map_err(|e| io_error(path, e))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name == crate::transfer::partials::PARTIALS_DIR {
                continue; // reserved: files being received
            }
            let md = match self.dir.symlink_metadata(path.to_relative().join(&name)) {
                Ok(md) => md,
                // Raced with a removal: skip it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(path, e)),
            };
            buf.push(entry(name, &md));
        }
        Ok((buf, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RemotePath {
        RemotePath::parse(s).unwrap()
    }

    fn setup() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        std::fs::create_dir(dir.path().join("other")).unwrap();
        std::fs::write(dir.path().join("other/secret"), "top secret").unwrap();
        let home = Home::open(&dir.path().join("home")).unwrap();
        (dir, home)
    }

    #[test]
    fn symlinks_do_not_lead_out() {
        let (dir, home) = setup();
        let l = Ledger::new(Cost::ZERO, Default::default());
        let h = dir.path().join("home");
        std::os::unix::fs::symlink("/etc", h.join("etc")).unwrap();
        std::os::unix::fs::symlink("../other", h.join("other")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("other"), h.join("abs")).unwrap();
        for link in ["etc", "other", "abs"] {
            // The link itself is visible...
            assert_eq!(home.stat(&p(link)).unwrap().kind, EntryKind::Symlink);
            // ...but nothing behind it.
            let err = home.list(&p(link), 10, |_, _| true).unwrap_err();
            assert_eq!(err.kind, ErrorKind::OutsideHome, "{link}: {err}");
            let sub = p(&format!("{link}/secret"));
            assert!(home.stat(&sub).is_err());
            assert!(home.remove(&sub, RemoveMode::File, &l).is_err());
            assert!(home.rename(&sub, &p("stolen"), false, &l).is_err());
            assert!(home
                .rename(&p("x"), &p(&format!("{link}/x")), false, &l)
                .is_err());
        }
        // Recursive removal of a link removes the link, never the target.
        home.remove(&p("other"), RemoveMode::Recursive, &l).unwrap();
        std::fs::create_dir(h.join("d")).unwrap();
        std::os::unix::fs::symlink("../../other", h.join("d/l")).unwrap();
        home.remove(&p("d"), RemoveMode::Recursive, &l).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("other/secret")).unwrap(),
            "top secret"
        );
    }

    #[test]
    fn basic_operations() {
        let (dir, home) = setup();
        let l = Ledger::new(Cost::ZERO, Default::default());
        home.mkdir(&p("a/b/c"), true, &l).unwrap();
        home.mkdir(&p("a/b"), true, &l).unwrap();
        let three = Cost {
            bytes: 3 * crate::ledger::DIR_BYTES,
            entries: 3,
        };
        assert_eq!(l.usage().0, three, "each directory made counts once");
        assert_eq!(
            home.mkdir(&p("a"), false, &l).unwrap_err().kind,
            ErrorKind::AlreadyExists
        );
        std::fs::write(dir.path().join("home/a/b/f"), vec![0u8; 1000]).unwrap();
        assert_eq!(home.usage().unwrap(), three + Cost::file(1000));
        assert_eq!(
            home.remove(&p("a"), RemoveMode::EmptyDir, &l)
                .unwrap_err()
                .kind,
            ErrorKind::NotEmpty
        );
        assert_eq!(
            home.remove(&p("a"), RemoveMode::File, &l).unwrap_err().kind,
            ErrorKind::IsADirectory
        );
        home.rename(&p("a/b/f"), &p("g"), false, &l).unwrap();
        assert_eq!(home.stat(&p("g")).unwrap().size, 1000);
        assert_eq!(
            home.rename(&p("a"), &p("a/b/x"), false, &l)
                .unwrap_err()
                .kind,
            ErrorKind::BadRequest
        );
        let mut seen = Vec::new();
        home.list(&p("/"), 1, |batch, _| {
            seen.extend(batch);
            true
        })
        .unwrap();
        seen.sort_by(|a, b| a.name.cmp(&b.name));
        let names: Vec<_> = seen.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "g"]);
        l.with(|b| b.add(Cost::file(1000)));
        assert_eq!(
            home.rename(&p("g"), &p("g"), true, &l).unwrap(),
            Cost::ZERO,
            "a file renamed onto itself replaces nothing"
        );
        assert_eq!(
            home.remove(&p("a"), RemoveMode::Recursive, &l).unwrap(),
            three
        );
        assert_eq!(
            home.remove(&p("g"), RemoveMode::File, &l).unwrap(),
            Cost::file(1000)
        );
        assert_eq!(home.usage().unwrap(), Cost::ZERO);
        assert_eq!(l.usage().0, Cost::ZERO);
        assert_eq!(
            home.remove(&p("/"), RemoveMode::Recursive, &l)
                .unwrap_err()
                .kind,
            ErrorKind::PermissionDenied
        );
    }

    /// A deeper move measures its tree under the shape lock; a sideways
    /// move that put a deep tree inside it mid-measure once went through.
    #[test]
    fn racing_moves_do_not_nest_past_the_limit() {
        let (dir, home) = setup();
        let home = home.with_max_depth(16);
        let l = Ledger::new(Cost::ZERO, Default::default());
        let h = dir.path().join("home");
        // /c is wide (slow to measure); /z/big is a 7-level chain; /deep
        // is 8 levels. Either move alone fits; both nest 17 levels.
        for i in 0..300 {
            std::fs::create_dir_all(h.join(format!("c/{i}"))).unwrap();
        }
        std::fs::create_dir_all(h.join("z/big/1/2/3/4/5/6/7")).unwrap();
        std::fs::create_dir_all(h.join("deep/1/2/3/4/5/6/7")).unwrap();
        let (c, deep_c) = (p("c"), p("deep/1/2/3/4/5/6/7/c"));
        let (big, c_big) = (p("z/big"), p("c/big"));
        for round in 0..200u64 {
            let start = std::sync::Barrier::new(2);
            std::thread::scope(|s| {
                s.spawn(|| {
                    start.wait();
                    let _ = home.rename(&c, &deep_c, false, &l);
                });
                start.wait();
                let pause = std::time::Duration::from_micros(round * 7 % 1500);
                std::thread::sleep(pause);
                let _ = home.rename(&big, &c_big, false, &l);
            });
            assert!(
                !crate::walk::deeper_than(&home.dir, 16).unwrap(),
                "round {round}: nested past the limit"
            );
            // Put things back for the next round.
            let _ = home.rename(&deep_c, &c, false, &l);
            let _ = home.rename(&c_big, &big, false, &l);
        }
    }
}
