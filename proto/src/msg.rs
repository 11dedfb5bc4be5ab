//! Control messages. Every request carries an id that its response echoes,
//! so a client may pipeline many requests on one connection.

use serde::{Deserialize, Serialize};

use crate::error::RemoteError;

/// SASL mechanism name for plain SCRAM.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// SASL mechanism name for SCRAM with channel binding.
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// Messages from client to server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// Answer to the server's access-key challenge.
    AccessProof {
        /// HMAC over the server's nonce (see [`crate::access`]).
        answer: Vec<u8>,
    },
    /// First SCRAM message.
    AuthStart {
        /// Chosen mechanism, one of those in `Welcome`.
        mechanism: String,
        /// SCRAM client-first-message.
        client_first: String,
    },
    /// Final SCRAM message from the client.
    AuthFinish {
        /// SCRAM client-final-message.
        client_final: String,
    },
    /// Upload: where to start writing (0, or the partial length the server
    /// reported once the client has proved the prefix matches). Sent after
    /// `PutReady` and before the first data frame.
    PutStart {
        /// The transfer.
        transfer: u32,
        /// Byte offset of the first data frame.
        offset: u64,
    },
    /// Upload: every byte has been sent; this is the SHA-256 of the whole file.
    TransferEnd {
        /// The transfer.
        transfer: u32,
        /// SHA-256 of the complete content.
        sha256: [u8; 32],
    },
    /// Abandon a transfer (the partial file is kept for a later resume).
    Cancel {
        /// The transfer.
        transfer: u32,
    },
    /// A request, after login.
    Request {
        /// Chosen by the client; echoed in every response to it.
        id: u32,
        /// What to do.
        req: Request,
    },
}

/// Messages from server to client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Sent right after the hello.
    Welcome {
        /// Server software and version, for display.
        server: String,
        /// SASL mechanisms offered, best first.
        mechanisms: Vec<String>,
        /// Present when the server requires an access key.
        access_challenge: Option<Vec<u8>>,
    },
    /// SCRAM server-first-message.
    AuthChallenge {
        /// The message.
        server_first: String,
    },
    /// Login succeeded.
    AuthOk {
        /// SCRAM server-final-message: the client must verify it.
        server_final: String,
        /// Requests the server runs at once on this connection. It queues
        /// as many again and refuses more (`TooBusy`), so a client keeps
        /// at most this many in flight. Eager uploads do not count here.
        max_requests: u32,
        /// Eager uploads (files of one chunk or less, sent whole at once)
        /// a client may have in flight, counted apart: they cost the server
        /// one chunk of memory each and share a few threads, so a tree of
        /// small files can keep many more in flight. Beyond this they are
        /// refused (`TooBusy`).
        max_small_uploads: u32,
    },
    /// The connection is refused (login failure, ban, limits); the server closes it next.
    Refused {
        /// Why.
        error: RemoteError,
    },
    /// A response to a request. Some requests (listing) get several.
    Response {
        /// The request's id.
        id: u32,
        /// The outcome.
        reply: Result<Reply, RemoteError>,
    },
}

/// How to remove a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoveMode {
    /// A file or symlink only.
    File,
    /// An empty directory only.
    EmptyDir,
    /// Anything, recursively; symlinks are removed, never followed.
    Recursive,
}

/// Requests a logged-in client can make. Paths are relative to the home
/// ("/" is the home) and are validated by the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// List a directory; answered by one or more `Entries` batches.
    List {
        /// Directory to list.
        path: String,
    },
    /// Metadata of one path (symlinks are not followed).
    Stat {
        /// The path.
        path: String,
    },
    /// Create a directory.
    Mkdir {
        /// The directory.
        path: String,
        /// Create missing parents, and succeed if it exists.
        parents: bool,
    },
    /// Remove a path.
    Remove {
        /// The path.
        path: String,
        /// What kinds of removal are allowed.
        mode: RemoveMode,
    },
    /// Rename or move within the home.
    Rename {
        /// Existing path.
        from: String,
        /// New path.
        to: String,
        /// Replace an existing file at `to`.
        overwrite: bool,
    },
    /// Disk usage and limit.
    Quota,
    /// SHA-256 of `length` bytes of a file from `offset` (to its end
    /// when `None`).
    Checksum {
        /// The file.
        path: String,
        /// First byte to hash.
        offset: u64,
        /// How many bytes to hash.
        length: Option<u64>,
    },
    /// Start an upload of `size` bytes to `path`. Answered by `PutReady`,
    /// then (after `PutStart`, data frames and `TransferEnd`) by `PutDone`
    /// or an error, which may also come early (quota, disk full).
    PutOpen {
        /// Client-chosen id for data frames, unique on the connection.
        transfer: u32,
        /// Target file.
        path: String,
        /// Declared size; the quota is checked against it before any byte.
        size: u64,
        /// Modification time to give the file, seconds since the epoch.
        mtime: i64,
        /// Permission bits to give the file.
        mode: u32,
        /// Replace an existing complete file.
        overwrite: bool,
        /// Keep a partial file from an earlier attempt (else start afresh).
        resume: bool,
        /// Small-file fast path: the client sends the data frames and
        /// `TransferEnd` right away, from offset 0, without waiting for
        /// `PutReady` (which is then not sent) or sending `PutStart`.
        eager: bool,
    },
    /// Start a download. The client already holds `offset` bytes whose
    /// SHA-256 is `prefix_sha256`; the server checks them against its file
    /// and answers `GetReady` with the offset it will send from (0 when the
    /// prefix differs), then data frames, then `GetDone`.
    GetOpen {
        /// Client-chosen id for data frames, unique on the connection.
        transfer: u32,
        /// Source file.
        path: String,
        /// Bytes the client already has.
        offset: u64,
        /// SHA-256 of those bytes (required when `offset > 0`).
        prefix_sha256: Option<[u8; 32]>,
        /// Hash the file as it is read, even if the server holds a checksum
        /// recorded when the file was uploaded (see `GetDone::stored`).
        rehash: bool,
    },
    /// Set a file's or directory's permission bits (within
    /// [`MODE_BITS`]: set-id and sticky bits are refused). Symbolic links
    /// are refused, never followed.
    Chmod {
        /// The path.
        path: String,
        /// The new permission bits.
        mode: u32,
    },
    /// Read at most `length` bytes (capped at [`READ_MAX`]) of a file from
    /// `offset`: answered by data frames with the client's `transfer` id,
    /// then `ReadDone`, in order.
    Read {
        /// Client-chosen id for the data frames, unique on the connection.
        transfer: u32,
        /// The file.
        path: String,
        /// First byte.
        offset: u64,
        /// Bytes wanted.
        length: u32,
    },
    /// Copy a file, or with `recursive` a directory and its tree, within
    /// the home; `to` must not exist. Counted against the quota before
    /// anything is written. Answered by `Copied`.
    Copy {
        /// Existing path.
        from: String,
        /// New path.
        to: String,
        /// Copy a directory with everything in it.
        recursive: bool,
    },
    /// Search the tree under `path` for entries whose name matches the
    /// glob `pattern` (`*`, `?`, `[...]`; at most [`FIND_PATTERN_MAX`]
    /// bytes), with optional filters. Answered by `Found` batches; the
    /// server stops at its limits of time and entries looked at.
    Find {
        /// Directory to search.
        path: String,
        /// Glob matched against each entry's name.
        pattern: String,
        /// Only regular files of at least this many bytes.
        min_size: Option<u64>,
        /// Only regular files of at most this many bytes.
        max_size: Option<u64>,
        /// Only entries modified after this time (Unix seconds).
        newer: Option<i64>,
        /// Only entries modified before this time (Unix seconds).
        older: Option<i64>,
    },
    /// Set a file's or directory's modification time (Unix seconds), on
    /// the entry itself: symbolic links are refused, never followed.
    /// `ferry sync --checksum` uses it when contents are equal and only
    /// the times differ. Answered by `Done`.
    SetMtime {
        /// The path.
        path: String,
        /// The new modification time.
        mtime: i64,
    },
}

/// The longest glob a `Find` may carry.
pub const FIND_PATTERN_MAX: usize = 1024;

/// The permission bits a `Chmod` may set: read, write and search for
/// owner, group and others. Set-id and sticky bits are never set.
pub const MODE_BITS: u32 = 0o777;

/// The most bytes one `Read` returns; a longer one gets this many.
pub const READ_MAX: u32 = 1 << 20;

/// Kind of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed by the server).
    Symlink,
    /// A fifo, socket or device.
    Other,
}

impl EntryKind {
    /// The kind from a file type's three questions (symlinks not followed).
    pub fn classify(is_symlink: bool, is_dir: bool, is_file: bool) -> EntryKind {
        if is_symlink {
            EntryKind::Symlink
        } else if is_dir {
            EntryKind::Dir
        } else if is_file {
            EntryKind::File
        } else {
            EntryKind::Other
        }
    }
}

/// One directory entry or stat result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// File name (the last component), UTF-8 (lossy for non-UTF-8 names).
    pub name: String,
    /// Kind.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Permission bits (e.g. 0o644).
    pub mode: u32,
}

/// Successful outcomes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// A batch of directory entries; `more` says whether others follow.
    Entries {
        /// The batch.
        entries: Vec<Entry>,
        /// True when further batches follow for the same request.
        more: bool,
    },
    /// Stat result.
    Stat(Entry),
    /// The operation succeeded.
    Done,
    /// Quota report.
    Quota {
        /// Bytes used, partial files included (a directory counts 4 KiB).
        used: u64,
        /// The limit, if any.
        limit: Option<u64>,
        /// Entries used: files, directories, symlinks, partial files.
        entries: u64,
        /// The entry limit, if any.
        max_entries: Option<u64>,
    },
    /// Checksum result.
    Checksum {
        /// Bytes hashed.
        length: u64,
        /// SHA-256 of them.
        sha256: [u8; 32],
    },
    /// Upload accepted. The server holds `partial` bytes from an earlier
    /// attempt, whose SHA-256 is `prefix_sha256`; the client compares them
    /// with its own file before choosing where to start.
    PutReady {
        /// Length of the partial file (0 if none).
        partial: u64,
        /// SHA-256 of the partial's bytes (when `partial > 0`).
        prefix_sha256: Option<[u8; 32]>,
    },
    /// Upload verified, synced and renamed into place.
    PutDone {
        /// Final size.
        size: u64,
        /// SHA-256 the server computed (equal to the client's).
        sha256: [u8; 32],
    },
    /// Download starting.
    GetReady {
        /// Size of the file.
        size: u64,
        /// First byte the server will send (0 when the client's prefix did not match).
        offset: u64,
        /// Modification time, seconds since the epoch.
        mtime: i64,
        /// Permission bits.
        mode: u32,
    },
    /// A `Read` is complete: its data frames came before this.
    ReadDone {
        /// Bytes sent (fewer than asked at the end of the file).
        length: u64,
        /// The file's size when it was read.
        size: u64,
    },
    /// A batch of `Find` results: each entry's `name` is its path from
    /// the home (`/a/b.txt`).
    Found {
        /// The batch.
        entries: Vec<Entry>,
        /// True when further batches follow.
        more: bool,
        /// On the last batch: false when the search stopped at the
        /// server's limits before it looked at the whole tree.
        complete: bool,
    },
    /// A copy is complete.
    Copied {
        /// Entries made.
        entries: u64,
        /// Bytes they count against the quota.
        bytes: u64,
    },
    /// Download complete: SHA-256 of the whole file.
    GetDone {
        /// The hash.
        sha256: [u8; 32],
        /// The hash is the one the server verified when the file was
        /// uploaded (the file's size and mtime have not changed since), not
        /// one computed while sending. A client that finds a mismatch asks
        /// again with `rehash`.
        stored: bool,
    },
}

impl Reply {
    /// Whether this is the last response to its request.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            Reply::Entries { more: true, .. }
                | Reply::Found { more: true, .. }
                | Reply::PutReady { .. }
                | Reply::GetReady { .. }
        )
    }
}

/// The hidden directory where a receiver keeps its files in progress: the
/// server at the top of each home, the client beside the targets. The
/// name is reserved ([`crate::path::RemotePath`] refuses it), so no user
/// operation or remote listing can name or reach a partial.
pub const PARTIALS_DIR: &str = ".ferry-partials";
