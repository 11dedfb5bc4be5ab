//! Reading a connection's bulk data at the bulk pool's priority: the TLS
//! decryption of a streaming upload runs on tokio's threads, not on the
//! bulk pool, and would otherwise take the CPU other users' small work
//! needs at normal priority.
//!
//! While a connection streams an upload, each read of it runs with the
//! calling thread's nice value raised to `[limits] bulk_nice`, and set
//! back as the read returns, so only that decryption is niced. Setting it
//! back needs the right to lower a nice value (root, `CAP_SYS_NICE`, or
//! `RLIMIT_NICE`, e.g. `LimitNICE=+0` in the systemd unit): without it,
//! nothing is niced and ferryd says so once at start.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// A reader whose reads run niced while its connection is bulk.
pub struct NicedRead<R> {
    inner: R,
    bulk: Arc<AtomicBool>,
    nice: i32,
}

impl<R> NicedRead<R> {
    /// `inner`, read at nice `nice` while `bulk` is set (never when this
    /// process may not set a thread's nice value back).
    pub fn new(inner: R, bulk: Arc<AtomicBool>, nice: i32) -> NicedRead<R> {
        NicedRead { inner, bulk, nice }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for NicedRead<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if !this.bulk.load(Ordering::Relaxed) || !may_renice() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let _niced = Niced::enter(this.nice);
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

/// The calling thread at a higher nice value until dropped.
struct Niced(Option<i32>);

impl Niced {
    fn enter(nice: i32) -> Niced {
        match get() {
            Some(before) if nice > before && set(nice) => Niced(Some(before)),
            _ => Niced(None),
        }
    }
}

impl Drop for Niced {
    fn drop(&mut self) {
        if let Some(before) = self.0 {
            if !set(before) {
                tracing::warn!(
                    nice = before,
                    "cannot set a thread's priority back after a bulk read"
                );
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn get() -> Option<i32> {
    rustix::process::getpriority_process(None).ok()
}

#[cfg(target_os = "linux")]
fn set(nice: i32) -> bool {
    // On Linux "the calling process" is the calling thread.
    rustix::process::setpriority_process(None, nice).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn get() -> Option<i32> {
    None
}

#[cfg(not(target_os = "linux"))]
fn set(_nice: i32) -> bool {
    false
}

/// Whether this process may raise a thread's nice value and set it back
/// (tried once, on a thread of its own that ends either way).
pub fn may_renice() -> bool {
    static MAY: OnceLock<bool> = OnceLock::new();
    *MAY.get_or_init(|| {
        std::thread::spawn(|| match get() {
            Some(n) if n < 19 => set(n + 1) && set(n),
            _ => false,
        })
        .join()
        .unwrap_or(false)
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Records the nice value of the thread each read runs on.
    struct Spy(Arc<std::sync::Mutex<Vec<i32>>>);

    impl AsyncRead for Spy {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(get().unwrap_or(-100));
            }
            buf.put_slice(b"x");
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bulk_reads_run_niced_and_the_thread_is_set_back() {
        // Where the nice value cannot be set back (not root, no
        // RLIMIT_NICE), nothing is niced.
        let niced = if may_renice() { 5 } else { 0 };
        let base = get().unwrap_or(-100);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let bulk = Arc::new(AtomicBool::new(false));
        let mut r = NicedRead::new(Spy(seen.clone()), bulk.clone(), base + 5);
        let mut b = [0u8; 1];
        r.read_exact(&mut b).await.unwrap();
        bulk.store(true, Ordering::Relaxed);
        r.read_exact(&mut b).await.unwrap();
        assert_eq!(get(), Some(base), "the thread is set back after the read");
        bulk.store(false, Ordering::Relaxed);
        r.read_exact(&mut b).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![base, base + niced, base]);
    }
}
