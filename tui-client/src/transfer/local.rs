//! Local file helpers: partial paths, prefix hashes, atomic commit.

use std::fs::File;
use std::path::{Path, PathBuf};

pub use ferry_proto::msg::PARTIALS_DIR;
use sha2::{Digest, Sha256};

use crate::client::ClientError;

/// The partial of a download to `target`: in the hidden directory
/// [`PARTIALS_DIR`] beside it, named by the hex SHA-256 of the
/// target's name, so every name up to the file system's limit has one and
/// no remote name can collide with it.
pub fn partial_path(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default();
    let key: String = Sha256::digest(name.as_encoded_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    target.with_file_name(PARTIALS_DIR).join(key)
}

/// Whether `target` is, or lies directly in, a partials directory: such a
/// name is reserved and never received.
pub fn is_reserved(target: &Path) -> bool {
    let reserved = |p: Option<&std::ffi::OsStr>| p.is_some_and(|n| n == PARTIALS_DIR);
    reserved(target.file_name()) || reserved(target.parent().and_then(Path::file_name))
}

/// Opens a partial file with `opts`, creating its directory (mode 0700) if
/// need be; a directory another download removed meanwhile is made again.
pub fn open_partial_file(part: &Path, opts: &std::fs::OpenOptions) -> std::io::Result<File> {
    let mut tries = 0;
    loop {
        match opts.open(part) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 3 => {
                tries += 1;
                if let Some(dir) = part.parent() {
                    use std::os::unix::fs::DirBuilderExt;
                    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                        _ => {}
                    }
                }
            }
            r => return r,
        }
    }
}

/// Removes the partials directory holding `part` if it is empty (the last
/// download into that directory is done).
pub fn tidy_partials(part: &Path) {
    if let Some(dir) = part.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// A local I/O error naming the path.
pub fn local_err(path: &Path, source: std::io::Error) -> ClientError {
    ClientError::Local {
        path: path.display().to_string(),
        source,
    }
}

pub use ferry_proto::chunks::hash_prefix;

/// SHA-256 of a whole local file.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut h = Sha256::new();
    hash_prefix(&mut f, len, &mut h)?;
    Ok((len, h.finalize().into()))
}

/// A name beside `path` that does not exist yet: `name (1).ext`, `name (2).ext`...
pub fn free_local_name(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (1..)
        .map(|i| path.with_file_name(format!("{stem} ({i}){ext}")))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| path.to_path_buf())
}

/// Renamed-name candidates for a remote name: `name (1).ext`, ...
pub fn renamed(name: &str, i: u32) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({i}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({i})"),
    }
}

/// Syncs the directory holding `path` so a rename survives a crash.
pub fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        let dir = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = partial_path(Path::new("/a/b.txt"));
        assert_eq!(p.parent(), Some(Path::new("/a/.ferry-partials")));
        assert_eq!(p.file_name().unwrap().len(), 64);
        let long = "x".repeat(255);
        assert_eq!(
            partial_path(Path::new(&long)).file_name().unwrap().len(),
            64
        );
        assert!(is_reserved(Path::new("/a/.ferry-partials")));
        assert!(is_reserved(Path::new("/a/.ferry-partials/x")));
        assert!(!is_reserved(Path::new("/a/b.txt")));
        assert_eq!(renamed("photo.jpg", 2), "photo (2).jpg");
        assert_eq!(renamed("README", 1), "README (1)");
        assert_eq!(renamed(".bashrc", 1), ".bashrc (1)");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.txt");
        std::fs::write(&p, "1").unwrap();
        std::fs::write(dir.path().join("x (1).txt"), "1").unwrap();
        assert_eq!(free_local_name(&p), dir.path().join("x (2).txt"));
    }
}
