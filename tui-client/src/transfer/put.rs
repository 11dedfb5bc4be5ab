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
use tokio::sync::mpsc;

use super::local::{hash_file, hash_prefix, local_err, renamed};
use super::{Conflict, Direction, FileReport, Job, Status, TransferEvent, TransferGuard};
use crate::client::session::{Event, Queue};
use crate::client::{Client, ClientError, Result};

/// Uploads `local` to `remote`, reporting as file `id`.
pub(crate) async fn put_file(
    client: &Client,
    job: &Job,
    id: u64,
    local: &Path,
    remote: RemotePath,
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
    match upload(client, job, id, local, remote, &mut report).await {
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
    report: &mut FileReport,
) -> Result<()> {
    let mut file = File::open(local).map_err(|e| local_err(local, e))?;
    let md = file.metadata().map_err(|e| local_err(local, e))?;
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
        // A file of one chunk at most: one trip to a blocking thread reads
        // and hashes it whole, and its data follows the PutOpen at once.
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<(Bytes, [u8; 32])> {
            let data = ChunkReader::new().read(&mut file, size as usize)?;
            let sha = Sha256::digest(&data).into();
            Ok((data, sha))
        });
        let (data, ours) = read
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?
            .map_err(|e| local_err(local, e))?;
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

        // Prove the server's partial is a prefix of our file, never trust size.
        let (offset, hasher, file) = {
            let (plen, theirs) = partial;
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
