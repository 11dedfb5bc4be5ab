//! Places for connections: strangers (not logged in) get a small budget
//! per source address and in total; sessions take theirs only after login.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_proto::{ErrorKind, RemoteError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::Limits;

/// The source a connection is counted under: an IPv4 address, or the
/// network of an IPv6 address (its first `v6_prefix` bits; one host
/// usually holds a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
pub fn source(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6);
                let keep = u32::from(v6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - keep).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        },
    }
}

/// One stranger: its number (in order of arrival) and how to close it.
#[derive(Debug)]
struct Held {
    id: u64,
    close: CancellationToken,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    next_id: u64,
    /// Each source's strangers, oldest first.
    by_source: HashMap<IpAddr, VecDeque<Held>>,
}

impl Counts {
    /// Makes room for one more when the budget is full: closes the oldest
    /// stranger of the source holding most (the oldest of all when each
    /// holds one), unless that is the newcomer's own source. Many
    /// addresses together then cannot keep a newcomer out: it takes the
    /// place of the biggest holder's oldest connection.
    fn evict_for(&mut self, newcomer: IpAddr) -> bool {
        let victim = self
            .by_source
            .iter()
            .filter_map(|(src, held)| Some((*src, held.len(), held.front()?.id)))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)));
        let Some((src, _, _)) = victim else {
            return false;
        };
        if src == newcomer {
            return false;
        }
        let Some(held) = self.by_source.get_mut(&src) else {
            return false;
        };
        let Some(oldest) = held.pop_front() else {
            return false;
        };
        if held.is_empty() {
            self.by_source.remove(&src);
        }
        self.total = self.total.saturating_sub(1);
        oldest.close.cancel();
        true
    }
}

/// The server's places: strangers' and sessions'.
#[derive(Debug)]
pub struct Places {
    per_source: usize,
    total: usize,
    v6_prefix: u8,
    login_timeout: Duration,
    strangers: Arc<Mutex<Counts>>,
    sessions: Arc<Semaphore>,
    max_sessions: usize,
}

impl Places {
    /// Places as the limits say.
    pub fn new(limits: &Limits, v6_prefix: u8) -> Places {
        Places {
            per_source: limits.max_unauthenticated_per_ip,
            total: limits.max_unauthenticated,
            v6_prefix,
            login_timeout: limits.login_timeout(),
            strangers: Arc::default(),
            sessions: Arc::new(Semaphore::new(limits.max_connections)),
            max_sessions: limits.max_connections,
        }
    }

    /// A stranger's place for a new connection from `ip`, with its login
    /// deadline; none if its source has no place left (the connection is
    /// then closed at once). When the server's budget is full, the oldest
    /// stranger of the source holding most is closed (its `close` token
    /// cancelled) to make room, unless that is `ip`'s own source.
    pub fn admit(&self, ip: IpAddr, close: CancellationToken) -> Option<Admission> {
        let src = source(ip, self.v6_prefix);
        let mut counts = self.strangers.lock().unwrap_or_else(|p| p.into_inner());
        let mine = counts.by_source.get(&src).map_or(0, VecDeque::len);
        if mine >= self.per_source {
            return None;
        }
        if counts.total >= self.total && !counts.evict_for(src) {
            return None;
        }
        counts.total += 1;
        counts.next_id += 1;
        let id = counts.next_id;
        counts
            .by_source
            .entry(src)
            .or_default()
            .push_back(Held { id, close });
        Some(Admission {
            deadline: tokio::time::Instant::now() + self.login_timeout,
            stranger: Some(Stranger {
                counts: self.strangers.clone(),
                source: src,
                id,
            }),
            session: None,
            sessions: self.sessions.clone(),
            max_sessions: self.max_sessions,
        })
    }

    /// Strangers now (for tests and logs).
    pub fn strangers(&self) -> usize {
        self.strangers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .total
    }
}

/// A stranger's place; given back when dropped.
#[derive(Debug)]
struct Stranger {
    counts: Arc<Mutex<Counts>>,
    source: IpAddr,
    id: u64,
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(held) = counts.by_source.get_mut(&self.source) else {
            return;
        };
        // Gone already if it was closed to make room.
        let Some(at) = held.iter().position(|h| h.id == self.id) else {
            return;
        };
        held.remove(at);
        if held.is_empty() {
            counts.by_source.remove(&self.source);
        }
        counts.total = counts.total.saturating_sub(1);
    }
}

/// What one connection holds: a stranger's place and its login deadline
/// until it logs in, then a session's place until it ends.
#[derive(Debug)]
pub struct Admission {
    deadline: tokio::time::Instant,
    stranger: Option<Stranger>,
    session: Option<OwnedSemaphorePermit>,
    sessions: Arc<Semaphore>,
    max_sessions: usize,
}

impl Admission {
    /// When TLS, hello and login must all be done.
    pub fn deadline(&self) -> tokio::time::Instant {
        self.deadline
    }

    /// Trades the stranger's place for a session's, after a successful
    /// login; refused as busy when the server has all the sessions it
    /// takes.
    pub fn promote(&mut self) -> Result<(), RemoteError> {
        if self.session.is_none() {
            let permit = self.sessions.clone().try_acquire_owned().map_err(|_| {
                let detail = format!(
                    "the server has its maximum of {} sessions; try again later",
                    self.max_sessions
                );
                RemoteError::new(ErrorKind::TooBusy, detail)
            })?;
            self.session = Some(permit);
        }
        self.stranger = None;
        Ok(())
    }
}

/// Counts connections closed for want of a stranger's place, and says so
/// in the log at most once per interval (a flood must not flood the log).
#[derive(Debug)]
pub struct Refusals {
    count: u64,
    since: Instant,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals {
            count: 0,
            since: Instant::now(),
        }
    }
}

impl Refusals {
    /// How often the log says how many were refused.
    const EVERY: Duration = Duration::from_secs(10);

    /// Records one refusal of a connection from `ip`.
    pub fn refused(&mut self, ip: IpAddr) {
        self.count += 1;
        if self.since.elapsed() >= Self::EVERY {
            tracing::warn!(
                last = %ip,
                refused = self.count,
                "connections closed at accept: over the budget of connections not logged in (limits.max_unauthenticated_per_ip, limits.max_unauthenticated)"
            );
            self.count = 0;
            self.since = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_source: usize, total: usize, sessions: usize) -> Limits {
        Limits {
            max_unauthenticated_per_ip: per_source,
            max_unauthenticated: total,
            max_connections: sessions,
            ..Limits::default()
        }
    }

    #[test]
    fn v6_sources_are_networks() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source(a, 64), source(b, 64));
        assert_ne!(source(a, 64), source(c, 64));
        assert_eq!(source(a, 48), source(c, 48));
        assert_ne!(source(a, 128), source(b, 128));
        assert_eq!(source(a, 0), source(c, 0));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(source(mapped, 64), IpAddr::from([10, 0, 0, 1]));
        let v4: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(source(v4, 64), v4);
    }

    #[tokio::test]
    async fn strangers_are_counted_per_source_and_in_total() {
        let places = Places::new(&limits(2, 3, 1), 64);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let c: IpAddr = [10, 0, 0, 3].into();
        let tokens: Vec<CancellationToken> = (0..6).map(|_| CancellationToken::new()).collect();
        let a1 = places.admit(a, tokens[0].clone()).unwrap();
        let _a2 = places.admit(a, tokens[1].clone()).unwrap();
        assert!(places.admit(a, tokens[5].clone()).is_none(), "per source");
        let mut b1 = places.admit(b, tokens[2].clone()).unwrap();
        // Full: a newcomer takes the place of the biggest holder's oldest.
        let _c1 = places.admit(c, tokens[3].clone()).unwrap();
        assert!(tokens[0].is_cancelled() && !tokens[1].is_cancelled());
        assert_eq!(places.strangers(), 3);
        drop(a1); // its place was given already
        assert_eq!(places.strangers(), 3);
        // Each holds one now: the oldest of all goes...
        let _c2 = places.admit(c, tokens[5].clone()).unwrap();
        assert!(tokens[1].is_cancelled() && !tokens[2].is_cancelled());
        // ...but never for a newcomer of the source holding most.
        assert!(places.admit(c, CancellationToken::new()).is_none());
        // Logging in frees the stranger's place and takes a session's.
        b1.promote().unwrap();
        assert_eq!(places.strangers(), 2);
        let mut b2 = places.admit(b, tokens[4].clone()).unwrap();
        assert_eq!(b2.promote().unwrap_err().kind, ErrorKind::TooBusy);
        drop(b1);
        b2.promote().unwrap();
    }
}
