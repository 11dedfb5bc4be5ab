//! ferryd's configuration: a TOML file (see `assets/ferryd.toml`, which
//! documents every option), overridden by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod auth;
mod limits;
mod storage;

pub use auth::AuthConfig;
pub use limits::Limits;
pub use storage::{DatabaseConfig, StoreConfig};

/// The whole configuration. Every field has a default.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: user store, server secret, homes under `home/`.
    pub root: PathBuf,
    /// Optional access key every client must prove before logging in.
    pub access_key: Option<String>,
    /// Connection and session limits.
    pub limits: Limits,
    /// Login hardening.
    pub auth: AuthConfig,
    /// Transfer settings.
    pub transfers: TransferConfig,
    /// TLS certificate settings.
    pub tls: TlsConfig,
    /// Where the server's state lives (users, ...).
    pub database: DatabaseConfig,
    /// Where users' files live: the local disk (default) or object storage.
    pub store: StoreConfig,
    /// Serve without TLS. Unsafe outside a trusted link: file names and
    /// contents cross the wire in clear. Clients must ask for it too.
    pub insecure_plaintext: bool,
    /// Load balancers (addresses or networks such as `10.0.0.0/8`) whose
    /// connections start with a PROXY protocol v2 header carrying the
    /// client's address, which is then used as the connection's address
    /// (places, penalties, bans, logs). A connection from these must send
    /// one; a header from any other address is refused.
    pub trusted_proxies: Vec<crate::proxy::Cidr>,
}

/// TLS certificate settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (e.g. from a public CA). Without `cert` and
    /// `key`, a self-signed certificate is made under `<root>/tls/`.
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
}

/// Transfer settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferConfig {
    /// Partial files untouched for this many seconds are removed.
    pub partial_max_age_secs: u64,
    /// How often to look for stale partial files, in seconds.
    pub sweep_interval_secs: u64,
    /// Downloads send the checksum verified at upload (kept with the file)
    /// instead of hashing while reading, while the file's size and mtime
    /// are unchanged. The client verifies either way.
    pub stored_checksums: bool,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            partial_max_age_secs: 7 * 24 * 3600,
            sweep_interval_secs: 3600,
            stored_checksums: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 7272)),
            root: PathBuf::from("/var/lib/ferry"),
            access_key: None,
            limits: Limits::default(),
            auth: AuthConfig::default(),
            transfers: TransferConfig::default(),
            tls: TlsConfig::default(),
            database: DatabaseConfig::default(),
            store: StoreConfig::default(),
            insecure_plaintext: false,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Config {
    /// Reads a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        let config: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("bad config {}: {e}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that would make the server misbehave.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.store.validate()?;
        self.auth.validate()?;
        self.limits.validate()?;
        anyhow::ensure!(
            self.tls.cert.is_some() == self.tls.key.is_some(),
            "tls.cert and tls.key must be given together"
        );
        anyhow::ensure!(
            self.transfers.sweep_interval_secs > 0,
            "transfers.sweep_interval_secs must be positive"
        );
        Ok(())
    }

    /// Where homes live.
    pub fn homes(&self) -> PathBuf {
        self.root.join("home")
    }

    /// The home directory of a user.
    pub fn home_of(&self, name: &str) -> PathBuf {
        self.homes().join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses_and_matches_defaults() {
        let text = include_str!("../../assets/ferryd.toml");
        let c: Config = toml::from_str(text).expect("assets/ferryd.toml parses");
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.limits.max_connections, d.limits.max_connections);
        assert_eq!(c.limits.max_transfers, d.limits.max_transfers);
        assert_eq!(
            c.limits.max_transfers_per_user,
            d.limits.max_transfers_per_user
        );
        assert_eq!(c.limits.max_depth, d.limits.max_depth);
        assert_eq!(c.auth.iterations, d.auth.iterations);
        assert_eq!(
            c.transfers.partial_max_age_secs,
            d.transfers.partial_max_age_secs
        );
        c.validate().expect("valid");
    }
}
