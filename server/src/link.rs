//! Framed message I/O on one half of a connection, shared by the handshake
//! and the request loop.

use std::time::Duration;

use ferry_proto::frame::FrameError;
use ferry_proto::{ClientMsg, Frame, FrameCodec, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{FramedRead, FramedWrite};

/// Reading half.
pub type Reader<R> = FramedRead<R, FrameCodec>;
/// Writing half.
pub type Writer<W> = FramedWrite<W, FrameCodec>;

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The peer closed the connection.
    #[error("peer closed the connection")]
    Closed,
    /// The peer sent something undecodable or out of turn.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// Framing or socket failure.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer took too long.
    #[error("timed out")]
    Timeout,
}

/// Sends one control message.
pub async fn send<W: AsyncWrite + Unpin>(
    w: &mut Writer<W>,
    msg: &ServerMsg,
) -> Result<(), LinkError> {
    let frame = Frame::control(msg).map_err(FrameError::from)?;
    w.send(frame).await?;
    Ok(())
}

/// Receives one control message.
pub async fn recv<R: AsyncRead + Unpin>(r: &mut Reader<R>) -> Result<ClientMsg, LinkError> {
    match r.next().await {
        None => Err(LinkError::Closed),
        Some(Err(e)) => Err(e.into()),
        Some(Ok(frame)) => Ok(frame.decode_control::<ClientMsg>()?),
    }
}

/// Receives one control message within `limit`.
pub async fn recv_within<R: AsyncRead + Unpin>(
    r: &mut Reader<R>,
    limit: Duration,
) -> Result<ClientMsg, LinkError> {
    tokio::time::timeout(limit, recv(r))
        .await
        .unwrap_or(Err(LinkError::Timeout))
}
