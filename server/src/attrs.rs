//! Changes to an entry's attributes: its permission bits (`Chmod`: which
//! modes are accepted) and its modification time (`SetMtime`), made on
//! the entry itself and never through a symbolic link.

use std::io;

use ferry_proto::msg::MODE_BITS;
use ferry_proto::{ErrorKind, RemoteError, RemotePath};
use rustix::fd::OwnedFd;

use crate::jail::{io_error, Home};
/// Refuses a mode ferryd does not set: set-id and sticky bits (or
/// anything beyond [`MODE_BITS`]), and a mode that would lock the server
/// out of the entry, which it must still read (a file) or list, count and
/// empty (a directory: the owner's read, write and search).
pub fn check_mode(path: &RemotePath, mode: u32, is_dir: bool) -> Result<(), RemoteError> {
    if mode & !MODE_BITS != 0 {
        return Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{path}: mode {mode:o}: only permission bits (0777) may be set, never set-id or sticky bits"),
        ));
    }
    let needed = if is_dir { 0o700 } else { 0o400 };
    if mode & needed != needed {
        let what = if is_dir {
            "a directory keeps its owner's rwx"
        } else {
            "a file keeps its owner's read permission"
        };
        return Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{path}: mode {mode:03o}: {what}, so the server can still serve it"),
        ));
    }
    Ok(())
}

/// Checks a modification time can be set: one a file system can hold
/// (from year 0 to 9999), as uploads' times are.
pub fn check_mtime(path: &RemotePath, mtime: i64) -> Result<(), RemoteError> {
    /// 9999-12-31T23:59:59Z and 0000-01-01T00:00:00Z.
    const LATEST: i64 = 253_402_300_799;
    const EARLIEST: i64 = -62_167_219_200;
    if (EARLIEST..=LATEST).contains(&mtime) {
        Ok(())
    } else {
        Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{path}: time {mtime} is out of range (years 0 to 9999)"),
        ))
    }
}

/// A file or directory of a home on disk, opened without following a
/// final symlink (`O_PATH | O_NOFOLLOW`), so a link swapped in meanwhile
/// is never followed (out of the home or anywhere); `what` names the
/// change for a refusal. Returns the descriptor and whether it is a
/// directory.
fn open_entry(home: &Home, path: &RemotePath, what: &str) -> Result<(OwnedFd, bool), RemoteError> {
    use rustix::fs::{openat, FileType, Mode, OFlags};
    if path.is_root() {
        return Err(RemoteError::new(
            ErrorKind::PermissionDenied,
            format!("cannot change your home directory's {what}"),
        ));
    }
    let name = path
        .file_name()
        .ok_or_else(|| RemoteError::new(ErrorKind::InvalidPath, path.to_string()))?;
    let parent = home
        .dir()
        .open_dir(path.parent().to_relative())
        .map_err(|e| io_error(&path.parent(), e))?;
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = openat(&parent, name, flags, Mode::empty()).map_err(|e| io_error(path, e.into()))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| io_error(path, e.into()))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => Ok((fd, true)),
        FileType::RegularFile => Ok((fd, false)),
        _ => Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{path}: only files and directories have a {what} to change"),
        )),
    }
}

/// The `/proc` link of an `O_PATH` descriptor, which names the entry
/// itself: such a descriptor cannot be `fchmod`-ed or `futimens`-ed, and
/// this is how glibc changes an entry without following it.
fn proc_link(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd))
}

/// Sets the permission bits of `path` in a home on disk.
pub fn chmod_on_disk(home: &Home, path: &RemotePath, mode: u32) -> Result<(), RemoteError> {
    let (fd, is_dir) = open_entry(home, path, "mode")?;
    check_mode(path, mode, is_dir)?;
    rustix::fs::chmod(
        proc_link(&fd).as_str(),
        rustix::fs::Mode::from_raw_mode(mode),
    )
    .map_err(|e| io_error(path, io::Error::from(e)))
}

/// Sets the modification time of `path` in a home on disk (its access
/// time is left alone).
pub fn set_mtime_on_disk(home: &Home, path: &RemotePath, mtime: i64) -> Result<(), RemoteError> {
    use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD, UTIME_OMIT};
    check_mtime(path, mtime)?;
    let (fd, _) = open_entry(home, path, "time")?;
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
    };
    utimensat(CWD, proc_link(&fd).as_str(), &times, AtFlags::empty())
        .map_err(|e| io_error(path, io::Error::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RemotePath {
        RemotePath::parse(s).unwrap()
    }

    #[test]
    fn modes_beyond_permissions_or_locking_out_are_refused() {
        for mode in [0o4755, 0o2755, 0o1777, 0o10644] {
            let e = check_mode(&p("f"), mode, false).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadRequest, "{mode:o}");
        }
        assert!(check_mode(&p("f"), 0o400, false).is_ok());
        assert!(check_mode(&p("f"), 0o200, false).is_err());
        assert!(check_mode(&p("d"), 0o700, true).is_ok());
        assert!(check_mode(&p("d"), 0o500, true).is_err());
    }

    #[test]
    fn files_and_directories_change_and_links_are_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("home");
        std::fs::create_dir_all(h.join("d")).unwrap();
        std::fs::write(h.join("f"), "x").unwrap();
        std::fs::write(dir.path().join("outside"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), h.join("l")).unwrap();
        let home = Home::open(&h).unwrap();
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        chmod_on_disk(&home, &p("f"), 0o640).unwrap();
        chmod_on_disk(&home, &p("d"), 0o711).unwrap();
        assert_eq!(mode(&h.join("f")), 0o640);
        assert_eq!(mode(&h.join("d")), 0o711);
        let before = mode(&dir.path().join("outside"));
        let e = chmod_on_disk(&home, &p("l"), 0o600).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert_eq!(mode(&dir.path().join("outside")), before);
        assert_eq!(
            chmod_on_disk(&home, &p("f"), 0o4755).unwrap_err().kind,
            ErrorKind::BadRequest
        );
        assert_eq!(mode(&h.join("f")), 0o640);
        assert_eq!(
            chmod_on_disk(&home, &p("nope"), 0o644).unwrap_err().kind,
            ErrorKind::NotFound
        );
    }
}
