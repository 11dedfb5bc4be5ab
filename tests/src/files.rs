//! A user's files as a test sees them: written and read on either store
//! (the home on disk, or through the real client on object storage).

use std::path::Path;
use std::process::Output;

use crate::{stderr, write_random, Server};

/// A user's files, seen by a test (see [`Server::files`]).
pub struct Files<'a> {
    pub(crate) server: &'a Server,
    pub(crate) user: String,
    pub(crate) password: String,
}

impl Files<'_> {
    pub(crate) fn remote(path: &Path) -> String {
        format!("/{}", path.to_string_lossy().trim_start_matches('/'))
    }

    pub(crate) fn ferry(&self, args: &[&str]) -> Output {
        self.server.ferry(&self.user, &self.password, args)
    }

    /// Writes a file (its parent directories made as needed).
    pub fn write(&self, path: impl AsRef<Path>, bytes: impl AsRef<[u8]>) {
        let path = path.as_ref();
        if self.server.store.is_none() {
            let at = self.server.home(&self.user).join(path);
            if let Some(parent) = at.parent() {
                std::fs::create_dir_all(parent).expect("parent directories");
            }
            std::fs::write(at, bytes).expect("write into the home");
            return;
        }
        let tmp = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(tmp.path(), bytes).expect("write the temp file");
        let remote = Files::remote(path);
        let parent = remote.rsplit_once('/').map_or("/", |(p, _)| p);
        if !parent.is_empty() {
            let o = self.ferry(&["mkdir", "-p", parent]);
            assert!(o.status.success(), "mkdir -p {parent}: {}", stderr(&o));
        }
        let src = tmp.path().to_string_lossy().to_string();
        let o = self.ferry(&["put", "--on-conflict", "overwrite", &src, &remote]);
        assert!(o.status.success(), "put {remote}: {}", stderr(&o));
    }

    /// Writes `size` random bytes (as [`write_random`] does).
    pub fn write_random(&self, path: impl AsRef<Path>, size: usize, seed: u64) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let local = tmp.path().join("f");
        write_random(&local, size, seed);
        self.write(path, std::fs::read(&local).expect("read back"));
    }

    /// Reads a file; None when it does not exist.
    pub fn try_read(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let path = path.as_ref();
        if self.server.store.is_none() {
            return std::fs::read(self.server.home(&self.user).join(path)).ok();
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let local = tmp.path().join("got");
        let dst = local.to_string_lossy().to_string();
        let o = self.ferry(&["get", &Files::remote(path), &dst]);
        o.status
            .success()
            .then(|| std::fs::read(&local).expect("read the copy"))
    }

    /// Reads a file that must exist.
    pub fn read(&self, path: impl AsRef<Path>) -> Vec<u8> {
        let path = path.as_ref();
        self.try_read(path)
            .unwrap_or_else(|| panic!("{} has no {}", self.user, path.display()))
    }

    /// Reads a text file that must exist.
    pub fn read_string(&self, path: impl AsRef<Path>) -> String {
        String::from_utf8(self.read(path)).expect("UTF-8")
    }

    /// Whether `path` exists (file or directory).
    pub fn exists(&self, path: impl AsRef<Path>) -> bool {
        let path = path.as_ref();
        if self.server.store.is_none() {
            return std::fs::symlink_metadata(self.server.home(&self.user).join(path)).is_ok();
        }
        self.ferry(&["stat", &Files::remote(path)]).status.success()
    }

    /// Makes a directory with its parents.
    pub fn mkdir(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        if self.server.store.is_none() {
            std::fs::create_dir_all(self.server.home(&self.user).join(path)).expect("mkdir");
            return;
        }
        let o = self.ferry(&["mkdir", "-p", &Files::remote(path)]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}
