//! Browsing requests: each runs in steps on the user's share of blocking
//! threads against their jailed home, and answers with one or more responses.

use std::sync::Arc;

use ferry_proto::msg::RemoveMode;
use ferry_proto::{ErrorKind, RemoteError, RemotePath, Reply, Request};
use sha2::{Digest, Sha256};

use crate::accounts::Account;
use crate::jail::io_error;
use crate::logfmt::q;
use crate::outbox::Outbox;
use crate::threads::Threads;

/// Parses a wire path into a home-relative path.
pub fn path(s: &str) -> Result<RemotePath, RemoteError> {
    RemotePath::parse(s).map_err(|e| e.to_remote(s))
}

/// Handles one request, sending its response(s) through `out`. File work
/// runs on the user's share of threads (`threads`), in bounded steps.
pub async fn handle(
    id: u32,
    req: Request,
    account: Arc<Account>,
    batch: usize,
    out: Outbox,
    threads: Threads,
) {
    let req = match req {
        Request::List { path: p } => return list(id, p, account, batch, out, threads).await,
        Request::Checksum { path: p, length } => {
            let reply = checksum(p, length, account, &threads).await;
            out.reply(id, reply).await;
            return;
        }
        req => req,
    };
    let user = account.name.clone();
    let reply = match threads.run(move || run(req, &account)).await {
        Some(reply) => reply,
        None => {
            tracing::error!(user = %q(&user), "request handler failed");
            Err(RemoteError::new(ErrorKind::Io, "internal error"))
        }
    };
    out.reply(id, reply).await;
}

/// A listing: each batch is read in a step of its own, and the client's
/// reading of the batch before it is waited for in async, holding no
/// thread (sessions that never read their listings used to hold every
/// thread of the pool).
async fn list(
    id: u32,
    p: String,
    account: Arc<Account>,
    batch: usize,
    out: Outbox,
    threads: Threads,
) {
    let internal = || RemoteError::new(ErrorKind::Io, "internal error");
    let opened = match path(&p) {
        Ok(p) => threads.run(move || account.home.listing(&p)).await,
        Err(e) => Some(Err(e)),
    };
    let mut listing = match opened {
        Some(Ok(listing)) => listing,
        Some(Err(e)) => {
            out.reply(id, Err(e)).await;
            return;
        }
        None => {
            out.reply(id, Err(internal())).await;
            return;
        }
    };
    loop {
        let step = threads
            .run(move || {
                let r = listing.next_batch(batch);
                (listing, r)
            })
            .await;
        let (back, r) = match step {
            Some(step) => step,
            None => {
                out.reply(id, Err(internal())).await;
                return;
            }
        };
        listing = back;
        match r {
            Ok((entries, more)) => {
                let sent = out.reply(id, Ok(Reply::Entries { entries, more })).await;
                if !sent || !more {
                    return;
                }
            }
            Err(e) => {
                out.reply(id, Err(e)).await;
                return;
            }
        }
    }
}

fn run(req: Request, account: &Account) -> Result<Reply, RemoteError> {
    let home = &account.home;
    let user = account.name.as_str();
    let result = match req {
        Request::List { .. } => Err(RemoteError::new(
            ErrorKind::BadRequest,
            "listings are answered in batches",
        )),
        Request::Stat { path: p } => path(&p).and_then(|p| home.stat(&p)).map(Reply::Stat),
        Request::Mkdir { path: p, parents } => path(&p).and_then(|p| {
            home.mkdir(&p, parents, &account.ledger)?;
            tracing::info!(target: "audit", user = %q(user), op = "mkdir", path = %q(&p));
            Ok(Reply::Done)
        }),
        Request::Remove { path: p, mode } => path(&p).and_then(|p| {
            let freed = home.remove(&p, mode, &account.ledger)?;
            let op = match mode {
                RemoveMode::File => "rm",
                RemoveMode::EmptyDir => "rmdir",
                RemoveMode::Recursive => "rm -r",
            };
            tracing::info!(target: "audit", user = %q(user), op, path = %q(&p), freed = freed.bytes, entries = freed.entries);
            Ok(Reply::Done)
        }),
        Request::Rename {
            from,
            to,
            overwrite,
        } => path(&from).and_then(|from| {
            let to = path(&to)?;
            home.rename(&from, &to, overwrite, &account.ledger)?;
            tracing::info!(target: "audit", user = %q(user), op = "rename", from = %q(&from), to = %q(&to));
            Ok(Reply::Done)
        }),
        Request::Quota => {
            let (used, limits) = account.usage();
            Ok(Reply::Quota {
                used: used.bytes,
                limit: limits.bytes,
                entries: used.entries,
                max_entries: limits.entries,
            })
        }
        Request::Checksum { .. } => Err(RemoteError::new(
            ErrorKind::BadRequest,
            "checksums are answered in steps",
        )),
        Request::PutOpen { .. } | Request::GetOpen { .. } => Err(RemoteError::new(
            ErrorKind::BadRequest,
            "transfers are opened by the connection",
        )),
    };
    result
}

/// A checksum: the file is opened in one step, then hashed in CPU-heavy
/// steps of a few MiB on the user's share of the cores, so a user asking
/// for many checksums of big files takes neither a core per request nor
/// any core for long (they used to hash whole files in one step, on 8
/// threads per user: every core).
async fn checksum(
    p: String,
    length: Option<u64>,
    account: Arc<Account>,
    threads: &Threads,
) -> Result<Reply, RemoteError> {
    let internal = || RemoteError::new(ErrorKind::Io, "internal error");
    let p = path(&p)?;
    if let Some(home) = account.home.objects() {
        return object_checksum(home.clone(), p, length, threads).await;
    }
    let p2 = p.clone();
    let (file, length) = threads
        .run(move || open_for_checksum(&account, &p2, length))
        .await
        .ok_or_else(internal)??;
    let (_, hasher) = threads
        .hash(file, length, Sha256::new())
        .await
        .ok_or_else(internal)?
        .map_err(|e| io_error(&p, e))?;
    Ok(Reply::Checksum {
        length,
        sha256: hasher.finalize().into(),
    })
}

/// A checksum in object storage: the one recorded at upload for the
/// whole file, else the first `length` bytes read and hashed.
async fn object_checksum(
    home: crate::objects::home::ObjectHome,
    p: RemotePath,
    length: Option<u64>,
    threads: &Threads,
) -> Result<Reply, RemoteError> {
    use crate::objects::download;
    let (h, p2) = (home.clone(), p.clone());
    let node = threads
        .run(move || download::file(&h, &p2))
        .await
        .ok_or_else(|| RemoteError::new(ErrorKind::Io, "internal error"))??;
    let length = length.unwrap_or(node.size);
    if length > node.size {
        return Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{p} has only {} bytes", node.size),
        ));
    }
    let sha256 = download::checksum(&home, &node, length).await?;
    Ok(Reply::Checksum { length, sha256 })
}

/// Opens a regular file for a checksum of its first `length` bytes (all of
/// them if None); returns it with the length.
fn open_for_checksum(
    account: &Account,
    p: &RemotePath,
    length: Option<u64>,
) -> Result<(std::fs::File, u64), RemoteError> {
    let file = account
        .home
        .disk()?
        .dir()
        .open(p.to_relative())
        .map_err(|e| io_error(p, e))?;
    let md = file.metadata().map_err(|e| io_error(p, e))?;
    if !md.is_file() {
        return Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{p} is not a regular file"),
        ));
    }
    let length = length.unwrap_or(md.len());
    if length > md.len() {
        return Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{p} has only {} bytes", md.len()),
        ));
    }
    Ok((file.into_std(), length))
}
