//! Checksums of stored files (`Checksum`): SHA-256 of a byte range, hashed
//! in CPU-heavy steps on the user's share of the cores. A whole file's
//! hash is taken, when it can be, from what is already known: the hash
//! verified at upload (the disk engine's record, `transfer/stored.rs`; the
//! namespace row in object storage), else a server-wide cache of hashes
//! computed before, keyed by the file's identity and change stamps.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use ferry_proto::{ErrorKind, RemoteError, RemotePath, Reply};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::accounts::Account;
use crate::budget::{Budget, Charge, OVERHEAD};
use crate::jail::io_error;
use crate::threads::{Threads, HASH_STEP};

/// Whole-file hashes the cache keeps at most (two generations of half
/// as many each: ~100 bytes an entry, so under 1 MiB).
pub const CACHE_ENTRIES: usize = 8192;

/// What identifies one version of a file on disk: device, inode, size,
/// and the modification and change times to the nanosecond. The change
/// time cannot be set back by anyone, so a file written in place (even
/// with its mtime restored) gets a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of an open file as it is now.
    pub fn of(md: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

/// Hashes of whole files computed before, bounded: when the newer
/// generation is full, the older one is dropped and the newer becomes
/// the older (a hit in the older one is moved to the newer), which keeps
/// the recently used ones like an LRU at O(1) a look-up.
#[derive(Debug, Default)]
pub struct HashCache {
    gens: Mutex<Generations>,
}

/// The newer generation, then the older.
type Generations = (HashMap<Stamp, [u8; 32]>, HashMap<Stamp, [u8; 32]>);

impl HashCache {
    /// The hash of the file version `key`, if known.
    pub fn get(&self, key: &Stamp) -> Option<[u8; 32]> {
        let mut g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = g.0.get(key) {
            return Some(*h);
        }
        let h = g.1.remove(key)?;
        Self::put(&mut g, *key, h);
        Some(h)
    }

    /// Remembers the hash of the file version `key`.
    pub fn insert(&self, key: Stamp, sha256: [u8; 32]) {
        let mut g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        Self::put(&mut g, key, sha256);
    }

    fn put(g: &mut Generations, key: Stamp, h: [u8; 32]) {
        if g.0.len() >= CACHE_ENTRIES / 2 {
            g.1 = std::mem::take(&mut g.0);
        }
        g.0.insert(key, h);
    }

    /// Entries held (both generations).
    pub fn len(&self) -> usize {
        let g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        g.0.len() + g.1.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn internal() -> RemoteError {
    RemoteError::new(ErrorKind::Io, "internal error")
}

/// The range `offset .. offset + length` of a file of `size` bytes (to
/// the end when `length` is None), refused if it reaches past the end.
fn range(p: &RemotePath, size: u64, offset: u64, length: Option<u64>) -> Result<u64, RemoteError> {
    let left = size.checked_sub(offset).ok_or_else(|| {
        RemoteError::new(ErrorKind::BadRequest, format!("{p} has only {size} bytes"))
    })?;
    let length = length.unwrap_or(left);
    if length > left {
        return Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{p} has only {size} bytes"),
        ));
    }
    Ok(length)
}

/// A checksum request: the file is opened in one step, then hashed in
/// steps of a few MiB on the user's share of the cores (see
/// [`Threads::hash`]), unless its whole hash is known already.
pub async fn checksum(
    p: &RemotePath,
    offset: u64,
    length: Option<u64>,
    account: Arc<Account>,
    threads: &Threads,
    cache: &HashCache,
    budget: &Budget,
) -> Result<Reply, RemoteError> {
    if let Some(home) = account.home.objects() {
        return objects(home.clone(), p, offset, length, threads, budget).await;
    }
    let p2 = p.clone();
    let opened = threads
        .run(move || open(&account, &p2, offset, length))
        .await
        .ok_or_else(internal)??;
    let Opened {
        file,
        length,
        whole,
    } = opened;
    if let Some((stamp, known)) = whole {
        let known = known.or_else(|| cache.get(&stamp));
        if let Some(sha256) = known {
            return Ok(Reply::Checksum { length, sha256 });
        }
    }
    let (file, hasher) = threads
        .hash(file, length, Sha256::new())
        .await
        .ok_or_else(internal)?
        .map_err(|e| io_error(p, e))?;
    let sha256: [u8; 32] = hasher.finalize().into();
    if let Some((stamp, _)) = whole {
        // Only if the file did not change while it was hashed.
        if file.metadata().is_ok_and(|md| Stamp::of(&md) == stamp) {
            cache.insert(stamp, sha256);
        }
    }
    Ok(Reply::Checksum { length, sha256 })
}

/// A file opened for a checksum, positioned at the range's start.
struct Opened {
    file: std::fs::File,
    length: u64,
    /// For the whole file: its stamp, and the hash recorded at upload if
    /// it is still valid.
    whole: Option<(Stamp, Option<[u8; 32]>)>,
}

fn open(
    account: &Account,
    p: &RemotePath,
    offset: u64,
    length: Option<u64>,
) -> Result<Opened, RemoteError> {
    let file = crate::read::open_nonblocking(account.home.disk()?, p)?;
    let md = file.metadata().map_err(|e| io_error(p, e))?;
    if !md.is_file() {
        return Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{p} is not a regular file"),
        ));
    }
    let length = range(p, md.len(), offset, length)?;
    let whole = (offset == 0 && length == md.len())
        .then(|| (Stamp::of(&md), crate::transfer::stored::lookup(&file)));
    let mut file = file;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| io_error(p, e))?;
    Ok(Opened {
        file,
        length,
        whole,
    })
}

/// A checksum in object storage: the one recorded at upload for the
/// whole file, else the range read from the store and hashed in steps on
/// the user's share of the cores; what waits to be hashed is held in the
/// connection's budget.
async fn objects(
    home: crate::objects::home::ObjectHome,
    p: &RemotePath,
    offset: u64,
    length: Option<u64>,
    threads: &Threads,
    budget: &Budget,
) -> Result<Reply, RemoteError> {
    use crate::objects::download;
    let (h, p2) = (home.clone(), p.clone());
    let node = threads
        .run(move || download::file(&h, &p2))
        .await
        .ok_or_else(internal)??;
    let length = range(p, node.size, offset, length)?;
    if offset == 0 && length == node.size {
        if let Some(sha256) = download::stored_sha(&node) {
            return Ok(Reply::Checksum { length, sha256 });
        }
    }
    let mut pieces = Box::pin(download::body(home, node, offset..offset + length));
    let mut hasher = Sha256::new();
    let mut batch: Vec<(bytes::Bytes, Charge)> = Vec::new();
    let mut held = 0u64;
    loop {
        let piece = pieces.next().await.transpose()?;
        let last = piece.is_none();
        if let Some(piece) = piece {
            let charge = budget
                .charge(piece.len() + OVERHEAD)
                .await
                .ok_or_else(|| RemoteError::bare(ErrorKind::Cancelled))?;
            held += piece.len() as u64;
            batch.push((piece, charge));
        }
        if (last && !batch.is_empty()) || held >= HASH_STEP {
            let todo = std::mem::take(&mut batch);
            held = 0;
            hasher = threads
                .run_cpu(move || {
                    for (piece, charge) in todo {
                        hasher.update(&piece);
                        drop(charge);
                    }
                    hasher
                })
                .await
                .ok_or_else(internal)?;
        }
        if last {
            break;
        }
    }
    Ok(Reply::Checksum {
        length,
        sha256: hasher.finalize().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64) -> Stamp {
        Stamp {
            dev: 1,
            ino,
            size: 3,
            mtime: (1, 0),
            ctime: (1, 0),
        }
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_what_is_used() {
        let cache = HashCache::default();
        cache.insert(stamp(0), [7; 32]);
        for i in 1..(3 * CACHE_ENTRIES as u64) {
            cache.insert(stamp(i), [1; 32]);
            // Used all along: never dropped.
            assert_eq!(cache.get(&stamp(0)), Some([7; 32]), "after {i}");
            assert!(cache.len() <= CACHE_ENTRIES);
        }
        assert_eq!(cache.get(&stamp(1)), None, "old unused ones go");
        let mut changed = stamp(0);
        changed.ctime = (2, 0);
        assert_eq!(cache.get(&changed), None, "a changed file is another key");
    }

    #[test]
    fn ranges_past_the_end_are_refused() {
        let p = RemotePath::parse("f").unwrap();
        assert_eq!(range(&p, 10, 0, None).unwrap(), 10);
        assert_eq!(range(&p, 10, 4, None).unwrap(), 6);
        assert_eq!(range(&p, 10, 4, Some(6)).unwrap(), 6);
        assert_eq!(range(&p, 10, 10, None).unwrap(), 0);
        assert!(range(&p, 10, 4, Some(7)).is_err());
        assert!(range(&p, 10, 11, None).is_err());
    }
}
