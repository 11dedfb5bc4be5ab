//! Byte ranges of a file (`Read`, for viewers and `ferry cat`): at most
//! [`READ_MAX`] bytes a request, charged to the connection's budget
//! before they are read and held there until written to the socket, sent
//! as data frames with the client's transfer id, then `ReadDone`.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use ferry_proto::msg::READ_MAX;
use ferry_proto::{ErrorKind, Frame, RemoteError, RemotePath, Reply, CHUNK_SIZE};
use futures::StreamExt;

use crate::accounts::Account;
use crate::budget::{Charge, OVERHEAD};
use crate::jail::io_error;
use crate::outbox::Outbox;
use crate::threads::Threads;

fn internal() -> RemoteError {
    RemoteError::new(ErrorKind::Io, "internal error")
}

/// What a `Read` asks for.
#[derive(Debug)]
pub struct ReadSpec {
    /// The request.
    pub id: u32,
    /// The client's id for the data frames.
    pub transfer: u32,
    /// The file.
    pub path: String,
    /// First byte.
    pub offset: u64,
    /// Bytes wanted (capped at [`READ_MAX`]).
    pub length: u32,
}

/// Answers a `Read`: data frames, then `ReadDone`, on the queue that
/// keeps them in order. A client that does not read them holds its own
/// budget only, and no thread.
pub async fn read(spec: ReadSpec, account: Arc<Account>, out: Outbox, threads: Threads) {
    let id = spec.id;
    match send(spec, account, &out, &threads).await {
        Ok(Some(done)) => {
            out.bulk_reply(id, Ok(done)).await;
        }
        Ok(None) => {}
        Err(e) => {
            out.bulk_reply(id, Err(e)).await;
        }
    }
}

async fn send(
    spec: ReadSpec,
    account: Arc<Account>,
    out: &Outbox,
    threads: &Threads,
) -> Result<Option<Reply>, RemoteError> {
    let p = crate::ops::path(&spec.path)?;
    let want = spec.length.min(READ_MAX) as usize;
    let frames = want.div_ceil(CHUNK_SIZE).max(1);
    // The room first (waited for in async, holding no thread): the bytes
    // are read into memory only once the connection may hold them.
    let Some(mut charge) = out.budget().charge(want + frames * OVERHEAD).await else {
        return Ok(None);
    };
    let (data, size) = match account.home.objects() {
        Some(home) => object_range(home.clone(), &p, spec.offset, want, threads).await?,
        None => {
            let (p2, offset) = (p.clone(), spec.offset);
            threads
                .run(move || disk_range(&account, &p2, offset, want))
                .await
                .ok_or_else(internal)??
        }
    };
    let length = data.len() as u64;
    charge.shrink_to(data.len() + frames * OVERHEAD);
    let mut at = 0;
    while at < data.len() {
        let end = (at + CHUNK_SIZE).min(data.len());
        let part: Charge = charge.split(end - at + OVERHEAD);
        let frame = Frame::Data {
            transfer: spec.transfer,
            data: data.slice(at..end),
        };
        if !out.data(frame, part) {
            return Ok(None);
        }
        at = end;
    }
    drop(charge);
    Ok(Some(Reply::ReadDone { length, size }))
}

/// Opens `p` for reading without blocking on a fifo (whose open would
/// wait for a writer, holding the thread): the caller then refuses
/// anything but a regular file.
pub fn open_nonblocking(
    home: &crate::jail::Home,
    p: &RemotePath,
) -> Result<std::fs::File, RemoteError> {
    use cap_std::fs::OpenOptionsExt;
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.read(true).custom_flags(libc::O_NONBLOCK);
    let file = home
        .dir()
        .open_with(p.to_relative(), &opts)
        .map_err(|e| io_error(p, e))?;
    Ok(file.into_std())
}

/// Up to `want` bytes of a regular file on disk from `offset` (fewer at
/// its end), with its size.
fn disk_range(
    account: &Account,
    p: &RemotePath,
    offset: u64,
    want: usize,
) -> Result<(Bytes, u64), RemoteError> {
    let file = open_nonblocking(account.home.disk()?, p)?;
    let md = file.metadata().map_err(|e| io_error(p, e))?;
    if md.is_dir() {
        return Err(RemoteError::new(ErrorKind::IsADirectory, p.to_string()));
    }
    if !md.is_file() {
        return Err(RemoteError::new(
            ErrorKind::BadRequest,
            format!("{p} is not a regular file"),
        ));
    }
    let size = md.len();
    let n = size.saturating_sub(offset).min(want as u64) as usize;
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break, // shrank meanwhile
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(p, e)),
        }
    }
    buf.truncate(got);
    Ok((Bytes::from(buf), size))
}

/// The same in object storage: one ranged read of the file's blob.
async fn object_range(
    home: crate::objects::home::ObjectHome,
    p: &RemotePath,
    offset: u64,
    want: usize,
    threads: &Threads,
) -> Result<(Bytes, u64), RemoteError> {
    use crate::objects::download;
    let (h, p2) = (home.clone(), p.clone());
    let node = threads
        .run(move || download::file(&h, &p2))
        .await
        .ok_or_else(internal)??;
    let size = node.size;
    let start = offset.min(size);
    let end = start.saturating_add(want as u64).min(size);
    let mut pieces = Box::pin(download::body(home, node, start..end));
    let mut buf = bytes::BytesMut::with_capacity((end - start) as usize);
    while let Some(piece) = pieces.next().await {
        buf.extend_from_slice(&piece?);
        if buf.len() as u64 > end - start {
            return Err(RemoteError::new(
                ErrorKind::Io,
                format!("{p}: the object store sent more than asked"),
            ));
        }
    }
    Ok((buf.freeze(), size))
}
