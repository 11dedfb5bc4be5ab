//! The chmod dialog through `update` and on screen.

use crossterm::event::KeyCode;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::action::{Action, Effect};
use super::app_tests::{app, key};
use super::dialog::Dialog;
use super::pane::Side;
use super::render::render;

#[test]
fn p_opens_the_permissions_and_enter_sets_them() {
    let mut a = app();
    a.update(key(KeyCode::Tab));
    a.remote.select_name("remote.bin");
    assert!(a.update(key(KeyCode::Char('p'))).is_empty());
    assert!(matches!(&a.dialog, Some(Dialog::Chmod(_))));
    // Group's write on (Down, Right, Space), then the others' read off.
    for k in [KeyCode::Down, KeyCode::Right, KeyCode::Char(' ')] {
        assert!(a.update(key(k)).is_empty());
    }
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Char('r')));
    a.update(Action::Resize(80, 20));
    let mut t = Terminal::new(TestBackend::new(80, 20)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    insta::assert_snapshot!("chmod_dialog", t.backend().to_string());
    let fx = a.update(key(KeyCode::Enter));
    assert_eq!(
        fx,
        vec![Effect::Chmod {
            side: Side::Remote,
            paths: vec!["/remote.bin".into()],
            mode: 0o660,
        }]
    );
    assert!(a.dialog.is_none());
}

#[test]
fn marked_entries_share_one_mode_and_esc_changes_nothing() {
    let mut a = app();
    a.update(key(KeyCode::Char('+')));
    a.update(key(KeyCode::Char('p')));
    let Some(Dialog::Chmod(d)) = &a.dialog else {
        panic!("{:?}", a.dialog)
    };
    assert_eq!(d.entries.len(), 4);
    assert!(a.update(key(KeyCode::Esc)).is_empty());
    assert!(a.dialog.is_none());
    a.update(key(KeyCode::Char('p')));
    for c in "750".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    let fx = a.update(key(KeyCode::Enter));
    let [Effect::Chmod { side, paths, mode }] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!((*side, paths.len(), *mode), (Side::Local, 4, 0o750));
    assert!(paths.contains(&"/home/me/pics".to_string()));
}

#[test]
fn offline_the_remote_side_says_so() {
    let mut a = app();
    a.update(Action::Disconnected("gone".into()));
    a.dialog = None;
    a.update(key(KeyCode::Tab));
    assert!(a.update(key(KeyCode::Char('p'))).is_empty());
    assert!(a.dialog.is_none());
    assert_eq!(a.message.as_ref().unwrap().text, "not connected");
}
