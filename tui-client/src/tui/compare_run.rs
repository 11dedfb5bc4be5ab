//! The runtime's side of `#`: hashing files on both sides (the server
//! hashes its own with the Checksum request, this machine on the blocking
//! pool), a few at a time, stoppable at once (a local hash checks a stop
//! flag between mebibytes).

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::action::Action;
use super::compare::{CompareNews, CompareWork};
use crate::client::Client;

/// Files hashed at once.
const IN_FLIGHT: usize = 4;

/// The one hashing run going on.
#[derive(Default)]
pub struct Hasher {
    running: Option<(u64, JoinHandle<()>, Arc<AtomicBool>)>,
}

impl Hasher {
    /// Starts or stops a run (a new run stops the one before).
    pub fn run(&mut self, work: CompareWork, client: Option<Client>, tx: UnboundedSender<Action>) {
        match work {
            CompareWork::Cancel(job) => {
                if self.running.as_ref().is_some_and(|r| r.0 == job) {
                    self.stop();
                }
            }
            CompareWork::Hash {
                job,
                local_dir,
                remote_dir,
                files,
            } => {
                self.stop();
                let stop = Arc::new(AtomicBool::new(false));
                let flag = stop.clone();
                let handle = tokio::spawn(async move {
                    let each = files.into_iter().map(|(name, _size)| {
                        let local = local_dir.join(&name);
                        let remote = remote_dir.join(&name);
                        let client = client.clone();
                        let flag = flag.clone();
                        async move {
                            let same = match (client, remote) {
                                (None, _) => Err("not connected".to_string()),
                                (_, Err(e)) => Err(e.to_string()),
                                (Some(c), Ok(remote)) => {
                                    let ours = tokio::task::spawn_blocking(move || {
                                        hash_stoppable(&local, &flag)
                                    });
                                    let (ours, theirs) =
                                        futures::join!(ours, c.checksum(&remote, None));
                                    match (ours, theirs) {
                                        (Ok(Ok(a)), Ok((_, b))) => Ok(a == b),
                                        (Ok(Err(e)), _) => Err(e.to_string()),
                                        (Err(e), _) => Err(e.to_string()),
                                        (_, Err(e)) => Err(e.to_string()),
                                    }
                                }
                            };
                            (name, same)
                        }
                    });
                    let mut results = futures::stream::iter(each).buffer_unordered(IN_FLIGHT);
                    while let Some((name, same)) = results.next().await {
                        let news = CompareNews::Hashed { job, name, same };
                        if tx.send(Action::Compare(news)).is_err() {
                            return;
                        }
                    }
                    let _ = tx.send(Action::Compare(CompareNews::Done { job }));
                });
                self.running = Some((job, handle, stop));
            }
        }
    }

    fn stop(&mut self) {
        if let Some((_, handle, stop)) = self.running.take() {
            stop.store(true, Ordering::Relaxed);
            handle.abort();
        }
    }
}

/// SHA-256 of a local regular file, read a mebibyte at a time; stops when
/// `stop` is set. Opened without following a link and without blocking,
/// so a fifo (or a device) put in the file's place cannot hold the thread
/// where the flag cannot reach it: it is refused as not a regular file.
fn hash_stoppable(path: &Path, stop: &AtomicBool) -> std::io::Result<[u8; 32]> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let mut f = std::fs::File::from(rustix::fs::open(path, flags, Mode::empty())?);
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("stopped"));
        }
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_hash_is_sha256_and_stops_on_its_flag() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![7u8; 3 << 20]).unwrap();
        let want: [u8; 32] = Sha256::digest(vec![7u8; 3 << 20]).into();
        assert_eq!(hash_stoppable(&p, &AtomicBool::new(false)).unwrap(), want);
        assert!(hash_stoppable(&p, &AtomicBool::new(true)).is_err());
    }

    #[test]
    fn a_fifo_or_a_link_in_a_files_place_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        // On a thread: the old open blocked forever waiting for a writer.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(hash_stoppable(&fifo, &AtomicBool::new(false)).is_err());
        });
        let refused = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the fifo held the thread");
        assert!(refused, "a fifo is not a regular file");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(hash_stoppable(&link, &AtomicBool::new(false)).is_err());
    }
}
