//! Downloading one file into a partial in the hidden partials directory
//! beside the target (see `local.rs`): offer the
//! server our partial's prefix hash, write what it sends on a blocking
//! thread while hashing, compare with the server's SHA-256, sync, rename.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use ferry_proto::chunks::{HashPipe, WriteBehind};
use ferry_proto::commit::{Commit, GroupCommit, GROUP_COMMIT_MAX};
use ferry_proto::direct::{DirectFile, DirectWriter, DIRECT_MIN};
use ferry_proto::{ErrorKind, RemoteError, RemotePath, Reply, Request, CHUNK_SIZE};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::local::{
    free_local_name, hash_file, hash_prefix, is_reserved, local_err, open_partial_file,
    partial_path, sync_parent, tidy_partials,
};
use super::{Conflict, Direction, FileReport, Job, Status, TransferEvent, TransferGuard};
use crate::client::session::{Event, Queue};
use crate::client::{Client, ClientError, Result};

/// Downloads `remote` to `local`, reporting as file `id`.
pub(crate) async fn get_file(
    client: &Client,
    job: &Job,
    id: u64,
    remote: RemotePath,
    local: &Path,
    listed_size: u64,
) -> FileReport {
    let mut report = FileReport {
        direction: Direction::Get,
        local: local.to_path_buf(),
        remote: remote.to_string(),
        size: 0,
        sha256: None,
        resumed_from: 0,
        status: Status::Done,
    };
    let local = local.to_path_buf();
    let rehash = job.opts.rehash;
    let one_chunk = listed_size <= CHUNK_SIZE as u64;
    let mut result = download(
        client,
        job,
        id,
        (&remote, local.clone()),
        rehash,
        one_chunk,
        &mut report,
    )
    .await;
    if let Ok(Fetched::StaleRecord) = result {
        // What arrived does not match the checksum the server recorded at
        // upload: either it was damaged in transit or the server's file was
        // changed in place since. Offer the partial as a prefix and have the
        // server hash its file afresh: a good prefix then commits at once,
        // a damaged one starts over.
        job.warn(
            Some(id),
            format!(
                "{remote}: the data does not match the checksum the server recorded at upload; \
                 checking again against a fresh hash"
            ),
        );
        let resumed_from = report.resumed_from;
        result = download(
            client,
            job,
            id,
            (&remote, local),
            true,
            one_chunk,
            &mut report,
        )
        .await;
        report.resumed_from = resumed_from;
    }
    match result {
        Ok(Fetched::Done) => {}
        Ok(Fetched::StaleRecord) => {
            report.status = Status::Failed(format!(
                "{remote}: the data received does not match the server's SHA-256; run the get again"
            ))
        }
        Err(e) => report.status = Status::Failed(e.to_string()),
    }
    job.events.emit(TransferEvent::Finished {
        id,
        report: report.clone(),
    });
    report
}

fn blocking_err(e: tokio::task::JoinError) -> ClientError {
    ClientError::Protocol(format!("worker failed: {e}"))
}

/// How a download ended, short of an error.
enum Fetched {
    /// Committed (or skipped as the conflict policy says).
    Done,
    /// Everything arrived but did not match the checksum the server had
    /// recorded at upload; the partial is kept for a check with `rehash`.
    StaleRecord,
}

/// Downloads one file. `one_chunk`: the listing says it fits one chunk, so
/// it is never resumed (as on upload) and arrives whole in memory before it
/// touches the disk: one blocking trip that checks, writes and hands it to
/// the group commit, instead of three (open the partial, write, commit).
async fn download(
    client: &Client,
    job: &Job,
    id: u64,
    (remote, mut local): (&RemotePath, PathBuf),
    rehash: bool,
    one_chunk: bool,
    report: &mut FileReport,
) -> Result<Fetched> {
    if is_reserved(&local) {
        return Err(local_err(
            &local,
            std::io::Error::other("the name is reserved for partial downloads; not received"),
        ));
    }
    if let Ok(md) = std::fs::symlink_metadata(&local) {
        if md.is_dir() {
            return Err(local_err(&local, std::io::Error::other("is a directory")));
        }
        match job.opts.on_conflict {
            Conflict::Overwrite => {}
            Conflict::Skip => {
                report.status = Status::Skipped("target exists".into());
                return Ok(Fetched::Done);
            }
            Conflict::Rename => {
                local = free_local_name(&local);
                report.local = local.clone();
            }
            Conflict::Resume => {
                let l = local.clone();
                let (lsize, ours) = tokio::task::spawn_blocking(move || hash_file(&l))
                    .await
                    .map_err(blocking_err)?
                    .map_err(|e| local_err(&local, e))?;
                let (rsize, theirs) = client.checksum(remote, None).await?;
                if lsize == rsize && ours == theirs {
                    report.size = lsize;
                    report.sha256 = Some(ours);
                    report.resumed_from = lsize;
                    report.status = Status::Skipped("already complete".into());
                    return Ok(Fetched::Done);
                }
                return Err(local_err(
                    &local,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        format!("exists and differs from {remote}"),
                    ),
                ));
            }
            Conflict::Auto | Conflict::Fail => {
                return Err(local_err(
                    &local,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "already exists (use --on-conflict overwrite, skip, rename or resume)",
                    ),
                ));
            }
        }
    }

    // What do we already hold?
    let part = partial_path(&local);
    let (file, held, prefix) = if one_chunk {
        (None, 0, Sha256::new())
    } else {
        let (f, len, h) = open_partial(&part, Some((job, id))).await?;
        (Some(f), len, h)
    };

    let transfer = client.next_transfer();
    let req = Request::GetOpen {
        transfer,
        path: remote.to_string(),
        offset: held,
        prefix_sha256: (held > 0).then(|| prefix.clone().finalize().into()),
        rehash,
    };
    let mut events = client
        .submit_routed(req, Some(transfer), Queue::Control)
        .await?;
    let mut guard = TransferGuard {
        client,
        transfer,
        armed: true,
    };
    let (size, offset, mtime, mode) = match events.recv().await {
        Some(Event::Reply(Ok(Reply::GetReady {
            size,
            offset,
            mtime,
            mode,
        }))) => (size, offset, mtime, mode),
        Some(Event::Reply(Err(e))) => {
            guard.armed = false;
            if held == 0 {
                let _ = std::fs::remove_file(&part);
                tidy_partials(&part);
            }
            return Err(ClientError::Remote(e));
        }
        Some(other) => {
            return Err(ClientError::Protocol(format!(
                "unexpected reply to get: {other:?}"
            )))
        }
        None => return Err(client.lost()),
    };
    report.size = size;
    job.started(report, id, size, held, offset, || {
        format!(
            "{}: the partial download differs from {remote}",
            local.display()
        )
    });

    let file = match file {
        None if size <= CHUNK_SIZE as u64 => {
            let mut chunks = Vec::new();
            let mut sink = Sink::Memory(&mut chunks);
            let (done, theirs) =
                receive(client, job, id, &mut events, &mut guard, &mut sink, size, 0).await?;
            let (theirs, stored) = sent_whole(remote, size, theirs)?;
            // One blocking trip: hash, and only if it matches, write the
            // partial and hand it to the group commit.
            let (p, l) = (part.clone(), local.clone());
            let wanted = Wanted::new();
            let w = wanted.token();
            let (ours, committed) = tokio::task::spawn_blocking(
                move || -> std::io::Result<([u8; 32], Option<Committed>)> {
                    let mut h = Sha256::new();
                    chunks.iter().for_each(|c| h.update(c));
                    let ours: [u8; 32] = h.finalize().into();
                    if done != size || ours != theirs {
                        return Ok((ours, None));
                    }
                    let mut f = open_partial_file(
                        &p,
                        OpenOptions::new().write(true).create(true).truncate(true),
                    )?;
                    for c in &chunks {
                        f.write_all(c)?;
                    }
                    Ok((ours, Some(commit(f, p, l, mtime, mode, w))))
                },
            )
            .await
            .map_err(blocking_err)?
            .map_err(|e| local_err(&part, e))?;
            let Some(committed) = committed else {
                if done == size && stored && !rehash {
                    return Ok(Fetched::StaleRecord);
                }
                return Err(integrity_failed(remote, "nothing was written"));
            };
            committed_at(committed, &local).await?;
            drop(wanted);
            report.sha256 = Some(ours);
            return Ok(Fetched::Done);
        }
        // Grew past one chunk since it was listed.
        None => open_partial(&part, None).await?.0,
        Some(f) => f,
    };
    let hasher = if offset == held {
        prefix
    } else {
        Sha256::new()
    };
    let (data_tx, data_rx) = mpsc::channel::<Bytes>(8);
    let p = part.clone();
    let writer = tokio::task::spawn_blocking(move || {
        write_chunks(file, offset, hasher, size - offset, data_rx).map_err(|e| local_err(&p, e))
    });
    let mut sink = Sink::Writer(data_tx);
    let received = receive(
        client,
        job,
        id,
        &mut events,
        &mut guard,
        &mut sink,
        size,
        offset,
    )
    .await;
    drop(sink);
    let (file, ours) = writer.await.map_err(blocking_err)??;
    let (done, theirs) = received?;
    let (theirs, stored) = sent_whole(remote, size, theirs)?;
    if done == size && ours != theirs && stored && !rehash {
        return Ok(Fetched::StaleRecord);
    }
    if done != size || ours != theirs {
        drop(file);
        let _ = std::fs::remove_file(&part);
        tidy_partials(&part);
        return Err(integrity_failed(remote, "the partial was discarded"));
    }
    let l = local.clone();
    let wanted = Wanted::new();
    let w = wanted.token();
    let committed = tokio::task::spawn_blocking(move || commit(file, part, l, mtime, mode, w))
        .await
        .map_err(blocking_err)?;
    committed_at(committed, &local).await?;
    drop(wanted);
    report.sha256 = Some(ours);
    Ok(Fetched::Done)
}

/// Opens (or creates) a download's partial: the file, its length, and the
/// hash of what it holds. With `said`, a partial that holds bytes is
/// announced (`Checking`) before it is hashed.
async fn open_partial(part: &Path, said: Option<(&Job, u64)>) -> Result<(File, u64, Sha256)> {
    let p = part.to_path_buf();
    let say = said.map(|(job, id)| (job.events.clone(), id));
    tokio::task::spawn_blocking(move || -> std::io::Result<(File, u64, Sha256)> {
        let mut f = open_partial_file(
            &p,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )?;
        let len = f.metadata()?.len();
        if let (Some((events, id)), true) = (&say, len > 0) {
            events.emit(TransferEvent::Checking {
                id: *id,
                bytes: len,
            });
        }
        let mut h = Sha256::new();
        hash_prefix(&mut f, len, &mut h)?;
        Ok((f, len, h))
    })
    .await
    .map_err(blocking_err)?
    .map_err(|e| local_err(part, e))
}

/// Where a download's data goes as it arrives.
enum Sink<'a> {
    /// To the writer's thread.
    Writer(mpsc::Sender<Bytes>),
    /// Kept until the end (a file of one chunk or less).
    Memory(&'a mut Vec<Bytes>),
}

/// Takes a download's data until `GetDone`: the bytes that came (from
/// `offset` on) and the server's hash. `None` for the hash when the server
/// sent more than `size`, or the writer stopped (its error is its own).
#[allow(clippy::too_many_arguments)]
async fn receive(
    client: &Client,
    job: &Job,
    id: u64,
    events: &mut mpsc::Receiver<Event>,
    guard: &mut TransferGuard<'_>,
    sink: &mut Sink<'_>,
    size: u64,
    offset: u64,
) -> Result<(u64, Option<([u8; 32], bool)>)> {
    let mut done = offset;
    loop {
        match events.recv().await {
            Some(Event::Data(data)) => {
                let n = data.len() as u64;
                done += n;
                let taken = done <= size
                    && match sink {
                        Sink::Writer(tx) => tx.send(data).await.is_ok(),
                        Sink::Memory(chunks) => {
                            chunks.push(data);
                            true
                        }
                    };
                if !taken {
                    return Ok((done, None));
                }
                if let Some(l) = &job.limiter {
                    l.take(n).await;
                }
                job.events.emit(TransferEvent::Progress { id, done });
            }
            Some(Event::Reply(Ok(Reply::GetDone { sha256, stored }))) => {
                guard.armed = false;
                return Ok((done, Some((sha256, stored))));
            }
            Some(Event::Reply(Err(e))) => {
                guard.armed = false;
                return Err(ClientError::Remote(e));
            }
            Some(other) => {
                return Err(ClientError::Protocol(format!(
                    "unexpected message during get: {other:?}"
                )))
            }
            None => return Err(client.lost()),
        }
    }
}

/// The server's hash, once all it sent fitted the size it announced.
fn sent_whole(
    remote: &RemotePath,
    size: u64,
    theirs: Option<([u8; 32], bool)>,
) -> Result<([u8; 32], bool)> {
    theirs.ok_or_else(|| {
        ClientError::Protocol(format!("{remote}: the server sent more than {size} bytes"))
    })
}

fn integrity_failed(remote: &RemotePath, what_became: &str) -> ClientError {
    ClientError::Remote(RemoteError::new(
        ErrorKind::IntegrityFailed,
        format!("{remote}: the data received does not match the server's SHA-256; {what_became}"),
    ))
}

/// Waits for a commit to be durable.
async fn committed_at(committed: Committed, local: &Path) -> Result<()> {
    let committed = match committed {
        Committed::Done(r) => r,
        Committed::Later(rx) => rx
            .await
            .unwrap_or_else(|_| Err(ferry_proto::commit::stopped())),
    };
    committed.map_err(|e| local_err(local, e))
}

/// Writes chunks from `offset` on, hashing; returns the file and the hash.
fn write_chunks(
    mut file: File,
    offset: u64,
    hasher: Sha256,
    remaining: u64,
    mut rx: mpsc::Receiver<Bytes>,
) -> std::io::Result<(File, [u8; 32])> {
    file.set_len(offset)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut pipe = HashPipe::new(hasher, remaining);
    let mut writer = DirectWriter::new(
        Partial {
            file: &file,
            direct: remaining >= DIRECT_MIN,
        },
        offset,
    );
    // Direct writes leave nothing in the page cache to flush behind them.
    let mut behind = WriteBehind::new(remaining, || {
        (!writer.is_direct())
            .then(|| file.try_clone().ok().map(flush_and_forget))
            .flatten()
    });
    while let Some(chunk) = rx.blocking_recv() {
        writer.write(&chunk)?;
        behind.wrote(chunk.len() as u64);
        pipe.update(&chunk);
    }
    writer.finish()?;
    behind.finish()?;
    let hash = pipe
        .finish()
        .ok_or_else(|| std::io::Error::other("hashing failed"))?;
    Ok((file, hash))
}

/// A large download's partial, written direct where its file system does
/// that well (see `ferry_proto::direct`).
struct Partial<'a> {
    file: &'a File,
    /// Big enough to be worth it.
    direct: bool,
}

impl DirectFile for Partial<'_> {
    fn set_direct(&mut self, on: bool) -> bool {
        (self.direct || !on) && set_direct(self.file, on).is_ok()
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&mut &*self.file).write(buf)
    }
}

/// Switches `O_DIRECT` on or off. On only on local file systems known to
/// do direct writes well: over NFS or FUSE each would be a synchronous
/// round trip, and tmpfs has no disk to go direct to.
#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> std::io::Result<()> {
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
fn set_direct(_file: &File, on: bool) -> std::io::Result<()> {
    if on {
        return Err(std::io::ErrorKind::Unsupported.into());
    }
    Ok(())
}

/// A [`WriteBehind`] step: flushes what `file` has so far, then drops those
/// pages from the page cache (the download does not push the user's other
/// cached files out of memory).
fn flush_and_forget(file: File) -> impl FnMut() -> std::io::Result<()> + Send {
    move || {
        file.sync_data()?;
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        Ok(())
    }
}

/// A verified download's partial, to be synced and renamed over its target.
struct Verified {
    file: File,
    /// Its file system.
    dev: u64,
    part: PathBuf,
    target: PathBuf,
    /// Whether the download still wants it, checked at the rename.
    wanted: Arc<Mutex<bool>>,
}

/// A download's claim on its commit: while it lives the file may be
/// renamed into place; once dropped (the job was cancelled and its future
/// dropped) no rename starts, and none is still running, so a cancelled
/// copy adds no file afterwards. What was verified stays as a complete
/// partial for a resume.
struct Wanted(Arc<Mutex<bool>>);

impl Wanted {
    fn new() -> Wanted {
        Wanted(Arc::new(Mutex::new(true)))
    }

    fn token(&self) -> Arc<Mutex<bool>> {
        Arc::clone(&self.0)
    }
}

impl Drop for Wanted {
    fn drop(&mut self) {
        // Waits for a rename in progress (it holds the lock).
        match self.0.lock() {
            Ok(mut w) => *w = false,
            Err(poisoned) => *poisoned.into_inner() = false,
        }
    }
}

impl Commit for Verified {
    fn fs(&self) -> u64 {
        self.dev
    }

    fn flush(&self) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            rustix::fs::syncfs(&self.file).map_err(std::io::Error::from)
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.file.sync_all()
        }
    }

    fn rename(&self) -> std::io::Result<()> {
        let wanted = self
            .wanted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*wanted {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "cancelled before it was renamed into place",
            ));
        }
        std::fs::rename(&self.part, &self.target)?;
        tidy_partials(&self.part);
        Ok(())
    }

    fn alone(&self) -> std::io::Result<()> {
        self.file.sync_all()?;
        self.rename()?;
        sync_parent(&self.target);
        Ok(())
    }
}

/// The process's commit thread for small downloads (started on first use;
/// without it, files are committed one by one).
fn committer() -> &'static GroupCommit<Verified> {
    static COMMITTER: OnceLock<GroupCommit<Verified>> = OnceLock::new();
    COMMITTER
        .get_or_init(|| GroupCommit::start("ferry-commit").unwrap_or_else(|_| GroupCommit::alone()))
}

/// How a commit ends: here, or later on the commit thread.
enum Committed {
    Done(std::io::Result<()>),
    Later(oneshot::Receiver<std::io::Result<()>>),
}

/// Sets permissions and times, syncs, renames the partial over the target
/// and syncs the directory, so the file appears complete under its name or
/// not at all. Small files are synced and renamed in groups
/// (`ferry_proto::commit`).
fn commit(
    file: File,
    part: PathBuf,
    target: PathBuf,
    mtime: i64,
    mode: u32,
    wanted: Arc<Mutex<bool>>,
) -> Committed {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let prepared = (|| {
        file.set_permissions(std::fs::Permissions::from_mode((mode & 0o777) | 0o600))?;
        if let Some(t) =
            std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(mtime.max(0) as u64))
        {
            let _ = file.set_modified(t);
        }
        file.metadata()
    })();
    let md = match prepared {
        Ok(md) => md,
        Err(e) => return Committed::Done(Err(e)),
    };
    let verified = Verified {
        dev: md.dev(),
        file,
        part,
        target,
        wanted,
    };
    if md.len() > GROUP_COMMIT_MAX {
        return Committed::Done(verified.alone());
    }
    let (tx, rx) = oneshot::channel();
    committer().commit_then(
        verified,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    Committed::Later(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_dropped_claim_stops_the_rename_and_keeps_the_partial() {
        let dir = tempfile::tempdir().unwrap();
        let (part, target) = (dir.path().join("p"), dir.path().join("t"));
        std::fs::write(&part, "verified").unwrap();
        let wanted = Wanted::new();
        let v = Verified {
            file: File::open(&part).unwrap(),
            dev: 0,
            part: part.clone(),
            target: target.clone(),
            wanted: wanted.token(),
        };
        drop(wanted);
        let e = v.rename().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted);
        assert!(!target.exists());
        assert_eq!(std::fs::read_to_string(&part).unwrap(), "verified");
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
