//! One connection: hello, login, then the request loop. Generic over the
//! byte stream, so TLS or an in-memory duplex can carry it unchanged.

use std::net::SocketAddr;
use std::sync::Arc;

use ferry_proto::hello::HELLO_LEN;
use ferry_proto::scram::ServerBinding;
use ferry_proto::{ClientMsg, ErrorKind, Frame, FrameCodec, Hello, RemoteError, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::accounts::Session;
use crate::auth::{login, AuthEnd};
use crate::link::{LinkError, Reader, Writer};
use crate::ops;
use crate::server::Shared;

/// Serves one connection to its end. Errors are logged here, never returned.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    binding: ServerBinding,
    cancel: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let limit = shared.config.limits.handshake_timeout();
    let start = async {
        exchange_hello(&mut rd, &mut wr, peer).await?;
        let mut reader = FramedRead::new(rd, FrameCodec::new());
        let mut writer = FramedWrite::new(wr, FrameCodec::new());
        match login(&mut reader, &mut writer, peer, &shared, binding).await {
            Ok(session) => Ok((session, reader, writer)),
            Err(AuthEnd::Refused(e)) => Err(LinkError::Protocol(format!("login refused: {e}"))),
            Err(AuthEnd::Link(e)) => Err(e),
        }
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout(limit, start) => r.unwrap_or(Err(LinkError::Timeout)),
        _ = cancel.cancelled() => return,
    };
    match outcome {
        Ok((session, reader, writer)) => {
            let user = session.account.name.clone();
            let end = requests(session, reader, writer, &shared, &cancel).await;
            tracing::info!(user = %user, addr = %peer, end = %end, "session closed");
        }
        Err(LinkError::Timeout) => {
            tracing::info!(addr = %peer, "handshake timed out; connection dropped")
        }
        Err(e) => tracing::info!(addr = %peer, error = %e, "connection ended before login"),
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
        tracing::info!(addr = %peer, error = %e, "bad hello");
        LinkError::Protocol(e.to_string())
    })?;
    Ok(())
}

async fn write_loop<W: AsyncWrite + Unpin>(mut writer: Writer<W>, mut rx: mpsc::Receiver<Frame>) {
    while let Some(frame) = rx.recv().await {
        if writer.feed(frame).await.is_err() {
            return;
        }
        // Batch whatever is already queued into one flush.
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

async fn requests<R, W>(
    session: Session,
    mut reader: Reader<R>,
    writer: Writer<W>,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
) -> String
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.config.limits;
    let (tx, rx) = mpsc::channel::<Frame>(64);
    let writer_task = tokio::spawn(write_loop(writer, rx));
    let max = limits.max_requests_in_flight;
    let inflight = Arc::new(Semaphore::new(max));
    let end = loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => break "server shutting down".to_string(),
            next = tokio::time::timeout(limits.idle_timeout(), reader.next()) => next,
        };
        let frame = match next {
            Err(_) if inflight.available_permits() < max => continue, // busy, not idle
            Err(_) => break "idle timeout".to_string(),
            Ok(None) => break "client closed".to_string(),
            Ok(Some(Err(e))) => {
                let err = RemoteError::new(ErrorKind::Protocol, e.to_string());
                let _ = send_via(&tx, &ServerMsg::Refused { error: err }).await;
                break format!("bad frame: {e}");
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let msg = match frame.decode_control::<ClientMsg>() {
            Ok(m) => m,
            Err(e) => {
                let err = RemoteError::new(ErrorKind::Protocol, e.to_string());
                let _ = send_via(&tx, &ServerMsg::Refused { error: err }).await;
                break format!("bad message: {e}");
            }
        };
        let ClientMsg::Request { id, req } = msg else {
            let err = RemoteError::new(ErrorKind::Protocol, "unexpected message after login");
            let _ = send_via(&tx, &ServerMsg::Refused { error: err }).await;
            break "unexpected message".to_string();
        };
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            break "internal error".to_string();
        };
        let account = session.account.clone();
        let tx = tx.clone();
        let batch = limits.max_dir_batch;
        tokio::spawn(async move {
            ops::handle(id, req, account, batch, tx).await;
            drop(permit);
        });
    };
    drop(tx);
    let _ = writer_task.await;
    drop(session);
    end
}

async fn send_via(tx: &mpsc::Sender<Frame>, msg: &ServerMsg) -> Result<(), LinkError> {
    let frame = Frame::control(msg).map_err(ferry_proto::FrameError::from)?;
    tx.send(frame).await.map_err(|_| LinkError::Closed)
}
