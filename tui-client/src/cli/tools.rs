//! The everyday tools of the batch CLI, run by the server: `chmod`, `cat`
//! (a file to stdout by byte ranges, verified), `hash` (sha256sum's
//! format), `cp`.

use ferry_proto::msg::READ_MAX;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{print_json, Failure};
use crate::client::{Client, ClientError};
use crate::display::escape;

/// Range reads of `ferry cat` in flight at once.
const CAT_WINDOW: usize = 4;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses an octal mode (`644`, `0755`); set-id and sticky bits parse,
/// and the server refuses them.
pub fn parse_mode(s: &str) -> Result<u32, Failure> {
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o7777 && !s.is_empty() => Ok(m),
        _ => Err(Failure::usage(&format!(
            "{}: not an octal mode (like 644 or 0755)",
            escape(s)
        ))),
    }
}

/// `ferry chmod MODE PATH...`: every path is tried; the first failure
/// decides the exit status.
pub async fn chmod(
    client: &Client,
    mode: &str,
    paths: &[String],
    json: bool,
) -> Result<(), Failure> {
    let mode = parse_mode(mode)?;
    let mut first: Option<Failure> = None;
    let mut done = Vec::new();
    for p in paths {
        match client.chmod(p, mode).await {
            Ok(()) => done.push(p.clone()),
            Err(e) => {
                let f = Failure::from_client(Some(p), &e);
                eprintln!("ferry: {}", f.message);
                first.get_or_insert(f);
            }
        }
    }
    if json {
        print_json(
            json!({ "ok": first.is_none(), "mode": format!("{mode:04o}"), "changed": done }),
        );
    }
    match first {
        None => Ok(()),
        Some(f) => Err(Failure::quiet_as(f)),
    }
}

/// `ferry hash PATH...`: `SHA256  path` lines, as sha256sum prints them,
/// each hashed by the server (or taken from what it recorded).
pub async fn hash(client: &Client, paths: &[String], json: bool) -> Result<(), Failure> {
    let mut first: Option<Failure> = None;
    let mut out = Vec::new();
    for p in paths {
        let got = match client.resolve(p) {
            Ok(path) => client.checksum(&path, None).await,
            Err(e) => Err(e),
        };
        match got {
            Ok((size, sha)) => {
                if json {
                    out.push(json!({ "path": p, "sha256": hex(&sha), "size": size }));
                } else {
                    println!("{}  {}", hex(&sha), escape(p));
                }
            }
            Err(e) => {
                let f = Failure::from_client(Some(p), &e);
                eprintln!("ferry: {}", f.message);
                if json {
                    out.push(
                        json!({ "path": p, "error": { "kind": f.kind, "message": f.message } }),
                    );
                }
                first.get_or_insert(f);
            }
        }
    }
    if json {
        print_json(json!(out));
    }
    match first {
        None => Ok(()),
        Some(f) => Err(Failure::quiet_as(f)),
    }
}

/// `ferry cat PATH`: the file to stdout, read by ranges of
/// [`READ_MAX`] (a few in flight), and checked at the end against the
/// server's SHA-256 of the same bytes, so what was printed is what the
/// file held (a file changed meanwhile fails).
pub async fn cat(client: &Client, p: &str) -> Result<(), Failure> {
    let fail = |e: ClientError| Failure::from_client(Some(p), &e);
    let path = client.resolve(p).map_err(fail)?;
    let (first, size) = client.read_range(&path, 0, READ_MAX).await.map_err(fail)?;
    let mut hasher = Sha256::new();
    let mut stdout = tokio::io::stdout();
    let mut total = first.len() as u64;
    hasher.update(&first);
    if write(&mut stdout, &first).await? {
        return Ok(());
    }
    let offsets = (total..size).step_by(READ_MAX as usize);
    let mut reads = futures::stream::iter(offsets)
        .map(|at| {
            let path = path.clone();
            async move { client.read_range(&path, at, READ_MAX).await }
        })
        .buffered(CAT_WINDOW)
        .map_err(fail);
    while let Some((bytes, _)) = reads.try_next().await? {
        hasher.update(&bytes);
        total += bytes.len() as u64;
        if write(&mut stdout, &bytes).await? {
            return Ok(());
        }
        if (bytes.len() as u64) < u64::from(READ_MAX) {
            break; // the file shrank: the check below says so
        }
    }
    let (_, theirs) = client.checksum(&path, Some(total)).await.map_err(fail)?;
    if theirs != <[u8; 32]>::from(hasher.finalize()) || total != size {
        return Err(Failure::message(format!(
            "{}: changed while it was read; what was printed is not one version of it",
            escape(p)
        )));
    }
    Ok(())
}

/// Writes to stdout; true when its reader has gone (as `cat | head`),
/// which ends the command quietly.
async fn write(out: &mut tokio::io::Stdout, bytes: &[u8]) -> Result<bool, Failure> {
    let r = async {
        out.write_all(bytes).await?;
        out.flush().await
    };
    match r.await {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(Failure::local(format!("cannot write to stdout: {e}"))),
    }
}

/// `ferry cp [-r] FROM TO`: as `cp`, an existing directory TO receives
/// FROM inside it.
pub async fn cp(
    client: &Client,
    from: &str,
    to: &str,
    recursive: bool,
    json: bool,
) -> Result<(), Failure> {
    let mut dest = to.to_string();
    if let Ok(e) = client.stat(to).await {
        if e.kind == ferry_proto::msg::EntryKind::Dir {
            let name = client
                .resolve(from)
                .map_err(|e| Failure::from_client(Some(from), &e))?;
            if let Some(name) = name.file_name() {
                dest = format!("{}/{}", to.trim_end_matches('/'), name);
            }
        }
    }
    let (entries, bytes) =
        client
            .copy(from, &dest, recursive)
            .await
            .map_err(|e| match e.kind() {
                Some(ferry_proto::ErrorKind::AlreadyExists) => {
                    Failure::from_client(Some(&dest), &e)
                }
                _ => Failure::from_client(Some(from), &e),
            })?;
    if json {
        let to = client.resolve(&dest).map(|p| p.to_string()).unwrap_or(dest);
        print_json(json!({ "ok": true, "to": to, "entries": entries, "bytes": bytes }));
    }
    Ok(())
}
