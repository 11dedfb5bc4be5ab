//! The client's small config file: recent servers and users, the jobs run
//! at once, and named bookmarks (never passwords), in
//! `~/.config/ferry/config.toml`. It is written 0600 through a temporary
//! file and a rename, and a file that does not parse is never
//! overwritten: it is the user's to fix.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    recent: Vec<Recent>,
    /// Transfer jobs run at once (the queue's `[` and `]`).
    #[serde(default)]
    parallel: Option<usize>,
    #[serde(default)]
    bookmarks: Vec<Bookmark>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Recent {
    server: String,
    user: String,
}

/// A named place: a server, a user, and a directory on each side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bookmark {
    /// Its name.
    pub name: String,
    /// `host:port`.
    pub server: String,
    /// The user name (never a password).
    pub user: String,
    /// The remote directory.
    pub remote_dir: String,
    /// The local directory.
    pub local_dir: String,
}

/// Why the config could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No place for it (no `HOME`).
    #[error("no config directory (neither FERRY_CONFIG nor HOME is set)")]
    NoPath,
    /// Reading failed.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of this shape: left as it is.
    #[error("{} does not parse, so it is left untouched (fix or remove it): {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// Writing failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One writer at a time in this process.
static WRITING: Mutex<()> = Mutex::new(());

/// Where the config lives (`FERRY_CONFIG` overrides, for tests).
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FERRY_CONFIG") {
        return Some(PathBuf::from(p));
    }
    crate::client::tls::default_known_servers().map(|k| k.with_file_name("config.toml"))
}

fn load_from(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.into(),
                source,
            })
        }
    };
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.into(),
        source: Box::new(source),
    })
}

/// Writes `cfg` to `path`: a 0600 temporary file beside it, renamed over.
fn save_to(path: &Path, cfg: &ConfigFile) -> Result<(), ConfigError> {
    let err = |source| ConfigError::Write {
        path: path.into(),
        source,
    };
    let text = toml::to_string(cfg).map_err(|e| err(std::io::Error::other(e)))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let name = path
        .file_name()
        .map_or("config.toml".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}

/// Loads, changes and saves the config (never saving over a file that
/// did not parse).
fn update(change: impl FnOnce(&mut ConfigFile)) -> Result<(), ConfigError> {
    update_at(&path().ok_or(ConfigError::NoPath)?, change)
}

fn update_at(path: &Path, change: impl FnOnce(&mut ConfigFile)) -> Result<(), ConfigError> {
    let _one = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    let mut cfg = load_from(path)?;
    change(&mut cfg);
    save_to(path, &cfg)
}

fn load() -> Result<ConfigFile, ConfigError> {
    load_from(&path().ok_or(ConfigError::NoPath)?)
}

/// Recent (server, user) pairs, newest first (none when the file cannot
/// be read).
pub fn recent() -> Vec<(String, String)> {
    load()
        .map(|c| c.recent)
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.server, r.user))
        .collect()
}

/// Puts (server, user) first in the recent list (at most 10 kept).
pub fn remember_recent(server: &str, user: &str) {
    let entry = Recent {
        server: server.to_string(),
        user: user.to_string(),
    };
    let r = update(|cfg| {
        cfg.recent.retain(|r| *r != entry);
        cfg.recent.insert(0, entry);
        cfg.recent.truncate(10);
    });
    if let Err(e) = r {
        tracing::warn!("recent servers not saved: {e}");
    }
}

/// The bookmarks, in their order.
pub fn bookmarks() -> Result<Vec<Bookmark>, ConfigError> {
    load().map(|c| c.bookmarks)
}

/// Replaces the bookmarks.
pub fn save_bookmarks(list: Vec<Bookmark>) -> Result<(), ConfigError> {
    update(|cfg| cfg.bookmarks = list)
}

/// The jobs to run at once, as last set.
pub fn parallel() -> Option<usize> {
    load().ok().and_then(|c| c.parallel)
}

/// Remembers the jobs to run at once (the speed limit lasts a session).
pub fn remember_queue(parallel: usize, _rate: u64) {
    if load().is_ok_and(|c| c.parallel == Some(parallel)) {
        return;
    }
    if let Err(e) = update(|cfg| cfg.parallel = Some(parallel)) {
        tracing::warn!("queue settings not saved: {e}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mark(name: &str) -> Bookmark {
        Bookmark {
            name: name.into(),
            server: "h:7272".into(),
            user: "me".into(),
            remote_dir: "/photos".into(),
            local_dir: "/home/me/pics".into(),
        }
    }

    #[test]
    fn bookmarks_round_trip_beside_the_recent_list_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry/config.toml");
        let cfg = ConfigFile {
            recent: vec![Recent {
                server: "h:7272".into(),
                user: "me".into(),
            }],
            bookmarks: vec![mark("photos"), mark("work")],
            parallel: Some(2),
        };
        save_to(&path, &cfg).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = load_from(&path).unwrap();
        assert_eq!(back.bookmarks, cfg.bookmarks);
        assert_eq!(back.recent, cfg.recent);
        // What a bookmark writes is exactly its place: a field added to
        // `Bookmark` (a secret, say) shows up here.
        let text = std::fs::read_to_string(&path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let first = table["bookmarks"].as_array().unwrap()[0]
            .as_table()
            .unwrap();
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["local_dir", "name", "remote_dir", "server", "user"],
            "{text}"
        );
    }

    #[test]
    fn a_file_that_does_not_parse_is_an_error_and_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let broken = "recent = [ { server = \"h\" \n# broken";
        std::fs::write(&path, broken).unwrap();
        let e = load_from(&path).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
        assert!(e.to_string().contains("left untouched"), "{e}");
        // Saving a bookmark does not replace it.
        let e = update_at(&path, |c| c.bookmarks.push(mark("x"))).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
        // A missing file is an empty config, not an error.
        assert!(load_from(&dir.path().join("none.toml")).is_ok());
    }
}
