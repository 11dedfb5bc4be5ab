//! `ferryd user del`, `passwd` and `quota` reach live sessions: the real
//! command runs against the running server's root, and the session's next
//! request fails (or the connection closes) within a generous deadline.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use ferry_e2e::raw::Raw;
use ferry_e2e::Server;
use ferry_proto::{ClientMsg, Frame, Reply, Request, ServerMsg};
use ferry_tui::client::Client;
use futures::SinkExt;

const PW: &str = "pw";
/// Far beyond the server's check every second.
const DEADLINE: Duration = Duration::from_secs(20);

fn admin(s: &Server, args: &[&str], stdin: &str) {
    let o = s.ferryd(args, stdin);
    assert!(o.status.success(), "{}", ferry_e2e::stderr(&o));
}

/// Lists until a listing fails; returns that error's text.
async fn until_refused(c: &Client) -> String {
    let start = Instant::now();
    loop {
        match c.list("/").await {
            Err(e) => return e.to_string(),
            Ok(_) if start.elapsed() > DEADLINE => panic!("the session still works"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Her session uploaded on after `ferryd user del alice`.
#[tokio::test]
async fn a_removed_users_session_is_closed_mid_upload() {
    let s = Server::start();
    s.add_user("alice", PW, None);
    let mut raw = Raw::connect(&s).await;
    raw.login("alice", PW).await.unwrap();
    let req = Request::PutOpen {
        transfer: 1,
        path: "big.bin".into(),
        size: 8 << 20,
        mtime: 0,
        mode: 0o644,
        overwrite: false,
        resume: true,
        eager: false,
    };
    raw.send(&ClientMsg::Request { id: 1, req }).await;
    match raw.recv().await {
        Some(ServerMsg::Response {
            reply: Ok(Reply::PutReady { .. }),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    raw.send(&ClientMsg::PutStart {
        transfer: 1,
        offset: 0,
    })
    .await;
    let chunk = bytes::Bytes::from(vec![5u8; 1 << 20]);
    raw.wr
        .send(Frame::Data {
            transfer: 1,
            data: chunk.clone(),
        })
        .await
        .unwrap();

    admin(&s, &["user", "del", "alice"], "");

    // Sending on, the upload is ended and the session closed, with why.
    let start = Instant::now();
    let why = loop {
        assert!(start.elapsed() < DEADLINE, "the session still works");
        let data = Frame::Data {
            transfer: 1,
            data: chunk.clone(),
        };
        let sent = tokio::time::timeout(Duration::from_millis(200), raw.wr.send(data)).await;
        if matches!(sent, Ok(Err(_))) {
            break String::new(); // closed under our feet
        }
        match tokio::time::timeout(Duration::from_millis(200), raw.recv()).await {
            Ok(Some(ServerMsg::Refused { error })) => break error.to_string(),
            Ok(Some(ServerMsg::Response { reply: Err(_), .. })) => continue,
            Ok(None) => break String::new(),
            _ => continue,
        }
    };
    assert!(why.is_empty() || why.contains("removed"), "{why}");
    // The connection is gone for good.
    let end = tokio::time::timeout(DEADLINE, async {
        loop {
            match raw.recv().await {
                None => break,
                Some(_) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the connection stayed open");
    if s.store.is_none() {
        assert!(!s.files("alice").exists("big.bin"));
        assert!(
            s.partial("alice", "big.bin").exists(),
            "the partial is kept"
        );
    }
    assert!(s.client("alice", PW).await.is_err());
}

/// A session that logged in with the old password ends when it changes;
/// one with the new password lives on.
#[tokio::test]
async fn a_changed_password_closes_sessions_that_used_the_old_one() {
    let s = Server::start();
    s.add_user("alice", PW, None);
    s.add_user("bob", PW, None);
    let old = s.client("alice", PW).await.unwrap();
    let bob = s.client("bob", PW).await.unwrap();
    admin(&s, &["user", "passwd", "alice"], "new password\n");
    let why = until_refused(&old).await;
    assert!(why.contains("password was changed"), "{why}");
    let new = s.client("alice", "new password").await.unwrap();
    // Several checks later, the new session and bob's still work.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    new.list("/").await.unwrap();
    bob.list("/").await.unwrap();
}

/// A lowered quota holds for a live session from its next upload.
#[tokio::test]
async fn a_lowered_quota_holds_for_live_sessions() {
    let s = Server::start();
    s.add_user("alice", PW, Some("10MiB"));
    let c = s.client("alice", PW).await.unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f.bin");
    ferry_e2e::write_random(&src, 300 << 10, 1);
    admin(&s, &["user", "quota", "alice", "200KiB"], "");
    let start = Instant::now();
    loop {
        let (_, limit) = c.quota().await.unwrap();
        if limit == Some(200 << 10) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "the limit did not change");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opts = ferry_tui::transfer::TransferOptions::default();
    let put =
        ferry_tui::transfer::put_paths(&c, &[src], "/", opts, ferry_tui::transfer::Events::none())
            .await;
    let refused = match put {
        Err(e) => e.to_string(),
        Ok(results) => format!("{:?}", results[0].status),
    };
    assert!(
        refused.to_lowercase().contains("quota"),
        "uploaded beyond the new quota: {refused}"
    );
    assert!(!s.files("alice").exists("f.bin"));
}
