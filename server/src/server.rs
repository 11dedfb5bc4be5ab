//! The listener: accepts connections up to the configured maximum, runs
//! each on its own task, and drains them on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferry_proto::hello::{HELLO_LEN, MAGIC};
use ferry_proto::scram::ServerBinding;
use ferry_proto::{ErrorKind, Frame, FrameCodec, Hello, RemoteError, ServerMsg};
use futures::SinkExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::FramedWrite;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::conn;
use crate::penalty::Penalties;
use crate::users::UserStore;

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The user store.
    pub users: UserStore,
    /// Secret for mock salts of unknown users.
    pub secret: Vec<u8>,
    /// Failed-login penalties.
    pub penalties: Penalties,
    /// Live users.
    pub accounts: Arc<Accounts>,
    /// Commits small uploads in groups.
    pub committer: crate::transfer::commit::Committer,
    /// Places for running transfers on the whole server.
    pub transfers: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    /// Prepares the server state from a configuration (creates the root).
    pub fn new(config: Config) -> anyhow::Result<Shared> {
        config.validate()?;
        std::fs::create_dir_all(config.homes())
            .with_context(|| format!("cannot create {}", config.homes().display()))?;
        let users = UserStore::new(&config.root);
        let secret = users.server_secret()?;
        Ok(Shared {
            penalties: Penalties::new(config.auth.clone()),
            users,
            secret,
            accounts: Arc::new(Accounts::new(
                Duration::from_secs(config.limits.usage_kept_secs),
                config.limits.max_transfers_per_user,
            )),
            transfers: Arc::new(tokio::sync::Semaphore::new(config.limits.max_transfers)),
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
    let shared = Arc::new(Shared::new(config)?);
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
    let limit = Arc::new(Semaphore::new(shared.config.limits.max_connections));
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracing::info!(addr = %listener.local_addr()?, root = %shared.config.root.display(), "ferryd listening");
    let t = &shared.config.transfers;
    let sweeper = tokio::spawn(crate::transfer::sweep::run(
        shared.config.homes(),
        shared.accounts.clone(),
        Duration::from_secs(t.partial_max_age_secs),
        Duration::from_secs(t.sweep_interval_secs),
    ));
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
        let _ = stream.set_nodelay(true);
        let permit = limit.clone().try_acquire_owned().ok();
        let shared = shared.clone();
        let cancel = cancel.child_token();
        let tls = tls.clone();
        tracker.spawn(async move {
            let hs = shared.config.limits.handshake_timeout();
            match tls {
                None => match permit {
                    Some(_permit) => {
                        conn::serve(stream, peer, shared, ServerBinding::None, cancel).await
                    }
                    None => refuse_busy(stream, peer).await,
                },
                Some(acceptor) => {
                    let Ok(Some((stream, binding))) =
                        tokio::time::timeout(hs, accept_tls(acceptor, stream, peer)).await
                    else {
                        return;
                    };
                    match permit {
                        Some(_permit) => {
                            conn::serve(
                                stream,
                                peer,
                                shared,
                                ServerBinding::TlsExporter(binding),
                                cancel,
                            )
                            .await
                        }
                        None => refuse_busy(stream, peer).await,
                    }
                }
            }
        });
    }
    tracing::info!("shutting down: draining connections");
    sweeper.abort();
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!("connections still open after {DRAIN:?}; exiting anyway");
    }
    Ok(())
}

/// Completes a TLS handshake; returns the stream and its tls-exporter
/// channel-binding data. A client speaking plaintext Ferry is told why it
/// is refused rather than left with a failed handshake.
async fn accept_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<(TlsStream<BufReader<TcpStream>>, Vec<u8>)> {
    let mut first = [0u8; 6];
    loop {
        match stream.peek(&mut first).await {
            Ok(0) | Err(_) => return None,
            Ok(n) if n >= first.len() || first[..n] != MAGIC[..n] => break,
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    if first == MAGIC {
        tracing::info!(addr = %peer, "plaintext client refused: this server requires TLS");
        let error = RemoteError::new(
            ErrorKind::Protocol,
            "this server only accepts TLS connections; connect without --insecure-plaintext",
        );
        refuse(stream, error).await;
        return None;
    }
    let stream = BufReader::with_capacity(ferry_proto::TLS_READ_BUFFER, stream);
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

async fn refuse_busy<S: AsyncRead + AsyncWrite + Unpin>(stream: S, peer: SocketAddr) {
    tracing::warn!(addr = %peer, "connection refused: too many connections");
    refuse(
        stream,
        RemoteError::new(ErrorKind::TooBusy, "too many connections"),
    )
    .await;
}

/// Says hello and why the connection is refused, then lets it go. The
/// peer's own hello is read first (with a short limit) so closing does not
/// reset the connection before the refusal is read.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, error: RemoteError) {
    let mut theirs = [0u8; HELLO_LEN];
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut theirs)).await;
    if stream.write_all(&Hello::ours().encode()).await.is_err() {
        return;
    }
    let mut w = FramedWrite::new(stream, FrameCodec::new());
    if let Ok(frame) = Frame::control(&ServerMsg::Refused { error }) {
        let _ = tokio::time::timeout(Duration::from_secs(2), w.send(frame)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), w.get_mut().shutdown()).await;
}
