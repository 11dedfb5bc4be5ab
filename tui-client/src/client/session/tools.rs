//! The session's requests for the tools the server runs: chmod, times,
//! byte ranges, copies and searches.

use bytes::Bytes;
use ferry_proto::msg::Entry;
use ferry_proto::{RemotePath, Reply, Request};

use super::{Client, ClientError, Event, Queue, Result};

/// What a search looks for: a glob on names, and optional filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FindQuery {
    /// Glob matched against each name (`*`, `?`, `[...]`).
    pub pattern: String,
    /// Only regular files of at least this many bytes.
    pub min_size: Option<u64>,
    /// Only regular files of at most this many bytes.
    pub max_size: Option<u64>,
    /// Only entries modified after this time (Unix seconds).
    pub newer: Option<i64>,
    /// Only entries modified before this time (Unix seconds).
    pub older: Option<i64>,
}

impl Client {
    /// Sets the permission bits (within 0o777) of a remote file or
    /// directory.
    pub async fn chmod(&self, path: &str, mode: u32) -> Result<()> {
        let path = self.resolve(path)?.to_string();
        self.done(Request::Chmod { path, mode }).await
    }

    /// Sets the modification time (Unix seconds) of a remote file or
    /// directory.
    pub async fn set_mtime(&self, path: &RemotePath, mtime: i64) -> Result<()> {
        let path = path.to_string();
        self.done(Request::SetMtime { path, mtime }).await
    }

    /// Copies `from` to `to` on the server (with `recursive`, a directory
    /// and its tree); `to` must not exist. Returns the entries made and the
    /// bytes they count against the quota.
    pub async fn copy(&self, from: &str, to: &str, recursive: bool) -> Result<(u64, u64)> {
        let from = self.resolve(from)?.to_string();
        let to = self.resolve(to)?.to_string();
        match self
            .call(Request::Copy {
                from,
                to,
                recursive,
            })
            .await?
        {
            Reply::Copied { entries, bytes } => Ok((entries, bytes)),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply to copy: {other:?}"
            ))),
        }
    }

    /// Up to `length` bytes (at most [`ferry_proto::msg::READ_MAX`]) of a
    /// remote file from `offset`, and the file's size: fewer bytes at its
    /// end, none past it.
    pub async fn read_range(
        &self,
        path: &RemotePath,
        offset: u64,
        length: u32,
    ) -> Result<(Bytes, u64)> {
        let req = Request::Read {
            transfer: self.next_transfer(),
            path: path.to_string(),
            offset,
            length,
        };
        let got = self.inner.busy.run(|| self.read_once(req.clone())).await;
        if let Request::Read { transfer, .. } = req {
            self.end_transfer(transfer);
        }
        got
    }

    async fn read_once(&self, req: Request) -> Result<(Bytes, u64)> {
        let Request::Read {
            transfer, length, ..
        } = req
        else {
            return Err(ClientError::Protocol("not a read".into()));
        };
        let mut rx = self
            .submit_routed(req, Some(transfer), Queue::Control)
            .await?;
        let mut buf = bytes::BytesMut::new();
        loop {
            match rx.recv().await {
                Some(Event::Data(d)) => {
                    if buf.len() + d.len() > length as usize {
                        return Err(ClientError::Protocol(
                            "the server sent more than was asked".into(),
                        ));
                    }
                    buf.extend_from_slice(&d);
                }
                Some(Event::Reply(Ok(Reply::ReadDone { length, size }))) => {
                    if length != buf.len() as u64 {
                        return Err(ClientError::Protocol(format!(
                            "read: {length} bytes announced, {} received",
                            buf.len()
                        )));
                    }
                    return Ok((buf.freeze(), size));
                }
                Some(Event::Reply(Err(e))) => return Err(ClientError::Remote(e)),
                Some(other) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected reply to read: {other:?}"
                    )))
                }
                None => return Err(self.disconnected()),
            }
        }
    }

    /// Searches the tree under `path` on the server (see [`FindQuery`]),
    /// handing each batch of matches to `on_batch` as it arrives (each
    /// entry's `name` is its path from the home). Returns false when the
    /// server stopped at its limits before it looked at the whole tree.
    pub async fn find_with(
        &self,
        path: &str,
        query: &FindQuery,
        mut on_batch: impl FnMut(Vec<Entry>),
    ) -> Result<bool> {
        let req = Request::Find {
            path: self.resolve(path)?.to_string(),
            pattern: query.pattern.clone(),
            min_size: query.min_size,
            max_size: query.max_size,
            newer: query.newer,
            older: query.older,
        };
        let (mut rx, mut next) = self
            .inner
            .busy
            .run(|| async {
                let mut rx = self.submit(req.clone()).await?;
                match rx.recv().await {
                    Some(Event::Reply(Err(e))) => Err(ClientError::Remote(e)),
                    first => Ok((rx, first)),
                }
            })
            .await?;
        loop {
            match next.take() {
                Some(Event::Reply(Ok(Reply::Found {
                    entries,
                    more,
                    complete,
                }))) => {
                    on_batch(entries);
                    if !more {
                        return Ok(complete);
                    }
                    next = rx.recv().await;
                }
                Some(Event::Reply(Err(e))) => return Err(ClientError::Remote(e)),
                Some(other) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected reply to find: {other:?}"
                    )))
                }
                None => return Err(self.disconnected()),
            }
        }
    }
}
