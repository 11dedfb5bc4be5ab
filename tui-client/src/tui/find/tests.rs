//! Find: the form's parsing, the filters, the panel's keys, the whole
//! flow through `update`, the panel on screen, and a local walk.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ferry_proto::msg::EntryKind;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::run::{News, Work};
use super::*;
use crate::tui::action::{Action, Effect};
use crate::tui::app::Focus;
use crate::tui::app_tests::{app, e, key};
use crate::tui::dialog::Dialog;
use crate::tui::render::render;

fn k(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn typed(form: &mut FindForm, text: &str) {
    for c in text.chars() {
        form.key(&k(KeyCode::Char(c)));
    }
}

#[test]
fn the_form_reads_sizes_and_times_and_says_what_is_wrong() {
    let mut f = FindForm::new(Side::Local, "/d".into());
    assert_eq!(f.query().unwrap().pattern, "*");
    f.key(&k(KeyCode::Backspace));
    typed(&mut f, "*.log");
    f.key(&k(KeyCode::Tab));
    typed(&mut f, "1KiB");
    f.key(&k(KeyCode::Tab));
    typed(&mut f, "2MB");
    f.key(&k(KeyCode::Tab));
    typed(&mut f, "1970-01-02");
    let FormOutcome::Search(q) = f.key(&k(KeyCode::Enter)) else {
        panic!("{f:?}")
    };
    assert_eq!(
        q,
        FindQuery {
            pattern: "*.log".into(),
            min_size: Some(1024),
            max_size: Some(2_000_000),
            newer: Some(86_400),
            older: None,
        }
    );
    f.key(&k(KeyCode::BackTab));
    f.key(&k(KeyCode::Char('x')));
    assert_eq!(f.key(&k(KeyCode::Enter)), FormOutcome::Editing);
    assert!(
        f.error.as_deref().unwrap().contains("2MBx"),
        "{:?}",
        f.error
    );
    f.fields[2] = "1".into();
    assert!(f.query().unwrap_err().contains("min size is above"));
    f.fields = ["[unclosed".into(), "".into(), "".into(), "".into()];
    assert!(f.query().unwrap_err().starts_with("pattern:"));
    f.fields[0] = "ok".into();
    f.fields[3] = "yesterday".into();
    assert!(f.query().unwrap_err().contains("not a time ago"));
    assert_eq!(f.key(&k(KeyCode::Esc)), FormOutcome::Cancelled);
}

#[test]
fn filters_are_the_servers() {
    let q = FindQuery {
        pattern: "*".into(),
        min_size: Some(10),
        ..Default::default()
    };
    assert!(keeps(&q, &e("x", EntryKind::File, 10)));
    assert!(!keeps(&q, &e("x", EntryKind::File, 9)));
    assert!(
        !keeps(&q, &e("x", EntryKind::Dir, 4096)),
        "sizes select files"
    );
    let mut d = e("x", EntryKind::Dir, 0);
    let q = FindQuery {
        pattern: "*".into(),
        newer: Some(100),
        older: Some(200),
        ..Default::default()
    };
    d.mtime = 150;
    assert!(keeps(&q, &d));
    d.mtime = 100;
    assert!(!keeps(&q, &d));
    let g = glob("*.txt").unwrap();
    assert!(g.is_match("a.txt") && !g.is_match("a.txt.gz"));
    assert_eq!(
        split_path("/a/b/c.txt"),
        Some(("/a/b".into(), "c.txt".into()))
    );
    assert_eq!(split_path("/c"), Some(("/".into(), "c".into())));
}

#[test]
fn the_panel_keeps_at_most_its_cap_and_esc_stops_then_closes() {
    let mut p = FindPanel::new(7, Side::Remote, "/".into(), FindQuery::default());
    let many: Vec<_> = (0..MAX_RESULTS + 5)
        .map(|i| e(&format!("/d/f{i}"), EntryKind::File, 1))
        .collect();
    p.apply(Event::Batch(many));
    assert_eq!(p.results.len(), MAX_RESULTS);
    p.key(&k(KeyCode::End), 10);
    assert_eq!(p.cursor, MAX_RESULTS - 1);
    p.key(&k(KeyCode::PageUp), 10);
    assert_eq!(p.cursor, MAX_RESULTS - 11);
    assert_eq!(p.key(&k(KeyCode::Esc), 10), PanelOutcome::Stop);
    assert_eq!(p.state, State::Incomplete("stopped".into()));
    // A late answer changes nothing once stopped.
    p.apply(Event::Done(None));
    assert_eq!(p.state, State::Incomplete("stopped".into()));
    assert_eq!(p.key(&k(KeyCode::Esc), 10), PanelOutcome::Close);
}

fn ctrl_f() -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL))
}

#[test]
fn a_remote_find_shows_results_as_they_come_and_enter_goes_to_one() {
    let mut a = app();
    a.update(key(KeyCode::Tab));
    assert!(a.update(ctrl_f()).is_empty());
    for c in "bin".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    a.update(key(KeyCode::Home));
    a.update(key(KeyCode::Char('*')));
    a.update(key(KeyCode::Char('.')));
    let fx = a.update(key(KeyCode::Enter));
    // The field starts as "*": "bin" after it, "*." before it.
    let [Effect::Find(Work::Start {
        id,
        side: Side::Remote,
        dir,
        query,
    })] = &fx[..]
    else {
        panic!("{fx:?}")
    };
    assert_eq!((dir.as_str(), query.pattern.as_str()), ("/", "*.*bin"));
    let id = *id;
    a.update(Action::Find(News {
        id,
        event: Event::Batch(vec![
            e("/a/one.bin", EntryKind::File, 2048),
            e("/a/deep/two.bin", EntryKind::File, 10),
        ]),
    }));
    // Another search's news are not this one's.
    a.update(Action::Find(News {
        id: id + 100,
        event: Event::Batch(vec![e("/x.bin", EntryKind::File, 1)]),
    }));
    a.update(Action::Find(News {
        id,
        event: Event::Batch(vec![e("/three.bin", EntryKind::File, 3)]),
    }));
    a.update(Action::Find(News {
        id,
        event: Event::Done(Some("the server stopped at its limits".into())),
    }));
    a.update(key(KeyCode::Down));
    a.update(Action::Resize(80, 20));
    let mut t = Terminal::new(TestBackend::new(80, 20)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    insta::assert_snapshot!("find_panel", t.backend().to_string());
    let fx = a.update(key(KeyCode::Enter));
    assert!(a.dialog.is_none());
    assert_eq!(fx[0], Effect::Find(Work::Stop(id)));
    assert!(
        matches!(&fx[1], Effect::ListRemote { path, .. } if path.to_string() == "/a/deep"),
        "{fx:?}"
    );
    let Effect::ListRemote { generation, .. } = fx[1] else {
        unreachable!()
    };
    a.update(Action::RemoteBatch {
        generation,
        entries: vec![
            e("one.txt", EntryKind::File, 1),
            e("two.bin", EntryKind::File, 10),
        ],
        done: true,
    });
    assert_eq!(a.focus, Focus::Pane(Side::Remote));
    assert_eq!(a.remote.current().unwrap().name, "two.bin");
}

#[test]
fn alt_f7_opens_it_for_the_local_pane_and_esc_closes_it() {
    let mut a = app();
    a.update(Action::Key(KeyEvent::new(KeyCode::F(7), KeyModifiers::ALT)));
    let Some(Dialog::Find(d)) = &a.dialog else {
        panic!("{:?}", a.dialog)
    };
    assert!(matches!(d.as_ref(), Find::Form(f) if f.side == Side::Local && f.dir == "/home/me"));
    let fx = a.update(key(KeyCode::Enter));
    let [Effect::Find(Work::Start { id, .. })] = &fx[..] else {
        panic!("{fx:?}")
    };
    let id = *id;
    assert_eq!(
        a.update(key(KeyCode::Esc)),
        vec![Effect::Find(Work::Stop(id))]
    );
    assert!(a.dialog.is_some(), "the first Esc stops the search");
    assert_eq!(
        a.update(key(KeyCode::Esc)),
        vec![Effect::Find(Work::Stop(id))]
    );
    assert!(a.dialog.is_none());
}

#[tokio::test]
async fn a_local_walk_filters_and_never_follows_links() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("a/b")).unwrap();
    std::fs::write(d.join("a/b/big.log"), vec![0u8; 5000]).unwrap();
    std::fs::write(d.join("a/small.log"), b"x").unwrap();
    std::fs::write(d.join("top.txt"), b"x").unwrap();
    // A loop: followed, it would never end.
    std::os::unix::fs::symlink("..", d.join("a/b/up")).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let query = FindQuery {
        pattern: "*.log".into(),
        ..Default::default()
    };
    run::spawn(
        Work::Start {
            id: 42,
            side: Side::Local,
            dir: d.display().to_string(),
            query,
        },
        None,
        tx,
    );
    let mut found = vec![];
    let mut end = None;
    while let Some(a) = rx.recv().await {
        let Action::Find(News { id: 42, event }) = a else {
            panic!("{a:?}")
        };
        match event {
            Event::Local(b) => found.extend(b.into_iter().map(|(e, _)| e.name)),
            Event::Batch(b) => panic!("{b:?}"),
            Event::Done(why) => end = Some(why),
            Event::Failed(e) => panic!("{e}"),
        }
    }
    found.sort();
    let base = d.display().to_string();
    assert_eq!(
        found,
        [format!("{base}/a/b/big.log"), format!("{base}/a/small.log")]
    );
    assert_eq!(end, Some(None), "complete");
    // With a size filter, only the big one; a missing directory fails.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let query = FindQuery {
        pattern: "*".into(),
        min_size: Some(1000),
        ..Default::default()
    };
    let send = move |ev| {
        let _ = tx.send(ev);
    };
    run::spawn(
        Work::Start {
            id: 43,
            side: Side::Local,
            dir: d.join("none").display().to_string(),
            query: query.clone(),
        },
        None,
        tokio::sync::mpsc::unbounded_channel().0,
    );
    run::walk(43, d.to_path_buf(), &query, &send);
    run::walk(43, d.join("gone"), &query, &send);
    drop(send);
    let mut got = vec![];
    while let Some(ev) = rx.recv().await {
        got.push(ev);
    }
    assert!(matches!(&got[0], Event::Local(b) if b.len() == 1 && b[0].0.name.ends_with("big.log")));
    assert!(matches!(&got[1], Event::Done(None)));
    assert!(matches!(&got[2], Event::Failed(e) if e.contains("gone")));

    // Under a directory whose name is not UTF-8, Enter opens the real
    // directory (failed before the fix: it opened the lossy `n\u{fffd}`).
    use std::os::unix::ffi::OsStrExt;
    let real = d.join(std::ffi::OsStr::from_bytes(b"n\xff"));
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("deep.txt"), b"x").unwrap();
    let query = FindQuery {
        pattern: "deep.txt".into(),
        ..Default::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let dir = d.display().to_string();
    let mut panel = FindPanel::new(44, Side::Local, dir.clone(), query.clone());
    run::spawn(
        Work::Start {
            id: 44,
            side: Side::Local,
            dir,
            query,
        },
        None,
        tx,
    );
    while let Some(Action::Find(News { event, .. })) = rx.recv().await {
        panel.apply(event);
    }
    assert_eq!(panel.results.len(), 1);
    let mut a = app();
    a.dialog = Some(Dialog::Find(Box::new(Find::Panel(panel))));
    let fx = a.update(key(KeyCode::Enter));
    assert!(
        matches!(&fx[1], Effect::ListLocal { path, .. } if *path == real),
        "{fx:?}"
    );
}
