//! One connection: hello, login, then the request loop. Generic over the
//! byte stream, so TLS or an in-memory duplex can carry it unchanged.

mod eager;
mod lane;
mod requests;
mod turns;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ferry_proto::hello::HELLO_LEN;
use ferry_proto::scram::ServerBinding;
use ferry_proto::{FrameCodec, Hello};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::auth::{login, AuthEnd};
use crate::link::{LinkError, Reader, Writer};
use crate::logfmt::q;
use crate::niced::NicedRead;
use crate::places::{Admission, Stage};
use crate::server::Shared;
use requests::requests;

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
