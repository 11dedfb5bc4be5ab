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
pub fn add(config: &Config, name: &str, quota: Option<u64>) -> anyhow::Result<()> {
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
        UserRecord::new(&password, config.auth.iterations, quota)?,
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

/// `user list`: name, quota and usage.
pub fn list(config: &Config) -> anyhow::Result<()> {
    let store = UserStore::new(&config.root);
    println!("{:<20} {:>12} {:>12}", "USER", "QUOTA", "USED");
    for (name, rec) in store.list()? {
        let used = Home::open(&store.home(&name))
            .and_then(|h| h.usage())
            .map(format_size)
            .unwrap_or_else(|_| "?".into());
        let quota = rec.quota.map_or("unlimited".into(), format_size);
        println!("{name:<20} {quota:>12} {used:>12}");
    }
    Ok(())
}
