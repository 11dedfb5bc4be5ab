//! Sending an upload's parts: the next part fills while earlier ones'
//! PUTs are in flight (at most the user's share of part buffers for one
//! upload, each filling or in flight, all but the first taken only when a
//! place is free at once), and the parts are recorded in the database in
//! order, so a resume starts after the last one recorded.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use ferry_proto::{ErrorKind, RemoteError};
use object_store::multipart::MultipartStore;
use object_store::PutPayload;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::home::{store_error, ObjectHome, Places};
use super::sha::PartSha;
use crate::budget::{Budget, Charge};
use crate::ledger::Reservation;
use crate::store::object_uploads::ObjectUpload;
use crate::transfer::upload::Ctx;

fn internal() -> RemoteError {
    RemoteError::new(ErrorKind::Io, "internal error")
}

/// The part being filled.
#[derive(Default)]
struct Fill {
    buf: BytesMut,
    /// The hash of everything up to the end of `buf`.
    sha: PartSha,
}

/// A part whose PUT runs: its length and the hash state at its end, to
/// record once it and every part before it are done.
struct Flight {
    task: JoinHandle<Result<String, RemoteError>>,
    len: u64,
    state: Vec<u8>,
}

/// An upload's parts: the one being filled, those in flight, the record
/// of those done, and the quota of it all.
pub struct Parts {
    home: ObjectHome,
    key: String,
    superseded: CancellationToken,
    /// The upload as recorded.
    up: ObjectUpload,
    /// Oldest first.
    flights: VecDeque<Flight>,
    fill: Option<Fill>,
    part_size: u64,
    /// Bytes of parts done are counted as written.
    reservation: Option<Reservation>,
    /// The first buffer's place (the user's, the server's).
    _first: Places,
    /// More buffers' places, while parts are in flight (at most the
    /// user's share less the first).
    extra: Vec<Places>,
    /// The connection's budget, and buffers beyond the places charged to
    /// its user's bytes (at most the user's share of places again).
    budget: Budget,
    borrowed: Vec<Charge>,
}

impl Parts {
    /// Parts of `up` (of the upload of `key`), `sha` the hash of its parts
    /// done; `place` is the first buffer's, `budget` the connection's.
    pub fn new(
        home: &ObjectHome,
        key: &str,
        superseded: CancellationToken,
        up: ObjectUpload,
        sha: PartSha,
        reservation: Reservation,
        (place, budget): (Places, Budget),
    ) -> Parts {
        Parts {
            home: home.clone(),
            key: key.to_string(),
            superseded,
            part_size: up.part_size,
            up,
            flights: VecDeque::new(),
            fill: Some(Fill {
                buf: BytesMut::new(),
                sha,
            }),
            reservation: Some(reservation),
            _first: place,
            extra: Vec::new(),
            budget,
            borrowed: Vec::new(),
        }
    }

    /// Bytes received so far (in parts done, in flight, being filled).
    pub fn received(&self) -> u64 {
        let flying: u64 = self.flights.iter().map(|f| f.len).sum();
        self.up.done + flying + self.fill.as_ref().map_or(0, |f| f.buf.len() as u64)
    }

    /// Reserves `more` bytes of quota (data beyond the declared size).
    pub async fn grow(&mut self, more: u64, ctx: &Ctx) -> Result<(), RemoteError> {
        let mut r = self.reservation.take().ok_or_else(internal)?;
        let (r, grown) = ctx
            .threads
            .run(move || {
                let grown = r.grow(more);
                (r, grown)
            })
            .await
            .ok_or_else(internal)?;
        self.reservation = Some(r);
        grown
    }

    /// Copies and hashes `data` into parts (in one step on the user's
    /// threads, each frame's budget given back as it is copied) once a
    /// buffer is free for it; each part filled goes on its way.
    pub async fn add(&mut self, data: Vec<(Bytes, Charge)>, ctx: &Ctx) -> Result<(), RemoteError> {
        self.room().await?;
        let mut fill = self.fill.take().ok_or_else(internal)?;
        let part_size = usize::try_from(self.part_size).map_err(|_| internal())?;
        let (fill, full) = ctx
            .threads
            .run(move || {
                let mut full = Vec::new();
                for (bytes, charge) in data {
                    let mut rest: &[u8] = &bytes;
                    while !rest.is_empty() {
                        let room = part_size - fill.buf.len();
                        let (now, later) = rest.split_at(room.min(rest.len()));
                        if fill.buf.is_empty() {
                            fill.buf.reserve(part_size);
                        }
                        fill.buf.extend_from_slice(now);
                        fill.sha.update(now);
                        if fill.buf.len() == part_size {
                            full.push((fill.buf.split().freeze(), fill.sha.save()));
                        }
                        rest = later;
                    }
                    drop(charge);
                }
                (fill, full)
            })
            .await
            .ok_or_else(internal)?;
        self.fill = Some(fill);
        for (bytes, state) in full {
            self.launch(bytes, state);
        }
        // Record what is done meanwhile (in order), without waiting.
        while self.flights.front().is_some_and(|f| f.task.is_finished()) {
            self.land().await?;
        }
        Ok(())
    }

    /// Sends the last (short) part, waits for every part to be done, and
    /// gives back the record, the hash of all and the quota.
    pub async fn finish(mut self) -> Result<(ObjectUpload, [u8; 32], Reservation), RemoteError> {
        let mut fill = self.fill.take().ok_or_else(internal)?;
        if !fill.buf.is_empty() || (self.up.parts.is_empty() && self.flights.is_empty()) {
            let bytes = fill.buf.split().freeze();
            self.launch(bytes, fill.sha.save());
        }
        self.land_all().await?;
        let reservation = self.reservation.take().ok_or_else(internal)?;
        Ok((self.up, fill.sha.digest(), reservation))
    }

    /// Waits for the parts in flight after the upload failed: those done
    /// are kept (and counted) for a resume.
    pub async fn stop(mut self) {
        if let Err(e) = self.land_all().await {
            tracing::debug!(error = %e, "a part in flight failed too");
        }
    }

    /// Waits until a buffer is free to fill: one for each place held.
    /// More places are taken only if free at once in the user's share and
    /// the server's; past the user's share of places, as many again only
    /// if the user's byte budget has room for them at once (bytes her
    /// sessions' frames are not using); else the oldest part must be
    /// done first, and one buffer is given back each time a part is done.
    async fn room(&mut self) -> Result<(), RemoteError> {
        let most = self.home.bucket.parts_per_user.max(1);
        let part = usize::try_from(self.part_size).map_err(|_| internal())?;
        loop {
            let placed = 1 + self.extra.len();
            if self.flights.len() < placed + self.borrowed.len() {
                return Ok(());
            }
            if placed < most {
                if let Some(p) = self.home.try_part_places() {
                    self.extra.push(p);
                    continue;
                }
            } else if self.borrowed.len() < most {
                if let Some(c) = self.budget.try_charge_user(part) {
                    self.borrowed.push(c);
                    continue;
                }
            }
            self.land().await?;
            // A buffer goes back and is taken again only if still free:
            // another upload of the user waiting for a place comes first.
            if self.borrowed.pop().is_none() {
                self.extra.pop();
            }
        }
    }

    /// Starts a part's PUT (numbered after those done and in flight).
    fn launch(&mut self, bytes: Bytes, state: Vec<u8>) {
        let len = bytes.len() as u64;
        let index = self.up.parts.len() + self.flights.len();
        let (bucket, blob, id) = (
            self.home.bucket.clone(),
            self.up.blob.clone(),
            self.up.upload_id.clone(),
        );
        let superseded = self.superseded.clone();
        let task = tokio::spawn(async move {
            if superseded.is_cancelled() {
                return Err(RemoteError::bare(ErrorKind::Cancelled));
            }
            let tag = bucket
                .s3()
                .put_part(&bucket.path(&blob), &id, index, PutPayload::from(bytes))
                .await
                .map_err(|e| super::BucketError::from(e).to_remote())?;
            Ok(tag.content_id)
        });
        self.flights.push_back(Flight { task, len, state });
    }

    /// Waits for the oldest part in flight and records it (its tag, the
    /// bytes done, the hash state): done, it counts as written.
    async fn land(&mut self) -> Result<(), RemoteError> {
        let Some(flight) = self.flights.pop_front() else {
            return Ok(());
        };
        let tag = flight.task.await.map_err(|_| internal())??;
        let before = std::mem::replace(&mut self.up.state, flight.state);
        self.up.parts.push(tag);
        self.up.done += flight.len;
        let recorded = self
            .home
            .store
            .object_upload_part(&self.home.user, &self.key, &self.up)
            .await
            .map_err(|e| store_error(&e))
            .and_then(|r| match r {
                true => Ok(()),
                // Another upload of the path took over.
                false => Err(RemoteError::bare(ErrorKind::Cancelled)),
            });
        if let Err(e) = recorded {
            self.up.parts.pop();
            self.up.done -= flight.len;
            self.up.state = before;
            return Err(e);
        }
        if let Some(r) = &mut self.reservation {
            r.use_bytes(flight.len);
        }
        if self.flights.is_empty() {
            self.extra.clear();
            self.borrowed.clear();
        }
        Ok(())
    }

    /// Records every part in flight, in order; after one fails, those
    /// after it are waited for (their buffers held until then) but not
    /// recorded.
    async fn land_all(&mut self) -> Result<(), RemoteError> {
        while !self.flights.is_empty() {
            if let Err(e) = self.land().await {
                for f in self.flights.drain(..) {
                    let _ = f.task.await;
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Bucket;
    use super::*;
    use crate::store::bans::tests::sqlite;

    #[tokio::test]
    async fn a_second_part_buffer_is_taken_only_within_both_shares() {
        let (store, _dir) = sqlite().await;
        // Three buffers over the server, two per user.
        let bucket = Bucket::unreached(3, 2);
        let ann = ObjectHome::new("ann", store.clone(), bucket.clone(), 8);
        let bob = ObjectHome::new("bob", store, bucket, 8);
        let a1 = ann.part_places().await.unwrap();
        let a2 = ann.try_part_places().expect("a second within both shares");
        // Ann's share is full; the server still has a place, for Bob.
        assert!(ann.try_part_places().is_none());
        let b1 = bob.part_places().await.unwrap();
        // The server's share is full: no second for Bob, and Bob's user
        // place is not kept by the refusal.
        assert!(bob.try_part_places().is_none());
        drop(a2);
        let b2 = bob.try_part_places().expect("the place Ann gave back");
        assert!(ann.try_part_places().is_none());
        drop((a1, b1, b2));
        assert!(ann.try_part_places().is_some());
    }
}
