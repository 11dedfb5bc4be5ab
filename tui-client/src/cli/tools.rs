//! The everyday tools of the batch CLI, run by the server: `chmod`, `cat`
//! (a file to stdout by byte ranges, verified), `hash` (sha256sum's
//! format), `cp`, `find`.

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

/// `ferry find [PATH] PATTERN`: one path per line as matches arrive
/// (with `--json`, one entry object per line, its `name` the path); a
/// search the server stopped at its limits fails with status 1 after
/// what it found.
pub async fn find(
    client: &Client,
    path: &str,
    query: &crate::client::FindQuery,
    json: bool,
) -> Result<(), Failure> {
    let complete = client
        .find_with(path, query, |batch| {
            for e in &batch {
                if json {
                    print_json(super::output::entry_json(e));
                } else {
                    println!("{}", escape(&e.name));
                }
            }
        })
        .await
        .map_err(|e| Failure::from_client(Some(path), &e))?;
    if !complete {
        return Err(Failure::message(format!(
            "{}: the search stopped at the server's limits (entries looked at, or time) before the whole tree; search a smaller directory",
            escape(path)
        )));
    }
    Ok(())
}

/// Parses a time for `--newer`/`--older`: a time ago (`45s`, `30m`,
/// `2h`, `7d`, `2w`) or a UTC date (`2026-11-30`, `2026-11-30T12:00`,
/// `2026-11-30T12:00:05`); Unix seconds.
pub fn parse_when(s: &str) -> Result<i64, String> {
    let bad = || format!("{s}: not a time ago (30m, 2h, 7d) or a date (2026-11-30[T12:00[:00]])");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if let Some(unit) = s.chars().last().filter(|c| c.is_ascii_alphabetic()) {
        let n: i64 = s[..s.len() - 1].parse().map_err(|_| bad())?;
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        return n
            .checked_mul(secs)
            .and_then(|ago| now.checked_sub(ago))
            .ok_or_else(bad);
    }
    let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00"));
    let num = |t: &str| t.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    let ([y, m, day], 2..=3) = (d.as_slice(), t.len()) else {
        return Err(bad());
    };
    let (y, m, day) = (num(y)?, num(m)?, num(day)?);
    let (hh, mm) = (num(t[0])?, num(t[1])?);
    let ss = t.get(2).map_or(Ok(0), |x| num(x))?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard
/// Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_ago_or_utc_dates() {
        assert_eq!(parse_when("1970-01-01").unwrap(), 0);
        assert_eq!(parse_when("2000-03-01T00:00:01").unwrap(), 951_868_801);
        assert_eq!(parse_when("2026-11-30T12:30").unwrap(), 1_796_041_800);
        let now = parse_when("0s").unwrap();
        assert_eq!(now - parse_when("2d").unwrap(), 2 * 86_400);
        for bad in ["", "3x", "yesterday", "2026-13-01", "2026-11-30T25:00", "d"] {
            assert!(parse_when(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0755").ok(), Some(0o755));
        assert!(
            parse_mode("9").is_err() && parse_mode("").is_err() && parse_mode("77777").is_err()
        );
    }
}
