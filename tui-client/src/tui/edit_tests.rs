//! F4 edit: the decision after the editor, its path through `update`,
//! and the "changed on the server" dialog on screen.

use std::path::PathBuf;

use crossterm::event::KeyCode;
use ferry_proto::msg::EntryKind;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::action::{Action, Effect};
use super::app_tests::{app, e, key};
use super::dialog::Dialog;
use super::edit::{
    decide, EditNews, EditSession, EditTarget, EditWork, RemoteNow, Seen, Verdict, EDIT_LIMIT,
};
use super::render::render;

fn seen() -> Seen {
    Seen {
        size: 10,
        mtime: 1_700_000_000,
        sha256: [1; 32],
        mode: 0o755,
    }
}

fn now(size: u64, mtime: i64, sha: Option<[u8; 32]>) -> RemoteNow {
    RemoteNow {
        size,
        mtime,
        sha256: sha,
    }
}

#[test]
fn an_unchanged_copy_uploads_nothing_whatever_the_remote_did() {
    let s = seen();
    assert_eq!(decide(&s, &[1; 32], None), Verdict::Unchanged);
    let moved = now(99, 5, Some([7; 32]));
    assert_eq!(decide(&s, &[1; 32], Some(&moved)), Verdict::Unchanged);
}

#[test]
fn a_changed_copy_uploads_when_the_remote_is_as_fetched() {
    let s = seen();
    // Size and mtime alike prove nothing: the server's hash decides.
    let same = now(10, 1_700_000_000, None);
    assert_eq!(decide(&s, &[2; 32], Some(&same)), Verdict::NeedHash);
    let same = now(10, 1_700_000_000, Some([1; 32]));
    assert_eq!(decide(&s, &[2; 32], Some(&same)), Verdict::Upload);
}

#[test]
fn a_remote_changed_meanwhile_is_asked_about() {
    let s = seen();
    for n in [
        now(11, 1_700_000_000, None),
        now(10, 1_700_000_001, None),
        now(10, 1_700_000_000, Some([3; 32])),
    ] {
        let v = decide(&s, &[2; 32], Some(&n));
        assert!(matches!(v, Verdict::RemoteChanged(_)), "{n:?}: {v:?}");
    }
    let gone = decide(&s, &[2; 32], None);
    assert_eq!(
        gone,
        Verdict::RemoteChanged("it was deleted on the server".into())
    );
}

fn session() -> EditSession {
    EditSession {
        remote: "/remote.bin".into(),
        dir: "/".into(),
        name: "remote.bin".into(),
        temp_dir: PathBuf::from("/tmp/ferry-edit-x"),
        file: PathBuf::from("/tmp/ferry-edit-x/remote.bin"),
        seen: seen(),
    }
}

/// An app with F4 pressed on the remote file and the copy fetched and
/// edited: the check is the next step.
fn edited() -> super::app::App {
    let mut a = app();
    a.update(key(KeyCode::Tab));
    a.remote.select_name("remote.bin");
    let fx = a.update(key(KeyCode::F(4)));
    assert_eq!(
        fx,
        vec![Effect::Edit(EditWork::Fetch {
            remote: "/remote.bin".into(),
            dir: "/".into(),
            name: "remote.bin".into(),
        })]
    );
    // A second F4 meanwhile starts nothing.
    assert!(a.update(key(KeyCode::F(4))).is_empty());
    let fx = a.update(Action::Edit(EditNews::Fetched(Ok(session()))));
    assert_eq!(
        fx,
        vec![Effect::Edit(EditWork::Run(EditTarget::Remote(session())))]
    );
    let fx = a.update(Action::Edit(EditNews::Exited {
        target: EditTarget::Remote(session()),
        result: Ok(()),
    }));
    assert_eq!(
        fx,
        vec![Effect::Edit(EditWork::Check {
            session: session(),
            failed: None,
        })]
    );
    a
}

fn checked(verdict: Verdict) -> Action {
    Action::Edit(EditNews::Checked {
        session: session(),
        failed: None,
        result: Ok((verdict, "remote.bin.edited-1".into())),
    })
}

#[test]
fn unchanged_says_so_and_drops_the_copy() {
    let mut a = edited();
    let fx = a.update(checked(Verdict::Unchanged));
    assert_eq!(fx, vec![Effect::Edit(EditWork::Discard(session()))]);
    assert!(a.queue.jobs.is_empty());
    assert_eq!(
        a.message.as_ref().unwrap().text,
        "remote.bin was not changed: nothing uploaded"
    );
}

fn uploaded(result: Result<(), String>) -> Action {
    Action::Edit(EditNews::Uploaded {
        session: session(),
        to: "/remote.bin".into(),
        result,
    })
}

fn f4(a: &mut super::app::App) -> Vec<Effect> {
    a.remote.select_name("remote.bin");
    a.update(key(KeyCode::F(4)))
}

#[test]
fn a_second_f4_waits_for_the_upload_and_a_failed_one_is_checked_again() {
    let mut a = edited();
    // The runtime checks and uploads at once; until the upload ended, F4
    // on the file fetches nothing (it would fetch the old content, and
    // its upload would undo this edit).
    assert!(f4(&mut a).is_empty());
    let m = a.message.clone().unwrap();
    assert!(m.text.contains("not uploaded yet"), "{m:?}");
    // A failed upload keeps the copy and says where; F4 checks it again.
    let fx = a.update(uploaded(Err("connection lost".into())));
    assert!(fx.is_empty(), "{fx:?}");
    let m = a.message.clone().unwrap();
    assert!(
        m.error && m.text.contains("kept at /tmp/ferry-edit-x/remote.bin"),
        "{m:?}"
    );
    let check = Effect::Edit(EditWork::Check {
        session: session(),
        failed: None,
    });
    assert_eq!(f4(&mut a), vec![check]);
    assert!(f4(&mut a).is_empty());
    // Verified: now the copy goes, and the pane shows the file anew.
    let fx = a.update(uploaded(Ok(())));
    assert_eq!(fx[0], Effect::Edit(EditWork::Discard(session())), "{fx:?}");
    assert!(a.edit.later.is_empty());
    assert!(a.queue.jobs.is_empty());
}

#[test]
fn a_failed_editor_uploads_nothing() {
    let mut a = edited();
    let fx = a.update(Action::Edit(EditNews::Checked {
        session: session(),
        failed: Some("the editor (vi) ended with exit status: 1".into()),
        result: Ok((Verdict::Upload, String::new())),
    }));
    assert!(fx.is_empty(), "{fx:?}");
    assert!(a.queue.jobs.is_empty());
    let m = a.message.clone().unwrap();
    assert!(
        m.text.contains("nothing uploaded; your copy is kept"),
        "{m:?}"
    );
}

#[test]
fn the_remote_changed_meanwhile_asks_and_keeps_mine_beside() {
    let mut a = edited();
    let why = "it changed on the server (12 bytes, modified 2023-11-14 22:13, was 10 bytes, 2023-11-14 22:13)";
    assert!(a
        .update(checked(Verdict::RemoteChanged(why.into())))
        .is_empty());
    assert!(matches!(a.dialog, Some(Dialog::Edit(_))));
    a.update(Action::Resize(80, 20));
    let mut t = Terminal::new(TestBackend::new(80, 20)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    insta::assert_snapshot!("edit_remote_changed", t.backend().to_string());
    // Another key asks on.
    assert!(a.update(key(KeyCode::Char('x'))).is_empty());
    let fx = a.update(key(KeyCode::Char('k')));
    assert_eq!(
        fx,
        vec![Effect::Edit(EditWork::Upload {
            session: session(),
            spare: Some("remote.bin.edited-1".into()),
        })]
    );
    assert!(a.dialog.is_none());
}

#[test]
fn the_remote_changed_meanwhile_overwrite_or_discard() {
    let mut a = edited();
    a.update(checked(Verdict::RemoteChanged("gone".into())));
    let fx = a.update(key(KeyCode::Char('o')));
    assert_eq!(
        fx,
        vec![Effect::Edit(EditWork::Upload {
            session: session(),
            spare: None,
        })]
    );
    let mut a = edited();
    a.update(checked(Verdict::RemoteChanged("gone".into())));
    let fx = a.update(key(KeyCode::Char('d')));
    assert_eq!(fx, vec![Effect::Edit(EditWork::Discard(session()))]);
    let mut a = edited();
    a.update(checked(Verdict::RemoteChanged("gone".into())));
    assert!(a.update(key(KeyCode::Esc)).is_empty());
    assert!(a.dialog.is_none());
    // "Later" has a later: the message says where the copy is, and F4 on
    // the file checks it again (and uploads it, or asks anew).
    let m = a.message.clone().unwrap();
    assert!(
        m.text
            .contains("kept at /tmp/ferry-edit-x/remote.bin (F4 on remote.bin asks again)"),
        "{m:?}"
    );
    let check = Effect::Edit(EditWork::Check {
        session: session(),
        failed: None,
    });
    assert_eq!(f4(&mut a), vec![check]);
}

#[test]
fn the_question_waits_for_an_open_dialog_and_survives_a_disconnect() {
    let mut a = edited();
    // Another dialog is open when the news comes: it stays, and the
    // question shows once it closes.
    a.update(key(KeyCode::F(1)));
    assert!(matches!(a.dialog, Some(Dialog::Help)));
    a.update(checked(Verdict::RemoteChanged("gone".into())));
    assert!(matches!(a.dialog, Some(Dialog::Help)), "{:?}", a.dialog);
    let m = a.message.clone().unwrap();
    assert!(
        m.text.contains("kept at /tmp/ferry-edit-x/remote.bin"),
        "{m:?}"
    );
    a.update(key(KeyCode::Esc));
    assert!(matches!(a.dialog, Some(Dialog::Edit(_))), "{:?}", a.dialog);
    // The connection is lost with the question open: the message says
    // where the copy is, and the question comes back after.
    a.update(Action::Disconnected("connection reset".into()));
    assert!(
        matches!(a.dialog, Some(Dialog::Reconnect(_))),
        "{:?}",
        a.dialog
    );
    let m = a.message.clone().unwrap();
    assert!(
        m.text.contains("kept at /tmp/ferry-edit-x/remote.bin"),
        "{m:?}"
    );
    assert_eq!(a.edit.waiting.len(), 1);
}

#[test]
fn a_question_replaced_by_another_dialog_is_not_lost() {
    let mut a = edited();
    a.update(checked(Verdict::RemoteChanged("gone".into())));
    assert!(matches!(a.dialog, Some(Dialog::Edit(_))));
    // Something else takes the screen (a host-key prompt, say) and is
    // closed: F4 on the file still checks the kept copy again.
    a.dialog = Some(Dialog::Help);
    a.update(key(KeyCode::Esc));
    assert!(a.dialog.is_none());
    let check = Effect::Edit(EditWork::Check {
        session: session(),
        failed: None,
    });
    assert_eq!(f4(&mut a), vec![check]);
    // An answered question is forgotten: F4 then fetches anew.
    let mut a = edited();
    a.update(checked(Verdict::RemoteChanged("gone".into())));
    a.update(key(KeyCode::Char('d')));
    assert!(a.edit.later.is_empty());
    let fx = f4(&mut a);
    assert!(
        matches!(fx[..], [Effect::Edit(EditWork::Fetch { .. })]),
        "{fx:?}"
    );
}

#[test]
fn the_copy_path_in_the_question_is_escaped() {
    let mut a = edited();
    let mut s = session();
    s.file = PathBuf::from("/tmp/ferry-edit-x/evil\x1b]0;owned\x07");
    a.update(Action::Edit(EditNews::Checked {
        session: s,
        failed: None,
        result: Ok((Verdict::RemoteChanged("gone".into()), "x".into())),
    }));
    a.update(Action::Resize(80, 20));
    let mut t = Terminal::new(TestBackend::new(80, 20)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    let screen = t.backend().to_string();
    assert!(
        !screen.contains('\x1b') && !screen.contains('\x07'),
        "{screen}"
    );
    assert!(screen.contains("evil\\e]0;owned\\a"), "{screen}");
}

#[test]
fn directories_big_files_and_local_files() {
    let mut a = app();
    // A local directory is refused; a local file is edited in place.
    a.local.select_name("pics");
    assert!(a.update(key(KeyCode::F(4))).is_empty());
    assert!(a.message.as_ref().unwrap().text.contains("edits files"));
    a.local.select_name("a.txt");
    let fx = a.update(key(KeyCode::F(4)));
    assert_eq!(
        fx,
        vec![Effect::Edit(EditWork::Run(EditTarget::Local(
            "/home/me/a.txt".into()
        )))]
    );
    let fx = a.update(Action::Edit(EditNews::Exited {
        target: EditTarget::Local("/home/me/a.txt".into()),
        result: Err("the editor (vi) ended with exit status: 1".into()),
    }));
    assert!(matches!(fx[..], [Effect::ListLocal { .. }]), "{fx:?}");
    assert!(a.message.as_ref().unwrap().error);
    // A remote file over the limit is refused before anything is fetched.
    a.update(key(KeyCode::Tab));
    a.update(Action::RemoteListed {
        generation: 1,
        listing: vec![e("huge.iso", EntryKind::File, EDIT_LIMIT + 1)].into(),
    });
    a.remote.select_name("huge.iso");
    assert!(a.update(key(KeyCode::F(4))).is_empty());
    assert!(a.message.as_ref().unwrap().text.contains("up to 64 MiB"));
}
