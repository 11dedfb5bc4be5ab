//! The TUI's copy and move within the remote side (Shift+F5, Shift+F6)
//! through the real client library against a real ferryd: the plan finds
//! the conflicts on the server, a tree copied under a new name is whole,
//! an overwrite replaces a file leaving nothing beside it, a directory is
//! never put into itself, and the server's quota and entry limits come
//! back as clear errors.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ferry_e2e::{Server, TEST_CONFIG};
use ferry_proto::msg::Entry;
use ferry_tui::client::Client;
use ferry_tui::tui::action::Action;
use ferry_tui::tui::pane::Side;
use ferry_tui::tui::within::run::{spawn, News, Work};
use ferry_tui::tui::within::{Choice, Op, Outcome, Plan, Request};

const PW: &str = "pw";

async fn run(c: &Client, work: Work) -> Vec<Action> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    spawn(work, Some(c.clone()), tx);
    let mut out = vec![];
    while let Some(a) = rx.recv().await {
        out.push(a);
    }
    out
}

async fn planned(c: &Client, op: Op, names: &[&str], target: &str) -> Result<Plan, String> {
    let listed: Vec<Entry> = c.list("/").await.unwrap();
    let sources = names
        .iter()
        .map(|n| listed.iter().find(|e| e.name == *n).unwrap().clone())
        .collect();
    let req = Request {
        side: Side::Remote,
        op,
        dir: "/".into(),
        sources,
        target: target.into(),
    };
    match run(c, Work::Plan(req)).await.pop() {
        Some(Action::Within(News::Planned(r))) => r,
        other => panic!("{other:?}"),
    }
}

/// Runs a plan; the message it ends with, and whether it is an error.
async fn ran(c: &Client, p: Plan) -> (String, bool) {
    match run(c, Work::Run(p)).await.pop() {
        Some(Action::OpDone {
            message: Some(m), ..
        }) => (m, false),
        Some(Action::OpFailed(m)) => (m, true),
        other => panic!("{other:?}"),
    }
}

fn key(p: &mut Plan, c: char) -> Outcome {
    p.key(&KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_copies_and_moves_within_the_side() {
    let s =
        Server::start_with(&TEST_CONFIG.replace("[limits]\n", "[limits]\nmax_copy_entries = 6\n"));
    s.add_user("u", PW, Some("1MiB"));
    let f = s.files("u");
    f.write("a.txt", b"alpha");
    f.write("b.txt", b"bravo, older");
    f.write("d/x.bin", vec![7u8; 1000]);
    f.write("d/sub/y.txt", b"y");
    // Counted when the session begins.
    f.write("big.bin", vec![1u8; 700 << 10]);
    let c = s.client("u", PW).await.unwrap();

    // The tree onto itself: a conflict that only a new name solves.
    let mut p = planned(&c, Op::Copy, &["d"], "/d").await.unwrap();
    assert!(p.advance());
    assert_eq!(
        key(&mut p, 'o'),
        Outcome::Asking,
        "never merged or replaced"
    );
    assert_eq!(key(&mut p, 'n'), Outcome::Asking);
    assert_eq!(p.renaming.as_ref().unwrap().0, "d (1)");
    assert_eq!(
        p.key(&KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        Outcome::Ready
    );
    let (m, err) = ran(&c, p).await;
    assert!(!err && m.starts_with("copied 1 entry"), "{m}");
    assert_eq!(f.read("d (1)/x.bin"), vec![7u8; 1000]);
    assert_eq!(f.read("d (1)/sub/y.txt"), b"y");

    // A file over a file: replaced whole, nothing left beside it.
    let mut p = planned(&c, Op::Copy, &["a.txt"], "b.txt").await.unwrap();
    assert!(p.advance());
    assert_eq!(key(&mut p, 'o'), Outcome::Ready);
    let (m, err) = ran(&c, p).await;
    assert!(!err, "{m}");
    assert_eq!(f.read("b.txt"), b"alpha");
    assert_eq!(f.read("a.txt"), b"alpha");
    let names: Vec<String> = c
        .list("/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(!names.iter().any(|n| n.contains("ferry-")), "{names:?}");

    // Into itself: refused before anything is asked of the server.
    let r = planned(&c, Op::Copy, &["d"], "/d/sub").await;
    assert!(r.unwrap_err().contains("into itself"));

    // The server's limits, said as they are: the quota…
    let p = planned(&c, Op::Copy, &["big.bin"], "big2.bin")
        .await
        .unwrap();
    let (m, err) = ran(&c, p).await;
    assert!(
        err && m.contains("cannot copy /big.bin to /big2.bin") && m.contains("quota"),
        "{m}"
    );
    assert!(!f.exists("big2.bin"));
    // …and the entries one copy may make.
    f.write("d/sub/more/z1", b"1");
    f.write("d/sub/more/z2", b"2");
    let p = planned(&c, Op::Copy, &["d"], "d2").await.unwrap();
    let (m, err) = ran(&c, p).await;
    assert!(err && m.contains("holds more than 6 entries"), "{m}");
    assert!(!f.exists("d2"));

    // Moves are renames: two entries into d, one skipped on conflict.
    f.write("d/a.txt", b"in d");
    let mut p = planned(&c, Op::Move, &["a.txt", "b.txt"], "/d")
        .await
        .unwrap();
    assert!(p.advance());
    assert_eq!(p.items[0].existing.as_ref().unwrap().size, 4);
    assert_eq!(key(&mut p, 's'), Outcome::Ready);
    assert_eq!(p.items[0].choice, Choice::Skip);
    let (m, err) = ran(&c, p).await;
    assert!(!err && m.starts_with("moved 1 entry"), "{m}");
    assert_eq!(f.read("d/b.txt"), b"alpha");
    assert!(!f.exists("b.txt") && f.exists("a.txt"));
    assert_eq!(f.read("d/a.txt"), b"in d");
}
