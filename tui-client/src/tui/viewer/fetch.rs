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
/// the pattern's length less one, so no match is cut) with the next
/// chunk read while one is searched; `progress` hears how far it got
/// after each chunk.
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
    let mut chunks: Box<dyn Iterator<Item = (u64, u64)> + Send> = if spec.backward {
        // Windows ending where a match starting before `from` may end.
        let (_, size) = read(source, client, 0, 0).await?;
        let end = (spec.from + m - 1).min(size);
        let ends = std::iter::successors(Some(end), move |e| {
            let s = e.saturating_sub(CHUNK);
            (s > 0).then_some(s + m - 1)
        });
        Box::new(ends.map(|e| (e.saturating_sub(CHUNK), e - e.saturating_sub(CHUNK))))
    } else {
        let starts = std::iter::successors(Some(spec.from), move |a| Some(a + CHUNK - (m - 1)));
        Box::new(starts.map(|a| (a, CHUNK)))
    };
    let fetch = |(at, len): (u64, u64)| {
        let (s, c) = (source.clone(), client.cloned());
        Ahead(tokio::spawn(async move {
            read(&s, c.as_ref(), at, len as u32).await
        }))
    };
    let Some(first) = chunks.next() else {
        return Ok(None);
    };
    let mut current = (first, fetch(first));
    loop {
        let ((at, len), mut reading) = current;
        let next = chunks.next().map(|n| (n, fetch(n)));
        let (buf, _) = (&mut reading.0).await.map_err(|e| e.to_string())??;
        if let Some(i) = position(&buf, spec, spec.backward) {
            return Ok(Some(at + i as u64));
        }
        if !spec.backward && (buf.len() as u64) < len {
            return Ok(None); // the end
        }
        let Some(n) = next else {
            return Ok(None);
        };
        progress(n.0 .0);
        current = n;
    }
}

/// A read started ahead, stopped if it is no longer wanted.
struct Ahead(JoinHandle<Result<(Bytes, u64), String>>);

impl Drop for Ahead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The first (or last) match of the pattern in `buf` (memchr's searches:
/// the chunks of a 10 GiB file are searched at memory speed).
fn position(buf: &[u8], spec: &SearchSpec, last: bool) -> Option<usize> {
    let p = &spec.pattern;
    let first = *p.first()?;
    if !spec.ignore_case || !p.iter().any(u8::is_ascii_alphabetic) {
        return if last {
            memchr::memmem::rfind(buf, p)
        } else {
            memchr::memmem::find(buf, p)
        };
    }
    // Any case: candidates by the first byte in either case, then checked.
    let (a, b) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let fits = |i: usize| {
        buf.get(i..i + p.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(p))
    };
    if last {
        memchr::memrchr2_iter(a, b, buf).find(|i| fits(*i))
    } else {
        memchr::memchr2_iter(a, b, buf).find(|i| fits(*i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(d: &[u8]) -> u64 {
        d.len() as u64
    }

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
        // A first byte that is no letter, the rest in any case.
        assert_eq!(go(spec(".needle", 0, false)).await, Some(9));
        assert_eq!(
            go(spec(".needle", end_of(&data), true)).await,
            Some(late as u64 - 1)
        );
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
