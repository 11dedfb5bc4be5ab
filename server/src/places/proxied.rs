//! Places of connections through a trusted load balancer: counted under
//! the balancer until their PROXY header names the client, then under it.

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::{group, source, Admission, Places};

impl Places {
    /// A stranger's place for a connection from the trusted proxy `proxy`,
    /// until its PROXY header says whose it is ([`Places::carried`]). The
    /// client is not known yet, so nobody is closed for it now: it counts
    /// in the total (even over it), under the proxy's own address; at most
    /// `max_unauthenticated_per_ip` of them wait for their header at once.
    pub fn admit_proxied(&self, proxy: IpAddr, close: CancellationToken) -> Option<Admission> {
        // The proxy is a group of its own: its waiting connections never
        // count with the strangers of its neighbours.
        let src = source(proxy, 128);
        let mut counts = self.strangers.lock().unwrap_or_else(|p| p.into_inner());
        let mine = counts.by_source.get(&src).map_or(0, |s| s.held.len());
        if mine >= self.per_source {
            return None;
        }
        let (id, evicted) = counts.hold(src, src, close, true);
        Some(self.admission(src, id, evicted))
    }

    /// Moves a proxied stranger's place to the client `ip` its header
    /// carries: from there on it counts under `ip`'s source and network,
    /// as if it had connected directly. False (the connection is to be
    /// closed) when `ip`'s source has no place left, or when the server's
    /// budget is full and no room is made for `ip` (the rules of
    /// [`Places::admit`] with the client's address), or when it was
    /// closed meanwhile.
    pub fn carried(&self, admission: &mut Admission, ip: IpAddr) -> bool {
        let Some(st) = admission.stranger.as_mut() else {
            return false;
        };
        let src = source(ip, self.v6_prefix);
        let grp = group(ip, self.group_v4_prefix, self.group_v6_prefix);
        let mut counts = st.counts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut held) = counts.remove(st.source, st.id) else {
            return false;
        };
        // Its own place is free now; pending ones take no room from it.
        let pending = counts.pending;
        if !self.room(&mut counts, src, grp, pending) {
            // Turned away as at accept: reset, so the client retries it as
            // busy (the Stranger finds its place gone).
            held.evicted.0.store(true, Ordering::Relaxed);
            return false;
        }
        held.pending = false;
        counts.insert(src, grp, held);
        st.source = src;
        true
    }
}
