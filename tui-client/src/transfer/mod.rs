//! The transfer engine: uploads and downloads of files and trees, verified
//! with SHA-256 end to end, committed atomically, resumable after a cut,
//! several at once over one connection, with progress events.

pub mod get;
pub mod local;
pub mod progress;
pub mod put;
pub mod rate;
mod tree;

use std::path::PathBuf;
use std::sync::Arc;

pub use progress::{Direction, Events, FileProgress, Overall, ProgressBoard, TransferEvent};
pub use rate::RateLimiter;
pub use tree::{get_listed, get_paths, put_listed, put_paths};

/// What to do when the target already exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Conflict {
    /// Resume a partial file if there is one; fail if a complete target exists.
    #[default]
    Auto,
    /// Replace the target (after the new content is verified).
    Overwrite,
    /// Leave the target alone and skip the file.
    Skip,
    /// Resume a partial; a complete target counts as done when its SHA-256
    /// matches the source, and fails otherwise.
    Resume,
    /// Write to a free name beside the target ("name (1).ext").
    Rename,
    /// Fail if the target exists.
    Fail,
}

/// Options for a transfer job.
#[derive(Clone, Debug)]
pub struct TransferOptions {
    /// Transfer directory trees.
    pub recursive: bool,
    /// Conflict policy.
    pub on_conflict: Conflict,
    /// Files in flight at once.
    pub parallel: usize,
    /// Follow local symlinks (otherwise they are skipped with a warning).
    pub follow_symlinks: bool,
    /// Bytes per second for the whole job, if limited.
    pub rate_limit: Option<u64>,
    /// A limit shared with other jobs (the TUI's); it wins over `rate_limit`.
    pub limiter: Option<RateLimiter>,
    /// Downloads: have the server hash each file as it reads it, even when
    /// it holds the checksum it verified at upload.
    pub rehash: bool,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            recursive: false,
            on_conflict: Conflict::Auto,
            parallel: 8,
            follow_symlinks: false,
            rate_limit: None,
            limiter: None,
            rehash: false,
        }
    }
}

/// How a file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Transferred and verified.
    Done,
    /// Not transferred, for the given reason.
    Skipped(String),
    /// Failed with this message.
    Failed(String),
}

impl Status {
    /// Transferred.
    pub fn is_done(&self) -> bool {
        matches!(self, Status::Done)
    }

    /// Failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Status::Failed(_))
    }

    /// `done`, `skipped` or `failed`.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Skipped(_) => "skipped",
            Status::Failed(_) => "failed",
        }
    }
}

/// The outcome of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// Direction.
    pub direction: Direction,
    /// Local path.
    pub local: PathBuf,
    /// Remote path.
    pub remote: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, when transferred or verified.
    pub sha256: Option<[u8; 32]>,
    /// Bytes kept from an earlier attempt.
    pub resumed_from: u64,
    /// Outcome.
    pub status: Status,
}

/// Lowercase hex of a hash.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Ends a transfer's life on the connection: dropped while armed (the
/// future was cancelled or failed midway) it tells the server to stop and
/// keeps the partial file; disarmed, it just forgets the routing.
pub(crate) struct TransferGuard<'a> {
    pub client: &'a crate::client::Client,
    pub transfer: u32,
    pub armed: bool,
}

impl Drop for TransferGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.client.cancel_transfer(self.transfer);
        } else {
            self.client.end_transfer(self.transfer);
        }
    }
}

/// A job's shared context.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub opts: TransferOptions,
    pub events: Events,
    pub limiter: Option<RateLimiter>,
}

impl Job {
    pub fn new(opts: TransferOptions, events: Events) -> Job {
        let limiter = opts
            .limiter
            .clone()
            .or_else(|| opts.rate_limit.map(RateLimiter::new));
        Job {
            opts,
            events,
            limiter,
        }
    }

    pub fn warn(&self, id: Option<u64>, message: String) {
        self.events.emit(TransferEvent::Warning { id, message });
    }

    /// Bytes start to move from `offset`. When a partial of `held` bytes
    /// existed but its prefix did not match (`offset` 0), says so.
    pub fn started(
        &self,
        report: &mut FileReport,
        id: u64,
        size: u64,
        held: u64,
        offset: u64,
        which_partial: impl FnOnce() -> String,
    ) {
        if held > 0 && offset == 0 {
            self.warn(
                Some(id),
                format!("{}; restarting from zero", which_partial()),
            );
        }
        report.resumed_from = offset;
        self.events.emit(TransferEvent::Started {
            id,
            size,
            resumed_from: offset,
        });
    }

    /// Announces the files of a job (their ids are their positions).
    pub fn announce(
        &self,
        direction: Direction,
        files: impl Iterator<Item = (String, String, u64)>,
    ) {
        for (i, (source, target, size)) in files.enumerate() {
            self.events.emit(TransferEvent::Queued {
                id: i as u64,
                direction,
                source,
                target,
                size: Some(size),
            });
        }
    }
}

/// Files of at most this many bytes (one chunk) are "small": they cost a
/// round trip more than bandwidth, so more of them run at once.
pub const SMALL_FILE: u64 = ferry_proto::CHUNK_SIZE as u64;

/// A large file takes this many small files' share of `parallel`.
const SMALL_PER_SLOT: usize = 32;

/// The most files in flight on one connection, whatever `parallel` says
/// (ferryd takes 256 small uploads per connection at once by default, and
/// runs 64 other requests; the session keeps to the limits it announced).
pub const MAX_IN_FLIGHT: usize = 256;

/// Runs a job's per-file futures over one connection: `parallel` files at
/// a time, where a small file counts a 32nd, so a tree of small files
/// keeps up to 32 × `parallel` (at most [`MAX_IN_FLIGHT`]) in flight and
/// their round trips and the server's flushes overlap. Files start in order.
pub(crate) async fn run_parallel<F>(work: Vec<(u64, F)>, parallel: usize) -> Vec<FileReport>
where
    F: std::future::Future<Output = FileReport>,
{
    use futures::stream::{self, StreamExt};
    let units = parallel.clamp(1, MAX_IN_FLIGHT) * SMALL_PER_SLOT;
    let slots = Arc::new(tokio::sync::Semaphore::new(units));
    let gated = work.into_iter().map(|(size, file)| {
        let slots = slots.clone();
        let weight = if size <= SMALL_FILE {
            1
        } else {
            SMALL_PER_SLOT
        };
        async move {
            // The semaphore is fair, so files start in order; it is never
            // closed, so the permit is always granted.
            let _slot = slots.acquire_many_owned(weight as u32).await.ok();
            file.await
        }
    });
    stream::iter(gated)
        .buffer_unordered(MAX_IN_FLIGHT)
        .collect()
        .await
}
