//! Receiving a file: a partial in the user's private area (see
//! [`super::partials`]), hashed as it is written, checked against the
//! sender's SHA-256, synced, then renamed into place. A resumed upload first
//! shows the client the partial's prefix hash. A large upload is bulk work
//! (see `crate::bulk`): its disk steps and its hashing run on the
//! low-priority threads, its hashing in a [`crate::threads::HashLane`]
//! beside its writes.
//! The quota is reserved for the declared size (less the file it replaces)
//! before any byte is written, any byte beyond it must reserve more, and
//! the final rename is counted by what it actually replaced
//! ([`Reservation::settle`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cap_std::fs::{Dir, File};
use ferry_proto::{ErrorKind, RemoteError, RemotePath, Reply};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::commit::{Committer, Verified};
use super::partials;
use super::UploadMsg;
use crate::accounts::{Account, PathLock};
use crate::jail::io_error;
use crate::ledger::Reservation;
use crate::logfmt::q;
use crate::outbox::Outbox;
use crate::threads::{Threads, BULK_MIN};

mod disk;
mod writing;

use disk::{create_partial, open_partial};
pub use disk::{mtime, replaced_cost, sync_dir};
use writing::begin;

/// What the client asked for.
#[derive(Debug)]
pub struct UploadSpec {
    /// Request id (for replies).
    pub id: u32,
    /// Target path.
    pub path: RemotePath,
    /// Declared size.
    pub size: u64,
    /// Modification time to set.
    pub mtime: i64,
    /// Permission bits to set.
    pub mode: u32,
    /// Replace an existing file.
    pub overwrite: bool,
    /// Keep an existing partial.
    pub resume: bool,
    /// Data follows without `PutReady`/`PutStart` (small files).
    pub eager: bool,
}

/// What every upload of a connection shares.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The user's share of blocking threads.
    pub threads: Threads,
    /// How long an upload may go without a message from its client.
    pub stall: Duration,
    /// Commits small files in groups.
    pub committer: Committer,
}

/// Runs an ordinary upload to its end and sends the final reply; `keep`
/// (its turn, places, slot) goes back as that reply is written. File work
/// runs in bounded steps on the user's threads (open, each batch of
/// chunks that has arrived, finish); waiting for the client happens here,
/// between steps, with `ctx.stall` as its limit.
pub async fn stream(
    spec: UploadSpec,
    account: Arc<Account>,
    rx: mpsc::Receiver<UploadMsg>,
    out: Outbox,
    ctx: Ctx,
    keep: impl Send + 'static,
) {
    let spec = Arc::new(spec);
    let (result, replaced_file) = match streamed(&spec, &account, rx, &out, &ctx).await {
        Ok((reply, old)) => (Ok(reply), old),
        Err(e) => (Err(e), None),
    };
    log(&spec, &account, &result);
    out.reply_holding(spec.id, result, keep).await;
    // The file this upload replaced goes now, once the answer is on its
    // way (see `Received::Committed`).
    drop(replaced_file);
}

/// The upload's steps; the reply and the replaced file, still open.
async fn streamed(
    spec: &Arc<UploadSpec>,
    account: &Arc<Account>,
    mut rx: mpsc::Receiver<UploadMsg>,
    out: &Outbox,
    ctx: &Ctx,
) -> Result<(Reply, Option<File>), RemoteError> {
    let internal = || RemoteError::new(ErrorKind::Io, "internal error");
    let (s, a) = (spec.clone(), account.clone());
    let mut opened = ctx
        .threads
        .run(move || open(&s, &a))
        .await
        .ok_or_else(internal)??;
    // What an earlier attempt left is hashed in CPU-heavy steps, on the
    // user's share of the cores (it may be gigabytes).
    let prefix = if opened.partial > 0 {
        let (file, hasher) = ctx
            .threads
            .hash(opened.file, opened.partial, Sha256::new())
            .await
            .ok_or_else(internal)?
            .map_err(|e| io_error(&spec.path, e))?;
        opened.file = file;
        opened.hasher = hasher;
        Some(opened.hasher.clone().finalize().into())
    } else {
        None
    };
    let superseded = opened.lock.superseded.clone();
    let partial = opened.partial;
    out.reply(
        spec.id,
        Ok(Reply::PutReady {
            partial,
            prefix_sha256: prefix,
        }),
    )
    .await;
    let start = match next(&mut rx, &superseded, ctx.stall).await? {
        UploadMsg::Start(offset) => offset,
        _ => return Err(bad("expected PutStart")),
    };
    let s = spec.clone();
    let bulk = spec.size.saturating_sub(start) >= BULK_MIN;
    let (mut writing, lane) = ctx
        .threads
        .run(move || begin(opened, &s, start, bulk))
        .await
        .ok_or_else(internal)??;
    let lane = lane.map(|state| ctx.threads.hash_lane(state));
    let threads = &ctx.threads;
    let sha = loop {
        // What has arrived, written in one step.
        let mut batch = vec![next(&mut rx, &superseded, ctx.stall).await?];
        while batch.len() < STEP_CHUNKS {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let s = spec.clone();
        let (back, r) = threads
            .run_maybe_bulk(bulk, move || {
                let r = writing.write(&s, batch);
                (writing, r)
            })
            .await
            .ok_or_else(internal)?;
        writing = back;
        out.progressed();
        let (end, written) = r?;
        if let Some(lane) = &lane {
            for (bytes, charge) in written {
                if !lane.feed(bytes, charge).await {
                    return Err(hashing_failed());
                }
            }
        }
        if let Some(sha) = end {
            break sha;
        }
    };
    let hashed = match lane {
        Some(lane) => Some(lane.finish().await.ok_or_else(hashing_failed)?),
        None => None,
    };
    let (s, a) = (spec.clone(), account.clone());
    match threads
        .run_maybe_bulk(bulk, move || writing.finish(&s, &a, sha, hashed))
        .await
        .ok_or_else(internal)??
    {
        Received::Committed(reply, old) => Ok((reply, old)),
        Received::ToCommit(c) => {
            let (tx, done) = tokio::sync::oneshot::channel();
            let then = move |r: std::io::Result<()>| {
                let _ = tx.send(r);
            };
            let ToCommit {
                upload,
                reply,
                lock,
            } = c;
            ctx.committer.commit_then(upload, Box::new(then));
            let committed = done
                .await
                .unwrap_or_else(|_| Err(ferry_proto::commit::stopped()));
            drop(lock);
            committed.map_err(|e| io_error(&spec.path, e))?;
            Ok((reply, None))
        }
    }
}

/// Chunks written in one step at most.
const STEP_CHUNKS: usize = 16;

fn hashing_failed() -> RemoteError {
    RemoteError::new(ErrorKind::Io, "hashing failed")
}

/// The next message for an upload: an error when the connection ended, a
/// newer upload of the path took over, or nothing came for `stall`.
async fn next(
    rx: &mut mpsc::Receiver<UploadMsg>,
    superseded: &tokio_util::sync::CancellationToken,
    stall: Duration,
) -> Result<UploadMsg, RemoteError> {
    tokio::select! {
        m = tokio::time::timeout(stall, rx.recv()) => match m {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(RemoteError::bare(ErrorKind::Cancelled)),
            Err(_) => Err(RemoteError::new(
                ErrorKind::TimedOut,
                format!(
                    "nothing arrived for {} s; the partial file is kept for a resume",
                    stall.as_secs()
                ),
            )),
        },
        _ = superseded.cancelled() => Err(RemoteError::bare(ErrorKind::Cancelled)),
    }
}

/// Runs an eager upload (a small file, whose data and end have all
/// arrived) on the current blocking thread, in one step. A small file
/// ends on the commit thread, which hands the reply to a task once the
/// file is durable; `keep` goes back as that reply is written.
pub fn run_eager(
    spec: UploadSpec,
    account: Arc<Account>,
    mut rx: mpsc::Receiver<UploadMsg>,
    out: Outbox,
    committer: &Committer,
    keep: impl Send + 'static,
) {
    let mut msgs = Vec::new();
    while let Ok(m) = rx.try_recv() {
        msgs.push(m);
    }
    let received = open(&spec, &account).and_then(|opened| {
        let (mut writing, _) = begin(opened, &spec, 0, false)?;
        match writing.write(&spec, msgs)?.0 {
            Some(sha) => writing.finish(&spec, &account, sha, None),
            None => Err(RemoteError::bare(ErrorKind::Cancelled)),
        }
    });
    let result = match received {
        Ok(Received::Committed(reply, _old)) => Ok(reply),
        Ok(Received::ToCommit(c)) => {
            let ToCommit {
                upload,
                reply,
                lock,
            } = c;
            let then = move |committed: std::io::Result<()>| {
                let result = match committed {
                    Ok(()) => Ok(reply),
                    Err(e) => Err(io_error(&spec.path, e)),
                };
                log(&spec, &account, &result);
                // The path is free for the next upload at once; the places
                // are given back as the reply goes out (before the client
                // can hear of it, so its next upload never finds this one
                // still counted, and not before, so a client that does not
                // read its replies cannot start more).
                drop(lock);
                out.reply_later(spec.id, result, keep);
            };
            committer.commit_then(upload, Box::new(then));
            return;
        }
        Err(e) => Err(e),
    };
    log(&spec, &account, &result);
    out.reply_later(spec.id, result, keep);
}

/// The upload's outcome, in the audit log or the server log.
fn log(spec: &UploadSpec, account: &Account, result: &Result<Reply, RemoteError>) {
    match result {
        Ok(_) => {
            tracing::info!(target: "audit", user = %q(&account.name), op = "put", path = %q(&spec.path), size = spec.size);
        }
        Err(e) if e.kind == ErrorKind::Cancelled => {
            tracing::info!(user = %q(&account.name), path = %q(&spec.path), "upload interrupted; partial kept");
        }
        Err(e) => {
            tracing::info!(user = %q(&account.name), path = %q(&spec.path), error = %q(e), "upload failed");
        }
    }
}

/// How a verified upload ends.
enum Received {
    /// Renamed into place and durable (large files commit themselves).
    /// With the file it replaced, still open: its blocks are freed when
    /// that is closed, after the reply. Freeing takes a while for a large
    /// file (150 ms per GiB measured with ext4's `discard` mount option,
    /// common on cloud disks), which the client would otherwise wait for.
    Committed(Reply, Option<File>),
    /// Verified, to be committed in a group (small files).
    ToCommit(ToCommit),
}

/// A verified small upload on its way to the commit thread.
struct ToCommit {
    /// The files, names and quota.
    upload: Verified,
    /// Sent once committed.
    reply: Reply,
    /// Held until the rename, so no other upload of the path touches the
    /// partial meanwhile.
    lock: PathLock,
}

fn bad(msg: impl Into<String>) -> RemoteError {
    RemoteError::new(ErrorKind::BadRequest, msg)
}

/// An upload's partial, open, with what it already holds.
struct Opened {
    lock: PathLock,
    /// The parent directory, opened once (within the home, as every path
    /// is): the names are single components, so each call looks up one
    /// name instead of walking the whole path again.
    parent: Dir,
    /// The user's partial area, which holds `part`.
    partials: Dir,
    target: PathBuf,
    part: PathBuf,
    file: File,
    reservation: Reservation,
    /// Bytes an earlier attempt left that may be resumed from.
    partial: u64,
    /// Their hash, once hashed.
    hasher: Sha256,
    /// Bytes of the file this upload replaces.
    replaced: u64,
}

/// The first step: takes the path, checks the target, opens (or creates)
/// the partial with quota reserved. What it already holds (`partial`
/// bytes) is hashed next, in steps.
fn open(spec: &UploadSpec, account: &Arc<Account>) -> Result<Opened, RemoteError> {
    let path = &spec.path;
    let home = account.home.disk()?;
    let dir = home.dir();
    let Some(name) = path.file_name() else {
        return Err(RemoteError::new(ErrorKind::IsADirectory, "/"));
    };
    home.check_depth(path)?;
    let partials = home.partials().map_err(|e| io_error(path, e))?;
    // With several nodes, an eager upload (one step, never resumed) takes
    // its path on this node only and writes a partial of its own: no
    // claim in the store, and no other node's upload can share its file.
    // Where an earlier attempt left the path's partial, it claims the
    // path as others do and replaces that partial.
    let own = spec.eager
        && account.shares_home()
        && matches!(partials.symlink_metadata(partials::key(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    let lock = if own {
        account.lock_path_here(path)?
    } else {
        account.lock_path(path)?
    };
    let parent = dir
        .open_dir(path.parent().to_relative())
        .map_err(|e| io_error(&path.parent(), e))?;
    let dir = &parent;
    let target = PathBuf::from(name);
    let part = PathBuf::from(match own {
        true => partials::own_key(path).map_err(|e| io_error(path, e))?,
        false => partials::key(path),
    });

    let replaced = match dir.symlink_metadata(&target) {
        Ok(md) if md.is_dir() => {
            return Err(RemoteError::new(ErrorKind::IsADirectory, path.to_string()))
        }
        Ok(md) if !spec.overwrite => {
            return Err(RemoteError::new(
                ErrorKind::AlreadyExists,
                format!("{path} ({} bytes)", md.len()),
            ))
        }
        Ok(md) if md.is_file() => md.len(),
        Ok(_) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io_error(path, e)),
    };

    // An eager upload (a small file) starts afresh whatever a partial
    // holds: it reserves first and creates its partial in one call, and
    // looks at an earlier partial only when one is there.
    let fresh = if spec.eager {
        let reservation =
            account
                .ledger
                .reserve_for(spec.size, replaced, (!own).then(|| path.to_string()))?;
        create_partial(partials, &part, &account.ledger)
            .map_err(|e| io_error(path, e))?
            .map(|file| (file, reservation))
    } else {
        None
    };
    let (file, reservation, partial) = match fresh {
        Some((file, reservation)) => (file, reservation, 0),
        None => open_partial(spec, &account.ledger, partials, &part, replaced)?,
    };
    Ok(Opened {
        lock,
        partials: partials.try_clone().map_err(|e| io_error(path, e))?,
        parent,
        target,
        part,
        file,
        reservation,
        partial,
        hasher: Sha256::new(),
        replaced,
    })
}
