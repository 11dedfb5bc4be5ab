//! Permission changes (`Chmod`): which modes are accepted, and the change
//! on disk, made on the entry itself and never through a symbolic link.

use std::io;

use ferry_proto::msg::MODE_BITS;
use ferry_proto::{ErrorKind, RemoteError, RemotePath};

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

/// Sets the permission bits of `path` in a home on disk. The entry is
/// opened without following a final symlink (`O_PATH | O_NOFOLLOW`) and
/// changed through that descriptor, so a link swapped in meanwhile is
/// never followed (out of the home or anywhere).
pub fn on_disk(home: &Home, path: &RemotePath, mode: u32) -> Result<(), RemoteError> {
    use rustix::fs::{openat, Mode, OFlags};
    if path.is_root() {
        return Err(RemoteError::new(
            ErrorKind::PermissionDenied,
            "cannot change your home directory's mode",
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
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    let is_dir = match kind {
        rustix::fs::FileType::Directory => true,
        rustix::fs::FileType::RegularFile => false,
        _ => {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                format!("{path}: only files and directories have a mode to change"),
            ))
        }
    };
    check_mode(path, mode, is_dir)?;
    // An O_PATH descriptor cannot be fchmod-ed; its /proc link names the
    // entry itself (this is how glibc changes a mode without following).
    let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    rustix::fs::chmod(proc.as_str(), Mode::from_raw_mode(mode))
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
        on_disk(&home, &p("f"), 0o640).unwrap();
        on_disk(&home, &p("d"), 0o711).unwrap();
        assert_eq!(mode(&h.join("f")), 0o640);
        assert_eq!(mode(&h.join("d")), 0o711);
        let before = mode(&dir.path().join("outside"));
        let e = on_disk(&home, &p("l"), 0o600).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert_eq!(mode(&dir.path().join("outside")), before);
        assert_eq!(
            on_disk(&home, &p("f"), 0o4755).unwrap_err().kind,
            ErrorKind::BadRequest
        );
        assert_eq!(mode(&h.join("f")), 0o640);
        assert_eq!(
            on_disk(&home, &p("nope"), 0o644).unwrap_err().kind,
            ErrorKind::NotFound
        );
    }
}
