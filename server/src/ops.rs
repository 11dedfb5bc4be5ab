//! Browsing requests: each runs in steps on the user's share of blocking
//! threads against their jailed home, and answers with one or more responses.

use std::sync::Arc;

use ferry_proto::msg::RemoveMode;
use ferry_proto::{ErrorKind, RemoteError, RemotePath, Reply, Request};

use crate::accounts::Account;
use crate::hashes::{checksum, HashCache};
use crate::logfmt::q;
use crate::outbox::Outbox;
use crate::read::ReadSpec;
use crate::threads::Threads;

/// Parses a wire path into a home-relative path.
pub fn path(s: &str) -> Result<RemotePath, RemoteError> {
    RemotePath::parse(s).map_err(|e| e.to_remote(s))
}

/// What browsing requests need from the server beyond the user's share.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// Directory entries per listing batch.
    pub batch: usize,
    /// Whole-file hashes computed before (server-wide).
    pub hashes: Arc<HashCache>,
    /// Entries one copy may make.
    pub max_copy_entries: u64,
    /// Entries one search may look at.
    pub find_max_visited: u64,
    /// Time one search may take.
    pub find_max_time: std::time::Duration,
}

/// Handles one request, sending its response(s) through `out`. File work
/// runs on the user's share of threads (`threads`), in bounded steps.
pub async fn handle(
    id: u32,
    req: Request,
    account: Arc<Account>,
    ctx: Ctx,
    out: Outbox,
    threads: Threads,
) {
    let req = match req {
        Request::List { path: p } => return list(id, p, account, ctx.batch, out, threads).await,
        Request::Checksum {
            path: p,
            offset,
            length,
        } => {
            let reply = match path(&p) {
                Ok(p) => {
                    let budget = out.budget().clone();
                    checksum(&p, offset, length, account, &threads, &ctx.hashes, &budget).await
                }
                Err(e) => Err(e),
            };
            out.reply(id, reply).await;
            return;
        }
        Request::Read {
            transfer,
            path,
            offset,
            length,
        } => {
            let spec = ReadSpec {
                id,
                transfer,
                path,
                offset,
                length,
            };
            return crate::read::read(spec, account, out, threads).await;
        }
        Request::Copy {
            from,
            to,
            recursive,
        } => {
            let reply = copy(from, to, recursive, account, &threads, ctx.max_copy_entries).await;
            out.reply(id, reply).await;
            return;
        }
        Request::Find {
            path: p,
            pattern,
            min_size,
            max_size,
            newer,
            older,
        } => {
            let query = crate::find::Query::new(&pattern).map(|mut q| {
                (q.min_size, q.max_size, q.newer, q.older) = (min_size, max_size, newer, older);
                q
            });
            let bounds = crate::find::Bounds {
                batch: ctx.batch,
                max_visited: ctx.find_max_visited,
                max_time: ctx.find_max_time,
            };
            return crate::find::find(id, path(&p), query, account, bounds, out, threads).await;
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
        Request::Chmod { path: p, mode } => path(&p).and_then(|p| {
            home.chmod(&p, mode)?;
            tracing::info!(target: "audit", user = %q(user), op = "chmod", path = %q(&p), mode = format!("{mode:03o}"));
            Ok(Reply::Done)
        }),
        Request::SetMtime { path: p, mtime } => path(&p).and_then(|p| {
            home.set_mtime(&p, mtime)?;
            tracing::info!(target: "audit", user = %q(user), op = "set_mtime", path = %q(&p), mtime);
            Ok(Reply::Done)
        }),
        Request::Checksum { .. }
        | Request::Read { .. }
        | Request::Copy { .. }
        | Request::Find { .. } => {
            Err(RemoteError::new(
                ErrorKind::BadRequest,
                "checksums, reads, copies and searches are answered in steps",
            ))
        }
        Request::PutOpen { .. } | Request::GetOpen { .. } => Err(RemoteError::new(
            ErrorKind::BadRequest,
            "transfers are opened by the connection",
        )),
    };
    result
}

/// A copy (see [`crate::copy`]), in the audit log once done.
async fn copy(
    from: String,
    to: String,
    recursive: bool,
    account: Arc<Account>,
    threads: &Threads,
    max_entries: u64,
) -> Result<Reply, RemoteError> {
    let (from, to) = (path(&from)?, path(&to)?);
    let user = account.name.clone();
    let (f, t) = (from.clone(), to.clone());
    let made = crate::copy::copy(f, t, recursive, account, threads, max_entries).await?;
    tracing::info!(target: "audit", user = %q(&user), op = "copy", from = %q(&from), to = %q(&to), bytes = made.bytes, entries = made.entries);
    Ok(Reply::Copied {
        entries: made.entries,
        bytes: made.bytes,
    })
}
