//! The listener: accepts connections up to the configured maximum, runs
//! each on its own task, and drains them on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferry_proto::scram::ServerBinding;
use ferry_proto::{ErrorKind, Frame, FrameCodec, Hello, RemoteError, ServerMsg};
use futures::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::FramedWrite;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::Accounts;
use crate::config::Config;
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
            accounts: Arc::new(Accounts::default()),
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
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracker.spawn(refuse_busy(stream, peer));
            continue;
        };
        let shared = shared.clone();
        let cancel = cancel.child_token();
        tracker.spawn(async move {
            crate::conn::serve(stream, peer, shared, ServerBinding::None, cancel).await;
            drop(permit);
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

async fn refuse_busy(mut stream: TcpStream, peer: SocketAddr) {
    tracing::warn!(addr = %peer, "connection refused: too many connections");
    if stream.write_all(&Hello::ours().encode()).await.is_err() {
        return;
    }
    let mut w = FramedWrite::new(stream, FrameCodec::new());
    let msg = ServerMsg::Refused {
        error: RemoteError::new(ErrorKind::TooBusy, "too many connections"),
    };
    if let Ok(frame) = Frame::control(&msg) {
        let _ = tokio::time::timeout(Duration::from_secs(2), w.send(frame)).await;
    }
}
