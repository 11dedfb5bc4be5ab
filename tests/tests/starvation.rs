//! One user cannot starve the others: listings nobody reads hold no
//! threads, uploads opened and never started hold no place for long, and
//! a session whose transfers make no progress is closed as idle.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use ferry_e2e::raw::Raw;
use ferry_e2e::Server;
use ferry_proto::{ClientMsg, ErrorKind, Frame, Reply, Request, ServerMsg};
use futures::SinkExt;

/// A plaintext server with `limits` added to the test limits.
fn server(limits: &str) -> Server {
    server_with(limits, "")
}

/// [`server`] with more tables (`tables`, e.g. a `[store]`).
fn server_with(limits: &str, tables: &str) -> Server {
    Server::start_with(&format!(
        "insecure_plaintext = true\n[limits]\nhandshake_timeout_secs = 5\n{limits}\n\
         [auth]\niterations = 4096\n{tables}"
    ))
}

async fn session(s: &Server, user: &str) -> Raw {
    let mut raw = Raw::connect(s).await;
    raw.login(user, &format!("pw-{user}")).await.expect("login");
    raw
}

/// Runs the real `ferry` as `user` on a thread; panics unless it succeeds
/// within a minute (it hung for as long as the attack lasted).
async fn ferry_within_a_minute(s: &Arc<Server>, user: &str, args: &[&str]) {
    let (s2, user2) = (s.clone(), user.to_string());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let shown = args.join(" ");
    let run = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s2.ferry(&user2, &format!("pw-{user2}"), &args)
    });
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("`ferry {shown}` as {user} hung behind another user"))
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Eight sessions of one user each ask for 64 listings of a large
/// directory and never read a reply. Each listing used to hold a blocking
/// thread while it waited for room in the outbox, and the pool (sized
/// from max_transfers: 272 threads here) ran out: another user's `ls` and
/// `put` hung. Listings now wait for the client between batches in async,
/// and each user's file work has a capped share of threads. Checked to
/// hang without the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_nobody_reads_hold_no_threads() {
    let s = Arc::new(server(
        "max_transfers = 16\nconnection_budget_mib = 4\nuser_budget_mib = 64\n",
    ));
    s.add_user("mallory", "pw-mallory", None);
    s.add_user("bob", "pw-bob", None);
    tokio::task::block_in_place(|| {
        s.files("mallory").write_empty_files(
            "big",
            (0..10_000).map(|i| format!("a-rather-long-file-name-{i:06}")),
        )
    });
    let mut attackers = Vec::new();
    for _ in 0..8 {
        let mut raw = session(&s, "mallory").await;
        for id in 1..=64u32 {
            let list = ClientMsg::Request {
                id,
                req: Request::List { path: "big".into() },
            };
            raw.wr.feed(Frame::control(&list).unwrap()).await.unwrap();
        }
        raw.wr.flush().await.unwrap();
        attackers.push(raw);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let local = s.root.path().join("small");
    std::fs::write(&local, b"bob's file").unwrap();
    ferry_within_a_minute(&s, "bob", &["ls", "/"]).await;
    ferry_within_a_minute(&s, "bob", &["put", local.to_str().unwrap(), "small"]).await;
    assert_eq!(s.files("bob").read("small"), b"bob's file");
    drop(attackers);
}

/// Four users each open 64 uploads and never start them. They took all
/// 256 places of the server (64 per user): another user's large put
/// waited for the 600 s idle timeout. Each user now has a share of places
/// well below the server's. Checked to hang without the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_never_started_leave_places_for_others() {
    if ferry_e2e::on_s3() {
        eprintln!("in object storage: see uploads_never_started_leave_part_buffers_for_others");
        return;
    }
    never_started(Arc::new(server(""))).await;
}

/// The same in object storage, where an upload holds a part buffer from
/// `PutReady` on: four users opening uploads they never start would take
/// all of the server's part buffers (4 x `max_part_buffers_per_user` 4 =
/// `max_part_buffers` 16), and another user's put would wait for their
/// stall limit (120 s). An upload not started within `part_start_secs`
/// ends and frees its buffer, so she waits that long at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_never_started_leave_part_buffers_for_others() {
    let store = ferry_e2e::objects::TestStore::new(ferry_e2e::objects::S3::start());
    let dir = tempfile::tempdir().unwrap();
    let tables = format!("{}part_start_secs = 5\n", store.config(dir.path()));
    let s = server_with("", &tables);
    never_started(Arc::new(s)).await;
}

async fn never_started(s: Arc<Server>) {
    let mut attackers = Vec::new();
    for u in 0..4 {
        let user = format!("m{u}");
        s.add_user(&user, &format!("pw-{user}"), None);
        let mut raw = session(&s, &user).await;
        for id in 1..=64u32 {
            let open = ClientMsg::Request {
                id,
                req: Request::PutOpen {
                    transfer: id,
                    path: format!("f{id}"),
                    size: 1 << 30,
                    mtime: 0,
                    mode: 0o644,
                    overwrite: false,
                    resume: false,
                    eager: false,
                },
            };
            raw.wr.feed(Frame::control(&open).unwrap()).await.unwrap();
        }
        raw.wr.flush().await.unwrap();
        attackers.push(raw);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.add_user("erin", "pw-erin", None);
    let local = s.root.path().join("large");
    ferry_e2e::write_random(&local, 48 << 20, 5);
    ferry_within_a_minute(&s, "erin", &["put", local.to_str().unwrap(), "large"]).await;
    let back = s.root.path().join("large-back");
    ferry_within_a_minute(&s, "erin", &["get", "large", back.to_str().unwrap()]).await;
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(&local).unwrap()
    );
    drop(attackers);
}

/// An upload that makes no progress (never started, or started and then
/// silent) ends after `transfer_stall_secs` with a typed error, and its
/// partial stays for a resume. A session whose work makes no progress is
/// idle, even with requests in flight: a listing nobody reads no longer
/// keeps a connection open for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_transfers_end_and_stalled_sessions_are_idle() {
    let s = server("transfer_stall_secs = 2\nidle_timeout_secs = 4\nconnection_budget_mib = 4\n");
    s.add_user("alice", "pw-alice", None);
    let mut raw = session(&s, "alice").await;
    let open = |id: u32| ClientMsg::Request {
        id,
        req: Request::PutOpen {
            transfer: id,
            path: format!("f{id}"),
            size: 1 << 20,
            mtime: 0,
            mode: 0o644,
            overwrite: false,
            resume: false,
            eager: false,
        },
    };
    raw.send(&open(1)).await;
    raw.send(&open(2)).await;
    let mut ready = 0;
    while ready < 2 {
        match raw.recv().await {
            Some(ServerMsg::Response {
                reply: Ok(Reply::PutReady { .. }),
                ..
            }) => ready += 1,
            other => panic!("{other:?}"),
        }
    }
    // 2 starts and sends a little, then nothing.
    raw.send(&ClientMsg::PutStart {
        transfer: 2,
        offset: 0,
    })
    .await;
    let data = Frame::Data {
        transfer: 2,
        data: bytes::Bytes::from(vec![1u8; 1000]),
    };
    raw.wr.send(data).await.unwrap();
    let mut stalled = Vec::new();
    while stalled.len() < 2 {
        match raw.recv().await {
            Some(ServerMsg::Response { id, reply: Err(e) }) if e.kind == ErrorKind::TimedOut => {
                stalled.push(id)
            }
            other => panic!("{other:?}"),
        }
    }
    stalled.sort();
    assert_eq!(stalled, vec![1, 2]);
    if s.store.is_none() {
        // (In object storage, nothing is kept of less than a part.)
        let part = std::fs::read_dir(s.home("alice"))
            .unwrap()
            .filter_map(|e| e.ok())
            .count();
        assert!(part >= 1, "the partials are kept");
    }

    // A listing nobody reads: the session is closed as idle.
    tokio::task::block_in_place(|| {
        s.files("alice").write_empty_files(
            "big",
            (0..20_000).map(|i| format!("a-rather-long-file-name-{i:06}")),
        )
    });
    let mut raw = session(&s, "alice").await;
    for id in 1..=8u32 {
        let list = ClientMsg::Request {
            id,
            req: Request::List { path: "big".into() },
        };
        raw.send(&list).await;
    }
    tokio::time::sleep(Duration::from_secs(12)).await;
    // Drain what was sent: the stream ends (closed), it does not hang.
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        use futures::StreamExt;
        while let Some(Ok(_)) = raw.rd.next().await {}
    })
    .await;
    assert!(closed.is_ok(), "the stalled session was not closed");
}

/// A session closed as idle is told so first, with a typed reason (it
/// was cut without a word, and the TUI could only say "the server closed
/// the connection").
#[tokio::test]
async fn an_idle_session_is_told_why_before_it_is_closed() {
    let s = server("idle_timeout_secs = 2\n");
    s.add_user("alice", "pw-alice", None);
    let mut raw = session(&s, "alice").await;
    let said = tokio::time::timeout(Duration::from_secs(30), raw.recv())
        .await
        .expect("closed within 30 s");
    match said {
        Some(ServerMsg::Refused { error }) => {
            assert_eq!(error.kind, ErrorKind::TimedOut, "{error}");
            assert!(error.detail.contains("idle for 2 s"), "{error}");
        }
        other => panic!("no reason before the close: {other:?}"),
    }
    assert!(raw.recv().await.is_none(), "then it closes");
}
