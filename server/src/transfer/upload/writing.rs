//! An upload receiving its data: begun at the client's offset, written in
//! steps with its quota reserved as it grows, hashed inline or beside
//! (large files), then checked, synced and renamed into place.

use std::io::{Seek, SeekFrom};
use std::path::PathBuf;

use bytes::Bytes;
use cap_std::fs::Dir;
use ferry_proto::chunks::WriteBehind;
use ferry_proto::direct::{DirectWriter, DIRECT_MIN};
use ferry_proto::{ErrorKind, RemoteError, RemotePath, Reply};
use sha2::{Digest, Sha256};

use super::super::commit::{Verified, GROUP_COMMIT_MAX};
use super::super::{hex, UploadMsg};
use super::disk::{flush_and_forget, open_replaced, prepare, replaced_cost, sync_dir, Partial};
use super::{bad, hashing_failed, Opened, Received, ToCommit, UploadSpec};
use crate::accounts::{Account, PathLock};
use crate::budget::Charge;
use crate::jail::io_error;
use crate::ledger::{Cost, Reservation};
use crate::logfmt::q;

/// An upload receiving its data: everything its steps need.
pub(super) struct Writing {
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
pub(super) fn begin(
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
    pub(super) fn write(
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
    pub(super) fn finish(
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
