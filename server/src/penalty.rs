//! Failed-login penalties, per source and per user (the policy is in
//! ARCHITECTURE.md, "Login penalties"): each failure from a source doubles
//! the delay before its answer and enough of them ban it for a while;
//! failures against one user from anywhere space out that user's logins
//! from sources it has not logged in from. A source's failures count
//! for its network too, which enough of them from its addresses together
//! ban. Failures, proofs being checked and bans of sources and networks
//! are shared through the store with every node (`penalty/shared.rs`);
//! each node keeps its own table too, for the checks that must not cost a
//! query.

mod shared;
mod spacing;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_proto::{ErrorKind, RemoteError};

use crate::config::AuthConfig;
use crate::logfmt::q;
use crate::places::{group, source};
use crate::store::Store;

/// User names a source's record keeps apart; failures against further
/// names are counted together (and no login clears them).
const NAMES_PER_SOURCE: usize = 16;
/// User records kept at most (see [`Table::user`]).
const MAX_USERS: usize = 4096;
/// Sources a user's record remembers logging in from.
const KNOWN_PER_USER: usize = 8;

/// A user name as the tables keep it: a hash, so a name's length (a
/// client may send a megabyte) costs nothing here.
type Name = [u8; 16];

fn name_key(user: &str) -> Name {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(user.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Where failures are counted and bans hold: a source (an address, or an
/// IPv6 network of `auth.ipv6_prefix_len` bits), or the wider network it
/// belongs to (`auth.network_ban_after_failures`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Place {
    Source(IpAddr),
    Network(IpAddr, u8),
}

impl Place {
    /// Its text in the store and the log: an address, or a network in
    /// CIDR notation (so the two never meet).
    fn parse(text: &str) -> Option<Place> {
        match text.split_once('/') {
            None => text.parse().ok().map(Place::Source),
            Some((ip, len)) => Some(Place::Network(ip.parse().ok()?, len.parse().ok()?)),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Source(ip) => write!(f, "{ip}"),
            Place::Network(ip, len) => write!(f, "{ip}/{len}"),
        }
    }
}

/// A login's source and, if networks count, its network.
#[derive(Clone, Copy, Debug)]
struct Origin {
    source: IpAddr,
    network: Option<Place>,
}

impl Origin {
    fn places(self) -> impl Iterator<Item = Place> {
        std::iter::once(Place::Source(self.source)).chain(self.network)
    }
}

#[derive(Debug, Default)]
struct SourceRec {
    /// Failures by the user name tried ("" for a wrong access key).
    by_user: HashMap<Name, u32>,
    /// Failures against names beyond [`NAMES_PER_SOURCE`].
    other: u32,
    /// Proofs being checked now; each counts as a failure until it passes.
    in_flight: u32,
    last: Option<Instant>,
    banned_until: Option<Instant>,
}

impl SourceRec {
    fn failures(&self) -> u32 {
        self.by_user.values().sum::<u32>() + self.other
    }

    fn banned(&mut self, now: Instant) -> bool {
        match self.banned_until {
            Some(until) if until > now => true,
            Some(_) => {
                // The ban is over: start again from nothing.
                self.banned_until = None;
                self.by_user.clear();
                self.other = 0;
                false
            }
            None => false,
        }
    }
}

#[derive(Debug)]
struct UserRec {
    failures: u32,
    last: Instant,
    /// The earliest time a login from a source not in `known` is checked.
    next_slot: Instant,
    /// Sources this user logged in from, most recent last.
    known: VecDeque<IpAddr>,
}

#[derive(Debug, Default)]
struct Table {
    /// Sources and networks.
    sources: HashMap<Place, SourceRec>,
    users: HashMap<Name, UserRec>,
}

impl Table {
    /// A user's record, made if there is room. Records of users with known
    /// sources or a penalty are kept before others; with no room left a
    /// new name goes untracked rather than evicting them.
    fn user(&mut self, name: Name, now: Instant, penalized: u32) -> Option<&mut UserRec> {
        if !self.users.contains_key(&name) {
            if self.users.len() >= MAX_USERS {
                self.users
                    .retain(|_, u| !u.known.is_empty() || u.failures >= penalized);
            }
            if self.users.len() >= MAX_USERS {
                return None;
            }
            self.users.insert(
                name,
                UserRec {
                    failures: 0,
                    last: now,
                    next_slot: now,
                    known: VecDeque::new(),
                },
            );
        }
        self.users.get_mut(&name)
    }
}

/// The penalty table.
#[derive(Debug)]
pub struct Penalties {
    cfg: AuthConfig,
    table: Mutex<Table>,
    /// Shared with the other nodes; None: this process alone.
    store: Option<Store>,
    /// How long a proof's row in the store counts at most.
    attempt_ttl: Duration,
}

impl Penalties {
    /// A table with the given settings.
    pub fn new(cfg: AuthConfig) -> Penalties {
        Penalties {
            cfg,
            table: Mutex::new(Table::default()),
            store: None,
            attempt_ttl: Duration::ZERO,
        }
    }

    /// A table whose sources' failures, proofs and bans are shared with
    /// the other nodes through `store`; a proof's row counts for
    /// `attempt_ttl` at most (the login deadline), should its node die.
    pub fn shared(cfg: AuthConfig, store: Store, attempt_ttl: Duration) -> Penalties {
        Penalties {
            store: Some(store),
            attempt_ttl,
            ..Penalties::new(cfg)
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn source(&self, ip: IpAddr) -> IpAddr {
        source(ip, self.cfg.ipv6_prefix_len)
    }

    /// The source of `ip` and the network it counts in, if networks count
    /// and the network is wider than the source.
    fn origin(&self, ip: IpAddr) -> Origin {
        let cfg = &self.cfg;
        let source = self.source(ip);
        let (v4, v6) = (cfg.ipv4_network_prefix_len, cfg.ipv6_network_prefix_len);
        let (len, wider) = match source {
            IpAddr::V4(_) => (v4, v4 < 32),
            IpAddr::V6(_) => (v6, v6 < cfg.ipv6_prefix_len),
        };
        let network = (cfg.network_ban_after_failures > 0 && wider)
            .then(|| Place::Network(group(source, v4, v6), len));
        Origin { source, network }
    }

    /// Failures (and proofs in flight) at which `place` is banned.
    fn threshold(&self, place: Place) -> u32 {
        match place {
            Place::Source(_) => self.cfg.ban_after_failures,
            Place::Network(..) => self
                .cfg
                .network_ban_after_failures
                .max(self.cfg.ban_after_failures),
        }
    }

    fn forget_after(&self) -> Duration {
        Duration::from_secs(self.cfg.forget_after_secs)
    }

    /// Refuses a banned source, or one of a banned network (checked as
    /// its connection starts, from this node's table, which holds the
    /// store's bans as of its last look: no query).
    pub fn check(&self, ip: IpAddr) -> Result<(), RemoteError> {
        let now = Instant::now();
        let mut table = self.table();
        let banned = self.origin(ip).places().any(|place| {
            table
                .sources
                .get_mut(&place)
                .is_some_and(|rec| rec.banned(now))
        });
        if banned {
            return Err(RemoteError::bare(ErrorKind::Banned));
        }
        Ok(())
    }

    /// Waits for `user`'s turn: after repeated failures against a user,
    /// logins as that user from sources it has not logged in from are
    /// checked one per delay (a delay that grows with the failures, up to
    /// `max_user_delay_ms`). Only a source with no failures against this
    /// user may wait for a turn to come (until `deadline`); any other gets
    /// one only if it is free now, so an attacker's repeated tries cannot
    /// book the turns ahead of the real user. A try that has to take a
    /// turn counts as a failure of its source from now on (the proof, if
    /// it passes, clears it; if it fails, it is not counted twice), so a
    /// source refused here is banned like one that guessed.
    pub async fn turn(
        &self,
        ip: IpAddr,
        user: &str,
        deadline: Instant,
    ) -> Result<Turn, RemoteError> {
        let origin = self.origin(ip);
        let key = name_key(user);
        // With a store, the failures, turns and known sources of the user
        // on every node decide.
        let booked = match self.store {
            Some(_) => self.book_shared(origin, key, deadline).await?,
            None => self.book_here(origin, key, deadline),
        };
        let Some((granted, wait)) = booked else {
            return Ok(Turn::Free);
        };
        let counted: Vec<_> = {
            let now = Instant::now();
            let mut table = self.table();
            origin
                .places()
                .map(|place| (place, self.count_failure(&mut table, place, key, now)))
                .collect()
        };
        // Counted in the store too: the try counts on every node.
        let mut banned = false;
        for (place, counted) in counted {
            banned |= match counted {
                None => true,
                Some(failures) => self.count_shared(place, key, failures).await?.1,
            };
        }
        if banned {
            return Err(RemoteError::bare(ErrorKind::Banned));
        }
        if !granted {
            let detail = "too many failed logins as this user lately: try again later";
            return Err(RemoteError::new(ErrorKind::TooBusy, detail));
        }
        tokio::time::sleep(wait).await;
        Ok(Turn::Counted)
    }

    /// [`Penalties::turn`]'s booking in this node's table: None if logins
    /// as `key` from this source are not spaced now, else whether a turn
    /// was granted and how long until it comes.
    fn book_here(&self, origin: Origin, key: Name, deadline: Instant) -> Option<(bool, Duration)> {
        let now = Instant::now();
        let src = origin.source;
        let forget = self.forget_after();
        let penalized = self.cfg.user_penalty_after;
        let mut table = self.table();
        let rec = table.users.get_mut(&key)?;
        if now.duration_since(rec.last) >= forget {
            rec.failures = 0;
        }
        if rec.failures < penalized || rec.known.contains(&src) {
            return None;
        }
        let slot = rec.next_slot.max(now);
        let delay = self.user_delay(rec.failures);
        let fresh = table
            .sources
            .get(&Place::Source(src))
            .is_none_or(|s| s.other == 0 && !s.by_user.contains_key(&key));
        let granted = slot <= now || (fresh && slot <= deadline);
        if granted {
            if let Some(rec) = table.users.get_mut(&key) {
                rec.next_slot = slot + delay;
            }
        }
        Some((granted, slot - now))
    }

    /// Counts a failure at `place` (a source or a network) against the
    /// user `key` in this node's table, banning it at its threshold if
    /// there is no store (with one, the failures on all nodes decide:
    /// `count_shared`); returns its failures now, or None if it was banned
    /// already (nothing counted).
    fn count_failure(
        &self,
        table: &mut Table,
        place: Place,
        key: Name,
        now: Instant,
    ) -> Option<u32> {
        let cfg = &self.cfg;
        let forget = self.forget_after();
        // Forget stale records so the table cannot grow without bound.
        table.sources.retain(|_, r| {
            r.in_flight > 0
                || r.banned_until.is_some_and(|u| u > now)
                || r.last.is_some_and(|l| now.duration_since(l) < forget)
        });
        let rec = table.sources.entry(place).or_default();
        if rec.banned(now) {
            return None;
        }
        if rec.by_user.contains_key(&key) || rec.by_user.len() < NAMES_PER_SOURCE {
            *rec.by_user.entry(key).or_insert(0) += 1;
        } else {
            rec.other += 1;
        }
        rec.last = Some(now);
        let failures = rec.failures();
        if failures >= self.threshold(place) && rec.banned_until.is_none() && self.store.is_none() {
            rec.banned_until = Some(now + Duration::from_secs(cfg.ban_secs));
            tracing::warn!(target: "audit", addr = %place, failures, "address banned after failed logins");
        }
        Some(failures)
    }

    fn user_delay(&self, failures: u32) -> Duration {
        let over = failures.saturating_sub(self.cfg.user_penalty_after).min(20);
        let ms = self.cfg.user_delay_ms.saturating_mul(1 << over);
        Duration::from_millis(ms.min(self.cfg.max_user_delay_ms))
    }

    /// Starts checking a proof (an access key, or a password for `user`)
    /// from `ip`: refused if the source is banned, or if its failures and
    /// the proofs in flight already reach the ban threshold (so parallel
    /// connections cannot have more guesses checked than one would).
    pub async fn begin(&self, ip: IpAddr, user: &str) -> Result<Attempt<'_>, RemoteError> {
        self.begin_after(ip, user, Turn::Free).await
    }

    /// [`Penalties::begin`] after [`Penalties::turn`]: a try whose turn
    /// already counts as a failure of its source is not counted again.
    /// With a store, the same is checked over every node (the proof has
    /// a row there while it is checked); a store that does not answer
    /// refuses the login as busy.
    pub async fn begin_after(
        &self,
        ip: IpAddr,
        user: &str,
        turn: Turn,
    ) -> Result<Attempt<'_>, RemoteError> {
        let mut attempt = self.begin_here(ip, user, turn)?;
        self.begin_shared(&mut attempt).await?;
        Ok(attempt)
    }

    /// [`Penalties::begin_after`] in this node's table.
    fn begin_here(&self, ip: IpAddr, user: &str, turn: Turn) -> Result<Attempt<'_>, RemoteError> {
        let origin = self.origin(ip);
        let now = Instant::now();
        let counted = turn == Turn::Counted;
        let mut table = self.table();
        for place in origin.places() {
            let rec = table.sources.entry(place).or_default();
            if rec.banned(now) {
                return Err(RemoteError::bare(ErrorKind::Banned));
            }
            // A counted try is among its source's failures already. (With
            // a store, those on all nodes are checked there.)
            let before = rec.failures().saturating_sub(u32::from(counted));
            if self.store.is_none() && before + rec.in_flight >= self.threshold(place) {
                return Err(in_flight_refusal(place));
            }
        }
        for place in origin.places() {
            table.sources.entry(place).or_default().in_flight += 1;
        }
        Ok(Attempt {
            penalties: self,
            origin,
            user: user.to_string(),
            key: name_key(user),
            counted,
            done: false,
            row: None,
            had_failures: false,
        })
    }

    fn end(&self, table: &mut Table, origin: Origin) {
        for place in origin.places() {
            if let Some(rec) = table.sources.get_mut(&place) {
                rec.in_flight = rec.in_flight.saturating_sub(1);
            }
        }
    }
}

/// The refusal of a proof beyond the failures and proofs in flight that
/// `place` may have.
fn in_flight_refusal(place: Place) -> RemoteError {
    let detail = match place {
        Place::Source(_) => "too many logins in flight from this address: try again later",
        Place::Network(..) => "too many logins in flight from this network: try again later",
    };
    RemoteError::new(ErrorKind::TooBusy, detail)
}

/// A proof being checked; it counts as a failure of its source until it
/// ends. Dropped without a verdict (the client left), it counts no more.
#[derive(Debug)]
pub struct Attempt<'a> {
    penalties: &'a Penalties,
    origin: Origin,
    /// The user name tried ("" for an access key), for the log.
    user: String,
    key: Name,
    /// Already counted as a failure of its source by its turn.
    counted: bool,
    done: bool,
    /// Its row in the store, while it has one.
    row: Option<String>,
    /// Its source or network had failures in the store as it began.
    had_failures: bool,
}

/// How a login got its turn (see [`Penalties::turn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// No spacing applied: the try is counted only if it fails.
    Free,
    /// The try took a spaced turn and counts as a failure of its source
    /// until its proof passes.
    Counted,
}

impl Attempt<'_> {
    /// Records the failure (here and in the store, where a store that
    /// does not answer loses it: the login is over either way); returns
    /// how long to wait before answering.
    pub async fn failed(mut self) -> Duration {
        self.done = true;
        let p = self.penalties;
        let (counted, here) = self.failed_here();
        // The failures on all nodes, or this node's if the store did not
        // answer.
        let failures = p.failed_shared(&mut self, counted).await.unwrap_or(here);
        let cfg = &p.cfg;
        let shift = failures.saturating_sub(1).min(20);
        let delay = cfg.failure_delay_ms.saturating_mul(1 << shift);
        Duration::from_millis(delay.min(cfg.max_failure_delay_ms))
    }

    /// [`Attempt::failed`] in this node's table: the failures counted
    /// now at each place (none if counted already), and the source's
    /// failures.
    fn failed_here(&self) -> (Vec<(Place, u32)>, u32) {
        let p = self.penalties;
        let cfg = &p.cfg;
        let now = Instant::now();
        let forget = p.forget_after();
        let mut table = p.table();
        p.end(&mut table, self.origin);
        let counted = match self.counted {
            false => self
                .origin
                .places()
                .filter_map(|place| {
                    let n = p.count_failure(&mut table, place, self.key, now)?;
                    Some((place, n))
                })
                .collect(),
            true => Vec::new(),
        };
        let failures = table
            .sources
            .get(&Place::Source(self.origin.source))
            .map_or(1, SourceRec::failures);
        // (With a store, the user's record is the store's.)
        if !self.user.is_empty() && p.store.is_none() {
            let penalized = cfg.user_penalty_after;
            let spacing = |n| p.user_delay(n);
            if let Some(u) = table.user(self.key, now, penalized) {
                if now.duration_since(u.last) >= forget {
                    u.failures = 0;
                }
                u.failures += 1;
                u.last = now;
                if u.failures >= penalized {
                    if u.failures == penalized {
                        tracing::warn!(target: "audit", user = %q(&self.user), failures = u.failures, "repeated failed logins as this user: its logins from new addresses are spaced out");
                    }
                    u.next_slot = u.next_slot.max(now + spacing(u.failures));
                }
            }
        }
        (counted, failures)
    }

    /// Ends the check of a proof that passed. Refused if the source or
    /// its network was banned meanwhile (the verdict must not leak past a
    /// ban). Clears only this user's own failures from this source and
    /// network (a right access key clears nothing: it is shared). With a
    /// store, a ban from any node refuses it, and a store that does not
    /// answer refuses it as busy.
    pub async fn succeeded(mut self) -> Result<(), RemoteError> {
        let p = self.penalties;
        // Refused early, it ends on drop.
        if self.origin.places().any(|place| p.banned_here(place)) {
            return Err(RemoteError::bare(ErrorKind::Banned));
        }
        p.succeeded_shared(&mut self).await?;
        self.done = true;
        let now = Instant::now();
        let mut table = p.table();
        p.end(&mut table, self.origin);
        for place in self.origin.places() {
            if let Some(rec) = table.sources.get_mut(&place) {
                if rec.banned(now) {
                    return Err(RemoteError::bare(ErrorKind::Banned));
                }
                if !self.user.is_empty() {
                    rec.by_user.remove(&self.key);
                }
                if rec.failures() == 0 && rec.in_flight == 0 {
                    // Nothing to remember of this place.
                    table.sources.remove(&place);
                }
            }
        }
        let src = self.origin.source;
        if !self.user.is_empty() && p.store.is_none() {
            let penalized = p.cfg.user_penalty_after;
            if let Some(u) = table.user(self.key, now, penalized) {
                u.known.retain(|s| *s != src);
                u.known.push_back(src);
                if u.known.len() > KNOWN_PER_USER {
                    u.known.pop_front();
                }
            }
        }
        Ok(())
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut table = self.penalties.table();
            self.penalties.end(&mut table, self.origin);
        }
        if let Some(row) = self.row.take() {
            self.penalties.end_row_later(row);
        }
    }
}

#[cfg(test)]
mod tests;
