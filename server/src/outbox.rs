//! What a connection sends: two queues into one writer task. Control
//! replies jump ahead of bulk traffic (file data and the replies that must
//! stay in order with it), so browsing stays fast while data streams.

use ferry_proto::{Frame, FrameCodec, RemoteError, Reply, ServerMsg};
use futures::SinkExt;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::codec::FramedWrite;

use crate::link::Writer;

/// Frames of file data queued per connection: the bounded window that
/// keeps memory flat whatever the file size.
const BULK_WINDOW: usize = 16;

/// The sending side of a connection, cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    control: mpsc::Sender<Frame>,
    bulk: mpsc::Sender<Frame>,
    /// The runtime the writer task runs on, for [`Outbox::reply_nowait`].
    rt: tokio::runtime::Handle,
}

fn response(id: u32, reply: Result<Reply, RemoteError>) -> Option<Frame> {
    Frame::control(&ServerMsg::Response { id, reply })
        .map_err(|e| tracing::error!(error = %e, "cannot encode a response"))
        .ok()
}

impl Outbox {
    /// Creates the queues and starts the writer task.
    pub fn start<W: AsyncWrite + Unpin + Send + 'static>(
        writer: Writer<W>,
    ) -> (Outbox, tokio::task::JoinHandle<()>) {
        let (control, control_rx) = mpsc::channel(64);
        let (bulk, bulk_rx) = mpsc::channel(BULK_WINDOW);
        let task = tokio::spawn(write_loop(writer, control_rx, bulk_rx));
        let rt = tokio::runtime::Handle::current();
        (Outbox { control, bulk, rt }, task)
    }

    /// Sends a control message; false when the connection is gone.
    pub async fn send(&self, msg: &ServerMsg) -> bool {
        match Frame::control(msg) {
            Ok(f) => self.control.send(f).await.is_ok(),
            Err(_) => false,
        }
    }

    /// Sends a response on the control queue.
    pub async fn reply(&self, id: u32, reply: Result<Reply, RemoteError>) -> bool {
        match response(id, reply) {
            Some(f) => self.control.send(f).await.is_ok(),
            None => false,
        }
    }

    /// [`Outbox::reply`] from a blocking thread.
    pub fn blocking_reply(&self, id: u32, reply: Result<Reply, RemoteError>) -> bool {
        response(id, reply).is_some_and(|f| self.control.blocking_send(f).is_ok())
    }

    /// Queues a response without ever waiting, from any thread: when the
    /// control queue is full (a client that does not read), a task sends
    /// it instead. For threads that serve every connection (the commit
    /// thread), which must not stall behind one slow client.
    pub fn reply_nowait(&self, id: u32, reply: Result<Reply, RemoteError>) {
        let Some(frame) = response(id, reply) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(frame)) = self.control.try_send(frame) {
            let control = self.control.clone();
            self.rt.spawn(async move {
                let _ = control.send(frame).await;
            });
        }
    }

    /// A response that must stay in order with data frames (blocking thread).
    pub fn blocking_bulk_reply(&self, id: u32, reply: Result<Reply, RemoteError>) -> bool {
        response(id, reply).is_some_and(|f| self.bulk.blocking_send(f).is_ok())
    }

    /// A data frame (blocking thread); waits while the window is full.
    pub fn blocking_data(&self, frame: Frame) -> bool {
        self.bulk.blocking_send(frame).is_ok()
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: Writer<W>,
    mut control: mpsc::Receiver<Frame>,
    mut bulk: mpsc::Receiver<Frame>,
) {
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
        };
        if put_frame(&mut writer, frame).await.is_err() {
            return;
        }
        // Batch what is already queued, control first, into one flush.
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::ServerMsg;
    use futures::StreamExt;
    use tokio_util::codec::FramedRead;

    /// A client that does not read fills the control queue; a reply from
    /// the commit thread must not wait for it, and still arrives in the end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reply_nowait_never_waits_for_a_client_that_does_not_read() {
        let (ours, theirs) = tokio::io::duplex(64);
        let (out, _task) = Outbox::start(FramedWrite::new(ours, FrameCodec::new()));
        // Far more than the socket and the queue hold.
        let replies = 500u32;
        let sender = out.clone();
        let sending = tokio::task::spawn_blocking(move || {
            for id in 0..replies {
                sender.reply_nowait(id, Ok(Reply::Done));
            }
        });
        // Nobody reads yet: a waiting sender would never finish.
        tokio::time::timeout(std::time::Duration::from_secs(30), sending)
            .await
            .expect("reply_nowait waited for the client")
            .unwrap();
        let mut reader = FramedRead::new(theirs, FrameCodec::new());
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < replies as usize {
            let frame = reader.next().await.unwrap().unwrap();
            match frame.decode_control::<ServerMsg>().unwrap() {
                ServerMsg::Response { id, reply: Ok(_) } => seen.insert(id),
                other => panic!("{other:?}"),
            };
        }
        assert_eq!(seen.len(), replies as usize);
    }
}
