//! Uploading one file: prove any partial on the server matches our prefix,
//! stream the rest as data frames (read and hashed on a blocking thread),
//! then send our SHA-256; the server verifies, syncs and renames. A file of
//! one chunk at most skips the partial check and is read in one go.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use bytes::Bytes;
use ferry_proto::chunks::{ChunkReader, HashPipe};
use ferry_proto::msg::{ClientMsg, EntryKind};
use ferry_proto::{ErrorKind, Frame, RemoteError, RemotePath, Reply, Request, CHUNK_SIZE};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::local::{hash_file, hash_prefix, local_err, renamed};
use super::{
    Conflict, Direction, FileReport, Job, Status, TransferEvent, TransferGuard, SMALL_FILE,
};
use crate::client::session::{Event, Queue};
use crate::client::{Client, ClientError, Result};

/// Uploads `local` to `remote`, reporting as file `id`. `ahead`: the
/// file as [`read_ahead`] read it, when it was small.
pub(crate) async fn put_file(
    client: &Client,
    job: &Job,
    id: u64,
    local: &Path,
    remote: RemotePath,
    ahead: Option<Ahead>,
) -> FileReport {
    let mut report = FileReport {
        direction: Direction::Put,
        local: local.to_path_buf(),
        remote: remote.to_string(),
        size: 0,
        sha256: None,
        resumed_from: 0,
        status: Status::Done,
    };
    match upload(client, job, id, local, remote, ahead, &mut report).await {
        Ok(()) => {}
        Err(e) => report.status = Status::Failed(e.to_string()),
    }
    job.events.emit(TransferEvent::Finished {
        id,
        report: report.clone(),
    });
    report
}

async fn remote_exists(client: &Client, path: &RemotePath) -> Result<Option<u64>> {
    match client.stat(&path.to_string()).await {
        Ok(e) if e.kind == EntryKind::Dir => Err(ClientError::Remote(RemoteError::new(
            ErrorKind::IsADirectory,
            path.to_string(),
        ))),
        Ok(e) => Ok(Some(e.size)),
        Err(ClientError::Remote(e)) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn upload(
    client: &Client,
    job: &Job,
    id: u64,
    local: &Path,
    mut remote: RemotePath,
    ahead: Option<Ahead>,
    report: &mut FileReport,
) -> Result<()> {
    let small = match ahead {
        Some(rx) => rx.await.ok(),
        None => None,
    };
    let (file, md, small) = match small {
        Some(Ok(Some(s))) => (None, s.md.clone(), Some(s)),
        Some(Err(e)) => return Err(local_err(local, e)),
        // Not read ahead, or no longer small: open it here.
        Some(Ok(None)) | None => {
            let file = File::open(local).map_err(|e| local_err(local, e))?;
            let md = file.metadata().map_err(|e| local_err(local, e))?;
            (Some(file), md, None)
        }
    };
    let size = md.len();
    report.size = size;

    let mut overwrite = false;
    match job.opts.on_conflict {
        Conflict::Overwrite => overwrite = true,
        Conflict::Skip => {
            if remote_exists(client, &remote).await?.is_some() {
                report.status = Status::Skipped("target exists".into());
                return Ok(());
            }
        }
        Conflict::Rename => {
            if remote_exists(client, &remote).await?.is_some() {
                let name = remote.file_name().unwrap_or_default().to_string();
                let parent = remote.parent();
                let mut i = 1;
                loop {
                    let candidate =
                        parent
                            .child(&renamed(&name, i))
                            .map_err(|source| ClientError::Path {
                                path: name.clone(),
                                source,
                            })?;
                    if remote_exists(client, &candidate).await?.is_none() {
                        remote = candidate;
                        break;
                    }
                    i += 1;
                }
                report.remote = remote.to_string();
            }
        }
        Conflict::Resume => {
            if let Some(rsize) = remote_exists(client, &remote).await? {
                // A complete target: done if it is our content, else refuse.
                let lpath = local.to_path_buf();
                let (_, ours) = tokio::task::spawn_blocking(move || hash_file(&lpath))
                    .await
                    .map_err(|e| ClientError::Protocol(e.to_string()))?
                    .map_err(|e| local_err(local, e))?;
                if rsize == size && client.checksum(&remote, None).await?.1 == ours {
                    report.sha256 = Some(ours);
                    report.resumed_from = size;
                    report.status = Status::Skipped("already complete".into());
                    return Ok(());
                }
                return Err(ClientError::Remote(RemoteError::new(
                    ErrorKind::AlreadyExists,
                    format!("{remote} (differs from {})", local.display()),
                )));
            }
        }
        Conflict::Auto | Conflict::Fail => {}
    }

    let transfer = client.next_transfer();
    // A file that fits one chunk goes without the PutReady round trip:
    // resuming it would save nothing.
    let eager = size <= CHUNK_SIZE as u64;
    let req = Request::PutOpen {
        transfer,
        path: remote.to_string(),
        size,
        mtime: md.mtime(),
        mode: md.mode() & 0o777,
        overwrite,
        resume: true,
        eager,
    };
    // An eager PutOpen must reach the server before its data frames, so it
    // takes their queue.
    let queue = if eager { Queue::Bulk } else { Queue::Control };
    let mut replies = client.submit_routed(req, None, queue).await?;
    let mut guard = TransferGuard {
        client,
        transfer,
        armed: true,
    };
    let ours = if eager {
        // A file of one chunk at most: read and hashed whole, ahead of
        // time or in one trip to a blocking thread, and its data follows
        // the PutOpen at once.
        let (data, ours, _window) = match (small, file) {
            (Some(s), _) => (s.data, s.sha256, Some(s.window)),
            (None, Some(mut file)) => {
                let read = tokio::task::spawn_blocking(move || {
                    read_whole(&mut file, size, &mut ChunkReader::new())
                });
                let (data, sha) = read
                    .await
                    .map_err(|e| ClientError::Protocol(e.to_string()))?
                    .map_err(|e| local_err(local, e))?;
                (data, sha, None)
            }
            (None, None) => return Err(ClientError::Protocol("no file to read".into())),
        };
        job.started(report, id, size, 0, 0, String::new);
        if !data.is_empty() {
            if let Some(l) = &job.limiter {
                l.take(size).await;
            }
            client.send_bulk(Frame::Data { transfer, data }).await?;
            job.events.emit(TransferEvent::Progress { id, done: size });
        }
        ours
    } else {
        let partial = match next_reply(client, &mut replies).await? {
            Reply::PutReady {
                partial,
                prefix_sha256,
            } => (partial, prefix_sha256),
            other => {
                return Err(ClientError::Protocol(format!(
                    "unexpected reply to put: {other:?}"
                )))
            }
        };

        let Some(mut file) = file else {
            return Err(ClientError::Protocol("no file to read".into()));
        };
        // Prove the server's partial is a prefix of our file, never trust size.
        let (offset, hasher, file) = {
            let (plen, theirs) = partial;
            if plen > 0 && plen <= size {
                job.events.emit(TransferEvent::Checking { id, bytes: plen });
            }
            let lpath = local.to_path_buf();
            tokio::task::spawn_blocking(move || -> std::io::Result<(u64, Sha256, File)> {
                let mut hasher = Sha256::new();
                if plen > 0 && plen <= size {
                    hash_prefix(&mut file, plen, &mut hasher)?;
                    if theirs == Some(hasher.clone().finalize().into()) {
                        return Ok((plen, hasher, file));
                    }
                    file.seek(SeekFrom::Start(0))?;
                }
                let _ = &lpath;
                Ok((0, Sha256::new(), file))
            })
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?
            .map_err(|e| local_err(local, e))?
        };
        job.started(report, id, size, partial.0, offset, || {
            format!(
                "{remote}: the partial upload on the server differs from {}",
                local.display()
            )
        });
        client
            .send_bulk(
                Frame::control(&ClientMsg::PutStart { transfer, offset })
                    .map_err(ferry_proto::FrameError::from)?,
            )
            .await?;

        // A blocking reader fills a small window of chunks and hashes them.
        let (chunk_tx, mut chunks) = mpsc::channel::<std::io::Result<Bytes>>(4);
        let reader =
            tokio::task::spawn_blocking(move || read_chunks(file, size - offset, hasher, chunk_tx));
        let mut done = offset;
        loop {
            tokio::select! {
                chunk = chunks.recv() => match chunk {
                    Some(Ok(data)) => {
                        let n = data.len() as u64;
                        if let Some(l) = &job.limiter {
                            l.take(n).await;
                        }
                        client.send_bulk(Frame::Data { transfer, data }).await?;
                        done += n;
                        job.events.emit(TransferEvent::Progress { id, done });
                    }
                    Some(Err(e)) => return Err(local_err(local, e)),
                    None => break,
                },
                // The server may refuse midway (quota, disk full): stop at once.
                early = replies.recv() => {
                    return Err(match early {
                        Some(Event::Reply(Err(e))) => ClientError::Remote(e),
                        Some(other) => ClientError::Protocol(format!("unexpected message during put: {other:?}")),
                        None => client.lost(),
                    });
                }
            }
        }
        let ours: [u8; 32] = match reader.await {
            Ok(Some(h)) => h,
            _ => return Err(ClientError::Protocol("file reader failed".into())),
        };
        if done != size {
            return Err(local_err(
                local,
                std::io::Error::other(format!(
                    "file changed while being sent ({done} of {size} bytes)"
                )),
            ));
        }
        ours
    };
    client
        .send_bulk(
            Frame::control(&ClientMsg::TransferEnd {
                transfer,
                sha256: ours,
            })
            .map_err(ferry_proto::FrameError::from)?,
        )
        .await?;
    match next_reply(client, &mut replies).await? {
        Reply::PutDone { sha256, .. } if sha256 == ours => {
            guard.armed = false;
            report.sha256 = Some(ours);
            Ok(())
        }
        Reply::PutDone { .. } => Err(ClientError::Remote(RemoteError::new(
            ErrorKind::IntegrityFailed,
            remote.to_string(),
        ))),
        other => Err(ClientError::Protocol(format!(
            "unexpected reply to put: {other:?}"
        ))),
    }
}

/// What [`read_ahead`] hands one small file's upload: the file read and
/// hashed, or `None` when it is no longer small (the upload reads it
/// itself), or the error that stopped the read.
pub(crate) type Ahead = oneshot::Receiver<std::io::Result<Option<SmallFile>>>;

/// A small file, read and hashed ahead of its upload.
pub(crate) struct SmallFile {
    md: std::fs::Metadata,
    data: Bytes,
    sha256: [u8; 32],
    /// Its place in the read-ahead window, given back once it is sent.
    window: OwnedSemaphorePermit,
}

/// Small files read ahead at most: with 256 KiB chunks, 16 MiB at worst.
const READ_AHEAD: usize = 64;

/// Reads the small files of a job (those of at most [`SMALL_FILE`] bytes
/// when listed) ahead of their uploads, in job order, on one blocking
/// thread, at most [`READ_AHEAD`] files ahead of the uploads. A tree of
/// small files used to cost a trip to a blocking thread and back per
/// file. Returns, per file, where its upload finds it (`None`: read it
/// yourself). Files whose uploads are gone are not read.
pub(crate) fn read_ahead(files: &[(&Path, u64)]) -> Vec<Option<Ahead>> {
    let mut todo = Vec::new();
    let found = files
        .iter()
        .map(|&(path, size)| {
            (size <= SMALL_FILE).then(|| {
                let (tx, rx) = oneshot::channel();
                todo.push((path.to_path_buf(), tx));
                rx
            })
        })
        .collect();
    if todo.is_empty() {
        return found;
    }
    let window = Arc::new(Semaphore::new(READ_AHEAD));
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut reader = ChunkReader::new();
        for (path, tx) in todo {
            if tx.is_closed() {
                continue;
            }
            // Never closed, so only a dropped runtime ends the wait.
            let Ok(place) = rt.block_on(window.clone().acquire_owned()) else {
                return;
            };
            let _ = tx.send(read_small(&path, &mut reader, place));
        }
    });
    found
}

fn read_small(
    path: &Path,
    reader: &mut ChunkReader,
    window: OwnedSemaphorePermit,
) -> std::io::Result<Option<SmallFile>> {
    let mut file = File::open(path)?;
    let md = file.metadata()?;
    if md.len() > SMALL_FILE {
        return Ok(None);
    }
    let (data, sha256) = read_whole(&mut file, md.len(), reader)?;
    Ok(Some(SmallFile {
        md,
        data,
        sha256,
        window,
    }))
}

/// Reads a file of `size` bytes (one chunk at most) whole and hashes it.
fn read_whole(
    file: &mut File,
    size: u64,
    reader: &mut ChunkReader,
) -> std::io::Result<(Bytes, [u8; 32])> {
    let data = reader.read(file, size as usize)?;
    let sha = Sha256::digest(&data).into();
    Ok((data, sha))
}

/// Reads `left` bytes in chunks into `tx`, hashing them; returns the final hash.
fn read_chunks(
    mut file: File,
    mut left: u64,
    hasher: Sha256,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
) -> Option<[u8; 32]> {
    let mut pipe = HashPipe::new(hasher, left);
    let mut reader = ChunkReader::new();
    while left > 0 {
        let want = left.min(CHUNK_SIZE as u64) as usize;
        let chunk = match reader.read(&mut file, want) {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return None;
            }
        };
        pipe.update(&chunk);
        left -= want as u64;
        if tx.blocking_send(Ok(chunk)).is_err() {
            return None;
        }
    }
    pipe.finish()
}

/// The next reply on a request's route.
pub(crate) async fn next_reply(client: &Client, rx: &mut mpsc::Receiver<Event>) -> Result<Reply> {
    match rx.recv().await {
        Some(Event::Reply(Ok(r))) => Ok(r),
        Some(Event::Reply(Err(e))) => Err(ClientError::Remote(e)),
        Some(Event::Data(_)) => Err(ClientError::Protocol("unexpected data".into())),
        None => Err(client.lost()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_ahead_reads_small_files_in_order_and_leaves_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        // More small files than the window holds, so the reader must wait
        // for uploads to give places back.
        let n = READ_AHEAD * 3;
        for i in 0..n {
            std::fs::write(path(&format!("s{i}")), format!("file {i}")).unwrap();
        }
        std::fs::write(path("big"), vec![7u8; SMALL_FILE as usize + 1]).unwrap();
        std::fs::write(path("grew"), vec![1u8; SMALL_FILE as usize + 1]).unwrap();
        let names: Vec<String> = (0..n)
            .map(|i| format!("s{i}"))
            .chain(["big", "grew", "gone"].map(String::from))
            .collect();
        let paths: Vec<_> = names.iter().map(|n| path(n)).collect();
        // As listed: "grew" was small then, "gone" existed.
        let mut listed: Vec<(&Path, u64)> = paths.iter().map(|p| (p.as_path(), 10)).collect();
        listed[n].1 = SMALL_FILE + 1;
        let mut ahead = read_ahead(&listed).into_iter();
        for i in 0..n {
            let small = ahead
                .next()
                .unwrap()
                .unwrap()
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let want = format!("file {i}");
            assert_eq!(&small.data[..], want.as_bytes());
            assert_eq!(
                small.sha256,
                <[u8; 32]>::from(Sha256::digest(want.as_bytes()))
            );
            assert_eq!(small.md.len(), want.len() as u64);
        }
        assert!(
            ahead.next().unwrap().is_none(),
            "large files are not read ahead"
        );
        let grew = ahead.next().unwrap().unwrap().await.unwrap();
        assert!(
            grew.unwrap().is_none(),
            "a file that grew is left to its upload"
        );
        let gone = ahead.next().unwrap().unwrap().await.unwrap();
        assert_eq!(gone.err().unwrap().kind(), std::io::ErrorKind::NotFound);
    }
}
