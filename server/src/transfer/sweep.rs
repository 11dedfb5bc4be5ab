//! Removes partial files nobody resumed within the configured age, so
//! abandoned uploads do not hold quota forever.

use std::ffi::CStr;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_proto::msg::PARTIAL_SUFFIX;

use crate::accounts::Accounts;
use crate::walk::{walk, Flow, Reread, Visit};

/// Removes stale partials under every home; returns (files, bytes) removed
/// per user so live ledgers can be credited.
pub fn sweep_homes(homes: &Path, max_age: Duration) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let Ok(users) = std::fs::read_dir(homes) else {
        return out;
    };
    let cutoff = SystemTime::now()
        .checked_sub(max_age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    for user in users.flatten() {
        let name = user.file_name().to_string_lossy().into_owned();
        let (mut files, mut bytes) = (0, 0);
        sweep_dir(&user.path(), cutoff, &mut files, &mut bytes);
        if files > 0 {
            tracing::info!(user = %name, files, bytes, "removed stale partial files");
            out.push((name, files, bytes));
        }
    }
    out
}

fn sweep_dir(dir: &Path, cutoff: SystemTime, files: &mut u64, bytes: &mut u64) {
    use rustix::fs::{openat, statat, unlinkat, AtFlags, FileType, Mode, OFlags, CWD};
    struct Sweep {
        cutoff: Duration,
        files: u64,
        bytes: u64,
    }
    impl Visit for Sweep {
        fn entry(
            &mut self,
            at: BorrowedFd<'_>,
            name: &CStr,
            kind: FileType,
            _: usize,
        ) -> std::io::Result<Flow> {
            if kind == FileType::Directory {
                return Ok(Flow::Enter);
            }
            if kind != FileType::RegularFile
                || !name.to_bytes().ends_with(PARTIAL_SUFFIX.as_bytes())
            {
                return Ok(Flow::Next);
            }
            let Ok(st) = statat(at, name, AtFlags::SYMLINK_NOFOLLOW) else {
                return Ok(Flow::Next);
            };
            let mtime = Duration::new(
                u64::try_from(st.st_mtime).unwrap_or(0),
                u32::try_from(st.st_mtime_nsec).unwrap_or(0),
            );
            if mtime < self.cutoff && unlinkat(at, name, AtFlags::empty()).is_ok() {
                self.files += 1;
                self.bytes += u64::try_from(st.st_size).unwrap_or(0);
            }
            Ok(Flow::Next)
        }
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(root) = openat(CWD, dir, flags, Mode::empty()) else {
        return;
    };
    let cutoff = cutoff
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut sweep = Sweep {
        cutoff,
        files: 0,
        bytes: 0,
    };
    if let Err(e) = walk(&root, Reread::Skip, &mut sweep) {
        tracing::warn!(dir = %dir.display(), error = %e, "sweeping partial files stopped");
    }
    *files += sweep.files;
    *bytes += sweep.bytes;
}

/// Sweeps now and then every `interval`, crediting live users' ledgers.
pub async fn run(
    homes: std::path::PathBuf,
    accounts: Arc<Accounts>,
    max_age: Duration,
    interval: Duration,
) {
    loop {
        let h = homes.clone();
        if let Ok(removed) = tokio::task::spawn_blocking(move || sweep_homes(&h, max_age)).await {
            for (user, _, bytes) in removed {
                accounts.credit(&user, bytes).await;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_old_partials() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("alice/sub");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(".a.ferry-part"), b"12345").unwrap();
        std::fs::write(home.join("keep.txt"), b"x").unwrap();
        assert!(sweep_homes(dir.path(), Duration::from_secs(3600)).is_empty());
        std::thread::sleep(Duration::from_millis(20));
        let removed = sweep_homes(dir.path(), Duration::from_millis(1));
        assert_eq!(removed, vec![("alice".to_string(), 1, 5)]);
        assert!(!home.join(".a.ferry-part").exists());
        assert!(home.join("keep.txt").exists());
    }
}
