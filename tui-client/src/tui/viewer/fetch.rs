//! The runtime's side of the viewer: reading blocks (a local file by
//! positioned reads on the blocking pool, a remote one by `Read` ranges)
//! and searching forward or back one mebibyte at a time in a task of its
//! own, reporting progress, so the UI never waits on either.

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use bytes::Bytes;
use ferry_proto::msg::READ_MAX;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::{SearchSpec, Source, ViewNews, ViewWork};
use crate::client::Client;
use crate::tui::action::Action;

/// Bytes a search reads at a time.
const CHUNK: u64 = READ_MAX as u64;

/// Runs the viewer's work; holds the one search running.
#[derive(Default)]
pub struct Fetcher {
    search: Option<JoinHandle<()>>,
}

impl Fetcher {
    /// Starts `work` (a search stops the one before).
    pub fn run(&mut self, work: ViewWork, client: Option<Client>, tx: UnboundedSender<Action>) {
        match work {
            ViewWork::Read {
                view,
                source,
                block,
                length,
            } => {
                tokio::spawn(async move {
                    let offset = block * length as u64;
                    let result = read(&source, client.as_ref(), offset, length).await;
                    let _ = tx.send(Action::View(ViewNews::Block {
                        view,
                        block,
                        result,
                    }));
                });
            }
            ViewWork::Search {
                view,
                search,
                source,
                spec,
            } => {
                self.stop();
                self.search = Some(tokio::spawn(async move {
                    let t = tx.clone();
                    let progress = move |at| {
                        let _ = t.send(Action::View(ViewNews::Searching { view, search, at }));
                    };
                    let result = find(&source, client.as_ref(), &spec, progress).await;
                    let _ = tx.send(Action::View(ViewNews::Found {
                        view,
                        search,
                        result,
                    }));
                }));
            }
            ViewWork::Stop => self.stop(),
        }
    }

    fn stop(&mut self) {
        if let Some(h) = self.search.take() {
            h.abort();
        }
    }
}

/// Up to `length` bytes at `offset` and the file's size.
pub async fn read(
    source: &Source,
    client: Option<&Client>,
    offset: u64,
    length: u32,
) -> Result<(Bytes, u64), String> {
    match source {
        Source::Remote(path) => {
            let c = client.ok_or("not connected")?;
            let p = c.resolve(path).map_err(|e| e.to_string())?;
            c.read_range(&p, offset, length.min(READ_MAX))
                .await
                .map_err(|e| format!("{}: {e}", crate::display::escape(path)))
        }
        Source::Local(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_local(&path, offset, length))
                .await
                .map_err(|e| e.to_string())?
        }
    }
}

/// A positioned read of a local regular file (opened without blocking, so
/// a fifo put in its place cannot hold the thread).
pub fn read_local(path: &Path, offset: u64, length: u32) -> Result<(Bytes, u64), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(fail)?;
    let md = f.metadata().map_err(fail)?;
    if !md.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let size = md.len();
    let want = (length as u64).min(size.saturating_sub(offset)) as usize;
    let mut buf = vec![0; want];
    let mut got = 0;
    while got < want {
        match f.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(e)),
        }
    }
    buf.truncate(got);
    Ok((Bytes::from(buf), size))
}

/// Searches as `spec` says, reading a chunk at a time (chunks overlap by
/// the pattern's length less one, so no match is cut); `progress` hears
/// how far it got after each chunk.
pub async fn find(
    source: &Source,
    client: Option<&Client>,
    spec: &SearchSpec,
    progress: impl Fn(u64),
) -> Result<Option<u64>, String> {
    let m = spec.pattern.len() as u64;
    if m == 0 || m >= CHUNK {
        return Ok(None);
    }
    if !spec.backward {
        let mut at = spec.from;
        loop {
            let (buf, _) = read(source, client, at, CHUNK as u32).await?;
            if let Some(i) = position(&buf, spec, false) {
                return Ok(Some(at + i as u64));
            }
            if (buf.len() as u64) < CHUNK {
                return Ok(None); // the end
            }
            at += CHUNK - (m - 1);
            progress(at);
        }
    }
    // Back: windows ending where a match starting before `from` may end.
    let (_, size) = read(source, client, 0, 0).await?;
    let mut end = (spec.from + m - 1).min(size);
    loop {
        let start = end.saturating_sub(CHUNK);
        let (buf, _) = read(source, client, start, (end - start) as u32).await?;
        if let Some(i) = position(&buf, spec, true) {
            return Ok(Some(start + i as u64));
        }
        if start == 0 {
            return Ok(None);
        }
        end = start + m - 1;
        progress(start);
    }
}

/// The first (or last) match of the pattern in `buf`.
fn position(buf: &[u8], spec: &SearchSpec, last: bool) -> Option<usize> {
    let p = &spec.pattern;
    let eq = |w: &[u8]| {
        if spec.ignore_case {
            w.eq_ignore_ascii_case(p)
        } else {
            w == p.as_slice()
        }
    };
    let mut windows = buf.windows(p.len());
    if last {
        windows.rposition(eq)
    } else {
        windows.position(eq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(p: &str, from: u64, backward: bool) -> SearchSpec {
        SearchSpec {
            pattern: p.as_bytes().to_vec(),
            ignore_case: !p.chars().any(|c| c.is_uppercase()),
            from,
            backward,
        }
    }

    #[tokio::test]
    async fn a_search_finds_matches_across_chunks_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        // Matches at 10, across the first chunk boundary, and near the end.
        let mut data = vec![b'.'; 3 * CHUNK as usize];
        data[10..16].copy_from_slice(b"NEEDLE");
        let across = CHUNK as usize - 3;
        data[across..across + 6].copy_from_slice(b"needle");
        let late = data.len() - 7;
        data[late..late + 6].copy_from_slice(b"Needle");
        std::fs::write(&path, &data).unwrap();
        let src = Source::Local(path);
        let go = |s: SearchSpec| {
            let src = src.clone();
            async move { find(&src, None, &s, |_| {}).await.unwrap() }
        };
        assert_eq!(go(spec("needle", 0, false)).await, Some(10));
        assert_eq!(go(spec("needle", 11, false)).await, Some(across as u64));
        assert_eq!(
            go(spec("needle", across as u64 + 1, false)).await,
            Some(late as u64)
        );
        assert_eq!(go(spec("needle", late as u64 + 1, false)).await, None);
        // Capitals: the case counts.
        assert_eq!(go(spec("Needle", 0, false)).await, Some(late as u64));
        // Back from the end, then from each match.
        let end = data.len() as u64;
        assert_eq!(go(spec("needle", end, true)).await, Some(late as u64));
        assert_eq!(
            go(spec("needle", late as u64, true)).await,
            Some(across as u64)
        );
        assert_eq!(go(spec("needle", across as u64, true)).await, Some(10));
        assert_eq!(go(spec("needle", 10, true)).await, None);
    }

    #[test]
    fn a_local_read_is_positioned_and_short_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let (b, size) = read_local(&path, 4, 100).unwrap();
        assert_eq!((&b[..], size), (&b"456789"[..], 10));
        let (b, _) = read_local(&path, 20, 100).unwrap();
        assert!(b.is_empty());
        let e = read_local(dir.path(), 0, 10).unwrap_err();
        assert!(
            e.contains("not a regular file") || e.contains("directory"),
            "{e}"
        );
        // A fifo with no writer neither holds the thread nor is read.
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = read_local(&fifo, 0, 10).unwrap_err();
            assert!(e.contains("not a regular file"), "{e}");
        }
    }
}
