//! The F3 viewer through `update` and whole screens (TestBackend and
//! insta snapshots): text with escapes, wrap, hex for binary files, a
//! search running and found, and a 10 GiB file read a block at a time.

use bytes::Bytes;
use crossterm::event::KeyCode;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;

use super::action::{Action, Effect};
use super::app::App;
use super::app_tests::{app, key};
use super::render::render;
use super::viewer::cache::{BLOCK, CAPACITY};
use super::viewer::lines::Mode;
use super::viewer::{SearchSpec, Source, ViewNews, ViewWork};

fn draw(a: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(a.size.width, a.size.height)).unwrap();
    t.draw(|f| render(a, f)).unwrap();
    t.backend().to_string()
}

/// Answers every read among `fx` from `file` (offset -> bytes) until the
/// viewer asks for nothing more; returns the other effects.
fn serve(
    a: &mut App,
    mut fx: Vec<Effect>,
    size: u64,
    file: &dyn Fn(u64, usize) -> Vec<u8>,
) -> Vec<Effect> {
    let mut other = Vec::new();
    let mut rounds = 0;
    while !fx.is_empty() {
        rounds += 1;
        assert!(rounds < 1000, "the viewer keeps asking");
        let mut next = Vec::new();
        for e in fx {
            match e {
                Effect::View(ViewWork::Read {
                    view,
                    block,
                    length,
                    ..
                }) => {
                    let at = block * length as u64;
                    let n = (length as u64).min(size.saturating_sub(at)) as usize;
                    let result = Ok((Bytes::from(file(at, n)), size));
                    next.extend(a.update(Action::View(ViewNews::Block {
                        view,
                        block,
                        result,
                    })));
                }
                e => other.push(e),
            }
        }
        fx = next;
    }
    other
}

/// An app of `w`x`h` viewing the local `a.txt` holding `data`.
fn viewing(data: &'static [u8], w: u16, h: u16) -> App {
    let mut a = app();
    a.update(Action::Resize(w, h));
    a.local.select_name("a.txt");
    let fx = a.update(key(KeyCode::F(3)));
    assert_eq!(
        fx,
        vec![Effect::View(ViewWork::Read {
            view: 1,
            source: Source::Local("/home/me/a.txt".into()),
            block: 0,
            length: BLOCK as u32,
        })]
    );
    let size = data.len() as u64;
    let rest = serve(&mut a, fx, size, &|at, n| data[at as usize..][..n].to_vec());
    assert!(rest.is_empty(), "{rest:?}");
    a
}

const TEXT: &[u8] = b"first line\r\n\tindented with a tab\nan escape \x1b[2J and a bell \x07 stay escaped\n\
a very long line that goes on and on past the edge of the screen, so wrap has something to do here\n\
\xe2\x80\xae reversed? no: escaped\nlast line without newline";

#[test]
fn text_shows_lines_with_what_a_terminal_acts_on_escaped() {
    let a = viewing(TEXT, 60, 10);
    let screen = draw(&a);
    assert!(!screen.contains('\u{1b}') && !screen.contains('\u{202e}'));
    insta::assert_snapshot!("viewer_text", screen);
}

#[test]
fn wrap_folds_long_lines_and_the_status_says_so() {
    let mut a = viewing(TEXT, 60, 10);
    a.update(key(KeyCode::Char('w')));
    insta::assert_snapshot!("viewer_wrap", draw(&a));
    // Without wrap, → scrolls sideways.
    a.update(key(KeyCode::Char('w')));
    a.update(key(KeyCode::Right));
    assert!(draw(&a).contains("\"indented with a tab"), "{}", draw(&a));
}

#[test]
fn a_binary_file_opens_in_hex_and_h_switches() {
    let data: &'static [u8] = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00\x01\x00\x00\x00hello, world\x00\xff";
    let mut a = viewing(data, 80, 8);
    assert_eq!(a.viewer.as_ref().unwrap().mode, Mode::Hex);
    insta::assert_snapshot!("viewer_hex", draw(&a));
    a.update(key(KeyCode::Char('h')));
    let screen = draw(&a);
    assert!(screen.contains("\\x7fELF\\x02"), "{screen}");
    a.update(key(KeyCode::Char('w')));
    let screen = draw(&a);
    assert!(screen.contains("hello, world\\x00\\xff"), "{screen}");
}

#[test]
fn a_search_runs_in_the_background_and_shows_its_match() {
    let data: &'static [u8] = Box::leak(
        (0..200)
            .map(|i| {
                if i == 150 {
                    "here is the Needle we want\n".to_string()
                } else {
                    format!("line {i}\n")
                }
            })
            .collect::<String>()
            .into_bytes()
            .into_boxed_slice(),
    );
    let at = data.windows(6).position(|w| w == b"Needle").unwrap() as u64;
    let mut a = viewing(data, 60, 8);
    a.update(key(KeyCode::Char('/')));
    // Incremental: each change searches again from where it started.
    for (i, c) in "needle".bytes().enumerate() {
        let fx = a.update(key(KeyCode::Char(c as char)));
        assert_eq!(
            fx,
            vec![Effect::View(ViewWork::Search {
                view: 1,
                search: i as u64 + 1,
                source: Source::Local("/home/me/a.txt".into()),
                spec: SearchSpec {
                    pattern: b"needle"[..=i].to_vec(),
                    ignore_case: true,
                    from: 0,
                    backward: false,
                },
            })]
        );
    }
    // Enter keeps the search running.
    assert!(a.update(key(KeyCode::Enter)).is_empty());
    // Keys still work while it runs.
    a.update(key(KeyCode::Down));
    a.update(Action::View(ViewNews::Searching {
        view: 1,
        search: 6,
        at: data.len() as u64 / 2,
    }));
    insta::assert_snapshot!("viewer_searching", draw(&a));
    let fx = a.update(Action::View(ViewNews::Found {
        view: 1,
        search: 6,
        result: Ok(Some(at)),
    }));
    serve(&mut a, fx, data.len() as u64, &|o, n| {
        data[o as usize..][..n].to_vec()
    });
    insta::assert_snapshot!("viewer_found", draw(&a));
    // The match itself is highlighted, and only it.
    let mut t = Terminal::new(TestBackend::new(60, 8)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    let bg = |x: u16| t.backend().buffer()[(x, 0)].bg;
    assert_eq!(
        (bg(11), bg(12), bg(17), bg(18)),
        (Color::Reset, Color::Yellow, Color::Yellow, Color::Reset)
    );
    // n looks on from just after the match; N back from it.
    let fx = a.update(key(KeyCode::Char('n')));
    assert!(
        matches!(&fx[..], [Effect::View(ViewWork::Search { spec, .. })] if spec.from == at + 1 && !spec.backward)
    );
    let fx = a.update(key(KeyCode::Char('N')));
    assert!(
        matches!(&fx[..], [Effect::View(ViewWork::Search { search: 8, spec, .. })] if spec.from == at && spec.backward)
    );
    // The answer to the replaced search is dropped; Esc stops the running one.
    a.update(Action::View(ViewNews::Found {
        view: 1,
        search: 7,
        result: Ok(None),
    }));
    assert!(a.viewer.as_ref().unwrap().running.is_some());
    assert_eq!(
        a.update(key(KeyCode::Esc)),
        vec![Effect::View(ViewWork::Stop)]
    );
    assert!(a.viewer.is_some());
    assert_eq!(
        a.update(key(KeyCode::Char('q'))),
        vec![Effect::View(ViewWork::Stop)]
    );
    assert!(a.viewer.is_none());
}

/// Line `n` of the 10 GiB file: 16 bytes, "line 0000000042\n".
fn big(at: u64, n: usize) -> Vec<u8> {
    (at..at + n as u64)
        .map(|i| {
            let line = format!("line {:010}\n", i / 16);
            line.as_bytes()[(i % 16) as usize]
        })
        .collect()
}

#[test]
fn a_10_gib_file_opens_at_once_and_memory_stays_bounded() {
    let size = 10u64 << 30;
    let mut a = app();
    a.update(Action::Resize(60, 8));
    a.update(Action::RemoteBatch {
        generation: 1,
        entries: vec![super::app_tests::e(
            "huge.log",
            ferry_proto::msg::EntryKind::File,
            size,
        )],
        done: true,
    });
    a.update(key(KeyCode::Tab));
    a.remote.select_name("huge.log");
    let fx = a.update(key(KeyCode::F(3)));
    assert!(
        matches!(&fx[..], [Effect::View(ViewWork::Read { block: 0, source: Source::Remote(p), .. })] if p == "/huge.log")
    );
    serve(&mut a, fx, size, &big);
    let v = a.viewer.as_ref().unwrap();
    assert_eq!(v.cache.len(), 2, "the first block and one read ahead");
    assert!(draw(&a).contains("line 0000000005"));
    // The end: only the last blocks are read.
    let fx = a.update(key(KeyCode::End));
    assert!(
        matches!(&fx[..], [Effect::View(ViewWork::Read { block, .. })] if *block == size / BLOCK - 1)
    );
    serve(&mut a, fx, size, &big);
    let screen = draw(&a);
    let last = format!("line {:010}", size / 16 - 1);
    assert!(screen.contains(&last), "{screen}");
    assert!(
        screen.contains(&format!("{}/{size}", size - 16 * 6)),
        "{screen}"
    );
    // Paging back up through several blocks keeps at most CAPACITY.
    for _ in 0..20_000 {
        let fx = a.update(key(KeyCode::PageUp));
        serve(&mut a, fx, size, &big);
        assert!(a.viewer.as_ref().unwrap().cache.len() <= CAPACITY);
    }
    let v = a.viewer.as_ref().unwrap();
    assert_eq!(v.top, size - 16 * 6 - 20_000 * 16 * 5);
}

#[test]
fn f3_on_a_directory_says_what_it_does() {
    let mut a = app();
    a.local.select_name("pics");
    assert!(a.update(key(KeyCode::F(3))).is_empty());
    assert!(a.viewer.is_none());
    assert!(a.message.as_ref().unwrap().text.contains("F3 views files"));
}

#[test]
fn an_empty_file_says_so() {
    let a = viewing(b"", 40, 5);
    assert!(draw(&a).contains("(empty file)"));
}

#[test]
fn esc_in_the_search_line_goes_back_where_it_started() {
    let data: &'static [u8] = b"one\ntwo\nthree\nfour\n";
    let mut a = viewing(data, 40, 6);
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Char('?')));
    let fx = a.update(key(KeyCode::Char('o')));
    assert!(
        matches!(&fx[..], [Effect::View(ViewWork::Search { spec, .. })] if spec.backward && spec.from == 4)
    );
    a.update(Action::View(ViewNews::Found {
        view: 1,
        search: 1,
        result: Ok(Some(2)),
    }));
    assert_eq!(a.viewer.as_ref().unwrap().top, 0);
    // Backspace to nothing goes back too; Esc then closes the line only.
    a.update(key(KeyCode::Backspace));
    assert_eq!(a.viewer.as_ref().unwrap().top, 4);
    a.update(key(KeyCode::Char('t')));
    assert_eq!(
        a.update(key(KeyCode::Esc)),
        vec![Effect::View(ViewWork::Stop)]
    );
    let v = a.viewer.as_ref().unwrap();
    assert_eq!((v.top, v.found, v.prompt.is_none()), (4, None, true));
}

#[tokio::test]
async fn the_runtime_reads_a_local_block_and_stops_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.log");
    std::fs::write(&path, vec![b'x'; BLOCK as usize + 10]).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut rt = super::runtime::Runtime::new(tx);
    for block in [1, 0] {
        rt.run(Effect::View(ViewWork::Read {
            view: 7,
            source: Source::Local(path.clone()),
            block,
            length: BLOCK as u32,
        }));
    }
    let mut got = std::collections::BTreeMap::new();
    while got.len() < 2 {
        let a = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .expect("an answer")
            .expect("the runtime is alive");
        if let Action::View(ViewNews::Block {
            view: 7,
            block,
            result,
        }) = a
        {
            got.insert(block, result.unwrap());
        }
    }
    assert_eq!(got[&0].0.len(), BLOCK as usize);
    assert_eq!(got[&1].0.len(), 10);
    assert!(got.values().all(|(_, size)| *size == BLOCK + 10));
}
