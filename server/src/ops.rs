//! Browsing requests: each runs on the blocking pool against the user's
//! jailed home and answers with one or more responses.

use std::sync::Arc;

use ferry_proto::msg::RemoveMode;
use ferry_proto::{ErrorKind, RemoteError, RemotePath, Reply, Request};
use sha2::{Digest, Sha256};

use crate::accounts::Account;
use crate::jail::io_error;
use crate::logfmt::q;
use crate::outbox::Outbox;

/// Parses a wire path into a home-relative path.
pub fn path(s: &str) -> Result<RemotePath, RemoteError> {
    RemotePath::parse(s).map_err(|e| e.to_remote(s))
}

/// Handles one request, sending its response(s) through `out`.
pub async fn handle(id: u32, req: Request, account: Arc<Account>, batch: usize, out: Outbox) {
    let user = account.name.clone();
    let out2 = out.clone();
    let result = tokio::task::spawn_blocking(move || run(id, req, &account, batch, &out2)).await;
    let reply = match result {
        Ok(Some(reply)) => reply,
        Ok(None) => return, // already answered (listing)
        Err(e) => {
            tracing::error!(user = %user, error = %q(&e), "request handler failed");
            Err(RemoteError::new(ErrorKind::Io, "internal error"))
        }
    };
    out.reply(id, reply).await;
}

fn run(
    id: u32,
    req: Request,
    account: &Account,
    batch: usize,
    out: &Outbox,
) -> Option<Result<Reply, RemoteError>> {
    let home = &account.home;
    let user = account.name.as_str();
    let result = match req {
        Request::List { path: p } => {
            let p = match path(&p) {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
            let r = home.list(&p, batch, |entries, more| {
                out.blocking_reply(id, Ok(Reply::Entries { entries, more }))
            });
            return r.err().map(Err);
        }
        Request::Stat { path: p } => path(&p).and_then(|p| home.stat(&p)).map(Reply::Stat),
        Request::Mkdir { path: p, parents } => path(&p).and_then(|p| {
            home.mkdir(&p, parents)?;
            tracing::info!(target: "audit", user, op = "mkdir", path = %q(&p));
            Ok(Reply::Done)
        }),
        Request::Remove { path: p, mode } => path(&p).and_then(|p| {
            let freed = home.remove(&p, mode)?;
            account.freed(freed);
            let op = match mode {
                RemoveMode::File => "rm",
                RemoveMode::EmptyDir => "rmdir",
                RemoveMode::Recursive => "rm -r",
            };
            tracing::info!(target: "audit", user, op, path = %q(&p), freed);
            Ok(Reply::Done)
        }),
        Request::Rename {
            from,
            to,
            overwrite,
        } => path(&from).and_then(|from| {
            let to = path(&to)?;
            account.freed(home.rename(&from, &to, overwrite)?);
            tracing::info!(target: "audit", user, op = "rename", from = %q(&from), to = %q(&to));
            Ok(Reply::Done)
        }),
        Request::Quota => {
            let (used, limit) = account.usage();
            Ok(Reply::Quota { used, limit })
        }
        Request::Checksum { path: p, length } => {
            path(&p).and_then(|p| checksum(account, &p, length))
        }
        Request::PutOpen { .. } | Request::GetOpen { .. } => Err(RemoteError::new(
            ErrorKind::BadRequest,
            "transfers are opened by the connection",
        )),
    };
    Some(result)
}

fn checksum(account: &Account, p: &RemotePath, length: Option<u64>) -> Result<Reply, RemoteError> {
    let mut file = account
        .home
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
    let mut hasher = Sha256::new();
    crate::transfer::hash_prefix(&mut file, length, &mut hasher).map_err(|e| io_error(p, e))?;
    Ok(Reply::Checksum {
        length,
        sha256: hasher.finalize().into(),
    })
}
