//! An upload's files on disk: its partial (created as an entry of the
//! quota, opened again to resume, written direct where that pays), the
//! file it replaces, and the syncs and settings before the rename.

use std::io::Write;
use std::sync::Arc;

use cap_std::fs::{Dir, File, OpenOptions};
use ferry_proto::direct::DirectFile;
use ferry_proto::{ErrorKind, RemoteError, RemotePath};

use super::super::stored;
use super::UploadSpec;
use crate::jail::io_error;
use crate::ledger::{Cost, Ledger, Reservation};
use crate::logfmt::q;

/// Opens the file an upload is about to replace, to hold it across the
/// rename. Never waits (a FIFO put there meanwhile opens at once) and
/// never fails the upload: without it, the rename frees the file itself.
pub(super) fn open_replaced(dir: &Dir, target: &std::path::Path) -> Option<File> {
    use cap_std::fs::OpenOptionsExt;
    let mut opts = OpenOptions::new();
    opts.read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    dir.open_with(target, &opts).ok()
}

/// What the entry at `target` costs, looked at right before a rename
/// over it (none when there is none).
pub fn replaced_cost(dir: &Dir, target: &std::path::Path) -> std::io::Result<Option<Cost>> {
    match dir.symlink_metadata(target) {
        Ok(md) => Ok(Some(Cost::of_metadata(&md))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates a partial file, counted as an entry (refused with `EDQUOT`
/// when the user's entries are all taken); `None` if one is there.
pub(super) fn create_partial(
    dir: &Dir,
    part: &std::path::Path,
    ledger: &Ledger,
) -> std::io::Result<Option<File>> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    ledger.with(|books| {
        if books.take(Cost::ENTRY).is_err() {
            return Err(std::io::Error::from_raw_os_error(libc::EDQUOT));
        }
        match dir.open_with(part, &opts) {
            Ok(file) => Ok(Some(file)),
            Err(e) => {
                books.give(Cost::ENTRY);
                match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Ok(None),
                    _ => Err(e),
                }
            }
        }
    })
}

/// Opens the partial of an upload, keeping what an earlier attempt left
/// when the upload may resume from it. Returns the file, the quota
/// reserved for the rest, and the bytes kept. Looks before touching
/// anything, so a refusal (quota) leaves the disk as it was. `replaced`:
/// the bytes of the file the upload would replace.
pub(super) fn open_partial(
    spec: &UploadSpec,
    ledger: &Arc<Ledger>,
    dir: &Dir,
    part: &std::path::Path,
    replaced: u64,
) -> Result<(File, Reservation, u64), RemoteError> {
    let path = &spec.path;
    let found = match dir.symlink_metadata(part) {
        Ok(md) if md.is_file() => md.len(),
        Ok(_) => {
            return Err(RemoteError::new(
                ErrorKind::AlreadyExists,
                format!("{path}: its partial-file name is taken"),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io_error(path, e)),
    };
    let partial = if spec.eager || !spec.resume || found > spec.size {
        0
    } else {
        found
    };
    // Refused here, before a single byte is written, if it cannot fit.
    let reservation = ledger.reserve_for(spec.size - partial, replaced, Some(path.to_string()))?;
    let file = match create_partial(dir, part, ledger).map_err(|e| io_error(path, e))? {
        Some(file) => file,
        None => {
            let mut opts = OpenOptions::new();
            opts.read(true).write(true);
            dir.open_with(part, &opts).map_err(|e| io_error(path, e))?
        }
    };
    if partial == 0 {
        // Starting afresh: what an earlier attempt left goes.
        ledger
            .with(|books| {
                let had = file.metadata()?.len();
                file.set_len(0)?;
                books.give(Cost::bytes(had));
                Ok(())
            })
            .map_err(|e| io_error(path, e))?;
    }
    Ok((file, reservation, partial))
}

/// Sets permissions and times on a verified partial, and records its
/// checksum, before it is synced and renamed.
pub(super) fn prepare(
    file: std::fs::File,
    spec: &UploadSpec,
    sha256: &[u8; 32],
) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::PermissionsExt;
    // The owner can always read and write what they uploaded.
    let mode = (spec.mode & 0o777) | 0o600;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    if let Some(t) = mtime(spec.mtime) {
        let _ = file.set_modified(t);
    }
    if spec.size > stored::RECORD_MIN {
        stored::record(&file, sha256);
    }
    Ok(file)
}

/// A large upload's partial, written direct where its file system does
/// that well (see `ferry_proto::direct`).
pub(super) struct Partial {
    /// The partial (a second handle on the same open file).
    pub(super) file: std::fs::File,
    /// Big enough to be worth it.
    pub(super) direct: bool,
}

impl DirectFile for Partial {
    fn set_direct(&mut self, on: bool) -> bool {
        (self.direct || !on) && set_direct(&self.file, on).is_ok()
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&self.file).write(buf)
    }
}

/// Switches `O_DIRECT` on or off. On only on local file systems known to
/// do direct writes well: over NFS or FUSE each would be a synchronous
/// round trip, and tmpfs has no disk to go direct to.
#[cfg(target_os = "linux")]
pub(super) fn set_direct(file: &std::fs::File, on: bool) -> std::io::Result<()> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, fstatfs, OFlags};
    const EXT4: i64 = 0xEF53;
    const XFS: i64 = 0x5846_5342;
    if on {
        // `f_type`'s width differs between architectures.
        #[allow(clippy::useless_conversion)]
        let kind = i64::from(fstatfs(file)?.f_type);
        if kind != EXT4 && kind != XFS {
            return Err(std::io::ErrorKind::Unsupported.into());
        }
    }
    let flags = fcntl_getfl(file)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    Ok(fcntl_setfl(file, flags)?)
}

/// No `O_DIRECT` here: always written through the page cache.
#[cfg(not(target_os = "linux"))]
pub(super) fn set_direct(_file: &std::fs::File, on: bool) -> std::io::Result<()> {
    if on {
        return Err(std::io::ErrorKind::Unsupported.into());
    }
    Ok(())
}

/// Syncs a directory so a rename in it survives a crash (best effort).
/// Opened for reading: cap-std's `open_dir` gives an `O_PATH` handle,
/// which cannot be synced.
pub fn sync_dir(dir: &Dir, path: &RemotePath) {
    if let Ok(d) = dir.open_with(path.to_relative(), OpenOptions::new().read(true)) {
        if let Err(e) = d.sync_all() {
            tracing::warn!(dir = %q(path), error = %e, "directory sync failed");
        }
    }
}

/// A [`WriteBehind`] step: flushes what `file` has so far, then drops those
/// pages from the page cache, so a large upload recycles a few hot pages
/// instead of taking fresh memory for every byte, and leaves other users'
/// cached files alone.
pub(super) fn flush_and_forget(file: std::fs::File) -> impl FnMut() -> std::io::Result<()> + Send {
    move || {
        file.sync_data()?;
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        Ok(())
    }
}

/// A Unix time as a `SystemTime`.
pub fn mtime(secs: i64) -> Option<std::time::SystemTime> {
    let base = std::time::UNIX_EPOCH;
    if secs >= 0 {
        base.checked_add(std::time::Duration::from_secs(secs as u64))
    } else {
        base.checked_sub(std::time::Duration::from_secs(secs.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    use ferry_proto::direct::DirectWriter;

    #[test]
    fn a_partial_written_direct_keeps_every_byte_and_ends_buffered() {
        // In the crate's directory: a disk, where /tmp may be tmpfs.
        let file = tempfile::tempfile_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let data: Vec<u8> = (0..(5 << 20) + 4097u32).map(|i| (i % 253) as u8).collect();
        let mut w = DirectWriter::new(
            Partial {
                file: file.try_clone().unwrap(),
                direct: true,
            },
            0,
        );
        for piece in data.chunks(256 * 1024 + 3) {
            w.write(piece).unwrap();
        }
        w.finish().unwrap();
        let flags = rustix::fs::fcntl_getfl(&file).unwrap();
        assert!(!flags.contains(rustix::fs::OFlags::DIRECT));
        let mut back = Vec::new();
        (&file).seek(SeekFrom::Start(0)).unwrap();
        (&file).read_to_end(&mut back).unwrap();
        assert!(back == data);
    }

    #[test]
    fn the_replaced_file_is_held_without_waiting_or_following_links() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        std::fs::write(tmp.path().join("old"), b"old content").unwrap();
        let mut held = open_replaced(&dir, std::path::Path::new("old")).unwrap();
        dir.rename("old", &dir, "gone").unwrap();
        dir.remove_file("gone").unwrap();
        let mut back = String::new();
        held.read_to_string(&mut back).unwrap();
        assert_eq!(back, "old content", "still readable: not freed yet");

        // A FIFO would block a plain open until a writer came.
        rustix::fs::mknodat(
            &dir,
            "fifo",
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(open_replaced(&dir, std::path::Path::new("fifo")).is_some());
        std::os::unix::fs::symlink("fifo", tmp.path().join("link")).unwrap();
        assert!(open_replaced(&dir, std::path::Path::new("link")).is_none());
    }

    #[test]
    fn a_flush_step_keeps_the_content() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let mut flush = flush_and_forget(file.try_clone().unwrap());
        flush().unwrap();
        file.write_all(&data).unwrap();
        flush().unwrap();
        let mut back = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 2 * data.len());
        assert!(back[..data.len()] == data[..] && back[data.len()..] == data[..]);
    }
}
