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
    // The database and its write-ahead log, if any.
    let db = || {
        let mut bytes = std::fs::read(root.join("ferry.db")).unwrap();
        bytes.extend(std::fs::read(root.join("ferry.db-wal")).unwrap_or_default());
        bytes
    };
    let store = db();
    assert!(!store.windows(7).any(|w| w == b"hunter2"));
    assert!(ferryd(root, &["passwd", "carol"], "new one\n")
        .status
        .success());
    assert_ne!(db(), store, "a new verifier");
    assert!(ferryd(root, &["quota", "carol", "none"], "")
        .status
        .success());
    assert!(String::from_utf8_lossy(&ferryd(root, &["list"], "").stdout).contains("unlimited"));
    assert!(ferryd(root, &["del", "carol"], "").status.success());
    assert!(!ferryd(root, &["del", "carol"], "").status.success());
    assert!(root.join("home/carol/f").exists(), "the home is kept");
}

/// A root from an older ferryd: its users.toml is imported into the
/// database once, kept as a backup, and said so.
#[test]
fn an_old_user_file_is_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let rec = ferry_server::users::UserRecord::new("old pw", 4096, Some(1 << 20)).unwrap();
    let mut users = std::collections::BTreeMap::new();
    users.insert("erin".to_string(), rec);
    #[derive(serde::Serialize)]
    struct File {
        users: std::collections::BTreeMap<String, ferry_server::users::UserRecord>,
    }
    std::fs::write(
        root.join("users.toml"),
        toml::to_string(&File { users }).unwrap(),
    )
    .unwrap();
    let list = ferryd(root, &["list"], "");
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout).contains("erin"));
    assert!(
        String::from_utf8_lossy(&list.stderr).contains("imported"),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(!root.join("users.toml").exists());
    assert!(root.join("users.toml.imported").exists());
    // Once: the second start neither reads nor says anything of it.
    let again = ferryd(root, &["list"], "");
    assert!(String::from_utf8_lossy(&again.stdout).contains("erin"));
    assert!(!String::from_utf8_lossy(&again.stderr).contains("imported"));
}

/// A database that is not there stops the command with the reason and a
/// failing exit code; a password on the command line is refused.
#[test]
fn a_database_that_is_down_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let down = ferryd(
        dir.path(),
        &["list", "--database", "postgres://ferry@127.0.0.1:1/ferry"],
        "",
    );
    assert_eq!(down.status.code(), Some(1));
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(
        err.contains("cannot open the state store") && err.contains("unavailable"),
        "{err}"
    );
    let leaked = ferryd(
        dir.path(),
        &[
            "list",
            "--database",
            "postgres://ferry:secret@127.0.0.1:1/ferry",
        ],
        "",
    );
    assert_eq!(leaked.status.code(), Some(1));
    let err = String::from_utf8_lossy(&leaked.stderr);
    assert!(err.contains("FERRY_DATABASE_PASSWORD"), "{err}");
}

fn check(root: &std::path::Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferryd"))
        .arg("check")
        .args(args)
        .arg("--root")
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// `ferryd check` finds a home changed behind the store's back, says so
/// with exit code 1, and `--fix` makes the store agree with the disk.
#[test]
fn check_compares_the_store_with_the_disk_and_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert!(ferryd(root, &["add", "carol"], "pw\n").status.success());
    std::fs::write(root.join("home/carol/f"), vec![0u8; 1000]).unwrap();
    let first = check(root, &[]);
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stdout).contains("not recorded yet"));
    assert!(check(root, &["--fix"]).status.success());
    let same = check(root, &["carol"]);
    assert!(same.status.success());
    let text = String::from_utf8_lossy(&same.stdout);
    assert!(text.contains("1000") && text.contains(" ok"), "{text}");

    std::fs::write(root.join("home/carol/g"), vec![0u8; 500]).unwrap();
    let differs = check(root, &[]);
    assert_eq!(differs.status.code(), Some(1));
    let text = String::from_utf8_lossy(&differs.stdout);
    assert!(text.contains("DIFFERS") && text.contains("1500"), "{text}");
    let fixed = check(root, &["--fix"]);
    assert!(fixed.status.success());
    assert!(String::from_utf8_lossy(&fixed.stdout).contains("fixed"));
    assert!(check(root, &[]).status.success());
    assert_eq!(check(root, &["nobody"]).status.code(), Some(1));
}
