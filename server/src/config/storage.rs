//! `[database]` and `[store]`: where the server's state and users' files
//! live.

use std::path::PathBuf;

use serde::Deserialize;

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

impl StoreConfig {
    /// Checks object-storage settings that would make the server misbehave.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (5..=512).contains(&self.part_size_mib),
            "store.part_size_mib must be 5 to 512 (S3 parts are at least 5 MiB)"
        );
        anyhow::ensure!(
            self.max_part_buffers > 0 && self.max_part_buffers_per_user > 0,
            "store.max_part_buffers and store.max_part_buffers_per_user must be at least 1"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.part_start_secs),
            "store.part_start_secs must be 1 to 3600"
        );
        anyhow::ensure!(
            self.commit_batch_max > 0,
            "store.commit_batch_max must be at least 1"
        );
        anyhow::ensure!(
            self.sweep_every_secs > 0,
            "store.sweep_every_secs must be at least 1"
        );
        Ok(())
    }
}
