//! The real `ferry` TUI in tmux against a real ferryd: Shift+F5 copies a
//! remote file within the remote side onto a name that exists; the
//! conflict dialog offers a new name, and the copy is made on the server.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use ferry_e2e::tmux::Tmux;
use ferry_e2e::{bin, Server};

const PW: &str = "pw";

#[test]
fn shift_f5_copies_a_remote_file_past_a_conflict() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let f = s.files("u");
    f.write("notes.txt", b"the notes");
    f.write("old.txt", b"old");
    let local = tempfile::tempdir().unwrap();
    let home = local.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(local.path(), &home, &cmd);
    t.wait_for("the remote listing", |s| {
        s.contains("notes.txt") && s.contains("old.txt")
    });
    // The cursor is on notes.txt, the first remote row.
    t.keys(&["Tab", "S-F5"]);
    t.wait_for("the target line", |s| {
        s.contains("Copy within the remote side")
    });
    t.keys(&["C-u"]);
    t.type_text("old.txt");
    t.keys(&["Enter"]);
    t.wait_for("the conflict dialog", |s| {
        s.contains("old.txt already exists in /") && s.contains("overwrite")
    });
    t.keys(&["n"]);
    t.wait_for("the suggested name", |s| {
        s.contains("new name: old.txt (1)")
    });
    t.keys(&["Enter"]);
    let screen = t.wait_for("the copy listed", |s| s.contains("old.txt (1)"));
    assert!(screen.contains("copied 1 entry to /"), "{screen}");
    assert_eq!(f.read("old.txt (1)"), b"the notes");
    assert_eq!(f.read("old.txt"), b"old");
    t.quit();
}
