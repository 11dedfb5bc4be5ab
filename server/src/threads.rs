//! Blocking threads for file work, in bounded steps: each user has a share
//! of the server's threads, waited for in async tasks, first come first
//! served, so one user's queue never holds every thread. CPU-heavy steps
//! (hashing) also take a share of the cores, per user and server-wide.

use std::io::Read;
use std::sync::Arc;

use sha2::Sha256;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Where a user's file work runs: their share of threads within the
/// server's, and their share of the cores for CPU-heavy steps. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Threads {
    user: Arc<Semaphore>,
    server: Arc<Semaphore>,
    cpu: Cpu,
}

/// Threads that may run CPU-heavy steps at once: the user's share of the
/// server's, both sized from the cores (`limits.max_cpu_threads*`).
#[derive(Clone, Debug)]
pub struct Cpu {
    user: Arc<Semaphore>,
    server: Arc<Semaphore>,
}

impl Cpu {
    /// A user's share `user` of the server's `server`.
    pub fn new(user: Arc<Semaphore>, server: Arc<Semaphore>) -> Cpu {
        Cpu { user, server }
    }
}

/// A thread's worth of both shares, held while a step runs.
pub type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// Bytes hashed in one step at most: a few milliseconds of SHA-256, so
/// between a user's steps others get a turn on the cores.
pub const HASH_STEP: u64 = 4 << 20;

impl Threads {
    /// A user's share `user` of the server's `server`, with their share
    /// `cpu` of the cores.
    pub fn new(user: Arc<Semaphore>, server: Arc<Semaphore>, cpu: Cpu) -> Threads {
        Threads { user, server, cpu }
    }

    /// Waits for a thread of the user's share, then of the server's. The
    /// user's comes first: a user waits in their own queue, and only their
    /// share's worth of their steps ever waits in the server's, so the
    /// server's queue is served across users in turn.
    pub async fn permits(&self) -> Option<Permits> {
        let user = self.user.clone().acquire_owned().await.ok()?;
        let server = self.server.clone().acquire_owned().await.ok()?;
        Some((user, server))
    }

    /// Runs one bounded step of file work on a blocking thread once the
    /// user and the server have one, and returns its result (None if the
    /// step panicked: a bug, logged). The step must not wait for the
    /// network: that is done between steps, here in async.
    pub async fn run<T, F>(&self, step: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permits = self.permits().await?;
        spawn(step, permits).await
    }

    /// Runs one bounded CPU-heavy step (hashing) like [`Threads::run`],
    /// once the user's and then the server's share of the cores has room.
    /// The cores are waited for first: a user's queue of hashing steps
    /// holds none of their thread places, so their other work goes on.
    pub async fn run_cpu<T, F>(&self, step: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let user = self.cpu.user.clone().acquire_owned().await.ok()?;
        let server = self.cpu.server.clone().acquire_owned().await.ok()?;
        let permits = self.permits().await?;
        spawn(step, (user, server, permits)).await
    }

    /// Feeds the next `len` bytes of `r` to `hasher` in CPU-heavy steps of
    /// at most [`HASH_STEP`] bytes; returns both back (None if a step
    /// panicked).
    pub async fn hash<R>(
        &self,
        mut r: R,
        len: u64,
        mut hasher: Sha256,
    ) -> Option<std::io::Result<(R, Sha256)>>
    where
        R: Read + Send + 'static,
    {
        let mut left = len;
        while left > 0 {
            let n = left.min(HASH_STEP);
            let step = self
                .run_cpu(move || {
                    let r2 = crate::transfer::hash_prefix(&mut r, n, &mut hasher);
                    (r, hasher, r2)
                })
                .await?;
            (r, hasher) = (step.0, step.1);
            if let Err(e) = step.2 {
                return Some(Err(e));
            }
            left -= n;
        }
        Some(Ok((r, hasher)))
    }
}

/// Runs `step` on a blocking thread, holding `permits` until it ends.
async fn spawn<T, F>(step: F, permits: impl Send + 'static) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    // The permits go with the step: a caller that stops waiting does
    // not free a thread that is still busy.
    let done = tokio::task::spawn_blocking(move || {
        let r = step();
        drop(permits);
        r
    });
    match done.await {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(error = %e, "a file step failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn cpu(n: usize) -> Cpu {
        Cpu::new(Arc::new(Semaphore::new(n)), Arc::new(Semaphore::new(n)))
    }

    /// A user with many steps waiting never has more than their share
    /// running, and another user's step runs meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_runs_at_most_their_share_and_others_get_a_turn() {
        let server = Arc::new(Semaphore::new(3));
        let greedy = Threads::new(Arc::new(Semaphore::new(2)), server.clone(), cpu(2));
        let other = Threads::new(Arc::new(Semaphore::new(2)), server, cpu(2));
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut steps = Vec::new();
        for _ in 0..20 {
            let (g, running, most) = (greedy.clone(), running.clone(), most.clone());
            steps.push(tokio::spawn(async move {
                g.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let quick = tokio::time::timeout(Duration::from_secs(1), other.run(|| 7)).await;
        assert_eq!(
            quick.unwrap(),
            Some(7),
            "the other user waited for the greedy one"
        );
        for s in steps {
            s.await.unwrap().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
    }

    /// A user's CPU-heavy steps run at most their share of the cores at
    /// once, whatever their thread share; their other steps still run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cpu_heavy_steps_run_on_the_users_share_of_the_cores() {
        let threads = Threads::new(
            Arc::new(Semaphore::new(8)),
            Arc::new(Semaphore::new(8)),
            cpu(1),
        );
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut steps = Vec::new();
        for _ in 0..8 {
            let (t, running, most) = (threads.clone(), running.clone(), most.clone());
            steps.push(tokio::spawn(async move {
                t.run_cpu(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let quick = tokio::time::timeout(Duration::from_secs(1), threads.run(|| 7)).await;
        assert_eq!(quick.unwrap(), Some(7), "other work waited for hashing");
        for s in steps {
            s.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    /// Hashing in steps gives the hash of the whole, and the reader back
    /// where it ended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_in_steps_hashes_the_whole() {
        use sha2::Digest;
        let data: Vec<u8> = (0..(HASH_STEP * 2 + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();
        let threads = Threads::new(
            Arc::new(Semaphore::new(2)),
            Arc::new(Semaphore::new(2)),
            cpu(1),
        );
        let len = data.len() as u64 - 5;
        let (mut rest, hasher) = threads
            .hash(std::io::Cursor::new(data.clone()), len, Sha256::new())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hasher.finalize(), Sha256::digest(&data[..len as usize]));
        let mut tail = Vec::new();
        std::io::Read::read_to_end(&mut rest, &mut tail).unwrap();
        assert_eq!(tail.len(), 5);
        let short = threads
            .hash(std::io::Cursor::new(vec![0u8; 10]), 11, Sha256::new())
            .await
            .unwrap();
        assert!(short.is_err(), "a file shorter than asked is an error");
    }
}
