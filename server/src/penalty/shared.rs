//! Login penalties shared through the store (`store/bans.rs`): a source's
//! (and a network's) failures on every node add up to its ban, its proofs
//! being checked on any node count against it, and a ban is written to the store and taken
//! into every node's table within `auth.ban_sync_ms`, so accepting a
//! connection costs no query. A store that does not answer refuses logins
//! as busy; the node's own table keeps working meanwhile.

use std::time::{Duration, Instant};

use ferry_proto::{ErrorKind, RemoteError};

use super::{in_flight_refusal, Attempt, Name, Penalties, Place};
use crate::store::notify::Topic;
use crate::store::{now_ms, StoreError};

/// A user name's key as the store keeps it.
pub(super) fn hex(key: &Name) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// How often the store's penalty records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Penalties {
    pub(super) fn forget_before(&self, now: i64) -> i64 {
        now.saturating_sub(ms(self.forget_after()))
    }

    fn stale_before(&self, now: i64) -> i64 {
        now.saturating_sub(ms(self.attempt_ttl))
    }

    pub(super) fn unavailable(&self, src: Place, e: &StoreError) -> RemoteError {
        tracing::warn!(target: "audit", addr = %src, error = %e, "login refused: the store of penalties is unavailable");
        e.to_remote()
    }

    /// Whether this node's table has `src` banned now.
    pub(super) fn banned_here(&self, src: Place) -> bool {
        let now = Instant::now();
        let mut table = self.table();
        table.sources.get_mut(&src).is_some_and(|r| r.banned(now))
    }

    /// Bans `src` in this node's table until `until` (Unix ms), unless a
    /// longer ban is there; true if it was not banned here.
    fn ban_here(&self, src: Place, until: i64) -> bool {
        let left = u64::try_from(until.saturating_sub(now_ms())).unwrap_or(0);
        let now = Instant::now();
        let end = now + Duration::from_millis(left);
        let mut table = self.table();
        let rec = table.sources.entry(src).or_default();
        let fresh = !rec.banned(now);
        if rec.banned_until.is_none_or(|u| u < end) {
            rec.banned_until = Some(end);
        }
        fresh
    }

    /// Counts a failure at `src` (a source or a network) against `key` in
    /// the store, `here` failures being counted on this node; bans it (in
    /// the store and here) when its failures on all nodes reach its
    /// threshold. Returns its failures and whether it is banned now.
    pub(super) async fn count_shared(
        &self,
        src: Place,
        key: Name,
        here: u32,
    ) -> Result<(u32, bool), RemoteError> {
        let threshold = self.threshold(src);
        let Some(store) = &self.store else {
            return Ok((here, here >= threshold));
        };
        let now = now_ms();
        let text = src.to_string();
        let forget = self.forget_before(now);
        let until = now.saturating_add(ms(Duration::from_secs(self.cfg.ban_secs)));
        let failures = match store.record_failure(&text, &hex(&key), now, forget).await {
            Ok(n) => n,
            Err(e) => {
                // This node's failures decide alone meanwhile.
                if here >= threshold && self.ban_here(src, until) {
                    tracing::warn!(target: "audit", addr = %src, failures = here, "address banned after failed logins (on this node: the store is unavailable)");
                }
                return Err(self.unavailable(src, &e));
            }
        };
        if failures < threshold {
            return Ok((failures, false));
        }
        if self.ban_here(src, until) {
            tracing::warn!(target: "audit", addr = %src, failures, "address banned after failed logins");
        }
        if let Err(e) = store.ban(&text, until).await {
            // Its failures stay in the store, over the threshold: other
            // nodes check no proof from it either.
            tracing::warn!(addr = %src, error = %e, "cannot write a ban to the store: it holds on this node");
        }
        Ok((failures, true))
    }

    /// The store's part of [`Penalties::begin_after`]: the proof gets a
    /// row, and is refused if its source or network is banned on any node
    /// or its failures and proofs being checked on all nodes reach the
    /// ban.
    pub(super) async fn begin_shared(&self, attempt: &mut Attempt<'_>) -> Result<(), RemoteError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let src = Place::Source(attempt.origin.source);
        let net = attempt.origin.network;
        let now = now_ms();
        let (row, state, net_state) = store
            .begin_attempt(
                &src.to_string(),
                net.map(|n| n.to_string()).as_deref(),
                now,
                self.forget_before(now),
                self.stale_before(now),
            )
            .await
            .map_err(|e| self.unavailable(src, &e))?;
        attempt.row = Some(row);
        let states = std::iter::once((src, state)).chain(net.zip(net_state));
        for (place, state) in states {
            attempt.had_failures |= state.failures > 0;
            if let Some(until) = state.banned_until {
                self.ban_here(place, until);
                return Err(RemoteError::bare(ErrorKind::Banned));
            }
            // A counted try is among its failures already, and this proof
            // among those being checked.
            let before = state.failures.saturating_sub(u32::from(attempt.counted))
                + state.attempts.saturating_sub(1);
            if before >= self.threshold(place) {
                return Err(in_flight_refusal(place));
            }
        }
        Ok(())
    }

    /// The store's part of [`Attempt::failed`]: ends the proof's row and
    /// counts the failures `counted` here (at its source and network);
    /// returns the source's failures on all nodes (None if not known).
    pub(super) async fn failed_shared(
        &self,
        attempt: &mut Attempt<'_>,
        counted: Vec<(Place, u32)>,
    ) -> Option<u32> {
        let store = self.store.as_ref()?;
        // The failure is counted before the proof's row goes, so another
        // node never sees neither.
        let mut failures = None;
        for (place, here) in counted {
            // The login is over either way: a store that does not answer
            // loses this failure (this node's table keeps it).
            let n = self.count_shared(place, attempt.key, here).await.ok();
            if matches!(place, Place::Source(_)) {
                failures = n.map(|(failures, _)| failures);
            }
        }
        if !attempt.user.is_empty() {
            self.user_failed_shared(attempt).await;
        }
        if let Some(row) = attempt.row.take() {
            if let Err(e) = store.end_attempt(&row).await {
                tracing::warn!(error = %e, "cannot end a login's row in the store; it expires");
            }
        }
        failures
    }

    /// The store's part of [`Attempt::succeeded`]: ends the proof's row,
    /// refuses it if the source or its network was banned meanwhile on
    /// any node, and clears its user's failures from both.
    pub(super) async fn succeeded_shared(
        &self,
        attempt: &mut Attempt<'_>,
    ) -> Result<(), RemoteError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let src = Place::Source(attempt.origin.source);
        let text = src.to_string();
        let net = attempt.origin.network.map(|n| n.to_string());
        let net = net.as_deref();
        let now = now_ms();
        let banned = match attempt.row.take() {
            Some(row) => store.end_attempt_banned_until(&row, &text, net, now).await,
            None => store.banned_until(&text, net, now).await,
        };
        match banned {
            Ok(None) => {}
            Ok(Some(until)) => {
                self.ban_here(src, until);
                return Err(RemoteError::bare(ErrorKind::Banned));
            }
            Err(e) => return Err(self.unavailable(src, &e)),
        }
        // (A source with no failures as the proof began has none to
        // clear but any made since, which may stay.)
        if !attempt.user.is_empty() && attempt.had_failures {
            for place in attempt.origin.places() {
                store
                    .clear_failures(&place.to_string(), &hex(&attempt.key))
                    .await
                    .map_err(|e| self.unavailable(src, &e))?;
            }
        }
        if !attempt.user.is_empty() {
            self.known_shared(attempt).await;
        }
        Ok(())
    }

    /// Ends a proof's row in the background (its login was dropped).
    pub(super) fn end_row_later(&self, row: String) {
        let Some(store) = self.store.clone() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.end_attempt(&row).await {
                    tracing::debug!(error = %e, "cannot end a login's row in the store; it expires");
                }
            });
        }
    }

    /// Takes the store's bans into this node's table; returns how many
    /// were new here.
    pub async fn load_bans(&self) -> Result<usize, StoreError> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let mut new = 0;
        for (source, until) in store.bans(now_ms()).await? {
            let Some(src) = Place::parse(&source) else {
                tracing::warn!(source = %crate::logfmt::q(&source), "a ban in the store names no address; ignored");
                continue;
            };
            if self.ban_here(src, until) {
                tracing::info!(addr = %src, "address banned by another node");
                new += 1;
            }
        }
        Ok(new)
    }

    /// Every `every`, takes the store's bans into this node's table, and
    /// every minute deletes the records that no longer count; until the
    /// task is dropped. A store that does not answer is logged (the bans
    /// already here hold).
    pub async fn sync(&self, every: Duration) {
        let Some(store) = &self.store else {
            return;
        };
        let mut pruned = Instant::now();
        loop {
            // A ban announced by another node (PostgreSQL) is taken at once.
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = store.changed(Topic::Bans) => {}
            }
            if let Err(e) = self.load_bans().await {
                tracing::warn!(error = %e, "cannot read the bans from the store");
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = Instant::now();
                let now = now_ms();
                let (forget, stale) = (self.forget_before(now), self.stale_before(now));
                let pruned = match store.prune_logins(now, forget, stale).await {
                    Ok(_) => store.prune_users(now, forget).await.map(drop),
                    Err(e) => Err(e),
                };
                if let Err(e) = pruned {
                    tracing::warn!(error = %e, "cannot prune the store's login records");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::config::AuthConfig;
    use crate::penalty::Turn;
    use crate::store::bans::tests::sqlite;
    use crate::store::Store;

    fn cfg() -> AuthConfig {
        AuthConfig {
            failure_delay_ms: 100,
            max_failure_delay_ms: 350,
            ban_after_failures: 4,
            ban_secs: 60,
            ..AuthConfig::default()
        }
    }

    /// Two nodes on one store.
    fn nodes(store: &Store) -> (Penalties, Penalties) {
        let node = || Penalties::shared(cfg(), store.clone(), Duration::from_secs(10));
        (node(), node())
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    async fn fail(p: &Penalties, ip: IpAddr, user: &str) -> Duration {
        p.begin(ip, user).await.unwrap().failed().await
    }

    /// A login of `user` from `ip` whose proof passes.
    async fn log_in(p: &Penalties, ip: IpAddr, user: &str) {
        p.begin(ip, user).await.unwrap().succeeded().await.unwrap();
    }

    #[tokio::test]
    async fn failures_on_two_nodes_add_up_to_one_ban_on_both() {
        let (store, _dir) = sqlite().await;
        let (a, b) = nodes(&store);
        assert_eq!(fail(&a, IP, "bob").await, Duration::from_millis(100));
        assert_eq!(fail(&b, IP, "bob").await, Duration::from_millis(200));
        fail(&a, IP, "carol").await;
        assert!(a.check(IP).is_ok() && b.check(IP).is_ok());
        fail(&b, IP, "bob").await;
        // Earned on b; a refuses a proof at once (it asks the store)...
        assert_eq!(b.check(IP).unwrap_err().kind, ErrorKind::Banned);
        let refused = a.begin(IP, "bob").await.unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Banned);
        // ...and, having learnt it, a connection as it starts.
        assert_eq!(a.check(IP).unwrap_err().kind, ErrorKind::Banned);
        let other: IpAddr = [10, 0, 0, 2].into();
        assert!(a.check(other).is_ok() && b.check(other).is_ok());
        log_in(&a, other, "bob").await;
    }

    #[tokio::test]
    async fn a_ban_reaches_other_nodes_through_the_sync() {
        let (store, _dir) = sqlite().await;
        let (a, b) = nodes(&store);
        for _ in 0..4 {
            fail(&a, IP, "bob").await;
        }
        assert!(b.check(IP).is_ok());
        assert_eq!(b.load_bans().await.unwrap(), 1);
        assert_eq!(b.check(IP).unwrap_err().kind, ErrorKind::Banned);
        assert_eq!(b.load_bans().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn proofs_in_flight_on_any_node_count() {
        let (store, _dir) = sqlite().await;
        let (a, b) = nodes(&store);
        let held_a = [
            a.begin(IP, "bob").await.unwrap(),
            a.begin(IP, "bob").await.unwrap(),
        ];
        let held_b = [
            b.begin(IP, "bob").await.unwrap(),
            b.begin(IP, "bob").await.unwrap(),
        ];
        assert_eq!(
            a.begin(IP, "bob").await.unwrap_err().kind,
            ErrorKind::TooBusy
        );
        assert_eq!(
            b.begin(IP, "bob").await.unwrap_err().kind,
            ErrorKind::TooBusy
        );
        drop(held_a);
        // Dropped logins end their rows in the background.
        let mut freed = false;
        for _ in 0..100 {
            if let Ok(x) = b.begin(IP, "bob").await {
                x.failed().await;
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(freed);
        let [x, y] = held_b;
        x.succeeded().await.unwrap();
        y.failed().await;
        assert!(a.check(IP).is_ok() && b.check(IP).is_ok());
    }

    #[tokio::test]
    async fn a_login_on_one_node_clears_its_users_failures_on_all() {
        let (store, _dir) = sqlite().await;
        let (a, b) = nodes(&store);
        for _ in 0..3 {
            fail(&a, IP, "alice").await;
        }
        log_in(&b, IP, "alice").await;
        fail(&a, IP, "alice").await;
        fail(&a, IP, "alice").await;
        assert!(a.check(IP).is_ok());
        // Another user's login clears nothing.
        fail(&b, IP, "bob").await;
        log_in(&b, IP, "mallory").await;
        fail(&a, IP, "bob").await;
        assert_eq!(a.check(IP).unwrap_err().kind, ErrorKind::Banned);
    }

    #[tokio::test]
    async fn a_lost_store_refuses_logins_and_keeps_this_nodes_bans() {
        let (store, _dir) = sqlite().await;
        let (a, _b) = nodes(&store);
        for _ in 0..4 {
            fail(&a, IP, "bob").await;
        }
        store.close().await;
        // Banned here: still refused at once, and as banned.
        assert_eq!(a.check(IP).unwrap_err().kind, ErrorKind::Banned);
        assert_eq!(
            a.begin(IP, "bob").await.unwrap_err().kind,
            ErrorKind::Banned
        );
        // Anyone else: busy (nothing is checked without the shared
        // record), never let through unchecked.
        let other: IpAddr = [10, 0, 0, 2].into();
        assert_eq!(
            a.begin(other, "bob").await.unwrap_err().kind,
            ErrorKind::TooBusy
        );
        assert!(a.load_bans().await.is_err());
        assert_eq!(a.check(IP).unwrap_err().kind, ErrorKind::Banned);
    }

    #[tokio::test]
    async fn a_proof_passing_after_a_ban_elsewhere_is_refused() {
        let (store, _dir) = sqlite().await;
        let (a, b) = nodes(&store);
        let pending = a.begin(IP, "bob").await.unwrap();
        for _ in 0..3 {
            fail(&b, IP, "x").await;
        }
        // Three failures and one proof in flight: the fourth is refused
        // unchecked, so ban it through the store directly.
        store.ban(&IP.to_string(), now_ms() + 60_000).await.unwrap();
        assert_eq!(
            pending.succeeded().await.unwrap_err().kind,
            ErrorKind::Banned
        );
        assert_eq!(a.check(IP).unwrap_err().kind, ErrorKind::Banned);
    }

    #[tokio::test]
    async fn failures_from_a_networks_addresses_on_two_nodes_ban_it_on_both() {
        let (store, _dir) = sqlite().await;
        let node = || {
            let cfg = AuthConfig {
                network_ban_after_failures: 6,
                ..cfg()
            };
            Penalties::shared(cfg, store.clone(), Duration::from_secs(10))
        };
        let (a, b) = (node(), node());
        for i in 1..=3u8 {
            fail(&a, [10, 0, 0, i].into(), "bob").await;
            fail(&b, [10, 0, 0, i].into(), "bob").await;
        }
        let fresh: IpAddr = [10, 0, 0, 99].into();
        // Earned over both nodes: a proof from anywhere in the network is
        // refused on either, and the sync carries the ban to the other.
        assert_eq!(b.check(fresh).unwrap_err().kind, ErrorKind::Banned);
        let refused = a.begin(fresh, "alice").await.unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Banned);
        let c = node();
        assert_eq!(c.load_bans().await.unwrap(), 1);
        assert_eq!(c.check(fresh).unwrap_err().kind, ErrorKind::Banned);
        let elsewhere: IpAddr = [10, 0, 1, 1].into();
        assert!(c.check(elsewhere).is_ok());
        log_in(&a, elsewhere, "bob").await;
    }

    #[tokio::test]
    async fn failures_against_a_user_through_two_nodes_space_it_on_both() {
        let (store, _dir) = sqlite().await;
        let node = || {
            let cfg = AuthConfig {
                failure_delay_ms: 1,
                max_failure_delay_ms: 1,
                ban_after_failures: 100,
                user_penalty_after: 4,
                user_delay_ms: 60_000,
                max_user_delay_ms: 60_000,
                ..cfg()
            };
            Penalties::shared(cfg, store.clone(), Duration::from_secs(10))
        };
        let (a, b) = (node(), node());
        // bob logs in from home through b before the attack.
        let home: IpAddr = [10, 0, 9, 9].into();
        log_in(&b, home, "bob").await;
        for i in 1..=2u8 {
            fail(&a, [10, 0, i, 1].into(), "bob").await;
            fail(&b, [10, 0, i, 2].into(), "bob").await;
        }
        // Four failures over two nodes: a new source waits on either
        // (here, past its deadline: refused as busy).
        let soon = Instant::now() + Duration::from_millis(50);
        for p in [&a, &b] {
            let refused = p.turn([10, 0, 5, 5].into(), "bob", soon).await;
            assert_eq!(refused.unwrap_err().kind, ErrorKind::TooBusy);
        }
        // Home, known through b, is not slowed on a; nor is another user.
        assert_eq!(a.turn(home, "bob", soon).await.unwrap(), Turn::Free);
        let other = a.turn([10, 0, 5, 6].into(), "carol", soon).await;
        assert_eq!(other.unwrap(), Turn::Free);
    }
}
