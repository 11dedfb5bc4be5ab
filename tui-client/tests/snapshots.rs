//! Whole screens rendered with ratatui's TestBackend at 100x30 and compared
//! with reviewed snapshots (insta). Paths are fixed, not temporary, so
//! nothing needs filtering; times are fixed Unix times shown in UTC.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ferry_proto::msg::{Entry, EntryKind};
use ferry_tui::client::{ServerIdentity, Trust};
use ferry_tui::transfer::{Direction, TransferEvent};
use ferry_tui::tui::action::{Action, Effect};
use ferry_tui::tui::app::App;
use ferry_tui::tui::dialog::ConnectForm;
use ferry_tui::tui::render::render;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;

fn e(name: &str, kind: EntryKind, size: u64) -> Entry {
    Entry {
        name: name.into(),
        kind,
        size,
        mtime: 1_750_000_000,
        mode: 0o644,
    }
}

fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn draw(app: &App) -> String {
    draw_at(app, 100, 30)
}

fn draw_at(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render(app, f)).unwrap();
    t.backend().to_string()
}

fn app() -> App {
    let mut a = App::new(PathBuf::from("/home/me/projects"), Rect::new(0, 0, 100, 30));
    a.start();
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![
            e("src", EntryKind::Dir, 4096),
            e("Cargo.toml", EntryKind::File, 1234),
            e("report final.pdf", EntryKind::File, 5 << 20),
            e("video.mkv", EntryKind::File, 3 << 30),
            e(".git", EntryKind::Dir, 4096),
        ]
        .into()),
    });
    a.update(Action::Connected {
        label: "alice@files.example:7272".into(),
        identity: ServerIdentity {
            fingerprint: Some("SHA256:q3d9xVfVpl0Yd3mXqY2uTnO5JtM4pX8m2nQqS1ZWb6A".into()),
            trust: Trust::Pinned,
        },
    });
    a.update(Action::RemoteBatch {
        generation: 1,
        entries: vec![
            e("backups", EntryKind::Dir, 4096),
            e("notes.txt", EntryKind::File, 42),
            e("video.mkv", EntryKind::File, 1 << 30),
        ],
        done: true,
    });
    a.update(Action::Quota {
        used: 7 << 30,
        limit: Some(10 << 30),
    });
    a.message = None;
    a
}

#[test]
fn main_screen_with_marks() {
    let mut a = app();
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Char(' ')));
    a.update(key(KeyCode::Char(' ')));
    insta::assert_snapshot!(draw(&a));
}

#[test]
fn transfers_in_progress() {
    let mut a = app();
    a.update(key(KeyCode::End));
    a.update(key(KeyCode::Up));
    let fx = a.update(key(KeyCode::F(5)));
    let job = match &fx[0] {
        Effect::StartJob { job, .. } => *job,
        other => panic!("{other:?}"),
    };
    let ev = |event| Action::JobEvent { job, event };
    a.update(ev(TransferEvent::Queued {
        id: 0,
        direction: Direction::Put,
        source: "report final.pdf".into(),
        target: "/report final.pdf".into(),
        size: Some(5 << 20),
    }));
    a.update(ev(TransferEvent::Started {
        id: 0,
        size: 5 << 20,
        resumed_from: 1 << 20,
    }));
    a.update(ev(TransferEvent::Progress {
        id: 0,
        done: 3 << 20,
    }));
    a.message = None;
    insta::assert_snapshot!(draw(&a));
}

#[test]
fn conflict_dialog() {
    let mut a = app();
    a.update(key(KeyCode::End));
    a.update(key(KeyCode::F(5)));
    insta::assert_snapshot!(draw(&a));
}

#[test]
fn delete_dialog() {
    let mut a = app();
    a.update(key(KeyCode::Char('+')));
    a.update(key(KeyCode::F(8)));
    insta::assert_snapshot!(draw(&a));
}

#[test]
fn help_dialog() {
    let mut a = app();
    a.update(key(KeyCode::F(1)));
    insta::assert_snapshot!(draw(&a));
}

#[test]
fn connect_form_with_an_error() {
    let mut a = App::new(PathBuf::from("/home/me"), Rect::new(0, 0, 100, 30));
    a.update(Action::LocalListed {
        generation: 0,
        result: Ok(vec![e("file.txt", EntryKind::File, 10)].into()),
    });
    a.ask_connect(ConnectForm {
        server: "files.example:7272".into(),
        user: "alice".into(),
        field: 2,
        recent: vec![
            ("files.example:7272".into(), "alice".into()),
            ("backup:7272".into(), "bob".into()),
        ],
        ..Default::default()
    });
    a.update(Action::ConnectFailed(
        "login failed: unknown user or wrong password".into(),
    ));
    insta::assert_snapshot!(draw(&a));
}

#[test]
fn unknown_server_dialog() {
    let mut a = App::new(PathBuf::from("/home/me"), Rect::new(0, 0, 100, 30));
    a.update(Action::UnknownServer {
        server: "files.example:7272".into(),
        fingerprint: "SHA256:q3d9xVfVpl0Yd3mXqY2uTnO5JtM4pX8m2nQqS1ZWb6A".into(),
    });
    insta::assert_snapshot!(draw(&a));
}

#[test]
fn connection_lost_dialog() {
    let mut a = app();
    a.update(Action::Disconnected(
        "the server closed the connection".into(),
    ));
    insta::assert_snapshot!(draw(&a));
}

/// Wide characters take two columns and keep the columns straight;
/// control characters show escaped; the full name of the entry under the
/// cursor is on the message line.
#[test]
fn wide_and_control_characters() {
    let mut a = App::new(PathBuf::from("/home/me"), Rect::new(0, 0, 100, 30));
    a.start();
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![
            e("日本語のファイル名.txt", EntryKind::File, 1234),
            e("party 🎉🎉🎉.png", EntryKind::File, 99),
            e("tab\there", EntryKind::File, 5),
            e(
                "a very long name that does not fit in the pane at all, not even close.txt",
                EntryKind::File,
                7,
            ),
        ]
        .into()),
    });
    a.update(key(KeyCode::Down));
    let screen = draw(&a);
    assert!(screen.contains("tab\\there"), "{screen}");
    assert!(screen.contains("not even close.txt"), "{screen}");
    insta::assert_snapshot!(screen);
}

/// A long reason on a small screen: the box grows to fit the wrapped text
/// and the keys stay on its last row.
#[test]
fn a_long_reason_wraps_and_keeps_the_keys_in_view() {
    let mut a = app();
    a.update(Action::Resize(40, 12));
    a.update(Action::Disconnected(
        "the server closed the connection: connection reset by peer (os error 104) \
         while waiting for the reply to a listing of /backups/2025"
            .into(),
    ));
    let screen = draw_at(&a, 40, 12);
    assert!(screen.contains("r reconnect"), "{screen}");
    assert!(screen.contains("q quit"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn huge_directory_streaming_in() {
    let mut a = app();
    a.update(key(KeyCode::Tab));
    let fx = a.update(key(KeyCode::Enter)); // into backups/
    let generation = match &fx[0] {
        Effect::ListRemote { generation, .. } => *generation,
        other => panic!("{other:?}"),
    };
    let batch: Vec<Entry> = (0..512)
        .map(|i| e(&format!("img_{i:06}.jpg"), EntryKind::File, 2_000_000 + i))
        .collect();
    a.update(Action::RemoteBatch {
        generation,
        entries: batch,
        done: false,
    });
    insta::assert_snapshot!(draw(&a));
}
