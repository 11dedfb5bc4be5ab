//! Per-source penalties for failed logins: each failure from an address
//! doubles the delay before its next answer, and after too many the address
//! is banned for a while. Successful logins clear the record.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::AuthConfig;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    banned_until: Option<Instant>,
}

/// The penalty table.
#[derive(Debug)]
pub struct Penalties {
    cfg: AuthConfig,
    table: Mutex<HashMap<IpAddr, Record>>,
}

impl Penalties {
    /// A table with the given settings.
    pub fn new(cfg: AuthConfig) -> Penalties {
        Penalties {
            cfg,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Record>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `ip` is banned now.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        self.table()
            .get(&ip)
            .and_then(|r| r.banned_until)
            .is_some_and(|until| until > now)
    }

    /// Records a failure; returns how long to wait before answering.
    pub fn failed(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut table = self.table();
        // Forget stale records so the table cannot grow without bound.
        let forget_after = Duration::from_secs(self.cfg.ban_secs.max(3600));
        table.retain(|_, r| now.duration_since(r.last) < forget_after);
        let rec = table.entry(ip).or_insert(Record {
            failures: 0,
            last: now,
            banned_until: None,
        });
        if rec.banned_until.is_some_and(|until| until <= now) {
            rec.failures = 0;
            rec.banned_until = None;
        }
        rec.failures += 1;
        rec.last = now;
        if rec.failures >= self.cfg.ban_after_failures {
            rec.banned_until = Some(now + Duration::from_secs(self.cfg.ban_secs));
            tracing::warn!(target: "audit", addr = %ip, failures = rec.failures, "address banned after failed logins");
        }
        let shift = rec.failures.saturating_sub(1).min(20);
        let delay = self.cfg.failure_delay_ms.saturating_mul(1 << shift);
        Duration::from_millis(delay.min(self.cfg.max_failure_delay_ms))
    }

    /// Clears the record after a successful login.
    pub fn succeeded(&self, ip: IpAddr) {
        self.table().remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_ban() {
        let p = Penalties::new(AuthConfig {
            failure_delay_ms: 100,
            max_failure_delay_ms: 350,
            ban_after_failures: 4,
            ban_secs: 60,
            ..AuthConfig::default()
        });
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        assert_eq!(p.failed(ip), Duration::from_millis(100));
        assert_eq!(p.failed(ip), Duration::from_millis(200));
        assert_eq!(p.failed(ip), Duration::from_millis(350));
        assert!(!p.is_banned(ip));
        p.failed(ip);
        assert!(p.is_banned(ip));
        assert!(!p.is_banned(other));
        p.succeeded(ip);
        assert!(!p.is_banned(ip));
    }
}
