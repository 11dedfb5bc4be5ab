//! A connection's lane: its short blocking jobs run back to back on a few
//! threads of its user's share.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::threads::Threads;

/// Blocking threads a connection's lane uses at most.
pub(super) const LANE_THREADS: usize = 2;

/// Short blocking jobs of one connection (eager uploads, whose data has
/// all arrived), run back to back on at most [`LANE_THREADS`] threads of
/// the user's share. A tree of small files used to cost a thread wake-up
/// and a sleep per file; on the lane a burst of files costs one. A thread
/// runs [`LANE_BURST`] jobs at most before it lets others have a turn.
#[derive(Clone)]
pub(super) struct Lane {
    state: Arc<Mutex<LaneState>>,
    threads: Threads,
}

#[derive(Default)]
struct LaneState {
    jobs: VecDeque<Box<dyn FnOnce() + Send>>,
    threads: usize,
}

/// Jobs a lane thread runs before it waits for a turn again.
const LANE_BURST: usize = 64;

impl Lane {
    pub(super) fn new(threads: Threads) -> Lane {
        Lane {
            state: Arc::default(),
            threads,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a job, and starts a thread for the lane if it has room.
    pub(super) fn push(&self, job: Box<dyn FnOnce() + Send>) {
        let mut state = self.state();
        state.jobs.push_back(job);
        if state.threads < LANE_THREADS {
            state.threads += 1;
            self.start();
        }
    }

    /// Waits for a thread of the user's share, then drains on it.
    fn start(&self) {
        let lane = self.clone();
        tokio::spawn(async move {
            match lane.threads.permits().await {
                Some(permits) => {
                    tokio::task::spawn_blocking(move || {
                        lane.drain();
                        drop(permits);
                    });
                }
                None => lane.state().threads -= 1,
            }
        });
    }

    /// Runs queued jobs until none is left or the burst is over.
    fn drain(&self) {
        for _ in 0..LANE_BURST {
            let job = {
                let mut state = self.state();
                match state.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        state.threads -= 1;
                        return;
                    }
                }
            };
            // A job that panics (a bug) must not leave the lane stuck.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        }
        // More to do: in a new turn, behind whoever waits.
        self.start();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use crate::threads::Cpu;

    /// Every job runs, never more than the lane's threads at once, and a
    /// job that panics does not stop the ones behind it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lane_runs_every_job_on_at_most_its_threads() {
        let share = || Arc::new(Semaphore::new(8));
        let lane = Lane::new(Threads::new(share(), share(), Cpu::new(share(), share())));
        let (running, most, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..200 {
            let (running, most, done, tx) =
                (running.clone(), most.clone(), done.clone(), tx.clone());
            lane.push(Box::new(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_micros(200));
                running.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(());
                if i == 7 {
                    panic!("a job that fails");
                }
            }));
        }
        for _ in 0..200 {
            rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 200);
        assert!(most.load(Ordering::SeqCst) <= LANE_THREADS);
        // The threads left; the next job starts one again.
        let (tx, rx) = std::sync::mpsc::channel();
        lane.push(Box::new(move || {
            let _ = tx.send(());
        }));
        rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    }
}
