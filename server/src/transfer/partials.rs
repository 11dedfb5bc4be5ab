//! Where uploads in progress live: the hidden directory
//! [`PARTIALS_DIR`] at the top of each home (mode 0700), one file per
//! remote path named by a fixed-length key. The name is reserved: no path a
//! client sends can name it and listings never show it, so no user
//! operation can name, list, replace or reach a partial; it is on the
//! home's own file system (a home may be a mount of its own), so a commit
//! is one rename; and a name of any valid length has a partial.

use std::io;

use cap_std::fs::Dir;
pub use ferry_proto::msg::PARTIALS_DIR;
use ferry_proto::RemotePath;
use rustix::fs::{mkdirat, openat, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

/// The name of the partial of an upload to `path`: the hex SHA-256 of the
/// normalised path, so a retry of the same upload finds it and its length
/// never depends on the name's.
pub fn key(path: &RemotePath) -> String {
    super::hex(&Sha256::digest(path.to_string().as_bytes()))
}

/// A partial name for an upload to `path` that no other upload shares:
/// its key and a random suffix. For eager uploads through one of several
/// nodes, which never resume and so need not be found again.
pub fn own_key(path: &RemotePath) -> io::Result<String> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(format!("{}-{}", key(path), super::hex(&b)))
}

/// Opens the partial area of the home `home`, creating it (mode 0700) if
/// it is not there. Never through a symlink: a link made in its place
/// outside ferryd is refused.
pub fn open_area(home: &Dir) -> io::Result<Dir> {
    match mkdirat(home, PARTIALS_DIR, Mode::RWXU) {
        Ok(()) => {}
        Err(e) if e == Errno::EXIST => {}
        Err(e) => return Err(e.into()),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = openat(home, PARTIALS_DIR, flags, Mode::empty())?;
    Ok(Dir::from_std_file(std::fs::File::from(fd)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fixed_length_and_per_path() {
        let long = "x".repeat(255);
        let a = key(&RemotePath::parse(&long).unwrap());
        let b = key(&RemotePath::parse(&format!("/{long}")).unwrap());
        assert_eq!(a, b, "the normalised path is the key");
        assert_eq!(a.len(), 64);
        assert_ne!(a, key(&RemotePath::parse("x").unwrap()));
    }

    #[test]
    fn the_area_is_private_and_never_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let home = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        open_area(&home).unwrap().write("k", b"12345").unwrap();
        let area = tmp.path().join(PARTIALS_DIR);
        assert_eq!(std::fs::read(area.join("k")).unwrap(), b"12345");
        let mode = std::fs::metadata(&area).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::remove_dir_all(&area).unwrap();
        std::fs::create_dir(tmp.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("elsewhere", &area).unwrap();
        assert!(open_area(&home).is_err());
    }
}
