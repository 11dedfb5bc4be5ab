//! Group commit for small uploads: the file operations behind
//! `ferry_proto::commit` (which decides when each runs; see there why), on
//! a partial in the user's partial area. One commit thread serves every user, so
//! uploads of several users share a round. Each file flushes only itself
//! (`fdatasync`) and its directory (`fsync`), never the whole file system:
//! a `syncfs` waited for every writer's dirty pages, so one user's large
//! writes slowed every other user's small files. The commit thread finishes
//! each upload itself ([`Committer::commit_then`]: it runs the upload's
//! last step, which sends the reply), so no thread sits waiting for a
//! flush per file.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use cap_std::fs::Dir;
use ferry_proto::commit::{Commit, GroupCommit, Then};

use crate::ledger::Reservation;

pub use ferry_proto::commit::GROUP_COMMIT_MAX;

/// One upload waiting to be committed.
struct Job {
    /// The user's partial area, which holds `part`.
    from: Dir,
    /// The directory `target` is relative to.
    dir: Dir,
    /// The partial, open.
    file: std::fs::File,
    /// Its file system.
    dev: u64,
    /// Its content's flush, and its rename's (the target's directory).
    keys: (u64, u64),
    part: PathBuf,
    target: PathBuf,
    /// The upload's quota, settled by what the rename replaced.
    quota: Option<Reservation>,
}

/// A flush's key: what it syncs, by kind, device and inode.
fn key(kind: u8, dev: u64, ino: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (kind, dev, ino).hash(&mut h);
    h.finish()
}

/// The directory `target` (relative to `dir`) is in.
fn parent_of(target: &std::path::Path) -> &std::path::Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    }
}

/// A file's device and flush keys.
fn keys(
    file: &std::fs::File,
    dir: &Dir,
    target: &std::path::Path,
) -> io::Result<(u64, (u64, u64))> {
    use cap_std::fs::MetadataExt as _;
    let md = file.metadata()?;
    let parent = dir.symlink_metadata(parent_of(target))?;
    let keys = (
        key(0, md.dev(), md.ino()),
        key(1, parent.dev(), parent.ino()),
    );
    Ok((md.dev(), keys))
}

impl Job {
    /// Syncs the directory that gets the target.
    fn sync_parent(&self) -> io::Result<()> {
        let parent = self.dir.open_with(
            parent_of(&self.target),
            cap_std::fs::OpenOptions::new().read(true),
        )?;
        parent.sync_all()
    }
}

impl Commit for Job {
    fn fs(&self) -> u64 {
        self.dev
    }

    fn flush(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            rustix::fs::syncfs(&self.file).map_err(io::Error::from)
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.file.sync_all()
        }
    }

    fn data_key(&self) -> u64 {
        self.keys.0
    }

    fn flush_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn rename_key(&self) -> u64 {
        self.keys.1
    }

    fn flush_rename(&self) -> io::Result<()> {
        self.sync_parent()
    }

    fn rename(&self) -> io::Result<()> {
        let rename = || self.from.rename(&self.part, &self.dir, &self.target);
        match &self.quota {
            Some(quota) => quota.settle(rename, || {
                super::upload::replaced_cost(&self.dir, &self.target)
            }),
            None => rename(),
        }
    }

    fn alone(&self) -> io::Result<()> {
        self.file.sync_all()?;
        self.rename()?;
        self.sync_parent()
    }
}

/// Hands small uploads to the commit thread.
#[derive(Clone, Debug)]
pub struct Committer {
    group: GroupCommit<Job>,
}

impl Committer {
    /// Starts the commit thread.
    pub fn start() -> io::Result<Committer> {
        Ok(Committer {
            group: GroupCommit::start("ferry-commit")?,
        })
    }

    /// Makes `part` (in `from`) durable and renames it to `target` (in
    /// `dir`), then makes the rename durable; returns when all is done.
    /// `file` is the partial, already written in full. (Uploads use
    /// [`Committer::commit_then`]; this waits, for tests.)
    #[cfg(test)]
    pub fn commit(
        &self,
        from: &Dir,
        dir: &Dir,
        file: std::fs::File,
        part: PathBuf,
        target: PathBuf,
    ) -> io::Result<()> {
        let (dev, keys) = keys(&file, dir, &target)?;
        self.group.commit(Job {
            from: from.try_clone()?,
            dir: dir.try_clone()?,
            file,
            dev,
            keys,
            part,
            target,
            quota: None,
        })
    }

    /// [`Committer::commit`] without waiting: `then` gets the outcome, on
    /// the commit thread (or here, if the file has to be committed alone).
    /// The rename is counted in the upload's quota by what it replaced.
    pub fn commit_then(&self, upload: Verified, then: Then) {
        let Verified {
            from,
            part,
            dir,
            target,
            file,
            quota,
        } = upload;
        let (dev, keys) = match keys(&file, &dir, &target) {
            Ok(k) => k,
            Err(e) => return then(Err(e)),
        };
        let job = Job {
            from,
            dir,
            file,
            dev,
            keys,
            part,
            target,
            quota: Some(quota),
        };
        self.group.commit_then(job, then);
    }
}

/// A verified small upload, ready to be committed.
#[derive(Debug)]
pub struct Verified {
    /// The user's partial area, which holds `part`.
    pub from: Dir,
    /// The partial's name there.
    pub part: PathBuf,
    /// The target's directory.
    pub dir: Dir,
    /// The target's name there.
    pub target: PathBuf,
    /// The partial, open and written in full.
    pub file: std::fs::File,
    /// The upload's quota, settled by what the rename replaces.
    pub quota: Reservation,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn commits_many_files_from_many_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        dir.create_dir("sub").unwrap();
        dir.create_dir("partials").unwrap();
        let from = dir.open_dir("partials").unwrap();
        let committer = Committer::start().unwrap();
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let dir = dir.try_clone().unwrap();
                let from = from.try_clone().unwrap();
                let committer = committer.clone();
                std::thread::spawn(move || {
                    let part = PathBuf::from(format!("f{i}"));
                    let mut file = from.create(&part).unwrap().into_std();
                    write!(file, "file {i}").unwrap();
                    committer
                        .commit(&from, &dir, file, part, PathBuf::from(format!("sub/f{i}")))
                        .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for i in 0..16 {
            assert_eq!(
                dir.read_to_string(format!("sub/f{i}")).unwrap(),
                format!("file {i}")
            );
            assert!(!from.exists(format!("f{i}")));
        }
    }

    #[test]
    fn without_the_thread_files_are_committed_one_by_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        dir.create_dir("sub").unwrap();
        dir.create_dir("partials").unwrap();
        let from = dir.open_dir("partials").unwrap();
        let alone = Committer {
            group: GroupCommit::alone(),
        };
        for (part, target) in [("pa", "a"), ("pb", "sub/b")] {
            let mut file = from.create(part).unwrap().into_std();
            write!(file, "{target}").unwrap();
            alone
                .commit(&from, &dir, file, part.into(), target.into())
                .unwrap();
            assert_eq!(dir.read_to_string(target).unwrap(), target);
            assert!(!from.exists(part));
        }
    }

    #[test]
    fn a_failed_rename_is_reported_and_keeps_the_partial() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let committer = Committer::start().unwrap();
        let part = PathBuf::from("f");
        let file = dir.create(&part).unwrap().into_std();
        let err = committer
            .commit(&dir, &dir, file, part.clone(), PathBuf::from("missing/f"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(dir.exists(&part));
    }
}
