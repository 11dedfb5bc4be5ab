//! What a connection sends: two queues into one writer task. Control
//! replies jump ahead of bulk traffic (file data and the replies that must
//! stay in order with it), so browsing stays fast while data streams.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_proto::{Frame, FrameCodec, RemoteError, Reply, ServerMsg};
use futures::SinkExt;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::codec::FramedWrite;

use crate::budget::{Budget, Charge, OVERHEAD};
use crate::link::Writer;

/// A frame on its way out, with the bytes it is charged and whatever its
/// request still holds (its places): those are given back just before the
/// frame is written, so a client that hears of the end of a request never
/// finds it still counted, and a request that cannot answer yet keeps its
/// places.
struct Queued {
    frame: Frame,
    /// What the frame costs the budget (a [`Charge`], or one shared with
    /// whoever else still holds the bytes).
    charge: Box<dyn Any + Send>,
    held: Option<Box<dyn Any + Send>>,
}

/// The sending side of a connection, cheap to clone. Both queues are
/// bounded in bytes by the connection's budget: a sender waits (in an
/// async task, never on a thread) until the client has read enough.
#[derive(Clone, Debug)]
pub struct Outbox {
    control: mpsc::UnboundedSender<Queued>,
    bulk: mpsc::UnboundedSender<Queued>,
    budget: Budget,
    /// What a request paid when it was read: its first reply that fits
    /// is queued without waiting for more budget (see [`Outbox::paid`]).
    paid: Option<Arc<Mutex<Charge>>>,
    /// The runtime the writer task runs on, for [`Outbox::reply_later`].
    rt: tokio::runtime::Handle,
    /// When the connection last made progress.
    activity: Activity,
}

/// When a connection last made progress: a frame read or written, a step
/// of file work done. A session where nothing progresses is idle, whatever
/// it has in flight. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Activity {
    base: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            base: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Notes progress now.
    pub fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the last progress was.
    pub fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued").finish_non_exhaustive()
    }
}

fn response(id: u32, reply: Result<Reply, RemoteError>) -> Option<Frame> {
    Frame::control(&ServerMsg::Response { id, reply })
        .map_err(|e| tracing::error!(error = %e, "cannot encode a response"))
        .ok()
}

/// What a queued frame costs the budget.
pub fn cost(frame: &Frame) -> usize {
    OVERHEAD
        + match frame {
            Frame::Control(b) => b.len(),
            Frame::Data { data, .. } => data.len(),
        }
}

impl Outbox {
    /// Creates the queues and starts the writer task.
    pub fn start<W: AsyncWrite + Unpin + Send + 'static>(
        writer: Writer<W>,
        budget: Budget,
    ) -> (Outbox, tokio::task::JoinHandle<()>) {
        let (control, control_rx) = mpsc::unbounded_channel();
        let (bulk, bulk_rx) = mpsc::unbounded_channel();
        let activity = Activity::new();
        let task = tokio::spawn(write_loop(writer, control_rx, bulk_rx, activity.clone()));
        let rt = tokio::runtime::Handle::current();
        let out = Outbox {
            control,
            bulk,
            budget,
            paid: None,
            rt,
            activity,
        };
        (out, task)
    }

    /// The connection's budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// When the connection last made progress.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Notes that the connection made progress (a step of file work).
    pub fn progressed(&self) {
        self.activity.touch();
    }

    /// This outbox for one request that paid `charge` when it was read:
    /// its replies use that first, so a request never waits for budget to
    /// answer that others in the same wait hold.
    pub fn paid(&self, charge: Charge) -> Outbox {
        Outbox {
            paid: Some(Arc::new(Mutex::new(charge))),
            ..self.clone()
        }
    }

    /// The charge for `frame`: from what the request paid if that covers
    /// it, else taken from the budget (waiting).
    async fn charge_for(&self, frame: &Frame) -> Option<Charge> {
        let need = cost(frame);
        if let Some(paid) = &self.paid {
            let mut paid = paid.lock().unwrap_or_else(|p| p.into_inner());
            if paid.bytes() >= need {
                return Some(paid.split(need));
            }
        }
        self.budget.charge(need).await
    }

    /// Encodes a response and queues it (`bulk`: in order with data
    /// frames); false when it cannot be encoded or the connection is gone.
    async fn respond(
        &self,
        bulk: bool,
        id: u32,
        reply: Result<Reply, RemoteError>,
        held: Option<Box<dyn Any + Send>>,
    ) -> bool {
        match response(id, reply) {
            Some(f) => self.queue(bulk, f, held).await,
            None => false,
        }
    }

    async fn queue(&self, bulk: bool, frame: Frame, held: Option<Box<dyn Any + Send>>) -> bool {
        let Some(charge) = self.charge_for(&frame).await else {
            return false;
        };
        let q = if bulk { &self.bulk } else { &self.control };
        q.send(Queued {
            frame,
            charge: Box::new(charge),
            held,
        })
        .is_ok()
    }

    /// Sends a control message; false when the connection is gone.
    pub async fn send(&self, msg: &ServerMsg) -> bool {
        match Frame::control(msg) {
            Ok(f) => self.queue(false, f, None).await,
            Err(_) => false,
        }
    }

    /// Sends a response on the control queue.
    pub async fn reply(&self, id: u32, reply: Result<Reply, RemoteError>) -> bool {
        self.respond(false, id, reply, None).await
    }

    /// [`Outbox::reply`], giving `held` back just before the reply is
    /// written (places the request holds until the client can hear of it).
    pub async fn reply_holding(
        &self,
        id: u32,
        reply: Result<Reply, RemoteError>,
        held: impl Send + 'static,
    ) -> bool {
        self.respond(false, id, reply, Some(Box::new(held))).await
    }

    /// [`Outbox::reply_holding`] from any thread, never waiting there: a
    /// task queues the reply. For threads that serve every connection (the
    /// commit thread). Bounded: `held` keeps the request's places until the
    /// reply is queued, so a client that does not read cannot start more.
    pub fn reply_later(
        &self,
        id: u32,
        reply: Result<Reply, RemoteError>,
        held: impl Send + 'static,
    ) {
        let out = self.clone();
        self.rt.spawn(async move {
            out.reply_holding(id, reply, held).await;
        });
    }

    /// A response that must stay in order with data frames.
    pub async fn bulk_reply(&self, id: u32, reply: Result<Reply, RemoteError>) -> bool {
        self.respond(true, id, reply, None).await
    }

    /// [`Outbox::bulk_reply`], giving `held` back just before the reply is
    /// written.
    pub async fn bulk_reply_holding(
        &self,
        id: u32,
        reply: Result<Reply, RemoteError>,
        held: impl Send + 'static,
    ) -> bool {
        self.respond(true, id, reply, Some(Box::new(held))).await
    }

    /// A data frame, already charged by the sender: `charge` is given
    /// back once the frame is written (and dropped by whoever else holds
    /// it, when it is shared).
    pub fn data(&self, frame: Frame, charge: impl Any + Send) -> bool {
        self.bulk
            .send(Queued {
                frame,
                charge: Box::new(charge),
                held: None,
            })
            .is_ok()
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: Writer<W>,
    mut control: mpsc::UnboundedReceiver<Queued>,
    mut bulk: mpsc::UnboundedReceiver<Queued>,
    activity: Activity,
) {
    let (mut control_open, mut bulk_open) = (true, true);
    while control_open || bulk_open {
        if control.is_empty()
            && bulk.is_empty()
            && writer.write_buffer().is_empty()
            && writer.write_buffer().capacity() > 0
        {
            // All sent and nothing queued: an idle connection keeps no
            // write buffer (the codec's first 8 KiB, or the largest batch).
            *writer.write_buffer_mut() = bytes::BytesMut::new();
        }
        let frame = tokio::select! {
            biased;
            f = control.recv(), if control_open => match f {
                Some(f) => f,
                None => { control_open = false; continue; }
            },
            f = bulk.recv(), if bulk_open => match f {
                Some(f) => f,
                None => { bulk_open = false; continue; }
            },
        };
        if write_queued(&mut writer, frame).await.is_err() {
            return;
        }
        // Batch what is already queued, control first, into one flush.
        let mut batched = 0;
        while batched < ferry_proto::WRITE_BATCH {
            let next = match control.try_recv() {
                Ok(f) => f,
                Err(_) => match bulk.try_recv() {
                    Ok(f) => f,
                    Err(_) => break,
                },
            };
            if write_queued(&mut writer, next).await.is_err() {
                return;
            }
            batched += 1;
        }
        if writer.flush().await.is_err() {
            return;
        }
        activity.touch();
    }
    let _ = writer.close().await;
}

/// Writes one queued frame: its request's places go first, its bytes
/// are given back to the budget once written.
async fn write_queued<W: AsyncWrite + Unpin>(
    w: &mut FramedWrite<W, FrameCodec>,
    q: Queued,
) -> Result<(), ferry_proto::FrameError> {
    let Queued {
        frame,
        charge,
        held,
    } = q;
    drop(held);
    let r = put_frame(w, frame).await;
    drop(charge);
    r
}

/// Sends one frame. Large file data goes straight to the stream (after
/// whatever the codec has buffered, to keep order) instead of being copied
/// through the codec's buffer first: one copy of every byte fewer.
async fn put_frame<W: AsyncWrite + Unpin>(
    w: &mut FramedWrite<W, FrameCodec>,
    frame: Frame,
) -> Result<(), ferry_proto::FrameError> {
    match frame {
        Frame::Data { transfer, data } if data.len() >= DIRECT_WRITE => {
            w.flush().await?;
            let header = FrameCodec::data_header(transfer, data.len())?;
            let mut buf = bytes::Buf::chain(&header[..], data);
            tokio::io::AsyncWriteExt::write_all_buf(w.get_mut(), &mut buf).await?;
            Ok(())
        }
        frame => w.feed(frame).await,
    }
}

/// Data frames at least this large bypass the codec's buffer.
const DIRECT_WRITE: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::ServerMsg;
    use futures::StreamExt;
    use tokio_util::codec::FramedRead;

    /// A client that does not read: replies queue up to the budget and
    /// no further; the rest wait in their tasks with their places taken,
    /// so the client can start nothing more. Once it reads, every reply
    /// arrives and every place comes back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unread_replies_stop_at_the_budget_and_keep_their_places() {
        let (ours, theirs) = tokio::io::duplex(64);
        let budget = Budget::new(8 * 1024, Budget::user(1 << 20));
        let writer = FramedWrite::new(ours, FrameCodec::new());
        let (out, _task) = Outbox::start(writer, budget.clone());
        let replies = 500u32;
        let places = Arc::new(tokio::sync::Semaphore::new(replies as usize));
        for id in 0..replies {
            let place = places.clone().try_acquire_owned().unwrap();
            out.reply_later(id, Ok(Reply::Done), place);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(budget.available() < 2 * OVERHEAD, "{}", budget.available());
        assert!(places.available_permits() < 50);
        let mut reader = FramedRead::new(theirs, FrameCodec::new());
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < replies as usize {
            let frame = reader.next().await.unwrap().unwrap();
            match frame.decode_control::<ServerMsg>().unwrap() {
                ServerMsg::Response { id, reply: Ok(_) } => seen.insert(id),
                other => panic!("{other:?}"),
            };
        }
        assert_eq!(places.available_permits(), replies as usize);
    }
}
