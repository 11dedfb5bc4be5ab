//! Waiting out a busy server: bounded, jittered retries when the server
//! answers `TooBusy`, and only then.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use ferry_proto::ErrorKind;

use super::error::{ClientError, Result};

/// The first wait after a busy answer; each next one doubles.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest single wait.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// How long the batch CLI keeps trying by default (`--busy-timeout`).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// One wait before another try, as told to [`BusyRetry::notify`].
#[derive(Clone, Debug)]
pub struct BusyWait {
    /// The try that comes after this wait (2 for the first retry).
    pub attempt: u32,
    /// How long until then.
    pub delay: Duration,
    /// Why, as the server said it (escaped for display; may be empty).
    pub reason: String,
}

/// Called before each wait, e.g. to show "server busy, retrying in 1.2 s".
pub type BusyNotify = Arc<dyn Fn(&BusyWait) + Send + Sync>;

/// What to do when the server says it is busy (too many connections, too
/// many sessions of this user, too many requests): wait and try again,
/// with exponential backoff from [`FIRST_DELAY`] to [`MAX_DELAY`] and
/// random jitter (so many clients refused together do not come back
/// together), until `timeout` has passed since the first refusal. Any
/// other error (wrong password, ban, refused certificate) fails at once.
/// The default (`timeout` zero) does not retry.
#[derive(Clone, Default)]
pub struct BusyRetry {
    /// How long to keep trying; zero fails at the first busy answer.
    pub timeout: Duration,
    /// Told before each wait.
    pub notify: Option<BusyNotify>,
}

impl fmt::Debug for BusyRetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusyRetry")
            .field("timeout", &self.timeout)
            .field("notify", &self.notify.is_some())
            .finish()
    }
}

impl BusyRetry {
    /// Retry for up to `timeout`.
    pub fn for_up_to(timeout: Duration) -> BusyRetry {
        BusyRetry {
            timeout,
            notify: None,
        }
    }

    /// Runs `attempt` until it succeeds, fails with anything but busy, or
    /// the time is up (then the last busy error is returned).
    pub(crate) async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = Backoff::new(self.timeout);
        loop {
            match attempt().await {
                Err(e) if is_busy(&e) => {
                    let Some(delay) = backoff.next() else {
                        return Err(e);
                    };
                    if let Some(notify) = &self.notify {
                        notify(&BusyWait {
                            attempt: backoff.tries + 1,
                            delay,
                            reason: reason(&e),
                        });
                    }
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }
}

/// The server's detail of a busy refusal, escaped ("alice already has
/// 16 sessions").
fn reason(e: &ClientError) -> String {
    match e {
        ClientError::Refused(r) | ClientError::Remote(r) => {
            crate::display::escape(&r.detail).into_owned()
        }
        other => other.to_string(),
    }
}

/// True when the server refused for now, not for good: the one error
/// worth retrying.
pub fn is_busy(e: &ClientError) -> bool {
    e.kind() == Some(ErrorKind::TooBusy)
}

/// The waits between tries.
struct Backoff {
    started: Instant,
    timeout: Duration,
    /// Tries made so far.
    tries: u32,
}

impl Backoff {
    fn new(timeout: Duration) -> Backoff {
        Backoff {
            started: Instant::now(),
            timeout,
            tries: 0,
        }
    }

    /// The wait before the next try, or None when the time is up.
    fn next(&mut self) -> Option<Duration> {
        self.tries += 1;
        let left = self.timeout.checked_sub(self.started.elapsed())?;
        if left.is_zero() {
            return None;
        }
        let ceiling = delay_ceiling(self.tries);
        // "Equal jitter": half the ceiling, plus up to half at random.
        let half = ceiling / 2;
        let jitter = half.mul_f64(random_fraction());
        Some((half + jitter).min(left))
    }
}

/// The longest wait after `tries` busy answers: 100 ms, 200 ms, ... 5 s.
fn delay_ceiling(tries: u32) -> Duration {
    let doublings = tries.saturating_sub(1).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// A number in [0, 1) from the system's randomness (0.5 without it).
fn random_fraction() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::getrandom(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::RemoteError;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn busy() -> ClientError {
        ClientError::Refused(RemoteError::new(
            ErrorKind::TooBusy,
            "alice already has 2 sessions",
        ))
    }

    #[test]
    fn waits_grow_to_the_cap_with_jitter() {
        assert_eq!(delay_ceiling(1), Duration::from_millis(100));
        assert_eq!(delay_ceiling(2), Duration::from_millis(200));
        assert_eq!(delay_ceiling(6), Duration::from_millis(3200));
        assert_eq!(delay_ceiling(7), MAX_DELAY);
        assert_eq!(delay_ceiling(1000), MAX_DELAY);
        let mut b = Backoff::new(Duration::from_secs(3600));
        for tries in 1..20 {
            let d = b.next().unwrap();
            let ceiling = delay_ceiling(tries);
            assert!(d >= ceiling / 2 && d <= ceiling, "{tries}: {d:?}");
        }
    }

    #[test]
    fn zero_timeout_never_waits() {
        assert!(Backoff::new(Duration::ZERO).next().is_none());
    }

    #[tokio::test]
    async fn retries_busy_until_it_clears() {
        let tries = AtomicU32::new(0);
        let seen = Arc::new(AtomicU32::new(0));
        let notified = seen.clone();
        let policy = BusyRetry {
            timeout: Duration::from_secs(60),
            notify: Some(Arc::new(move |w: &BusyWait| {
                assert!(w.reason.contains("2 sessions"));
                notified.store(w.attempt, Ordering::SeqCst);
            })),
        };
        let got = policy
            .run(|| async {
                if tries.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(busy())
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(got.unwrap(), 7);
        assert_eq!(tries.load(Ordering::SeqCst), 4);
        assert_eq!(seen.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_connection_turned_away_is_busy() {
        let e = ClientError::TurnedAway {
            server: "h:1".into(),
        };
        assert!(is_busy(&e));
        assert!(reason(&e).contains("turned the connection away"));
    }

    #[tokio::test]
    async fn gives_up_after_the_timeout() {
        let start = tokio::time::Instant::now();
        let tries = AtomicU32::new(0);
        let policy = BusyRetry::for_up_to(Duration::from_secs(1));
        let got: Result<()> = policy
            .run(|| async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(busy())
            })
            .await;
        assert!(is_busy(&got.unwrap_err()));
        assert!(start.elapsed() >= Duration::from_secs(1));
        // Waits of 50-100, 100-200, 200-400, 400-800 ms: a handful of
        // tries, not a storm.
        let n = tries.load(Ordering::SeqCst);
        assert!((3..=7).contains(&n), "{n} tries");
    }

    #[tokio::test]
    async fn other_errors_fail_at_once() {
        for kind in [
            ErrorKind::AuthFailed,
            ErrorKind::Banned,
            ErrorKind::AccessDenied,
        ] {
            let tries = AtomicU32::new(0);
            let got: Result<()> = BusyRetry::for_up_to(Duration::from_secs(60))
                .run(|| async {
                    tries.fetch_add(1, Ordering::SeqCst);
                    Err(ClientError::Refused(RemoteError::bare(kind)))
                })
                .await;
            assert_eq!(got.unwrap_err().kind(), Some(kind));
            assert_eq!(tries.load(Ordering::SeqCst), 1);
        }
        let tries = AtomicU32::new(0);
        let got: Result<()> = BusyRetry::for_up_to(Duration::from_secs(60))
            .run(|| async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(ClientError::Tls("certificate refused".into()))
            })
            .await;
        assert!(got.is_err());
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
