//! Group commit for small uploads.
//!
//! A verified upload becomes visible only once its data is on disk: sync
//! the partial, rename it over the target, sync the directory. Done per
//! file, that is two journal commits and disk flushes for every file, and
//! a tree of 10,000 small files spends most of its time there (measured:
//! 1.4-2.6 s of a 5 s upload). Here one thread commits whatever uploads
//! are waiting, together: one `syncfs` per filesystem makes every file of
//! the batch durable, the renames follow, and a second `syncfs` makes the
//! renames durable. While a batch is being flushed the next one gathers,
//! so batches grow exactly when files arrive faster than the disk flushes.
//! The guarantee per file is unchanged: its name appears only after its
//! content is durable, and `PutDone` is sent only after the name is.
//! The commit thread finishes each upload itself ([`Committer::commit_then`]:
//! it runs the upload's last step, which sends the reply), so no thread
//! sits waiting for a flush per file.
//!
//! Large files keep syncing themselves: their data is most of the flush,
//! and a `syncfs` would make small files wait for it.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};

use cap_std::fs::Dir;

/// Files up to this size are committed in groups.
pub const GROUP_COMMIT_MAX: u64 = 1 << 20;

/// The most files committed together.
const MAX_BATCH: usize = 1024;

/// One file waiting to be committed.
struct Job {
    /// The directory both names are relative to (the user's home).
    dir: Dir,
    /// The partial, open.
    file: std::fs::File,
    /// Its filesystem (one flush per filesystem and batch).
    dev: u64,
    part: PathBuf,
    target: PathBuf,
    then: Then,
}

/// What runs once a file is committed (or failed to be), on the commit
/// thread: keep it short and never let it block.
pub type Then = Box<dyn FnOnce(io::Result<()>) + Send>;

/// Hands small uploads to the commit thread.
#[derive(Clone, Debug)]
pub struct Committer {
    tx: Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("part", &self.part).finish()
    }
}

impl Committer {
    /// Starts the commit thread.
    pub fn start() -> io::Result<Committer> {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("ferry-commit".into())
            .spawn(move || run(rx))?;
        Ok(Committer { tx })
    }

    /// Makes `part` durable and renames it to `target` (both relative to
    /// `dir`), then makes the rename durable; returns when all is done.
    /// `file` is the partial, already written in full.
    pub fn commit(
        &self,
        dir: &Dir,
        file: std::fs::File,
        part: PathBuf,
        target: PathBuf,
    ) -> io::Result<()> {
        let (done, result) = sync_channel(1);
        self.commit_then(
            dir.try_clone()?,
            file,
            part,
            target,
            Box::new(move |r| {
                let _ = done.send(r);
            }),
        );
        result
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the commit thread stopped")))
    }

    /// [`Committer::commit`] without waiting: `then` gets the outcome, on
    /// the commit thread (or here, if the file has to be committed alone).
    pub fn commit_then(
        &self,
        dir: Dir,
        file: std::fs::File,
        part: PathBuf,
        target: PathBuf,
        then: Then,
    ) {
        let dev = match file.metadata() {
            Ok(md) => md.dev(),
            Err(e) => return then(Err(e)),
        };
        let job = Job {
            dir,
            dev,
            file,
            part,
            target,
            then,
        };
        if cfg!(not(target_os = "linux")) {
            // Without syncfs a batch would need a sync per file anyway.
            return job.alone();
        }
        if let Err(returned) = self.tx.send(job) {
            // The commit thread is gone (it panicked): commit alone.
            returned.0.alone();
        }
    }
}

impl Job {
    /// Commits this file by itself and reports.
    fn alone(self) {
        let result = commit_alone(&self);
        (self.then)(result);
    }

    /// Reports the outcome.
    fn done(self, result: io::Result<()>) {
        (self.then)(result);
    }
}

fn run(rx: Receiver<Job>) {
    // Renamed files whose renames are not durable yet: the next flush,
    // which also carries the next batch's content, makes them so. One
    // flush per batch under load, two for a lone file.
    let mut renamed: Vec<Job> = Vec::new();
    loop {
        let mut batch = Vec::new();
        if renamed.is_empty() {
            match rx.recv() {
                Ok(job) => batch.push(job),
                Err(_) => return,
            }
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let (files, answered) = (batch.len(), renamed.len());
        // One flush per filesystem: the batch's content, and the previous
        // batch's renames.
        let mut flushed: HashMap<u64, io::Result<()>> = HashMap::new();
        let mut flush = |job: &Job| -> io::Result<()> {
            flushed
                .entry(job.dev)
                .or_insert_with(|| sync_filesystem(&job.file))
                .as_ref()
                .map(|_| ())
                .map_err(copy_error)
        };
        for job in renamed.drain(..) {
            let result = flush(&job);
            job.done(result);
        }
        for job in batch {
            // A failed flush or rename leaves the partial for a resume.
            let result =
                flush(&job).and_then(|()| job.dir.rename(&job.part, &job.dir, &job.target));
            match result {
                Ok(()) => renamed.push(job),
                Err(e) => job.done(Err(e)),
            }
        }
        tracing::debug!(files, answered, elapsed = ?started.elapsed(), "commit batch");
    }
}

/// An `io::Error` for each of several waiters.
fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// Flushes the filesystem holding `file`: data, metadata and journal.
/// (Only used on Linux; elsewhere files are committed one by one.)
fn sync_filesystem(file: &std::fs::File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        rustix::fs::syncfs(file).map_err(io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        file.sync_all()
    }
}

/// The per-file way: sync the file, rename, sync the directory.
fn commit_alone(job: &Job) -> io::Result<()> {
    job.file.sync_all()?;
    job.dir.rename(&job.part, &job.dir, &job.target)?;
    let parent = match job.target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let parent = job
        .dir
        .open_with(parent, cap_std::fs::OpenOptions::new().read(true))?;
    parent.sync_all()
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
        let committer = Committer::start().unwrap();
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let dir = dir.try_clone().unwrap();
                let committer = committer.clone();
                std::thread::spawn(move || {
                    let part = PathBuf::from(format!("sub/.f{i}.ferry-part"));
                    let mut file = dir.create(&part).unwrap().into_std();
                    write!(file, "file {i}").unwrap();
                    committer
                        .commit(&dir, file, part, PathBuf::from(format!("sub/f{i}")))
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
            assert!(!dir.exists(format!("sub/.f{i}.ferry-part")));
        }
    }

    #[test]
    fn without_the_thread_files_are_committed_one_by_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        dir.create_dir("sub").unwrap();
        let (tx, rx) = channel();
        drop(rx);
        let orphan = Committer { tx };
        for (part, target) in [(".a.ferry-part", "a"), ("sub/.b.ferry-part", "sub/b")] {
            let mut file = dir.create(part).unwrap().into_std();
            write!(file, "{target}").unwrap();
            orphan
                .commit(&dir, file, part.into(), target.into())
                .unwrap();
            assert_eq!(dir.read_to_string(target).unwrap(), target);
            assert!(!dir.exists(part));
        }
    }

    #[test]
    fn a_failed_rename_is_reported_and_keeps_the_partial() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let committer = Committer::start().unwrap();
        let part = PathBuf::from(".f.ferry-part");
        let file = dir.create(&part).unwrap().into_std();
        let err = committer
            .commit(&dir, file, part.clone(), PathBuf::from("missing/f"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(dir.exists(&part));
    }
}
