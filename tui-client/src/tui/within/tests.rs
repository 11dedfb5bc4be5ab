//! Copy and move within one side: the conflict rules, the keys through
//! `update`, the dialog on screen, and local copies and moves on disk.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ferry_proto::msg::{Entry, EntryKind};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::run::{News, Work};
use super::*;
use crate::tui::action::{Action, Effect};
use crate::tui::app_tests::{app, e, key};
use crate::tui::dialog::Dialog;
use crate::tui::render::render;

fn k(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn item(name: &str, kind: EntryKind, existing: Option<EntryKind>) -> Item {
    Item {
        entry: e(name, kind, 10),
        source: format!("/src/{name}"),
        name: name.into(),
        existing: existing.map(|k| e(name, k, 20)),
        suggestion: format!("{name} (1)"),
        choice: Choice::Undecided,
    }
}

fn plan(items: Vec<Item>) -> Plan {
    Plan {
        side: Side::Remote,
        op: Op::Copy,
        to_dir: "/dst".into(),
        items,
        asking: 0,
        apply_all: false,
        renaming: None,
        refusal: None,
    }
}

#[test]
fn a_directory_and_a_file_never_replace_each_other() {
    use EntryKind::{Dir, File};
    let mut p = plan(vec![
        item("f", File, Some(Dir)),
        item("ff", File, Some(File)),
        item("d", Dir, Some(File)),
        item("dd", Dir, Some(Dir)),
        item("ff2", File, Some(File)),
        item("new", File, None),
    ]);
    assert!(p.advance());
    // o on a file over a directory: refused, still asking about it.
    assert_eq!(p.key(&k(KeyCode::Char('o'))), Outcome::Asking);
    assert_eq!(p.asking, 0);
    assert!(p
        .refusal
        .as_deref()
        .unwrap()
        .contains("directory is never replaced"));
    assert_eq!(p.key(&k(KeyCode::Char('s'))), Outcome::Asking);
    assert!(p.refusal.is_none());
    // Apply to all + overwrite: only the files over files take it; the
    // directories are still asked about, one at a time.
    p.key(&k(KeyCode::Char('a')));
    assert_eq!(p.key(&k(KeyCode::Char('o'))), Outcome::Asking);
    assert_eq!(p.items[1].choice, Choice::Overwrite);
    assert_eq!(p.items[4].choice, Choice::Overwrite);
    assert_eq!(p.items[2].choice, Choice::Undecided);
    assert_eq!(p.asking, 2);
    p.apply_all = false;
    assert_eq!(p.key(&k(KeyCode::Char('o'))), Outcome::Asking);
    assert!(p
        .refusal
        .as_deref()
        .unwrap()
        .contains("file is never replaced"));
    p.key(&k(KeyCode::Char('s')));
    assert_eq!(p.key(&k(KeyCode::Char('o'))), Outcome::Asking);
    assert!(p.refusal.as_deref().unwrap().contains("not merged"));
    assert_eq!(p.key(&k(KeyCode::Char('s'))), Outcome::Ready);
    assert_eq!(p.count(), 3, "ff and ff2 overwritten and new copied");
    assert_eq!(p.items[5].final_name(), Some("new"));
}

#[test]
fn a_new_name_starts_from_the_suggestion_and_must_be_free() {
    use EntryKind::File;
    let mut p = plan(vec![
        item("a", File, Some(File)),
        item("b", File, Some(File)),
    ]);
    p.advance();
    p.key(&k(KeyCode::Char('n')));
    assert_eq!(p.renaming, Some(("a (1)".to_string(), 0)));
    // Taken by the other entry: refused, still typing.
    for _ in 0..5 {
        p.key(&k(KeyCode::Backspace));
    }
    p.key(&k(KeyCode::Char('b')));
    assert_eq!(p.key(&k(KeyCode::Enter)), Outcome::Asking);
    assert!(p.refusal.as_deref().unwrap().contains("taken"));
    p.key(&k(KeyCode::Backspace));
    for c in "x/y".chars() {
        p.key(&k(KeyCode::Char(c)));
    }
    assert_eq!(p.key(&k(KeyCode::Enter)), Outcome::Asking);
    assert!(p.renaming.is_some());
    p.key(&k(KeyCode::Char('u')).with_ctrl());
    for c in "a-copy".chars() {
        p.key(&k(KeyCode::Char(c)));
    }
    assert_eq!(p.key(&k(KeyCode::Enter)), Outcome::Asking);
    assert_eq!(p.items[0].choice, Choice::Rename("a-copy".into()));
    // Esc in the name field goes back to the choices; Esc there cancels.
    p.key(&k(KeyCode::Char('n')));
    assert_eq!(p.key(&k(KeyCode::Esc)), Outcome::Asking);
    assert!(p.renaming.is_none());
    // Apply to all + n: each remaining conflict takes its own free name.
    p.key(&k(KeyCode::Char('a')));
    assert_eq!(p.key(&k(KeyCode::Char('n'))), Outcome::Ready);
    assert_eq!(p.items[1].choice, Choice::Rename("b (1)".into()));
}

trait Ctrl {
    fn with_ctrl(self) -> KeyEvent;
}
impl Ctrl for KeyEvent {
    fn with_ctrl(mut self) -> KeyEvent {
        self.modifiers = KeyModifiers::CONTROL;
        self
    }
}

#[test]
fn an_entry_over_itself_is_never_overwritten_and_dirs_not_into_themselves() {
    let mut same = item("f", EntryKind::File, Some(EntryKind::File));
    same.source = "/dst/f".into();
    assert!(!same.may_overwrite("/dst"));
    assert!(refusal(&same, "/dst").contains("same entry"));
    let dirs = [("/a/t".to_string(), EntryKind::Dir)];
    assert!(check_into_itself(&dirs, "/a/t").is_err());
    assert!(check_into_itself(&dirs, "/a/t/sub").is_err());
    assert!(check_into_itself(&dirs, "/a/tt").is_ok());
    assert!(check_into_itself(&[("/a/t".into(), EntryKind::File)], "/a/t").is_ok());
    assert_eq!(suggest("x", |n| n == "x (1)").as_deref(), Some("x (2)"));
}

fn shift_f(n: u8) -> Action {
    Action::Key(KeyEvent::new(KeyCode::F(n), KeyModifiers::SHIFT))
}

#[test]
fn shift_f5_asks_the_target_then_the_conflict_and_runs_the_plan() {
    let mut a = app();
    a.update(key(KeyCode::Tab));
    a.remote.select_name("remote.bin");
    assert!(a.update(shift_f(5)).is_empty());
    let Some(Dialog::Within(Within::Prompt(p))) = &a.dialog else {
        panic!("{:?}", a.dialog)
    };
    assert_eq!((p.text.as_str(), p.op), ("remote.bin", Op::Copy));
    let fx = a.update(key(KeyCode::Enter));
    let [Effect::Within(Work::Plan(req))] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(
        (req.target.as_str(), req.dir.as_str()),
        ("/remote.bin", "/")
    );
    assert!(a.dialog.is_none());
    // The runtime found the entry over itself.
    let mut it = item("remote.bin", EntryKind::File, Some(EntryKind::File));
    it.source = "/remote.bin".into();
    let mut p = plan(vec![it]);
    p.to_dir = "/".into();
    assert!(a.update(Action::Within(News::Planned(Ok(p)))).is_empty());
    a.update(key(KeyCode::Char('o')));
    a.update(Action::Resize(80, 20));
    let mut t = Terminal::new(TestBackend::new(80, 20)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    insta::assert_snapshot!("within_conflict", t.backend().to_string());
    a.update(key(KeyCode::Char('n')));
    let Some(Dialog::Within(Within::Conflicts(p))) = &a.dialog else {
        panic!("{:?}", a.dialog)
    };
    assert_eq!(p.renaming, Some(("remote.bin (1)".into(), 0)));
    let fx = a.update(key(KeyCode::Enter));
    let [Effect::Within(Work::Run(p))] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(p.items[0].choice, Choice::Rename("remote.bin (1)".into()));
    assert_eq!(a.remote.pending.as_deref(), Some("remote.bin (1)"));
    // Shift+F6 with marks starts from the pane's directory, as F6 does.
    a.update(key(KeyCode::Char('+')));
    a.update(shift_f(6));
    let Some(Dialog::Within(Within::Prompt(p))) = &a.dialog else {
        panic!("{:?}", a.dialog)
    };
    assert_eq!((p.text.as_str(), p.op, p.sources.len()), ("/", Op::Move, 2));
    // Plain F5 still copies to the other pane (b.txt is there too).
    a.update(key(KeyCode::Esc));
    a.update(key(KeyCode::F(5)));
    assert!(
        matches!(a.dialog, Some(Dialog::Conflict(_))),
        "{:?}",
        a.dialog
    );
}

/// Runs work through the runtime's task and returns the first action.
async fn run(work: Work) -> Vec<Action> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    run::spawn(work, None, tx);
    let mut out = vec![];
    while let Some(a) = rx.recv().await {
        out.push(a);
    }
    out
}

async fn planned(req: Request) -> Result<Plan, String> {
    match run(Work::Plan(req)).await.pop() {
        Some(Action::Within(News::Planned(r))) => r,
        other => panic!("{other:?}"),
    }
}

fn entry_of(dir: &Path, name: &str) -> Entry {
    let md = std::fs::symlink_metadata(dir.join(name)).unwrap();
    let ft = md.file_type();
    Entry {
        name: name.into(),
        kind: EntryKind::classify(ft.is_symlink(), ft.is_dir(), ft.is_file()),
        size: md.len(),
        mtime: md.mtime(),
        mode: md.mode(),
    }
}

fn req(dir: &Path, op: Op, names: &[&str], target: &str) -> Request {
    Request {
        side: Side::Local,
        op,
        dir: dir.display().to_string(),
        sources: names.iter().map(|n| entry_of(dir, n)).collect(),
        target: join(&dir.display().to_string(), target),
    }
}

#[tokio::test]
async fn local_trees_copy_with_modes_mtimes_and_links_as_links() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("t/sub")).unwrap();
    std::fs::write(d.join("t/sub/f.txt"), b"hello").unwrap();
    std::fs::set_permissions(
        d.join("t/sub/f.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::write(d.join("outside.txt"), b"out").unwrap();
    std::os::unix::fs::symlink("../../outside.txt", d.join("t/sub/link")).unwrap();
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    std::fs::File::options()
        .write(true)
        .open(d.join("t/sub/f.txt"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::fs::File::open(d.join("t/sub"))
        .unwrap()
        .set_modified(old)
        .unwrap();

    // Into itself: refused before anything is made.
    let r = planned(req(d, Op::Copy, &["t"], "t/sub")).await;
    assert!(r.unwrap_err().contains("into itself"));
    // Onto itself: a conflict that cannot be an overwrite; a new name.
    let mut p = planned(req(d, Op::Copy, &["t"], ".")).await.unwrap();
    assert!(p.advance());
    assert_eq!(p.items[0].suggestion, "t (1)");
    assert_eq!(p.key(&k(KeyCode::Char('o'))), Outcome::Asking);
    p.key(&k(KeyCode::Char('n')));
    assert_eq!(p.key(&k(KeyCode::Enter)), Outcome::Ready);
    let news = run(Work::Run(p)).await;
    assert!(
        matches!(&news[..], [Action::OpDone { message: Some(m), .. }] if m.starts_with("copied 1 entry")),
        "{news:?}"
    );
    let f = d.join("t (1)/sub/f.txt");
    assert_eq!(std::fs::read(&f).unwrap(), b"hello");
    let md = std::fs::metadata(&f).unwrap();
    assert_eq!(md.mode() & 0o777, 0o640);
    assert_eq!(md.modified().unwrap(), old);
    let sub = std::fs::metadata(d.join("t (1)/sub")).unwrap();
    assert_eq!(
        sub.modified().unwrap(),
        old,
        "a directory's mtime once filled"
    );
    let link = d.join("t (1)/sub/link");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../../outside.txt")
    );

    // A file over a file: overwritten whole; the source stays.
    std::fs::write(d.join("other.txt"), b"older").unwrap();
    let mut p = planned(req(d, Op::Copy, &["outside.txt"], "other.txt"))
        .await
        .unwrap();
    assert!(p.advance());
    assert_eq!(p.key(&k(KeyCode::Char('o'))), Outcome::Ready);
    run(Work::Run(p)).await;
    assert_eq!(std::fs::read(d.join("other.txt")).unwrap(), b"out");
    assert!(d.join("outside.txt").exists());
}

#[tokio::test]
async fn local_moves_rename_and_refuse_a_file_over_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("box")).unwrap();
    std::fs::create_dir(d.join("box/x")).unwrap();
    std::fs::write(d.join("x"), b"file").unwrap();
    std::fs::write(d.join("y"), b"y").unwrap();
    // Two marked entries into box/: x meets a directory there.
    let mut p = planned(req(d, Op::Move, &["x", "y"], "box")).await.unwrap();
    assert!(p.advance());
    assert_eq!(p.items[0].existing.as_ref().unwrap().kind, EntryKind::Dir);
    p.key(&k(KeyCode::Char('a')));
    assert_eq!(p.key(&k(KeyCode::Char('o'))), Outcome::Asking);
    assert_eq!(p.key(&k(KeyCode::Char('s'))), Outcome::Ready);
    let news = run(Work::Run(p)).await;
    assert!(matches!(&news[..], [Action::OpDone { .. }]), "{news:?}");
    assert!(d.join("box/x").is_dir(), "the directory stays");
    assert_eq!(std::fs::read(d.join("x")).unwrap(), b"file");
    assert_eq!(std::fs::read(d.join("box/y")).unwrap(), b"y");
    assert!(!d.join("y").exists());
    // Several entries onto a file: not a directory.
    let r = planned(req(d, Op::Move, &["x", "box"], "x")).await;
    assert!(r.unwrap_err().contains("not a directory"));
    // One entry to a new name in another directory.
    let p = planned(req(d, Op::Move, &["x"], "box/renamed"))
        .await
        .unwrap();
    let mut p2 = p.clone();
    assert!(!p2.advance());
    run(Work::Run(p)).await;
    assert_eq!(std::fs::read(d.join("box/renamed")).unwrap(), b"file");
}
