//! Where a connection's requests wait and run: admitted ones take turns in
//! arrival order, transfers also take a place of their user and of the
//! server, and what a running transfer holds is given back when it ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ferry_proto::{ErrorKind, RemoteError, RemotePath};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::ops;
use crate::outbox::Outbox;
use crate::transfer::{Slot, Transfers};

/// Checks a transfer's path and registers its slot; on failure nothing
/// is registered.
pub(super) fn register(
    transfers: &Transfers,
    transfer: u32,
    path: &str,
    slot: Slot,
) -> Result<RemotePath, RemoteError> {
    ops::path(path).and_then(|p| transfers.insert(transfer, slot).map(|()| p))
}

/// What an admitted request runs once it has its turn; it holds the
/// permits until it ends.
type Work = Box<dyn FnOnce(Permits) + Send>;

/// A running request's permits: its turn and its admission.
type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// Starts admitted requests in the order they came, `max` at a time. A
/// single task hands out the turns, so the order is the arrival order.
pub(super) struct Turns {
    queue: mpsc::UnboundedSender<(Work, OwnedSemaphorePermit)>,
    /// Requests queued or waiting in the dispatcher for a turn.
    waiting: Arc<AtomicUsize>,
    running: Arc<Semaphore>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Turns {
    pub(super) fn start(max: usize) -> Turns {
        // Unbounded, but at most `2 * max` admitted requests exist.
        let (queue, mut rx) = mpsc::unbounded_channel::<(Work, OwnedSemaphorePermit)>();
        let running = Arc::new(Semaphore::new(max));
        let waiting = Arc::new(AtomicUsize::new(0));
        let (r, w) = (running.clone(), waiting.clone());
        let task = tokio::spawn(async move {
            while let Some((work, admission)) = rx.recv().await {
                let Ok(turn) = r.clone().acquire_owned().await else {
                    return;
                };
                w.fetch_sub(1, Ordering::AcqRel);
                work((turn, admission));
            }
        });
        Turns {
            queue,
            waiting,
            running,
            task,
        }
    }
}

/// An admitted request, to be started in its turn.
pub(super) struct Turn<'a> {
    pub(super) turns: &'a Turns,
    pub(super) admission: OwnedSemaphorePermit,
}

impl Turn<'_> {
    /// Runs `work` when this request's turn comes (at once if there is
    /// room). Returns false if it never will (the connection is ending).
    pub(super) fn then(self, work: impl FnOnce(Permits) + Send + 'static) -> bool {
        let turns = self.turns;
        // Nobody ahead and room: start here, without a trip through the
        // dispatcher task (the connection's reader is the only caller, so
        // nothing can be queued between the check and the start).
        if turns.waiting.load(Ordering::Acquire) == 0 {
            if let Ok(turn) = turns.running.clone().try_acquire_owned() {
                work((turn, self.admission));
                return true;
            }
        }
        turns.waiting.fetch_add(1, Ordering::AcqRel);
        turns.queue.send((Box::new(work), self.admission)).is_ok()
    }
}

/// An eager upload's work (one blocking step, on the lane), given what it
/// must hold until it has answered.
pub(super) type Job = Box<dyn FnOnce(Held) + Send>;

/// A transfer's task, given what it must hold until it has answered.
pub(super) type Task = Box<dyn FnOnce(Held) -> BoxFuture<'static, ()> + Send>;

/// Where an upload counts: among the connection's small uploads, or as a
/// request with a turn.
pub(super) enum Place<'a> {
    Small(OwnedSemaphorePermit),
    Turn(Turn<'a>),
}

/// A transfer's registration, with the places it holds. On failure the
/// places are given back first, so the client's next request never finds
/// them taken, and then the client is told.
pub(super) async fn checked<P>(
    out: &Outbox,
    id: u32,
    registered: Result<RemotePath, RemoteError>,
    places: P,
) -> Option<(RemotePath, P)> {
    match registered {
        Ok(path) => Some((path, places)),
        Err(e) => {
            drop(places);
            out.reply(id, Err(e)).await;
            None
        }
    }
}

/// Refuses a request as busy.
pub(super) async fn busy(out: &Outbox, id: u32, what: String) {
    let detail = format!("{what} on this connection");
    out.reply(id, Err(RemoteError::new(ErrorKind::TooBusy, detail)))
        .await;
}

/// What a running transfer holds until it has answered: its slot (so an
/// eager upload's data waits in its channel) and its permits.
pub(super) struct Held {
    pub(super) slots: Transfers,
    pub(super) transfer: u32,
    pub(super) _permits: Vec<OwnedSemaphorePermit>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.slots.remove(self.transfer);
    }
}

/// Runs a transfer's task in its turn, once its user and the server have
/// a place for it too.
pub(super) fn run_transfer(
    transfers: &Transfers,
    transfer: u32,
    turn: Turn<'_>,
    caps: &Caps,
    task: Task,
) {
    let slots = transfers.clone();
    let caps = caps.clone();
    let started = turn.then(move |(turn, admission)| {
        let start = move |places: [OwnedSemaphorePermit; 2]| {
            let [user, server] = places;
            let held = Held {
                slots,
                transfer,
                _permits: vec![turn, admission, user, server],
            };
            tokio::spawn(task(held));
        };
        match caps.try_take() {
            Some(places) => start(places),
            None => {
                tokio::spawn(async move {
                    if let Some(places) = caps.take().await {
                        start(places);
                    }
                });
            }
        }
    });
    if !started {
        transfers.remove(transfer);
    }
}

/// Places for running transfers beyond the connection's turns: per user
/// (over all sessions, well below the server's) and on the whole server.
/// They bound open files, helper threads and the state of transfers.
#[derive(Clone)]
pub(super) struct Caps {
    pub(super) user: Arc<Semaphore>,
    pub(super) server: Arc<Semaphore>,
}

impl Caps {
    /// Both places at once, if both are free now.
    fn try_take(&self) -> Option<[OwnedSemaphorePermit; 2]> {
        let user = self.user.clone().try_acquire_owned().ok()?;
        let server = self.server.clone().try_acquire_owned().ok()?;
        Some([user, server])
    }

    /// Both places, always the user's first (so no two waiters each hold
    /// what the other waits for).
    async fn take(&self) -> Option<[OwnedSemaphorePermit; 2]> {
        let user = self.user.clone().acquire_owned().await.ok()?;
        let server = self.server.clone().acquire_owned().await.ok()?;
        Some([user, server])
    }
}
