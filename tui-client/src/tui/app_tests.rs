//! `update` without a terminal: navigation, marking with keys and mouse,
//! dialogs, the queue, the connection's life.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ferry_proto::msg::{Entry, EntryKind};
use ratatui::layout::Rect;

use super::action::{Action, Effect};
use super::app::{App, Focus, Link};
use super::dialog::Dialog;
use super::pane::Side;
use super::queue::JobState;
use crate::client::{ServerIdentity, Trust};
use crate::transfer::{Conflict, Direction, FileReport, Status, TransferEvent};

pub(super) fn e(name: &str, kind: EntryKind, size: u64) -> Entry {
    Entry {
        name: name.into(),
        kind,
        size,
        mtime: 1_700_000_000,
        mode: 0o644,
    }
}

pub(super) fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub(super) fn shift(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::SHIFT))
}

pub(super) fn mouse(
    kind: MouseEventKind,
    column: u16,
    row: u16,
    modifiers: KeyModifiers,
) -> Action {
    Action::Mouse(MouseEvent {
        kind,
        column,
        row,
        modifiers,
    })
}

/// An app at 100x30, connected, with both panes filled.
pub(super) fn app() -> App {
    let mut a = App::new(PathBuf::from("/home/me"), Rect::new(0, 0, 100, 30));
    let fx = a.start();
    assert_eq!(
        fx,
        vec![Effect::ListLocal {
            path: PathBuf::from("/home/me"),
            generation: 1,
            order: Default::default()
        }]
    );
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![
            e("a.txt", EntryKind::File, 100),
            e("b.txt", EntryKind::File, 200),
            e("c.txt", EntryKind::File, 300),
            e("pics", EntryKind::Dir, 4096),
        ]
        .into()),
    });
    let fx = a.update(Action::Connected {
        label: "me@host:7272".into(),
        identity: ServerIdentity {
            fingerprint: Some("SHA256:x".into()),
            trust: Trust::Pinned,
        },
    });
    assert!(matches!(fx[0], Effect::ListRemote { generation: 1, .. }));
    assert!(fx.contains(&Effect::Quota));
    a.update(Action::RemoteBatch {
        generation: 1,
        entries: vec![e("b.txt", EntryKind::File, 50)],
        done: false,
    });
    a.update(Action::RemoteBatch {
        generation: 1,
        entries: vec![e("remote.bin", EntryKind::File, 9)],
        done: true,
    });
    a
}

#[test]
fn navigation_and_opening_directories() {
    let mut a = app();
    // Rows: .., pics/, a.txt, b.txt, c.txt
    assert_eq!(a.local.cursor, 0);
    a.update(key(KeyCode::Down));
    assert_eq!(a.local.current().unwrap().name, "pics");
    a.update(key(KeyCode::End));
    assert_eq!(a.local.current().unwrap().name, "c.txt");
    a.update(key(KeyCode::Home));
    assert!(a.local.is_parent_row(a.local.cursor));
    a.update(key(KeyCode::Char('j')));
    let fx = a.update(key(KeyCode::Enter));
    assert_eq!(
        fx,
        vec![Effect::ListLocal {
            path: PathBuf::from("/home/me/pics"),
            generation: 2,
            order: Default::default()
        }]
    );
    a.update(Action::LocalListed {
        generation: 2,
        result: Ok(vec![].into()),
    });
    let fx = a.update(key(KeyCode::Backspace));
    assert_eq!(
        fx,
        vec![Effect::ListLocal {
            path: PathBuf::from("/home/me"),
            generation: 3,
            order: Default::default()
        }]
    );
    a.update(key(KeyCode::Tab));
    assert_eq!(a.focus, Focus::Pane(Side::Remote));
    let fx = a.update(Action::Key(KeyEvent::new(
        KeyCode::Char('r'),
        KeyModifiers::CONTROL,
    )));
    assert!(matches!(fx[0], Effect::ListRemote { generation: 2, .. }));
    // A stale batch from the old listing is ignored.
    a.update(Action::RemoteBatch {
        generation: 1,
        entries: vec![e("stale", EntryKind::File, 1)],
        done: true,
    });
    assert!(a.remote.find("stale").is_none());
}

#[test]
fn marking_with_keys() {
    let mut a = app();
    a.update(key(KeyCode::Down)); // pics
    a.update(key(KeyCode::Down)); // a.txt
    a.update(key(KeyCode::Char(' ')));
    assert!(a.local.marked.contains("a.txt"));
    assert_eq!(a.local.current().unwrap().name, "b.txt", "space moves down");
    a.update(key(KeyCode::Insert));
    assert_eq!(a.local.marked_summary(), (2, 300));
    a.update(key(KeyCode::Char('*')));
    assert_eq!(a.local.marked.len(), 2, "pics and c.txt");
    assert!(a.local.marked.contains("pics") && a.local.marked.contains("c.txt"));
    a.update(key(KeyCode::Char('+')));
    assert_eq!(a.local.marked.len(), 4);
    a.update(key(KeyCode::Char('-')));
    assert!(a.local.marked.is_empty());
    // Shift+arrows extend a range from where they started.
    a.update(key(KeyCode::Home));
    a.update(key(KeyCode::Down));
    a.update(shift(KeyCode::Down));
    a.update(shift(KeyCode::Down));
    let mut m: Vec<_> = a.local.marked.iter().cloned().collect();
    m.sort();
    assert_eq!(m, ["a.txt", "b.txt", "pics"]);
}

#[test]
fn mouse_click_drag_ctrl_click_double_click_and_wheel() {
    let mut a = app();
    let rows = a.areas().local_rows;
    let r = a.areas().remote_rows;
    // Click the remote pane's second row: focus and cursor move there.
    a.update(mouse(
        MouseEventKind::Down(MouseButton::Left),
        r.x + 3,
        r.y + 1,
        KeyModifiers::NONE,
    ));
    a.update(mouse(
        MouseEventKind::Up(MouseButton::Left),
        r.x + 3,
        r.y + 1,
        KeyModifiers::NONE,
    ));
    assert_eq!(a.focus, Focus::Pane(Side::Remote));
    assert_eq!(a.remote.cursor, 1);
    // Drag from a.txt (row 2) to c.txt (row 4) in the local pane.
    a.update(mouse(
        MouseEventKind::Down(MouseButton::Left),
        rows.x + 2,
        rows.y + 2,
        KeyModifiers::NONE,
    ));
    a.update(mouse(
        MouseEventKind::Drag(MouseButton::Left),
        rows.x + 2,
        rows.y + 3,
        KeyModifiers::NONE,
    ));
    a.update(mouse(
        MouseEventKind::Drag(MouseButton::Left),
        rows.x + 2,
        rows.y + 4,
        KeyModifiers::NONE,
    ));
    a.update(mouse(
        MouseEventKind::Up(MouseButton::Left),
        rows.x + 2,
        rows.y + 4,
        KeyModifiers::NONE,
    ));
    let mut m: Vec<_> = a.local.marked.iter().cloned().collect();
    m.sort();
    assert_eq!(m, ["a.txt", "b.txt", "c.txt"]);
    // Ctrl+click toggles one.
    a.update(mouse(
        MouseEventKind::Down(MouseButton::Left),
        rows.x + 2,
        rows.y + 3,
        KeyModifiers::CONTROL,
    ));
    assert!(!a.local.marked.contains("b.txt"));
    // Double-click opens a directory.
    a.update(mouse(
        MouseEventKind::Down(MouseButton::Left),
        rows.x + 2,
        rows.y + 1,
        KeyModifiers::NONE,
    ));
    let fx = a.update(mouse(
        MouseEventKind::Down(MouseButton::Left),
        rows.x + 2,
        rows.y + 1,
        KeyModifiers::NONE,
    ));
    assert_eq!(
        fx,
        vec![Effect::ListLocal {
            path: PathBuf::from("/home/me/pics"),
            generation: 2,
            order: Default::default()
        }]
    );
    // The wheel scrolls a long listing.
    let many: Vec<Entry> = (0..200)
        .map(|i| e(&format!("f{i:03}"), EntryKind::File, 1))
        .collect();
    a.update(Action::LocalListed {
        generation: 2,
        result: Ok(many.into()),
    });
    a.update(mouse(
        MouseEventKind::ScrollDown,
        rows.x + 2,
        rows.y + 2,
        KeyModifiers::NONE,
    ));
    a.update(mouse(
        MouseEventKind::ScrollDown,
        rows.x + 2,
        rows.y + 2,
        KeyModifiers::NONE,
    ));
    assert_eq!(a.local.offset, 6);
    assert!(a.local.cursor >= 6);
    // Clicking the F-key bar presses the key.
    let keys = a.areas().keys;
    a.update(mouse(
        MouseEventKind::Down(MouseButton::Left),
        keys.x + 1,
        keys.y,
        KeyModifiers::NONE,
    ));
    assert_eq!(a.dialog, Some(Dialog::Help));
}

#[test]
fn mkdir_rename_and_delete_dialogs() {
    let mut a = app();
    a.update(key(KeyCode::F(7)));
    for c in "new dir".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    let fx = a.update(key(KeyCode::Enter));
    assert_eq!(
        fx,
        vec![Effect::Mkdir(Side::Local, "/home/me/new dir".into())]
    );
    assert!(a.dialog.is_none());

    a.update(key(KeyCode::Tab));
    a.update(key(KeyCode::F(6))); // rename b.txt on the remote side
    assert!(matches!(&a.dialog, Some(Dialog::Input(d)) if d.text == "b.txt"));
    for _ in 0..5 {
        a.update(key(KeyCode::Backspace));
    }
    for c in "/sub/x.txt".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    let fx = a.update(key(KeyCode::Enter));
    assert_eq!(
        fx,
        vec![Effect::Rename(
            Side::Remote,
            "/b.txt".into(),
            "/sub/x.txt".into()
        )]
    );

    a.update(key(KeyCode::Delete));
    assert!(matches!(&a.dialog, Some(Dialog::ConfirmDelete(d)) if d.entries.len() == 1));
    assert!(a.update(key(KeyCode::Esc)).is_empty());
    assert!(a.dialog.is_none(), "Esc keeps the files");
    a.update(key(KeyCode::F(8)));
    let fx = a.update(key(KeyCode::Char('y')));
    assert_eq!(
        fx,
        vec![Effect::Delete(Side::Remote, vec!["/b.txt".into()])]
    );
}

#[test]
fn copy_with_conflicts_asks_and_applies_to_all() {
    let mut a = app();
    a.update(key(KeyCode::Char('+'))); // all four local entries; b.txt exists remotely
    let fx = a.update(key(KeyCode::F(5)));
    assert!(fx.is_empty());
    let Some(Dialog::Conflict(plan)) = &a.dialog else {
        panic!("no conflict dialog")
    };
    assert_eq!(plan.items[plan.asking].entry.name, "b.txt");
    let fx = a.update(key(KeyCode::Char('r')));
    // One job per policy: b.txt resumes, the three others in one job.
    let specs: Vec<_> = fx
        .iter()
        .map(|f| match f {
            Effect::StartJob { spec, .. } => spec.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(specs.len(), 2, "{specs:?}");
    let b = specs
        .iter()
        .find(|s| s.conflict == Conflict::Resume)
        .unwrap();
    assert_eq!(*b.sources, ["/home/me/b.txt".to_string()]);
    assert_eq!(b.direction, Direction::Put);
    let rest = specs.iter().find(|s| s.conflict == Conflict::Auto).unwrap();
    assert_eq!(rest.sources.len(), 3);
    assert_eq!(a.queue.jobs.len(), 2);
    assert!(a.local.marked.is_empty());

    // Skip with "apply to all" queues nothing for the conflicting ones.
    let mut a = app();
    a.update(key(KeyCode::Tab));
    a.update(key(KeyCode::Char('+')));
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![
            e("b.txt", EntryKind::File, 1),
            e("remote.bin", EntryKind::File, 1),
        ]
        .into()),
    });
    a.update(key(KeyCode::F(5)));
    a.update(key(KeyCode::Char('a')));
    let fx = a.update(key(KeyCode::Char('s')));
    assert!(fx.is_empty());
    assert!(a.dialog.is_none());
}

#[test]
fn queue_tracks_progress_cancel_and_retry() {
    let mut a = app();
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Down)); // a.txt
    let fx = a.update(key(KeyCode::F(5)));
    let Effect::StartJob { job, .. } = fx[0].clone() else {
        panic!()
    };
    assert_eq!(a.queue.jobs[0].state, JobState::Queued);
    let queued = TransferEvent::Queued {
        id: 0,
        direction: Direction::Put,
        source: "a.txt".into(),
        target: "/a.txt".into(),
        size: Some(100),
    };
    a.update(Action::JobEvent { job, event: queued });
    a.update(Action::JobEvent {
        job,
        event: TransferEvent::Started {
            id: 0,
            size: 100,
            resumed_from: 0,
        },
    });
    a.update(Action::JobEvent {
        job,
        event: TransferEvent::Progress { id: 0, done: 40 },
    });
    assert_eq!(a.queue.jobs[0].state, JobState::Running);
    assert_eq!(a.queue.overall(a.now).done, 40);
    // Quitting now asks first.
    a.update(key(KeyCode::Char('q')));
    assert_eq!(a.dialog, Some(Dialog::ConfirmQuit));
    a.update(key(KeyCode::Char('n')));
    assert!(!a.quit);
    // Cancel from the queue.
    a.update(key(KeyCode::F(9)));
    assert_eq!(a.focus, Focus::Queue);
    let fx = a.update(key(KeyCode::Char('c')));
    assert_eq!(fx, vec![Effect::CancelJob(job)]);
    a.update(Action::JobEnded {
        job,
        result: Err("cancelled".into()),
    });
    assert_eq!(a.queue.jobs[0].state, JobState::Cancelled);
    // Retry resumes, as a new run (what the old one still says is ignored).
    let fx = a.update(key(KeyCode::Char('r')));
    let [Effect::StartJob { job, spec }] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(spec.conflict, Conflict::Resume);
    let job = *job;
    let report = FileReport {
        direction: Direction::Put,
        local: "a.txt".into(),
        remote: "/a.txt".into(),
        size: 100,
        sha256: None,
        resumed_from: 40,
        status: Status::Done,
    };
    a.update(Action::JobEvent {
        job,
        event: TransferEvent::Finished { id: 0, report },
    });
    let fx = a.update(Action::JobEnded {
        job,
        result: Ok(()),
    });
    assert_eq!(a.queue.jobs[0].state, JobState::Done);
    assert!(
        matches!(fx[0], Effect::ListRemote { .. }),
        "the target pane refreshes"
    );
}

#[test]
fn lost_connection_offers_reconnect_and_resumes_the_queue() {
    let mut a = app();
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Down));
    let fx = a.update(key(KeyCode::F(5)));
    let Effect::StartJob { job, .. } = fx[0].clone() else {
        panic!()
    };
    a.update(Action::JobEnded {
        job,
        result: Err("connection lost: the server closed the connection".into()),
    });
    a.update(Action::Disconnected(
        "the server closed the connection".into(),
    ));
    assert!(matches!(a.link, Link::Lost(_)));
    assert!(matches!(a.dialog, Some(Dialog::Reconnect(_))));
    assert_eq!(a.update(key(KeyCode::Char('r'))), vec![Effect::Reconnect]);
    let fx = a.update(Action::Connected {
        label: "me@host:7272".into(),
        identity: ServerIdentity {
            fingerprint: None,
            trust: Trust::Pinned,
        },
    });
    assert!(a.dialog.is_none());
    assert!(
        fx.iter()
            .any(|f| matches!(f, Effect::StartJob { job: j, .. } if *j == job)),
        "interrupted job resumes: {fx:?}"
    );
}

#[test]
fn unknown_server_and_connect_form() {
    let mut a = App::new(PathBuf::from("/"), Rect::new(0, 0, 80, 24));
    a.ask_connect(Default::default());
    for c in "host:7272".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    a.update(key(KeyCode::Tab));
    for c in "me".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    a.update(key(KeyCode::Enter)); // to the password field
    for c in "pw".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    let fx = a.update(key(KeyCode::Enter));
    let Effect::Connect(opts) = &fx[0] else {
        panic!()
    };
    assert_eq!(
        (
            opts.server.as_str(),
            opts.user.as_str(),
            opts.password.as_str()
        ),
        ("host:7272", "me", "pw")
    );
    a.update(Action::UnknownServer {
        server: "host:7272".into(),
        fingerprint: "SHA256:abc".into(),
    });
    assert!(matches!(a.dialog, Some(Dialog::Trust(_))));
    assert_eq!(
        a.update(key(KeyCode::Char('y'))),
        vec![Effect::TrustAndConnect("SHA256:abc".into())]
    );
}

#[test]
fn filter_as_you_type_and_sorting() {
    let mut a = app();
    a.update(key(KeyCode::Char('/')));
    a.update(key(KeyCode::Char('B')));
    assert!(a.filtering);
    assert_eq!(a.local.len(), 2, "the parent row and b.txt");
    a.update(key(KeyCode::Enter));
    assert!(!a.filtering);
    assert_eq!(a.local.filter.as_deref(), Some("B"));
    a.update(key(KeyCode::Char('/')));
    a.update(key(KeyCode::Esc));
    assert_eq!(a.local.len(), 5);
    a.update(key(KeyCode::Char('s'))); // by size
    a.update(key(KeyCode::End));
    assert_eq!(a.local.current().unwrap().name, "a.txt", "smallest last");
}
