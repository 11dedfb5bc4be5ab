//! Dedicated threads for bulk work, at a lower CPU and disk priority.
//!
//! Large transfers' disk work, every hashing step (checksums, resume
//! prefixes, large transfers' SHA-256) and nothing else runs here, so
//! listings, small uploads and group commits always get the cores and the
//! disk first, and bulk work uses what they leave. Each thread lowers its
//! own priority once at start (`setpriority` on Linux is per thread) and
//! keeps it: an unprivileged thread cannot raise it again, which is why
//! these are threads of their own and not the shared blocking pool.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The disk priority of bulk threads.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IoPriority {
    /// Served only when the disk has nothing else to do (the kernel still
    /// serves requests that waited long enough, so nothing starves).
    Idle,
    /// The lowest level of the normal class.
    #[default]
    Low,
    /// As every other thread.
    Normal,
}

/// What bulk threads lower themselves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    /// Nice value (0 to 19): at 10 a thread gets about a tenth of a core
    /// that a thread at 0 also wants.
    pub nice: i32,
    /// Disk priority.
    pub io: IoPriority,
}

type Job = Box<dyn FnOnce() + Send>;

/// The pool: a fixed number of low-priority threads taking jobs from one
/// queue, and as many places, so the queue never holds more jobs than
/// there are threads (callers wait for a place in async). Cheap to clone;
/// the threads end when the last clone goes.
#[derive(Clone, Debug)]
pub struct Pool {
    jobs: mpsc::Sender<Job>,
    places: Arc<Semaphore>,
}

impl Pool {
    /// Starts `threads` threads (at least one) at `priority`.
    pub fn start(threads: usize, priority: Priority) -> std::io::Result<Pool> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = threads.max(1);
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("ferry-bulk-{i}"))
                .spawn(move || {
                    lower(priority);
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A panicking step is reported by its caller
                            // (its result never comes); the thread goes on.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Pool {
            jobs,
            places: Arc::new(Semaphore::new(threads)),
        })
    }

    /// Waits for a place (one of the pool's threads will be free for it).
    pub async fn place(&self) -> Option<OwnedSemaphorePermit> {
        self.places.clone().acquire_owned().await.ok()
    }

    /// Runs `step` on a pool thread, holding `held` (a place and the
    /// user's permits) until it ends; None if it panicked (logged).
    pub async fn run<T, F>(&self, step: F, held: impl Send + 'static) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let r = step();
            drop(held);
            let _ = tx.send(r);
        });
        if self.jobs.send(job).is_err() {
            tracing::error!("the bulk threads are gone");
            return None;
        }
        match rx.await {
            Ok(r) => Some(r),
            Err(_) => {
                tracing::error!("a bulk file step failed");
                None
            }
        }
    }
}

/// Lowers the calling thread's CPU and disk priority to `p`; on failure
/// logs once and runs on as it is.
pub fn lower(p: Priority) {
    if let Err(e) = try_lower(p) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            tracing::warn!(error = %e, "bulk work runs at normal priority: cannot lower a thread's priority");
        });
    }
}

/// The calling thread's nice value (on Linux, `getpriority` of "the
/// calling process" is the calling thread's).
#[cfg(target_os = "linux")]
pub fn nice() -> std::io::Result<i32> {
    Ok(rustix::process::getpriority_process(None)?)
}

/// `ioprio` classes and the value for a class and level (linux/ioprio.h).
#[cfg(target_os = "linux")]
mod ioprio {
    pub const WHO_PROCESS: libc::c_int = 1;
    pub const CLASS_BE: libc::c_int = 2;
    pub const CLASS_IDLE: libc::c_int = 3;
    pub const CLASS_SHIFT: libc::c_int = 13;

    pub fn value(class: libc::c_int, level: libc::c_int) -> libc::c_int {
        (class << CLASS_SHIFT) | level
    }
}

/// `ioprio_get` or `ioprio_set` (which have no safe wrapper) on the
/// calling thread; what the kernel returns.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn ioprio(set: Option<libc::c_int>) -> std::io::Result<libc::c_int> {
    // SAFETY: both syscalls take plain integers (who 0: the calling
    // thread) and touch no memory of ours.
    let r = unsafe {
        match set {
            None => libc::syscall(libc::SYS_ioprio_get, ioprio::WHO_PROCESS, 0),
            Some(v) => libc::syscall(libc::SYS_ioprio_set, ioprio::WHO_PROCESS, 0, v),
        }
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r as libc::c_int)
}

/// The calling thread's disk priority: its class and level (class 0: none
/// set, it follows its nice value).
#[cfg(target_os = "linux")]
pub fn io_priority() -> std::io::Result<(i32, i32)> {
    let v = ioprio(None)?;
    Ok((
        v >> ioprio::CLASS_SHIFT,
        v & ((1 << ioprio::CLASS_SHIFT) - 1),
    ))
}

#[cfg(target_os = "linux")]
fn try_lower(p: Priority) -> std::io::Result<()> {
    // Never raises: a thread already nicer than asked stays so.
    let now = nice()?;
    if p.nice > now {
        // "The calling process" is the calling thread here too.
        rustix::process::setpriority_process(None, p.nice)?;
    }
    let value = match p.io {
        IoPriority::Normal => return Ok(()),
        IoPriority::Low => ioprio::value(ioprio::CLASS_BE, 7),
        IoPriority::Idle => ioprio::value(ioprio::CLASS_IDLE, 0),
    };
    ioprio(Some(value)).map(drop)
}

#[cfg(not(target_os = "linux"))]
fn try_lower(_p: Priority) -> std::io::Result<()> {
    // Elsewhere `setpriority` would lower the whole process.
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "per-thread priorities are Linux-only",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The nice value of the test process's main thread's children start
    /// from (cargo may run under `nice`).
    fn inherited() -> i32 {
        nice().unwrap()
    }

    /// Pool threads run at the configured nice value and disk priority;
    /// a thread already nicer stays so.
    #[tokio::test]
    async fn pool_threads_run_at_the_lowered_priority() {
        let base = inherited();
        let pool = Pool::start(
            2,
            Priority {
                nice: 10,
                io: IoPriority::Low,
            },
        )
        .unwrap();
        for _ in 0..4 {
            let place = pool.place().await.unwrap();
            let (n, io) = pool
                .run(|| (nice().unwrap(), io_priority().unwrap()), place)
                .await
                .unwrap();
            assert_eq!(n, base.max(10));
            assert_eq!(io, (ioprio::CLASS_BE, 7));
        }
        let idle = Pool::start(
            1,
            Priority {
                nice: 3,
                io: IoPriority::Idle,
            },
        )
        .unwrap();
        let place = idle.place().await.unwrap();
        let (n, io) = idle
            .run(|| (nice().unwrap(), io_priority().unwrap().0), place)
            .await
            .unwrap();
        assert_eq!(n, base.max(3));
        assert_eq!(io, ioprio::CLASS_IDLE);
        // The caller's thread is untouched.
        assert_eq!(nice().unwrap(), base);
    }

    /// A step that panics is reported as None, and the thread serves the
    /// next step.
    #[tokio::test]
    async fn a_panicking_step_leaves_the_pool_working() {
        let pool = Pool::start(
            1,
            Priority {
                nice: 10,
                io: IoPriority::Normal,
            },
        )
        .unwrap();
        let place = pool.place().await.unwrap();
        let r: Option<()> = pool.run(|| panic!("a bug"), place).await;
        assert!(r.is_none());
        let place = pool.place().await.unwrap();
        assert_eq!(pool.run(|| 7, place).await, Some(7));
    }
}
