//! Bookmarks through `update`: adding one (`B`), the list (`b`, Ctrl-\)
//! with rename, delete and jump, on the same server and on another.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ferry_proto::msg::EntryKind;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::action::{Action, Effect};
use super::app::{App, Link};
use super::app_tests::{app, e, key};
use super::bookmarks::{Bookmark, BookmarkDialog};
use super::dialog::Dialog;
use super::render::render;
use crate::client::{ServerIdentity, Trust};

fn online() -> App {
    let mut a = app();
    a.connecting("host:7272", "me");
    a.link = Link::Online("me@host:7272".into());
    a
}

fn mark(name: &str, server: &str, remote: &str, local: &str) -> Bookmark {
    Bookmark {
        name: name.into(),
        server: server.into(),
        user: "me".into(),
        remote_dir: remote.into(),
        local_dir: local.into(),
    }
}

fn ctrl(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn saved(fx: &[Effect]) -> Vec<Bookmark> {
    match fx {
        [Effect::SaveBookmarks(list)] => list.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn b_upper_bookmarks_the_place_under_the_name_typed() {
    let mut a = online();
    // Into /photos on the server: the name offered is its last part.
    a.update(key(KeyCode::Tab));
    a.update(Action::RemoteListed {
        generation: 1,
        listing: vec![e("photos", EntryKind::Dir, 0)].into(),
    });
    a.remote.select_name("photos");
    a.update(key(KeyCode::Enter));
    assert!(a.update(key(KeyCode::Char('B'))).is_empty());
    let Some(Dialog::Bookmark(BookmarkDialog::Name(d))) = &a.dialog else {
        panic!("{:?}", a.dialog)
    };
    assert_eq!(d.text, "photos");
    a.update(Action::Resize(80, 16));
    let mut t = Terminal::new(TestBackend::new(80, 16)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    insta::assert_snapshot!("bookmark_name", t.backend().to_string());
    a.update(key(KeyCode::Char('!')));
    let list = saved(&a.update(key(KeyCode::Enter)));
    assert_eq!(
        list,
        vec![mark("photos!", "host:7272", "/photos", "/home/me")]
    );
    assert_eq!(a.places.list, list);
    assert!(a.dialog.is_none());
    assert_eq!(a.message.as_ref().unwrap().text, "bookmarked as photos!");
    // The same name again replaces it.
    a.update(key(KeyCode::Char('B')));
    for _ in 0.."photos".len() {
        a.update(key(KeyCode::Backspace));
    }
    for c in "photos!".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    let list = saved(&a.update(key(KeyCode::Enter)));
    assert_eq!(list.len(), 1);
}

#[test]
fn offline_b_upper_says_a_bookmark_needs_a_server() {
    let mut a = app();
    a.update(Action::Disconnected("gone".into()));
    a.dialog = None;
    assert!(a.update(key(KeyCode::Char('B'))).is_empty());
    assert!(a.dialog.is_none());
    assert!(a.message.as_ref().unwrap().error);
}

fn with_marks() -> App {
    let mut a = online();
    a.set_bookmarks(Ok(vec![
        mark("photos", "host:7272", "/photos", "/home/me/pics"),
        mark("backup", "other:7272", "/backup/2026", "/srv/backup"),
        mark("docs", "host:7272", "/docs", "/home/me/docs"),
    ]));
    a
}

#[test]
fn the_list_renames_and_deletes_and_shows_its_keys() {
    let mut a = with_marks();
    assert!(a.update(key(KeyCode::Char('b'))).is_empty());
    a.update(key(KeyCode::Down));
    a.update(Action::Resize(100, 20));
    let mut t = Terminal::new(TestBackend::new(100, 20)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    insta::assert_snapshot!("bookmark_list", t.backend().to_string());
    // r renames the selected one.
    a.update(key(KeyCode::Char('r')));
    a.update(key(KeyCode::Char('s')));
    let list = saved(&a.update(key(KeyCode::Enter)));
    assert_eq!(list[1].name, "backups");
    // A name taken already is not given twice.
    a.update(key(KeyCode::Char('r')));
    for _ in 0.."backups".len() {
        a.update(key(KeyCode::Backspace));
    }
    for c in "docs".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    assert!(a.update(key(KeyCode::Enter)).is_empty());
    // d deletes it; the list stays open.
    let list = saved(&a.update(key(KeyCode::Char('d'))));
    let names: Vec<&str> = list.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["photos", "docs"]);
    assert!(matches!(a.dialog, Some(Dialog::Bookmark(_))));
    assert!(a.update(key(KeyCode::Esc)).is_empty());
    assert!(a.dialog.is_none());
    assert_eq!(a.places.list.len(), 2);
}

#[test]
fn a_jump_on_the_same_server_opens_both_directories() {
    let mut a = with_marks();
    a.update(ctrl('\\'));
    let fx = a.update(key(KeyCode::Enter));
    assert!(a.dialog.is_none());
    assert!(
        fx.contains(&Effect::ListLocal {
            path: PathBuf::from("/home/me/pics"),
            generation: 2,
            order: Default::default(),
        }),
        "{fx:?}"
    );
    assert!(
        fx.iter()
            .any(|f| matches!(f, Effect::ListRemote { path, .. } if path.to_string() == "/photos")),
        "{fx:?}"
    );
}

#[test]
fn a_jump_to_another_server_logs_in_first_then_goes_there() {
    let mut a = with_marks();
    // Terminals send Ctrl-\ as the byte crossterm reads as Ctrl-4.
    a.update(ctrl('4'));
    a.update(key(KeyCode::Down));
    assert!(a.update(key(KeyCode::Enter)).is_empty());
    let Some(Dialog::Connect(form)) = &a.dialog else {
        panic!("{:?}", a.dialog)
    };
    assert_eq!(
        (form.server.as_str(), form.user.as_str()),
        ("other:7272", "me")
    );
    assert_eq!(form.field, 2, "the password has the focus");
    let fx = a.update(Action::Connected {
        label: "me@other:7272".into(),
        identity: ServerIdentity {
            fingerprint: None,
            trust: Trust::Pinned,
        },
    });
    assert!(
        fx.iter().any(
            |f| matches!(f, Effect::ListRemote { path, .. } if path.to_string() == "/backup/2026")
        ),
        "{fx:?}"
    );
    assert!(
        fx.iter().any(
            |f| matches!(f, Effect::ListLocal { path, .. } if path == &PathBuf::from("/srv/backup"))
        ),
        "{fx:?}"
    );
}

#[test]
fn the_connect_form_shows_them_and_opens_the_list() {
    let mut a = with_marks();
    a.update(key(KeyCode::Char('o')));
    a.update(ctrl('o'));
    assert!(matches!(a.dialog, Some(Dialog::Connect(_))));
    a.update(Action::Resize(100, 24));
    let mut t = Terminal::new(TestBackend::new(100, 24)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    let screen = t.backend().to_string();
    assert!(
        screen.contains("Bookmarks (Ctrl-\\ lists): photos, backup, docs"),
        "{screen}"
    );
    a.update(ctrl('\\'));
    assert!(matches!(
        a.dialog,
        Some(Dialog::Bookmark(BookmarkDialog::List(_)))
    ));
    // Esc goes back to the form.
    a.update(key(KeyCode::Esc));
    assert!(matches!(a.dialog, Some(Dialog::Connect(_))));
}
