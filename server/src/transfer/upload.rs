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

use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cap_std::fs::{Dir, File, OpenOptions};
use ferry_proto::chunks::WriteBehind;
use ferry_proto::direct::{DirectFile, DirectWriter, DIRECT_MIN};
use ferry_proto::{ErrorKind, RemoteError, RemotePath, Reply};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::commit::{Committer, Verified, GROUP_COMMIT_MAX};
use super::partials;
use super::stored;
use super::{hex, UploadMsg};
use crate::accounts::{Account, PathLock};
use crate::budget::Charge;
use crate::jail::io_error;
use crate::ledger::{Cost, Ledger, Reservation};
use crate::logfmt::q;
use crate::outbox::Outbox;
use crate::threads::{Threads, BULK_MIN};

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

/// An upload receiving its data: everything its steps need.
struct Writing {
    lock: PathLock,
    parent: Dir,
    partials: Dir,
    target: PathBuf,
    part: PathBuf,
    replaced: u64,
    file: std::fs::File,
    writer: DirectWriter<Partial>,
    behind: WriteBehind,
    /// The hash so far, when hashed inline (small files); a large file's
    /// is in its [`crate::threads::HashLane`], fed with what each step wrote.
    hasher: Option<Sha256>,
    reservation: Reservation,
    written: u64,
}

/// Starts writing at `start` (where the client starts sending). With
/// `lane`, returns the hash so far for a [`crate::threads::HashLane`] and leaves hashing to
/// it; without, the steps hash inline.
fn begin(
    o: Opened,
    spec: &UploadSpec,
    start: u64,
    lane: bool,
) -> Result<(Writing, Option<Sha256>), RemoteError> {
    let path = &spec.path;
    let Opened {
        lock,
        parent,
        partials,
        target,
        part,
        mut file,
        mut reservation,
        partial,
        mut hasher,
        replaced,
    } = o;
    if start == 0 && partial > 0 {
        // The client's file differs from our partial: start afresh. The
        // partial's bytes were counted; now they are reserved instead.
        file.set_len(0).map_err(|e| io_error(path, e))?;
        reservation.adopt(partial);
        hasher = Sha256::new();
    } else if start != partial {
        return Err(bad(format!(
            "cannot start at byte {start}: the server holds {partial}"
        )));
    }
    if start > 0 || partial > 0 {
        file.seek(SeekFrom::Start(start))
            .map_err(|e| io_error(path, e))?;
    }
    let file = file.into_std();
    let remaining = spec.size.saturating_sub(start);
    let (hasher, lane) = match lane {
        true => (None, Some(hasher)),
        false => (Some(hasher), None),
    };
    let writer = DirectWriter::new(
        Partial {
            file: file.try_clone().map_err(|e| io_error(path, e))?,
            direct: remaining >= DIRECT_MIN,
        },
        start,
    );
    // Direct writes leave nothing in the page cache to flush behind them.
    let behind = WriteBehind::new(remaining, || {
        (!writer.is_direct())
            .then(|| file.try_clone().ok().map(flush_and_forget))
            .flatten()
    });
    let writing = Writing {
        lock,
        parent,
        partials,
        target,
        part,
        replaced,
        file,
        writer,
        behind,
        hasher,
        reservation,
        written: start,
    };
    Ok((writing, lane))
}

impl Writing {
    /// Writes what has arrived (one step); the client's SHA-256 once its
    /// end is among it, and (hashing in a lane) the chunks written, each
    /// with its charge, for the lane.
    #[allow(clippy::type_complexity)]
    fn write(
        &mut self,
        spec: &UploadSpec,
        msgs: Vec<UploadMsg>,
    ) -> Result<(Option<[u8; 32]>, Vec<(Bytes, Charge)>), RemoteError> {
        let path = &spec.path;
        let mut for_lane = Vec::new();
        for m in msgs {
            match m {
                UploadMsg::Data(bytes, charge) => {
                    let len = bytes.len() as u64;
                    if self.written + len > spec.size {
                        // More than declared: every extra byte needs quota too.
                        let extra = (self.written + len - spec.size).min(len);
                        self.reservation.grow(extra)?;
                    }
                    self.writer.write(&bytes).map_err(|e| io_error(path, e))?;
                    self.reservation.use_bytes(len);
                    self.behind.wrote(len);
                    self.written += len;
                    match &mut self.hasher {
                        Some(h) => h.update(&bytes),
                        None => for_lane.push((bytes, charge)),
                    }
                }
                UploadMsg::End(sha) => return Ok((Some(sha), for_lane)),
                UploadMsg::Start(_) => return Err(bad("PutStart sent twice")),
            }
        }
        Ok((None, for_lane))
    }

    /// The last step: checks the hash (the inline one, or `hashed` by the
    /// lane), then commits a large file here and hands a small one on for
    /// a group commit.
    fn finish(
        self,
        spec: &UploadSpec,
        account: &Account,
        sha: [u8; 32],
        hashed: Option<[u8; 32]>,
    ) -> Result<Received, RemoteError> {
        let path = &spec.path;
        let Writing {
            lock,
            parent,
            partials,
            target,
            part,
            replaced,
            file,
            writer,
            behind,
            hasher,
            reservation,
            written,
        } = self;
        let dir = &parent;
        if written != spec.size {
            return Err(bad(format!(
                "declared {} bytes but sent {written}",
                spec.size
            )));
        }
        drop(writer.finish().map_err(|e| io_error(path, e))?);
        behind.finish().map_err(|e| io_error(path, e))?;
        let ours = match hasher {
            Some(h) => h.finalize().into(),
            None => hashed.ok_or_else(hashing_failed)?,
        };
        if ours != sha {
            drop(file);
            account.ledger.with(|books| {
                if partials.remove_file(&part).is_ok() {
                    books.give(Cost::file(written));
                }
            });
            tracing::warn!(user = %q(&account.name), path = %q(path), ours = %hex(&ours), theirs = %hex(&sha), "upload checksum mismatch");
            return Err(RemoteError::new(
                ErrorKind::IntegrityFailed,
                format!("{path}: the data received does not match the sender's SHA-256; the partial was discarded"),
            ));
        }
        let file = prepare(file, spec, &ours).map_err(|e| io_error(path, e))?;
        let reply = Reply::PutDone {
            size: written,
            sha256: ours,
        };
        if spec.size <= GROUP_COMMIT_MAX {
            let upload = Verified {
                from: partials,
                part,
                dir: parent,
                target,
                file,
                quota: reservation,
            };
            return Ok(Received::ToCommit(ToCommit {
                upload,
                reply,
                lock,
            }));
        }
        // Large files commit themselves: their data is most of the flush.
        let io = |e| io_error(path, e);
        file.sync_all().map_err(io)?;
        drop(file);
        let old = (replaced > 0)
            .then(|| open_replaced(dir, &target))
            .flatten();
        reservation
            .settle(
                || partials.rename(&part, dir, &target),
                || replaced_cost(dir, &target),
            )
            .map_err(io)?;
        sync_dir(dir, &RemotePath::root());
        drop(lock);
        Ok(Received::Committed(reply, old))
    }
}

/// Opens the file an upload is about to replace, to hold it across the
/// rename. Never waits (a FIFO put there meanwhile opens at once) and
/// never fails the upload: without it, the rename frees the file itself.
fn open_replaced(dir: &Dir, target: &std::path::Path) -> Option<File> {
    use cap_std::fs::OpenOptionsExt;
    let mut opts = OpenOptions::new();
    opts.read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    dir.open_with(target, &opts).ok()
}

/// What the entry at `target` costs, looked at right before a rename
/// over it (none when there is none).
pub fn replaced_cost(dir: &Dir, target: &std::path::Path) -> std::io::Result<Option<Cost>> {
    match dir.symlink_metadata(target) {
        Ok(md) => Ok(Some(Cost::of_metadata(&md))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates a partial file, counted as an entry (refused with `EDQUOT`
/// when the user's entries are all taken); `None` if one is there.
fn create_partial(
    dir: &Dir,
    part: &std::path::Path,
    ledger: &Ledger,
) -> std::io::Result<Option<File>> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    ledger.with(|books| {
        if books.take(Cost::ENTRY).is_err() {
            return Err(std::io::Error::from_raw_os_error(libc::EDQUOT));
        }
        match dir.open_with(part, &opts) {
            Ok(file) => Ok(Some(file)),
            Err(e) => {
                books.give(Cost::ENTRY);
                match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Ok(None),
                    _ => Err(e),
                }
            }
        }
    })
}

/// Opens the partial of an upload, keeping what an earlier attempt left
/// when the upload may resume from it. Returns the file, the quota
/// reserved for the rest, and the bytes kept. Looks before touching
/// anything, so a refusal (quota) leaves the disk as it was. `replaced`:
/// the bytes of the file the upload would replace.
fn open_partial(
    spec: &UploadSpec,
    ledger: &Arc<Ledger>,
    dir: &Dir,
    part: &std::path::Path,
    replaced: u64,
) -> Result<(File, Reservation, u64), RemoteError> {
    let path = &spec.path;
    let found = match dir.symlink_metadata(part) {
        Ok(md) if md.is_file() => md.len(),
        Ok(_) => {
            return Err(RemoteError::new(
                ErrorKind::AlreadyExists,
                format!("{path}: its partial-file name is taken"),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io_error(path, e)),
    };
    let partial = if spec.eager || !spec.resume || found > spec.size {
        0
    } else {
        found
    };
    // Refused here, before a single byte is written, if it cannot fit.
    let reservation = ledger.reserve_for(spec.size - partial, replaced, Some(path.to_string()))?;
    let file = match create_partial(dir, part, ledger).map_err(|e| io_error(path, e))? {
        Some(file) => file,
        None => {
            let mut opts = OpenOptions::new();
            opts.read(true).write(true);
            dir.open_with(part, &opts).map_err(|e| io_error(path, e))?
        }
    };
    if partial == 0 {
        // Starting afresh: what an earlier attempt left goes.
        ledger
            .with(|books| {
                let had = file.metadata()?.len();
                file.set_len(0)?;
                books.give(Cost::bytes(had));
                Ok(())
            })
            .map_err(|e| io_error(path, e))?;
    }
    Ok((file, reservation, partial))
}

/// Sets permissions and times on a verified partial, and records its
/// checksum, before it is synced and renamed.
fn prepare(
    file: std::fs::File,
    spec: &UploadSpec,
    sha256: &[u8; 32],
) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::PermissionsExt;
    // The owner can always read and write what they uploaded.
    let mode = (spec.mode & 0o777) | 0o600;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    if let Some(t) = mtime(spec.mtime) {
        let _ = file.set_modified(t);
    }
    if spec.size > stored::RECORD_MIN {
        stored::record(&file, sha256);
    }
    Ok(file)
}

/// A large upload's partial, written direct where its file system does
/// that well (see `ferry_proto::direct`).
struct Partial {
    /// The partial (a second handle on the same open file).
    file: std::fs::File,
    /// Big enough to be worth it.
    direct: bool,
}

impl DirectFile for Partial {
    fn set_direct(&mut self, on: bool) -> bool {
        (self.direct || !on) && set_direct(&self.file, on).is_ok()
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&self.file).write(buf)
    }
}

/// Switches `O_DIRECT` on or off. On only on local file systems known to
/// do direct writes well: over NFS or FUSE each would be a synchronous
/// round trip, and tmpfs has no disk to go direct to.
#[cfg(target_os = "linux")]
fn set_direct(file: &std::fs::File, on: bool) -> std::io::Result<()> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, fstatfs, OFlags};
    const EXT4: i64 = 0xEF53;
    const XFS: i64 = 0x5846_5342;
    if on {
        // `f_type`'s width differs between architectures.
        #[allow(clippy::useless_conversion)]
        let kind = i64::from(fstatfs(file)?.f_type);
        if kind != EXT4 && kind != XFS {
            return Err(std::io::ErrorKind::Unsupported.into());
        }
    }
    let flags = fcntl_getfl(file)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    Ok(fcntl_setfl(file, flags)?)
}

/// No `O_DIRECT` here: always written through the page cache.
#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &std::fs::File, on: bool) -> std::io::Result<()> {
    if on {
        return Err(std::io::ErrorKind::Unsupported.into());
    }
    Ok(())
}

/// Syncs a directory so a rename in it survives a crash (best effort).
/// Opened for reading: cap-std's `open_dir` gives an `O_PATH` handle,
/// which cannot be synced.
pub fn sync_dir(dir: &Dir, path: &RemotePath) {
    if let Ok(d) = dir.open_with(path.to_relative(), OpenOptions::new().read(true)) {
        if let Err(e) = d.sync_all() {
            tracing::warn!(dir = %q(path), error = %e, "directory sync failed");
        }
    }
}

/// A [`WriteBehind`] step: flushes what `file` has so far, then drops those
/// pages from the page cache, so a large upload recycles a few hot pages
/// instead of taking fresh memory for every byte, and leaves other users'
/// cached files alone.
fn flush_and_forget(file: std::fs::File) -> impl FnMut() -> std::io::Result<()> + Send {
    move || {
        file.sync_data()?;
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        Ok(())
    }
}

/// A Unix time as a `SystemTime`.
pub fn mtime(secs: i64) -> Option<std::time::SystemTime> {
    let base = std::time::UNIX_EPOCH;
    if secs >= 0 {
        base.checked_add(std::time::Duration::from_secs(secs as u64))
    } else {
        base.checked_sub(std::time::Duration::from_secs(secs.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_partial_written_direct_keeps_every_byte_and_ends_buffered() {
        // In the crate's directory: a disk, where /tmp may be tmpfs.
        let file = tempfile::tempfile_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let data: Vec<u8> = (0..(5 << 20) + 4097u32).map(|i| (i % 253) as u8).collect();
        let mut w = DirectWriter::new(
            Partial {
                file: file.try_clone().unwrap(),
                direct: true,
            },
            0,
        );
        for piece in data.chunks(256 * 1024 + 3) {
            w.write(piece).unwrap();
        }
        w.finish().unwrap();
        let flags = rustix::fs::fcntl_getfl(&file).unwrap();
        assert!(!flags.contains(rustix::fs::OFlags::DIRECT));
        let mut back = Vec::new();
        (&file).seek(SeekFrom::Start(0)).unwrap();
        (&file).read_to_end(&mut back).unwrap();
        assert!(back == data);
    }

    #[test]
    fn the_replaced_file_is_held_without_waiting_or_following_links() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        std::fs::write(tmp.path().join("old"), b"old content").unwrap();
        let mut held = open_replaced(&dir, std::path::Path::new("old")).unwrap();
        dir.rename("old", &dir, "gone").unwrap();
        dir.remove_file("gone").unwrap();
        let mut back = String::new();
        held.read_to_string(&mut back).unwrap();
        assert_eq!(back, "old content", "still readable: not freed yet");

        // A FIFO would block a plain open until a writer came.
        rustix::fs::mknodat(
            &dir,
            "fifo",
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(open_replaced(&dir, std::path::Path::new("fifo")).is_some());
        std::os::unix::fs::symlink("fifo", tmp.path().join("link")).unwrap();
        assert!(open_replaced(&dir, std::path::Path::new("link")).is_none());
    }

    #[test]
    fn a_flush_step_keeps_the_content() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let mut flush = flush_and_forget(file.try_clone().unwrap());
        flush().unwrap();
        file.write_all(&data).unwrap();
        flush().unwrap();
        let mut back = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 2 * data.len());
        assert!(back[..data.len()] == data[..] && back[data.len()..] == data[..]);
    }
}
