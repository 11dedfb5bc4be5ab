//! `SetMtime` end to end on the real ferryd, on either store: a file's or
//! a directory's modification time changes and nothing else does; the
//! home itself, missing entries, times no file system holds and (on disk)
//! symbolic links are refused, the link's target untouched.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use ferry_e2e::Server;
use ferry_proto::ErrorKind;
use ferry_tui::client::ClientError;

const PW: &str = "timespass";

fn kind(e: ClientError) -> ErrorKind {
    match e {
        ClientError::Remote(r) => r.kind,
        other => panic!("not a refusal: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_mtime_changes_only_the_time() {
    let s = Server::start();
    s.add_user("alice", PW, None);
    s.files("alice").write("d/f.txt", b"hello");
    let client = s.client("alice", PW).await.unwrap();
    let f = client.resolve("d/f.txt").unwrap();
    let d = client.resolve("d").unwrap();
    client.set_mtime(&f, 1_234_567_890).await.unwrap();
    client.set_mtime(&d, 1_000_000_000).await.unwrap();
    let e = client.stat("d/f.txt").await.unwrap();
    assert_eq!((e.mtime, e.size), (1_234_567_890, 5));
    assert_eq!(client.stat("d").await.unwrap().mtime, 1_000_000_000);
    assert_eq!(s.files("alice").read("d/f.txt"), b"hello");
    // Before 1970 is a time too.
    client.set_mtime(&f, -86_400).await.unwrap();
    assert_eq!(client.stat("d/f.txt").await.unwrap().mtime, -86_400);

    let root = client.resolve("/").unwrap();
    let e = client.set_mtime(&root, 1).await.unwrap_err();
    assert_eq!(kind(e), ErrorKind::PermissionDenied);
    let missing = client.resolve("nope").unwrap();
    let e = client.set_mtime(&missing, 1).await.unwrap_err();
    assert_eq!(kind(e), ErrorKind::NotFound);
    for t in [i64::MAX, i64::MIN, 253_402_300_800] {
        let e = client.set_mtime(&f, t).await.unwrap_err();
        assert_eq!(kind(e), ErrorKind::BadRequest, "{t}");
    }
    assert_eq!(client.stat("d/f.txt").await.unwrap().mtime, -86_400);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_mtime_never_follows_a_symlink() {
    if ferry_e2e::disk_only("symbolic links made behind ferryd's back") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let s = Server::start();
    s.add_user("alice", PW, None);
    let outside = s.root.path().join("outside");
    std::fs::write(&outside, "x").unwrap();
    let before = std::fs::metadata(&outside).unwrap().mtime();
    std::os::unix::fs::symlink(&outside, s.home("alice").join("l")).unwrap();
    let client = s.client("alice", PW).await.unwrap();
    let l = client.resolve("l").unwrap();
    let e = client.set_mtime(&l, 1_000).await.unwrap_err();
    assert_eq!(kind(e), ErrorKind::BadRequest);
    assert_eq!(std::fs::metadata(&outside).unwrap().mtime(), before);
    client.close().await;
}
