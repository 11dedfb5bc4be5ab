//! `ferryd user ...`: account administration on the server's root.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};

use crate::config::Config;
use crate::jail::Home;
use crate::size::format_size;
use crate::users::{UserRecord, UserStore};

/// Reads a new password: twice without echo on a terminal, otherwise one
/// line from standard input (for scripts).
pub fn read_new_password(name: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let a = rpassword::prompt_password(format!("New password for {name}: "))?;
        let b = rpassword::prompt_password("Repeat it: ")?;
        if a != b {
            bail!("the passwords do not match; nothing changed");
        }
        a
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        bail!("empty password refused");
    }
    Ok(password)
}

/// `user add`.
pub fn add(
    config: &Config,
    name: &str,
    quota: Option<u64>,
    max_entries: Option<u64>,
) -> anyhow::Result<()> {
    let store = UserStore::new(&config.root);
    crate::users::validate_name(name)?;
    if store.get(name)?.is_some() {
        bail!(
            "user {name} already exists (use 'ferryd user passwd {name}' to change the password)"
        );
    }
    let password = read_new_password(name)?;
    store.add(
        name,
        UserRecord {
            max_entries,
            ..UserRecord::new(&password, config.auth.iterations, quota)?
        },
    )?;
    eprintln!("added user {name} (home {})", store.home(name).display());
    Ok(())
}

/// `user passwd`.
pub fn passwd(config: &Config, name: &str) -> anyhow::Result<()> {
    let store = UserStore::new(&config.root);
    if store.get(name)?.is_none() {
        bail!("no user {name}");
    }
    let password = read_new_password(name)?;
    store.set_password(name, &password, config.auth.iterations)?;
    eprintln!("password changed for {name}");
    Ok(())
}

/// `user del`.
pub fn del(config: &Config, name: &str) -> anyhow::Result<()> {
    let store = UserStore::new(&config.root);
    store.remove(name)?;
    eprintln!(
        "removed user {name}; the home {} is left on disk",
        store.home(name).display()
    );
    Ok(())
}

/// `user quota`.
pub fn quota(config: &Config, name: &str, quota: Option<u64>) -> anyhow::Result<()> {
    UserStore::new(&config.root).set_quota(name, quota)?;
    eprintln!(
        "quota of {name} set to {}",
        quota.map_or("unlimited".into(), format_size)
    );
    Ok(())
}

/// `user set`: the limits given; the others are kept.
pub fn set(
    config: &Config,
    name: &str,
    quota: Option<Option<u64>>,
    max_entries: Option<Option<u64>>,
) -> anyhow::Result<()> {
    if quota.is_none() && max_entries.is_none() {
        bail!("nothing to set: give --quota or --max-entries");
    }
    let store = UserStore::new(&config.root);
    if let Some(q) = quota {
        store.set_quota(name, q)?;
    }
    if let Some(m) = max_entries {
        store.set_max_entries(name, m)?;
    }
    let rec = store
        .get(name)?
        .ok_or_else(|| anyhow::anyhow!("no user {name}"))?;
    let limits = rec.limits(config.limits.max_entries_per_user);
    eprintln!(
        "limits of {name}: quota {}, entries {}",
        limits.bytes.map_or("unlimited".into(), format_size),
        limits.entries.map_or("unlimited".into(), |e| e.to_string())
    );
    Ok(())
}

/// `user list`: name, limits and usage (bytes and entries).
pub fn list(config: &Config) -> anyhow::Result<()> {
    let store = UserStore::new(&config.root);
    println!(
        "{:<20} {:>12} {:>12} {:>10} {:>10}",
        "USER", "QUOTA", "USED", "ENTRIES", "MAX"
    );
    for (name, rec) in store.list()? {
        let (used, entries) = match Home::open(&store.home(&name)).and_then(|h| h.usage()) {
            Ok(u) => (format_size(u.bytes), u.entries.to_string()),
            Err(_) => ("?".into(), "?".into()),
        };
        let limits = rec.limits(config.limits.max_entries_per_user);
        let quota = limits.bytes.map_or("unlimited".into(), format_size);
        let max = limits.entries.map_or("unlimited".into(), |e| e.to_string());
        println!("{name:<20} {quota:>12} {used:>12} {entries:>10} {max:>10}");
    }
    Ok(())
}
