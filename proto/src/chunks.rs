//! Helpers for streaming file content in chunks, shared by both ends.
//!
//! [`HashPipe`] runs SHA-256 on a helper thread: on a 2-core machine,
//! hashing a large file while writing it to disk in the same thread costs
//! the sum of both; a helper thread makes it the larger of the two. Small
//! files are hashed inline, where a thread would cost more than it saves.

use std::io::Read;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Below this many bytes the hash runs inline.
pub const THREAD_THRESHOLD: u64 = 4 << 20;

/// A running SHA-256 fed with chunks.
#[derive(Debug)]
pub enum HashPipe {
    /// Hashing in the caller's thread.
    Inline(Sha256),
    /// Hashing on a helper thread.
    Threaded {
        /// Chunks to hash (bounded: at most a few chunks wait).
        tx: SyncSender<Bytes>,
        /// The helper.
        handle: JoinHandle<Sha256>,
    },
}

impl HashPipe {
    /// Continues `state` over about `remaining` more bytes.
    pub fn new(state: Sha256, remaining: u64) -> HashPipe {
        if remaining < THREAD_THRESHOLD {
            return HashPipe::Inline(state);
        }
        let (tx, rx) = sync_channel::<Bytes>(8);
        let spawned = std::thread::Builder::new()
            .name("ferry-sha256".into())
            .spawn(move || {
                let mut state = state;
                for chunk in rx {
                    state.update(&chunk);
                }
                state
            });
        match spawned {
            Ok(handle) => HashPipe::Threaded { tx, handle },
            // No thread to be had: hash inline. The state moved into the
            // failed closure, so this only happens before any byte.
            Err(_) => HashPipe::Inline(Sha256::new()),
        }
    }

    /// Adds a chunk (a cheap reference-counted clone when threaded).
    pub fn update(&mut self, chunk: &Bytes) {
        match self {
            HashPipe::Inline(state) => state.update(chunk),
            HashPipe::Threaded { tx, .. } => {
                // The helper only goes away by panicking, which `finish` reports.
                let _ = tx.send(chunk.clone());
            }
        }
    }

    /// The digest of everything fed, or `None` if the helper thread died.
    pub fn finish(self) -> Option<[u8; 32]> {
        match self {
            HashPipe::Inline(state) => Some(state.finalize().into()),
            HashPipe::Threaded { tx, handle } => {
                drop(tx);
                handle.join().ok().map(|s| s.finalize().into())
            }
        }
    }
}

/// Feeds the next `len` bytes of `r` to `hasher` (a resume's prefix).
pub fn hash_prefix(r: &mut impl Read, len: u64, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file shorter than expected",
            ));
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

/// Initial read buffer of a connection: a few frames' worth, so frames
/// split off it leave room for the next ones and the allocation is reused
/// once they are dropped (fewer fresh pages to fault in and zero).
pub const READ_BUFFER: usize = 4 * crate::MAX_FRAME;

/// Reads exactly `want` bytes as one chunk; a file that ends early is an
/// `UnexpectedEof` error (it shrank while being sent). The buffer is not
/// zeroed first: `read_to_end` fills spare capacity directly.
pub fn read_chunk(r: &mut impl Read, want: usize) -> std::io::Result<Bytes> {
    let mut buf = Vec::with_capacity(want);
    r.take(want as u64).read_to_end(&mut buf)?;
    if buf.len() < want {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file shrank while being sent; try again",
        ));
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_chunk_reads_exactly_or_fails() {
        let mut r: &[u8] = b"hello world";
        assert_eq!(&read_chunk(&mut r, 5).unwrap()[..], b"hello");
        assert_eq!(
            read_chunk(&mut r, 10).unwrap_err().kind(),
            std::io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn threaded_and_inline_agree() {
        let data = Bytes::from((0..10_000_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let expected: [u8; 32] = Sha256::digest(&data).into();
        for remaining in [0, THREAD_THRESHOLD] {
            let mut head = Sha256::new();
            head.update(&data[..1000]);
            let mut pipe = HashPipe::new(head, remaining);
            for chunk in data.slice(1000..).chunks(65536) {
                pipe.update(&Bytes::copy_from_slice(chunk));
            }
            assert_eq!(pipe.finish(), Some(expected));
        }
    }
}
