//! `update` for symbolic links: local ones show as links, `L` makes copies
//! follow links inside trees (the CLI's `-L`), a link that leads to no
//! directory sends the pane back, and a copy that copied nothing says why.

use std::path::PathBuf;

use crossterm::event::KeyCode;
use ferry_proto::msg::EntryKind;

use super::action::{Action, Effect};
use super::app_tests::{app, e, key};
use super::layout::KEYBAR;
use super::pane::Side;
use super::queue::JobState;
use super::render::done_figures;
use super::runtime::read_local;
use crate::transfer::TransferEvent;

fn cursor_name(a: &super::app::App, side: Side) -> String {
    a.pane(side)
        .current()
        .map(|e| e.name.clone())
        .unwrap_or_default()
}

#[test]
fn local_links_show_as_links_with_their_own_size() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), vec![0u8; 5000]).unwrap();
    std::os::unix::fs::symlink("big.bin", dir.path().join("to-file")).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("to-dir")).unwrap();
    let entries = read_local(dir.path()).unwrap();
    let find = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
    // They were shown as a plain file (no `@`) and a directory.
    assert_eq!(find("to-file").kind, EntryKind::Symlink);
    assert_eq!(find("to-dir").kind, EntryKind::Symlink);
    // The link's own size, as the server's listing and `ls -l` give it.
    assert_eq!(find("to-file").size, "big.bin".len() as u64);
}

#[test]
fn marked_links_add_no_size() {
    let mut a = app();
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![e("f", EntryKind::File, 10), e("l", EntryKind::Symlink, 7)].into()),
    });
    a.update(key(KeyCode::Char('+')));
    assert_eq!(a.local.marked_summary(), (2, 10));
}

#[test]
fn l_toggles_following_links_and_copies_carry_it() {
    let mut a = app();
    assert!(KEYBAR
        .iter()
        .any(|(k, _, code)| *k == "L" && *code == KeyCode::Char('L')));
    assert!(super::help::ROWS.iter().any(|(k, _)| *k == "L"));
    a.update(key(KeyCode::Down));
    let fx = a.update(key(KeyCode::F(5)));
    let [Effect::StartJob { spec, .. }] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert!(
        !spec.follow_links,
        "links inside trees are skipped by default"
    );
    a.update(key(KeyCode::Char('L')));
    assert!(a.follow_links);
    assert!(a.message.as_ref().unwrap().text.contains("followed"));
    let fx = a.update(key(KeyCode::F(5)));
    let [Effect::StartJob { spec, .. }] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert!(spec.follow_links);
    assert!(
        spec.resumed().follow_links,
        "a retry follows as the copy did"
    );
    a.update(key(KeyCode::Char('L')));
    assert!(!a.follow_links);
}

#[test]
fn a_link_to_a_file_sends_the_pane_back_with_the_cursor_on_it() {
    let mut a = app();
    // Local: /home/me/to-file is listed, fails (not a directory), and the
    // pane goes back to /home/me.
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![
            e("a.txt", EntryKind::File, 1),
            e("to-file", EntryKind::Symlink, 5),
        ]
        .into()),
    });
    a.local.select_name("to-file");
    let fx = a.update(key(KeyCode::Enter));
    let [Effect::ListLocal {
        path, generation, ..
    }] = &fx[..]
    else {
        panic!("{fx:?}")
    };
    assert_eq!(path, &PathBuf::from("/home/me/to-file"));
    let fx = a.update(Action::LocalListed {
        generation: *generation,
        result: Err("/home/me/to-file: Not a directory (os error 20)".into()),
    });
    let [Effect::ListLocal {
        path, generation, ..
    }] = &fx[..]
    else {
        panic!("{fx:?}")
    };
    assert_eq!(path, &PathBuf::from("/home/me"));
    let m = a.message.clone().unwrap();
    assert!(
        m.error && m.text.contains("to-file") && m.text.contains("F5"),
        "{m:?}"
    );
    a.update(Action::LocalListed {
        generation: *generation,
        result: Ok(vec![
            e("a.txt", EntryKind::File, 1),
            e("to-file", EntryKind::Symlink, 5),
        ]
        .into()),
    });
    assert_eq!(a.local.path, "/home/me");
    assert_eq!(cursor_name(&a, Side::Local), "to-file");

    // Remote: the same.
    a.update(key(KeyCode::Tab));
    a.update(Action::RemoteBatch {
        generation: 1,
        entries: vec![e("rl", EntryKind::Symlink, 3)],
        done: true,
    });
    a.remote.select_name("rl");
    let fx = a.update(key(KeyCode::Enter));
    let Some(Effect::ListRemote { generation, .. }) = fx.first() else {
        panic!("{fx:?}")
    };
    let fx = a.update(Action::RemoteListFailed {
        generation: *generation,
        error: "/rl: not a directory".into(),
    });
    let Some(Effect::ListRemote { path, .. }) = fx.first() else {
        panic!("{fx:?}")
    };
    assert!(path.is_root());
    assert!(a.message.as_ref().unwrap().text.contains("rl"));
    assert_eq!(a.remote.pending.as_deref(), Some("rl"));

    // A link to a directory just opens.
    a.update(Action::RemoteBatch {
        generation: 3,
        entries: vec![e("rd", EntryKind::Symlink, 3)],
        done: true,
    });
    a.remote.select_name("rd");
    let fx = a.update(key(KeyCode::Enter));
    let Some(Effect::ListRemote { generation, .. }) = fx.first() else {
        panic!("{fx:?}")
    };
    a.update(Action::RemoteBatch {
        generation: *generation,
        entries: vec![e("inside", EntryKind::File, 1)],
        done: true,
    });
    assert_eq!(a.remote.path, "/rd");
    assert_eq!(a.remote.len(), 2, "parent row and inside");
}

/// Downloading a symlink said "0 files done": a copy that copied nothing
/// now says why, in its first warning.
#[test]
fn a_copy_that_copied_nothing_says_why() {
    let mut a = app();
    a.update(key(KeyCode::Down));
    let fx = a.update(key(KeyCode::F(5)));
    let Effect::StartJob { job, .. } = fx[0].clone() else {
        panic!()
    };
    a.update(Action::JobEvent {
        job,
        event: TransferEvent::Warning {
            id: None,
            message: "/gone: broken link skipped (no such file or directory)".into(),
        },
    });
    a.update(Action::JobEnded {
        job,
        result: Ok(()),
    });
    let j = &a.queue.jobs[0];
    assert_eq!(j.state, JobState::Done);
    let text = done_figures(j);
    assert!(!text.contains("0 files"), "{text}");
    assert!(
        text.contains("nothing copied: /gone: broken link skipped"),
        "{text}"
    );
}
