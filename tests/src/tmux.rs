//! A TUI under test: the real `ferry` in a detached tmux session, driven
//! with keys and SGR mouse reports, read back with `capture-pane`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A detached tmux session running one command at 120x35.
pub struct Tmux {
    /// The session's name (for tmux commands of a test's own).
    pub name: String,
}

impl Tmux {
    pub fn start(dir: &Path, home: &Path, command: &str) -> Tmux {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ferry-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
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
                "env HOME={h} XDG_CONFIG_HOME={h}/.config XDG_STATE_HOME={h}/.local/state \
                 TERM=xterm-256color {command}",
                h = home.display()
            ))
            .status()
            .expect("tmux must be installed (the CI script installs it)");
        assert!(status.success());
        Tmux { name }
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
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
    pub fn mouse(&self, button: u8, x: u16, y: u16, press: bool) {
        let seq = format!("\x1b[<{button};{x};{y}{}", if press { 'M' } else { 'm' });
        assert!(Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "-l", &seq])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(80));
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        assert!(Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "-l", text])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(80));
    }

    pub fn quit(&self) {
        self.keys(&["q"]);
        let start = Instant::now();
        while self.alive() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!self.alive(), "ferry quit on q");
    }

    pub fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if check(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn alive(&self) -> bool {
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
pub fn sha(path: &Path) -> Vec<u8> {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    out.stdout.split(|b| *b == b' ').next().unwrap().to_vec()
}
