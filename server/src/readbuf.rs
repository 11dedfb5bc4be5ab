//! The read buffer under a TLS stream: large while bytes arrive, gone
//! while the connection is idle.
//!
//! rustls reads the socket about 4 KiB at a time, so ferryd buffers below
//! it ([`ferry_proto::TLS_READ_BUFFER`]) and bulk uploads cost a few large
//! reads instead of tens of thousands of small ones. A buffer kept for the
//! whole connection (tokio's `BufReader`) is zero-filled when made and
//! costs its full size in every idle session (~230 MiB for 1,000 of them).
//! This one is taken when a read needs it and given back as soon as it is
//! empty and the socket has nothing more to give. Given-back buffers wait
//! in a small pool shared by all connections ([`POOL_MAX`] of them), so a
//! busy upload, whose socket runs dry many times a second, reuses warm
//! memory instead of asking the allocator (which may hand back fresh pages
//! to fault in) every time.

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Read buffers kept for reuse at most, over all connections (2 MiB at
/// the default size).
pub const POOL_MAX: usize = 8;

/// Empty read buffers, for the next connection that has bytes to read.
static POOL: Mutex<Vec<BytesMut>> = Mutex::new(Vec::new());

/// An empty buffer with room for `capacity` bytes: a pooled one if any.
fn take(capacity: usize) -> BytesMut {
    let pooled = POOL.lock().ok().and_then(|mut pool| pool.pop());
    pooled.unwrap_or_else(|| BytesMut::with_capacity(capacity))
}

/// Gives a buffer's memory back: to the pool while it has room.
fn give(buf: Option<BytesMut>) {
    let Some(mut buf) = buf else { return };
    buf.clear();
    if let Ok(mut pool) = POOL.lock() {
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    }
}

/// Buffers reads from `inner` in chunks of up to `capacity` bytes, holding
/// memory only while it holds bytes not yet read. Writes pass through.
#[derive(Debug)]
pub struct IdleFreeReader<R> {
    inner: R,
    /// Bytes read and not yet taken, or `None` (no memory) while idle.
    buf: Option<BytesMut>,
    capacity: usize,
}

impl<R> Drop for IdleFreeReader<R> {
    fn drop(&mut self) {
        give(self.buf.take());
    }
}

impl<R> IdleFreeReader<R> {
    /// A reader that buffers up to `capacity` bytes of `inner` at a time.
    pub fn new(inner: R, capacity: usize) -> Self {
        IdleFreeReader {
            inner,
            buf: None,
            capacity,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Whether it holds a buffer now (not while idle).
    pub fn holds_buffer(&self) -> bool {
        self.buf.is_some()
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for IdleFreeReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.buf.as_ref().is_none_or(|b| b.is_empty()) {
            if out.remaining() >= this.capacity {
                // As large as a buffer would be: no copy.
                give(this.buf.take());
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            let capacity = this.capacity;
            let buf = this.buf.get_or_insert_with(|| take(capacity));
            // An emptied buffer gets its room back (no allocation).
            buf.reserve(capacity);
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, buf) {
                Poll::Ready(Ok(n)) if n > 0 => {}
                Poll::Ready(Ok(_)) => {
                    // End of stream: `out` stays unfilled, which says so.
                    give(this.buf.take());
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Err(e)) => {
                    give(this.buf.take());
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    // Nothing buffered and nothing to read: idle, for now.
                    give(this.buf.take());
                    return Poll::Pending;
                }
            }
        }
        if let Some(buf) = this.buf.as_mut() {
            let n = out.remaining().min(buf.len());
            out.put_slice(&buf[..n]);
            buf.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncWrite + Unpin> AsyncWrite for IdleFreeReader<R> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_everything_in_order_and_holds_nothing_when_idle() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let mut rd = IdleFreeReader::new(rx, 64 * 1024);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        tx.write_all(&data).await.unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while got.len() < data.len() {
            let n = rd.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&chunk[..n]);
            assert!(rd.holds_buffer());
        }
        assert_eq!(got, data);
        // Drained and nothing more to read: the buffer is gone.
        let idle = tokio::time::timeout(Duration::from_millis(20), rd.read(&mut chunk)).await;
        assert!(idle.is_err());
        assert!(!rd.holds_buffer());
        // Large reads bypass the buffer; the end of the stream is seen.
        tx.write_all(&data[..100_000]).await.unwrap();
        drop(tx);
        let mut big = vec![0u8; 128 * 1024];
        let n = rd.read(&mut big).await.unwrap();
        assert_eq!(&big[..n], &data[..n]);
        assert!(!rd.holds_buffer());
        let mut rest = Vec::new();
        rd.read_to_end(&mut rest).await.unwrap();
        assert_eq!(n + rest.len(), 100_000);
    }
}
