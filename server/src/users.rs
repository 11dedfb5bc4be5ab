//! The user store: `<root>/users.toml`, holding per user only the SCRAM
//! verifier (salt, iterations, StoredKey, ServerKey) and the quota. No
//! password, and nothing from which one could log in, is ever stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ferry_proto::scram::Verifier;
use serde::{Deserialize, Serialize};

use crate::secrets::{private_dir, write_private};

/// One user as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// PBKDF2 salt, base64.
    pub salt: String,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// SCRAM StoredKey, base64.
    pub stored_key: String,
    /// SCRAM ServerKey, base64.
    pub server_key: String,
    /// Quota in bytes; none means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<u64>,
    /// Most entries (files, directories, symlinks) the home may hold; none
    /// means the server's `limits.max_entries_per_user`, 0 unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u64>,
}

impl UserRecord {
    /// A record for a new password.
    pub fn new(password: &str, iterations: u32, quota: Option<u64>) -> anyhow::Result<UserRecord> {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).context("no system randomness")?;
        let v = Verifier::derive(password, &salt, iterations);
        Ok(UserRecord::from_verifier(&v, quota))
    }

    fn from_verifier(v: &Verifier, quota: Option<u64>) -> UserRecord {
        UserRecord {
            salt: B64.encode(&v.salt),
            iterations: v.iterations,
            stored_key: B64.encode(v.stored_key),
            server_key: B64.encode(v.server_key),
            quota,
            max_entries: None,
        }
    }

    /// The user's limits, with the server's entry limit (0: none) where
    /// the record sets none.
    pub fn limits(&self, default_max_entries: u64) -> crate::ledger::Limits {
        let entries = self.max_entries.unwrap_or(default_max_entries);
        crate::ledger::Limits {
            bytes: self.quota,
            entries: (entries > 0).then_some(entries),
        }
    }

    /// The SCRAM verifier, if the record is well-formed.
    pub fn verifier(&self) -> anyhow::Result<Verifier> {
        let key = |s: &str, what: &str| -> anyhow::Result<[u8; 32]> {
            let bytes = B64
                .decode(s)
                .with_context(|| format!("bad {what} encoding"))?;
            bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{what} has the wrong length"))
        };
        Ok(Verifier {
            salt: B64.decode(&self.salt).context("bad salt encoding")?,
            iterations: self.iterations,
            stored_key: key(&self.stored_key, "stored_key")?,
            server_key: key(&self.server_key, "server_key")?,
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    #[serde(default)]
    users: BTreeMap<String, UserRecord>,
}

/// A user's record for a login, and what an unknown name shows instead.
#[derive(Debug)]
pub struct Login {
    /// The user's record; none for an unknown name.
    pub record: Option<UserRecord>,
    /// The iteration count of the mock verifier an unknown name gets.
    pub mock_iterations: u32,
}

/// The iteration count an unknown `name` shows: that of the real user
/// with the highest keyed hash of (name, user) (rendezvous hashing). So
/// unknown names show counts as real users' are spread, after an
/// `[auth] iterations` change too; a name always shows the same one while
/// the users do, and adding or removing a user moves only the names that
/// user wins or held. None with no users.
fn mock_iterations(store: &StoreFile, name: &str, secret: &[u8]) -> Option<u32> {
    use sha2::{Digest, Sha256};
    store
        .users
        .iter()
        .map(|(user, rec)| {
            let mut h = Sha256::new();
            h.update(b"ferry mock iterations\0");
            h.update((secret.len() as u64).to_be_bytes());
            h.update(secret);
            h.update(name.as_bytes());
            h.update(b"\0");
            h.update(user.as_bytes());
            (h.finalize(), rec.iterations)
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, iterations)| iterations)
}

/// A version of the user store: equal generations, equal contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation(Option<[u64; 7]>);

/// The store on disk. Reads are fresh each time, so `ferryd user ...`
/// changes take effect on the next login without a restart.
#[derive(Clone, Debug)]
pub struct UserStore {
    root: PathBuf,
}

/// Checks a user name: 1-32 of `a-z 0-9 _ . -`, not starting with `.` or `-`.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if name.is_empty() || name.len() > 32 || !ok_chars || name.starts_with(['.', '-']) {
        bail!("invalid user name {name:?}: use 1 to 32 of a-z, 0-9, '_', '.', '-', not starting with '.' or '-'");
    }
    Ok(())
}

impl UserStore {
    /// The store under a server root.
    pub fn new(root: &Path) -> UserStore {
        UserStore {
            root: root.to_path_buf(),
        }
    }

    fn file(&self) -> PathBuf {
        self.root.join("users.toml")
    }

    /// The home directory of a user.
    pub fn home(&self, name: &str) -> PathBuf {
        self.root.join("home").join(name)
    }

    fn read(&self) -> anyhow::Result<StoreFile> {
        match std::fs::read_to_string(self.file()) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("user store {} is damaged", self.file().display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreFile::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.file().display())),
        }
    }

    fn write(&self, store: &StoreFile) -> anyhow::Result<()> {
        private_dir(&self.root)?;
        let text = toml::to_string_pretty(store).context("cannot encode user store")?;
        // Salts and keys are an offline cracking target: mode 0600.
        let tmp = self.root.join(".users.toml.tmp");
        write_private(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, self.file())
            .with_context(|| format!("cannot replace {}", self.file().display()))?;
        Ok(())
    }

    /// Changes whenever the store is written (here: the file's identity,
    /// size and times), so a running server can tell cheaply when to read
    /// it again.
    pub fn generation(&self) -> anyhow::Result<Generation> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::symlink_metadata(self.file()) {
            Ok(md) => Ok(Generation(Some([
                md.dev(),
                md.ino(),
                md.size(),
                md.mtime() as u64,
                md.mtime_nsec() as u64,
                md.ctime() as u64,
                md.ctime_nsec() as u64,
            ]))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Generation(None)),
            Err(e) => Err(e).with_context(|| format!("cannot look at {}", self.file().display())),
        }
    }

    /// Looks a user up.
    pub fn get(&self, name: &str) -> anyhow::Result<Option<UserRecord>> {
        Ok(self.read()?.users.remove(name))
    }

    /// What a login needs from the store: `name`'s record, if any, and the
    /// iteration count a mock verifier for `name` shows. Both are worked
    /// out for every name, real or not, in one read (same work either way).
    pub fn for_login(&self, name: &str, secret: &[u8], default_iterations: u32) -> Login {
        let mut store = self.read().unwrap_or_default();
        let mock_iterations = mock_iterations(&store, name, secret).unwrap_or(default_iterations);
        Login {
            record: store.users.remove(name),
            mock_iterations,
        }
    }

    /// All users, sorted by name.
    pub fn list(&self) -> anyhow::Result<Vec<(String, UserRecord)>> {
        Ok(self.read()?.users.into_iter().collect())
    }

    /// Adds a user and creates their home (mode 0700).
    pub fn add(&self, name: &str, record: UserRecord) -> anyhow::Result<()> {
        validate_name(name)?;
        let mut store = self.read()?;
        if store.users.contains_key(name) {
            bail!("user {name} already exists (use 'ferryd user passwd {name}' to change the password)");
        }
        let home = self.home(name);
        private_dir(&home).with_context(|| format!("cannot create home {}", home.display()))?;
        set_private(&home, 0o700)?;
        store.users.insert(name.to_string(), record);
        self.write(&store)
    }

    /// Replaces a user's password (the quota is kept).
    pub fn set_password(&self, name: &str, password: &str, iterations: u32) -> anyhow::Result<()> {
        let mut store = self.read()?;
        let Some(rec) = store.users.get_mut(name) else {
            bail!("no user {name}");
        };
        *rec = UserRecord {
            max_entries: rec.max_entries,
            ..UserRecord::new(password, iterations, rec.quota)?
        };
        self.write(&store)
    }

    /// Changes a user's entry limit (none: the server's default).
    pub fn set_max_entries(&self, name: &str, max_entries: Option<u64>) -> anyhow::Result<()> {
        let mut store = self.read()?;
        let Some(rec) = store.users.get_mut(name) else {
            bail!("no user {name}");
        };
        rec.max_entries = max_entries;
        self.write(&store)
    }

    /// Changes a user's quota.
    pub fn set_quota(&self, name: &str, quota: Option<u64>) -> anyhow::Result<()> {
        let mut store = self.read()?;
        let Some(rec) = store.users.get_mut(name) else {
            bail!("no user {name}");
        };
        rec.quota = quota;
        self.write(&store)
    }

    /// Removes a user from the store. The home is left on disk.
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let mut store = self.read()?;
        if store.users.remove(name).is_none() {
            bail!("no user {name}");
        }
        self.write(&store)
    }

    /// The server's secret for mock salts, created on first use (mode 0600).
    pub fn server_secret(&self) -> anyhow::Result<Vec<u8>> {
        let path = self.root.join("server.secret");
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => return Ok(bytes),
            Ok(_) => bail!("{} is too short; delete it to regenerate", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        private_dir(&self.root)?;
        let mut secret = vec![0u8; 32];
        getrandom::getrandom(&mut secret).context("no system randomness")?;
        let tmp = self.root.join(".server.secret.tmp");
        write_private(&tmp, &secret)?;
        std::fs::rename(&tmp, &path)?;
        Ok(secret)
    }
}

fn set_private(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions on {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_holds_no_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::new(dir.path());
        store
            .add(
                "alice",
                UserRecord::new("correct horse", 4096, Some(1 << 20)).unwrap(),
            )
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join("users.toml")).unwrap();
        assert!(!text.contains("correct horse"));
        let rec = store.get("alice").unwrap().unwrap();
        let v = rec.verifier().unwrap();
        assert_eq!(v, Verifier::derive("correct horse", &v.salt, 4096));
        assert!(dir.path().join("home/alice").is_dir());
        assert!(store.add("alice", rec).is_err());
        store.remove("alice").unwrap();
        assert!(store.get("alice").unwrap().is_none());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("bob_2").is_ok());
        for bad in ["", "..", "-x", "a/b", "Alice", &"x".repeat(33)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::new(dir.path());
        assert_eq!(
            store.server_secret().unwrap(),
            store.server_secret().unwrap()
        );
    }
}
