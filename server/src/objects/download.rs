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
    crate::transfer::unhex(node.sha256.as_deref()?)?
        .try_into()
        .ok()
}

/// The SHA-256 state after the first `len` bytes of a file, read from
/// the store.
async fn hash_prefix(home: &ObjectHome, node: &Node, len: u64) -> Result<Sha256, RemoteError> {
    let mut h = Sha256::new();
    let mut pieces = Box::pin(body(home.clone(), node.clone(), 0..len));
    while let Some(piece) = pieces.next().await {
        h.update(&piece?);
    }
    Ok(h)
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
    Ok(hash_prefix(home, node, len).await?.finalize().into())
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
        let h = hash_prefix(&home, &node, spec.offset).await?;
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
pub fn body(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sha256: Option<&str>) -> Node {
        Node {
            name: "f".into(),
            is_dir: false,
            size: 1,
            blob: Some("b".into()),
            sha256: sha256.map(str::to_string),
            mtime: 0,
            mode: 0o644,
        }
    }

    #[test]
    fn only_a_well_formed_stored_sha_is_taken() {
        let sha: [u8; 32] = Sha256::digest(b"x").into();
        let hex = crate::transfer::hex(&sha);
        assert_eq!(stored_sha(&row(Some(&hex))), Some(sha));
        assert_eq!(stored_sha(&row(Some(&hex.to_uppercase()))), Some(sha));
        assert_eq!(stored_sha(&row(None)), None);
        assert_eq!(stored_sha(&row(Some(&hex[2..]))), None);
        // Signs and other characters are not hex, even where
        // from_str_radix would take them.
        assert_eq!(stored_sha(&row(Some(&"+a".repeat(32)))), None);
        assert_eq!(stored_sha(&row(Some(&"é".repeat(32)))), None);
    }
}
