//! `ferryd user ...`: account administration in the server's state store
//! (the same database the running nodes use).

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};

use crate::config::Config;
use crate::jail::Home;
use crate::size::format_size;
use crate::store::Store;
use crate::users::UserRecord;

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

/// The state store a `ferryd user` command works on: the same database
/// the server uses (`[database]`, `--database`).
pub async fn open(config: &Config) -> anyhow::Result<Store> {
    Store::open(config)
        .await
        .context("cannot open the state store")
}

/// `user add`.
pub async fn add(
    store: &Store,
    config: &Config,
    name: &str,
    quota: Option<u64>,
    max_entries: Option<u64>,
) -> anyhow::Result<()> {
    crate::users::validate_name(name)?;
    if store.user(name).await?.is_some() {
        bail!(
            "user {name} already exists (use 'ferryd user passwd {name}' to change the password)"
        );
    }
    let password = read_new_password(name)?;
    let home = config.home_of(name);
    if config.store.url.is_none() {
        crate::users::make_home(&home)?;
    }
    store
        .add_user(
            name,
            &UserRecord {
                max_entries,
                ..UserRecord::new(&password, config.auth.iterations, quota)?
            },
        )
        .await?;
    match &config.store.url {
        Some(url) => eprintln!("added user {name} (files in {url}/{name})"),
        None => eprintln!("added user {name} (home {})", home.display()),
    }
    Ok(())
}

/// `user passwd`.
pub async fn passwd(store: &Store, config: &Config, name: &str) -> anyhow::Result<()> {
    let Some(old) = store.user(name).await? else {
        bail!("no user {name}");
    };
    let password = read_new_password(name)?;
    let new = UserRecord::new(&password, config.auth.iterations, old.quota)?;
    store.set_verifier(name, &new).await?;
    eprintln!("password changed for {name}");
    Ok(())
}

/// `user del`.
pub async fn del(store: &Store, config: &Config, name: &str) -> anyhow::Result<()> {
    store.remove_user(name).await?;
    eprintln!(
        "removed user {name}; the home {} is left on disk",
        config.home_of(name).display()
    );
    Ok(())
}

/// `user quota`.
pub async fn quota(store: &Store, name: &str, quota: Option<u64>) -> anyhow::Result<()> {
    store.set_quota(name, quota).await?;
    eprintln!(
        "quota of {name} set to {}",
        quota.map_or("unlimited".into(), format_size)
    );
    Ok(())
}

/// `user set`: the limits given; the others are kept.
pub async fn set(
    store: &Store,
    config: &Config,
    name: &str,
    quota: Option<Option<u64>>,
    max_entries: Option<Option<u64>>,
) -> anyhow::Result<()> {
    if quota.is_none() && max_entries.is_none() {
        bail!("nothing to set: give --quota or --max-entries");
    }
    if let Some(q) = quota {
        store.set_quota(name, q).await?;
    }
    if let Some(m) = max_entries {
        store.set_max_entries(name, m).await?;
    }
    let rec = store
        .user(name)
        .await?
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
pub async fn list(store: &Store, config: &Config) -> anyhow::Result<()> {
    println!(
        "{:<20} {:>12} {:>12} {:>10} {:>10}",
        "USER", "QUOTA", "USED", "ENTRIES", "MAX"
    );
    for (name, rec) in store.users().await? {
        let (used, entries) = match measure(store, config, &name).await {
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

/// What a user's home holds: her home on disk walked, or her namespace
/// in the database summed (files in object storage).
async fn measure(
    store: &Store,
    config: &Config,
    name: &str,
) -> anyhow::Result<crate::ledger::Cost> {
    if config.store.url.is_some() {
        return Ok(store.ns_usage(name).await?);
    }
    let home = config.home_of(name);
    Ok(
        tokio::task::spawn_blocking(move || Home::open(&home).and_then(|h| h.usage()))
            .await
            .context("the walk stopped")??,
    )
}

/// One user's line of `ferryd check`.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// The store and the disk agree.
    Same,
    /// They differ (and were fixed, if asked).
    Differs { fixed: bool },
    /// The store had no usage yet (recorded, if asked).
    Unrecorded { fixed: bool },
    /// Sessions are live: uploads in flight make the figures move, so
    /// nothing is compared or changed.
    Busy(usize),
}

/// `ferryd check [USER] [--fix]`: compares each user's usage in the
/// store with her home on disk, and with `fix` makes the store say what
/// the disk holds. Users with live sessions (on any node) are skipped.
/// Returns whether everything agrees (or was fixed).
pub async fn check(
    store: &Store,
    config: &Config,
    user: Option<&str>,
    fix: bool,
) -> anyhow::Result<bool> {
    let names: Vec<String> = match user {
        Some(name) => {
            if store.user(name).await?.is_none() {
                bail!("no user {name}");
            }
            vec![name.to_string()]
        }
        None => store.users().await?.into_iter().map(|(n, _)| n).collect(),
    };
    let expiry = std::time::Duration::from_secs(config.database.node_expiry_secs);
    println!(
        "{:<20} {:>14} {:>14} {:>10} {:>10}  STATUS",
        "USER", "STORE BYTES", "DISK BYTES", "STORE ENT", "DISK ENT"
    );
    let mut all_good = true;
    for name in names {
        let live = store.sessions_of(&name, expiry).await?;
        let stored = store.usage(&name).await?;
        if live > 0 {
            println!(
                "{name:<20} {:>14} {:>14} {:>10} {:>10}  skipped: {live} live sessions",
                "-", "-", "-", "-"
            );
            continue;
        }
        let disk = measure(store, config, &name)
            .await
            .with_context(|| format!("cannot measure the home of {name}"))?;
        let status = match stored {
            Some(u) if u.0 == disk => Checked::Same,
            Some(_) => Checked::Differs { fixed: fix },
            None => Checked::Unrecorded { fixed: fix },
        };
        if fix && status != Checked::Same {
            store.set_usage(&name, disk).await?;
        }
        let (sb, se) = stored.map_or(("none".into(), "none".into()), |u| {
            (u.0.bytes.to_string(), u.0.entries.to_string())
        });
        let said = match status {
            Checked::Same => "ok",
            Checked::Differs { fixed: true } => "differed: fixed",
            Checked::Differs { fixed: false } => "DIFFERS (--fix to correct)",
            Checked::Unrecorded { fixed: true } => "not recorded: recorded",
            Checked::Unrecorded { fixed: false } => "not recorded yet",
            Checked::Busy(_) => "",
        };
        if matches!(status, Checked::Differs { fixed: false }) {
            all_good = false;
        }
        println!(
            "{name:<20} {sb:>14} {:>14} {se:>10} {:>10}  {said}",
            disk.bytes, disk.entries
        );
    }
    Ok(all_good)
}
