//! ferryd: thin binary over the ferry-server library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_server::size::parse_size;
use ferry_server::store::Store;
use ferry_server::{admin, Config};

#[derive(Parser)]
#[command(name = "ferryd", version, about = "The Ferry file server")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Where {
    /// Configuration file (see assets/ferryd.toml).
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// Data directory: homes, TLS files and, by default, the state
    /// database ferry.db (overrides the config's root).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// State database shared by several nodes: postgres://USER@HOST:PORT/DB
    /// (overrides [database] url). The password comes from
    /// FERRY_DATABASE_PASSWORD or [database] password_file, never from
    /// here. Also read from FERRY_DATABASE_URL.
    #[arg(long, global = true, env = "FERRY_DATABASE_URL")]
    database: Option<String>,
    /// Where files live: s3://BUCKET/PREFIX for S3-compatible object
    /// storage (overrides [store] url); endpoint, region and credentials
    /// from [store] or AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, never from here. Default: the root's disk.
    #[arg(long, global = true, env = "FERRY_STORE_URL")]
    store: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve until SIGINT or SIGTERM.
    Serve {
        #[command(flatten)]
        at: Where,
        /// Address to listen on, e.g. 0.0.0.0:7272 or 127.0.0.1:0.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Serve without TLS. UNSAFE outside a trusted link; clients must
        /// also pass --insecure-plaintext.
        #[arg(long)]
        insecure_plaintext: bool,
        /// A load balancer's address or network (e.g. 10.0.0.5 or
        /// 10.0.0.0/24) whose connections start with a PROXY protocol v2
        /// header (HAProxy: send-proxy-v2); repeatable, added to the
        /// config's trusted_proxies.
        #[arg(long = "trusted-proxy", value_name = "CIDR")]
        trusted_proxy: Vec<ferry_server::proxy::Cidr>,
    },
    /// Print the TLS certificate's SHA-256 fingerprint, to give to users
    /// so they can check it on first contact.
    Fingerprint {
        #[command(flatten)]
        at: Where,
    },
    /// Compare each user's usage in the state store with her home on
    /// disk (files changed behind ferryd's back, a node killed mid-way);
    /// exit code 1 if they differ. Users with live sessions are skipped.
    Check {
        #[command(flatten)]
        at: Where,
        /// Only this user.
        user: Option<String>,
        /// Make the store say what the disk holds.
        #[arg(long)]
        fix: bool,
    },
    /// Manage users.
    User {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        cmd: UserCmd,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is asked twice (or read from stdin).
    Add {
        name: String,
        /// Disk quota, e.g. 10MiB or 5GB.
        #[arg(long, value_parser = parse_size)]
        quota: Option<u64>,
        /// Most files, directories and symlinks the home may hold (0: no
        /// limit); without it, the server's limits.max_entries_per_user.
        #[arg(long)]
        max_entries: Option<u64>,
    },
    /// Change a user's password.
    Passwd { name: String },
    /// Remove a user (the home stays on disk).
    Del { name: String },
    /// Set or clear ("none") a user's quota.
    Quota { name: String, size: String },
    /// Change a user's limits; what is not given is kept.
    Set {
        name: String,
        /// Disk quota, e.g. 10MiB, or "none".
        #[arg(long)]
        quota: Option<String>,
        /// Most files, directories and symlinks the home may hold (0: no
        /// limit), or "default" for the server's limits.max_entries_per_user.
        #[arg(long)]
        max_entries: Option<String>,
    },
    /// List users with quota and usage.
    List,
}

/// A quota argument: a size, or "none" for unlimited.
fn quota_arg(size: &str) -> anyhow::Result<Option<u64>> {
    if size == "none" {
        return Ok(None);
    }
    Ok(Some(parse_size(size).map_err(anyhow::Error::msg)?))
}

fn load(at: &Where) -> anyhow::Result<Config> {
    let mut config = match &at.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(root) = &at.root {
        config.root = root.clone();
    }
    if let Some(url) = &at.database {
        if url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .is_some_and(|(user, _)| user.contains(':'))
        {
            anyhow::bail!("--database: give the password in FERRY_DATABASE_PASSWORD or [database] password_file, not on the command line (other users can read it there)");
        }
        config.database.url = Some(url.clone());
    }
    if let Some(url) = &at.store {
        ferry_server::objects::parse_url(url)?;
        config.store.url = Some(url.clone());
    }
    Ok(config)
}

fn main() {
    if let Err(e) = real_main() {
        let causes = e.chain().map(|c| c.to_string());
        eprintln!("ferryd: {}", ferry_server::logfmt::join_causes(causes));
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve {
            at,
            listen,
            insecure_plaintext,
            trusted_proxy,
        } => {
            let mut config = load(&at)?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            config.insecure_plaintext |= insecure_plaintext;
            config.trusted_proxies.extend(trusted_proxy);
            serve(config)
        }
        Cmd::Check { at, user, fix } => {
            let config = load(&at)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let good = rt.block_on(async {
                let store = admin::open(&config).await?;
                let good = admin::check(&store, &config, user.as_deref(), fix).await;
                store.close().await;
                good
            })?;
            if !good {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Fingerprint { at } => {
            let config = load(&at)?;
            println!("{}", ferry_server::tls::fingerprint(&config)?);
            Ok(())
        }
        Cmd::User { at, cmd } => {
            let config = load(&at)?;
            // The first open of an old root imports users.toml: say so.
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
                .with_ansi(false)
                .with_writer(std::io::stderr)
                .init();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(user_cmd(&config, cmd))
        }
    }
}

async fn user_cmd(config: &Config, cmd: UserCmd) -> anyhow::Result<()> {
    let store = admin::open(config).await?;
    let done = user_cmd_on(&store, config, cmd).await;
    store.close().await;
    done
}

async fn user_cmd_on(store: &Store, config: &Config, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add {
            name,
            quota,
            max_entries,
        } => admin::add(store, config, &name, quota, max_entries).await,
        UserCmd::Passwd { name } => admin::passwd(store, config, &name).await,
        UserCmd::Del { name } => admin::del(store, config, &name).await,
        UserCmd::Quota { name, size } => admin::quota(store, &name, quota_arg(&size)?).await,
        UserCmd::Set {
            name,
            quota,
            max_entries,
        } => {
            let quota = quota.as_deref().map(quota_arg).transpose()?;
            let max_entries = max_entries
                .as_deref()
                .map(|m| match m {
                    "default" => Ok(None),
                    n => n.parse().map(Some).with_context(|| {
                        format!("--max-entries {n:?}: give a number or \"default\"")
                    }),
                })
                .transpose()?;
            admin::set(store, config, &name, quota, max_entries).await
        }
        UserCmd::List => admin::list(store, config).await,
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Every line goes out with its control characters escaped (fields
        // from clients are quoted too, see logfmt): no colours, so no
        // escape sequences are ever meant.
        .with_ansi(false)
        .with_writer(ferry_server::logfmt::EscapingStderr)
        .init();
    ferry_server::startup::raise_open_files(&config);
    ferry_server::secrets::warn_if_open(&config);
    if !config.insecure_plaintext {
        // Make (or check) the certificate before announcing the address,
        // so `ferryd fingerprint` run right after sees the one in use.
        ferry_server::tls::server_config(&config)?;
    }
    // File work of sessions runs on `max_threads` of these (threads.rs);
    // the rest is for logins (home measurement) and sweeping.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.limits.max_threads + 64)
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        // Tests and scripts read the bound address (port 0 picks one),
        // printed once the state store is open.
        ferry_server::server::run_announced(listener, config, shutdown_signal(), |addr| {
            println!("listening on {addr}");
        })
        .await
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("signal received");
}
