//! A logged-in session: a cheap, cloneable handle that many tasks can use
//! at once. Requests are pipelined: each gets an id, a writer task sends
//! frames, and a reader task routes responses back by id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ferry_proto::msg::{Entry, RemoveMode};
use ferry_proto::{
    ClientMsg, ErrorKind, Frame, FrameCodec, RemoteError, RemotePath, Reply, Request, ServerMsg,
};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::error::{ClientError, Result};

type Pending = HashMap<u32, mpsc::UnboundedSender<Result<Reply, RemoteError>>>;

struct Inner {
    tx: mpsc::Sender<Frame>,
    pending: Mutex<Pending>,
    /// Why the connection ended, once it has.
    closed: Mutex<Option<String>>,
    next_id: AtomicU32,
    cwd: Mutex<RemotePath>,
    server: String,
    protocol: u16,
    user: String,
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
        server: String,
        protocol: u16,
        user: String,
    ) -> Client
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(64);
        let inner = Arc::new(Inner {
            tx,
            pending: Mutex::new(HashMap::new()),
            closed: Mutex::new(None),
            next_id: AtomicU32::new(1),
            cwd: Mutex::new(RemotePath::root()),
            server,
            protocol,
            user,
        });
        tokio::spawn(write_loop(writer, rx));
        tokio::spawn(read_loop(reader, Arc::downgrade(&inner)));
        Client { inner }
    }

    /// The server's self-description from the welcome.
    pub fn server_name(&self) -> &str {
        &self.inner.server
    }

    /// The negotiated protocol version.
    pub fn protocol(&self) -> u16 {
        self.inner.protocol
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
    async fn submit(
        &self,
        req: Request,
    ) -> Result<mpsc::UnboundedReceiver<Result<Reply, RemoteError>>> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        {
            // Lock order: pending, then closed (as in read_loop), so a
            // request can never slip in after the connection was declared dead.
            let mut pending = lock(&self.inner.pending);
            if lock(&self.inner.closed).is_some() {
                drop(pending);
                return Err(self.disconnected());
            }
            pending.insert(id, tx);
        }
        let frame = Frame::control(&ClientMsg::Request { id, req })
            .map_err(ferry_proto::FrameError::from)?;
        if self.inner.tx.send(frame).await.is_err() {
            lock(&self.inner.pending).remove(&id);
            return Err(self.disconnected());
        }
        Ok(rx)
    }

    /// One request, one response.
    async fn call(&self, req: Request) -> Result<Reply> {
        let mut rx = self.submit(req).await?;
        match rx.recv().await {
            Some(Ok(reply)) => Ok(reply),
            Some(Err(e)) => Err(ClientError::Remote(e)),
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
        let target = self.resolve(path)?;
        let mut rx = self
            .submit(Request::List {
                path: target.to_string(),
            })
            .await?;
        loop {
            match rx.recv().await {
                Some(Ok(Reply::Entries { entries, more })) => {
                    on_batch(entries);
                    if !more {
                        return Ok(());
                    }
                }
                Some(Ok(other)) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected reply to list: {other:?}"
                    )))
                }
                Some(Err(e)) => return Err(ClientError::Remote(e)),
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

    /// Bytes used and the quota, if any.
    pub async fn quota(&self) -> Result<(u64, Option<u64>)> {
        match self.call(Request::Quota).await? {
            Reply::Quota { used, limit } => Ok((used, limit)),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply to quota: {other:?}"
            ))),
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: FramedWrite<W, FrameCodec>,
    mut rx: mpsc::Receiver<Frame>,
) {
    while let Some(frame) = rx.recv().await {
        if writer.feed(frame).await.is_err() {
            return;
        }
        while let Ok(frame) = rx.try_recv() {
            if writer.feed(frame).await.is_err() {
                return;
            }
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
        match frame.decode_control::<ServerMsg>() {
            Ok(ServerMsg::Response { id, reply }) => {
                let last = !matches!(reply, Ok(Reply::Entries { more: true, .. }));
                let mut pending = lock(&inner.pending);
                let tx = if last {
                    pending.remove(&id)
                } else {
                    pending.get(&id).cloned()
                };
                drop(pending);
                if let Some(tx) = tx {
                    let _ = tx.send(reply);
                }
            }
            Ok(ServerMsg::Refused { error }) => break error.to_string(),
            Ok(other) => break format!("unexpected message from the server: {other:?}"),
            Err(e) => break format!("bad message from the server: {e}"),
        }
    };
    if let Some(inner) = inner.upgrade() {
        let mut pending = lock(&inner.pending);
        *lock(&inner.closed) = Some(reason);
        // Dropping the senders wakes every waiting caller.
        pending.clear();
    }
}
