//! Framed message I/O on one half of a connection, shared by the handshake
//! and the request loop.

use std::future::Future;
use std::time::Duration;

use bytes::BytesMut;

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

/// The next frame. While none is on its way the read buffer, then empty,
/// is given back (it is made again, as large as the next frame, when bytes
/// come), so an idle connection holds no buffer at all.
pub fn next_frame<R: AsyncRead + Unpin>(
    r: &mut Reader<R>,
) -> impl Future<Output = Option<Result<Frame, FrameError>>> + '_ {
    std::future::poll_fn(move |cx| {
        let next = r.poll_next_unpin(cx);
        if next.is_pending() && r.read_buffer().is_empty() && r.read_buffer().capacity() > 0 {
            *r.read_buffer_mut() = BytesMut::new();
        }
        next
    })
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
