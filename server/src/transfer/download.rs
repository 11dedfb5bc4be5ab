//! Sending a file: after checking the client's prefix hash (a resume), the
//! file streams as data frames through the connection's bounded bulk queue,
//! hashed as read; `GetDone` carries the SHA-256 of everything sent.

use std::io::{Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cap_std::fs::MetadataExt;
use ferry_proto::chunks::{ChunkReader, HashPipe};
use ferry_proto::{ErrorKind, Frame, RemoteError, RemotePath, Reply, CHUNK_SIZE};
use sha2::{Digest, Sha256};

use super::{hash_prefix, stored};
use crate::accounts::Account;
use crate::jail::io_error;
use crate::logfmt::q;
use crate::outbox::Outbox;

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

/// Runs a download on the current (blocking) thread.
pub fn run(spec: DownloadSpec, account: Arc<Account>, out: Outbox, cancel: Arc<AtomicBool>) {
    match send(&spec, &account, &out, &cancel) {
        Ok(()) => tracing::info!(user = %account.name, path = %q(&spec.path), "download complete"),
        Err(e) => {
            tracing::info!(user = %account.name, path = %q(&spec.path), error = %q(&e), "download ended");
            out.blocking_bulk_reply(spec.id, Err(e));
        }
    }
}

fn send(
    spec: &DownloadSpec,
    account: &Account,
    out: &Outbox,
    cancel: &AtomicBool,
) -> Result<(), RemoteError> {
    let path = &spec.path;
    let io = |e| io_error(path, e);
    let dir = account.home.dir();
    let file = dir.open(path.to_relative()).map_err(io)?;
    let md = file.metadata().map_err(io)?;
    // std's File reads into spare capacity as it is; through cap-std's
    // `Read`, every chunk's buffer would be zeroed first (~3% of a get).
    let mut file = file.into_std();
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
    let mut hasher = Sha256::new();
    let mut start = 0;
    if let (true, Some(theirs)) = (spec.offset > 0 && spec.offset <= size, spec.prefix_sha256) {
        hash_prefix(&mut file, spec.offset, &mut hasher).map_err(io)?;
        if <[u8; 32]>::from(hasher.clone().finalize()) == theirs {
            start = spec.offset;
        } else {
            hasher = Sha256::new();
        }
    }
    let ready = Reply::GetReady {
        size,
        offset: start,
        mtime: md.mtime(),
        mode: md.mode() & 0o7777,
    };
    if !out.blocking_bulk_reply(spec.id, Ok(ready)) {
        return Ok(()); // connection gone
    }
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut left = size - start;
    // With a valid record the content needs no hash here: the client
    // checks it against the hash verified at upload.
    let mut pipe = known.is_none().then(|| HashPipe::new(hasher, left));
    let mut reader = ChunkReader::new();
    while left > 0 {
        if cancel.load(Ordering::Relaxed) {
            return Err(RemoteError::bare(ErrorKind::Cancelled));
        }
        let want = left.min(CHUNK_SIZE as u64) as usize;
        let data = reader.read(&mut file, want).map_err(io)?;
        if let Some(pipe) = &mut pipe {
            pipe.update(&data);
        }
        left -= want as u64;
        if !out.blocking_data(Frame::Data {
            transfer: spec.transfer,
            data,
        }) {
            return Ok(());
        }
    }
    let done = match (known, pipe.map(HashPipe::finish)) {
        (Some(sha256), _) => Ok(Reply::GetDone {
            sha256,
            stored: true,
        }),
        (None, Some(Some(sha256))) => {
            if recorded.is_some_and(|r| r != sha256) {
                tracing::warn!(
                    path = %q(path),
                    "content changed without a new size or mtime (edited in place, or damaged on disk): \
                     the checksum recorded at upload no longer matches; record removed"
                );
                stored::forget(&file);
            }
            Ok(Reply::GetDone {
                sha256,
                stored: false,
            })
        }
        (None, _) => Err(RemoteError::new(ErrorKind::Io, "hashing failed")),
    };
    out.blocking_bulk_reply(spec.id, done);
    Ok(())
}
