//! The batch CLI: one command per invocation, for scripts and tests.
//! Exit status: 0 on success, 1 when the command failed, 3 when the
//! connection or login failed, 4 when the server was still busy after
//! `--busy-timeout`, 2 for usage errors.

pub mod args;
pub mod output;
pub mod sync;
pub mod tools;
pub mod transfer;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::msg::{EntryKind, RemoveMode};
use serde_json::json;

use crate::client::{
    connect, is_busy, tls, BusyRetry, BusyWait, Client, ClientError, ConnectOptions, Security,
    TlsOptions,
};
use crate::display::escape;
pub use args::{Args, Command};

/// Exit status when the server stayed busy for all of `--busy-timeout`.
pub const BUSY: i32 = 4;

/// A failed command: its message and exit status.
#[derive(Debug)]
pub struct Failure {
    /// One clear line for stderr (without the `ferry: ` prefix).
    pub message: String,
    /// Error kind for `--json`.
    pub kind: String,
    /// Exit status.
    pub code: i32,
}

impl Failure {
    pub(crate) fn from_client(subject: Option<&str>, e: &ClientError) -> Failure {
        let code = if is_busy(e) {
            BUSY
        } else if e.is_fatal() {
            3
        } else {
            1
        };
        let kind = e
            .kind()
            .map_or_else(|| "Connection".to_string(), |k| format!("{k:?}"));
        // The subject is escaped like any name: it may come from the
        // server (a moved name), and a user's own path with control
        // characters reads better escaped too.
        let message = match (e, subject.map(escape)) {
            (ClientError::Remote(r), Some(s)) => format!("{s}: {}", r.kind.phrase()),
            (ClientError::Path { source, .. }, Some(s)) => format!("{s}: {source}"),
            _ => e.to_string(),
        };
        Failure {
            message,
            kind,
            code,
        }
    }

    fn local(message: String) -> Failure {
        Failure {
            message,
            kind: "Local".into(),
            code: 1,
        }
    }

    fn usage(message: &str) -> Failure {
        Failure {
            message: message.to_string(),
            kind: "Usage".into(),
            code: 2,
        }
    }

    /// A failure with just a message (exit status 1).
    pub fn message(message: String) -> Failure {
        Failure {
            message,
            kind: "Failed".into(),
            code: 1,
        }
    }

    /// `f`, whose message was already printed: its kind and status only.
    fn quiet_as(f: Failure) -> Failure {
        Failure {
            message: String::new(),
            ..f
        }
    }

    /// A failure whose details were already printed.
    fn quiet(message: String) -> Failure {
        Failure {
            message,
            kind: "Failed".into(),
            code: 1,
        }
    }
}

/// Reads the password: `FERRY_PASSWORD`, else a no-echo prompt.
pub fn password_for(user: &str, server: &str) -> Result<String, Failure> {
    if let Ok(p) = std::env::var("FERRY_PASSWORD") {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::local(
            "no password: set FERRY_PASSWORD or run on a terminal".into(),
        ));
    }
    rpassword::prompt_password(format!("{user}@{server} password: "))
        .map_err(|e| Failure::local(format!("cannot read the password: {e}")))
}

/// The connection options the arguments describe.
pub fn options(args: &Args) -> Result<ConnectOptions, Failure> {
    let user = match &args.user {
        Some(u) => u.clone(),
        None => {
            std::env::var("USER").map_err(|_| Failure::local("no user: pass -u USER".into()))?
        }
    };
    let server = args.server();
    let password = password_for(&user, &server)?;
    let mut opts = ConnectOptions::new(server, user, password);
    opts.access_key = args.access_key.clone();
    opts.security = if args.insecure_plaintext {
        Security::InsecurePlaintext
    } else {
        Security::Tls(TlsOptions {
            accept_new: args.accept_new,
            fingerprint: args.fingerprint.clone(),
            known_servers: args
                .known_servers
                .clone()
                .or_else(tls::default_known_servers),
            ca_file: args.ca_file.clone(),
        })
    };
    Ok(opts)
}

/// Connects; on first contact with an unknown server, shows its fingerprint
/// and asks (on a terminal) whether to trust and remember it.
pub async fn connect_interactive(opts: &ConnectOptions) -> Result<Client, ClientError> {
    match connect(opts).await {
        Err(ClientError::UnknownServer {
            server,
            fingerprint,
        }) if std::io::stdin().is_terminal() => {
            eprintln!(
                "The server {server} presented a certificate that no trusted authority signed."
            );
            eprintln!("Its fingerprint is {fingerprint}");
            eprintln!(
                "Check it with the server's administrator (ferryd fingerprint on the server)."
            );
            eprint!("Trust this server and remember it? [y/N] ");
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                return Err(ClientError::UnknownServer {
                    server,
                    fingerprint,
                });
            }
            let mut pinned = opts.clone();
            let mut file = None;
            if let Security::Tls(t) = &mut pinned.security {
                t.fingerprint = Some(fingerprint.clone());
                file = t.known_servers.clone();
            }
            let client = connect(&pinned).await?;
            if let Some(file) = file {
                tls::remember(&file, &server, &fingerprint)?;
                eprintln!("Remembered {server} in {}", file.display());
            }
            Ok(client)
        }
        other => other,
    }
}

/// How a batch command waits out a busy server: `--busy-timeout`, with a
/// line on stderr before each wait when stderr is a terminal (scripts and
/// `--json` get nothing extra).
pub fn busy_retry(args: &Args) -> BusyRetry {
    let mut busy = BusyRetry::for_up_to(Duration::from_secs(args.busy_timeout));
    if std::io::stderr().is_terminal() {
        busy.notify = Some(Arc::new(|w: &BusyWait| {
            let why = if w.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", w.reason)
            };
            eprintln!(
                "ferry: server busy{why}, retrying in {:.1} s (attempt {})",
                w.delay.as_secs_f64(),
                w.attempt
            );
        }));
    }
    busy
}

/// Runs one batch command; prints results to stdout.
pub async fn run(args: &Args, cmd: &Command) -> Result<(), Failure> {
    if let Command::Sync(s) = cmd {
        // A usage error, before any connection.
        sync::split_sides(s)?;
    }
    let mut opts = options(args)?;
    opts.busy = busy_retry(args);
    let client = connect_interactive(&opts).await.map_err(|e| {
        let mut f = Failure::from_client(None, &e);
        if is_busy(&e) && args.busy_timeout > 0 {
            f.message.push_str(&format!(
                " (still busy after {} s; --busy-timeout SECS waits longer)",
                args.busy_timeout
            ));
        }
        f
    })?;
    let result = execute(&client, cmd, args.json).await;
    client.close().await;
    result
}

fn print_json(v: serde_json::Value) {
    println!("{}", output::json_line(&v));
}

async fn execute(client: &Client, cmd: &Command, json: bool) -> Result<(), Failure> {
    let fail = |subject: &str| {
        let subject = subject.to_string();
        move |e: ClientError| Failure::from_client(Some(&subject), &e)
    };
    match cmd {
        Command::Ls { long, path } => {
            let p = path.as_deref().unwrap_or(".");
            // Listing a file shows the file, as ls does; a symlink is
            // listed through (the server refuses one that leads out).
            let target = client.stat(p).await.map_err(fail(p))?;
            let entries = match target.kind {
                EntryKind::Dir => client.list(p).await.map_err(fail(p))?,
                EntryKind::Symlink => match client.list(p).await {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == Some(ferry_proto::ErrorKind::NotADirectory) => {
                        vec![target]
                    }
                    Err(e) => return Err(fail(p)(e)),
                },
                _ => vec![target],
            };
            if json {
                print_json(json!(entries
                    .iter()
                    .map(output::entry_json)
                    .collect::<Vec<_>>()));
            } else {
                for e in &entries {
                    println!(
                        "{}",
                        if *long {
                            output::long_line(e)
                        } else {
                            output::short_line(e)
                        }
                    );
                }
            }
        }
        Command::Mkdir { parents, path } => {
            client.mkdir(path, *parents).await.map_err(fail(path))?;
            if json {
                print_json(
                    json!({ "ok": true, "path": client.resolve(path).map(|p| p.to_string()).unwrap_or_default() }),
                );
            }
        }
        Command::Rm { recursive, paths } => {
            let mode = if *recursive {
                RemoveMode::Recursive
            } else {
                RemoveMode::File
            };
            for p in paths {
                client.remove(p, mode).await.map_err(fail(p))?;
            }
            if json {
                print_json(json!({ "ok": true, "removed": paths }));
            }
        }
        Command::Rmdir { path } => {
            client
                .remove(path, RemoveMode::EmptyDir)
                .await
                .map_err(fail(path))?;
            if json {
                print_json(json!({ "ok": true }));
            }
        }
        Command::Mv { from, to } => {
            // Like mv: moving onto an existing directory moves inside it.
            let mut dest = to.clone();
            if let Ok(e) = client.stat(to).await {
                if e.kind == EntryKind::Dir {
                    let name = client.resolve(from).map_err(fail(from))?;
                    if let Some(name) = name.file_name() {
                        dest = format!("{}/{}", to.trim_end_matches('/'), name);
                    }
                }
            }
            client
                .rename(from, &dest, false)
                .await
                .map_err(|e| match e {
                    ClientError::Remote(ref r)
                        if r.kind == ferry_proto::ErrorKind::AlreadyExists =>
                    {
                        Failure::from_client(Some(&dest), &e)
                    }
                    e => Failure::from_client(Some(from), &e),
                })?;
            if json {
                print_json(json!({ "ok": true }));
            }
        }
        Command::Stat { path } => {
            let e = client.stat(path).await.map_err(fail(path))?;
            if json {
                print_json(output::entry_json(&e));
            } else {
                println!("{}", output::long_line(&e));
            }
        }
        Command::Put { xfer, paths } => {
            transfer::run(client, crate::transfer::Direction::Put, paths, xfer, json).await?;
        }
        Command::Get { xfer, paths } => {
            transfer::run(client, crate::transfer::Direction::Get, paths, xfer, json).await?;
        }
        Command::Demo => return Err(Failure::usage("demo runs on its own")),
        Command::Quota => {
            let u = client.usage().await.map_err(fail("quota"))?;
            if json {
                print_json(json!({
                    "used": u.used,
                    "limit": u.limit,
                    "entries": u.entries,
                    "max_entries": u.max_entries,
                }));
            } else {
                println!(
                    "{}",
                    output::usage_line(u.used, u.limit, "bytes", "no quota")
                );
                println!(
                    "{}",
                    output::usage_line(u.entries, u.max_entries, "entries", "no limit")
                );
            }
        }
        Command::Sync(s) => sync::run(client, s, json).await?,
        Command::Chmod { mode, paths } => tools::chmod(client, mode, paths, json).await?,
        Command::Cat { path } => tools::cat(client, path).await?,
        Command::Hash { paths } => tools::hash(client, paths, json).await?,
        Command::Cp {
            recursive,
            from,
            to,
        } => tools::cp(client, from, to, *recursive, json).await?,
        Command::Find {
            args,
            min_size,
            max_size,
            newer,
            older,
        } => {
            let (path, pattern) = match args.as_slice() {
                [pattern] => (".", pattern),
                [path, pattern, ..] => (path.as_str(), pattern),
                [] => return Err(Failure::usage("find needs a pattern")),
            };
            let query = crate::client::FindQuery {
                pattern: pattern.clone(),
                min_size: *min_size,
                max_size: *max_size,
                newer: *newer,
                older: *older,
            };
            tools::find(client, path, &query, json).await?
        }
    }
    Ok(())
}

/// Prints a failure the way the CLI does.
pub fn report(f: &Failure, json: bool) {
    if json {
        print_json(json!({ "error": { "kind": f.kind, "message": f.message } }));
    }
    if !f.message.is_empty() {
        eprintln!("ferry: {}", f.message);
    }
}
