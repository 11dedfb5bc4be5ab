//! Helpers for streaming file content in chunks, shared by both ends.
//!
//! [`HashPipe`] runs SHA-256 on a helper thread: on a 2-core machine,
//! hashing a large file while writing it to disk in the same thread costs
//! the sum of both; a helper thread makes it the larger of the two. Small
//! files are hashed inline, where a thread would cost more than it saves.
//! [`WriteBehind`] likewise overlaps a large file's disk writes with its
//! arrival.

use std::any::Any;
use std::collections::VecDeque;
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
        /// Chunks to hash (bounded: at most a few chunks wait), each with
        /// what the caller holds until it is hashed.
        tx: SyncSender<(Bytes, Option<Box<dyn Any + Send>>)>,
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
        let (tx, rx) = sync_channel::<(Bytes, Option<Box<dyn Any + Send>>)>(8);
        let spawned = std::thread::Builder::new()
            .name("ferry-sha256".into())
            .spawn(move || {
                let mut state = state;
                for (chunk, held) in rx {
                    state.update(&chunk);
                    drop(held);
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
        self.feed(chunk, None);
    }

    /// [`HashPipe::update`], keeping `held` until the chunk is hashed (what
    /// the chunk's memory is counted against).
    pub fn update_holding(&mut self, chunk: &Bytes, held: impl Any + Send) {
        self.feed(chunk, Some(Box::new(held)));
    }

    fn feed(&mut self, chunk: &Bytes, held: Option<Box<dyn Any + Send>>) {
        match self {
            HashPipe::Inline(state) => state.update(chunk),
            HashPipe::Threaded { tx, .. } => {
                // The helper only goes away by panicking, which `finish` reports.
                let _ = tx.send((chunk.clone(), held));
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

/// Files at least this big get a [`WriteBehind`].
pub const WRITE_BEHIND_THRESHOLD: u64 = 64 << 20;

/// Flushes a file being written in steps of this many bytes.
pub const WRITE_BEHIND_STEP: u64 = 32 << 20;

/// Starts a large file's disk writes while it is still arriving.
///
/// Linux keeps written pages in memory until its writeback timer (30 s) or
/// an fsync, so the receiver's final `fsync` before the commit would write
/// the whole file while both ends sit idle (about 0.3 s per GiB here).
/// Instead, every [`WRITE_BEHIND_STEP`] bytes the receiver's `flush` (an
/// `fdatasync`, then dropping the flushed pages from the page cache) runs
/// on a helper thread, overlapping the disk with the network; the final
/// sync then has little left to do. The helper waits on the disk, not the
/// CPU. This type only paces the flushes; the file calls are the
/// caller's, so this crate stays free of the filesystem.
///
/// The helper's file shares the caller's open file description, so an
/// error it sees might not be seen again by the caller's own `fsync`:
/// [`WriteBehind::finish`] hands it back.
#[derive(Debug)]
pub struct WriteBehind {
    helper: Option<(SyncSender<()>, JoinHandle<std::io::Result<()>>)>,
    unsynced: u64,
}

impl WriteBehind {
    /// Paces a flush over about `remaining` more bytes. `make_flush` is
    /// called only for files of [`WRITE_BEHIND_THRESHOLD`] or more (so a
    /// small file costs no handle). Smaller files, no flush (the file could
    /// not be shared) or no thread to be had: no helper, and the final sync
    /// does it all.
    pub fn new<F>(remaining: u64, make_flush: impl FnOnce() -> Option<F>) -> WriteBehind
    where
        F: FnMut() -> std::io::Result<()> + Send + 'static,
    {
        let helper = (remaining >= WRITE_BEHIND_THRESHOLD)
            .then(make_flush)
            .flatten()
            .and_then(|mut flush| {
                // One pending request at most: a busy helper skips steps.
                let (tx, rx) = sync_channel::<()>(1);
                let handle = std::thread::Builder::new()
                    .name("ferry-flush".into())
                    .spawn(move || {
                        for () in rx {
                            flush()?;
                        }
                        Ok(())
                    })
                    .ok()?;
                Some((tx, handle))
            });
        WriteBehind {
            helper,
            unsynced: 0,
        }
    }

    /// Notes `n` more bytes written; every step, asks for a flush.
    pub fn wrote(&mut self, n: u64) {
        self.unsynced += n;
        if self.unsynced >= WRITE_BEHIND_STEP {
            if let Some((tx, _)) = &self.helper {
                if tx.try_send(()).is_ok() {
                    self.unsynced = 0;
                }
            }
        }
    }

    /// Waits for the helper; the first error it met, if any. The caller
    /// still syncs the file itself before committing it.
    pub fn finish(self) -> std::io::Result<()> {
        match self.helper {
            None => Ok(()),
            Some((tx, handle)) => {
                drop(tx);
                handle
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the flush helper panicked")))
            }
        }
    }
}

/// Feeds the next `len` bytes of `r` to `hasher` (a resume's prefix).
pub fn hash_prefix(r: &mut impl Read, len: u64, hasher: &mut Sha256) -> std::io::Result<()> {
    // Sized to the prefix: every download asks, and most have none (a
    // zeroed 256 KiB per file was 3% of a tree download's client CPU).
    let mut buf = vec![0u8; len.min(256 * 1024) as usize];
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

/// Reads a file as chunks, recycling the buffers of chunks that everyone
/// is done with (sent and hashed).
///
/// A fresh buffer per chunk cost a page fault per 4 KiB: the allocator
/// hands a freed 256 KiB block back to the kernel, and the next one comes
/// back zeroed (4.5% of a 1 GiB put's CPU). The last [`ChunkReader::KEEP`]
/// chunks are remembered; when the oldest is no longer shared, its memory,
/// still mapped and warm in the cache, takes the next chunk.
#[derive(Debug, Default)]
pub struct ChunkReader {
    spent: VecDeque<Bytes>,
}

impl ChunkReader {
    /// Chunks remembered for reuse (a few more than the sending window).
    pub const KEEP: usize = 24;

    /// A reader with nothing to recycle yet.
    pub fn new() -> ChunkReader {
        ChunkReader::default()
    }

    /// Reads exactly `want` bytes as one chunk; a file that ends early is
    /// an `UnexpectedEof` error (it shrank while being sent). The buffer is
    /// not zeroed first: `read_to_end` fills spare capacity directly.
    pub fn read(&mut self, r: &mut impl Read, want: usize) -> std::io::Result<Bytes> {
        let mut buf = self.reuse(want).unwrap_or_default();
        buf.reserve_exact(want);
        r.take(want as u64).read_to_end(&mut buf)?;
        if buf.len() < want {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while being sent; try again",
            ));
        }
        let chunk = Bytes::from(buf);
        if self.spent.len() >= Self::KEEP {
            self.spent.pop_front();
        }
        self.spent.push_back(chunk.clone());
        Ok(chunk)
    }

    /// The oldest chunk's buffer, emptied, if no one else holds it.
    fn reuse(&mut self, want: usize) -> Option<Vec<u8>> {
        let oldest = self.spent.pop_front()?;
        match oldest.try_into_mut() {
            Ok(m) => {
                let mut v = Vec::from(m);
                v.clear();
                (v.capacity() >= want).then_some(v)
            }
            Err(still_shared) => {
                self.spent.push_front(still_shared);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_reader_recycles_only_buffers_no_one_holds() {
        let data: Vec<u8> = (0..64u32).map(|i| i as u8).collect();
        let mut r: &[u8] = &data;
        let mut reader = ChunkReader::new();
        let first = reader.read(&mut r, 16).unwrap();
        let at = first.as_ptr();
        // Still held: the next chunk gets other memory.
        let second = reader.read(&mut r, 16).unwrap();
        assert_ne!(second.as_ptr(), at);
        assert_eq!(&first[..], &data[..16]);
        drop(first);
        // Let go of: its memory takes the next chunk, with the right bytes.
        let third = reader.read(&mut r, 16).unwrap();
        assert_eq!(third.as_ptr(), at);
        assert_eq!(&third[..], &data[32..48]);
        assert_eq!(
            &second[..],
            &data[16..32],
            "a held chunk is never overwritten"
        );
    }

    #[test]
    fn a_chunk_reader_reads_exactly_or_fails() {
        let mut r: &[u8] = b"hello world";
        let mut reader = ChunkReader::new();
        assert_eq!(&reader.read(&mut r, 5).unwrap()[..], b"hello");
        assert_eq!(
            reader.read(&mut r, 10).unwrap_err().kind(),
            std::io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn write_behind_flushes_large_files_every_step() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let calls = Arc::new(AtomicUsize::new(0));
        let counting = || {
            let calls = calls.clone();
            Some(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        };
        let small = WriteBehind::new(WRITE_BEHIND_THRESHOLD - 1, counting);
        assert!(small.helper.is_none());
        let mut behind = WriteBehind::new(WRITE_BEHIND_THRESHOLD, counting);
        assert!(behind.helper.is_some());
        for _ in 0..(WRITE_BEHIND_STEP >> 20) + 1 {
            behind.wrote(1 << 20);
        }
        // One step was handed over: the count restarted.
        assert_eq!(behind.unsynced, 1 << 20);
        behind.finish().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn write_behind_hands_back_the_helpers_error() {
        let failing = || Some(|| Err(std::io::Error::other("disk on fire")));
        let mut behind = WriteBehind::new(WRITE_BEHIND_THRESHOLD, failing);
        behind.wrote(WRITE_BEHIND_STEP);
        let err = behind.finish().unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
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
