//! The messages of file operations say what they mean (issue 16, section
//! 3): a failed move names its target, deleting a tree of thousands of
//! files says what it deleted and never "0 B in files", and the delete
//! dialog gives directories no byte figure. The runtime is driven for real
//! on the local side (the remote side formats the same messages).

use std::path::Path;
use std::time::Duration;

use crossterm::event::KeyCode;
use ferry_proto::msg::EntryKind;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::action::{Action, Effect};
use super::app_tests::{app, e, key};
use super::pane::Side;
use super::render::render;
use super::runtime::Runtime;

/// Runs one effect and returns the first outcome of a file operation.
async fn outcome(effect: Effect) -> Action {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut rt = Runtime::new(tx);
    rt.run(effect);
    loop {
        let a = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("an answer")
            .expect("the runtime is alive");
        if matches!(a, Action::OpDone { .. } | Action::OpFailed(_)) {
            return a;
        }
    }
}

fn text(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn renaming_into_a_missing_directory_names_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("report.txt");
    std::fs::write(&from, "x").unwrap();
    let to = dir.path().join("missing/report.txt");
    let a = outcome(Effect::Rename(Side::Local, text(&from), text(&to))).await;
    let Action::OpFailed(m) = a else {
        panic!("{a:?}")
    };
    assert!(m.contains(&text(&to)), "names the target: {m}");
    assert!(m.starts_with("cannot move"), "{m}");
    // Moving marked entries into a missing directory names it too.
    let a = outcome(Effect::Move {
        side: Side::Local,
        from: vec![text(&from)],
        to_dir: text(&dir.path().join("nowhere")),
    })
    .await;
    let Action::OpFailed(m) = a else {
        panic!("{a:?}")
    };
    assert!(m.contains("nowhere: no such directory"), "{m}");
    assert!(from.exists());
}

#[tokio::test]
async fn deleting_a_tree_of_3000_files_says_what_went() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for i in 0..3000 {
        let sub = tree.join(format!("d{}", i % 10));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}")), "data").unwrap();
    }
    let a = outcome(Effect::Delete(Side::Local, vec![text(&tree)])).await;
    let Action::OpDone {
        message: Some(m), ..
    } = a
    else {
        panic!("{a:?}")
    };
    assert_eq!(m, "deleted 1 entry");
    assert!(!tree.exists());
}

#[test]
fn the_delete_dialog_gives_a_directory_no_byte_figure() {
    let mut a = app();
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![e("tree", EntryKind::Dir, 4096), e("f", EntryKind::File, 10)].into()),
    });
    a.local.select_name("tree");
    a.update(key(KeyCode::F(8)));
    let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    let screen = t.backend().to_string();
    assert!(
        screen.contains("Delete 1 local entry (1 directory with everything inside)?"),
        "{screen}"
    );
    let dialog: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("╭ Delete"))
        .take_while(|l| !l.contains("╰"))
        .collect();
    assert!(dialog.iter().all(|l| !l.contains(" B ")), "{dialog:?}");
}
