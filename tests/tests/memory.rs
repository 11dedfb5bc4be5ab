//! What one user can make ferryd hold: data sent for uploads that never
//! end and replies nobody reads stay within the byte budget (measured as
//! the real ferryd's resident memory), however much the client sends.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_e2e::raw::Raw;
use ferry_e2e::Server;
use ferry_proto::{ClientMsg, ErrorKind, Frame, Request, ServerMsg, CHUNK_SIZE};
use futures::SinkExt;
use sha2::{Digest, Sha256};

const PW: &str = "pw-alice";

/// A plaintext server (no TLS work in the way of the byte counts) with
/// `limits` added to the test limits, and user alice.
fn server(limits: &str) -> Server {
    let s = Server::start_with(&format!(
        "insecure_plaintext = true\n[limits]\nhandshake_timeout_secs = 5\n{limits}\n\
         [auth]\niterations = 4096\n"
    ));
    s.add_user("alice", PW, Some("10M"));
    s
}

async fn session(s: &Server) -> Raw {
    let mut raw = Raw::connect(s).await;
    raw.login("alice", PW).await.expect("login");
    raw
}

fn put_open(id: u32, path: &str, size: u64) -> Frame {
    Frame::control(&ClientMsg::Request {
        id,
        req: Request::PutOpen {
            transfer: id,
            path: path.into(),
            size,
            mtime: 0,
            mode: 0o644,
            overwrite: false,
            resume: false,
            eager: true,
        },
    })
    .unwrap()
}

/// Runs `send` on each session in its own task, until all are done or
/// none has sent anything for two seconds (the server stopped reading);
/// the sessions stay open. Returns how many frames went out.
async fn send_until_stuck<F, Fut>(sessions: Vec<Raw>, send: F) -> u64
where
    F: Fn(usize, Raw, std::sync::Arc<std::sync::atomic::AtomicU64>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use std::sync::atomic::Ordering;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(k, raw)| tokio::spawn(send(k, raw, sent.clone())))
        .collect();
    let (mut last, mut since) = (0, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
        let now = sent.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    // Whatever the server still takes in settles.
    tokio::time::sleep(Duration::from_secs(1)).await;
    sent.load(Ordering::Relaxed)
}

/// Four sessions each open 256 small uploads and send their data, never
/// their ends: 256 MiB if ferryd kept it all. It stops reading at the
/// budget instead (TCP backpressure), and holds about the user's budget
/// (64 MiB) at most. Checked to fail without the budget (ferryd grew by
/// ~270 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_of_uploads_that_never_end_stays_within_the_budget() {
    let s = server("");
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(session(&s).await);
    }
    let (base, _) = s.memory_kib();
    let sent = send_until_stuck(sessions, |k, mut raw, sent| async move {
        for i in 1..=256u32 {
            let data = Bytes::from(vec![k as u8; CHUNK_SIZE]);
            let frames = [
                put_open(i, &format!("f{k}-{i}"), CHUNK_SIZE as u64),
                Frame::Data { transfer: i, data },
            ];
            for f in frames {
                if raw.wr.send(f).await.is_err() {
                    return;
                }
            }
            sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // Held open, ends never sent.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let (now, peak) = s.memory_kib();
    let grew = peak.saturating_sub(base) / 1024;
    eprintln!("sent {sent} chunks; ferryd {base} KiB before, {now} now, peak {peak}");
    assert!(
        grew < 96,
        "ferryd grew by {grew} MiB for data it cannot use yet"
    );
}

/// A client sends 100,000 empty uploads and never reads a reply. ferryd
/// stops reading it once the replies fill the connection's budget (4 MiB
/// here) instead of keeping every reply: it used to grow by ~0.7 KiB per
/// upload, without end. Checked to fail without the bounded outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_nobody_reads_stay_within_the_budget() {
    let s = server(
        "max_small_uploads_in_flight = 1000000\nconnection_budget_mib = 4\nuser_budget_mib = 8\n",
    );
    let raw = session(&s).await;
    let (base, _) = s.memory_kib();
    let empty: [u8; 32] = Sha256::digest(b"").into();
    let sent = send_until_stuck(vec![raw], move |_, mut raw, sent| async move {
        for i in 1..=100_000u32 {
            let frames = [
                put_open(i, &format!("e{i}"), 0),
                Frame::control(&ClientMsg::TransferEnd {
                    transfer: i,
                    sha256: empty,
                })
                .unwrap(),
            ];
            for f in frames {
                if raw.wr.feed(f).await.is_err() {
                    return;
                }
            }
            if i % 64 == 0 && raw.wr.flush().await.is_err() {
                return;
            }
            sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = raw.wr.flush().await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let (now, peak) = s.memory_kib();
    let grew = peak.saturating_sub(base) / 1024;
    eprintln!("sent {sent} uploads; ferryd {base} KiB before, {now} now, peak {peak}");
    assert!(grew < 32, "ferryd grew by {grew} MiB for unread replies");
}

/// 200 connections with no account finish the hello, then send all but
/// the last byte of one frame of the protocol maximum (1 MiB) and wait.
/// Before login ferryd takes frames of a few KiB only and closes a
/// connection whose length prefix is larger at once, so they cost it
/// next to nothing; it used to hold each partial frame until the login
/// deadline (~240 MiB here). Checked to fail without the login frame limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_cannot_make_ferryd_hold_big_frames_before_login() {
    use tokio::io::AsyncWriteExt;
    let s = Server::start_with(
        "insecure_plaintext = true\n[limits]\nlogin_timeout_secs = 30\n\
         max_unauthenticated = 400\nmax_unauthenticated_per_ip = 400\n",
    );
    let (base, _) = s.memory_kib();
    let len = ferry_proto::MAX_FRAME;
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as u32).to_be_bytes());
    frame.push(0); // control tag
    frame.resize(4 + len - 1, b'x');
    let frame = Bytes::from(frame);
    let mut held = Vec::new();
    for _ in 0..200 {
        let raw = Raw::connect(&s).await;
        let mut w = raw.wr.into_inner();
        let frame = frame.clone();
        held.push((
            raw.rd,
            tokio::spawn(async move {
                // Refused at the prefix: the write fails, which is fine.
                let _ = w.write_all(&frame).await;
                let _ = w.flush().await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(w);
            }),
        ));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (now, peak) = s.memory_kib();
    let grew = peak.saturating_sub(base) / 1024;
    eprintln!("ferryd {base} KiB before, {now} now, peak {peak}");
    assert!(
        grew < 48,
        "ferryd grew by {grew} MiB for strangers' partial frames"
    );
}

/// 16 sessions each send five 1 MiB data frames for transfers that do
/// not exist (dropped by ferryd), then go idle. An idle session's read
/// buffer goes back to a few KiB, so ferryd keeps next to nothing for
/// them; it used to keep each session's 4 MiB read buffer, filled, until
/// the idle timeout (56 MiB here, charged to nobody). Checked to fail
/// without the shrinking read buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_keep_no_big_read_buffer() {
    let s = server("max_sessions_per_user = 16\n");
    let mut sessions = Vec::new();
    for _ in 0..16 {
        sessions.push(session(&s).await);
    }
    let (base, _) = s.memory_kib();
    let junk = Bytes::from(vec![7u8; ferry_proto::frame::MAX_DATA]);
    for raw in sessions.iter_mut() {
        for i in 0..5u32 {
            let frame = Frame::Data {
                transfer: 1_000_000 + i,
                data: junk.clone(),
            };
            raw.wr.send(frame).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (now, peak) = s.memory_kib();
    let grew = now.saturating_sub(base) / 1024;
    eprintln!("ferryd {base} KiB before, {now} now, peak {peak}");
    assert!(grew < 24, "ferryd keeps {grew} MiB for idle sessions");
    drop(sessions);
}

/// Eight sessions of one user each open small uploads of one 64 KiB chunk
/// whose end never comes, each followed by a 1 MiB data frame for a
/// transfer that does not exist. A held chunk is copied out of the read
/// buffer, so it keeps no more than itself alive and ferryd holds about
/// the user's budget (48 MiB). Checked to fail while chunks of 64 KiB were
/// held as slices of the read buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_chunks_do_not_pin_read_buffers() {
    let s = server("max_sessions_per_user = 16\n");
    let mut sessions = Vec::new();
    for _ in 0..8 {
        sessions.push(session(&s).await);
    }
    let (base, _) = s.memory_kib();
    let sent = send_until_stuck(sessions, |k, mut raw, sent| async move {
        let junk = Bytes::from(vec![9u8; ferry_proto::frame::MAX_DATA]);
        for i in 1..=80u32 {
            let data = Bytes::from(vec![k as u8; 64 * 1024]);
            let frames = [
                put_open(i, &format!("p{k}-{i}"), 64 * 1024),
                Frame::Data { transfer: i, data },
                Frame::Data {
                    transfer: 1_000_000 + i,
                    data: junk.clone(),
                },
            ];
            for f in frames {
                if raw.wr.send(f).await.is_err() {
                    return;
                }
            }
            sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let (now, peak) = s.memory_kib();
    let grew = peak.saturating_sub(base) / 1024;
    eprintln!("sent {sent} chunks; ferryd {base} KiB before, {now} now, peak {peak}");
    assert!(
        grew < 80,
        "ferryd grew by {grew} MiB for one user's held chunks"
    );
}

/// Four sessions of one user each keep their 64 turns busy with uploads
/// that never start, then queue 64 `Stat`s with 1 MiB paths. A queued
/// request is charged its real size, so the budget stops reading at the
/// user's 48 MiB; each used to be charged 4 KiB (~256 MiB here). Checked
/// to fail without the request's real size charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_pay_for_their_paths() {
    let s = server("max_transfers_per_user = 256\n");
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(session(&s).await);
    }
    let (base, _) = s.memory_kib();
    let sent = send_until_stuck(sessions, |k, mut raw, sent| async move {
        for i in 1..=64u32 {
            let mut f = put_open(i, &format!("u{k}-{i}"), 1 << 20);
            if let Ok(ClientMsg::Request {
                id,
                req:
                    Request::PutOpen {
                        transfer,
                        path,
                        size,
                        ..
                    },
            }) = f.decode_control::<ClientMsg>()
            {
                f = Frame::control(&ClientMsg::Request {
                    id,
                    req: Request::PutOpen {
                        transfer,
                        path,
                        size,
                        mtime: 0,
                        mode: 0o644,
                        overwrite: false,
                        resume: false,
                        eager: false,
                    },
                })
                .unwrap();
            }
            if raw.wr.send(f).await.is_err() {
                return;
            }
        }
        let long = "a/".repeat((ferry_proto::MAX_FRAME - 256) / 2);
        for i in 1..=64u32 {
            let f = Frame::control(&ClientMsg::Request {
                id: 1000 + i,
                req: Request::Stat { path: long.clone() },
            })
            .unwrap();
            if raw.wr.send(f).await.is_err() {
                return;
            }
            sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let (now, peak) = s.memory_kib();
    let grew = peak.saturating_sub(base) / 1024;
    eprintln!("sent {sent} stats; ferryd {base} KiB before, {now} now, peak {peak}");
    // Unbounded, this was +142 MiB. With PostgreSQL ferryd grows about
    // 20 MiB more here than with SQLite (+89-99 against +68-72, not yet
    // explained), still far below the unbounded figure.
    let bound = if s.database.is_some() { 116 } else { 96 };
    assert!(
        grew < bound,
        "ferryd grew by {grew} MiB for queued requests"
    );
}

/// Three users each hold what their budget lets them (uploads whose end
/// never comes) under a server-wide limit of 64 MiB: ferryd stops reading
/// them all at that limit, well below three users' budgets (3 x 48 MiB).
/// Checked to fail without `limits.max_held_mib`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_users_together_stay_within_the_server_budget() {
    let s = server("max_held_mib = 64\n");
    s.add_user("bob", PW, Some("100M"));
    s.add_user("carol", PW, Some("100M"));
    s.add_user("alice2", PW, Some("100M"));
    let mut sessions = Vec::new();
    for user in ["bob", "carol", "alice2"] {
        for _ in 0..4 {
            let mut raw = Raw::connect(&s).await;
            raw.login(user, PW).await.expect("login");
            sessions.push(raw);
        }
    }
    let (base, _) = s.memory_kib();
    let sent = send_until_stuck(sessions, |k, mut raw, sent| async move {
        for i in 1..=256u32 {
            let data = Bytes::from(vec![k as u8; CHUNK_SIZE]);
            let frames = [
                put_open(i, &format!("f{k}-{i}"), CHUNK_SIZE as u64),
                Frame::Data { transfer: i, data },
            ];
            for f in frames {
                if raw.wr.send(f).await.is_err() {
                    return;
                }
            }
            sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let (now, peak) = s.memory_kib();
    let grew = peak.saturating_sub(base) / 1024;
    eprintln!("sent {sent} chunks; ferryd {base} KiB before, {now} now, peak {peak}");
    assert!(grew < 100, "ferryd grew by {grew} MiB for three users");
}

/// Logs in `n` TLS sessions of alice, one at a time; a login refused as
/// busy is tried again, as clients do.
async fn tls_sessions(s: &Server, n: usize) -> Vec<Raw> {
    let mut sessions = Vec::new();
    for _ in 0..n {
        let mut tries = 0;
        loop {
            let mut raw = Raw::connect(s).await;
            match raw.login("alice", PW).await {
                Ok(_) => {
                    sessions.push(raw);
                    break;
                }
                Err(ServerMsg::Refused { error })
                    if error.kind == ErrorKind::TooBusy && tries < 20 =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("login refused: {e:?}"),
            }
        }
    }
    sessions
}

/// 300 idle TLS sessions cost ferryd a few tens of KiB each: the read
/// buffer under TLS (256 KiB) exists only while bytes wait in it. The
/// sessions come in two rounds, as on a server that has served a while:
/// the second round's buffers reuse the first's freed memory, which a
/// zero-filled buffer (tokio's `BufReader`) touches in full. Checked to
/// fail with it: ~170 KiB per session here (227 MiB for 1,000 sessions
/// in the load benchmark).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tls_sessions_hold_no_read_buffer() {
    let s = Server::start_with(
        "[limits]\nlogin_timeout_secs = 30\nmax_sessions_per_user = 1000\n\
         [auth]\niterations = 4096\n",
    );
    assert!(s.fingerprint.is_some(), "this test is about TLS sessions");
    s.add_user("alice", PW, None);
    // One session that leaves first: glibc serves later 256 KiB buffers
    // from its heap (it raises its mmap threshold when one is freed).
    drop(tls_sessions(&s, 1).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (base, _) = s.memory_kib();
    // Two of every three sessions of a first round leave: their memory is
    // freed between the others', for the next 200 sessions to reuse.
    let mut sessions: Vec<Raw> = tls_sessions(&s, 300).await.into_iter().step_by(3).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    sessions.extend(tls_sessions(&s, 200).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (now, peak) = s.memory_kib();
    let per_session = now.saturating_sub(base) / sessions.len() as u64;
    eprintln!(
        "ferryd {base} KiB before, {now} KiB with {} idle sessions ({per_session} KiB each), peak {peak}",
        sessions.len()
    );
    assert!(
        per_session < 96,
        "each idle TLS session holds {per_session} KiB"
    );
    drop(sessions);
}
