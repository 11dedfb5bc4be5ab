//! Blocking threads for file work, in bounded steps: each user has a share
//! of the server's threads, waited for in async tasks, first come first
//! served, so one user's queue never holds every thread. CPU-heavy steps
//! (hashing) also take a share of the cores, per user and server-wide;
//! they and other bulk steps run on the low-priority threads of
//! [`crate::bulk`].

use std::any::Any;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::bulk::Pool;

/// Where a user's file work runs: their share of threads within the
/// server's, and their share of the cores for CPU-heavy steps. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Threads {
    user: Arc<Semaphore>,
    server: Arc<Semaphore>,
    cpu: Cpu,
    /// Where bulk and CPU-heavy steps run; without it, on the shared
    /// blocking threads like the rest.
    bulk: Option<Pool>,
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

/// Transfers with at least this many bytes left are bulk work: their disk
/// steps run on the bulk threads and their SHA-256 in a [`HashLane`].
/// Smaller ones run as other file work and hash inline.
pub const BULK_MIN: u64 = 4 << 20;

impl Threads {
    /// A user's share `user` of the server's `server`, with their share
    /// `cpu` of the cores.
    pub fn new(user: Arc<Semaphore>, server: Arc<Semaphore>, cpu: Cpu) -> Threads {
        Threads {
            user,
            server,
            cpu,
            bulk: None,
        }
    }

    /// The same, running bulk and CPU-heavy steps on `pool`.
    pub fn with_bulk(self, pool: Pool) -> Threads {
        Threads {
            bulk: Some(pool),
            ..self
        }
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

    /// Runs one bounded bulk step (a large transfer's disk work) like
    /// [`Threads::run`], but on a bulk thread: it takes a thread of the
    /// user's share, then a place among the bulk threads.
    pub async fn run_bulk<T, F>(&self, step: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let Some(pool) = &self.bulk else {
            return self.run(step).await;
        };
        let user = self.user.clone().acquire_owned().await.ok()?;
        let place = pool.place().await?;
        pool.run(step, (user, place)).await
    }

    /// [`Threads::run_bulk`] if `bulk`, else [`Threads::run`].
    pub async fn run_maybe_bulk<T, F>(&self, bulk: bool, step: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        match bulk {
            true => self.run_bulk(step).await,
            false => self.run(step).await,
        }
    }

    /// Runs one bounded CPU-heavy step (hashing) like
    /// [`Threads::run_bulk`], once the user's and then the server's share
    /// of the cores has room. The cores are waited for first: a user's
    /// queue of hashing steps holds none of their thread places, so their
    /// other work goes on.
    pub async fn run_cpu<T, F>(&self, step: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let user = self.cpu.user.clone().acquire_owned().await.ok()?;
        let server = self.cpu.server.clone().acquire_owned().await.ok()?;
        match &self.bulk {
            Some(pool) => {
                let thread = self.user.clone().acquire_owned().await.ok()?;
                let place = pool.place().await?;
                pool.run(step, (user, server, thread, place)).await
            }
            None => {
                let permits = self.permits().await?;
                spawn(step, (user, server, permits)).await
            }
        }
    }

    /// A SHA-256 continuing `state`, fed chunk by chunk in async and
    /// hashed in CPU-heavy steps (see [`HashLane`]).
    pub fn hash_lane(&self, state: Sha256) -> HashLane {
        let (tx, mut rx) = mpsc::channel::<(Bytes, Box<dyn Any + Send>)>(LANE_CHUNKS);
        let threads = self.clone();
        let task = tokio::spawn(async move {
            let mut state = state;
            while let Some(first) = rx.recv().await {
                // What has come, up to a step's worth, hashed in one step.
                let mut len = first.0.len() as u64;
                let mut batch = vec![first];
                while len < HASH_STEP {
                    match rx.try_recv() {
                        Ok(c) => {
                            len += c.0.len() as u64;
                            batch.push(c);
                        }
                        Err(_) => break,
                    }
                }
                state = threads
                    .run_cpu(move || {
                        for (chunk, held) in batch {
                            state.update(&chunk);
                            drop(held);
                        }
                        state
                    })
                    .await?;
            }
            Some(state)
        });
        HashLane { tx, task }
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

/// Chunks a [`HashLane`] holds at most before its feeder waits (2 MiB of
/// 64 KiB chunks, 8 MiB of 256 KiB ones; all counted in the connection's
/// budget by what each chunk holds).
const LANE_CHUNKS: usize = 32;

/// A large transfer's SHA-256: the transfer feeds chunks as they are
/// written or read, and they are hashed in CPU-heavy steps on the user's
/// share of the cores, beside the transfer's own steps (the hash of a
/// large file then costs the larger of the two, not their sum, as a
/// thread of its own would) but taking a core place like every other
/// hashing step. What is fed with a chunk is held until it is hashed.
#[derive(Debug)]
pub struct HashLane {
    tx: mpsc::Sender<(Bytes, Box<dyn Any + Send>)>,
    task: tokio::task::JoinHandle<Option<Sha256>>,
}

impl HashLane {
    /// Adds a chunk, waiting (in async) while the lane is full; `held`
    /// goes once the chunk is hashed. False if hashing failed.
    pub async fn feed(&self, chunk: Bytes, held: impl Any + Send) -> bool {
        self.tx.send((chunk, Box::new(held))).await.is_ok()
    }

    /// The digest of everything fed, once hashed; None if a step failed.
    pub async fn finish(self) -> Option<[u8; 32]> {
        drop(self.tx);
        let state = self.task.await.ok().flatten()?;
        Some(state.finalize().into())
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

    fn low_pool() -> Pool {
        Pool::start(
            2,
            crate::bulk::Priority {
                nice: 10,
                io: crate::bulk::IoPriority::Low,
            },
        )
        .unwrap()
    }

    /// Bulk and CPU-heavy steps run on the bulk threads, at their lowered
    /// nice value; other steps at the process's own.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_and_cpu_steps_run_at_the_lowered_nice_value() {
        use crate::bulk::nice;
        let base = nice().unwrap();
        let threads = Threads::new(
            Arc::new(Semaphore::new(2)),
            Arc::new(Semaphore::new(2)),
            cpu(1),
        )
        .with_bulk(low_pool());
        let n = || nice().unwrap();
        assert_eq!(threads.run(n).await, Some(base));
        assert_eq!(threads.run_bulk(n).await, Some(base.max(10)));
        assert_eq!(threads.run_cpu(n).await, Some(base.max(10)));
        assert_eq!(threads.run_maybe_bulk(false, n).await, Some(base));
    }

    /// A lane hashes everything fed, in order, and lets go of what each
    /// chunk holds once it is hashed; a user's lanes hash on their share
    /// of the cores.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lane_hashes_what_it_is_fed_on_the_share_of_the_cores() {
        let threads = Threads::new(
            Arc::new(Semaphore::new(4)),
            Arc::new(Semaphore::new(4)),
            cpu(1),
        )
        .with_bulk(low_pool());
        let data: Vec<u8> = (0..(9u32 << 20) + 77).map(|i| (i % 253) as u8).collect();
        let held = Arc::new(Semaphore::new(0));
        let mut lanes = Vec::new();
        for _ in 0..3 {
            lanes.push(threads.hash_lane(Sha256::new()));
        }
        for chunk in data.chunks(256 * 1024) {
            for lane in &lanes {
                let hold = ReturnOnDrop(held.clone());
                assert!(lane.feed(Bytes::copy_from_slice(chunk), hold).await);
            }
        }
        for lane in lanes {
            assert_eq!(lane.finish().await, Some(Sha256::digest(&data).into()));
        }
        assert_eq!(
            held.available_permits(),
            3 * data.chunks(256 * 1024).count()
        );
        assert_eq!(threads.cpu.user.available_permits(), 1);
    }

    /// Gives a permit back when dropped: counts what a lane let go of.
    struct ReturnOnDrop(Arc<Semaphore>);

    impl Drop for ReturnOnDrop {
        fn drop(&mut self) {
            self.0.add_permits(1);
        }
    }

    /// Hashing in steps gives the hash of the whole, and the reader back
    /// where it ended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_in_steps_hashes_the_whole() {
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
