//! Blocking threads for file work, in bounded steps: each user has a share
//! of the server's threads, waited for in async tasks, first come first
//! served, so one user's queue never holds every thread.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Where a user's file work runs: their share of threads within the
/// server's. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Threads {
    user: Arc<Semaphore>,
    server: Arc<Semaphore>,
}

/// A thread's worth of both shares, held while a step runs.
pub type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

impl Threads {
    /// A user's share `user` of the server's `server`.
    pub fn new(user: Arc<Semaphore>, server: Arc<Semaphore>) -> Threads {
        Threads { user, server }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A user with many steps waiting never has more than their share
    /// running, and another user's step runs meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_runs_at_most_their_share_and_others_get_a_turn() {
        let server = Arc::new(Semaphore::new(3));
        let greedy = Threads::new(Arc::new(Semaphore::new(2)), server.clone());
        let other = Threads::new(Arc::new(Semaphore::new(2)), server);
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
}
