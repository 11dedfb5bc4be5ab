//! Copy and move within one side: names kept exactly as typed, marks kept
//! until the work starts, names escaped where drawn, and local races and
//! cleanups on disk.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ferry_proto::msg::EntryKind;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::run::{News, Work};
use super::*;
use crate::tui::action::{Action, Effect};
use crate::tui::app_tests::{app, e, key};
use crate::tui::dialog::Dialog;

fn k(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn item(name: &str, existing: bool) -> Item {
    Item {
        entry: e(name, EntryKind::File, 10),
        source: format!("/src/{name}"),
        name: name.into(),
        existing: existing.then(|| e(name, EntryKind::File, 20)),
        suggestion: format!("{name} (1)"),
        choice: Choice::Undecided,
    }
}

fn plan(items: Vec<Item>) -> Plan {
    Plan {
        side: Side::Local,
        op: Op::Copy,
        to_dir: "/home/me".into(),
        items,
        asking: 0,
        apply_all: false,
        renaming: None,
        refusal: None,
    }
}

#[test]
fn names_keep_their_leading_and_trailing_spaces() {
    // Failed before the fix: the target line and the new name were trimmed.
    for name in ["notes ", " a", " "] {
        let src = e(name, EntryKind::File, 1);
        let mut p = Prompt::new(Side::Local, Op::Move, "/d".into(), vec![src]);
        let PromptOutcome::Submit(req) = p.key(&k(KeyCode::Enter)) else {
            panic!("{name:?} not submitted")
        };
        assert_eq!(req.target, format!("/d/{name}"));
    }
    let mut p = Prompt::new(Side::Local, Op::Copy, "/d".into(), vec![]);
    p.text.clear();
    assert_eq!(p.key(&k(KeyCode::Enter)), PromptOutcome::Cancelled);

    let mut p = plan(vec![item("x", true)]);
    assert!(p.advance());
    p.renaming = Some(("x ".into(), 0));
    assert_eq!(p.key(&k(KeyCode::Enter)), Outcome::Ready);
    assert_eq!(p.items[0].choice, Choice::Rename("x ".into()));
    // An empty name is still refused.
    let mut p = plan(vec![item("x", true)]);
    assert!(p.advance());
    p.renaming = Some((String::new(), 0));
    assert_eq!(p.key(&k(KeyCode::Enter)), Outcome::Asking);
    assert!(p.refusal.is_some());
}

#[test]
fn marks_stay_until_the_work_starts() {
    // Failed before the fix: Enter on the target line cleared the marks.
    let mut a = app();
    a.local.marked.insert(&e("a.txt", EntryKind::File, 100));
    a.local.marked.insert(&e("b.txt", EntryKind::File, 200));
    a.update(Action::Key(KeyEvent::new(
        KeyCode::F(5),
        KeyModifiers::SHIFT,
    )));
    let fx = a.update(key(KeyCode::Enter));
    assert!(matches!(&fx[..], [Effect::Within(Work::Plan(_))]), "{fx:?}");
    assert_eq!(a.local.marked.len(), 2);
    a.update(Action::Within(News::Planned(Err(
        "no such directory".into()
    ))));
    assert_eq!(a.local.marked.len(), 2, "a planning error keeps them");
    let conflict = plan(vec![item("a.txt", true), item("b.txt", false)]);
    a.update(Action::Within(News::Planned(Ok(conflict))));
    assert!(matches!(
        a.dialog,
        Some(Dialog::Within(Within::Conflicts(_)))
    ));
    a.update(key(KeyCode::Esc));
    assert_eq!(a.local.marked.len(), 2, "Esc in the conflict keeps them");
    let clear = plan(vec![item("a.txt", false), item("b.txt", false)]);
    let fx = a.update(Action::Within(News::Planned(Ok(clear))));
    assert!(matches!(&fx[..], [Effect::Within(Work::Run(_))]), "{fx:?}");
    assert!(a.local.marked.is_empty(), "cleared once the work starts");
}

#[test]
fn the_edited_names_are_escaped_where_drawn() {
    // Failed before the fix: the text being edited was drawn raw.
    let name = "evil\u{202e}txt.exe\u{7}";
    let src = e(name, EntryKind::File, 1);
    let p = Prompt::new(Side::Remote, Op::Copy, "/".into(), vec![src]);
    assert_eq!(p.text, name, "the text stays the real name");
    let mut pl = plan(vec![item(name, true)]);
    pl.side = Side::Remote;
    assert!(pl.advance());
    pl.renaming = Some((format!("{name} (1)"), 0));
    for d in [Within::Prompt(p), Within::Conflicts(pl)] {
        let mut t = Terminal::new(TestBackend::new(100, 20)).unwrap();
        t.draw(|f| draw::draw(&d, f)).unwrap();
        let screen = t.backend().to_string();
        let edited = screen
            .lines()
            .find(|l| l.contains('▏'))
            .unwrap_or_else(|| panic!("no edited line:\n{screen}"));
        assert!(edited.contains(r"evil\u{202e}txt.exe\a"), "{screen}");
        assert!(!screen.contains('\u{202e}'), "{screen}");
    }
}

#[test]
fn a_move_never_replaces_what_appears_at_the_target_meanwhile() {
    // Failed before the fix: the target made after the check was replaced.
    let tmp = tempfile::tempdir().unwrap();
    let (from, to) = (tmp.path().join("mine"), tmp.path().join("theirs"));
    std::fs::write(&from, b"mine").unwrap();
    run::BEFORE_RENAME.set(Some(|to| std::fs::write(to, b"theirs").unwrap()));
    let r = run::move_local(&from, &to, false);
    run::BEFORE_RENAME.set(None);
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&to).unwrap(), b"theirs");
    assert_eq!(std::fs::read(&from).unwrap(), b"mine");
    // With overwrite chosen, the rename replaces.
    run::move_local(&from, &to, true).unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), b"mine");
}

#[test]
fn a_failed_tree_copy_leaves_nothing_behind_even_read_only_dirs() {
    // Failed before the fix: a copied 0555 directory could not be emptied
    // and stayed. Root removes it anyway, so as root this runs as nobody.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    const ENV: &str = "FERRY_TEST_PARTIAL_COPY_DIR";
    const NAME: &str =
        "tui::within::tests_edges::a_failed_tree_copy_leaves_nothing_behind_even_read_only_dirs";
    let tmp = tempfile::tempdir().unwrap();
    let d = match std::env::var_os(ENV) {
        Some(d) => std::path::PathBuf::from(d),
        None if std::fs::metadata("/proc/self").unwrap().uid() == 0 => {
            std::os::unix::fs::chown(tmp.path(), Some(65534), Some(65534)).unwrap();
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--test-threads=1"])
                .env(ENV, tmp.path())
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("1 passed"),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        None => tmp.path().to_path_buf(),
    };
    let t = d.join("t");
    std::fs::create_dir(&t).unwrap();
    let mode = |p: &std::path::Path, m| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    for i in 0..5 {
        let ro = t.join(format!("ro{i}"));
        std::fs::create_dir(&ro).unwrap();
        std::fs::write(ro.join("f"), b"x").unwrap();
        mode(&ro, 0o555);
    }
    // An unreadable file, listed after some read-only directory.
    let mut bad = t.join("bad");
    std::fs::write(&bad, b"secret").unwrap();
    mode(&bad, 0);
    for i in 0.. {
        let first = std::fs::read_dir(&t).unwrap().next().unwrap().unwrap();
        if first.path() != bad {
            break;
        }
        let again = t.join(format!("bad{i}"));
        std::fs::rename(&bad, &again).unwrap();
        bad = again;
    }
    let to = d.join("copy");
    assert!(run::copy_local(&t, &to, false).is_err());
    assert!(
        std::fs::symlink_metadata(&to).is_err(),
        "the partial copy stays"
    );
}
