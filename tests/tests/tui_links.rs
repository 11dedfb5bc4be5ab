//! Symbolic links in the real TUI against a real ferryd: a link shows with
//! `@` in both panes, a marked remote link downloads as the file it points
//! to (it was "0 files done"), and links inside a tree are skipped until
//! `L` turns following on (the CLI's `-L`).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::symlink;

use ferry_e2e::tmux::{sha, Tmux};
use ferry_e2e::{bin, write_random, Server};

const PW: &str = "pw";

#[test]
fn links_in_the_tui_follow_the_cli_rule() {
    if ferry_e2e::disk_only("a symbolic link in a home on the disk (object storage has none)") {
        return;
    }
    let s = Server::start();
    s.add_user("u", PW, None);
    let h = s.home("u");
    write_random(&h.join("real.bin"), 1 << 20, 1);
    symlink("real.bin", h.join("alias.bin")).unwrap();
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    write_random(&work.join("a.bin"), 1000, 2);
    symlink("a.bin", work.join("loc-link")).unwrap();
    write_random(&work.join("t/own.bin"), 10, 3);
    symlink("../a.bin", work.join("t/in-tree")).unwrap();

    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("both listings, links with @", |s| {
        s.contains("alias.bin@") && s.contains("loc-link@") && s.contains("t/")
    });

    // The remote link (first row of the remote pane) downloads as a file.
    t.keys(&["Tab", "F5"]);
    let screen = t.wait_for("the download", |s| s.contains("done ✓"));
    assert!(screen.contains("1 file, 1.0 MiB done"), "{screen}");
    assert_eq!(sha(&work.join("alias.bin")), sha(&h.join("real.bin")));

    // Back to the local pane (past the queue), onto t/, F5: the link
    // inside is skipped.
    t.keys(&["Tab", "Tab", "Home", "Down"]);
    t.wait_for("the cursor on t/", |_| true);
    t.keys(&["F5"]);
    t.wait_for("the tree upload", |s| s.matches("done ✓").count() >= 2);
    assert!(h.join("t/own.bin").exists());
    assert!(
        !h.join("t/in-tree").exists(),
        "a link inside a tree, by default"
    );

    // L: links inside trees are followed; the same copy again (overwrite).
    t.keys(&["L"]);
    t.wait_for("following links", |s| s.contains("links followed"));
    t.keys(&["F5"]);
    t.wait_for("the conflict dialog", |s| s.contains("overwrite"));
    t.keys(&["o"]);
    t.wait_for("the followed link uploaded", |_| {
        h.join("t/in-tree").exists()
    });
    t.wait_for("the third job done", |s| s.matches("done ✓").count() >= 3);
    assert_eq!(sha(&h.join("t/in-tree")), sha(&work.join("a.bin")));
    t.quit();
}
