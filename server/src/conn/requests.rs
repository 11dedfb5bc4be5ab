//! A logged-in session's request loop: frames read within the connection's
//! byte budget, data handed to its uploads, requests admitted and run in
//! their turn, and the session closed with a reason for the log.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ferry_proto::{
    ClientMsg, ErrorKind, Frame, FrameError, RemoteError, Request, ServerMsg, CHUNK_SIZE,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::eager::{drop_stalled, holds_data, Deferred};
use super::lane::Lane;
use super::turns::Turns;
use super::turns::{busy, checked, register, run_transfer, Caps, Held, Job, Place, Task, Turn};
use super::{shrink_when_empty, Reader, Writer};
use crate::accounts::{Account, Session};
use crate::budget::{self, Budget, Charge};
use crate::config::Limits;
use crate::objects;
use crate::ops;
use crate::outbox::Outbox;
use crate::server::Shared;
use crate::threads::{Cpu, Threads};
use crate::transfer::download::{self, DownloadSpec};
use crate::transfer::upload::{self, UploadSpec};
use crate::transfer::{Slot, Transfers, UploadMsg};

/// Chunks queued per upload between the socket and the disk.
pub(super) const UPLOAD_WINDOW: usize = 8;

/// What the reader takes from the budget before it reads a frame: room
/// for the largest one.
const FRAME_COST: usize = ferry_proto::MAX_FRAME + budget::OVERHEAD;

/// Data frames smaller than this are copied out of the read buffer.
const COPY_BELOW: usize = 64 * 1024;

/// What a session's requests share and never change: its account, its
/// transfers, the places and turns they take, the threads they run on.
struct Conn<'a> {
    shared: &'a Shared,
    limits: &'a Limits,
    account: Arc<Account>,
    transfers: Transfers,
    /// Requests run `max` at a time; as many again may wait for a turn.
    /// Beyond that a request is refused (TooBusy). The reader itself never
    /// waits for a turn: running uploads need it to keep reading their
    /// data.
    turns: Turns,
    admitted: Arc<Semaphore>,
    /// Eager uploads (small files: data and end follow the open at once)
    /// are counted apart, wait for their end, then run on the lane, so
    /// they never wait for the network on a blocking thread.
    small: Arc<Semaphore>,
    threads: Threads,
    ctx: upload::Ctx,
    caps: Caps,
}

/// The session's uploads as the reader follows them.
struct Streams<'a> {
    /// Eager uploads whose end has not come yet.
    deferred: HashMap<u32, Deferred>,
    /// Uploads that had their `PutStart` and no end yet: only they take
    /// data (eager ones aside). Data for an upload still waiting for its
    /// turn would sit in its channel, and once that is full the reader
    /// would wait for a turn that only data it cannot read could free.
    started: HashSet<u32>,
    /// Set while an upload streams (the connection's reads run niced).
    bulk: &'a AtomicBool,
    lane: Lane,
}

impl Streams<'_> {
    fn start(&mut self, transfer: u32) {
        self.started.insert(transfer);
        self.bulk.store(true, Ordering::Relaxed);
    }

    fn stop(&mut self, transfer: u32) {
        self.started.remove(&transfer);
        self.bulk.store(!self.started.is_empty(), Ordering::Relaxed);
    }
}

/// Serves a logged-in session until it ends; returns why, for the log.
pub(super) async fn requests<R, W>(
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
    let max = limits.max_requests_in_flight;
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
    let conn = Conn {
        shared,
        limits,
        account: session.account.clone(),
        transfers: Transfers::default(),
        turns: Turns::start(max),
        admitted: Arc::new(Semaphore::new(2 * max)),
        small: Arc::new(Semaphore::new(limits.max_small_uploads_in_flight)),
        ctx: upload::Ctx {
            threads: threads.clone(),
            stall: limits.transfer_stall(),
            committer: shared.committer.clone(),
        },
        caps: Caps {
            user: session.account.share.transfers.clone(),
            server: shared.transfers.clone(),
        },
        threads: threads.clone(),
    };
    let mut streams = Streams {
        deferred: HashMap::new(),
        started: HashSet::new(),
        bulk,
        lane: Lane::new(threads),
    };
    // Eager uploads whose end has not come are dropped after the stall
    // limit; looked for this often.
    let mut sweep = tokio::time::interval(limits.transfer_stall() / 2);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Nothing progressing for this long (whatever is in flight) is idle.
    let idle = limits.idle_timeout();
    let idle_deadline = || tokio::time::Instant::from_std(out.activity().last() + idle);
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
                let stall = limits.transfer_stall();
                drop_stalled(&mut streams.deferred, &conn.transfers, stall).await;
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
                match conn.data(&mut streams, &out, transfer, data, room).await {
                    Ok(()) => continue,
                    Err(end) => break end,
                }
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
        match msg {
            ClientMsg::Request { id, req } => {
                conn.request(&mut streams, id, req, out.paid(room)).await
            }
            ClientMsg::PutStart { transfer, offset } => {
                streams.start(transfer);
                feed_upload(&conn.transfers, transfer, UploadMsg::Start(offset)).await;
            }
            ClientMsg::TransferEnd { transfer, sha256 } => {
                streams.stop(transfer);
                feed_upload(&conn.transfers, transfer, UploadMsg::End(sha256)).await;
                if let Some(d) = streams.deferred.remove(&transfer) {
                    let held = Held {
                        slots: conn.transfers.clone(),
                        transfer,
                        _permits: vec![d.permit],
                    };
                    let job = d.job;
                    streams.lane.push(Box::new(move || job(held)));
                }
            }
            ClientMsg::Cancel { transfer } => {
                streams.stop(transfer);
                streams.deferred.remove(&transfer);
                if let Some(Slot::Download(flag)) = conn.transfers.remove(transfer) {
                    flag.store(true, Ordering::Relaxed);
                } // Dropping an upload's sender ends it; the partial stays.
            }
            _ => {
                refuse(&out, "unexpected message after login".into()).await;
                break "unexpected message".to_string();
            }
        }
    };
    // Requests still waiting for a turn are dropped; uploads still waiting
    // for data end now (their partials stay).
    conn.turns.task.abort();
    drop(streams);
    conn.transfers.close_all();
    // Whatever still waits for room gives up; what is queued is sent.
    budget.close();
    drop(out);
    let _ = writer_task.await;
    drop(session);
    end
}

impl Conn<'_> {
    /// A data frame for an upload; an error ends the session with its
    /// reason.
    async fn data(
        &self,
        streams: &mut Streams<'_>,
        out: &Outbox,
        transfer: u32,
        data: Bytes,
        mut room: Charge,
    ) -> Result<(), String> {
        let eager = streams.deferred.contains_key(&transfer);
        // A small frame, and an eager upload's chunk (held until its end
        // comes), get memory of their own: as a slice of the read buffer
        // they would keep all of that alive.
        let data = if data.len() < COPY_BELOW || eager {
            Bytes::copy_from_slice(&data)
        } else {
            data
        };
        room.shrink_to(data.len() + budget::OVERHEAD);
        if eager && (data.len() > CHUNK_SIZE || holds_data(&self.transfers, transfer)) {
            // An eager upload sends one chunk at most: refused rather
            // than buffered here.
            if let Some(d) = streams.deferred.remove(&transfer) {
                // Its place is free before the client hears of it; the
                // reply is paid for by the request.
                let Deferred { id, out, .. } = d;
                self.transfers.remove(transfer);
                let detail = "an eager upload sends its data in one chunk at most";
                let error = RemoteError::new(ErrorKind::BadRequest, detail);
                out.reply(id, Err(error)).await;
            }
            return Ok(());
        }
        if !eager
            && !streams.started.contains(&transfer)
            && matches!(self.transfers.get(transfer), Some(Slot::Upload(_)))
        {
            let detail = format!("data for transfer {transfer} before its PutStart");
            refuse(out, detail.clone()).await;
            return Err(detail);
        }
        feed_upload(&self.transfers, transfer, UploadMsg::Data(data, room)).await;
        Ok(())
    }

    /// A request: admitted (or refused as busy), then run in its turn.
    async fn request(&self, streams: &mut Streams<'_>, id: u32, req: Request, out: Outbox) {
        if let Request::PutOpen { .. } = req {
            return self.put_open(streams, id, req, out).await;
        }
        let Ok(admission) = self.admitted.clone().try_acquire_owned() else {
            let max = 2 * self.limits.max_requests_in_flight;
            return busy(&out, id, format!("more than {max} requests at once")).await;
        };
        let turn = Turn {
            turns: &self.turns,
            admission,
        };
        match req {
            Request::GetOpen {
                transfer,
                path,
                offset,
                prefix_sha256,
                rehash,
            } => {
                let flag = Arc::new(AtomicBool::new(false));
                let slot = Slot::Download(flag.clone());
                let registered = register(&self.transfers, transfer, &path, slot);
                let Some((path, turn)) = checked(&out, id, registered, turn).await else {
                    return;
                };
                let spec = DownloadSpec {
                    id,
                    transfer,
                    path,
                    offset,
                    prefix_sha256,
                    use_stored: !rehash && self.shared.config.transfers.stored_checksums,
                };
                let account = self.account.clone();
                let (threads, stall) = (self.threads.clone(), self.limits.transfer_stall());
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
                run_transfer(&self.transfers, transfer, turn, &self.caps, task);
            }
            req => {
                let limits = self.limits;
                let ctx = ops::Ctx {
                    batch: limits.max_dir_batch,
                    hashes: self.shared.hashes.clone(),
                    max_copy_entries: limits.max_copy_entries,
                    find_max_visited: limits.find_max_visited,
                    find_max_time: std::time::Duration::from_secs(limits.find_max_secs),
                };
                let (account, threads) = (self.account.clone(), self.threads.clone());
                turn.then(move |permits| {
                    tokio::spawn(async move {
                        ops::handle(id, req, account, ctx, out, threads).await;
                        drop(permits);
                    });
                });
            }
        }
    }

    /// An upload's open: an eager one takes a place among the small
    /// uploads and waits for its end; others take an admission and a turn.
    async fn put_open(&self, streams: &mut Streams<'_>, id: u32, req: Request, out: Outbox) {
        let Request::PutOpen {
            transfer,
            path,
            size,
            mtime,
            mode,
            overwrite,
            resume,
            eager,
        } = req
        else {
            return;
        };
        streams.stop(transfer);
        let place = if eager {
            match self.small.clone().try_acquire_owned() {
                Ok(permit) => Place::Small(permit),
                Err(_) => {
                    let n = self.limits.max_small_uploads_in_flight;
                    return busy(&out, id, format!("more than {n} small uploads at once")).await;
                }
            }
        } else {
            match self.admitted.clone().try_acquire_owned() {
                Ok(admission) => Place::Turn(Turn {
                    turns: &self.turns,
                    admission,
                }),
                Err(_) => {
                    let max = 2 * self.limits.max_requests_in_flight;
                    return busy(&out, id, format!("more than {max} requests at once")).await;
                }
            }
        };
        let (tx, rx) = mpsc::channel(UPLOAD_WINDOW);
        let registered = if eager && size > CHUNK_SIZE as u64 {
            let detail = "an eager upload is one chunk at most";
            Err(RemoteError::new(ErrorKind::BadRequest, detail))
        } else {
            register(&self.transfers, transfer, &path, Slot::Upload(tx))
        };
        let Some((path, place)) = checked(&out, id, registered, place).await else {
            return;
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
        let account = self.account.clone();
        let objects = account.home.objects().is_some();
        let ctx = self.ctx.clone();
        match place {
            Place::Small(permit) => {
                let answer = out.clone();
                let job: Job = if objects {
                    let rt = tokio::runtime::Handle::current();
                    Box::new(move |held| {
                        rt.spawn(objects::upload::stream(
                            spec, account, rx, answer, ctx, held,
                        ));
                    })
                } else {
                    let committer = self.shared.committer.clone();
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
                streams.deferred.insert(transfer, d);
            }
            Place::Turn(turn) => {
                let task: Task = if objects {
                    Box::new(move |held| {
                        Box::pin(objects::upload::stream(spec, account, rx, out, ctx, held))
                    })
                } else {
                    Box::new(move |held| {
                        Box::pin(upload::stream(spec, account, rx, out, ctx, held))
                    })
                };
                run_transfer(&self.transfers, transfer, turn, &self.caps, task);
            }
        }
    }
}

/// The encoded length of a control frame's message.
fn frame_len(frame: &Frame) -> usize {
    match frame {
        Frame::Control(body) => body.len(),
        Frame::Data { data, .. } => data.len(),
    }
}

/// Hands a message to an upload. If the upload already ended (it failed and
/// told the client so), the message is dropped.
async fn feed_upload(transfers: &Transfers, transfer: u32, msg: UploadMsg) {
    if let Some(Slot::Upload(tx)) = transfers.get(transfer) {
        let _ = tx.send(msg).await;
    }
}

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

/// Refuses what the client sent as a protocol error, before the session
/// ends.
async fn refuse(out: &Outbox, detail: String) {
    let msg = ServerMsg::Refused {
        error: RemoteError::new(ErrorKind::Protocol, detail),
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), out.send(&msg)).await;
}
