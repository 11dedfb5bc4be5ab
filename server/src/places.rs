//! Places for connections: strangers (not logged in) get a small budget
//! per source address and in total; sessions take theirs only after login.

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_proto::{ErrorKind, RemoteError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::Limits;

mod proxied;

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

/// The group a source is ranked under when room must be made: its IPv4
/// network of `v4_prefix` bits or IPv6 network of `v6_prefix` bits (a /24,
/// a /48: what one party usually holds). IPv4-mapped IPv6 counts as IPv4.
pub fn group(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> IpAddr {
    match source(ip, 128) {
        IpAddr::V4(v4) => {
            let keep = u32::from(v4_prefix.min(32));
            let mask = u32::MAX.checked_shl(32 - keep).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        v6 => source(v6, v6_prefix),
    }
}

/// How far a stranger has got; the less, the sooner it is closed to make
/// room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Accepted; nothing done yet (TLS or the plaintext hello under way).
    Connected,
    /// TLS done, or the hello exchanged.
    Greeted,
    /// The login has started (the client's first SCRAM message came).
    LoggingIn,
}

/// One stranger: its number (in order of arrival), how far it got and how
/// to close it.
#[derive(Debug)]
struct Held {
    id: u64,
    stage: Stage,
    close: CancellationToken,
    evicted: Evicted,
    /// A trusted proxy's connection whose PROXY header is not read yet
    /// (see [`Places::admit_proxied`]).
    pending: bool,
}

/// One source's strangers, oldest first, and the group it is ranked in.
#[derive(Debug)]
struct Source {
    group: IpAddr,
    held: VecDeque<Held>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Strangers, the pending among them too.
    total: usize,
    /// Trusted proxies' connections whose header is not read yet.
    pending: usize,
    next_id: u64,
    by_source: HashMap<IpAddr, Source>,
    /// Strangers per group.
    by_group: HashMap<IpAddr, usize>,
    /// Groups lately closed to make room, and when (the last time each).
    closed: HashMap<IpAddr, Instant>,
    /// The same, in order, to forget them: a group may be listed more than
    /// once (only its entry in `closed` counts).
    closed_order: VecDeque<(Instant, IpAddr)>,
}

impl Counts {
    /// Makes room for one more when the budget is full, closing the
    /// stranger that matters least: one whose login is under way last of
    /// all; before that, one of the group holding most (a /24 of many
    /// addresses ranks as one), then the least advanced, then one of the
    /// source holding most, then the oldest. If that is of the newcomer's
    /// own group or source, the newcomer is refused instead: many
    /// addresses of one network then cannot cycle others' places (each
    /// newcomer of theirs closing someone's handshake), and cannot keep a
    /// newcomer from elsewhere out either.
    ///
    /// A group that had a stranger closed within `cooldown` makes no room
    /// itself: a network that reconnects the moment it is closed (churn)
    /// is refused instead, so it closes others' strangers at most once
    /// per `cooldown` per network, however fast it connects.
    fn evict_for(
        &mut self,
        newcomer: IpAddr,
        newcomer_group: IpAddr,
        cooldown: Duration,
        memory: usize,
    ) -> bool {
        let now = Instant::now();
        self.forget_closed(now, cooldown, memory);
        if self.closed.contains_key(&newcomer_group) {
            return false;
        }
        let by_group = &self.by_group;
        let victim = self
            .by_source
            .iter()
            .filter_map(|(src, s)| {
                let held = s.held.iter().min_by_key(|h| (h.stage, h.id))?;
                let in_group = by_group.get(&s.group).copied().unwrap_or(0);
                let key = (
                    held.stage == Stage::LoggingIn,
                    Reverse(in_group),
                    held.stage,
                    Reverse(s.held.len()),
                    held.id,
                );
                Some((key, *src, s.group, held.id))
            })
            .min_by_key(|v| v.0);
        let Some((_, src, grp, id)) = victim else {
            return false;
        };
        if src == newcomer || grp == newcomer_group {
            return false;
        }
        let Some(held) = self.remove(src, id) else {
            return false;
        };
        held.evicted.0.store(true, Ordering::Relaxed);
        held.close.cancel();
        if !cooldown.is_zero() {
            self.closed.insert(grp, now);
            self.closed_order.push_back((now, grp));
        }
        true
    }

    /// Forgets groups closed longer than `cooldown` ago, and the oldest
    /// beyond `memory` of them (so a flood of networks cannot grow it
    /// without bound).
    fn forget_closed(&mut self, now: Instant, cooldown: Duration, memory: usize) {
        while let Some(&(at, grp)) = self.closed_order.front() {
            let live = self.closed.get(&grp) == Some(&at);
            let expired = now.saturating_duration_since(at) >= cooldown;
            let over = self.closed.len() > memory || self.closed_order.len() > 2 * memory;
            if live && !expired && !over {
                break;
            }
            self.closed_order.pop_front();
            if live {
                self.closed.remove(&grp);
            }
        }
    }

    /// Counts a new stranger of `src` in `grp`; returns its number and
    /// its flag for being closed to make room.
    fn hold(
        &mut self,
        src: IpAddr,
        grp: IpAddr,
        close: CancellationToken,
        pending: bool,
    ) -> (u64, Evicted) {
        self.next_id += 1;
        let id = self.next_id;
        let evicted = Evicted::default();
        let held = Held {
            id,
            stage: Stage::Connected,
            close,
            evicted: evicted.clone(),
            pending,
        };
        self.insert(src, grp, held);
        (id, evicted)
    }

    /// Counts stranger `held` under `src` in `grp`.
    fn insert(&mut self, src: IpAddr, grp: IpAddr, held: Held) {
        self.total += 1;
        if held.pending {
            self.pending += 1;
        }
        let s = self.by_source.entry(src).or_insert_with(|| Source {
            group: grp,
            held: VecDeque::new(),
        });
        *self.by_group.entry(s.group).or_default() += 1;
        // Kept in order of arrival (a moved one may be older than some).
        let at = s
            .held
            .iter()
            .position(|h| h.id > held.id)
            .unwrap_or(s.held.len());
        s.held.insert(at, held);
    }

    /// Takes stranger `id` of `src` out of the counts.
    fn remove(&mut self, src: IpAddr, id: u64) -> Option<Held> {
        let s = self.by_source.get_mut(&src)?;
        let at = s.held.iter().position(|h| h.id == id)?;
        let held = s.held.remove(at)?;
        if held.pending {
            self.pending = self.pending.saturating_sub(1);
        }
        let grp = s.group;
        if s.held.is_empty() {
            self.by_source.remove(&src);
        }
        if let Some(n) = self.by_group.get_mut(&grp) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_group.remove(&grp);
            }
        }
        self.total = self.total.saturating_sub(1);
        Some(held)
    }
}

/// Whether a stranger was closed to make room (then its socket is reset,
/// as a busy server turns a connection away, so the client tries again).
#[derive(Clone, Debug, Default)]
pub struct Evicted(Arc<AtomicBool>);

impl Evicted {
    /// True once the stranger was closed to make room.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The server's places: strangers' and sessions'.
#[derive(Debug)]
pub struct Places {
    per_source: usize,
    total: usize,
    v6_prefix: u8,
    group_v4_prefix: u8,
    group_v6_prefix: u8,
    cooldown: Duration,
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
            group_v4_prefix: limits.unauthenticated_group_ipv4_prefix_len,
            group_v6_prefix: limits.unauthenticated_group_ipv6_prefix_len,
            cooldown: Duration::from_secs(limits.unauthenticated_closed_cooldown_secs),
            login_timeout: limits.login_timeout(),
            strangers: Arc::default(),
            sessions: Arc::new(Semaphore::new(limits.max_connections)),
            max_sessions: limits.max_connections,
        }
    }

    /// A stranger's place for a new connection from `ip`, with its login
    /// deadline; none if its source has no place left (the connection is
    /// then closed at once). When the server's budget is full, the
    /// stranger that matters least is closed (its `close` token
    /// cancelled) to make room, unless it is of `ip`'s own group or
    /// source (see `Counts::evict_for`).
    pub fn admit(&self, ip: IpAddr, close: CancellationToken) -> Option<Admission> {
        let src = source(ip, self.v6_prefix);
        let grp = group(ip, self.group_v4_prefix, self.group_v6_prefix);
        let mut counts = self.strangers.lock().unwrap_or_else(|p| p.into_inner());
        if !self.room(&mut counts, src, grp, 0) {
            return None;
        }
        let (id, evicted) = counts.hold(src, grp, close, false);
        Some(self.admission(src, id, evicted))
    }

    /// Whether a newcomer of `src` in `grp` gets a place, making room if
    /// the budget (less `beside` places not counted against it) is full.
    fn room(&self, counts: &mut Counts, src: IpAddr, grp: IpAddr, beside: usize) -> bool {
        let mine = counts.by_source.get(&src).map_or(0, |s| s.held.len());
        if mine >= self.per_source {
            return false;
        }
        // Groups remembered as closed lately: a few times the budget.
        let memory = self.total.saturating_mul(8).max(4096);
        counts.total.saturating_sub(beside) < self.total
            || counts.evict_for(src, grp, self.cooldown, memory)
    }

    fn admission(&self, src: IpAddr, id: u64, evicted: Evicted) -> Admission {
        Admission {
            deadline: tokio::time::Instant::now() + self.login_timeout,
            evicted,
            stranger: Some(Stranger {
                counts: self.strangers.clone(),
                source: src,
                id,
            }),
            session: None,
            sessions: self.sessions.clone(),
            max_sessions: self.max_sessions,
        }
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
        // Gone already if it was closed to make room.
        let _ = counts.remove(self.source, self.id);
    }
}

/// What one connection holds: a stranger's place and its login deadline
/// until it logs in, then a session's place until it ends.
#[derive(Debug)]
pub struct Admission {
    deadline: tokio::time::Instant,
    evicted: Evicted,
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

    /// Set when the stranger is closed to make room.
    pub fn evicted(&self) -> Evicted {
        self.evicted.clone()
    }

    /// Records how far the stranger has got (it is then closed later, if
    /// at all, to make room).
    pub fn progress(&self, stage: Stage) {
        let Some(st) = &self.stranger else {
            return;
        };
        let mut counts = st.counts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = counts.by_source.get_mut(&st.source) else {
            return;
        };
        if let Some(h) = s.held.iter_mut().find(|h| h.id == st.id) {
            h.stage = h.stage.max(stage);
        }
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

    #[test]
    fn groups_are_networks() {
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 200].into();
        let c: IpAddr = [10, 0, 1, 1].into();
        assert_eq!(group(a, 24, 48), group(b, 24, 48));
        assert_ne!(group(a, 24, 48), group(c, 24, 48));
        assert_ne!(group(a, 32, 48), group(b, 32, 48));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(group(mapped, 24, 48), group(a, 24, 48));
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:ff00::1".parse().unwrap();
        assert_eq!(group(x, 24, 48), group(y, 24, 48));
        assert_ne!(group(x, 24, 56), group(y, 24, 56));
    }

    #[tokio::test]
    async fn strangers_are_counted_per_source_and_in_total() {
        let places = Places::new(&limits(2, 3, 1), 64);
        let a: IpAddr = [10, 0, 1, 1].into();
        let b: IpAddr = [10, 0, 2, 1].into();
        let c: IpAddr = [10, 0, 3, 1].into();
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

    /// Many addresses of one network, each holding one stranger, rank as
    /// one holder: their newcomers are refused rather than closing anyone
    /// else's handshake, and a newcomer from elsewhere closes one of theirs.
    #[tokio::test]
    async fn a_network_of_many_addresses_ranks_as_one() {
        let places = Places::new(&limits(16, 4, 1), 64);
        let user: IpAddr = [192, 0, 2, 1].into();
        let u = CancellationToken::new();
        let user1 = places.admit(user, u.clone()).unwrap();
        let net: Vec<CancellationToken> = (0..3).map(|_| CancellationToken::new()).collect();
        let mut held = Vec::new();
        for (i, t) in net.iter().enumerate() {
            held.push(
                places
                    .admit([10, 9, 9, 1 + i as u8].into(), t.clone())
                    .unwrap(),
            );
        }
        // Full. The user is the oldest, but the network holds most.
        assert!(places
            .admit([10, 9, 9, 50].into(), CancellationToken::new())
            .is_none());
        assert!(!u.is_cancelled() && net.iter().all(|t| !t.is_cancelled()));
        let other = CancellationToken::new();
        let _o = places.admit([198, 51, 100, 1].into(), other).unwrap();
        assert!(net[0].is_cancelled() && !u.is_cancelled());
        drop(user1);
    }

    /// Progress counts: a stranger that got further is closed later; one
    /// whose login is under way, last of all.
    #[tokio::test]
    async fn the_least_advanced_stranger_goes_first() {
        let places = Places::new(&limits(16, 3, 1), 64);
        let t: Vec<CancellationToken> = (0..3).map(|_| CancellationToken::new()).collect();
        let x = places.admit([10, 0, 1, 1].into(), t[0].clone()).unwrap();
        let y = places.admit([10, 0, 2, 1].into(), t[1].clone()).unwrap();
        let _z = places.admit([10, 0, 3, 1].into(), t[2].clone()).unwrap();
        x.progress(Stage::LoggingIn);
        y.progress(Stage::Greeted);
        let _n1 = places
            .admit([10, 0, 4, 1].into(), CancellationToken::new())
            .unwrap();
        assert!(t[2].is_cancelled() && !t[1].is_cancelled() && !t[0].is_cancelled());
        let n2 = places
            .admit([10, 0, 5, 1].into(), CancellationToken::new())
            .unwrap();
        assert!(
            !t[1].is_cancelled() && !t[0].is_cancelled(),
            "newcomers first"
        );
        n2.progress(Stage::LoggingIn);
        let _n3 = places
            .admit([10, 0, 6, 1].into(), CancellationToken::new())
            .unwrap();
        assert!(t[1].is_cancelled() && !t[0].is_cancelled());
    }

    /// A network whose stranger was closed to make room makes no room
    /// itself for a while: churn is refused, not cycled.
    #[tokio::test]
    async fn a_network_closed_lately_makes_no_room() {
        let places = Places::new(&limits(16, 2, 1), 64);
        let t: Vec<CancellationToken> = (0..2).map(|_| CancellationToken::new()).collect();
        let _x = places.admit([10, 0, 1, 1].into(), t[0].clone()).unwrap();
        let _y = places.admit([10, 0, 2, 1].into(), t[1].clone()).unwrap();
        // 10.0.3.0/24 makes room: x goes...
        let _z = places
            .admit([10, 0, 3, 1].into(), CancellationToken::new())
            .unwrap();
        assert!(t[0].is_cancelled());
        // ...and x's network, reconnecting at once, is refused.
        assert!(places
            .admit([10, 0, 1, 2].into(), CancellationToken::new())
            .is_none());
        assert!(!t[1].is_cancelled());
        // Another network still gets in.
        assert!(places
            .admit([10, 0, 4, 1].into(), CancellationToken::new())
            .is_some());
        assert!(t[1].is_cancelled());
    }
}

#[cfg(test)]
mod proxied_tests;
