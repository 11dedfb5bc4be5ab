//! Part buffers in object storage, against a hostile user: one user
//! opening many large uploads at once holds no more part buffers than
//! `[store] max_part_buffers_per_user` (her extra uploads wait for a place
//! before `PutReady`, so no data comes before there is room), and another
//! user's upload proceeds meanwhile.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use ferry_e2e::objects::{TestStore, S3};
use ferry_e2e::raw::Raw;
use ferry_e2e::Server;
use ferry_proto::msg::{ClientMsg, Request, ServerMsg};
use ferry_proto::{Frame, Reply};

const PW: &str = "pw-u";
/// Bytes per upload: more than one part (5 MiB), so not a small file.
const SIZE: usize = 6 << 20;
/// Time enough for an upload that could get its place to get it.
const QUIET: Duration = Duration::from_secs(3);
const DEADLINE: Duration = Duration::from_secs(60);

fn content(seed: u8) -> Vec<u8> {
    (0..SIZE)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Logs in as `user` and opens an upload of `/NAME`; reports on `ready`
/// when its `PutReady` comes, then waits for `go` to send the bytes, and
/// returns the final reply.
async fn upload(
    s: &Server,
    user: &str,
    name: String,
    seed: u8,
    ready: mpsc::UnboundedSender<String>,
    go: oneshot::Receiver<()>,
) -> Result<Reply, String> {
    let mut raw = Raw::connect(s).await;
    raw.login(user, PW).await.unwrap();
    raw.send(&ClientMsg::Request {
        id: 1,
        req: Request::PutOpen {
            transfer: 1,
            path: format!("/{name}"),
            size: SIZE as u64,
            mtime: 0,
            mode: 0o644,
            overwrite: false,
            resume: true,
            eager: false,
        },
    })
    .await;
    // No deadline: a waiting upload waits as long as it must.
    match raw.rd.next().await {
        Some(Ok(f)) => match f.decode_control().unwrap() {
            ServerMsg::Response {
                reply: Ok(Reply::PutReady { partial: 0, .. }),
                ..
            } => {}
            other => return Err(format!("{name}: {other:?}")),
        },
        other => return Err(format!("{name}: {other:?}")),
    }
    let _ = ready.send(name.clone());
    go.await.map_err(|_| format!("{name}: never told to go"))?;
    raw.send(&ClientMsg::PutStart {
        transfer: 1,
        offset: 0,
    })
    .await;
    let bytes = content(seed);
    for chunk in bytes.chunks(256 << 10) {
        let data = Frame::Data {
            transfer: 1,
            data: chunk.to_vec().into(),
        };
        raw.wr.send(data).await.unwrap();
    }
    raw.send(&ClientMsg::TransferEnd {
        transfer: 1,
        sha256: Sha256::digest(&bytes).into(),
    })
    .await;
    match raw.recv().await {
        Some(ServerMsg::Response { reply, .. }) => reply.map_err(|e| format!("{name}: {e}")),
        other => Err(format!("{name}: {other:?}")),
    }
}

/// The names reported ready within `wait`.
async fn readies(rx: &mut mpsc::UnboundedReceiver<String>, wait: Duration) -> Vec<String> {
    let mut got = Vec::new();
    let end = tokio::time::Instant::now() + wait;
    while let Ok(Some(name)) = tokio::time::timeout_at(end, rx.recv()).await {
        got.push(name);
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn one_user_cannot_hold_more_part_buffers_than_her_share() {
    let store = TestStore::new(S3::start());
    let dir = tempfile::tempdir().unwrap();
    let table = format!(
        "{}part_size_mib = 5\nmax_part_buffers = 4\nmax_part_buffers_per_user = 2\n",
        store.config(dir.path())
    );
    let s = std::sync::Arc::new(Server::start_with(&table));
    s.add_user("u", PW, None);
    s.add_user("v", PW, None);

    // u opens five large uploads at once, each on its own connection.
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let mut go = std::collections::HashMap::new();
    let mut tasks = std::collections::HashMap::new();
    for i in 0..5u8 {
        let name = format!("u{i}.bin");
        let (tx, rx) = oneshot::channel();
        go.insert(name.clone(), tx);
        let (s, ready) = (s.clone(), ready_tx.clone());
        let n = name.clone();
        tasks.insert(
            name,
            tokio::spawn(async move { upload(&s, "u", n, i, ready, rx).await }),
        );
    }
    let mut first = Vec::new();
    while first.len() < 2 {
        let name = tokio::time::timeout(DEADLINE, ready_rx.recv())
            .await
            .expect("two of u's uploads get a part buffer");
        first.push(name.unwrap());
    }
    first.extend(readies(&mut ready_rx, QUIET).await);
    first.sort();
    assert_eq!(
        first.len(),
        2,
        "u's uploads given a part buffer at once: {first:?}"
    );

    // v's upload proceeds while u's three wait.
    let (v_ready_tx, mut v_ready_rx) = mpsc::unbounded_channel();
    let (v_go, v_go_rx) = oneshot::channel();
    let v = {
        let s = s.clone();
        tokio::spawn(async move { upload(&s, "v", "v.bin".into(), 9, v_ready_tx, v_go_rx).await })
    };
    let got = tokio::time::timeout(DEADLINE, v_ready_rx.recv())
        .await
        .expect("v's upload gets a part buffer while u's wait");
    assert_eq!(got.as_deref(), Some("v.bin"));
    v_go.send(()).unwrap();
    let reply = tokio::time::timeout(DEADLINE, v).await.unwrap().unwrap();
    assert!(matches!(reply, Ok(Reply::PutDone { .. })), "{reply:?}");
    assert!(
        readies(&mut ready_rx, Duration::ZERO).await.is_empty(),
        "u's waiting uploads still wait"
    );

    // One of u's uploads ends: exactly one waiting upload takes its place.
    let done = first[0].clone();
    go.remove(&done).unwrap().send(()).unwrap();
    let reply = tokio::time::timeout(DEADLINE, tasks.remove(&done).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(reply, Ok(Reply::PutDone { .. })), "{reply:?}");
    let next = tokio::time::timeout(DEADLINE, ready_rx.recv())
        .await
        .expect("a waiting upload gets the place given back")
        .unwrap();
    assert!(!first.contains(&next), "{next} was ready already");
    let more = readies(&mut ready_rx, QUIET).await;
    assert!(
        more.is_empty(),
        "more of u's uploads given a place: {more:?}"
    );

    // The rest finish, in turn.
    for (_, tx) in go.drain() {
        tx.send(()).unwrap();
    }
    for (name, task) in tasks.drain() {
        let reply = tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap();
        assert!(
            matches!(reply, Ok(Reply::PutDone { .. })),
            "{name}: {reply:?}"
        );
    }
    let local = tempfile::tempdir().unwrap();
    for i in 0..5u8 {
        let got = local.path().join(format!("u{i}.bin"));
        let remote = format!("/u{i}.bin");
        let o = s.ferry("u", PW, &["get", &remote, got.to_str().unwrap()]);
        assert!(o.status.success(), "{}", ferry_e2e::stderr(&o));
        assert_eq!(std::fs::read(&got).unwrap(), content(i));
    }
    assert!(store.s3.pending(&store.prefix).is_empty());
}
