//! Checksums recorded at upload, so a download need not hash again.
//!
//! An upload's SHA-256 is verified against the client's before the file is
//! committed. For files above [`RECORD_MIN`], ferryd keeps that hash in an
//! extended attribute of the file (`user.ferry.sha256`), stamped with the
//! file's size and modification time. A later download whose file still
//! has that size and mtime sends the recorded hash in `GetDone` instead of
//! hashing while it reads: half the CPU of a download on the server. The
//! client still hashes everything it receives, so what it checks is the
//! content against the hash verified at upload, which also catches damage
//! at rest that hashing on read would bless.
//!
//! A file changed in place without a new size or mtime (a local program
//! that restores the mtime) leaves a stale record. The client then sees a
//! mismatch and asks again with `rehash`; the server hashes as it reads,
//! finds the record wrong, logs it and drops it. Files written by ferryd
//! itself are never changed in place: uploads go to a new partial file.
//!
//! Linux only (elsewhere nothing is recorded and every download hashes);
//! a filesystem without user extended attributes records nothing either.

use std::fs::File;

/// Files bigger than this get a record. Smaller ones hash in less time
/// than the attribute costs (a tree of small files stays as fast).
pub const RECORD_MIN: u64 = super::commit::GROUP_COMMIT_MAX;

#[cfg(target_os = "linux")]
const NAME: &str = "user.ferry.sha256";
#[cfg(target_os = "linux")]
const FORMAT: u8 = 1;
/// Format byte, size, mtime seconds, mtime nanoseconds, SHA-256.
#[cfg(target_os = "linux")]
const LEN: usize = 1 + 8 + 8 + 4 + 32;

#[cfg(target_os = "linux")]
fn stamp(file: &File) -> std::io::Result<(u64, i64, u32)> {
    use std::os::unix::fs::MetadataExt;
    let md = file.metadata()?;
    // 0..1e9, so the cast is exact.
    Ok((md.len(), md.mtime(), md.mtime_nsec() as u32))
}

/// Records `sha256` as the checksum of `file`'s content as it is now
/// (times and permissions already set). Best effort: without a record a
/// download simply hashes.
pub fn record(file: &File, sha256: &[u8; 32]) {
    #[cfg(target_os = "linux")]
    {
        let Ok((size, secs, nanos)) = stamp(file) else {
            return;
        };
        let mut value = Vec::with_capacity(LEN);
        value.push(FORMAT);
        value.extend_from_slice(&size.to_le_bytes());
        value.extend_from_slice(&secs.to_le_bytes());
        value.extend_from_slice(&nanos.to_le_bytes());
        value.extend_from_slice(sha256);
        if let Err(e) = rustix::fs::fsetxattr(file, NAME, &value, rustix::fs::XattrFlags::empty()) {
            tracing::debug!(error = %e, "checksum not recorded");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, sha256);
}

/// The recorded checksum of `file`, if there is one and the file's size
/// and mtime are still those it was recorded with.
pub fn lookup(file: &File) -> Option<[u8; 32]> {
    #[cfg(target_os = "linux")]
    {
        let mut buf = [0u8; LEN];
        let n = rustix::fs::fgetxattr(file, NAME, &mut buf[..]).ok()?;
        if n != LEN || buf[0] != FORMAT {
            return None;
        }
        let (size, secs, nanos) = stamp(file).ok()?;
        let field = |at: usize, len: usize| &buf[at..at + len];
        let fresh = field(1, 8) == size.to_le_bytes()
            && field(9, 8) == secs.to_le_bytes()
            && field(17, 4) == nanos.to_le_bytes();
        fresh.then(|| {
            let mut sha = [0u8; 32];
            sha.copy_from_slice(field(21, 32));
            sha
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

/// Removes `file`'s record (it was found wrong).
pub fn forget(file: &File) {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::fs::fremovexattr(file, NAME) {
        tracing::warn!(error = %e, "could not remove a wrong checksum record");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::time::{Duration, UNIX_EPOCH};

    /// A temporary file (the tests skip where the filesystem has no user
    /// extended attributes).
    fn file_with(content: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        f.write_all(content).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789))
            .unwrap();
        (dir, f)
    }

    fn supported(f: &File) -> bool {
        rustix::fs::fsetxattr(f, "user.ferry.probe", b"1", rustix::fs::XattrFlags::empty()).is_ok()
    }

    #[test]
    fn a_record_holds_while_size_and_mtime_hold() {
        let (_d, f) = file_with(b"hello world");
        if !supported(&f) {
            eprintln!("no user xattrs here; skipped");
            return;
        }
        assert_eq!(lookup(&f), None);
        record(&f, &[7; 32]);
        assert_eq!(lookup(&f), Some([7; 32]));
        forget(&f);
        assert_eq!(lookup(&f), None);
    }

    #[test]
    fn a_new_mtime_or_size_makes_a_record_stale() {
        let (_d, f) = file_with(b"hello world");
        if !supported(&f) {
            return;
        }
        record(&f, &[7; 32]);
        f.set_modified(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_790))
            .unwrap();
        assert_eq!(lookup(&f), None, "mtime changed by a nanosecond");

        let (_d, mut f) = file_with(b"hello world");
        record(&f, &[7; 32]);
        f.seek(SeekFrom::End(0)).unwrap();
        f.write_all(b"!").unwrap();
        f.set_modified(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789))
            .unwrap();
        assert_eq!(lookup(&f), None, "size changed, mtime restored");
    }

    #[test]
    fn a_malformed_record_is_ignored() {
        let (_d, f) = file_with(b"x");
        if !supported(&f) {
            return;
        }
        rustix::fs::fsetxattr(&f, NAME, b"junk", rustix::fs::XattrFlags::empty()).unwrap();
        assert_eq!(lookup(&f), None);
    }
}
