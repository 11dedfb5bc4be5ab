//! Synchronized browsing (Ctrl-Y) through `update`.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ferry_proto::msg::EntryKind;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::action::{Action, Effect};
use super::app::App;
use super::app_tests::{app, e, key};
use super::render::render;

fn ctrl_y() -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char('y'), KeyModifiers::CONTROL))
}

/// Connected, the remote root holding `pics/` and `docs/`, in step.
fn in_step() -> App {
    let mut a = app();
    a.update(Action::RemoteListed {
        generation: 1,
        listing: vec![e("docs", EntryKind::Dir, 0), e("pics", EntryKind::Dir, 0)].into(),
    });
    assert!(a.update(ctrl_y()).is_empty());
    assert!(a.sync_browse);
    a
}

fn lists_local(fx: &[Effect], dir: &str) -> bool {
    fx.iter()
        .any(|f| matches!(f, Effect::ListLocal { path, .. } if path == &PathBuf::from(dir)))
}

fn lists_remote(fx: &[Effect], dir: &str) -> bool {
    fx.iter()
        .any(|f| matches!(f, Effect::ListRemote { path, .. } if path.to_string() == dir))
}

#[test]
fn entering_and_leaving_happen_on_both_sides() {
    let mut a = in_step();
    let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    assert!(t
        .backend()
        .to_string()
        .contains("browsing in step (Ctrl-Y)"));
    a.local.select_name("pics");
    let fx = a.update(key(KeyCode::Enter));
    assert!(lists_local(&fx, "/home/me/pics"), "{fx:?}");
    assert!(lists_remote(&fx, "/pics"), "{fx:?}");
    assert!(a.sync_browse);
    // Up on the remote side (Backspace there) goes up on both.
    a.update(key(KeyCode::Tab));
    let fx = a.update(key(KeyCode::Backspace));
    assert!(lists_local(&fx, "/home/me"), "{fx:?}");
    assert!(lists_remote(&fx, "/"), "{fx:?}");
    assert!(a.sync_browse);
}

#[test]
fn no_such_directory_on_the_other_side_turns_it_off() {
    let mut a = in_step();
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![e("music", EntryKind::Dir, 0)].into()),
    });
    a.update(key(KeyCode::Tab));
    a.remote.select_name("docs");
    let fx = a.update(key(KeyCode::Enter));
    assert!(lists_remote(&fx, "/docs"), "{fx:?}");
    assert!(
        !fx.iter().any(|f| matches!(f, Effect::ListLocal { .. })),
        "{fx:?}"
    );
    assert!(!a.sync_browse);
    let m = a.message.clone().unwrap();
    assert!(m.error, "{m:?}");
    assert!(
        m.text.starts_with("the local side has no directory docs"),
        "{m:?}"
    );
}

#[test]
fn up_when_the_other_side_is_at_its_top_turns_it_off() {
    let mut a = in_step();
    // Only the local side goes down (in step off meanwhile).
    a.update(ctrl_y());
    a.local.select_name("pics");
    a.update(key(KeyCode::Enter));
    a.update(ctrl_y());
    let fx = a.update(key(KeyCode::Backspace));
    assert!(lists_local(&fx, "/home/me"), "{fx:?}");
    assert!(
        !fx.iter().any(|f| matches!(f, Effect::ListRemote { .. })),
        "{fx:?}"
    );
    assert!(!a.sync_browse);
}

#[test]
fn offline_it_does_not_turn_on() {
    let mut a = app();
    a.update(Action::Disconnected("gone".into()));
    a.dialog = None;
    assert!(a.update(ctrl_y()).is_empty());
    assert!(!a.sync_browse);
    assert!(a.message.as_ref().unwrap().error);
}
