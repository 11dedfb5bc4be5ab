//! What clients send (user names, paths) cannot forge lines of ferryd's
//! log or put terminal escapes into it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use ferry_e2e::raw::Raw;
use ferry_e2e::Server;
use ferry_proto::{ErrorKind, ServerMsg};

/// A stranger fails a login as `x\naudit: login ok user=root`, a user
/// makes a directory whose name holds a newline, a fake audit pair and a
/// clear-screen escape, and renames and removes it: the log holds them
/// quoted and escaped, on their own lines only.
#[tokio::test]
async fn names_and_paths_cannot_forge_log_lines() {
    let s = Server::start();
    s.add_user("alice", "pw-alice", None);

    let forged_user = "x\naudit: login ok user=root";
    let mut raw = Raw::connect(&s).await;
    match raw.login(forged_user, "guess").await {
        Err(ServerMsg::Refused { error }) => assert_eq!(error.kind, ErrorKind::AuthFailed),
        other => panic!("{other:?}"),
    }

    let evil = "d\u{1b}[2J\nrm -r user=bob path=\"x\"";
    let c = s.client("alice", "pw-alice").await.unwrap();
    c.mkdir(evil, false).await.unwrap();
    let moved = format!("{evil}2");
    c.rename(evil, &moved, false).await.unwrap();
    c.remove(&moved, ferry_proto::msg::RemoveMode::EmptyDir)
        .await
        .unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let bytes = std::fs::read(s.root.path().join("ferryd.log")).unwrap();
    let log = String::from_utf8_lossy(&bytes);
    for line in log.lines() {
        assert!(!line.starts_with("audit:"), "forged line: {line:?}");
        assert!(!line.starts_with("rm -r"), "forged line: {line:?}");
    }
    assert!(!bytes.contains(&0x1b), "a raw ESC reached the log");
    // They are there, quoted and escaped.
    assert!(
        log.contains(r#"user="x\naudit: login ok user=root""#),
        "{log}"
    );
    assert!(
        log.contains(r#"path="/d\u{1b}[2J\nrm -r user=bob path=\"x\"""#),
        "{log}"
    );
}
