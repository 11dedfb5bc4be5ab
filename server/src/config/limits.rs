//! `[limits]`: what clients may make ferryd hold and do.

use std::time::Duration;

use serde::Deserialize;

/// Limits on what clients may use.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Logged-in sessions at once on the whole server. A session takes its
    /// place when its login succeeds; a login beyond this is refused as
    /// busy. Connections still logging in never hold one (see
    /// `max_unauthenticated`).
    pub max_connections: usize,
    /// Logged-in sessions per user at once.
    pub max_sessions_per_user: usize,
    /// Connections not logged in yet (TLS, hello, login) at once, in total.
    /// More are closed at accept, before any TLS work.
    pub max_unauthenticated: usize,
    /// Connections not logged in yet from one source address (an IPv6
    /// source is its network of `auth.ipv6_prefix_len` bits). More are
    /// closed at accept, before any TLS work.
    pub max_unauthenticated_per_ip: usize,
    /// With `max_unauthenticated` all taken, room is made by closing a
    /// stranger of the network holding most: IPv4 addresses are grouped
    /// by this many leading bits (a /24)...
    pub unauthenticated_group_ipv4_prefix_len: u8,
    /// ...and IPv6 addresses by this many (a /48).
    pub unauthenticated_group_ipv6_prefix_len: u8,
    /// Seconds a network whose stranger was closed to make room makes no
    /// room itself (its newcomers are closed at accept while the budget is
    /// full): churn from many addresses then closes a stranger at most once
    /// per this time per network. 0 turns it off.
    pub unauthenticated_closed_cooldown_secs: u64,
    /// Seconds from accept to a completed login: TLS, hello and login
    /// together. (`handshake_timeout_secs` is its old name.)
    #[serde(alias = "handshake_timeout_secs")]
    pub login_timeout_secs: u64,
    /// Seconds without any request before a session is closed.
    pub idle_timeout_secs: u64,
    /// Directory entries per listing batch.
    pub max_dir_batch: usize,
    /// Requests run at once per connection (as many again may wait).
    pub max_requests_in_flight: usize,
    /// Small uploads (one chunk or less, sent whole) in flight per
    /// connection, counted apart from requests.
    pub max_small_uploads_in_flight: usize,
    /// Uploads and downloads running at once on the whole server. Each
    /// holds a thread until it ends; more wait for their turn.
    pub max_transfers: usize,
    /// Uploads and downloads running at once per user, over all their
    /// sessions.
    pub max_transfers_per_user: usize,
    /// Seconds a user's measured disk usage is kept after their last
    /// session ends (a login within that time does not walk the home).
    pub usage_kept_secs: u64,
    /// Entries (files, directories, symlinks, partial files) a user's home
    /// may hold, for users without their own `max_entries`; 0: no limit.
    pub max_entries_per_user: u64,
    /// Levels below a home at which operations may create names (`mkdir`,
    /// a move of a directory counting the depth of its tree, an upload).
    /// Deeper trees made outside ferryd can still be listed, measured and
    /// removed.
    pub max_depth: usize,
    /// Entries one server-side copy (`ferry cp -r`) may make; a larger
    /// tree is refused before anything is written.
    pub max_copy_entries: u64,
    /// Entries one `find` may look at before it stops (its answer then
    /// says it is incomplete).
    pub find_max_visited: u64,
    /// Seconds one `find` may run before it stops (the same). Wall time
    /// from its start, waits for a slow client included: it bounds how
    /// long the search holds one of the connection's turns.
    pub find_max_secs: u64,
    /// MiB one connection may make ferryd hold (data not yet written,
    /// replies not yet read, requests in flight). At the budget the
    /// connection is not read until some is given back.
    pub connection_budget_mib: usize,
    /// MiB all sessions of one user may make ferryd hold together.
    pub user_budget_mib: usize,
    /// MiB that all connections together may make ferryd hold (the same
    /// bytes as the budgets above), whatever the number of users.
    pub max_held_mib: usize,
    /// Seconds a transfer may go without progress (no data from the
    /// client for an upload, no room to send for a download) before it is
    /// ended; its partial stays for a resume.
    pub transfer_stall_secs: u64,
    /// Blocking threads doing file work at once on the whole server (each
    /// runs one bounded step: a batch of chunks, a listing batch).
    pub max_threads: usize,
    /// Blocking threads one user's file work may use at once.
    pub max_threads_per_user: usize,
    /// Of those threads, how many may run CPU-heavy steps (hashing a file
    /// for a checksum or a resume) at once on the whole server; 0: one per
    /// core.
    pub max_cpu_threads: usize,
    /// How many of one user's threads may run CPU-heavy steps at once;
    /// 0: half the cores (at least one), so one user never takes every
    /// core.
    pub max_cpu_threads_per_user: usize,
    /// Threads of their own, at a lower priority, that run bulk work:
    /// large transfers' disk steps and every hashing step (within the CPU
    /// shares above); 0: twice the cores, at least 4.
    pub bulk_threads: usize,
    /// Nice value of the bulk threads (0-19; 0: as every other thread), so
    /// listings, small uploads and commits get the cores first.
    pub bulk_nice: i32,
    /// Disk priority of the bulk threads: "low" (the lowest level of the
    /// normal class), "idle" (only when the disk is otherwise free; the
    /// kernel still serves requests that waited long) or "normal".
    pub bulk_io_priority: crate::bulk::IoPriority,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_sessions_per_user: 16,
            max_unauthenticated: 512,
            max_unauthenticated_per_ip: 16,
            unauthenticated_group_ipv4_prefix_len: 24,
            unauthenticated_group_ipv6_prefix_len: 48,
            unauthenticated_closed_cooldown_secs: 10,
            login_timeout_secs: 10,
            idle_timeout_secs: 600,
            max_dir_batch: 512,
            max_requests_in_flight: 64,
            max_small_uploads_in_flight: 256,
            max_transfers: 256,
            max_transfers_per_user: 16,
            usage_kept_secs: 300,
            max_entries_per_user: 100_000,
            max_depth: crate::jail::DEFAULT_MAX_DEPTH,
            max_copy_entries: 100_000,
            find_max_visited: 1_000_000,
            find_max_secs: 30,
            connection_budget_mib: 16,
            user_budget_mib: 48,
            max_held_mib: 512,
            transfer_stall_secs: 120,
            max_threads: 64,
            max_threads_per_user: 8,
            max_cpu_threads: 0,
            max_cpu_threads_per_user: 0,
            bulk_threads: 0,
            bulk_nice: 10,
            bulk_io_priority: crate::bulk::IoPriority::Low,
        }
    }
}

impl Limits {
    /// CPU-heavy steps at once on the whole server (`max_cpu_threads`,
    /// or one per core).
    pub fn cpu_threads(&self) -> usize {
        match self.max_cpu_threads {
            0 => cores(),
            n => n,
        }
    }

    /// CPU-heavy steps at once per user (`max_cpu_threads_per_user`, or
    /// half the cores, at least one, and never more than the server's).
    pub fn cpu_threads_per_user(&self) -> usize {
        match self.max_cpu_threads_per_user {
            0 => (cores() / 2).clamp(1, self.cpu_threads()),
            n => n,
        }
    }

    /// Bulk threads (`bulk_threads`, or twice the cores, at least 4).
    pub fn bulk_threads(&self) -> usize {
        match self.bulk_threads {
            0 => (2 * cores()).max(4),
            n => n,
        }
    }

    /// What the bulk threads lower themselves to.
    pub fn bulk_priority(&self) -> crate::bulk::Priority {
        crate::bulk::Priority {
            nice: self.bulk_nice,
            io: self.bulk_io_priority,
        }
    }

    /// The login timeout (accept to logged in) as a duration.
    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.login_timeout_secs)
    }

    /// The idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// The transfer stall limit as a duration.
    pub fn transfer_stall(&self) -> Duration {
        Duration::from_secs(self.transfer_stall_secs)
    }

    /// A connection's byte budget.
    pub fn connection_budget(&self) -> usize {
        self.connection_budget_mib << 20
    }

    /// A user's byte budget.
    pub fn user_budget(&self) -> usize {
        self.user_budget_mib << 20
    }

    /// The server's byte budget over all users.
    pub fn held_budget(&self) -> usize {
        self.max_held_mib << 20
    }

    /// Checks limits that would make the server misbehave.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_connections > 0,
            "limits.max_connections must be positive"
        );
        anyhow::ensure!(
            self.max_unauthenticated > 0 && self.max_unauthenticated_per_ip > 0,
            "limits.max_unauthenticated and limits.max_unauthenticated_per_ip must be positive"
        );
        anyhow::ensure!(
            self.unauthenticated_group_ipv4_prefix_len <= 32
                && self.unauthenticated_group_ipv6_prefix_len <= 128,
            "limits.unauthenticated_group_ipv4_prefix_len must be at most 32 and limits.unauthenticated_group_ipv6_prefix_len at most 128"
        );
        anyhow::ensure!(
            self.login_timeout_secs > 0,
            "limits.login_timeout_secs must be positive"
        );
        anyhow::ensure!(
            self.max_dir_batch > 0,
            "limits.max_dir_batch must be positive"
        );
        anyhow::ensure!(
            self.max_requests_in_flight > 0,
            "limits.max_requests_in_flight must be positive"
        );
        anyhow::ensure!(
            self.max_small_uploads_in_flight > 0,
            "limits.max_small_uploads_in_flight must be positive"
        );
        anyhow::ensure!(
            self.max_transfers > 0 && self.max_transfers_per_user > 0,
            "limits.max_transfers and limits.max_transfers_per_user must be positive"
        );
        // The reader takes room for a whole frame before it reads one, and
        // an eager upload's chunk waits for its end: a budget of less than
        // a few frames could never be read again.
        anyhow::ensure!(
            self.connection_budget_mib >= 4
                && self.user_budget_mib >= self.connection_budget_mib
                && self.user_budget_mib <= 4096
                && self.max_held_mib >= self.user_budget_mib
                && self.max_held_mib <= 4096,
            "limits.connection_budget_mib must be at least 4, limits.user_budget_mib \
             at least that, and limits.max_held_mib at least that; both at most 4096"
        );
        anyhow::ensure!(
            self.max_copy_entries > 0 && self.find_max_visited > 0 && self.find_max_secs > 0,
            "limits.max_copy_entries, find_max_visited and find_max_secs must be positive"
        );
        anyhow::ensure!(self.max_depth > 0, "limits.max_depth must be positive");
        anyhow::ensure!(
            self.transfer_stall_secs > 0,
            "limits.transfer_stall_secs must be positive"
        );
        anyhow::ensure!(
            self.max_threads_per_user > 0 && self.max_threads >= self.max_threads_per_user,
            "limits.max_threads_per_user must be positive and at most limits.max_threads"
        );
        anyhow::ensure!(
            self.cpu_threads_per_user() <= self.cpu_threads(),
            "limits.max_cpu_threads_per_user must be at most limits.max_cpu_threads"
        );
        anyhow::ensure!(
            (0..=19).contains(&self.bulk_nice),
            "limits.bulk_nice must be from 0 to 19"
        );
        Ok(())
    }
}

/// The cores this process may run on (1 if unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
