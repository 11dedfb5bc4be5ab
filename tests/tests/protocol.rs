//! Bad input at the protocol level, each while the server keeps serving
//! others: garbage hellos, wrong versions, oversized and undecodable frames,
//! replayed logins, silent connections, access keys, bans and limits.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use ferry_e2e::raw::{transport, Raw};
use ferry_e2e::Server;
use ferry_proto::{ClientMsg, ErrorKind, Hello, Request, ServerMsg};
use ferry_tui::client::{connect, ClientError, ConnectOptions, Security};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PW: &str = "pw-alice";

fn server_with(extra: &str) -> Server {
    let s = Server::start_with(extra);
    s.add_user("alice", PW, None);
    s
}

/// The server still logs a well-behaved client in and answers it.
async fn still_serving(s: &Server) {
    let c = s.client("alice", PW).await.expect("login still works");
    c.list("/").await.expect("list still works");
}

/// A raw connection logged in as `user`.
async fn session(s: &Server, user: &str, pw: &str) -> Raw {
    let mut raw = Raw::connect(s).await;
    raw.login(user, pw).await.expect("login");
    raw
}

/// Waits for `PutReady` to request 1.
async fn ready(raw: &mut Raw) {
    match tokio::time::timeout(Duration::from_secs(10), raw.recv()).await {
        Ok(Some(ServerMsg::Response {
            id: 1,
            reply: Ok(ferry_proto::Reply::PutReady { .. }),
        })) => {}
        other => panic!("{other:?}"),
    }
}

/// `PutOpen` of a new file, as request `id` and transfer `id`.
fn put_open(id: u32, path: &str, size: u64, eager: bool) -> ClientMsg {
    ClientMsg::Request {
        id,
        req: Request::PutOpen {
            transfer: id,
            path: path.into(),
            size,
            mtime: 0,
            mode: 0o644,
            overwrite: false,
            resume: false,
            eager,
        },
    }
}

async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .expect("server closed in time")
        .ok();
    buf
}

#[tokio::test]
async fn random_bytes_instead_of_hello() {
    let s = server_with("");
    // Garbage where a TLS ClientHello belongs: the handshake fails, the
    // connection closes, and no Ferry byte was ever sent in clear.
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    t.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let back = read_to_end(&mut t).await;
    assert!(!back.windows(5).any(|w| w == b"FERRY"), "{back:?}");
    still_serving(&s).await;

    // Garbage inside TLS where the hello belongs: the server says what it
    // speaks, then closes.
    let (mut t, _) = transport(&s).await;
    t.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut back = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), t.read_to_end(&mut back))
        .await
        .expect("closed in time");
    assert_eq!(back, Hello::ours().encode());
    still_serving(&s).await;
}

#[tokio::test]
async fn wrong_protocol_version_is_reported_in_words() {
    let s = server_with("");
    let (mut t, _) = transport(&s).await;
    t.write_all(&Hello { version: 99 }.encode()).await.unwrap();
    let mut back = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), t.read_to_end(&mut back))
        .await
        .expect("closed in time");
    assert_eq!(back.len(), 8, "server closes after its hello");
    still_serving(&s).await;

    // And a client meeting a newer server says so.
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = fake.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut c, _) = fake.accept().await.unwrap();
        let mut hello = [0u8; 8];
        let _ = c.read_exact(&mut hello).await;
        let newer = ferry_proto::hello::PROTOCOL_VERSION + 1;
        let _ = c.write_all(&Hello { version: newer }.encode()).await;
    });
    let mut opts = ConnectOptions::new(addr.to_string(), "a", "b");
    opts.security = Security::InsecurePlaintext;
    let err = connect(&opts).await.unwrap_err();
    let ours = ferry_proto::hello::PROTOCOL_VERSION;
    assert_eq!(
        err.to_string(),
        format!(
            "server speaks Ferry protocol {}, this client speaks {ours}",
            ours + 1
        )
    );
}

#[tokio::test]
async fn four_gib_length_prefix_before_and_after_login() {
    let s = server_with("");
    let mut raw = Raw::connect(&s).await;
    raw.wr
        .get_mut()
        .write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 0])
        .await
        .unwrap();
    // The server closes (it may or may not get a Refused out first).
    while raw.recv().await.is_some() {}
    still_serving(&s).await;

    let mut raw = session(&s, "alice", PW).await;
    raw.wr
        .get_mut()
        .write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 0])
        .await
        .unwrap();
    let mut refused = None;
    while let Some(msg) = raw.recv().await {
        if let ServerMsg::Refused { error } = msg {
            refused = Some(error);
        }
    }
    let error = refused.expect("told why");
    assert_eq!(error.kind, ErrorKind::Protocol);
    assert!(error.detail.contains("too large"), "{error}");
    still_serving(&s).await;
}

#[tokio::test]
async fn undecodable_frame_after_login() {
    let s = server_with("");
    let mut raw = session(&s, "alice", PW).await;
    // A well-framed control frame whose body is no valid message.
    raw.wr
        .get_mut()
        .write_all(&[0, 0, 0, 4, 0, 0xEE, 0xEE, 0xEE])
        .await
        .unwrap();
    match raw.recv().await {
        Some(ServerMsg::Refused { error }) => assert_eq!(error.kind, ErrorKind::Protocol),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(raw.recv().await.is_none(), "then the server closes");
    still_serving(&s).await;
}

#[tokio::test]
async fn server_validates_paths_itself() {
    let s = server_with("");
    let mut raw = session(&s, "alice", PW).await;
    let cases = [
        ("../etc", ErrorKind::OutsideHome),
        ("/../../etc/passwd", ErrorKind::OutsideHome),
        ("a/../../x", ErrorKind::OutsideHome),
        ("a\0b", ErrorKind::InvalidPath),
    ];
    for (i, (path, kind)) in cases.iter().enumerate() {
        raw.send(&ClientMsg::Request {
            id: i as u32,
            req: Request::Stat {
                path: path.to_string(),
            },
        })
        .await;
        match raw.recv().await {
            Some(ServerMsg::Response { id, reply: Err(e) }) => {
                assert_eq!(id, i as u32);
                assert_eq!(e.kind, *kind, "{path}");
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    let long = "x".repeat(5000);
    raw.send(&ClientMsg::Request {
        id: 99,
        req: Request::Mkdir {
            path: long,
            parents: true,
        },
    })
    .await;
    match raw.recv().await {
        Some(ServerMsg::Response { reply: Err(e), .. }) => {
            assert_eq!(e.kind, ErrorKind::InvalidPath)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn replayed_scram_exchange_fails() {
    let s = server_with("");
    let mut first = Raw::connect(&s).await;
    let (client_first, client_final) = first.login("alice", PW).await.expect("login");
    // Replay the same client messages on a new connection: the server's
    // fresh nonce (and, over TLS, the new channel's binding) makes the
    // recorded proof worthless.
    let mut replay = Raw::connect(&s).await;
    let Some(ServerMsg::Welcome { .. }) = replay.recv().await else {
        panic!()
    };
    let (mechanism, _) = replay.scram_binding();
    replay
        .send(&ClientMsg::AuthStart {
            mechanism: mechanism.into(),
            client_first,
        })
        .await;
    let Some(ServerMsg::AuthChallenge { .. }) = replay.recv().await else {
        panic!()
    };
    replay.send(&ClientMsg::AuthFinish { client_final }).await;
    match replay.recv().await {
        Some(ServerMsg::Refused { error }) => assert_eq!(error.kind, ErrorKind::AuthFailed),
        other => panic!("replay accepted? {other:?}"),
    }
}

#[tokio::test]
async fn unknown_user_gets_a_stable_mock_salt() {
    let s = server_with("");
    let mut salts = Vec::new();
    for user in ["mallory", "mallory", "alice"] {
        let mut raw = Raw::connect(&s).await;
        let Some(ServerMsg::Welcome { .. }) = raw.recv().await else {
            panic!()
        };
        let (mechanism, binding) = raw.scram_binding();
        let (_, client_first) =
            ferry_proto::scram::ClientFirst::new(user, "x", "abcdefgh", binding);
        raw.send(&ClientMsg::AuthStart {
            mechanism: mechanism.into(),
            client_first,
        })
        .await;
        let Some(ServerMsg::AuthChallenge { server_first }) = raw.recv().await else {
            panic!()
        };
        let attrs: Vec<&str> = server_first.split(',').collect();
        salts.push((attrs[1].to_string(), attrs[2].to_string()));
    }
    assert_eq!(
        salts[0], salts[1],
        "the same unknown name sees the same salt each time"
    );
    assert_eq!(
        salts[0].1, salts[2].1,
        "same iteration count as a real user"
    );
    assert_ne!(salts[0].0, salts[2].0);
}

#[tokio::test]
async fn silent_connection_is_dropped_at_handshake_timeout() {
    let s = server_with(
        "[limits]\nhandshake_timeout_secs = 1\n[auth]\niterations = 4096\nfailure_delay_ms = 10\nmax_failure_delay_ms = 10\nban_after_failures = 100\nban_secs = 1\n",
    );
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    let start = Instant::now();
    let back = read_to_end(&mut t).await;
    assert!(back.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(900));
    // Also after the hello, halfway through a login.
    let mut raw = Raw::connect(&s).await;
    let Some(ServerMsg::Welcome { .. }) = raw.recv().await else {
        panic!()
    };
    assert!(raw.recv().await.is_none(), "dropped");
    still_serving(&s).await;
}

#[tokio::test]
async fn access_key_is_required_before_login() {
    let s = server_with("access_key = \"open sesame\"");
    let mut opts = s.options("alice", PW);
    let err = connect(&opts).await.unwrap_err();
    assert!(matches!(err, ClientError::AccessKeyRequired), "{err}");
    opts.access_key = Some("wrong".into());
    let err = connect(&opts).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::AccessDenied), "{err}");
    opts.access_key = Some("open sesame".into());
    connect(&opts)
        .await
        .expect("right key")
        .list("/")
        .await
        .unwrap();
    // The CLI takes it from the environment or --access-key.
    let o = s.ferry("alice", PW, &["--access-key", "open sesame", "ls"]);
    assert!(o.status.success());
}

#[tokio::test]
async fn repeated_failures_get_banned() {
    let s = server_with(
        "[limits]\nhandshake_timeout_secs = 5\n[auth]\niterations = 4096\nfailure_delay_ms = 20\nmax_failure_delay_ms = 40\nban_after_failures = 3\nban_secs = 600\n",
    );
    for _ in 0..3 {
        let err = s.client("alice", "wrong").await.unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::AuthFailed));
    }
    // Now even the right password is refused from this address.
    let err = s.client("alice", PW).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Banned), "{err}");
}

#[tokio::test]
async fn connection_and_session_limits() {
    let s = server_with(
        "[limits]\nmax_connections = 3\nmax_sessions_per_user = 2\n[auth]\niterations = 4096\n",
    );
    s.add_user("bob", "pw-bob", None);
    let a = s.client("alice", PW).await.unwrap();
    let b = s.client("alice", PW).await.unwrap();
    let err = s.client("alice", PW).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::TooBusy), "{err}");
    // Connections not logged in hold no session's place.
    let _held = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = s.client("bob", "pw-bob").await.unwrap();
    // The server's sessions are all taken: a fourth is refused as busy.
    let err = s.client("bob", "pw-bob").await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::TooBusy), "{err}");
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.client("bob", "pw-bob").await.expect("a place came free");
    drop((b, c));
}

#[tokio::test]
async fn pipelined_requests_from_many_tasks() {
    let s = server_with("");
    for i in 0..250 {
        s.files("alice").write(format!("f{i:03}"), vec![0u8; i]);
    }
    let c = s.client("alice", PW).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                // 250 entries arrive in batches of 100.
                assert_eq!(c.list("/").await.unwrap().len(), 250);
            } else {
                let name = format!("f{:03}", i);
                assert_eq!(c.stat(&name).await.unwrap().size, i as u64);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut batches = 0;
    c.list_with("/", |_| batches += 1).await.unwrap();
    assert_eq!(batches, 3);
}

#[test]
fn graceful_shutdown_on_sigterm() {
    let s = server_with("");
    assert!(s.stop(), "ferryd exits 0 on SIGTERM");
}

/// Requests beyond `max_requests_in_flight` wait for a turn (as many again)
/// or are refused as `TooBusy`; the server keeps reading the connection
/// meanwhile, so the running uploads get their data. (It once stopped
/// reading at the limit: a client with more uploads open than the limit
/// deadlocked.)
#[tokio::test]
async fn requests_beyond_the_limit_queue_or_are_refused_and_never_stall() {
    use ferry_proto::{Frame, Reply};
    use futures::SinkExt;
    use sha2::{Digest, Sha256};

    let s = server_with("[limits]\nmax_requests_in_flight = 2\n");
    let mut raw = session(&s, "alice", PW).await;
    for i in 1..=6u32 {
        raw.send(&put_open(i, &format!("f{i}"), 5, false)).await;
    }
    // Two run (ready), two wait, two are refused.
    let (mut ready, mut busy) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        match raw.recv().await {
            Some(ServerMsg::Response {
                id,
                reply: Ok(Reply::PutReady { partial: 0, .. }),
            }) => ready.push(id),
            Some(ServerMsg::Response { id, reply: Err(e) }) if e.kind == ErrorKind::TooBusy => {
                busy.push(id)
            }
            other => panic!("{other:?}"),
        }
    }
    ready.sort();
    busy.sort();
    assert_eq!((ready, busy), (vec![1, 2], vec![5, 6]));
    let sha: [u8; 32] = Sha256::digest(b"hello").into();
    let send_file = |t: u32| {
        [
            Frame::control(&ClientMsg::PutStart {
                transfer: t,
                offset: 0,
            })
            .unwrap(),
            Frame::Data {
                transfer: t,
                data: bytes::Bytes::from_static(b"hello"),
            },
            Frame::control(&ClientMsg::TransferEnd {
                transfer: t,
                sha256: sha,
            })
            .unwrap(),
        ]
    };
    for t in [1, 2] {
        for f in send_file(t) {
            raw.wr.send(f).await.unwrap();
        }
    }
    // 1 and 2 finish; 3 and 4 get their turn (in whatever order the
    // replies interleave), then finish too.
    let mut done = Vec::new();
    while done.len() < 4 {
        match raw.recv().await {
            Some(ServerMsg::Response {
                id,
                reply: Ok(Reply::PutDone { size: 5, .. }),
            }) => done.push(id),
            Some(ServerMsg::Response {
                id,
                reply: Ok(Reply::PutReady { .. }),
            }) if id == 3 || id == 4 => {
                for f in send_file(id) {
                    raw.wr.send(f).await.unwrap();
                }
            }
            other => panic!("{other:?}"),
        }
    }
    done.sort();
    assert_eq!(done, vec![1, 2, 3, 4]);
    for i in 1..=4 {
        assert_eq!(s.files("alice").read(format!("f{i}")), b"hello");
    }
    assert!(!s.files("alice").exists("f5"));
    still_serving(&s).await;
}

/// Eager uploads (small files: data and end follow the open at once) are
/// counted apart from other requests, wait for their end, and may send one
/// chunk at most; one left without an end holds its place until cancelled.
/// Transfers running at once are capped per user over all sessions, and on
/// the whole server: one more waits for its turn (no thread held), while
/// the session's other requests are still answered. A running transfer
/// holds a thread even while its client sends nothing, so without the caps
/// one user could hold every thread of the server's pool.
#[tokio::test]
async fn running_transfers_are_capped_per_user_and_per_server() {
    use ferry_proto::Reply;

    let s = server_with("[limits]\nmax_transfers = 2\nmax_transfers_per_user = 1\n");
    s.add_user("bob", "pw-bob", None);
    s.add_user("carol", "pw-carol", None);
    let open = |path: &str| put_open(1, path, 64 << 20, false);
    /// Nothing comes for a second, yet a stat is answered.
    async fn waiting(raw: &mut Raw) {
        let quiet = tokio::time::timeout(Duration::from_secs(1), raw.recv()).await;
        assert!(quiet.is_err(), "answered while it should wait: {quiet:?}");
        raw.send(&ClientMsg::Request {
            id: 2,
            req: Request::Stat { path: "/".into() },
        })
        .await;
        match tokio::time::timeout(Duration::from_secs(10), raw.recv()).await {
            Ok(Some(ServerMsg::Response {
                id: 2,
                reply: Ok(Reply::Stat(_)),
            })) => {}
            other => panic!("{other:?}"),
        }
    }

    // Alice runs one upload; her second session's upload waits for it.
    let mut a1 = session(&s, "alice", PW).await;
    a1.send(&open("a1")).await;
    ready(&mut a1).await;
    let mut a2 = session(&s, "alice", PW).await;
    a2.send(&open("a2")).await;
    waiting(&mut a2).await;
    // Bob takes the server's second place; Carol waits for one.
    let mut b = session(&s, "bob", "pw-bob").await;
    b.send(&open("b")).await;
    ready(&mut b).await;
    let mut c = session(&s, "carol", "pw-carol").await;
    c.send(&open("c")).await;
    waiting(&mut c).await;
    // Alice's first upload ends. Its server place goes to Carol, who asked
    // for one first; Alice's second has her user's place now, and waits for
    // the server's.
    a1.send(&ClientMsg::Cancel { transfer: 1 }).await;
    ready(&mut c).await;
    waiting(&mut a2).await;
    // Bob's ends (his connection closes): Alice's second runs.
    drop(b);
    ready(&mut a2).await;
    still_serving(&s).await;
}

/// Data for an upload before its `PutStart` closes the connection with a
/// protocol error. Sent to an upload still waiting for its turn, it used to
/// fill that upload's channel and leave the reader waiting for a turn that
/// only frames behind it could free: the connection hung for good, with
/// its threads and places.
#[tokio::test]
async fn data_before_put_start_is_a_protocol_error_not_a_hang() {
    use ferry_proto::Frame;
    use futures::SinkExt;

    let s = server_with("[limits]\nmax_requests_in_flight = 1\n");
    let mut raw = session(&s, "alice", PW).await;
    for t in [1u32, 2] {
        raw.send(&put_open(t, &format!("f{t}"), 64 << 20, false))
            .await;
    }
    // 1 runs (and waits for its PutStart); 2 waits for the turn.
    ready(&mut raw).await;
    // More frames for 2 than its channel holds.
    for _ in 0..12 {
        let frame = Frame::Data {
            transfer: 2,
            data: bytes::Bytes::from(vec![7u8; 64 * 1024]),
        };
        if raw.wr.send(frame).await.is_err() {
            break;
        }
    }
    match tokio::time::timeout(Duration::from_secs(10), raw.recv()).await {
        Ok(Some(ServerMsg::Refused { error })) => {
            assert_eq!(error.kind, ErrorKind::Protocol);
            assert!(error.detail.contains("before its PutStart"), "{error}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    still_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn eager_uploads_are_counted_apart_and_misbehaving_ones_never_stall() {
    use ferry_proto::{Frame, RemoteError, Reply};
    use futures::SinkExt;
    use sha2::{Digest, Sha256};

    let s = server_with("[limits]\nmax_requests_in_flight = 1\nmax_small_uploads_in_flight = 4\n");
    let mut raw = session(&s, "alice", PW).await;
    let open = |i: u32, size: u64| put_open(i, &format!("e{i}"), size, true);
    let data = |t: u32, bytes: &'static [u8]| Frame::Data {
        transfer: t,
        data: bytes::Bytes::from_static(bytes),
    };
    let end = |t: u32, content: &[u8]| {
        Frame::control(&ClientMsg::TransferEnd {
            transfer: t,
            sha256: Sha256::digest(content).into(),
        })
        .unwrap()
    };
    async fn reply(raw: &mut Raw) -> (u32, Result<Reply, RemoteError>) {
        match tokio::time::timeout(Duration::from_secs(10), raw.recv()).await {
            Ok(Some(ServerMsg::Response { id, reply })) => (id, reply),
            other => panic!("{other:?}"),
        }
    }
    async fn done(raw: &mut Raw) -> (u32, u64) {
        match reply(raw).await {
            (id, Ok(Reply::PutDone { size, .. })) => (id, size),
            other => panic!("{other:?}"),
        }
    }
    fn refused(r: (u32, Result<Reply, RemoteError>), kind: ErrorKind) -> u32 {
        match r {
            (id, Err(e)) if e.kind == kind => id,
            other => panic!("{other:?}"),
        }
    }

    // Two opened and left without an end: they hold two of the four places.
    raw.send(&open(1, 5)).await;
    raw.send(&open(2, 5)).await;
    // Ordinary eager uploads still run, more at once than the request
    // limit (1) would allow.
    for t in [3, 4] {
        raw.send(&open(t, 5)).await;
    }
    for t in [3, 4] {
        raw.wr.send(data(t, b"hello")).await.unwrap();
        raw.wr.send(end(t, b"hello")).await.unwrap();
    }
    let mut ids = vec![done(&mut raw).await, done(&mut raw).await];
    ids.sort();
    assert_eq!(ids, vec![(3, 5), (4, 5)]);
    // Data in more than one frame is refused, not buffered (waiting for
    // the end would have stalled the connection's reader), and so is a
    // declared size over one chunk.
    raw.send(&open(5, 12)).await;
    for _ in 0..12 {
        raw.wr.send(data(5, b"x")).await.unwrap();
    }
    raw.wr.send(end(5, b"xxxxxxxxxxxx")).await.unwrap();
    assert_eq!(refused(reply(&mut raw).await, ErrorKind::BadRequest), 5);
    raw.send(&open(6, ferry_proto::CHUNK_SIZE as u64 + 1)).await;
    assert_eq!(refused(reply(&mut raw).await, ErrorKind::BadRequest), 6);
    // Four places: 1, 2 and two more; the fifth is refused while 1 and 2
    // hang on. Other requests are not affected.
    raw.send(&open(7, 0)).await;
    raw.send(&open(8, 0)).await;
    raw.send(&open(9, 0)).await;
    assert_eq!(refused(reply(&mut raw).await, ErrorKind::TooBusy), 9);
    raw.send(&ClientMsg::Request {
        id: 100,
        req: Request::Stat { path: "e3".into() },
    })
    .await;
    assert!(matches!(reply(&mut raw).await, (100, Ok(Reply::Stat(_)))));
    // Cancelled, 1 and 2 give their places back.
    raw.send(&ClientMsg::Cancel { transfer: 1 }).await;
    raw.send(&ClientMsg::Cancel { transfer: 2 }).await;
    for t in [7, 8] {
        raw.wr.send(end(t, b"")).await.unwrap();
    }
    let mut ids = vec![done(&mut raw).await, done(&mut raw).await];
    ids.sort();
    assert_eq!(ids, vec![(7, 0), (8, 0)]);
    for t in [10, 11, 12, 13] {
        raw.send(&open(t, 5)).await;
        raw.wr.send(data(t, b"hello")).await.unwrap();
        raw.wr.send(end(t, b"hello")).await.unwrap();
    }
    let mut ids: Vec<u32> = Vec::new();
    for _ in 0..4 {
        ids.push(done(&mut raw).await.0);
    }
    ids.sort();
    assert_eq!(ids, vec![10, 11, 12, 13]);
    tokio::task::block_in_place(|| {
        let files = s.files("alice");
        assert_eq!(files.read("e13"), b"hello");
        assert!(files.read("e7").is_empty());
        for gone in ["e1", "e5", "e6", "e9"] {
            assert!(!files.exists(gone), "{gone}");
        }
    });
    still_serving(&s).await;
}
