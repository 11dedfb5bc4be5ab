//! Eager uploads (small files whose data and end follow the open at once)
//! while they wait for their end: dropped with a typed error if it does
//! not come in time.

use std::collections::HashMap;
use std::time::Duration;

use ferry_proto::{ErrorKind, RemoteError};
use tokio::sync::OwnedSemaphorePermit;

use super::requests::UPLOAD_WINDOW;
use super::turns::Job;
use crate::outbox::Outbox;
use crate::transfer::{Slot, Transfers};

/// An eager upload waiting for its end: its request id, its place among
/// the connection's small uploads, its work, its outbox (with what it
/// paid when it was read), and since when it waits.
pub(super) struct Deferred {
    pub(super) id: u32,
    pub(super) permit: OwnedSemaphorePermit,
    pub(super) job: Job,
    pub(super) out: Outbox,
    pub(super) since: std::time::Instant,
}

/// Ends the eager uploads whose end has not come within `stall`: their
/// chunk and place are given back, the client is told.
pub(super) async fn drop_stalled(
    deferred: &mut HashMap<u32, Deferred>,
    transfers: &Transfers,
    stall: Duration,
) {
    let stalled: Vec<u32> = deferred
        .iter()
        .filter(|(_, d)| d.since.elapsed() >= stall)
        .map(|(t, _)| *t)
        .collect();
    for t in stalled {
        if let Some(Deferred { id, out, .. }) = deferred.remove(&t) {
            transfers.remove(t);
            let detail = format!("its end did not come within {} s", stall.as_secs());
            out.reply(id, Err(RemoteError::new(ErrorKind::TimedOut, detail)))
                .await;
        }
    }
}

/// Whether an upload's channel already holds a message.
pub(super) fn holds_data(transfers: &Transfers, transfer: u32) -> bool {
    matches!(transfers.get(transfer), Some(Slot::Upload(tx)) if tx.capacity() < UPLOAD_WINDOW)
}
