//! Large directories set up in a user's home on either store: written
//! straight into the home on the disk, uploaded with `ferry put -r` in
//! object storage.

use std::path::Path;

use crate::{stderr, Files};

impl Files<'_> {
    /// Makes the directory `dir` (its parent must exist) holding an empty
    /// file under each of `names`.
    pub fn write_empty_files(
        &self,
        dir: impl AsRef<Path>,
        names: impl IntoIterator<Item = String>,
    ) {
        self.write_files(dir, names.into_iter().map(|n| (n, Vec::new())));
    }

    /// Makes the directory `dir` (its parent must exist) holding each of
    /// `files` (name, content).
    pub fn write_files(
        &self,
        dir: impl AsRef<Path>,
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) {
        let dir = dir.as_ref();
        if self.server.store.is_none() {
            let at = self.server.home(&self.user).join(dir);
            std::fs::create_dir_all(&at).expect("mkdir");
            for (name, bytes) in files {
                std::fs::write(at.join(name), bytes).expect("write a file");
            }
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = dir.file_name().expect("a directory name");
        let local = tmp.path().join(base);
        std::fs::create_dir(&local).expect("mkdir");
        for (name, bytes) in files {
            std::fs::write(local.join(name), bytes).expect("write a file");
        }
        let parent = Files::remote(dir.parent().unwrap_or(Path::new("")));
        let src = local.to_string_lossy().to_string();
        let o = self.ferry(&["put", "-r", "--parallel", "16", &src, &parent]);
        assert!(
            o.status.success(),
            "put -r {}: {}",
            dir.display(),
            stderr(&o)
        );
    }
}
