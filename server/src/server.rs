//! The listener: admits connections within the strangers' budget (per
//! source address and in total), runs each on its own task under one
//! login deadline, and drains them on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferry_proto::hello::{HELLO_LEN, MAGIC};
use ferry_proto::scram::ServerBinding;
use ferry_proto::{ErrorKind, Frame, FrameCodec, Hello, RemoteError, ServerMsg};
use futures::SinkExt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::FramedWrite;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::conn;
use crate::penalty::Penalties;
use crate::places::{Evicted, Places, Refusals, Stage};
use crate::readbuf::IdleFreeReader;
use crate::store::Store;

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The state store (users, ...): SQLite or PostgreSQL.
    pub store: Store,
    /// This process as a node of the store.
    pub node: crate::store::nodes::Node,
    /// Secret for mock salts of unknown users.
    pub secret: Vec<u8>,
    /// Failed-login penalties.
    pub penalties: Penalties,
    /// Live users.
    pub accounts: Arc<Accounts>,
    /// The bucket, when files live in object storage.
    pub bucket: Option<crate::objects::Bucket>,
    /// Commits small uploads in groups.
    pub committer: crate::transfer::commit::Committer,
    /// Places for running transfers on the whole server.
    pub transfers: Arc<tokio::sync::Semaphore>,
    /// Blocking threads for file work on the whole server (`threads.rs`).
    pub threads: Arc<tokio::sync::Semaphore>,
    /// Of those, threads running CPU-heavy steps (`threads.rs`).
    pub cpu_threads: Arc<tokio::sync::Semaphore>,
    /// Low-priority threads for bulk work (`bulk.rs`).
    pub bulk: crate::bulk::Pool,
    /// Places for connections: strangers' and sessions'.
    pub places: Places,
    /// Bytes all connections together may make ferryd hold (`budget.rs`).
    pub held: Arc<tokio::sync::Semaphore>,
    /// Whole-file hashes computed for checksum requests (`hashes.rs`).
    pub hashes: Arc<crate::hashes::HashCache>,
}

impl Shared {
    /// Prepares the server state from a configuration (creates the root,
    /// opens the state store).
    pub async fn new(config: Config) -> anyhow::Result<Shared> {
        config.validate()?;
        crate::secrets::private_dir(&config.homes())
            .with_context(|| format!("cannot create {}", config.homes().display()))?;
        let store = Store::open(&config)
            .await
            .context("cannot open the state store")?;
        let secret = store
            .server_secret(&crate::users::new_secret(&config.root)?)
            .await?;
        let node = store
            .register_node(
                config.listen,
                Duration::from_secs(config.database.node_expiry_secs),
                Duration::from_millis(config.database.heartbeat_ms.max(100)),
            )
            .await?;
        let accounts = Accounts::new(
            Duration::from_secs(config.limits.usage_kept_secs),
            crate::budget::ShareLimits::from(&config.limits),
        )
        .with_max_depth(config.limits.max_depth)
        .with_store(
            store.clone(),
            &node,
            store.engine() == crate::store::Engine::Postgres,
        );
        let (accounts, bucket) = match &config.store.url {
            Some(_) => {
                let bucket = crate::objects::Bucket::connect(&config.store)
                    .await
                    .context("cannot open the object store")?;
                tracing::info!(store = %bucket.url, "files in object storage");
                (
                    accounts.with_objects(bucket.clone(), store.clone()),
                    Some(bucket),
                )
            }
            None => (accounts, None),
        };
        if !crate::niced::may_renice() {
            tracing::warn!(
                "uploads are decrypted at normal priority: this process may not set a thread's nice value back (run as root, or allow it with RLIMIT_NICE, e.g. LimitNICE=+0)"
            );
        }
        Ok(Shared {
            bucket,
            hashes: Arc::default(),
            held: Arc::new(tokio::sync::Semaphore::new(config.limits.held_budget())),
            // Several nodes share the penalties through PostgreSQL; one
            // node on its embedded SQLite keeps them in memory, where a
            // login costs no query.
            penalties: match store.engine() {
                crate::store::Engine::Postgres => Penalties::shared(
                    config.auth.clone(),
                    store.clone(),
                    config.limits.login_timeout(),
                ),
                crate::store::Engine::Sqlite => Penalties::new(config.auth.clone()),
            },
            places: Places::new(&config.limits, config.auth.ipv6_prefix_len),
            store: store.clone(),
            node: node.clone(),
            secret,
            accounts: Arc::new(accounts),
            transfers: Arc::new(tokio::sync::Semaphore::new(config.limits.max_transfers)),
            threads: Arc::new(tokio::sync::Semaphore::new(config.limits.max_threads)),
            cpu_threads: Arc::new(tokio::sync::Semaphore::new(config.limits.cpu_threads())),
            bulk: crate::bulk::Pool::start(
                config.limits.bulk_threads(),
                config.limits.bulk_priority(),
            )
            .context("cannot start the bulk threads")?,
            committer: crate::transfer::commit::Committer::start()
                .context("cannot start the commit thread")?,
            config,
        })
    }
}

/// How long shutdown waits for connections to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves until `shutdown` completes, then drains connections.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future,
) -> anyhow::Result<()> {
    run_announced(listener, config, shutdown, |_| {}).await
}

/// [`run`], calling `ready` with the bound address once the state store
/// is open and connections are about to be taken (so a script that waits
/// for it never finds a server whose database is still away).
pub async fn run_announced(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::new(config).await?);
    let tls = if shared.config.insecure_plaintext {
        tracing::warn!(
            "TLS is OFF (insecure_plaintext): names and contents cross the wire in clear"
        );
        None
    } else {
        let (tls, fp) = crate::tls::server_config(&shared.config)?;
        tracing::info!(fingerprint = %fp, "TLS certificate");
        Some(TlsAcceptor::from(tls))
    };
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracing::info!(addr = %listener.local_addr()?, root = %shared.config.root.display(), "ferryd listening");
    ready(listener.local_addr()?);
    let proxies = &shared.config.trusted_proxies;
    if !proxies.is_empty() {
        let list: Vec<String> = proxies.iter().map(ToString::to_string).collect();
        tracing::info!(trusted_proxies = %list.join(","), "connections from these must start with a PROXY v2 header");
    }
    let t = &shared.config.transfers;
    let sweeper = tokio::spawn(crate::transfer::sweep::run(
        shared.config.homes(),
        shared.accounts.clone(),
        Duration::from_secs(t.partial_max_age_secs),
        Duration::from_secs(t.sweep_interval_secs),
    ));
    let objects_sweeper = shared.bucket.clone().map(|bucket| {
        let s = &shared.config.store;
        tokio::spawn(crate::objects::sweep::run(
            shared.store.clone(),
            bucket,
            shared.accounts.clone(),
            crate::objects::sweep::Ages {
                grace: Duration::from_secs(s.trash_grace_secs),
                stale: Duration::from_secs(s.stale_upload_secs),
            },
            Duration::from_secs(s.sweep_every_secs),
        ))
    });
    let revoker = tokio::spawn(crate::revoke::run(
        shared.store.clone(),
        shared.accounts.clone(),
        shared.config.limits.max_entries_per_user,
        Duration::from_millis(shared.config.auth.user_store_check_ms),
    ));
    let announcements = tokio::spawn({
        let store = shared.store.clone();
        async move { store.listen().await }
    });
    let heart = tokio::spawn(heartbeat(shared.clone()));
    let usage = tokio::spawn(sync_usage(shared.clone()));
    let bans = tokio::spawn({
        let shared = shared.clone();
        async move {
            let every = Duration::from_millis(shared.config.auth.ban_sync_ms);
            shared.penalties.sync(every).await
        }
    });
    let mut refusals = Refusals::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(v) => v,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // A stranger's place, or the connection is closed now: no TLS, no
        // read, no task. (With the budget full, the biggest holder's oldest
        // stranger is closed for it, through its token.) Sessions take
        // their places only after login.
        let cancel = cancel.child_token();
        // A trusted balancer's connection is counted under the client its
        // PROXY header names, once read (`proxy.rs`, `Places::carried`).
        let proxied = crate::proxy::trusted(&shared.config.trusted_proxies, peer.ip());
        let admitted = if proxied {
            shared.places.admit_proxied(peer.ip(), cancel.clone())
        } else {
            shared.places.admit(peer.ip(), cancel.clone())
        };
        let Some(mut admission) = admitted else {
            let _ = stream.set_zero_linger();
            drop(stream);
            refusals.refused(peer.ip());
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        // A stranger closed to make room is reset (see `Rewind`).
        let mut stream = Rewind::new(stream, admission.evicted());
        tracker.spawn(async move {
            let peer = match proxied {
                false => peer,
                true => match crate::proxy::admit(&mut stream.inner, peer, &shared.places, &mut admission, &cancel).await {
                    Some(client) => client,
                    None => return,
                },
            };
            let binding = match tls {
                None => {
                    let first = tokio::time::timeout_at(admission.deadline(), sniff(&mut stream, peer));
                    let first = tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = first => match r {
                            Ok(first) => first,
                            Err(_) => {
                                tracing::info!(addr = %peer, "handshake timed out; connection dropped");
                                return;
                            }
                        },
                    };
                    let Some((first, n)) = first else {
                        return;
                    };
                    stream.prefix = first;
                    stream.len = n;
                    conn::serve(stream, peer, shared, ServerBinding::None, admission, cancel).await;
                    return;
                }
                Some(acceptor) => {
                    // The TLS handshake runs under the same deadline as the
                    // hello and login after it.
                    let deadline = admission.deadline();
                    let handshake = tokio::time::timeout_at(deadline, accept_tls(acceptor, stream, peer));
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = handshake => match r {
                            Ok(Some(done)) => done,
                            Ok(None) => return,
                            Err(_) => {
                                tracing::info!(addr = %peer, "TLS handshake not done by the login deadline; connection dropped");
                                return;
                            }
                        },
                    }
                }
            };
            let (stream, binding) = binding;
            admission.progress(Stage::Greeted);
            conn::serve(
                stream,
                peer,
                shared,
                ServerBinding::TlsExporter(binding),
                admission,
                cancel,
            )
            .await
        });
    }
    tracing::info!("shutting down: draining connections");
    sweeper.abort();
    if let Some(s) = objects_sweeper {
        s.abort();
    }
    revoker.abort();
    bans.abort();
    announcements.abort();
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!("connections still open after {DRAIN:?}; exiting anyway");
    }
    heart.abort();
    usage.abort();
    shared.accounts.sync_usage(false).await;
    if let Err(e) = shared.store.leave(&shared.node).await {
        tracing::warn!(error = %e, "cannot remove this node from the store; it expires");
    }
    shared.store.close().await;
    Ok(())
}

/// Sends usage changes to the store as they happen, and takes in other
/// nodes' (and lets go of uploads they want) twice a second.
async fn sync_usage(shared: Arc<Shared>) {
    shared
        .accounts
        .sync_usage_forever(Duration::from_millis(500))
        .await;
}

/// Tells the store this node is alive, every `database.heartbeat_ms`,
/// and clears out dead nodes; a store that does not answer is logged
/// (this node's sessions count on other nodes until it expires).
async fn heartbeat(shared: Arc<Shared>) {
    let every = Duration::from_millis(shared.config.database.heartbeat_ms.max(100));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = shared.store.heartbeat(&shared.node).await {
            tracing::warn!(error = %e, "heartbeat to the state store failed");
        }
        if shared.store.engine() == crate::store::Engine::Postgres {
            give_back_dead_uploads(&shared).await;
        }
    }
}

/// Uploads whose node died (silent for its expiry) and that no client
/// took over: what they reserved and did not write (their partials keep
/// what was written) is taken off their users' usage.
async fn give_back_dead_uploads(shared: &Shared) {
    let dead = match shared.store.dead_uploads(shared.node.expiry).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for dead nodes' uploads");
            return;
        }
    };
    for (user, path, node, reserved) in dead {
        let written = ferry_proto::RemotePath::parse(&path)
            .ok()
            .and_then(|p| {
                let part = shared
                    .config
                    .home_of(&user)
                    .join(ferry_proto::msg::PARTIALS_DIR)
                    .join(crate::transfer::partials::key(&p));
                std::fs::symlink_metadata(part).ok()
            })
            .map_or(0, |m| m.len());
        let unwritten = reserved.saturating_sub(written);
        match shared
            .store
            .drop_dead_upload(&user, &path, &node, unwritten)
            .await
        {
            Ok(()) => {
                tracing::info!(user = %crate::logfmt::q(&user), path = %crate::logfmt::q(&path), bytes = unwritten, "a dead node's upload forgotten; its reservation given back")
            }
            Err(e) => tracing::warn!(error = %e, "cannot forget a dead node's upload"),
        }
    }
}

/// Completes a TLS handshake; returns the stream and its tls-exporter
/// channel-binding data. A client speaking plaintext Ferry is told why it
/// is refused rather than left with a failed handshake.
async fn accept_tls(
    acceptor: TlsAcceptor,
    mut stream: Rewind,
    peer: SocketAddr,
) -> Option<(TlsStream<IdleFreeReader<Rewind>>, Vec<u8>)> {
    // Read (not peek) the first bytes, as they come: a peek cannot wait for
    // more than is there, and polling it on a timer cost a wake-up every
    // 10 ms per trickling socket. What was read is handed back to TLS.
    let (first, n) = sniff(&mut stream, peer).await?;
    if first == MAGIC {
        tracing::info!(addr = %peer, "plaintext client refused: this server requires TLS");
        let error = RemoteError::new(
            ErrorKind::Protocol,
            "this server only accepts TLS connections; connect without --insecure-plaintext",
        );
        refuse(stream, error, HELLO_LEN - MAGIC.len()).await;
        return None;
    }
    stream.prefix = first;
    stream.len = n;
    let stream = IdleFreeReader::new(stream, ferry_proto::TLS_READ_BUFFER);
    match acceptor.accept(stream).await {
        Ok(tls) => {
            let binding = crate::tls::exporter(tls.get_ref().1)?;
            Some((tls, binding))
        }
        Err(e) => {
            tracing::info!(addr = %peer, error = %e, "TLS handshake failed");
            None
        }
    }
}

/// Reads a connection's first bytes (up to 6, fewer once they are neither
/// a plaintext hello's nor a PROXY header's start). A PROXY header from a
/// peer not trusted to send one is refused: nobody may claim another's
/// address.
async fn sniff(stream: &mut Rewind, peer: SocketAddr) -> Option<([u8; 6], usize)> {
    let mut first = [0u8; 6];
    let mut n = 0;
    let sig = crate::proxy::SIGNATURE;
    while n < first.len() && (first[..n] == MAGIC[..n] || first[..n] == sig[..n]) {
        match stream.inner.read(&mut first[n..]).await {
            Ok(0) | Err(_) => return None,
            Ok(k) => n += k,
        }
    }
    if first[..] == sig[..first.len()] {
        tracing::warn!(target: "audit", addr = %peer, "PROXY header from an address not in trusted_proxies: connection refused");
        return None;
    }
    Some((first, n))
}

/// A TCP stream whose first bytes were already read: they are read again
/// first. Dropped after its stranger was closed to make room, it resets
/// the connection (as a busy server turns one away, which the client
/// retries) rather than closing it as if the server had hung up.
#[derive(Debug)]
pub struct Rewind {
    prefix: [u8; 6],
    len: usize,
    pos: usize,
    inner: TcpStream,
    evicted: Evicted,
}

impl Rewind {
    fn new(inner: TcpStream, evicted: Evicted) -> Rewind {
        Rewind {
            prefix: [0; 6],
            len: 0,
            pos: 0,
            inner,
            evicted,
        }
    }
}

impl Drop for Rewind {
    fn drop(&mut self) {
        if self.evicted.is_set() {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.len {
            let rest = &self.prefix[self.pos..self.len];
            let k = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..k]);
            self.pos += k;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Says hello and why the connection is refused, then lets it go. The rest
/// of the peer's own hello (`unread` bytes) is read first (with a short
/// limit) so closing does not reset the connection before the refusal is
/// read.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    error: RemoteError,
    unread: usize,
) {
    let mut theirs = [0u8; HELLO_LEN];
    let rest = &mut theirs[..unread.min(HELLO_LEN)];
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_exact(rest)).await;
    if stream.write_all(&Hello::ours().encode()).await.is_err() {
        return;
    }
    let mut w = FramedWrite::new(stream, FrameCodec::new());
    if let Ok(frame) = Frame::control(&ServerMsg::Refused { error }) {
        let _ = tokio::time::timeout(Duration::from_secs(2), w.send(frame)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), w.get_mut().shutdown()).await;
}
