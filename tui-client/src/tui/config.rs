//! The client's small config file: recent servers and users (never
//! passwords), in `~/.config/ferry/config.toml`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    recent: Vec<Recent>,
    /// Transfer jobs run at once (the queue's `[` and `]`).
    #[serde(default)]
    parallel: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Recent {
    server: String,
    user: String,
}

/// Where the config lives (`FERRY_CONFIG` overrides, for tests).
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FERRY_CONFIG") {
        return Some(PathBuf::from(p));
    }
    crate::client::tls::default_known_servers().map(|k| k.with_file_name("config.toml"))
}

fn load() -> ConfigFile {
    path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| toml::from_str(&t).ok())
        .unwrap_or_default()
}

/// Recent (server, user) pairs, newest first.
pub fn recent() -> Vec<(String, String)> {
    load()
        .recent
        .into_iter()
        .map(|r| (r.server, r.user))
        .collect()
}

/// Puts (server, user) first in the recent list (at most 10 kept).
pub fn remember_recent(server: &str, user: &str) {
    let Some(file) = path() else { return };
    let mut cfg = load();
    let entry = Recent {
        server: server.to_string(),
        user: user.to_string(),
    };
    cfg.recent.retain(|r| *r != entry);
    cfg.recent.insert(0, entry);
    cfg.recent.truncate(10);
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(text) = toml::to_string(&cfg) {
        let _ = std::fs::write(file, text);
    }
}

/// The jobs to run at once, as last set.
pub fn parallel() -> Option<usize> {
    load().parallel
}

/// Remembers the jobs to run at once (the speed limit lasts a session).
pub fn remember_queue(parallel: usize, _rate: u64) {
    let Some(file) = path() else { return };
    let mut cfg = load();
    if cfg.parallel == Some(parallel) {
        return;
    }
    cfg.parallel = Some(parallel);
    if let Ok(text) = toml::to_string(&cfg) {
        let _ = std::fs::write(file, text);
    }
}
