//! ferryd's configuration: a TOML file (see `assets/ferryd.toml`, which
//! documents every option), overridden by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration. Every field has a default.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: user store, server secret, homes under `home/`.
    pub root: PathBuf,
    /// Optional access key every client must prove before logging in.
    pub access_key: Option<String>,
    /// Connection and session limits.
    pub limits: Limits,
    /// Login hardening.
    pub auth: AuthConfig,
    /// Transfer settings.
    pub transfers: TransferConfig,
    /// TLS certificate settings.
    pub tls: TlsConfig,
    /// Where the server's state lives (users, ...).
    pub database: DatabaseConfig,
    /// Where users' files live: the local disk (default) or object storage.
    pub store: StoreConfig,
    /// Serve without TLS. Unsafe outside a trusted link: file names and
    /// contents cross the wire in clear. Clients must ask for it too.
    pub insecure_plaintext: bool,
    /// Load balancers (addresses or networks such as `10.0.0.0/8`) whose
    /// connections start with a PROXY protocol v2 header carrying the
    /// client's address, which is then used as the connection's address
    /// (places, penalties, bans, logs). A connection from these must send
    /// one; a header from any other address is refused.
    pub trusted_proxies: Vec<crate::proxy::Cidr>,
}

/// Where the server's state lives.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://USER@HOST:PORT/DB` for state shared by several nodes,
    /// or `sqlite:PATH`. None: SQLite in `<root>/ferry.db`. Give no
    /// password here: use `password_file` or `FERRY_DATABASE_PASSWORD`.
    pub url: Option<String>,
    /// A file holding the database password (one line).
    pub password_file: Option<PathBuf>,
    /// Connections to the database at most, per node.
    pub max_connections: u32,
    /// How often a node tells the store it is alive, in milliseconds.
    pub heartbeat_ms: u64,
    /// A node silent this long is dead: its sessions stop counting and
    /// are removed by the other nodes. Seconds.
    pub node_expiry_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            password_file: None,
            max_connections: 8,
            heartbeat_ms: 2000,
            node_expiry_secs: 15,
        }
    }
}

/// Where users' files live.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `s3://BUCKET/PREFIX` for S3-compatible object storage (one bucket,
    /// a prefix per user under PREFIX). None: homes under `<root>/home`.
    pub url: Option<String>,
    /// The S3 endpoint, e.g. `https://s3.example.net` (else
    /// `AWS_ENDPOINT_URL`, else AWS itself).
    pub endpoint: Option<String>,
    /// The region (else `AWS_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// The access key id (else `AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// A file holding the secret access key (one line; else
    /// `AWS_SECRET_ACCESS_KEY`). Never in this file or on a command line.
    pub secret_access_key_file: Option<PathBuf>,
    /// Bytes per part of a multipart upload, in MiB (5 to 512): an upload
    /// resumes at a part boundary, and each running upload holds one part.
    pub part_size_mib: u64,
    /// Blobs no path names any more are deleted after this many seconds,
    /// so downloads already reading them finish.
    pub trash_grace_secs: u64,
    /// Multipart uploads untouched this long are aborted (seconds).
    pub stale_upload_secs: u64,
    /// How often the sweeper looks for both (seconds).
    pub sweep_every_secs: u64,
    /// Part buffers held at once over the whole server: each upload
    /// receiving data holds one (`part_size_mib` bytes), and more, up to
    /// its user's share, while earlier parts are sent if they are free at
    /// once, so this bounds their memory; more uploads wait for one
    /// before `PutReady`.
    pub max_part_buffers: usize,
    /// Of those, at most this many per user.
    pub max_part_buffers_per_user: usize,
    /// An upload holds its part buffer from `PutReady` on; its `PutStart`
    /// must come within this many seconds, or the upload ends (TimedOut)
    /// and the buffer is free again (uploads opened and never started
    /// would otherwise hold every buffer until the stall limit).
    pub part_start_secs: u64,
    /// Uploads finished while one user's commit runs wait and go into
    /// the namespace together in the next transaction (one flush of the
    /// database for many small files): at most this many in one.
    pub commit_batch_max: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key_file: None,
            part_size_mib: 5,
            trash_grace_secs: 3600,
            stale_upload_secs: 7 * 24 * 3600,
            sweep_every_secs: 300,
            max_part_buffers: 16,
            max_part_buffers_per_user: 4,
            part_start_secs: 30,
            commit_batch_max: 256,
        }
    }
}

/// TLS certificate settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (e.g. from a public CA). Without `cert` and
    /// `key`, a self-signed certificate is made under `<root>/tls/`.
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
}

/// Transfer settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferConfig {
    /// Partial files untouched for this many seconds are removed.
    pub partial_max_age_secs: u64,
    /// How often to look for stale partial files, in seconds.
    pub sweep_interval_secs: u64,
    /// Downloads send the checksum verified at upload (kept with the file)
    /// instead of hashing while reading, while the file's size and mtime
    /// are unchanged. The client verifies either way.
    pub stored_checksums: bool,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            partial_max_age_secs: 7 * 24 * 3600,
            sweep_interval_secs: 3600,
            stored_checksums: true,
        }
    }
}

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
    /// Seconds one `find` may run before it stops (the same).
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

/// Login settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// PBKDF2 iterations for new passwords (at least 4096).
    pub iterations: u32,
    /// Delay after the first failed login from an address, in milliseconds;
    /// it doubles with each further failure.
    pub failure_delay_ms: u64,
    /// Longest delay after a failed login, in milliseconds.
    pub max_failure_delay_ms: u64,
    /// Failed logins from one address before it is banned.
    pub ban_after_failures: u32,
    /// Length of a ban, in seconds.
    pub ban_secs: u64,
    /// How often, in milliseconds, the running server looks for changes to
    /// the user store (`ferryd user ...`) and applies them to live
    /// sessions: a removed user or a changed password closes them, a new
    /// quota holds from the next upload.
    pub user_store_check_ms: u64,
    /// How often, in milliseconds, each node takes the bans other nodes
    /// wrote to the state store into its own table (accepting a
    /// connection checks that table, not the store).
    pub ban_sync_ms: u64,
    /// IPv6 sources are counted by network: the first this many bits of
    /// the address (a host usually holds a whole /64).
    pub ipv6_prefix_len: u8,
    /// Failed logins from all the addresses of one network (see the two
    /// prefix lengths below) after which the whole network is banned for
    /// `ban_secs`, so an attacker holding many addresses of one network
    /// gets no more guesses than this. Never below `ban_after_failures`
    /// (a smaller value counts as that); 0 turns it off.
    pub network_ban_after_failures: u32,
    /// The network of an IPv4 address for `network_ban_after_failures`:
    /// its first this many bits (a /24).
    pub ipv4_network_prefix_len: u8,
    /// The network of an IPv6 address for `network_ban_after_failures`:
    /// its first this many bits (a /48, what one site usually holds).
    pub ipv6_network_prefix_len: u8,
    /// Failed logins as one user, from any address, after which that
    /// user's logins from addresses it has not logged in from are spaced
    /// out.
    pub user_penalty_after: u32,
    /// Spacing between such logins, in milliseconds; it doubles with each
    /// further failure...
    pub user_delay_ms: u64,
    /// ...up to this much. Only an address with no failures against the
    /// user waits for a turn (until its login deadline); any other gets
    /// one only if it is free at once, and is refused as busy otherwise.
    pub max_user_delay_ms: u64,
    /// Failures from an address, or against a user, are forgotten after
    /// this many seconds without a new one.
    pub forget_after_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 7272)),
            root: PathBuf::from("/var/lib/ferry"),
            access_key: None,
            limits: Limits::default(),
            auth: AuthConfig::default(),
            transfers: TransferConfig::default(),
            tls: TlsConfig::default(),
            database: DatabaseConfig::default(),
            store: StoreConfig::default(),
            insecure_plaintext: false,
            trusted_proxies: Vec::new(),
        }
    }
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

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            iterations: 100_000,
            failure_delay_ms: 250,
            max_failure_delay_ms: 8_000,
            ban_after_failures: 10,
            ban_secs: 600,
            user_store_check_ms: 1000,
            ban_sync_ms: 1000,
            ipv6_prefix_len: 64,
            network_ban_after_failures: 40,
            ipv4_network_prefix_len: 24,
            ipv6_network_prefix_len: 48,
            user_penalty_after: 20,
            user_delay_ms: 1_000,
            max_user_delay_ms: 8_000,
            forget_after_secs: 3600,
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
}

impl Config {
    /// Reads a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        let config: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("bad config {}: {e}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that would make the server misbehave.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (5..=512).contains(&self.store.part_size_mib),
            "store.part_size_mib must be 5 to 512 (S3 parts are at least 5 MiB)"
        );
        anyhow::ensure!(
            self.store.max_part_buffers > 0 && self.store.max_part_buffers_per_user > 0,
            "store.max_part_buffers and store.max_part_buffers_per_user must be at least 1"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.store.part_start_secs),
            "store.part_start_secs must be 1 to 3600"
        );
        anyhow::ensure!(
            self.store.commit_batch_max > 0,
            "store.commit_batch_max must be at least 1"
        );
        anyhow::ensure!(
            self.store.sweep_every_secs > 0,
            "store.sweep_every_secs must be at least 1"
        );
        anyhow::ensure!(
            self.auth.iterations >= ferry_proto::scram::MIN_ITERATIONS,
            "auth.iterations must be at least {}",
            ferry_proto::scram::MIN_ITERATIONS
        );
        anyhow::ensure!(
            self.limits.max_connections > 0,
            "limits.max_connections must be positive"
        );
        anyhow::ensure!(
            self.limits.max_unauthenticated > 0 && self.limits.max_unauthenticated_per_ip > 0,
            "limits.max_unauthenticated and limits.max_unauthenticated_per_ip must be positive"
        );
        anyhow::ensure!(
            self.limits.unauthenticated_group_ipv4_prefix_len <= 32
                && self.limits.unauthenticated_group_ipv6_prefix_len <= 128,
            "limits.unauthenticated_group_ipv4_prefix_len must be at most 32 and limits.unauthenticated_group_ipv6_prefix_len at most 128"
        );
        anyhow::ensure!(
            self.limits.login_timeout_secs > 0,
            "limits.login_timeout_secs must be positive"
        );
        anyhow::ensure!(
            self.limits.max_dir_batch > 0,
            "limits.max_dir_batch must be positive"
        );
        anyhow::ensure!(
            self.limits.max_requests_in_flight > 0,
            "limits.max_requests_in_flight must be positive"
        );
        anyhow::ensure!(
            self.limits.max_small_uploads_in_flight > 0,
            "limits.max_small_uploads_in_flight must be positive"
        );
        anyhow::ensure!(
            self.limits.max_transfers > 0 && self.limits.max_transfers_per_user > 0,
            "limits.max_transfers and limits.max_transfers_per_user must be positive"
        );
        // The reader takes room for a whole frame before it reads one, and
        // an eager upload's chunk waits for its end: a budget of less than
        // a few frames could never be read again.
        anyhow::ensure!(
            self.limits.connection_budget_mib >= 4
                && self.limits.user_budget_mib >= self.limits.connection_budget_mib
                && self.limits.user_budget_mib <= 4096
                && self.limits.max_held_mib >= self.limits.user_budget_mib
                && self.limits.max_held_mib <= 4096,
            "limits.connection_budget_mib must be at least 4, limits.user_budget_mib \
             at least that, and limits.max_held_mib at least that; both at most 4096"
        );
        anyhow::ensure!(
            self.auth.ban_after_failures > 0 && self.auth.user_penalty_after > 0,
            "auth.ban_after_failures and auth.user_penalty_after must be positive"
        );
        anyhow::ensure!(
            self.auth.forget_after_secs > 0,
            "auth.forget_after_secs must be positive"
        );
        anyhow::ensure!(
            self.auth.ipv6_prefix_len <= 128,
            "auth.ipv6_prefix_len must be at most 128"
        );
        anyhow::ensure!(
            self.auth.ipv4_network_prefix_len <= 32
                && self.auth.ipv6_network_prefix_len <= self.auth.ipv6_prefix_len,
            "auth.ipv4_network_prefix_len must be at most 32, and auth.ipv6_network_prefix_len at most auth.ipv6_prefix_len (a network holds its sources)"
        );
        anyhow::ensure!(
            self.limits.max_copy_entries > 0
                && self.limits.find_max_visited > 0
                && self.limits.find_max_secs > 0,
            "limits.max_copy_entries, find_max_visited and find_max_secs must be positive"
        );
        anyhow::ensure!(
            self.limits.max_depth > 0,
            "limits.max_depth must be positive"
        );
        anyhow::ensure!(
            self.limits.transfer_stall_secs > 0,
            "limits.transfer_stall_secs must be positive"
        );
        anyhow::ensure!(
            self.limits.max_threads_per_user > 0
                && self.limits.max_threads >= self.limits.max_threads_per_user,
            "limits.max_threads_per_user must be positive and at most limits.max_threads"
        );
        anyhow::ensure!(
            self.limits.cpu_threads_per_user() <= self.limits.cpu_threads(),
            "limits.max_cpu_threads_per_user must be at most limits.max_cpu_threads"
        );
        anyhow::ensure!(
            (0..=19).contains(&self.limits.bulk_nice),
            "limits.bulk_nice must be from 0 to 19"
        );
        anyhow::ensure!(
            self.tls.cert.is_some() == self.tls.key.is_some(),
            "tls.cert and tls.key must be given together"
        );
        anyhow::ensure!(
            self.auth.user_store_check_ms > 0,
            "auth.user_store_check_ms must be positive"
        );
        anyhow::ensure!(
            self.auth.ban_sync_ms > 0,
            "auth.ban_sync_ms must be positive"
        );
        anyhow::ensure!(
            self.transfers.sweep_interval_secs > 0,
            "transfers.sweep_interval_secs must be positive"
        );
        Ok(())
    }

    /// Where homes live.
    pub fn homes(&self) -> PathBuf {
        self.root.join("home")
    }

    /// The home directory of a user.
    pub fn home_of(&self, name: &str) -> PathBuf {
        self.homes().join(name)
    }
}

/// The cores this process may run on (1 if unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses_and_matches_defaults() {
        let text = include_str!("../../assets/ferryd.toml");
        let c: Config = toml::from_str(text).expect("assets/ferryd.toml parses");
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.limits.max_connections, d.limits.max_connections);
        assert_eq!(c.limits.max_transfers, d.limits.max_transfers);
        assert_eq!(
            c.limits.max_transfers_per_user,
            d.limits.max_transfers_per_user
        );
        assert_eq!(c.limits.max_depth, d.limits.max_depth);
        assert_eq!(c.auth.iterations, d.auth.iterations);
        assert_eq!(
            c.transfers.partial_max_age_secs,
            d.transfers.partial_max_age_secs
        );
        c.validate().expect("valid");
    }
}
