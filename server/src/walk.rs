//! Iterative walks of a directory tree: no recursion, at most
//! [`OPEN_DIRS`] directories open, memory that grows only with the path,
//! symlinks never followed.
//!
//! The walk keeps a stack of levels (name, device and inode, entries read)
//! from the root to where it is. Only the deepest [`OPEN_DIRS`] levels hold
//! an open directory stream; when the walk climbs back to a level whose
//! stream it closed, it opens `..` of the level below and goes on only if
//! that is the very directory it left (same device and inode), so a tree
//! moved meanwhile ends the walk with an error instead of leading it
//! anywhere else. Every name opened is one entry just read from its parent,
//! opened with `O_NOFOLLOW`: a walk never leaves the directory it started
//! in. This is how a tree 100,000 levels deep, made outside ferryd, is
//! measured and removed with a few dozen file descriptors.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{fstat, openat, statat, AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::ledger::{Cost, Ledger};

/// Directory streams one walk keeps open at once.
pub const OPEN_DIRS: usize = 32;

/// What the walk does after an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next entry (a directory is not entered).
    Next,
    /// Enter this directory (for other entries the same as `Next`).
    Enter,
    /// End the walk now.
    Stop,
}

/// How the walk reads a directory again after climbing back into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reread {
    /// Skip the entries it already saw (they are still there).
    Skip,
    /// Read from the start (the visitor removed what it saw).
    FromStart,
}

/// What a walk calls for each entry.
pub trait Visit {
    /// An entry named `name` in the directory `at`, `depth` levels below the
    /// root (1 for the root's own entries). `kind` is never followed
    /// through a symlink.
    fn entry(
        &mut self,
        at: BorrowedFd<'_>,
        name: &CStr,
        kind: FileType,
        depth: usize,
    ) -> io::Result<Flow>;

    /// Every entry of the directory `name` in `at`, entered earlier, has
    /// been seen.
    fn leave(&mut self, _at: BorrowedFd<'_>, _name: &CStr, _depth: usize) -> io::Result<()> {
        Ok(())
    }
}

/// One directory between the root and where the walk is.
struct Level {
    /// Its name in the level above (empty for the root).
    name: CString,
    /// Device and inode, to recognise it when climbing back.
    id: (u64, u64),
    /// Entries read from it so far.
    seen: u64,
    /// Its stream, while it is among the deepest [`OPEN_DIRS`] levels.
    stream: Option<Dir>,
}

fn id(st: &Stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

/// Opens one directory entry, never through a symlink.
fn open_dir(at: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn stream_fd(level: &Level) -> io::Result<BorrowedFd<'_>> {
    match &level.stream {
        Some(s) => Ok(s.fd()?),
        None => Err(io::Error::other("walk: a level's directory is not open")),
    }
}

/// Walks the tree under the directory `root` depth first, calling `visit`
/// for every entry, and `leave` after the entries of a directory entered.
pub fn walk(root: impl AsFd, reread: Reread, visit: &mut impl Visit) -> io::Result<()> {
    let fd = open_dir(root.as_fd(), c".")?;
    let mut levels = vec![Level {
        name: CString::default(),
        id: id(&fstat(&fd)?),
        seen: 0,
        stream: Some(Dir::new(fd)?),
    }];
    loop {
        let depth = levels.len();
        let Some(top) = levels.last_mut() else {
            return Ok(());
        };
        let Some(stream) = top.stream.as_mut() else {
            return Err(io::Error::other("walk: the current directory is not open"));
        };
        match stream.read() {
            Some(Ok(entry)) => {
                top.seen += 1;
                let name = entry.file_name();
                if name == c"." || name == c".." {
                    continue;
                }
                let at = stream.fd()?;
                let kind = match entry.file_type() {
                    FileType::Unknown => match statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) => FileType::from_raw_mode(st.st_mode),
                        Err(e) if e == Errno::NOENT => continue,
                        Err(e) => return Err(e.into()),
                    },
                    kind => kind,
                };
                match visit.entry(at, name, kind, depth)? {
                    Flow::Stop => return Ok(()),
                    Flow::Enter if kind == FileType::Directory => {
                        let fd = match open_dir(at, name) {
                            Ok(fd) => fd,
                            // Removed since it was read.
                            Err(e) if e == Errno::NOENT => continue,
                            Err(e) => return Err(e.into()),
                        };
                        let level = Level {
                            name: name.to_owned(),
                            id: id(&fstat(&fd)?),
                            seen: 0,
                            stream: Some(Dir::new(fd)?),
                        };
                        levels.push(level);
                        if let Some(far) = levels.len().checked_sub(OPEN_DIRS + 1) {
                            levels[far].stream = None;
                        }
                    }
                    Flow::Enter | Flow::Next => {}
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => {
                let Some(done) = levels.pop() else {
                    return Ok(());
                };
                let depth = levels.len();
                let Some(parent) = levels.last_mut() else {
                    return Ok(());
                };
                if parent.stream.is_none() {
                    reopen(parent, &done, reread)?;
                }
                drop(done.stream);
                visit.leave(stream_fd(parent)?, &done.name, depth)?;
            }
        }
    }
}

/// Opens `parent` again through `..` of `child`, checked to be the same
/// directory, and reads past what was seen of it (for [`Reread::Skip`]).
fn reopen(parent: &mut Level, child: &Level, reread: Reread) -> io::Result<()> {
    let fd = open_dir(stream_fd(child)?, c"..")?;
    if id(&fstat(&fd)?) != parent.id {
        return Err(io::Error::other(
            "the tree was moved while it was being walked; try again",
        ));
    }
    let mut stream = Dir::new(fd)?;
    match reread {
        Reread::Skip => {
            for _ in 0..parent.seen {
                match stream.read() {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => break,
                }
            }
        }
        Reread::FromStart => parent.seen = 0,
    }
    parent.stream = Some(stream);
    Ok(())
}

/// What the tree under `root` holds (see [`crate::ledger`]): every entry,
/// the bytes of regular files and a block per directory.
pub fn usage(root: impl AsFd) -> io::Result<Cost> {
    struct Sum(Cost);
    impl Visit for Sum {
        fn entry(
            &mut self,
            at: BorrowedFd<'_>,
            name: &CStr,
            kind: FileType,
            _: usize,
        ) -> io::Result<Flow> {
            match kind {
                FileType::Directory => {
                    self.0 += Cost::DIR;
                    return Ok(Flow::Enter);
                }
                FileType::RegularFile => match statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => self.0 += cost(&st),
                    Err(e) if e == Errno::NOENT => {}
                    Err(e) => return Err(e.into()),
                },
                _ => self.0 += Cost::ENTRY,
            }
            Ok(Flow::Next)
        }
    }
    let mut sum = Sum(Cost::ZERO);
    walk(root, Reread::Skip, &mut sum)?;
    Ok(sum.0)
}

/// [`usage`], unless the tree holds more than `max` entries: then None,
/// found without walking the rest.
pub fn usage_up_to(root: impl AsFd, max: u64) -> io::Result<Option<Cost>> {
    struct Sum {
        cost: Cost,
        max: u64,
        over: bool,
    }
    impl Visit for Sum {
        fn entry(
            &mut self,
            at: BorrowedFd<'_>,
            name: &CStr,
            kind: FileType,
            _: usize,
        ) -> io::Result<Flow> {
            if self.cost.entries >= self.max {
                self.over = true;
                return Ok(Flow::Stop);
            }
            match kind {
                FileType::Directory => {
                    self.cost += Cost::DIR;
                    return Ok(Flow::Enter);
                }
                FileType::RegularFile => match statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => self.cost += cost(&st),
                    Err(e) if e == Errno::NOENT => {}
                    Err(e) => return Err(e.into()),
                },
                _ => self.cost += Cost::ENTRY,
            }
            Ok(Flow::Next)
        }
    }
    let mut sum = Sum {
        cost: Cost::ZERO,
        max,
        over: false,
    };
    walk(root, Reread::Skip, &mut sum)?;
    Ok((!sum.over).then_some(sum.cost))
}

/// What an entry costs, from its lstat.
pub fn cost(st: &Stat) -> Cost {
    let kind = FileType::from_raw_mode(st.st_mode);
    Cost::of(
        kind == FileType::Directory,
        kind == FileType::RegularFile,
        u64::try_from(st.st_size).unwrap_or(0),
    )
}

/// Removes everything under `root` (not `root` itself); returns what was
/// removed. Symlinks are unlinked, never entered. Each entry is looked at
/// and removed under the ledger's lock, and uncounted there.
pub fn remove_contents(root: impl AsFd, ledger: &Ledger) -> io::Result<Cost> {
    struct Remove<'a> {
        freed: Cost,
        ledger: &'a Ledger,
    }
    impl Visit for Remove<'_> {
        fn entry(
            &mut self,
            at: BorrowedFd<'_>,
            name: &CStr,
            kind: FileType,
            _: usize,
        ) -> io::Result<Flow> {
            if kind == FileType::Directory {
                return Ok(Flow::Enter);
            }
            self.freed += self.ledger.with(|books| {
                let st = match statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(e) if e == Errno::NOENT => return Ok(Cost::ZERO),
                    Err(e) => return Err(e),
                };
                let flags = if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    AtFlags::REMOVEDIR // swapped in since it was read
                } else {
                    AtFlags::empty()
                };
                match rustix::fs::unlinkat(at, name, flags) {
                    Ok(()) => {
                        books.give(cost(&st));
                        Ok(cost(&st))
                    }
                    Err(e) if e == Errno::NOENT => Ok(Cost::ZERO),
                    Err(e) => Err(e),
                }
            })?;
            Ok(Flow::Next)
        }

        fn leave(&mut self, at: BorrowedFd<'_>, name: &CStr, _: usize) -> io::Result<()> {
            self.freed += self.ledger.with(|books| {
                match rustix::fs::unlinkat(at, name, AtFlags::REMOVEDIR) {
                    Ok(()) => {
                        books.give(Cost::DIR);
                        Ok(Cost::DIR)
                    }
                    Err(e) if e == Errno::NOENT => Ok(Cost::ZERO),
                    Err(e) => Err(e),
                }
            })?;
            Ok(())
        }
    }
    let mut removed = Remove {
        freed: Cost::ZERO,
        ledger,
    };
    walk(root, Reread::FromStart, &mut removed)?;
    Ok(removed.freed)
}

/// Whether anything under `root` lies more than `depth` levels below it.
/// Stops at the first such entry.
pub fn deeper_than(root: impl AsFd, depth: usize) -> io::Result<bool> {
    struct Deep {
        limit: usize,
        found: bool,
    }
    impl Visit for Deep {
        fn entry(
            &mut self,
            _: BorrowedFd<'_>,
            _: &CStr,
            kind: FileType,
            depth: usize,
        ) -> io::Result<Flow> {
            if depth > self.limit {
                self.found = true;
                return Ok(Flow::Stop);
            }
            Ok(if kind == FileType::Directory {
                Flow::Enter
            } else {
                Flow::Next
            })
        }
    }
    let mut deep = Deep {
        limit: depth,
        found: false,
    };
    walk(root, Reread::Skip, &mut deep)?;
    Ok(deep.found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::DIR_BYTES;
    use rustix::fs::{mkdirat, CWD};

    #[test]
    fn usage_up_to_stops_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("f{i}")), "12345").unwrap();
        }
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        let all = usage_up_to(&root, 6).unwrap().unwrap();
        assert_eq!(
            all,
            Cost {
                bytes: 25 + DIR_BYTES,
                entries: 6
            }
        );
        assert_eq!(usage_up_to(&root, 5).unwrap(), None);
    }

    /// A chain of `levels` directories `d` under `top`, made one name at a
    /// time, with a 10-byte file beside every directory.
    fn chain(top: &std::path::Path, levels: usize) {
        let mut fd = open_dir(
            CWD,
            &CString::new(top.as_os_str().as_encoded_bytes()).unwrap(),
        )
        .unwrap();
        for _ in 0..levels {
            let f = openat(&fd, c"f", OFlags::WRONLY | OFlags::CREATE, Mode::RUSR).unwrap();
            rustix::io::write(&f, b"0123456789").unwrap();
            mkdirat(&fd, c"d", Mode::RWXU).unwrap();
            fd = open_dir(fd.as_fd(), c"d").unwrap();
        }
    }

    /// Files this process has open under `dir` (other tests run alongside).
    fn open_under(dir: &std::path::Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    #[test]
    fn a_deep_chain_is_measured_and_removed_with_few_files_open() {
        let dir = tempfile::tempdir().unwrap();
        chain(dir.path(), 3000);
        std::fs::write(dir.path().join("top"), b"abc").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("d/etc")).unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        struct MaxFds<'a>(&'a std::path::Path, usize);
        impl Visit for MaxFds<'_> {
            fn entry(
                &mut self,
                _: BorrowedFd<'_>,
                _: &CStr,
                kind: FileType,
                depth: usize,
            ) -> io::Result<Flow> {
                // Reading a deep directory's link costs its depth: sample.
                if depth % 100 == 0 {
                    self.1 = self.1.max(open_under(self.0));
                }
                Ok(if kind == FileType::Directory {
                    Flow::Enter
                } else {
                    Flow::Next
                })
            }
        }
        let mut m = MaxFds(dir.path(), 0);
        walk(&root, Reread::Skip, &mut m).unwrap();
        // The streams, plus `root` itself.
        assert!(m.1 <= OPEN_DIRS + 1, "{} open", m.1);
        // 3,000 directories and 3,000 files of 10 bytes, "top" and a link.
        let all = Cost {
            bytes: 30_003 + 3000 * DIR_BYTES,
            entries: 6002,
        };
        assert_eq!(usage(&root).unwrap(), all);
        assert!(deeper_than(&root, 2999).unwrap());
        assert!(!deeper_than(&root, 3000).unwrap());
        let ledger = Ledger::new(all, Default::default());
        assert_eq!(remove_contents(&root, &ledger).unwrap(), all);
        assert_eq!(ledger.usage().0, Cost::ZERO);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(std::path::Path::new("/etc").exists());
    }

    #[test]
    fn a_wide_tree_is_seen_once_when_climbing_back_into_closed_levels() {
        // Directories with several deep children: climbing back reopens
        // them and must skip exactly what was seen.
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            let sub = dir.path().join(format!("s{i}"));
            std::fs::create_dir(&sub).unwrap();
            chain(&sub, OPEN_DIRS * 2);
        }
        let root = std::fs::File::open(dir.path()).unwrap();
        let n = 5 * OPEN_DIRS as u64 * 2;
        let all = Cost {
            bytes: 10 * n + (n + 5) * DIR_BYTES,
            entries: 2 * n + 5,
        };
        assert_eq!(usage(&root).unwrap(), all);
        let ledger = Ledger::new(all, Default::default());
        assert_eq!(remove_contents(&root, &ledger).unwrap(), all);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
