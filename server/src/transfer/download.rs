//! Sending a file: after checking the client's prefix hash (a resume), the
//! file streams as data frames through the connection's bounded bulk queue,
//! hashed as read; `GetDone` carries the SHA-256 of everything sent. A large
//! file is bulk work (see `crate::bulk`): its reads and its hashing run on
//! the low-priority threads, its hashing in a [`HashLane`] beside its reads.

use std::io::{Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cap_std::fs::MetadataExt;
use ferry_proto::chunks::ChunkReader;
use ferry_proto::{ErrorKind, Frame, RemoteError, RemotePath, Reply, CHUNK_SIZE};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::stored;
use crate::accounts::Account;
use crate::budget::{Charge, OVERHEAD};
use crate::jail::io_error;
use crate::logfmt::q;
use crate::outbox::Outbox;
use crate::threads::{HashLane, Threads, BULK_MIN};

/// What the client asked for.
#[derive(Debug)]
pub struct DownloadSpec {
    /// Request id.
    pub id: u32,
    /// Transfer id for data frames.
    pub transfer: u32,
    /// Source file.
    pub path: RemotePath,
    /// Bytes the client already holds.
    pub offset: u64,
    /// Their SHA-256.
    pub prefix_sha256: Option<[u8; 32]>,
    /// Send the checksum recorded at upload, when still valid, instead of
    /// hashing while reading (the client did not ask for `rehash` and the
    /// server's configuration allows it).
    pub use_stored: bool,
}

/// Runs a download to its end: each few chunks are read in a step of
/// their own on the user's threads, once the connection's budget has room
/// for them; waiting for the client to read happens here, in async, with
/// `stall` as its limit. `keep` (turn, places, slot) goes back as the last
/// reply is written.
pub async fn stream(
    spec: DownloadSpec,
    account: Arc<Account>,
    out: Outbox,
    cancel: Arc<AtomicBool>,
    threads: Threads,
    stall: Duration,
    keep: impl Send + 'static,
) {
    let spec = Arc::new(spec);
    let last = match send(&spec, &account, &out, &cancel, &threads, stall).await {
        Ok(done) => {
            tracing::info!(user = %q(&account.name), path = %q(&spec.path), "download complete");
            done
        }
        Err(e) => {
            tracing::info!(user = %q(&account.name), path = %q(&spec.path), error = %q(&e), "download ended");
            Some(Err(e))
        }
    };
    if let Some(reply) = last {
        out.bulk_reply_holding(spec.id, reply, keep).await;
    }
}

/// A file being sent: what its steps need.
struct Sending {
    file: std::fs::File,
    reader: ChunkReader,
    /// The hash so far, when hashed inline (small files, no recorded
    /// checksum).
    hasher: Option<Sha256>,
}

/// How a download's content is hashed.
enum Hashing {
    /// Not at all: a recorded checksum is sent.
    Known([u8; 32]),
    /// Inline, in the read steps (small files).
    Inline,
    /// Beside the reads (large files).
    Lane(HashLane),
}

/// Chunks read in one step at most.
const STEP_CHUNKS: usize = 4;

/// Chunks of one download queued or being hashed at most (4 MiB): enough
/// to keep the socket busy, and the rest of the connection's budget is
/// left to its other requests.
const WINDOW: usize = 16;

/// What a chunk on its way holds: its bytes in the connection's budget,
/// and its place in the download's window.
type Room = (Charge, OwnedSemaphorePermit);

/// Sends the file; returns the last reply (None when the connection is
/// gone).
async fn send(
    spec: &Arc<DownloadSpec>,
    account: &Arc<Account>,
    out: &Outbox,
    cancel: &AtomicBool,
    threads: &Threads,
    stall: Duration,
) -> Result<Option<Result<Reply, RemoteError>>, RemoteError> {
    let internal = || RemoteError::new(ErrorKind::Io, "internal error");
    let (s, a) = (spec.clone(), account.clone());
    let (opened, recorded, known) = threads
        .run(move || open(&s, &a))
        .await
        .ok_or_else(internal)??;
    let (ready, mut sending, mut left, hashing) = resume(spec, opened, known, threads).await?;
    let bulk = left >= BULK_MIN;
    if !out.bulk_reply(spec.id, Ok(ready)).await {
        return Ok(None); // connection gone
    }
    let window = Arc::new(Semaphore::new(WINDOW));
    while left > 0 {
        if cancel.load(Ordering::Relaxed) {
            return Err(RemoteError::bare(ErrorKind::Cancelled));
        }
        // Room for the next chunk (waiting while the client does not
        // read), and for a few more if there is some now.
        let chunk = |left: u64| left.min(CHUNK_SIZE as u64) as usize;
        let first = chunk(left);
        let room = tokio::time::timeout(stall, async {
            let slot = window.clone().acquire_owned().await.ok()?;
            let charge = out.budget().charge(first + OVERHEAD).await?;
            Some((charge, slot))
        })
        .await;
        let mut charges = match room {
            Ok(Some(room)) => vec![(first, room)],
            Ok(None) => return Ok(None),
            Err(_) => {
                return Err(RemoteError::new(
                    ErrorKind::TimedOut,
                    format!(
                        "{}: nothing was read for {} s; run the download again to resume",
                        spec.path,
                        stall.as_secs()
                    ),
                ))
            }
        };
        let mut planned = first as u64;
        while charges.len() < STEP_CHUNKS && planned < left {
            let want = chunk(left - planned);
            let Ok(slot) = window.clone().try_acquire_owned() else {
                break;
            };
            match out.budget().try_charge(want + OVERHEAD) {
                Some(c) => charges.push((want, (c, slot))),
                None => break,
            }
            planned += want as u64;
        }
        let s = spec.clone();
        let (back, read) = threads
            .run_maybe_bulk(bulk, move || {
                let r = sending.read(&s, charges);
                (sending, r)
            })
            .await
            .ok_or_else(internal)?;
        sending = back;
        for (data, charge) in read? {
            left -= data.len() as u64;
            if let Hashing::Lane(lane) = &hashing {
                if !lane.feed(data.clone(), charge.clone()).await {
                    return Err(hashing_failed());
                }
            }
            let frame = Frame::Data {
                transfer: spec.transfer,
                data,
            };
            if !out.data(frame, charge) {
                return Ok(None);
            }
        }
        out.progressed();
    }
    let sha256 = match hashing {
        Hashing::Known(sha256) => {
            return Ok(Some(Ok(Reply::GetDone {
                sha256,
                stored: true,
            })))
        }
        Hashing::Inline => sending.hasher.map(|h| h.finalize().into()),
        Hashing::Lane(lane) => lane.finish().await,
    };
    let sha256 = sha256.ok_or_else(hashing_failed)?;
    if recorded.is_some_and(|r| r != sha256) {
        tracing::warn!(
            path = %q(&spec.path),
            "content changed without a new size or mtime (edited in place, or damaged on disk): \
             the checksum recorded at upload no longer matches; record removed"
        );
        let file = sending.file;
        threads.run(move || stored::forget(&file)).await;
    }
    Ok(Some(Ok(Reply::GetDone {
        sha256,
        stored: false,
    })))
}

fn hashing_failed() -> RemoteError {
    RemoteError::new(ErrorKind::Io, "hashing failed")
}

impl Sending {
    /// Reads one chunk per charge (one step), each with its charge (which
    /// a [`HashLane`] shares until it has hashed the chunk); hashes them
    /// here when hashing inline.
    fn read(
        &mut self,
        spec: &DownloadSpec,
        charges: Vec<(usize, Room)>,
    ) -> Result<Vec<(Bytes, Arc<Room>)>, RemoteError> {
        let io = |e| io_error(&spec.path, e);
        let mut read = Vec::with_capacity(charges.len());
        for (want, charge) in charges {
            let data = self.reader.read(&mut self.file, want).map_err(io)?;
            if let Some(h) = &mut self.hasher {
                h.update(&data);
            }
            read.push((data, Arc::new(charge)));
        }
        Ok(read)
    }
}

/// A file opened for sending, with what `GetReady` tells of it.
struct Opened {
    file: std::fs::File,
    size: u64,
    mtime: i64,
    mode: u32,
}

/// The first step: opens the file and looks up its recorded checksum.
/// Returns it with the record and the checksum to send without hashing.
#[allow(clippy::type_complexity)]
fn open(
    spec: &DownloadSpec,
    account: &Account,
) -> Result<(Opened, Option<[u8; 32]>, Option<[u8; 32]>), RemoteError> {
    let path = &spec.path;
    let io = |e| io_error(path, e);
    let dir = account.home.disk()?.dir();
    let file = dir.open(path.to_relative()).map_err(io)?;
    let md = file.metadata().map_err(io)?;
    // std's File reads into spare capacity as it is; through cap-std's
    // `Read`, every chunk's buffer would be zeroed first (~3% of a get).
    let file = file.into_std();
    if md.is_dir() {
        return Err(RemoteError::new(ErrorKind::IsADirectory, path.to_string()));
    }
    if !md.is_file() {
        return Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{path} is not a regular file"),
        ));
    }
    let size = md.len();
    // Only uploads over `RECORD_MIN` keep a record: smaller files skip
    // the lookup (one failing xattr call per file of a tree).
    let recorded = (size > stored::RECORD_MIN)
        .then(|| stored::lookup(&file))
        .flatten();
    let known = recorded.filter(|_| spec.use_stored);
    let opened = Opened {
        file,
        size,
        mtime: md.mtime(),
        mode: md.mode() & 0o7777,
    };
    Ok((opened, recorded, known))
}

/// Checks the client's prefix (a resume), hashing it in CPU-heavy steps
/// on the user's share of the cores. Returns `GetReady`, the file
/// positioned where sending starts, the bytes left to send, and how they
/// are hashed.
async fn resume(
    spec: &DownloadSpec,
    opened: Opened,
    known: Option<[u8; 32]>,
    threads: &Threads,
) -> Result<(Reply, Sending, u64, Hashing), RemoteError> {
    let path = &spec.path;
    let io = |e| io_error(path, e);
    let internal = || RemoteError::new(ErrorKind::Io, "internal error");
    let Opened {
        mut file,
        size,
        mtime,
        mode,
    } = opened;
    let mut hasher = Sha256::new();
    let mut start = 0;
    if let (true, Some(theirs)) = (spec.offset > 0 && spec.offset <= size, spec.prefix_sha256) {
        let (back, ours) = threads
            .hash(file, spec.offset, Sha256::new())
            .await
            .ok_or_else(internal)?
            .map_err(io)?;
        file = back;
        if <[u8; 32]>::from(ours.clone().finalize()) == theirs {
            start = spec.offset;
            hasher = ours;
        }
    }
    let ready = Reply::GetReady {
        size,
        offset: start,
        mtime,
        mode,
    };
    let left = size - start;
    let file = threads
        .run(move || file.seek(SeekFrom::Start(start)).map(|_| file))
        .await
        .ok_or_else(internal)?
        .map_err(io)?;
    // With a valid record the content needs no hash here: the client
    // checks it against the hash verified at upload.
    let (hashing, hasher) = match known {
        Some(sha256) => (Hashing::Known(sha256), None),
        None if left >= BULK_MIN => (Hashing::Lane(threads.hash_lane(hasher)), None),
        None => (Hashing::Inline, Some(hasher)),
    };
    let sending = Sending {
        file,
        reader: ChunkReader::new(),
        hasher,
    };
    Ok((ready, sending, left, hashing))
}
