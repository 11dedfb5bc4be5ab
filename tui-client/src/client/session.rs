//! A logged-in session: a cheap, cloneable handle that many tasks can use
//! at once. Requests are pipelined: each gets an id, a writer task sends
//! frames, and a reader task routes responses back by id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_proto::msg::{Entry, RemoveMode};
use ferry_proto::{
    ClientMsg, ErrorKind, Frame, FrameCodec, RemoteError, RemotePath, Reply, Request, ServerMsg,
};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::busy::BusyRetry;
use super::error::{ClientError, Result};

mod tools;
pub use tools::FindQuery;

/// What arrives for a request or a download: replies and, for downloads,
/// data, in the order the server sent them.
#[derive(Debug)]
pub(crate) enum Event {
    /// A response to the request.
    Reply(Result<Reply, RemoteError>),
    /// File bytes of a download.
    Data(Bytes),
}

/// Where a request's responses go; its permit is given back with it.
struct Route {
    tx: mpsc::Sender<Event>,
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Routes {
    /// By request id.
    requests: HashMap<u32, Route>,
    /// By transfer id (downloads).
    transfers: HashMap<u32, mpsc::Sender<Event>>,
}

/// Which outgoing queue a request takes. Control frames overtake bulk
/// ones, so a request that must stay in order with data frames it is
/// followed by (an eager upload) goes on the bulk queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Queue {
    /// Ahead of file data.
    Control,
    /// In order with file data.
    Bulk,
}

/// Events buffered per request or download before the reader waits.
const ROUTE_WINDOW: usize = 16;

/// What the login established, for [`Client::start`].
pub(super) struct Established {
    /// The server's self-description from the welcome.
    pub server: String,
    /// The negotiated protocol version.
    pub protocol: u16,
    /// The logged-in user.
    pub user: String,
    /// The server's certificate and why it is trusted.
    pub identity: super::tls::ServerIdentity,
    /// What the server takes at once.
    pub limits: Limits,
    /// What to do when a request is refused as busy.
    pub busy: BusyRetry,
}

/// What the server said at login it takes at once on this connection.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// Requests (eager uploads apart).
    pub max_requests: u32,
    /// Eager uploads.
    pub max_small_uploads: u32,
}

struct Inner {
    /// Requests in flight, up to the server's `max_requests`: more would
    /// be refused as `TooBusy`, so they wait here instead.
    permits: Arc<Semaphore>,
    /// Eager uploads in flight, up to the server's `max_small_uploads`
    /// (counted apart from requests).
    small_permits: Arc<Semaphore>,
    control: mpsc::Sender<Frame>,
    bulk: mpsc::Sender<Frame>,
    pending: Mutex<Routes>,
    /// Why the connection ended, once it has.
    closed: Mutex<Option<String>>,
    next_id: AtomicU32,
    next_transfer: AtomicU32,
    cwd: Mutex<RemotePath>,
    server: String,
    protocol: u16,
    user: String,
    identity: super::tls::ServerIdentity,
    /// What to do when a request is refused as busy.
    busy: BusyRetry,
    /// Asks the write loop to end the connection cleanly, and the loop.
    closer: Mutex<Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>>,
}

/// A session with a Ferry server.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.server)
            .field("user", &self.inner.user)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    pub(super) fn start<R, W>(
        reader: FramedRead<R, FrameCodec>,
        writer: FramedWrite<W, FrameCodec>,
        login: Established,
    ) -> Client
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let Established {
            server,
            protocol,
            user,
            identity,
            limits,
            busy,
        } = login;
        let (control, control_rx) = mpsc::channel(64);
        let (bulk, bulk_rx) = mpsc::channel(8);
        let (close, close_rx) = oneshot::channel();
        let writing = tokio::spawn(write_loop(writer, control_rx, bulk_rx, close_rx));
        let inner = Arc::new(Inner {
            permits: Arc::new(Semaphore::new((limits.max_requests as usize).max(1))),
            small_permits: Arc::new(Semaphore::new((limits.max_small_uploads as usize).max(1))),
            control,
            bulk,
            pending: Mutex::new(Routes::default()),
            closed: Mutex::new(None),
            next_id: AtomicU32::new(1),
            next_transfer: AtomicU32::new(1),
            cwd: Mutex::new(RemotePath::root()),
            server,
            protocol,
            user,
            identity,
            busy,
            closer: Mutex::new(Some((close, writing))),
        });
        tokio::spawn(read_loop(reader, Arc::downgrade(&inner)));
        Client { inner }
    }

    /// Ends the session cleanly: frames already queued go out, then the
    /// stream is shut down (over TLS, with a close_notify), so the server
    /// sees a client that left rather than a cut connection. Every clone of
    /// this client is disconnected.
    pub async fn close(&self) {
        let closer = lock(&self.inner.closer).take();
        if let Some((close, writing)) = closer {
            let _ = close.send(());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writing).await;
        }
    }

    /// The server's self-description from the welcome.
    pub fn server_name(&self) -> &str {
        &self.inner.server
    }

    /// The negotiated protocol version.
    pub fn protocol(&self) -> u16 {
        self.inner.protocol
    }

    /// The server's certificate fingerprint and why it is trusted.
    pub fn identity(&self) -> &super::tls::ServerIdentity {
        &self.inner.identity
    }

    /// True when both handles are the same session.
    pub fn same_as(&self, other: &Client) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The logged-in user.
    pub fn user(&self) -> &str {
        &self.inner.user
    }

    /// Why the connection ended, if it has.
    pub fn closed_reason(&self) -> Option<String> {
        lock(&self.inner.closed).clone()
    }

    fn disconnected(&self) -> ClientError {
        ClientError::Disconnected(
            self.closed_reason()
                .unwrap_or_else(|| "the server closed the connection".into()),
        )
    }

    /// Sends a request; returns the channel its response(s) arrive on.
    /// With `transfer`, data frames of that download share the channel, so
    /// they stay in order with the replies around them.
    pub(crate) async fn submit_routed(
        &self,
        req: Request,
        transfer: Option<u32>,
        queue: Queue,
    ) -> Result<mpsc::Receiver<Event>> {
        // Eager uploads are counted apart from other requests.
        let permits = match req {
            Request::PutOpen { eager: true, .. } => &self.inner.small_permits,
            _ => &self.inner.permits,
        };
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.disconnected())?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(ROUTE_WINDOW);
        {
            // Lock order: pending, then closed (as in read_loop), so a
            // request can never slip in after the connection was declared dead.
            let mut routes = lock(&self.inner.pending);
            if lock(&self.inner.closed).is_some() {
                drop(routes);
                return Err(self.disconnected());
            }
            if let Some(t) = transfer {
                routes.transfers.insert(t, tx.clone());
            }
            routes.requests.insert(
                id,
                Route {
                    tx,
                    _permit: permit,
                },
            );
        }
        let frame = Frame::control(&ClientMsg::Request { id, req })
            .map_err(ferry_proto::FrameError::from)?;
        let sent = match queue {
            Queue::Control => self.inner.control.send(frame).await,
            Queue::Bulk => self.inner.bulk.send(frame).await,
        };
        if sent.is_err() {
            let mut routes = lock(&self.inner.pending);
            routes.requests.remove(&id);
            if let Some(t) = transfer {
                routes.transfers.remove(&t);
            }
            return Err(self.disconnected());
        }
        Ok(rx)
    }

    async fn submit(&self, req: Request) -> Result<mpsc::Receiver<Event>> {
        self.submit_routed(req, None, Queue::Control).await
    }

    /// A fresh transfer id for this connection.
    pub(crate) fn next_transfer(&self) -> u32 {
        self.inner.next_transfer.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues a frame behind file data (upload data and its markers).
    pub(crate) async fn send_bulk(&self, frame: Frame) -> Result<()> {
        self.inner
            .bulk
            .send(frame)
            .await
            .map_err(|_| self.disconnected())
    }

    /// Abandons a transfer without waiting (used from `Drop`).
    pub(crate) fn cancel_transfer(&self, transfer: u32) {
        lock(&self.inner.pending).transfers.remove(&transfer);
        if let Ok(frame) = Frame::control(&ClientMsg::Cancel { transfer }) {
            let _ = self.inner.control.try_send(frame);
        }
    }

    /// Forgets a finished download's route.
    pub(crate) fn end_transfer(&self, transfer: u32) {
        lock(&self.inner.pending).transfers.remove(&transfer);
    }

    /// One request, one response; a request refused as busy (which the
    /// server did not run) is sent again as the session's [`BusyRetry`]
    /// allows.
    async fn call(&self, req: Request) -> Result<Reply> {
        self.inner.busy.run(|| self.call_once(req.clone())).await
    }

    async fn call_once(&self, req: Request) -> Result<Reply> {
        let mut rx = self.submit(req).await?;
        match rx.recv().await {
            Some(Event::Reply(Ok(reply))) => Ok(reply),
            Some(Event::Reply(Err(e))) => Err(ClientError::Remote(e)),
            Some(Event::Data(_)) => Err(ClientError::Protocol("data for a request".into())),
            None => Err(self.disconnected()),
        }
    }

    /// The working directory.
    pub fn cwd(&self) -> RemotePath {
        lock(&self.inner.cwd).clone()
    }

    /// Resolves a user-given path against the working directory.
    pub fn resolve(&self, path: &str) -> Result<RemotePath> {
        self.cwd().join(path).map_err(|source| ClientError::Path {
            path: path.to_string(),
            source,
        })
    }

    /// Changes the working directory (it must be a directory).
    pub async fn cd(&self, path: &str) -> Result<RemotePath> {
        let target = self.resolve(path)?;
        let entry = self.stat_path(&target).await?;
        if entry.kind != ferry_proto::msg::EntryKind::Dir {
            return Err(ClientError::Remote(RemoteError::new(
                ErrorKind::NotADirectory,
                path,
            )));
        }
        *lock(&self.inner.cwd) = target.clone();
        Ok(target)
    }

    /// Lists a directory, handing each batch to `on_batch` as it arrives
    /// (so a UI can show a huge directory while it streams in).
    pub async fn list_with(&self, path: &str, mut on_batch: impl FnMut(Vec<Entry>)) -> Result<()> {
        let req = Request::List {
            path: self.resolve(path)?.to_string(),
        };
        // A busy refusal comes first, before any batch: only then is the
        // listing asked for again.
        let (mut rx, mut next) = self
            .inner
            .busy
            .run(|| async {
                let mut rx = self.submit(req.clone()).await?;
                match rx.recv().await {
                    Some(Event::Reply(Err(e))) => Err(ClientError::Remote(e)),
                    first => Ok((rx, first)),
                }
            })
            .await?;
        loop {
            match next.take() {
                Some(Event::Reply(Ok(Reply::Entries { entries, more }))) => {
                    on_batch(entries);
                    if !more {
                        return Ok(());
                    }
                    next = rx.recv().await;
                }
                Some(Event::Reply(Err(e))) => return Err(ClientError::Remote(e)),
                Some(other) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected reply to list: {other:?}"
                    )))
                }
                None => return Err(self.disconnected()),
            }
        }
    }

    /// Lists a directory, sorted by name.
    pub async fn list(&self, path: &str) -> Result<Vec<Entry>> {
        let mut all = Vec::new();
        self.list_with(path, |batch| all.extend(batch)).await?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn stat_path(&self, path: &RemotePath) -> Result<Entry> {
        match self
            .call(Request::Stat {
                path: path.to_string(),
            })
            .await?
        {
            Reply::Stat(e) => Ok(e),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply to stat: {other:?}"
            ))),
        }
    }

    /// Metadata of a path (symlinks are not followed).
    pub async fn stat(&self, path: &str) -> Result<Entry> {
        self.stat_path(&self.resolve(path)?).await
    }

    async fn done(&self, req: Request) -> Result<()> {
        match self.call(req).await? {
            Reply::Done => Ok(()),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply: {other:?}"
            ))),
        }
    }

    /// [`Client::mkdir`] for an already resolved path.
    pub async fn mkdir_path(&self, path: &RemotePath, parents: bool) -> Result<()> {
        self.done(Request::Mkdir {
            path: path.to_string(),
            parents,
        })
        .await
    }

    /// Creates a directory (with `parents`, also its parents, and an
    /// existing directory is fine).
    pub async fn mkdir(&self, path: &str, parents: bool) -> Result<()> {
        let path = self.resolve(path)?.to_string();
        self.done(Request::Mkdir { path, parents }).await
    }

    /// Removes a file, an empty directory, or (recursive) a whole tree.
    pub async fn remove(&self, path: &str, mode: RemoveMode) -> Result<()> {
        let path = self.resolve(path)?.to_string();
        self.done(Request::Remove { path, mode }).await
    }

    /// Renames or moves; with `overwrite`, replaces an existing file.
    pub async fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<()> {
        let from = self.resolve(from)?.to_string();
        let to = self.resolve(to)?.to_string();
        self.done(Request::Rename {
            from,
            to,
            overwrite,
        })
        .await
    }

    /// Disconnected error with the recorded reason.
    pub(crate) fn lost(&self) -> ClientError {
        self.disconnected()
    }

    /// SHA-256 of a remote file's first `length` bytes (all when `None`).
    pub async fn checksum(
        &self,
        path: &RemotePath,
        length: Option<u64>,
    ) -> Result<(u64, [u8; 32])> {
        self.checksum_range(path, 0, length).await
    }

    /// SHA-256 of `length` bytes of a remote file from `offset` (to its
    /// end when `None`): the bytes hashed and their hash.
    pub async fn checksum_range(
        &self,
        path: &RemotePath,
        offset: u64,
        length: Option<u64>,
    ) -> Result<(u64, [u8; 32])> {
        match self
            .call(Request::Checksum {
                path: path.to_string(),
                offset,
                length,
            })
            .await?
        {
            Reply::Checksum { length, sha256 } => Ok((length, sha256)),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply to checksum: {other:?}"
            ))),
        }
    }

    /// Bytes used and the quota, if any.
    pub async fn quota(&self) -> Result<(u64, Option<u64>)> {
        let u = self.usage().await?;
        Ok((u.used, u.limit))
    }

    /// Bytes and entries used, and their limits.
    pub async fn usage(&self) -> Result<Usage> {
        match self.call(Request::Quota).await? {
            Reply::Quota {
                used,
                limit,
                entries,
                max_entries,
            } => Ok(Usage {
                used,
                limit,
                entries,
                max_entries,
            }),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply to quota: {other:?}"
            ))),
        }
    }
}

/// A user's usage and limits, as the server counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Bytes used (partial files included; a directory counts 4 KiB).
    pub used: u64,
    /// The byte quota, if any.
    pub limit: Option<u64>,
    /// Entries used: files, directories, symlinks, partial files.
    pub entries: u64,
    /// The entry limit, if any.
    pub max_entries: Option<u64>,
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: FramedWrite<W, FrameCodec>,
    mut control: mpsc::Receiver<Frame>,
    mut bulk: mpsc::Receiver<Frame>,
    mut close: oneshot::Receiver<()>,
) {
    // Control frames (requests, cancels) overtake queued file data.
    let (mut control_open, mut bulk_open) = (true, true);
    while control_open || bulk_open {
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
            _ = &mut close => break,
        };
        if put_frame(&mut writer, frame).await.is_err() {
            return;
        }
        let mut batched = 0;
        while batched < ferry_proto::WRITE_BATCH {
            let next = match control.try_recv() {
                Ok(f) => f,
                Err(_) => match bulk.try_recv() {
                    Ok(f) => f,
                    Err(_) => break,
                },
            };
            if put_frame(&mut writer, next).await.is_err() {
                return;
            }
            batched += 1;
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.close().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: FramedRead<R, FrameCodec>,
    inner: std::sync::Weak<Inner>,
) {
    let reason = loop {
        let frame = match reader.next().await {
            None => break "the server closed the connection".to_string(),
            Some(Err(e)) => break e.to_string(),
            Some(Ok(f)) => f,
        };
        let Some(inner) = inner.upgrade() else { return };
        let (route, event) = match frame {
            Frame::Data { transfer, data } => (
                lock(&inner.pending).transfers.get(&transfer).cloned(),
                Event::Data(data),
            ),
            frame => match frame.decode_control::<ServerMsg>() {
                Ok(ServerMsg::Response { id, reply }) => {
                    let last = reply.as_ref().map_or(true, Reply::is_final);
                    let mut routes = lock(&inner.pending);
                    let route = if last {
                        routes.requests.remove(&id).map(|r| r.tx)
                    } else {
                        routes.requests.get(&id).map(|r| r.tx.clone())
                    };
                    (route, Event::Reply(reply))
                }
                Ok(ServerMsg::Refused { error }) => {
                    break crate::display::escape(&error.to_string()).into_owned()
                }
                Ok(other) => break format!("unexpected message from the server: {other:?}"),
                Err(e) => break format!("bad message from the server: {e}"),
            },
        };
        // Waiting here when a consumer is slow is the flow control: the
        // socket stops being read and TCP pushes back on the server.
        if let Some(tx) = route {
            let _ = tx.send(event).await;
        }
    };
    if let Some(inner) = inner.upgrade() {
        let mut routes = lock(&inner.pending);
        *lock(&inner.closed) = Some(reason);
        // Dropping the senders wakes every waiting caller; closing the
        // permits wakes those waiting to send.
        inner.permits.close();
        inner.small_permits.close();
        routes.requests.clear();
        routes.transfers.clear();
    }
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
