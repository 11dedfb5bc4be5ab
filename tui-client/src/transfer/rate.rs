//! A bandwidth limit shared by transfers: a token bucket kept as a virtual
//! clock, whose rate can change (or be lifted) while transfers wait on it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The limiter's arithmetic, apart from any clock: each reservation of
/// bytes gets the instant it may go, one after another on a virtual
/// timeline that never lags behind "now", so an idle spell saves up no
/// credit and the most that ever goes early is one reservation (a chunk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pace {
    /// Bytes per second; 0 is unlimited.
    rate: u64,
    /// When the next reservation may start, if any was made.
    next: Option<Instant>,
}

impl Pace {
    /// A pace of `rate` bytes per second (0: unlimited).
    pub fn new(rate: u64) -> Pace {
        Pace { rate, next: None }
    }

    /// Bytes per second; 0 is unlimited.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Reserves `bytes` asked for at `now`: the instant they may go, or
    /// `None` when unlimited.
    pub fn reserve(&mut self, bytes: u64, now: Instant) -> Option<Instant> {
        if self.rate == 0 {
            return None;
        }
        let start = self.next.map_or(now, |n| n.max(now));
        let cost = Duration::from_secs_f64(bytes as f64 / self.rate as f64);
        self.next = Some(start + cost);
        Some(start)
    }

    /// A new rate: what was reserved at the old one is forgotten (the
    /// waiters reserve again).
    pub fn set_rate(&mut self, rate: u64) {
        self.rate = rate;
        self.next = None;
    }
}

/// A rate limit shared by all transfers that hold a clone of it.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pace: Mutex<Pace>,
    /// Wakes the waiters when the rate changes.
    changed: Notify,
}

impl RateLimiter {
    /// A limit of `rate` bytes per second; 0 is unlimited.
    pub fn new(rate: u64) -> RateLimiter {
        RateLimiter {
            inner: Arc::new(Inner {
                pace: Mutex::new(Pace::new(rate)),
                changed: Notify::new(),
            }),
        }
    }

    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.inner.pace.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes per second; 0 is unlimited.
    pub fn rate(&self) -> u64 {
        self.pace().rate()
    }

    /// Changes the rate now: transfers waiting at the old rate reserve
    /// again at the new one (0 lets them all go).
    pub fn set_rate(&self, rate: u64) {
        {
            let mut pace = self.pace();
            if pace.rate() == rate {
                return;
            }
            pace.set_rate(rate);
        }
        self.inner.changed.notify_waiters();
    }

    /// Waits until `bytes` more may be sent (asleep, not polling).
    pub async fn take(&self, bytes: u64) {
        loop {
            // Listening before reserving, so a change in between is seen.
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let Some(start) = self.pace().reserve(bytes, Instant::now()) else {
                return;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(start.into()) => return,
                _ = changed => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: u64 = 256 * 1024;

    #[test]
    fn reservations_follow_each_other_at_the_rate() {
        let t0 = Instant::now();
        let mut p = Pace::new(1 << 20); // 1 MiB/s: a chunk each 250 ms
        assert_eq!(p.reserve(CHUNK, t0), Some(t0));
        assert_eq!(p.reserve(CHUNK, t0), Some(t0 + Duration::from_millis(250)));
        assert_eq!(p.reserve(CHUNK, t0), Some(t0 + Duration::from_millis(500)));
        // Asked later than its turn: it goes when asked.
        let late = t0 + Duration::from_secs(2);
        assert_eq!(p.reserve(CHUNK, late), Some(late));
    }

    #[test]
    fn idle_time_saves_up_no_burst() {
        let t0 = Instant::now();
        let mut p = Pace::new(1 << 20);
        p.reserve(CHUNK, t0);
        // Ten idle seconds later, only the first chunk goes at once.
        let t = t0 + Duration::from_secs(10);
        let starts: Vec<_> = (0..8).map(|_| p.reserve(CHUNK, t)).collect();
        for (i, s) in starts.iter().enumerate() {
            assert_eq!(*s, Some(t + Duration::from_millis(250 * i as u64)));
        }
        // Over any window, at most one chunk more than the rate allows.
        let window = Duration::from_secs(1);
        let sent = starts.iter().flatten().filter(|s| **s < t + window).count() as u64;
        assert!(sent * CHUNK <= (1 << 20) + CHUNK, "{sent} chunks in 1 s");
    }

    #[test]
    fn zero_is_unlimited_and_a_new_rate_forgets_the_old_debt() {
        let t0 = Instant::now();
        let mut p = Pace::new(0);
        assert_eq!(p.reserve(u64::MAX, t0), None);
        p.set_rate(1);
        p.reserve(1_000_000, t0); // 11 days of debt at 1 B/s
        p.set_rate(1 << 20);
        assert_eq!(p.reserve(CHUNK, t0), Some(t0));
        assert_eq!(p.reserve(CHUNK, t0), Some(t0 + Duration::from_millis(250)));
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_the_limit_is_lifted() {
        let l = RateLimiter::new(1);
        l.take(1_000_000).await; // goes at once, and books 11 days
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.take(1).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        l.set_rate(0);
        let woke = tokio::time::timeout(Duration::from_secs(10), waiter).await;
        assert!(woke.is_ok(), "the waiter slept on at the old rate");
    }
}
