//! Receiving a file into object storage: a multipart upload recorded in
//! the database (upload id, part tags, SHA-256 state at each part's end),
//! so a cut upload resumes from its last part on any node; the client's
//! prefix proof (`PutReady`) comes from the saved state. At the end the
//! received bytes' SHA-256 must equal the sender's; then the multipart
//! upload is completed and, in one transaction, the path points at the
//! new blob and the quota is settled. A mismatch aborts it: nothing
//! appears under the name. Small files (eager) are one PUT each.
//!
//! Memory: each upload receiving data holds one part buffer, taken from
//! its user's places for parts and the server's before `PutReady` (so no
//! data comes before there is room for it); data frames are copied into
//! it and their budget given back. Sending the parts is `parts.rs`.

use std::sync::Arc;

use bytes::BytesMut;
use ferry_proto::{ErrorKind, RemoteError, Reply};
use object_store::multipart::{MultipartStore, PartId};
use object_store::{ObjectStoreExt, PutPayload};
use tokio::sync::mpsc;

use super::commit::Commit;
use super::home::{store_error, ObjectHome};
use super::parts::Parts;
use super::sha::PartSha;
use super::Bucket;
use crate::accounts::{Account, PathLock};
use crate::ledger::{Cost, Reservation};
use crate::logfmt::q;
use crate::outbox::Outbox;
use crate::store::namespace::NewFile;
use crate::store::ns_put::PutFile;
use crate::store::object_uploads::ObjectUpload;
use crate::transfer::upload::{Ctx, UploadSpec};
use crate::transfer::{hex, UploadMsg};

fn internal() -> RemoteError {
    RemoteError::new(ErrorKind::Io, "internal error")
}

fn bad(msg: impl Into<String>) -> RemoteError {
    RemoteError::new(ErrorKind::BadRequest, msg)
}

/// Runs an upload into object storage to its end and sends the final
/// reply; `keep` (its turn, places, slot) goes back as that reply goes.
pub async fn stream(
    spec: UploadSpec,
    account: Arc<Account>,
    rx: mpsc::Receiver<UploadMsg>,
    out: Outbox,
    ctx: Ctx,
    keep: impl Send + 'static,
) {
    let result = received(&spec, &account, rx, &out, &ctx).await;
    log(&spec, &account, &result);
    if spec.eager {
        out.reply_later(spec.id, result, keep);
    } else {
        out.reply_holding(spec.id, result, keep).await;
    }
}

fn log(spec: &UploadSpec, account: &Account, result: &Result<Reply, RemoteError>) {
    match result {
        Ok(_) => {
            tracing::info!(target: "audit", user = %q(&account.name), op = "put", path = %q(&spec.path), size = spec.size);
        }
        Err(e) if e.kind == ErrorKind::Cancelled => {
            tracing::info!(user = %q(&account.name), path = %q(&spec.path), "upload interrupted; parts kept");
        }
        Err(e) => {
            tracing::info!(user = %q(&account.name), path = %q(&spec.path), error = %q(e), "upload failed");
        }
    }
}

/// What the first step found: the path taken, and the size of the file
/// the upload replaces.
struct Checked {
    lock: PathLock,
    replaced: u64,
}

/// Takes the path and checks the target (on a blocking thread: it waits
/// for the database).
fn check(
    spec: &UploadSpec,
    account: &Arc<Account>,
    home: &ObjectHome,
) -> Result<Checked, RemoteError> {
    let path = &spec.path;
    if path.is_root() {
        return Err(RemoteError::new(ErrorKind::IsADirectory, "/"));
    }
    home.check_depth(path)?;
    let lock = account.lock_path(path)?;
    match home.node(&path.parent())? {
        Some(n) if n.is_dir => {}
        Some(_) => {
            return Err(RemoteError::new(
                ErrorKind::NotADirectory,
                path.parent().to_string(),
            ))
        }
        None => {
            return Err(RemoteError::new(
                ErrorKind::NotFound,
                path.parent().to_string(),
            ))
        }
    }
    let replaced = match home.node(path)? {
        Some(n) if n.is_dir => {
            return Err(RemoteError::new(ErrorKind::IsADirectory, path.to_string()))
        }
        Some(n) if !spec.overwrite => {
            return Err(RemoteError::new(
                ErrorKind::AlreadyExists,
                format!("{path} ({} bytes)", n.size),
            ))
        }
        Some(n) => n.size,
        None => 0,
    };
    Ok(Checked { lock, replaced })
}

/// The upload's steps; the final reply.
async fn received(
    spec: &UploadSpec,
    account: &Arc<Account>,
    mut rx: mpsc::Receiver<UploadMsg>,
    out: &Outbox,
    ctx: &Ctx,
) -> Result<Reply, RemoteError> {
    let home = account.home.objects().ok_or_else(internal)?.clone();
    let (s, a, h) = (spec_copy(spec), account.clone(), home.clone());
    let checked = ctx
        .threads
        .run(move || check(&s, &a, &h))
        .await
        .ok_or_else(internal)??;
    if spec.eager {
        return eager(spec, account, &home, &mut rx, ctx, checked).await;
    }
    let key = spec.path.to_string();
    let store = &home.store;
    let old = store
        .object_upload(&home.user, &key)
        .await
        .map_err(|e| store_error(&e))?;
    // What an earlier attempt left, if it can be resumed.
    let resumable = old
        .clone()
        .filter(|u| spec.resume && u.done <= spec.size && u.part_size == home.bucket.part_size);
    let (prefix_hash, done) = match &resumable {
        Some(u) => match PartSha::restore(&u.state) {
            Some(sha) => (Some(sha), u.done),
            None => (None, 0),
        },
        None => (None, 0),
    };
    // Room for a part before the client may send any data.
    let buffer = home.part_places().await.ok_or_else(internal)?;
    // The quota: what is left to come (the parts done are counted).
    let (a, sz, rep) = (account.clone(), spec.size, checked.replaced);
    let key2 = key.clone();
    let mut reservation = ctx
        .threads
        .run(move || a.ledger.reserve_for(sz - done, rep, Some(key2)))
        .await
        .ok_or_else(internal)??;
    reservation.adopt(done);
    reservation.use_bytes(done);
    out.reply(
        spec.id,
        Ok(Reply::PutReady {
            partial: done,
            prefix_sha256: prefix_hash.as_ref().map(PartSha::digest),
        }),
    )
    .await;
    // The part buffer is held for this upload: a client that does not
    // start soon gives it back (opened and never started, a few users'
    // uploads would hold every buffer of the server until the stall limit).
    let wait = home.bucket.part_start;
    let not_started = || {
        let why = format!(
            "{}: not started within {} s of the server's ready; its part buffer is free again",
            spec.path,
            wait.as_secs()
        );
        RemoteError::new(ErrorKind::TimedOut, why)
    };
    let first = tokio::time::timeout(wait, next(&mut rx, &checked.lock, ctx)).await;
    let start = match first.map_err(|_| not_started())?? {
        UploadMsg::Start(offset) => offset,
        _ => return Err(bad("expected PutStart")),
    };
    let bucket = &home.bucket;
    let (mut up, sha) = if start == done && done > 0 {
        let Some(u) = resumable else {
            return Err(internal());
        };
        (u, prefix_hash.unwrap_or_default())
    } else if start == 0 {
        match old {
            // Started afresh: the old parts go. Their bytes, counted,
            // are now only reserved (if offered for resume) or freed;
            // the entry stays the upload's.
            Some(u) => {
                abort(bucket, store, &home.user, &key, &u).await;
                if done > 0 {
                    reservation.unuse_bytes(done);
                } else {
                    account.ledger.give(Cost::bytes(u.done));
                }
            }
            None => account.ledger.with(|b| b.take(Cost::ENTRY))?,
        }
        let blob = Bucket::new_blob(&home.user).map_err(|e| e.to_remote())?;
        let id = bucket
            .s3()
            .create_multipart(&bucket.path(&blob))
            .await
            .map_err(|e| super::BucketError::from(e).to_remote())?;
        let u = ObjectUpload {
            blob,
            upload_id: id,
            size: spec.size,
            part_size: bucket.part_size,
            parts: Vec::new(),
            done: 0,
            state: PartSha::new().save(),
        };
        store
            .object_upload_begin(&home.user, &key, &u)
            .await
            .map_err(|e| store_error(&e))?;
        (u, PartSha::new())
    } else {
        return Err(bad(format!(
            "cannot start at byte {start}: the server holds {done}"
        )));
    };
    up.size = spec.size;
    let mut parts = Parts::new(
        &home,
        &key,
        checked.lock.superseded.clone(),
        up,
        sha,
        reservation,
        (buffer, out.budget().clone()),
    );
    let theirs = match receive(spec, &mut parts, &mut rx, out, ctx, &checked.lock).await {
        Ok(theirs) => theirs,
        Err(e) => {
            // The part in flight is kept (and counted) for a resume.
            parts.stop().await;
            return Err(e);
        }
    };
    let (up, ours, reservation) = parts.finish().await?;
    if ours != theirs || up.done != spec.size {
        abort(bucket, store, &home.user, &key, &up).await;
        account.ledger.give(Cost::file(up.done));
        return Err(RemoteError::new(
            ErrorKind::IntegrityFailed,
            format!(
                "{}: received {} bytes with SHA-256 {}, the sender's is {} ({} declared); nothing was stored",
                spec.path,
                up.done,
                hex(&ours),
                hex(&theirs),
                spec.size
            ),
        ));
    }
    let parts = up
        .parts
        .iter()
        .map(|t| PartId {
            content_id: t.clone(),
        })
        .collect();
    bucket
        .s3()
        .complete_multipart(&bucket.path(&up.blob), &up.upload_id, parts)
        .await
        .map_err(|e| super::BucketError::from(e).to_remote())?;
    let upload = Some(up.upload_id.clone());
    let done = commit(
        &home,
        spec,
        Some(up.blob.clone()),
        ours,
        upload,
        reservation,
    )
    .await;
    drop(checked);
    done
}

/// Points the path at the stored blob (`None`: an empty file) in the
/// user's next commit transaction; the reply.
async fn commit(
    home: &ObjectHome,
    spec: &UploadSpec,
    blob: Option<String>,
    sha256: [u8; 32],
    upload: Option<String>,
    reservation: Reservation,
) -> Result<Reply, RemoteError> {
    let file = NewFile {
        size: spec.size,
        blob,
        sha256: hex(&sha256),
        mtime: spec.mtime,
        mode: spec.mode & 0o777,
    };
    let put = PutFile {
        path: spec.path.to_string(),
        file,
        overwrite: spec.overwrite,
        upload,
    };
    home.committer
        .commit(Commit {
            path: spec.path.clone(),
            put,
            reservation,
        })
        .await?;
    Ok(Reply::PutDone {
        size: spec.size,
        sha256,
    })
}

/// Receives the data into parts until the end; the sender's SHA-256.
async fn receive(
    spec: &UploadSpec,
    parts: &mut Parts,
    rx: &mut mpsc::Receiver<UploadMsg>,
    out: &Outbox,
    ctx: &Ctx,
    lock: &PathLock,
) -> Result<[u8; 32], RemoteError> {
    loop {
        let mut batch = vec![next(rx, lock, ctx).await?];
        while batch.len() < 16 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut end = None;
        let mut data = Vec::new();
        for m in batch {
            match m {
                UploadMsg::Data(bytes, charge) => data.push((bytes, charge)),
                UploadMsg::End(sha) => end = Some(sha),
                UploadMsg::Start(_) => return Err(bad("PutStart twice")),
            }
        }
        let arrived: u64 = data.iter().map(|(b, _)| b.len() as u64).sum();
        let before = parts.received();
        if before + arrived > spec.size {
            // Beyond the declared size: must fit the quota too.
            parts
                .grow(before + arrived - spec.size.max(before), ctx)
                .await?;
        }
        parts.add(data, ctx).await?;
        out.progressed();
        if let Some(sha) = end {
            return Ok(sha);
        }
    }
}

/// After a small file took the name: an upload of it left unfinished is
/// over. Its multipart upload is aborted and its row goes with what it
/// counted (best effort: else the sweeper aborts it in time, crediting
/// the owner).
async fn drop_unfinished(account: &Account, home: &ObjectHome, key: &str) {
    let (store, bucket) = (&home.store, &home.bucket);
    let old = match store.object_upload(&home.user, key).await {
        Ok(Some(u)) => u,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for an unfinished upload");
            return;
        }
    };
    if let Err(e) = bucket
        .s3()
        .abort_multipart(&bucket.path(&old.blob), &old.upload_id)
        .await
    {
        tracing::warn!(error = %e, "cannot abort a multipart upload; the sweeper will");
        return;
    }
    match store
        .object_upload_drop(&home.user, key, &old.upload_id)
        .await
    {
        Ok(Some(done)) => account.ledger.give(Cost::file(done)),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot forget an aborted upload"),
    }
}

/// Aborts a multipart upload and forgets its row (best effort: the
/// sweeper aborts what is left).
async fn abort(
    bucket: &Bucket,
    store: &crate::store::Store,
    user: &str,
    key: &str,
    u: &ObjectUpload,
) {
    if let Err(e) = bucket
        .s3()
        .abort_multipart(&bucket.path(&u.blob), &u.upload_id)
        .await
    {
        tracing::warn!(error = %e, "cannot abort a multipart upload; the sweeper will");
        return;
    }
    if let Err(e) = store.object_upload_end(user, key, &u.upload_id).await {
        tracing::warn!(error = %e, "cannot forget an aborted upload");
    }
}

/// The next message, or why none comes (connection gone, superseded,
/// stalled).
async fn next(
    rx: &mut mpsc::Receiver<UploadMsg>,
    lock: &PathLock,
    ctx: &Ctx,
) -> Result<UploadMsg, RemoteError> {
    tokio::select! {
        m = tokio::time::timeout(ctx.stall, rx.recv()) => match m {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(RemoteError::bare(ErrorKind::Cancelled)),
            Err(_) => Err(RemoteError::new(
                ErrorKind::TimedOut,
                format!(
                    "nothing arrived for {} s; the parts received are kept for a resume",
                    ctx.stall.as_secs()
                ),
            )),
        },
        _ = lock.superseded.cancelled() => Err(RemoteError::bare(ErrorKind::Cancelled)),
    }
}

/// A small file whose data and end have all arrived: one PUT, then its
/// row. Its entry and bytes are counted as it starts and given back if
/// it fails.
async fn eager(
    spec: &UploadSpec,
    account: &Arc<Account>,
    home: &ObjectHome,
    rx: &mut mpsc::Receiver<UploadMsg>,
    ctx: &Ctx,
    checked: Checked,
) -> Result<Reply, RemoteError> {
    let (a, sz, rep, key) = (
        account.clone(),
        spec.size,
        checked.replaced,
        spec.path.to_string(),
    );
    let mut reservation = ctx
        .threads
        .run(move || {
            let r = a.ledger.reserve_for(sz, rep, Some(key))?;
            a.ledger.with(|b| b.take(Cost::ENTRY))?;
            Ok::<_, RemoteError>(r)
        })
        .await
        .ok_or_else(internal)??;
    let stored = async {
        let mut buf = BytesMut::new();
        let theirs = loop {
            match next(rx, &checked.lock, ctx).await? {
                UploadMsg::Data(bytes, _charge) => {
                    if (buf.len() + bytes.len()) as u64 > spec.size {
                        return Err(bad("more data than declared"));
                    }
                    buf.extend_from_slice(&bytes);
                }
                UploadMsg::End(sha) => break sha,
                UploadMsg::Start(_) => return Err(bad("PutStart in an eager upload")),
            }
        };
        let bytes = buf.freeze();
        let ours: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(&bytes).into()
        };
        if ours != theirs || bytes.len() as u64 != spec.size {
            return Err(RemoteError::new(
                ErrorKind::IntegrityFailed,
                format!(
                    "{}: the data does not match the sender's SHA-256",
                    spec.path
                ),
            ));
        }
        let blob = match bytes.is_empty() {
            true => None,
            false => {
                let blob = Bucket::new_blob(&home.user).map_err(|e| e.to_remote())?;
                home.bucket
                    .s3()
                    .put(&home.bucket.path(&blob), PutPayload::from(bytes))
                    .await
                    .map_err(|e| super::BucketError::from(e).to_remote())?;
                Some(blob)
            }
        };
        Ok((ours, blob))
    }
    .await;
    let (ours, blob) = match stored {
        Ok(v) => v,
        Err(e) => {
            account.ledger.give(Cost::ENTRY);
            return Err(e);
        }
    };
    reservation.use_bytes(spec.size);
    let done = commit(home, spec, blob, ours, None, reservation).await?;
    drop_unfinished(account, home, &spec.path.to_string()).await;
    drop(checked);
    Ok(done)
}

fn spec_copy(s: &UploadSpec) -> UploadSpec {
    UploadSpec {
        id: s.id,
        path: s.path.clone(),
        size: s.size,
        mtime: s.mtime,
        mode: s.mode,
        overwrite: s.overwrite,
        resume: s.resume,
        eager: s.eager,
    }
}
