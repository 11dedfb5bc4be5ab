//! The real `ferry` TUI in tmux against a real ferryd: navigate, mark with
//! keys and with mouse sequences, upload and download, then check the files
//! on disk by hash and that the queue's gauges showed on screen.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_e2e::{bin, write_random, Server};

const PW: &str = "pw";

struct Tmux {
    name: String,
}

impl Tmux {
    fn start(dir: &Path, home: &Path, command: &str) -> Tmux {
        let name = format!("ferry-e2e-{}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "120",
                "-y",
                "35",
                "-c",
            ])
            .arg(dir)
            .arg(format!(
                "env HOME={} TERM=xterm-256color {command}",
                home.display()
            ))
            .status()
            .expect("tmux must be installed (the CI script installs it)");
        assert!(status.success());
        Tmux { name }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            assert!(Command::new("tmux")
                .args(["send-keys", "-t", &self.name, k])
                .status()
                .unwrap()
                .success());
            std::thread::sleep(Duration::from_millis(80));
        }
    }

    /// An SGR mouse report typed into the pane (1-based column and row).
    fn mouse(&self, button: u8, x: u16, y: u16, press: bool) {
        let seq = format!("\x1b[<{button};{x};{y}{}", if press { 'M' } else { 'm' });
        assert!(Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "-l", &seq])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(80));
    }

    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if check(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.name])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

/// SHA-256 by coreutils, independent of Ferry's own code.
fn sha(path: &Path) -> Vec<u8> {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    out.stdout.split(|b| *b == b' ').next().unwrap().to_vec()
}

#[test]
fn browse_mark_upload_download_in_tmux() {
    let s = Server::start();
    s.add_user("u", PW, None);
    write_random(&s.home("u").join("remote.bin"), 3 << 20, 1);
    std::fs::create_dir(s.home("u").join("inbox")).unwrap();
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    write_random(&work.join("a.bin"), 2 << 20, 2);
    write_random(&work.join("b.bin"), 1 << 20, 3);
    write_random(&work.join("c.txt"), 5000, 4);

    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the remote listing", |s| {
        s.contains("remote.bin") && s.contains("u@127.0.0.1")
    });

    // Keys: cursor on ../, Down to a.bin, Space marks it (and moves on).
    t.keys(&["Down", "Space"]);
    // Mouse: Ctrl+click c.txt (local rows start at screen row 3, 1-based;
    // rows are ../ a.bin b.bin c.txt, so c.txt is on screen row 6).
    t.mouse(16, 6, 6, true);
    t.mouse(16, 6, 6, false);
    t.wait_for("two marks", |s| s.contains("2 marked"));
    t.keys(&["F5"]);
    let screen = t.wait_for("both uploads done", |s| {
        s.matches("done ✓").count() >= 2 && s.contains("Overall 100%")
    });
    assert!(
        screen.contains("↑ a.bin") && screen.contains("↑ c.txt"),
        "{screen}"
    );
    assert_eq!(sha(&s.home("u").join("a.bin")), sha(&work.join("a.bin")));
    assert_eq!(sha(&s.home("u").join("c.txt")), sha(&work.join("c.txt")));
    assert!(!s.home("u").join("b.bin").exists(), "b.bin was not marked");

    // Download: to the remote pane, End is remote.bin, F5.
    t.keys(&["Tab", "End", "F5"]);
    let screen = t.wait_for("the download done", |s| {
        s.contains("↓ remote.bin") && s.matches("done ✓").count() >= 3
    });
    assert!(screen.contains("Overall 100%"), "{screen}");
    assert_eq!(
        sha(&work.join("remote.bin")),
        sha(&s.home("u").join("remote.bin"))
    );

    // Mouse drag in the remote pane marks a range: rows are inbox/ a.bin
    // c.txt remote.bin (screen rows 3..6, column 70); drag a.bin..c.txt,
    // then delete them after confirming.
    t.mouse(0, 70, 4, true);
    t.mouse(32, 70, 5, true);
    t.mouse(0, 70, 5, false);
    t.wait_for("the dragged marks", |s| s.contains("2 marked"));
    t.keys(&["F8"]);
    t.wait_for("the delete confirmation", |s| {
        s.contains("Delete 2 remote entries")
    });
    t.keys(&["y"]);
    t.wait_for("the deletion", |_| {
        !s.home("u").join("a.bin").exists() && !s.home("u").join("c.txt").exists()
    });
    assert!(s.home("u").join("remote.bin").exists());

    // Quit.
    t.keys(&["q"]);
    let start = Instant::now();
    while t.alive() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!t.alive(), "ferry quit on q");
}

#[test]
fn a_lost_connection_is_offered_a_reconnect_and_the_queue_resumes() {
    let mut s = Server::start();
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    write_random(&work.join("big.bin"), 256 << 20, 7);
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the connection", |s| s.contains("u@127.0.0.1"));
    t.keys(&["Down", "F5"]);
    // Cut the server off mid-upload (SIGKILL), with some bytes on disk.
    let part = s.home("u").join(".big.bin.ferry-part");
    let start = Instant::now();
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < 1 << 20 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the upload never started:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    s.restart_hard_same_port();
    let screen = t.wait_for("the reconnect prompt", |s| s.contains("Connection lost"));
    assert!(screen.contains("reconnect"), "{screen}");
    assert!(
        !s.home("u").join("big.bin").exists(),
        "nothing torn under the final name"
    );
    t.keys(&["r"]);
    t.wait_for("the resumed upload to finish", |sc| sc.contains("done ✓"));
    assert_eq!(
        sha(&s.home("u").join("big.bin")),
        sha(&work.join("big.bin"))
    );
}
