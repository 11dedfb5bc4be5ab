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
    crate::users::make_home(&home)?;
    store
        .add_user(
            name,
            &UserRecord {
                max_entries,
                ..UserRecord::new(&password, config.auth.iterations, quota)?
            },
        )
        .await?;
    eprintln!("added user {name} (home {})", home.display());
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
        let (used, entries) = match Home::open(&config.home_of(&name)).and_then(|h| h.usage()) {
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
