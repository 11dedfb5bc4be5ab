//! Local file helpers: partial names, prefix hashes, atomic commit.

use std::fs::File;
use std::path::{Path, PathBuf};

use ferry_proto::msg::partial_name;
use sha2::{Digest, Sha256};

use crate::client::ClientError;

/// The hidden partial file beside `target`.
pub fn partial_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(partial_name(&name))
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
        assert_eq!(
            partial_path(Path::new("/a/b.txt")),
            PathBuf::from("/a/.b.txt.ferry-part")
        );
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
