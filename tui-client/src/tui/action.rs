//! What flows into `update` (actions) and out of it (effects for the
//! runtime to carry out). Everything that happens becomes an action:
//! keys, mouse, ticks, listings, progress, connection changes.

use std::path::PathBuf;

use crossterm::event::{KeyEvent, MouseEvent};
use ferry_proto::msg::Entry;
use ferry_proto::RemotePath;

use super::listing::{Listing, Order};
use super::pane::Side;
use crate::client::{ConnectOptions, ServerIdentity};
use crate::transfer::TransferEvent;

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Action {
    /// A key was pressed.
    Key(KeyEvent),
    /// The mouse did something.
    Mouse(MouseEvent),
    /// The terminal was resized.
    Resize(u16, u16),
    /// A second passed while jobs run (stalls are noticed on ticks).
    Tick(std::time::Instant),
    /// A local directory was read.
    LocalListed {
        /// Which listing (stale ones are ignored).
        generation: u64,
        /// Its entries (sorted as asked), or why not.
        result: Result<Listing, String>,
    },
    /// The local directory changed on disk.
    LocalChanged(PathBuf),
    /// A batch of a remote listing arrived.
    RemoteBatch {
        /// Which listing (stale ones are ignored).
        generation: u64,
        /// Entries.
        entries: Vec<Entry>,
        /// The last batch: the pane sorts what it has (fine for small
        /// listings; the runtime ends with [`Action::RemoteListed`]).
        done: bool,
    },
    /// A remote listing ended: all of it, sorted off the UI thread; it
    /// replaces the batches shown while it streamed in.
    RemoteListed {
        /// Which listing (stale ones are ignored).
        generation: u64,
        /// Every entry.
        listing: Listing,
    },
    /// A remote listing failed.
    RemoteListFailed {
        /// Which listing.
        generation: u64,
        /// Why.
        error: String,
    },
    /// The quota report.
    Quota {
        /// Bytes used.
        used: u64,
        /// Limit.
        limit: Option<u64>,
    },
    /// A file operation finished; refresh `side` (both when None).
    OpDone {
        /// What to say.
        message: Option<String>,
        /// What to refresh.
        refresh: Option<Side>,
    },
    /// A file operation failed.
    OpFailed(String),
    /// A transfer job started moving.
    JobEvent {
        /// Job id.
        job: u64,
        /// The engine's event.
        event: TransferEvent,
    },
    /// A transfer job ended.
    JobEnded {
        /// Job id.
        job: u64,
        /// Error that stopped the whole job, if any.
        result: Result<(), String>,
    },
    /// Logged in.
    Connected {
        /// `user@server`.
        label: String,
        /// Certificate and trust.
        identity: ServerIdentity,
    },
    /// The server's certificate is unknown: ask the user.
    UnknownServer {
        /// Server.
        server: String,
        /// Fingerprint.
        fingerprint: String,
    },
    /// A connection attempt failed.
    ConnectFailed(String),
    /// The connection dropped.
    Disconnected(String),
    /// A block or a search result for the viewer.
    View(super::viewer::ViewNews),
    /// News of a search (find).
    Find(super::find::run::News),
    /// A copy or move within one side was resolved.
    Within(super::within::run::News),
    /// News of an F4 edit.
    Edit(super::edit::EditNews),
    /// Hashing news for the comparison (`#`).
    Compare(super::compare::CompareNews),
    /// A sync plan for the dialog.
    Sync(super::sync_dialog::run::SyncNews),
}

/// Work for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Read a local directory; the result comes back tagged with
    /// `generation`.
    ListLocal {
        /// The directory.
        path: PathBuf,
        /// Tag.
        generation: u64,
        /// The order to sort it in (where it is read).
        order: Order,
    },
    /// List a remote directory; batches come back tagged with `generation`.
    ListRemote {
        /// The directory.
        path: RemotePath,
        /// Tag.
        generation: u64,
        /// The order to sort it in once complete (off the UI thread).
        order: Order,
    },
    /// Ask for the quota.
    Quota,
    /// Make a directory.
    Mkdir(Side, String),
    /// Rename or move.
    Rename(Side, String, String),
    /// Move entries into a directory.
    Move {
        /// In which pane.
        side: Side,
        /// The entries' paths.
        from: Vec<String>,
        /// The directory.
        to_dir: String,
    },
    /// Set the permission bits of paths.
    Chmod {
        /// In which pane.
        side: Side,
        /// The entries' paths.
        paths: Vec<String>,
        /// The mode (within 0o777).
        mode: u32,
    },
    /// Delete paths (recursively for directories).
    Delete(Side, Vec<String>),
    /// Start a transfer job.
    StartJob {
        /// Job id.
        job: u64,
        /// What and where.
        spec: super::queue::JobSpec,
    },
    /// Cancel a job (its partials stay for a resume).
    CancelJob(u64),
    /// Apply and remember the queue's settings: jobs at once, and the
    /// speed limit of all transfers in bytes per second (0: none).
    QueueSettings {
        /// Jobs at once.
        parallel: usize,
        /// Bytes per second.
        rate: u64,
    },
    /// Connect (or reconnect) with these options.
    Connect(Box<ConnectOptions>),
    /// Reconnect with the last options.
    Reconnect,
    /// Trust this fingerprint for the server and connect again.
    TrustAndConnect(String),
    /// Reading or searching for the viewer.
    View(super::viewer::ViewWork),
    /// Starting or stopping a search (find).
    Find(super::find::run::Work),
    /// A copy or move within one side.
    Within(super::within::run::Work),
    /// Work for an F4 edit.
    Edit(super::edit::EditWork),
    /// Hashing for the comparison (`#`).
    Compare(super::compare::CompareWork),
    /// Save the bookmarks.
    SaveBookmarks(Vec<super::bookmarks::Bookmark>),
    /// Planning for the sync dialog.
    Sync(super::sync_dialog::run::SyncWork),
    /// Leave.
    Quit,
}

// ConnectOptions carries a password; comparing effects in tests compares
// everything but it.
impl PartialEq for Box<ConnectOptions> {
    fn eq(&self, other: &Self) -> bool {
        self.server == other.server && self.user == other.user
    }
}
impl Eq for Box<ConnectOptions> {}
