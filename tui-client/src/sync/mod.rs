//! Sync of a local and a remote directory, one way: compare the two trees
//! (by size and mtime, or by SHA-256), show the plan, then make the
//! destination like the source through the transfer engine. The batch CLI
//! (`ferry sync`) and the TUI build on the same plan.

pub mod plan;
pub mod rules;
mod run;
mod walk;

use std::path::PathBuf;

use ferry_proto::RemotePath;

pub use plan::{Change, Compare, Deletion, Plan, Tally, Touch};
pub use rules::{BadPattern, Rule, Rules, Verdict};
pub use run::{run, Deleted, Outcome};

use crate::client::{Client, ClientError};

/// The two directories of a sync and which way it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sides {
    /// Upload (local is the source) or download (remote is the source).
    pub up: bool,
    /// The local directory.
    pub local: PathBuf,
    /// The remote directory, resolved.
    pub remote: RemotePath,
}

impl Sides {
    /// The local path of an entry (`rel` `/`-separated, empty for the top).
    pub fn local_path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.local.clone()
        } else {
            self.local.join(rel)
        }
    }

    /// The remote path of an entry.
    pub fn remote_path(&self, rel: &str) -> Result<RemotePath, SyncError> {
        self.remote.join(rel).map_err(|source| {
            SyncError::Client(ClientError::Path {
                path: rel.to_string(),
                source,
            })
        })
    }

    /// The source as the user names it (`:path` when remote).
    pub fn source_name(&self) -> String {
        if self.up {
            self.local.display().to_string()
        } else {
            format!(":{}", self.remote)
        }
    }

    /// The destination as the user names it.
    pub fn destination_name(&self) -> String {
        if self.up {
            format!(":{}", self.remote)
        } else {
            self.local.display().to_string()
        }
    }
}

/// How to sync.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Delete what is only in the destination (never excluded entries).
    pub delete: bool,
    /// Compare by SHA-256 instead of size and mtime.
    pub checksum: bool,
    /// Include and exclude rules, in order.
    pub rules: Vec<Rule>,
    /// Files transferred at once (as `put`/`get --parallel`).
    pub parallel: usize,
    /// Bandwidth limit for the whole job, bytes per second.
    pub rate_limit: Option<u64>,
    /// A limit shared with other jobs (the TUI's); it wins over `rate_limit`.
    pub limiter: Option<crate::transfer::RateLimiter>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            delete: false,
            checksum: false,
            rules: Vec::new(),
            parallel: 8,
            rate_limit: None,
            limiter: None,
        }
    }
}

/// Why a sync could not be planned or run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source is missing or not a directory.
    #[error("{0}")]
    Source(String),
    /// The destination cannot be a directory.
    #[error("{0}")]
    Destination(String),
    /// An include or exclude pattern does not parse.
    #[error(transparent)]
    Rules(#[from] BadPattern),
    /// The connection or the server failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Compares the two trees and returns what a sync would do.
pub async fn plan(client: &Client, sides: &Sides, opts: &SyncOptions) -> Result<Plan, SyncError> {
    let rules = Rules::new(&opts.rules)?;
    let how = Compare {
        checksum: opts.checksum,
        delete: opts.delete,
    };
    walk::walk(client, sides, &rules, how).await
}
