//! The real `ferry` TUI in tmux against a real ferryd: F3 views a remote
//! file of several MiB read by ranges, with its escape sequences shown
//! escaped, a search that reads on past the first blocks, hex, the end of
//! the file, and closing back to the panes; then the chmod dialog.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use ferry_e2e::tmux::Tmux;
use std::os::unix::fs::PermissionsExt;

use ferry_e2e::{bin, disk_only, on_s3, Server};

const PW: &str = "pw";

#[test]
fn f3_views_a_remote_file_searches_it_and_closes() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let mut text = String::from("esc \x1b[31mred\x1b[0m here\n");
    for i in 1..400_000 {
        if i == 300_000 {
            text.push_str("the needle line\n");
        } else {
            text.push_str(&format!("line {i:07}\n"));
        }
    }
    s.files("u").write("big.log", text.as_bytes());
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
        s.contains("big.log") && s.contains("u@127.0.0.1")
    });
    t.keys(&["Tab", "F3"]);
    let screen = t.wait_for("the first rows", |s| s.contains("line 0000005"));
    assert!(screen.contains(r"esc \e[31mred\e[0m here"), "{screen}");
    assert!(screen.contains("big.log"), "{screen}");
    // The needle is ~3.9 MiB in: the search reads on block after block.
    t.keys(&["/"]);
    t.type_text("needle");
    t.keys(&["Enter"]);
    let screen = t.wait_for("the match on top", |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.starts_with("the needle line"))
    });
    assert!(screen.contains("line 0300001"), "{screen}");
    // Hex keeps the place: the match's row, 16 bytes a row.
    let at = text.find("the needle").unwrap();
    t.keys(&["h"]);
    let row = format!("{:08x}  ", at / 16 * 16);
    t.wait_for("hex", |s| {
        s.lines().next().is_some_and(|l| l.starts_with(&row))
    });
    t.keys(&["h", "G"]);
    t.wait_for("the end", |s| s.contains("line 0399999"));
    t.keys(&["q"]);
    t.wait_for("the panes again", |s| {
        s.contains("Transfers") && s.contains("big.log")
    });

    // p: the permissions; typed in octal, set on the server.
    t.keys(&["p"]);
    t.wait_for("the chmod dialog", |s| s.contains("Permissions (remote)"));
    t.type_text("600");
    t.keys(&["Enter"]);
    t.wait_for("the mode set", |s| {
        s.contains("mode 600 (rw-------) set on 1 entry")
    });
    if !on_s3() {
        let mode = std::fs::metadata(s.home("u").join("big.log"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o600);
    }
    // A mode that would lock the server out is refused, and says so.
    t.keys(&["p"]);
    t.type_text("000");
    t.keys(&["Enter"]);
    let screen = t.wait_for("the refusal", |s| s.contains("✗ /big.log: mode 000"));
    assert!(screen.contains("bad request"), "{screen}");
    t.quit();
}

#[test]
fn a_10_gib_remote_log_opens_at_once_and_shows_its_end() {
    if disk_only("a sparse file in the home") {
        return;
    }
    let s = Server::start();
    s.add_user("u", PW, None);
    let head: String = (0..30_000)
        .map(|i| format!("early line {i:06}\n"))
        .collect();
    s.files("u").write("huge.log", head.as_bytes());
    // Sparse: 10 GiB on the server's disk costs nothing.
    let path = s.home("u").join("huge.log");
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let size = 10u64 << 30;
    let tail = b"\nthe very last line\n";
    f.set_len(size - tail.len() as u64).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(tail, size - tail.len() as u64).unwrap();
    drop(f);

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
    t.wait_for("the remote listing", |s| s.contains("huge.log"));
    t.keys(&["Tab", "F3"]);
    t.wait_for("the first rows", |s| s.contains("early line 000003"));
    t.keys(&["G"]);
    let screen = t.wait_for("the end", |s| s.contains("the very last line"));
    assert!(screen.contains(&format!("/{size} (10.0 GiB)")), "{screen}");
    t.keys(&["q"]);
    t.quit();
}
