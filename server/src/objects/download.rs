//! Sending a file from object storage: one ranged read from where the
//! client resumes, re-cut into chunks that wait for room in the
//! connection's budget; `GetDone` carries the SHA-256 recorded at upload
//! (or, with `rehash`, the hash of what was read).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferry_proto::{ErrorKind, Frame, RemoteError, RemotePath, Reply, CHUNK_SIZE};
use futures::StreamExt;
use object_store::{GetOptions, GetRange, ObjectStore};
use sha2::{Digest, Sha256};

use super::home::ObjectHome;
use super::BucketError;
use crate::accounts::Account;
use crate::budget::OVERHEAD;
use crate::logfmt::q;
use crate::outbox::Outbox;
use crate::store::namespace::Node;
use crate::transfer::download::DownloadSpec;

fn internal() -> RemoteError {
    RemoteError::new(ErrorKind::Io, "internal error")
}

/// Runs a download from object storage to its end; `keep` goes back as
/// the last reply is written.
pub async fn stream(
    spec: DownloadSpec,
    account: Arc<Account>,
    out: Outbox,
    cancel: Arc<AtomicBool>,
    stall: Duration,
    keep: impl Send + 'static,
) {
    let last = match send(&spec, &account, &out, &cancel, stall).await {
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

/// The regular file at `path`.
pub fn file(home: &ObjectHome, path: &RemotePath) -> Result<Node, RemoteError> {
    match home.node(path)? {
        Some(n) if n.is_dir => Err(RemoteError::new(ErrorKind::IsADirectory, path.to_string())),
        Some(n) => Ok(n),
        None => Err(RemoteError::new(ErrorKind::NotFound, path.to_string())),
    }
}

/// The stored SHA-256 of a row.
pub fn stored_sha(node: &Node) -> Option<[u8; 32]> {
    let hex = node.sha256.as_deref()?;
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Reads `range` of a file's blob, feeding each piece to `each` (which
/// may stop the read by returning false).
pub async fn read_range(
    home: &ObjectHome,
    node: &Node,
    range: std::ops::Range<u64>,
    mut each: impl FnMut(Bytes) -> bool,
) -> Result<(), RemoteError> {
    let Some(blob) = &node.blob else {
        return Ok(()); // an empty file
    };
    if range.is_empty() {
        return Ok(());
    }
    let opts = GetOptions {
        range: Some(GetRange::Bounded(range)),
        ..Default::default()
    };
    let got = home
        .bucket
        .s3()
        .get_opts(&home.bucket.path(blob), opts)
        .await
        .map_err(|e| BucketError::from(e).to_remote())?;
    let mut stream = got.into_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| BucketError::from(e).to_remote())?;
        if !each(piece) {
            break;
        }
    }
    Ok(())
}

/// The SHA-256 of the first `len` bytes of a file (a checksum request,
/// or a resume's prefix), read from the store; the recorded one when
/// `len` is the whole file.
pub async fn checksum(home: &ObjectHome, node: &Node, len: u64) -> Result<[u8; 32], RemoteError> {
    if len == node.size {
        if let Some(sha) = stored_sha(node) {
            return Ok(sha);
        }
    }
    let mut h = Sha256::new();
    read_range(home, node, 0..len, |b| {
        h.update(&b);
        true
    })
    .await?;
    Ok(h.finalize().into())
}

async fn send(
    spec: &DownloadSpec,
    account: &Arc<Account>,
    out: &Outbox,
    cancel: &AtomicBool,
    stall: Duration,
) -> Result<Option<Result<Reply, RemoteError>>, RemoteError> {
    let home = account.home.objects().ok_or_else(internal)?.clone();
    let node = {
        let (h, p) = (home.clone(), spec.path.clone());
        tokio::task::spawn_blocking(move || file(&h, &p))
            .await
            .map_err(|_| internal())??
    };
    let size = node.size;
    let recorded = stored_sha(&node);
    let mut start = 0;
    let mut hasher = Sha256::new();
    if let (true, Some(theirs)) = (spec.offset > 0 && spec.offset <= size, spec.prefix_sha256) {
        let mut h = Sha256::new();
        read_range(&home, &node, 0..spec.offset, |b| {
            h.update(&b);
            true
        })
        .await?;
        if <[u8; 32]>::from(h.clone().finalize()) == theirs {
            start = spec.offset;
            hasher = h;
        }
    }
    let ready = Reply::GetReady {
        size,
        offset: start,
        mtime: node.mtime,
        mode: node.mode & 0o777,
    };
    if !out.bulk_reply(spec.id, Ok(ready)).await {
        return Ok(None);
    }
    let known = recorded.filter(|_| spec.use_stored);
    let hashing = known.is_none();
    let mut body = Box::pin(body(home.clone(), node.clone(), start..size));
    let mut left = size - start;
    let mut buf = BytesMut::new();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(RemoteError::bare(ErrorKind::Cancelled));
        }
        // Fill one chunk (or what is left).
        let want = left.min(CHUNK_SIZE as u64) as usize;
        if want == 0 {
            break;
        }
        while buf.len() < want {
            match tokio::time::timeout(stall, body.next()).await {
                Ok(Some(Ok(piece))) => buf.extend_from_slice(&piece),
                Ok(Some(Err(e))) => return Err(e),
                Ok(None) => {
                    return Err(RemoteError::new(
                        ErrorKind::Io,
                        format!(
                            "{}: the store sent fewer bytes than the file holds",
                            spec.path
                        ),
                    ))
                }
                Err(_) => {
                    return Err(RemoteError::new(
                        ErrorKind::TimedOut,
                        format!(
                            "{}: the object store sent nothing for {} s",
                            spec.path,
                            stall.as_secs()
                        ),
                    ))
                }
            }
        }
        let data = buf.split_to(want).freeze();
        let charge = match tokio::time::timeout(stall, out.budget().charge(want + OVERHEAD)).await {
            Ok(Some(c)) => c,
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
        if hashing {
            hasher.update(&data);
        }
        left -= data.len() as u64;
        let frame = Frame::Data {
            transfer: spec.transfer,
            data,
        };
        if !out.data(frame, charge) {
            return Ok(None);
        }
        out.progressed();
    }
    let sha256 = match known {
        Some(sha) => sha,
        None => hasher.finalize().into(),
    };
    if let (Some(r), false) = (recorded, known.is_some()) {
        if r != sha256 {
            tracing::warn!(path = %q(&spec.path), "object content differs from the SHA-256 recorded at upload");
        }
    }
    Ok(Some(Ok(Reply::GetDone {
        sha256,
        stored: known.is_some(),
    })))
}

/// The body of `range` of a file's blob, as a stream of pieces.
fn body(
    home: ObjectHome,
    node: Node,
    range: std::ops::Range<u64>,
) -> impl futures::Stream<Item = Result<Bytes, RemoteError>> {
    futures::stream::once(async move {
        let Some(blob) = node.blob.clone() else {
            return futures::stream::empty().boxed();
        };
        if range.is_empty() {
            return futures::stream::empty().boxed();
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..Default::default()
        };
        match home
            .bucket
            .s3()
            .get_opts(&home.bucket.path(&blob), opts)
            .await
        {
            Ok(got) => got
                .into_stream()
                .map(|r| r.map_err(|e| BucketError::from(e).to_remote()))
                .boxed(),
            Err(e) => {
                futures::stream::once(async move { Err(BucketError::from(e).to_remote()) }).boxed()
            }
        }
    })
    .flatten()
}
