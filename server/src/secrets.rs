//! Secrets at rest: the root, the user store, the server secret and TLS
//! keys are created private (directories 0700, files 0600, whatever the
//! umask), and ferryd warns at start about any that others can reach.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::Config;

/// Creates `dir` and any missing parents, each made here mode 0700.
/// Directories that exist are left as they are (see [`warn_if_open`]).
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        private_dir(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    // The umask may have taken bits off (or a lax one left some on).
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set permissions on {}", dir.display()))
}

/// Writes `bytes` to `path` (created or truncated), mode 0600 before the
/// first byte is written, and syncs it.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set permissions on {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The paths that hold secrets, with the permission bits that must be
/// clear on each.
fn secret_paths(config: &Config) -> Vec<(PathBuf, u32)> {
    let root = &config.root;
    let mut paths = vec![
        (root.clone(), 0o077),
        (config.homes(), 0o077),
        (root.join("ferry.db"), 0o077),
        (root.join("ferry.db-wal"), 0o077),
        (root.join("ferry.db-shm"), 0o077),
    ];
    let tls = crate::tls::cert_paths(config);
    if config.tls.key.is_some() {
        // A configured key may be shared with a group on purpose.
        paths.push((tls.key, 0o007));
    } else {
        paths.push((root.join("tls"), 0o077));
        paths.push((tls.key, 0o077));
    }
    // Files named in the config for secrets of other services; like a
    // configured TLS key, each may be shared with a group on purpose.
    let named = [
        config.store.secret_access_key_file.as_ref(),
        config.database.password_file.as_ref(),
    ];
    paths.extend(named.into_iter().flatten().map(|p| (p.clone(), 0o007)));
    paths
}

/// Paths holding secrets that group or others may reach, with their modes.
pub fn open_secrets(config: &Config) -> Vec<(PathBuf, u32)> {
    secret_paths(config)
        .into_iter()
        .filter_map(|(path, forbidden)| {
            let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o7777;
            (mode & forbidden != 0).then_some((path, mode))
        })
        .collect()
}

/// Warns about each path holding secrets that group or others may reach.
pub fn warn_if_open(config: &Config) {
    for (path, mode) in open_secrets(config) {
        let fix = if path.is_dir() { "700" } else { "600" };
        tracing::warn!(
            path = %crate::logfmt::q(path.display()),
            mode = format!("{mode:04o}"),
            "holds secrets but group or others can reach it: chmod {fix} it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let old = rustix::process::umask(rustix::fs::Mode::empty());
        let nested = dir.path().join("a/b");
        private_dir(&nested).unwrap();
        let file = nested.join("f");
        write_private(&file, b"secret").unwrap();
        rustix::process::umask(old);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"secret");
    }

    #[test]
    fn secret_files_named_in_the_config_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let s3 = dir.path().join("s3-secret");
        let db = dir.path().join("db-password");
        std::fs::write(&s3, b"k").unwrap();
        std::fs::write(&db, b"p").unwrap();
        let mut config = Config {
            root: dir.path().join("root"),
            ..Config::default()
        };
        config.store.secret_access_key_file = Some(s3.clone());
        config.database.password_file = Some(db.clone());
        let chmod = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        chmod(&s3, 0o644);
        chmod(&db, 0o640);
        let open: Vec<PathBuf> = open_secrets(&config).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            open,
            vec![s3.clone()],
            "world-readable: warned; group: allowed"
        );
        chmod(&s3, 0o600);
        chmod(&db, 0o604);
        let open: Vec<PathBuf> = open_secrets(&config).into_iter().map(|(p, _)| p).collect();
        assert_eq!(open, vec![db]);
    }
}
