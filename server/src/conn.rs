//! One connection: hello, login, then the request loop. Generic over the
//! byte stream, so TLS or an in-memory duplex can carry it unchanged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_proto::hello::HELLO_LEN;
use ferry_proto::scram::ServerBinding;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use ferry_proto::{
    ClientMsg, ErrorKind, Frame, FrameCodec, FrameError, Hello, RemoteError, Request, ServerMsg,
};
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use ferry_proto::RemotePath;
use ferry_proto::CHUNK_SIZE;

use crate::accounts::Session;
use crate::auth::{login, AuthEnd};
use crate::budget::{self, Budget};
use crate::link::{LinkError, Reader, Writer};
use crate::logfmt::q;
use crate::niced::NicedRead;
use crate::objects;
use crate::ops;
use crate::outbox::Outbox;
use crate::places::{Admission, Stage};
use crate::server::Shared;
use crate::threads::{Cpu, Threads};
use crate::transfer::download::{self, DownloadSpec};
use crate::transfer::upload::{self, UploadSpec};
use crate::transfer::{Slot, Transfers, UploadMsg};

/// A read buffer with nothing in it that holds more than this is given
/// back, so an idle session keeps a few KiB: the buffer grows to one frame
/// while one is read (paid for by the room the reader takes first), and
/// never stays large unpaid.
const KEEP_BUFFER: usize = 64 * 1024;

/// Replaces the reader's buffer by a small one when it is empty and large
/// (between frames, so the codec is waiting for a length prefix).
fn shrink_when_empty<R>(reader: &mut Reader<R>) {
    let buf = reader.read_buffer_mut();
    if buf.is_empty() && buf.capacity() > KEEP_BUFFER {
        *buf = bytes::BytesMut::with_capacity(LOGIN_BUFFER);
    }
}

/// The encoded length of a control frame's message.
fn frame_len(frame: &Frame) -> usize {
    match frame {
        Frame::Control(body) => body.len(),
        Frame::Data { data, .. } => data.len(),
    }
}

/// Largest frame read before login: a SCRAM message of the longest kind
/// accepted, its message type and field lengths, with room to spare.
const LOGIN_FRAME: usize = ferry_proto::scram::MAX_MESSAGE_LEN + 1024;

/// Read buffer before login: one login frame and the next one's start.
const LOGIN_BUFFER: usize = 2 * LOGIN_FRAME;

/// Serves one connection to its end. Errors are logged here, never returned.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    binding: ServerBinding,
    mut admission: Admission,
    cancel: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, mut wr) = tokio::io::split(stream);
    // Set while the connection streams an upload: its reads (the TLS
    // decryption of the data) then run niced, as bulk work does.
    let bulk = Arc::new(AtomicBool::new(false));
    let mut rd = NicedRead::new(rd, bulk.clone(), shared.config.limits.bulk_nice);
    // One deadline from accept: TLS, hello and login together.
    let deadline = admission.deadline();
    let admission = &mut admission;
    let start = async {
        exchange_hello(&mut rd, &mut wr, peer).await?;
        admission.progress(Stage::Greeted);
        // Before login, a small buffer and small frames: no login message
        // needs more, and a stranger's longer length prefix closes the
        // connection before anything is reserved for it.
        let codec = FrameCodec::with_max(LOGIN_FRAME);
        let mut reader = FramedRead::with_capacity(rd, codec, LOGIN_BUFFER);
        let mut writer = FramedWrite::new(wr, FrameCodec::new());
        match login(&mut reader, &mut writer, peer, &shared, binding, admission).await {
            Ok(session) => {
                reader.decoder_mut().set_max(ferry_proto::MAX_FRAME);
                Ok((session, reader, writer))
            }
            Err(AuthEnd::Refused(e)) => Err(LinkError::Protocol(format!("login refused: {e}"))),
            Err(AuthEnd::Link(e)) => Err(e),
        }
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout_at(deadline, start) => r.unwrap_or(Err(LinkError::Timeout)),
        _ = cancel.cancelled() => return,
    };
    match outcome {
        Ok((session, reader, writer)) => {
            let user = session.account.name.clone();
            let end = requests(session, reader, writer, &shared, &cancel, &bulk).await;
            tracing::info!(user = %user, addr = %peer, end = %q(&end), "session closed");
        }
        Err(LinkError::Timeout) => {
            tracing::info!(addr = %peer, "handshake timed out; connection dropped")
        }
        Err(e) => tracing::info!(addr = %peer, error = %q(&e), "connection ended before login"),
    }
}

async fn exchange_hello<R, W>(rd: &mut R, wr: &mut W, peer: SocketAddr) -> Result<(), LinkError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut theirs = [0u8; HELLO_LEN];
    rd.read_exact(&mut theirs)
        .await
        .map_err(|_| LinkError::Closed)?;
    // Always answer with our hello, so the client can say what we speak.
    let ours = Hello::ours().encode();
    let _ = wr.write_all(&ours).await;
    let _ = wr.flush().await;
    Hello::check(&theirs, "client").map_err(|e| {
        tracing::info!(addr = %peer, error = %q(&e), "bad hello");
        LinkError::Protocol(e.to_string())
    })?;
    Ok(())
}

async fn requests<R, W>(
    session: Session,
    mut reader: Reader<R>,
    writer: Writer<W>,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
    bulk: &AtomicBool,
) -> String
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.config.limits;
    // What this connection may make ferryd hold, inside its user's share
    // and the server's.
    let budget = Budget::new(
        limits.connection_budget(),
        session.account.share.bytes.clone(),
    )
    .within(shared.held.clone());
    let (out, writer_task) = Outbox::start(writer, budget.clone());
    let transfers = Transfers::default();
    // Requests run `max` at a time; as many again may wait for a turn.
    // Beyond that a request is refused (TooBusy). The reader itself never
    // waits for a turn: running uploads need it to keep reading their data.
    let max = limits.max_requests_in_flight;
    let turns = Turns::start(max);
    let admitted = Arc::new(Semaphore::new(2 * max));
    // Eager uploads (small files: data and end follow the open at once)
    // are counted apart, wait for their end, then run on the lane, so
    // they never wait for the network on a blocking thread.
    let small = Arc::new(Semaphore::new(limits.max_small_uploads_in_flight));
    // File work runs in steps on the user's share of threads.
    let threads = Threads::new(
        session.account.share.threads.clone(),
        shared.threads.clone(),
        Cpu::new(
            session.account.share.cpu_threads.clone(),
            shared.cpu_threads.clone(),
        ),
    )
    .with_bulk(shared.bulk.clone());
    let ctx = upload::Ctx {
        threads: threads.clone(),
        stall: limits.transfer_stall(),
        committer: shared.committer.clone(),
    };
    let lane = Lane::new(threads.clone());
    // Eager uploads whose end has not come are dropped after the stall
    // limit; looked for this often.
    let mut sweep = tokio::time::interval(limits.transfer_stall() / 2);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Nothing progressing for this long (whatever is in flight) is idle.
    let idle = limits.idle_timeout();
    let idle_deadline = || tokio::time::Instant::from_std(out.activity().last() + idle);
    let mut deferred: HashMap<u32, Deferred> = HashMap::new();
    // Uploads that had their `PutStart` and no end yet: only they take data
    // (eager ones aside). Data for an upload still waiting for its turn
    // would sit in its channel, and once that is full the reader would wait
    // for a turn that only data it cannot read could free.
    let mut started: HashSet<u32> = HashSet::new();
    let caps = Caps {
        user: session.account.share.transfers.clone(),
        server: shared.transfers.clone(),
    };
    let end = loop {
        // Room for a whole frame before reading one: at the budget (data
        // not yet written, replies not yet read) the connection is not
        // read, and TCP holds the client back.
        let room = tokio::select! {
            _ = cancel.cancelled() => break "server shutting down".to_string(),
            why = session.revoke.revoked() => break revoked(&out, why).await,
            room = tokio::time::timeout_at(idle_deadline(), budget.charge(FRAME_COST)) => room,
        };
        let mut room = match room {
            Ok(Some(room)) => room,
            Ok(None) => break "connection ended".to_string(),
            // Something progressed meanwhile: wait on.
            Err(_) if idle_deadline() > tokio::time::Instant::now() => continue,
            Err(_) => break idle_close(&out, idle, " (at its byte budget)").await,
        };
        let next = tokio::select! {
            _ = cancel.cancelled() => break "server shutting down".to_string(),
            why = session.revoke.revoked() => break revoked(&out, why).await,
            next = tokio::time::timeout_at(idle_deadline(), crate::link::next_frame(&mut reader)) => next,
            _ = sweep.tick() => {
                drop_stalled(&mut deferred, &transfers, limits.transfer_stall()).await;
                continue;
            }
        };
        let frame = match next {
            Err(_) if idle_deadline() > tokio::time::Instant::now() => continue,
            Err(_) => break idle_close(&out, idle, "").await,
            Ok(None) => break "client closed".to_string(),
            Ok(Some(Err(FrameError::Io(e)))) => break format!("connection cut: {e}"),
            Ok(Some(Err(e))) => {
                refuse(&out, e.to_string()).await;
                break format!("bad frame: {e}");
            }
            Ok(Some(Ok(frame))) => {
                out.progressed();
                shrink_when_empty(&mut reader);
                frame
            }
        };
        let mut size = 0;
        let msg = match frame {
            Frame::Data { transfer, data } => {
                // A small frame, and an eager upload's chunk (held until
                // its end comes), get memory of their own: as a slice of
                // the read buffer they would keep all of that alive.
                let data = if data.len() < COPY_BELOW || deferred.contains_key(&transfer) {
                    Bytes::copy_from_slice(&data)
                } else {
                    data
                };
                room.shrink_to(data.len() + budget::OVERHEAD);
                let eager = deferred.contains_key(&transfer);
                if eager && (data.len() > CHUNK_SIZE || holds_data(&transfers, transfer)) {
                    // An eager upload sends one chunk at most: refused
                    // rather than buffered here.
                    if let Some(d) = deferred.remove(&transfer) {
                        // Its place is free before the client hears of it;
                        // the reply is paid for by the request.
                        let Deferred { id, out, .. } = d;
                        transfers.remove(transfer);
                        let detail = "an eager upload sends its data in one chunk at most";
                        let error = RemoteError::new(ErrorKind::BadRequest, detail);
                        out.reply(id, Err(error)).await;
                    }
                    continue;
                }
                if !eager
                    && !started.contains(&transfer)
                    && matches!(transfers.get(transfer), Some(Slot::Upload(_)))
                {
                    let detail = format!("data for transfer {transfer} before its PutStart");
                    refuse(&out, detail.clone()).await;
                    break detail;
                }
                feed_upload(&transfers, transfer, UploadMsg::Data(data, room)).await;
                continue;
            }
            frame => match frame.decode_control::<ClientMsg>() {
                // What it decodes to is no bigger than its encoding.
                Ok(m) if matches!(m, ClientMsg::Request { .. }) => {
                    size = frame_len(&frame);
                    m
                }
                Ok(m) => m,
                Err(e) => {
                    refuse(&out, e.to_string()).await;
                    break format!("bad message: {e}");
                }
            },
        };
        // A request keeps what it costs until its reply is queued, and
        // pays for that reply with it; other messages cost nothing more.
        // A request whose message is larger (long paths) pays for all of it.
        room.shrink_to(budget::REQUEST.max(size + budget::OVERHEAD));
        let (id, req) = match msg {
            ClientMsg::Request { id, req } => (id, req),
            ClientMsg::PutStart { transfer, offset } => {
                started.insert(transfer);
                bulk.store(true, Ordering::Relaxed);
                feed_upload(&transfers, transfer, UploadMsg::Start(offset)).await;
                continue;
            }
            ClientMsg::TransferEnd { transfer, sha256 } => {
                started.remove(&transfer);
                bulk.store(!started.is_empty(), Ordering::Relaxed);
                feed_upload(&transfers, transfer, UploadMsg::End(sha256)).await;
                if let Some(d) = deferred.remove(&transfer) {
                    let held = Held {
                        slots: transfers.clone(),
                        transfer,
                        _permits: vec![d.permit],
                    };
                    let job = d.job;
                    lane.push(Box::new(move || job(held)));
                }
                continue;
            }
            ClientMsg::Cancel { transfer } => {
                started.remove(&transfer);
                bulk.store(!started.is_empty(), Ordering::Relaxed);
                deferred.remove(&transfer);
                if let Some(Slot::Download(flag)) = transfers.remove(transfer) {
                    flag.store(true, Ordering::Relaxed);
                } // Dropping an upload's sender ends it; the partial stays.
                continue;
            }
            _ => {
                refuse(&out, "unexpected message after login".into()).await;
                break "unexpected message".to_string();
            }
        };
        let out = out.paid(room);
        if let Request::PutOpen {
            transfer,
            path,
            size,
            mtime,
            mode,
            overwrite,
            resume,
            eager,
        } = req
        {
            started.remove(&transfer);
            bulk.store(!started.is_empty(), Ordering::Relaxed);
            // Eager uploads take a place among the small ones, others an
            // admission and a turn.
            let place = if eager {
                match small.clone().try_acquire_owned() {
                    Ok(permit) => Place::Small(permit),
                    Err(_) => {
                        let n = limits.max_small_uploads_in_flight;
                        busy(&out, id, format!("more than {n} small uploads at once")).await;
                        continue;
                    }
                }
            } else {
                match admitted.clone().try_acquire_owned() {
                    Ok(admission) => Place::Turn(Turn {
                        turns: &turns,
                        admission,
                    }),
                    Err(_) => {
                        busy(&out, id, format!("more than {} requests at once", 2 * max)).await;
                        continue;
                    }
                }
            };
            let (tx, rx) = mpsc::channel(UPLOAD_WINDOW);
            let registered = if eager && size > CHUNK_SIZE as u64 {
                let detail = "an eager upload is one chunk at most";
                Err(RemoteError::new(ErrorKind::BadRequest, detail))
            } else {
                register(&transfers, transfer, &path, Slot::Upload(tx))
            };
            let Some((path, place)) = checked(&out, id, registered, place).await else {
                continue;
            };
            let spec = UploadSpec {
                id,
                path,
                size,
                mtime,
                mode,
                overwrite,
                resume,
                eager,
            };
            let account = session.account.clone();
            let answer = out.clone();
            match place {
                Place::Small(permit) => {
                    let job: Job = if account.home.objects().is_some() {
                        let (ctx, rt) = (ctx.clone(), tokio::runtime::Handle::current());
                        Box::new(move |held| {
                            rt.spawn(objects::upload::stream(
                                spec, account, rx, answer, ctx, held,
                            ));
                        })
                    } else {
                        let committer = shared.committer.clone();
                        Box::new(move |held| {
                            upload::run_eager(spec, account, rx, answer, &committer, held)
                        })
                    };
                    let d = Deferred {
                        id,
                        permit,
                        job,
                        out,
                        since: std::time::Instant::now(),
                    };
                    deferred.insert(transfer, d);
                }
                Place::Turn(turn) => {
                    let ctx = ctx.clone();
                    let task: Task = if account.home.objects().is_some() {
                        Box::new(move |held| {
                            Box::pin(objects::upload::stream(
                                spec, account, rx, answer, ctx, held,
                            ))
                        })
                    } else {
                        Box::new(move |held| {
                            Box::pin(upload::stream(spec, account, rx, answer, ctx, held))
                        })
                    };
                    run_transfer(&transfers, transfer, turn, &caps, task);
                }
            }
            continue;
        }
        let Ok(admission) = admitted.clone().try_acquire_owned() else {
            busy(&out, id, format!("more than {} requests at once", 2 * max)).await;
            continue;
        };
        let turn = Turn {
            turns: &turns,
            admission,
        };
        let account = session.account.clone();
        match req {
            Request::GetOpen {
                transfer,
                path,
                offset,
                prefix_sha256,
                rehash,
            } => {
                let flag = Arc::new(AtomicBool::new(false));
                let registered =
                    register(&transfers, transfer, &path, Slot::Download(flag.clone()));
                let Some((path, turn)) = checked(&out, id, registered, turn).await else {
                    continue;
                };
                let spec = DownloadSpec {
                    id,
                    transfer,
                    path,
                    offset,
                    prefix_sha256,
                    use_stored: !rehash && shared.config.transfers.stored_checksums,
                };
                let (threads, stall) = (threads.clone(), limits.transfer_stall());
                let task: Task = if account.home.objects().is_some() {
                    Box::new(move |held| {
                        Box::pin(objects::download::stream(
                            spec, account, out, flag, stall, held,
                        ))
                    })
                } else {
                    Box::new(move |held| {
                        Box::pin(download::stream(
                            spec, account, out, flag, threads, stall, held,
                        ))
                    })
                };
                run_transfer(&transfers, transfer, turn, &caps, task);
            }
            req => {
                let ctx = ops::Ctx {
                    batch: limits.max_dir_batch,
                    hashes: shared.hashes.clone(),
                    max_copy_entries: limits.max_copy_entries,
                    find_max_visited: limits.find_max_visited,
                    find_max_time: std::time::Duration::from_secs(limits.find_max_secs),
                };
                let threads = threads.clone();
                turn.then(move |permits| {
                    tokio::spawn(async move {
                        ops::handle(id, req, account, ctx, out, threads).await;
                        drop(permits);
                    });
                });
            }
        }
    };
    // Requests still waiting for a turn are dropped; uploads still waiting
    // for data end now (their partials stay).
    turns.task.abort();
    drop(deferred);
    transfers.close_all();
    // Whatever still waits for room gives up; what is queued is sent.
    budget.close();
    drop(out);
    let _ = writer_task.await;
    drop(session);
    end
}

/// Checks a transfer's path and registers its slot; on failure nothing
/// is registered.
fn register(
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
struct Turns {
    queue: mpsc::UnboundedSender<(Work, OwnedSemaphorePermit)>,
    /// Requests queued or waiting in the dispatcher for a turn.
    waiting: Arc<AtomicUsize>,
    running: Arc<Semaphore>,
    task: tokio::task::JoinHandle<()>,
}

impl Turns {
    fn start(max: usize) -> Turns {
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
struct Turn<'a> {
    turns: &'a Turns,
    admission: OwnedSemaphorePermit,
}

impl Turn<'_> {
    /// Runs `work` when this request's turn comes (at once if there is
    /// room). Returns false if it never will (the connection is ending).
    fn then(self, work: impl FnOnce(Permits) + Send + 'static) -> bool {
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
type Job = Box<dyn FnOnce(Held) + Send>;

/// A transfer's task, given what it must hold until it has answered.
type Task = Box<dyn FnOnce(Held) -> BoxFuture<'static, ()> + Send>;

/// Where an upload counts: among the connection's small uploads, or as a
/// request with a turn.
enum Place<'a> {
    Small(OwnedSemaphorePermit),
    Turn(Turn<'a>),
}

/// A transfer's registration, with the places it holds. On failure the
/// places are given back first, so the client's next request never finds
/// them taken, and then the client is told.
async fn checked<P>(
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
async fn busy(out: &Outbox, id: u32, what: String) {
    let detail = format!("{what} on this connection");
    out.reply(id, Err(RemoteError::new(ErrorKind::TooBusy, detail)))
        .await;
}

/// An eager upload waiting for its end: its request id, its place among
/// the connection's small uploads, its work, its outbox (with what it
/// paid when it was read), and since when it waits.
struct Deferred {
    id: u32,
    permit: OwnedSemaphorePermit,
    job: Job,
    out: Outbox,
    since: std::time::Instant,
}

/// Ends the eager uploads whose end has not come within `stall`: their
/// chunk and place are given back, the client is told.
async fn drop_stalled(
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

/// What a running transfer holds until it has answered: its slot (so an
/// eager upload's data waits in its channel) and its permits.
struct Held {
    slots: Transfers,
    transfer: u32,
    _permits: Vec<OwnedSemaphorePermit>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.slots.remove(self.transfer);
    }
}

/// Runs a transfer's task in its turn, once its user and the server have
/// a place for it too.
fn run_transfer(transfers: &Transfers, transfer: u32, turn: Turn<'_>, caps: &Caps, task: Task) {
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
struct Caps {
    user: Arc<Semaphore>,
    server: Arc<Semaphore>,
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

/// Whether an upload's channel already holds a message.
fn holds_data(transfers: &Transfers, transfer: u32) -> bool {
    matches!(transfers.get(transfer), Some(Slot::Upload(tx)) if tx.capacity() < UPLOAD_WINDOW)
}

/// Blocking threads a connection's lane uses at most.
const LANE_THREADS: usize = 2;

/// Short blocking jobs of one connection (eager uploads, whose data has
/// all arrived), run back to back on at most [`LANE_THREADS`] threads of
/// the user's share. A tree of small files used to cost a thread wake-up
/// and a sleep per file; on the lane a burst of files costs one. A thread
/// runs [`LANE_BURST`] jobs at most before it lets others have a turn.
#[derive(Clone)]
struct Lane {
    state: Arc<Mutex<LaneState>>,
    threads: Threads,
}

#[derive(Default)]
struct LaneState {
    jobs: VecDeque<Box<dyn FnOnce() + Send>>,
    threads: usize,
}

/// Jobs a lane thread runs before it waits for a turn again.
const LANE_BURST: usize = 64;

impl Lane {
    fn new(threads: Threads) -> Lane {
        Lane {
            state: Arc::default(),
            threads,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a job, and starts a thread for the lane if it has room.
    fn push(&self, job: Box<dyn FnOnce() + Send>) {
        let mut state = self.state();
        state.jobs.push_back(job);
        if state.threads < LANE_THREADS {
            state.threads += 1;
            self.start();
        }
    }

    /// Waits for a thread of the user's share, then drains on it.
    fn start(&self) {
        let lane = self.clone();
        tokio::spawn(async move {
            match lane.threads.permits().await {
                Some(permits) => {
                    tokio::task::spawn_blocking(move || {
                        lane.drain();
                        drop(permits);
                    });
                }
                None => lane.state().threads -= 1,
            }
        });
    }

    /// Runs queued jobs until none is left or the burst is over.
    fn drain(&self) {
        for _ in 0..LANE_BURST {
            let job = {
                let mut state = self.state();
                match state.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        state.threads -= 1;
                        return;
                    }
                }
            };
            // A job that panics (a bug) must not leave the lane stuck.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        }
        // More to do: in a new turn, behind whoever waits.
        self.start();
    }
}

/// Chunks queued per upload between the socket and the disk.
const UPLOAD_WINDOW: usize = 8;

/// What the reader takes from the budget before it reads a frame: room
/// for the largest one.
const FRAME_COST: usize = ferry_proto::MAX_FRAME + budget::OVERHEAD;

/// Data frames smaller than this are copied out of the read buffer.
const COPY_BELOW: usize = 64 * 1024;

/// Hands a message to an upload. If the upload already ended (it failed and
/// told the client so), the message is dropped.
async fn feed_upload(transfers: &Transfers, transfer: u32, msg: UploadMsg) {
    if let Some(Slot::Upload(tx)) = transfers.get(transfer) {
        let _ = tx.send(msg).await;
    }
}

/// Tells the client why the connection is being closed (unless it has
/// not read what it was sent for a while).
/// Tells the client why its session ends (see [`crate::revoke`]); the
/// reason for the log.
async fn revoked(out: &Outbox, why: &str) -> String {
    let msg = ServerMsg::Refused {
        error: RemoteError::new(
            ErrorKind::PermissionDenied,
            format!("session closed: {why}"),
        ),
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), out.send(&msg)).await;
    format!("closed: {why}")
}

/// Tells an idle session why it is closed (a typed `TimedOut`, so the
/// client can say so rather than "the server closed the connection");
/// returns the reason for the log.
async fn idle_close(out: &Outbox, idle: std::time::Duration, note: &str) -> String {
    let msg = ServerMsg::Refused {
        error: RemoteError::new(
            ErrorKind::TimedOut,
            format!(
                "session closed by the server: idle for {} s",
                idle.as_secs()
            ),
        ),
    };
    // A client that reads nothing (at its budget) is not waited for long.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), out.send(&msg)).await;
    format!("idle timeout{note}")
}

async fn refuse(out: &Outbox, detail: String) {
    let msg = ServerMsg::Refused {
        error: RemoteError::new(ErrorKind::Protocol, detail),
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), out.send(&msg)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Every job runs, never more than the lane's threads at once, and a
    /// job that panics does not stop the ones behind it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lane_runs_every_job_on_at_most_its_threads() {
        let share = || Arc::new(Semaphore::new(8));
        let lane = Lane::new(Threads::new(share(), share(), Cpu::new(share(), share())));
        let (running, most, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..200 {
            let (running, most, done, tx) =
                (running.clone(), most.clone(), done.clone(), tx.clone());
            lane.push(Box::new(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_micros(200));
                running.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(());
                if i == 7 {
                    panic!("a job that fails");
                }
            }));
        }
        for _ in 0..200 {
            rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 200);
        assert!(most.load(Ordering::SeqCst) <= LANE_THREADS);
        // The threads left; the next job starts one again.
        let (tx, rx) = std::sync::mpsc::channel();
        lane.push(Box::new(move || {
            let _ = tx.send(());
        }));
        rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    }
}
