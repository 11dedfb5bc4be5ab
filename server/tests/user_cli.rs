//! `ferryd user ...` as an administrator runs it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn ferryd(root: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .args(["user"])
        .args(args)
        .arg("--root")
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading (a bad name): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn add_list_passwd_quota_del() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert!(
        ferryd(root, &["add", "carol", "--quota", "5MiB"], "hunter2\n")
            .status
            .success()
    );
    let dup = ferryd(root, &["add", "carol"], "x\n");
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    assert!(!ferryd(root, &["add", "Bad/Name"], "x\n").status.success());
    assert!(
        !ferryd(root, &["add", "dave"], "\n").status.success(),
        "empty password refused"
    );
    std::fs::write(root.join("home/carol/f"), vec![0u8; 2048]).unwrap();
    let list = ferryd(root, &["list"], "");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("carol") && text.contains("5.0 MiB") && text.contains("2.0 KiB"),
        "{text}"
    );
    let store = std::fs::read_to_string(root.join("users.toml")).unwrap();
    assert!(!store.contains("hunter2"));
    assert!(ferryd(root, &["passwd", "carol"], "new one\n")
        .status
        .success());
    assert_ne!(
        std::fs::read_to_string(root.join("users.toml")).unwrap(),
        store
    );
    assert!(ferryd(root, &["quota", "carol", "none"], "")
        .status
        .success());
    assert!(String::from_utf8_lossy(&ferryd(root, &["list"], "").stdout).contains("unlimited"));
    assert!(ferryd(root, &["del", "carol"], "").status.success());
    assert!(!ferryd(root, &["del", "carol"], "").status.success());
    assert!(root.join("home/carol/f").exists(), "the home is kept");
}
