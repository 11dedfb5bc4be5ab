//! A user's record: only the SCRAM verifier (salt, iterations, StoredKey,
//! ServerKey) and the limits. No password, and nothing from which one
//! could log in, is ever stored. The records live in the state store
//! (`store/users.rs`); older ferryd kept them in `<root>/users.toml`,
//! which is read here once, to be imported.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ferry_proto::scram::Verifier;
use serde::{Deserialize, Serialize};

use crate::secrets::private_dir;

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

/// Reads an old `users.toml` (ferryd before the database store); none if
/// there is no such file.
pub fn read_toml(file: &Path) -> anyhow::Result<Option<BTreeMap<String, UserRecord>>> {
    match std::fs::read_to_string(file) {
        Ok(text) => {
            let store: StoreFile = toml::from_str(&text)
                .with_context(|| format!("old user store {} is damaged", file.display()))?;
            Ok(Some(store.users))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// The iteration count an unknown `name` shows, drawn from `counts`
/// (each iteration count real users have, with how many users have it,
/// in any order) by a keyed hash of the name: so unknown names show
/// counts as real users' are spread, after an `[auth] iterations` change
/// too, and a name always shows the same one while the users' counts
/// stay. Costs one hash whatever the number of users. None with no users.
pub fn mock_iterations(counts: &[(u32, u64)], name: &str, secret: &[u8]) -> Option<u32> {
    use sha2::{Digest, Sha256};
    let mut counts = counts.to_vec();
    counts.sort_unstable();
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let mut h = Sha256::new();
    h.update(b"ferry mock iterations\0");
    h.update((secret.len() as u64).to_be_bytes());
    h.update(secret);
    h.update(name.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Uniform over the users (the bias of a 64-bit remainder is nil).
    let mut pick = u64::from_be_bytes(first) % total;
    for (iterations, n) in counts {
        if pick < n {
            return Some(iterations);
        }
        pick -= n;
    }
    None
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

/// Creates a user's home (mode 0700) if missing.
pub fn make_home(home: &Path) -> anyhow::Result<()> {
    private_dir(home).with_context(|| format!("cannot create home {}", home.display()))?;
    set_private(home, 0o700)
}

/// A secret for mock salts: the one an older ferryd kept in
/// `<root>/server.secret` (so unknown names look as they did), or a new
/// random one. The store keeps whichever it is given first.
pub fn new_secret(root: &Path) -> anyhow::Result<Vec<u8>> {
    let path = root.join("server.secret");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= 32 => return Ok(bytes),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let mut secret = vec![0u8; 32];
    getrandom::getrandom(&mut secret).context("no system randomness")?;
    Ok(secret)
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
    fn a_record_holds_no_password() {
        let rec = UserRecord::new("correct horse", 4096, Some(1 << 20)).unwrap();
        let text = toml::to_string(&rec).unwrap();
        assert!(!text.contains("correct horse"));
        let v = rec.verifier().unwrap();
        assert_eq!(v, Verifier::derive("correct horse", &v.salt, 4096));
    }

    #[test]
    fn unknown_names_show_counts_as_users_have_them() {
        let secret = [7u8; 32];
        assert_eq!(mock_iterations(&[], "ghost", &secret), None);
        assert_eq!(mock_iterations(&[(4096, 3)], "ghost", &secret), Some(4096));
        // Three users at 4096 for one at 5000: about three names in four
        // show 4096; each name the same every time, whatever the order.
        let counts = [(5000, 1), (4096, 3)];
        let shown: Vec<u32> = (0..4000)
            .map(|i| {
                let name = format!("ghost{i}");
                let a = mock_iterations(&counts, &name, &secret).unwrap();
                let b = mock_iterations(&[(4096, 3), (5000, 1)], &name, &secret).unwrap();
                assert_eq!(a, b);
                a
            })
            .collect();
        let low = shown.iter().filter(|&&i| i == 4096).count();
        assert!((2800..3200).contains(&low), "{low} of 4000 show 4096");
        assert_eq!(
            shown.len() - low,
            shown.iter().filter(|&&i| i == 5000).count()
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("bob_2").is_ok());
        for bad in ["", "..", "-x", "a/b", "Alice", &"x".repeat(33)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
