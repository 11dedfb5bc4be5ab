//! Byte budgets: what one connection, and all sessions of one user, may
//! make ferryd hold (data frames, queued replies, requests in flight).

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// What holding something costs beyond its bytes: the allocation, its
/// place in a queue, the task or request around it. Generous on purpose:
/// overstating keeps the budget a true bound on memory.
pub const OVERHEAD: usize = 512;

/// What a request in flight costs until its reply is queued: its message,
/// its task, its state.
pub const REQUEST: usize = 4096;

/// How much of the server each user may have, over all sessions.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShareLimits {
    /// Running transfers.
    pub transfers: usize,
    /// Bytes held.
    pub bytes: usize,
    /// Blocking threads doing file work.
    pub threads: usize,
    /// Of those, threads running CPU-heavy steps.
    pub cpu_threads: usize,
}

impl From<&crate::config::Limits> for ShareLimits {
    fn from(l: &crate::config::Limits) -> ShareLimits {
        ShareLimits {
            transfers: l.max_transfers_per_user,
            bytes: l.user_budget(),
            threads: l.max_threads_per_user,
            cpu_threads: l.cpu_threads_per_user(),
        }
    }
}

/// One user's share of the server, over all sessions.
#[derive(Debug)]
pub struct Share {
    /// Places for running transfers.
    pub transfers: Arc<Semaphore>,
    /// The byte budget.
    pub bytes: Arc<Semaphore>,
    /// Blocking threads for file work.
    pub threads: Arc<Semaphore>,
    /// Of those, threads running CPU-heavy steps.
    pub cpu_threads: Arc<Semaphore>,
}

impl Share {
    /// A fresh share.
    pub fn new(l: &ShareLimits) -> Share {
        Share {
            transfers: Arc::new(Semaphore::new(l.transfers)),
            bytes: Arc::new(Semaphore::new(l.bytes)),
            threads: Arc::new(Semaphore::new(l.threads)),
            cpu_threads: Arc::new(Semaphore::new(l.cpu_threads)),
        }
    }
}

/// The budget of one connection, inside its user's. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Budget {
    conn: Arc<Semaphore>,
    user: Arc<Semaphore>,
    server: Option<Arc<Semaphore>>,
    gone: CancellationToken,
}

impl Budget {
    /// A connection's budget of `conn` bytes inside its user's `user`.
    pub fn new(conn: usize, user: Arc<Semaphore>) -> Budget {
        Budget {
            conn: Arc::new(Semaphore::new(conn)),
            user,
            server: None,
            gone: CancellationToken::new(),
        }
    }

    /// This budget inside the server's over all users, too.
    pub fn within(mut self, server: Arc<Semaphore>) -> Budget {
        self.server = Some(server);
        self
    }

    /// A user's budget over all their sessions (for tests).
    #[cfg(test)]
    pub fn user(bytes: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(bytes))
    }

    /// Takes `bytes` from the connection's budget, then the user's,
    /// waiting (in turn, first come first served) until both have room.
    /// None once the connection has ended. Dropping the future mid-wait
    /// takes nothing.
    pub async fn charge(&self, bytes: usize) -> Option<Charge> {
        let n = u32::try_from(bytes).ok()?;
        let both = async {
            let conn = self.conn.acquire_many(n).await.ok()?;
            let user = self.user.acquire_many(n).await.ok()?;
            if let Some(server) = &self.server {
                server.acquire_many(n).await.ok()?.forget();
            }
            conn.forget();
            user.forget();
            Some(Charge {
                budget: Some(self.clone()),
                bytes,
            })
        };
        tokio::select! {
            c = both => c,
            _ = self.gone.cancelled() => None,
        }
    }

    /// Takes `bytes` now if both budgets have room.
    pub fn try_charge(&self, bytes: usize) -> Option<Charge> {
        let n = u32::try_from(bytes).ok()?;
        let conn = self.conn.try_acquire_many(n).ok()?;
        let user = self.user.try_acquire_many(n).ok()?;
        if let Some(server) = &self.server {
            server.try_acquire_many(n).ok()?.forget();
        }
        conn.forget();
        user.forget();
        Some(Charge {
            budget: Some(self.clone()),
            bytes,
        })
    }

    /// Takes `bytes` now from the user's budget (and the server's) only,
    /// if they have room: for what the connection holds beyond its own
    /// budget only while the user's other sessions leave room (an
    /// upload's extra part buffers in object storage).
    pub fn try_charge_user(&self, bytes: usize) -> Option<Charge> {
        let n = u32::try_from(bytes).ok()?;
        let user = self.user.try_acquire_many(n).ok()?;
        if let Some(server) = &self.server {
            server.try_acquire_many(n).ok()?.forget();
        }
        user.forget();
        // Given back to the user's (and the server's) only: the
        // connection's own count was never taken.
        let outside = Budget {
            conn: Arc::new(Semaphore::new(0)),
            user: self.user.clone(),
            server: self.server.clone(),
            gone: self.gone.clone(),
        };
        Some(Charge {
            budget: Some(outside),
            bytes,
        })
    }

    /// Closes the connection's budget: everyone waiting gets None.
    pub fn close(&self) {
        self.gone.cancel();
        self.conn.close();
    }

    /// Bytes the connection may still take now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.conn
            .available_permits()
            .min(self.user.available_permits())
    }
}

/// Bytes taken from a budget, given back when dropped.
#[derive(Debug, Default)]
pub struct Charge {
    budget: Option<Budget>,
    bytes: usize,
}

impl Charge {
    /// A charge of nothing (for what is not counted).
    pub fn none() -> Charge {
        Charge::default()
    }

    /// Gives back all but `bytes` (when less was used than taken).
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.give_back(self.bytes - bytes);
        }
    }

    /// Moves `bytes` of this charge into a charge of their own.
    pub fn split(&mut self, bytes: usize) -> Charge {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        Charge {
            budget: self.budget.clone(),
            bytes,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds `other` (of the same budget) to this charge.
    pub fn absorb(&mut self, mut other: Charge) {
        if self.budget.is_none() {
            self.budget = other.budget.take();
        }
        self.bytes += std::mem::take(&mut other.bytes);
    }

    fn give_back(&mut self, bytes: usize) {
        if let Some(b) = &self.budget {
            if bytes > 0 {
                if let Some(server) = &b.server {
                    server.add_permits(bytes);
                }
                b.user.add_permits(bytes);
                b.conn.add_permits(bytes);
            }
        }
        self.bytes -= bytes;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn user_only_charges_leave_the_connection_alone() {
        let user = Budget::user(100);
        let a = Budget::new(80, user.clone());
        let c = a.try_charge_user(60).unwrap();
        assert_eq!(a.conn.available_permits(), 80);
        assert_eq!(a.available(), 40);
        assert!(
            a.try_charge_user(60).is_none(),
            "the user's budget is the bound"
        );
        drop(c);
        assert_eq!(a.available(), 80);
        assert_eq!(
            a.conn.available_permits(),
            80,
            "nothing added to the connection's"
        );
        assert_eq!(user.available_permits(), 100);
    }

    #[tokio::test]
    async fn charges_wait_for_room_in_both_budgets_and_give_it_back() {
        let user = Budget::user(100);
        let a = Budget::new(80, user.clone());
        let b = Budget::new(80, user.clone());
        let mut ca = a.charge(60).await.unwrap();
        assert_eq!(a.available(), 20);
        // b's connection has room, the user has not.
        let waiting = tokio::time::timeout(Duration::from_millis(50), b.charge(60)).await;
        assert!(waiting.is_err());
        ca.shrink_to(30);
        let cb = b.charge(60).await.unwrap();
        assert_eq!(b.available(), 10);
        let part = ca.split(10);
        assert_eq!((ca.bytes(), part.bytes()), (20, 10));
        drop((ca, part, cb));
        assert_eq!(a.available(), 80);
        a.close();
        assert!(a.charge(1).await.is_none());
        assert!(b.charge(80).await.is_some());
    }
}
