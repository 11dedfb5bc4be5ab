//! Removes partial files nobody resumed within the configured age, so
//! abandoned uploads do not hold quota forever. Only the partial areas
//! (`<home>/.ferry-partials/`, see [`super::partials`], which no user
//! operation can reach) are looked at, never the rest of a home; nothing
//! is entered, and symlinks are never followed.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustix::fs::{openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags, CWD};

use super::partials::PARTIALS_DIR;
use crate::accounts::Accounts;

/// Removes stale partials in the area of every home under `homes`;
/// returns (user, files, bytes) removed so live ledgers can be credited. A partial's age is its inode change time, which
/// every write and every change of its times or mode renews.
pub fn sweep_homes(homes: &Path, max_age: Duration) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let cutoff = SystemTime::now()
        .checked_sub(max_age)
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let Ok(root) = open_dir(CWD, homes) else {
        return out;
    };
    let Ok(users) = Dir::read_from(&root) else {
        return out;
    };
    for user in users.flatten() {
        let name = user.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        // Neither step follows a symlink.
        let Ok(home) = open_dir(root.as_fd(), name) else {
            continue;
        };
        let Ok(area) = open_dir(home.as_fd(), PARTIALS_DIR) else {
            continue;
        };
        let (files, bytes) = sweep_area(&area, cutoff);
        if files > 0 {
            let name = name.to_string_lossy().into_owned();
            tracing::info!(user = %crate::logfmt::q(&name), files, bytes, "removed stale partial files");
            out.push((name, files, bytes));
        }
    }
    out
}

fn open_dir<P: rustix::path::Arg>(
    at: BorrowedFd<'_>,
    path: P,
) -> rustix::io::Result<std::os::fd::OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    openat(at, path, flags, Mode::empty())
}

/// Removes the regular files of one area changed before `cutoff`.
fn sweep_area(area: &std::os::fd::OwnedFd, cutoff: Duration) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let Ok(entries) = Dir::read_from(area) else {
        return (0, 0);
    };
    for e in entries.flatten() {
        let name: &CStr = e.file_name();
        if !matches!(e.file_type(), FileType::RegularFile | FileType::Unknown) {
            continue;
        }
        let Ok(st) = statat(area, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            continue;
        }
        let changed = Duration::new(
            u64::try_from(st.st_ctime).unwrap_or(0),
            u32::try_from(st.st_ctime_nsec).unwrap_or(0),
        );
        if changed < cutoff && unlinkat(area, name, AtFlags::empty()).is_ok() {
            files += 1;
            bytes += u64::try_from(st.st_size).unwrap_or(0);
        }
    }
    (files, bytes)
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
            for (user, files, bytes) in removed {
                let freed = crate::ledger::Cost {
                    bytes,
                    entries: files,
                };
                accounts.credit(&user, freed).await;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_old_partials_and_nothing_else() {
        let homes = tempfile::tempdir().unwrap();
        let home = homes.path().join("alice");
        let area = home.join(PARTIALS_DIR);
        std::fs::create_dir_all(area.join("sub")).unwrap();
        std::fs::write(area.join("k1"), b"12345").unwrap();
        std::fs::write(area.join("sub/k2"), b"123").unwrap();
        std::fs::write(home.join("db.ferry-part"), b"mine").unwrap();
        // Symlinks (a home, an area, a partial): never followed.
        let elsewhere = tempfile::tempdir().unwrap();
        let theirs = elsewhere.path().join(PARTIALS_DIR);
        std::fs::create_dir(&theirs).unwrap();
        std::fs::write(theirs.join("k"), b"x").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), homes.path().join("bob")).unwrap();
        std::fs::create_dir(homes.path().join("carol")).unwrap();
        std::os::unix::fs::symlink(&theirs, homes.path().join("carol").join(PARTIALS_DIR)).unwrap();
        std::os::unix::fs::symlink(theirs.join("k"), area.join("k3")).unwrap();
        assert!(sweep_homes(homes.path(), Duration::from_secs(3600)).is_empty());
        std::thread::sleep(Duration::from_millis(20));
        let removed = sweep_homes(homes.path(), Duration::from_millis(1));
        assert_eq!(removed, vec![("alice".to_string(), 1, 5)]);
        assert!(!area.join("k1").exists());
        assert!(area.join("sub/k2").exists(), "nothing is entered");
        assert!(home.join("db.ferry-part").exists());
        assert!(theirs.join("k").exists());
    }
}
