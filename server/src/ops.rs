//! Browsing requests: each runs on the blocking pool against the user's
//! jailed home and answers with one or more responses.

use std::sync::Arc;

use ferry_proto::msg::RemoveMode;
use ferry_proto::{ErrorKind, Frame, RemoteError, RemotePath, Reply, Request, ServerMsg};
use tokio::sync::mpsc;

use crate::accounts::Account;

fn path(s: &str) -> Result<RemotePath, RemoteError> {
    RemotePath::parse(s).map_err(|e| e.to_remote(s))
}

fn response(id: u32, reply: Result<Reply, RemoteError>) -> Option<Frame> {
    match Frame::control(&ServerMsg::Response { id, reply }) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a response");
            None
        }
    }
}

/// Handles one request, sending its response(s) on `tx`.
pub async fn handle(
    id: u32,
    req: Request,
    account: Arc<Account>,
    batch: usize,
    tx: mpsc::Sender<Frame>,
) {
    let user = account.name.clone();
    let tx2 = tx.clone();
    let result = tokio::task::spawn_blocking(move || run(id, req, &account, batch, &tx2)).await;
    let reply = match result {
        Ok(Some(reply)) => reply,
        Ok(None) => return, // already answered (listing)
        Err(e) => {
            tracing::error!(user = %user, error = %e, "request handler failed");
            Err(RemoteError::new(ErrorKind::Io, "internal error"))
        }
    };
    if let Some(f) = response(id, reply) {
        let _ = tx.send(f).await;
    }
}

fn run(
    id: u32,
    req: Request,
    account: &Account,
    batch: usize,
    tx: &mpsc::Sender<Frame>,
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
                response(id, Ok(Reply::Entries { entries, more }))
                    .is_some_and(|f| tx.blocking_send(f).is_ok())
            });
            return r.err().map(Err);
        }
        Request::Stat { path: p } => path(&p).and_then(|p| home.stat(&p)).map(Reply::Stat),
        Request::Mkdir { path: p, parents } => path(&p).and_then(|p| {
            home.mkdir(&p, parents)?;
            tracing::info!(target: "audit", user, op = "mkdir", path = %p);
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
            tracing::info!(target: "audit", user, op, path = %p, freed);
            Ok(Reply::Done)
        }),
        Request::Rename {
            from,
            to,
            overwrite,
        } => path(&from).and_then(|from| {
            let to = path(&to)?;
            account.freed(home.rename(&from, &to, overwrite)?);
            tracing::info!(target: "audit", user, op = "rename", from = %from, to = %to);
            Ok(Reply::Done)
        }),
        Request::Quota => {
            let (used, limit) = account.usage();
            Ok(Reply::Quota { used, limit })
        }
    };
    Some(result)
}
