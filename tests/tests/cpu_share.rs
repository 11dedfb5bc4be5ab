//! One user's CPU-heavy requests (checksums of big files) run on their
//! share of the cores, in steps: they cannot take every core, and another
//! user's requests are served between their steps.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use ferry_e2e::raw::Raw;
use ferry_e2e::Server;
use ferry_proto::{ClientMsg, Frame, Reply, Request, ServerMsg};
use futures::{SinkExt, StreamExt};

/// A plaintext server with `limits` added to the test limits.
fn server(limits: &str) -> Server {
    Server::start_with(&format!(
        "insecure_plaintext = true\n[limits]\nhandshake_timeout_secs = 5\n{limits}\n\
         [auth]\niterations = 4096\n"
    ))
}

/// `sessions` sessions of mallory, each asking for `per_session`
/// checksums of a sparse 1 TiB file in her home (minutes of SHA-256 each:
/// none ends while the test runs). Returns the sessions, to be kept open.
async fn checksum_flood(s: &Server, sessions: usize, per_session: u32) -> Vec<Raw> {
    s.add_user("mallory", "pw-mallory", None);
    let huge = std::fs::File::create(s.home("mallory").join("huge")).unwrap();
    huge.set_len(1 << 40).unwrap();
    let mut attackers = Vec::new();
    for _ in 0..sessions {
        let mut raw = Raw::connect(s).await;
        raw.login("mallory", "pw-mallory").await.expect("login");
        for id in 1..=per_session {
            let sum = ClientMsg::Request {
                id,
                req: Request::Checksum {
                    path: "huge".into(),
                    offset: 0,
                    length: None,
                },
            };
            raw.wr.feed(Frame::control(&sum).unwrap()).await.unwrap();
        }
        raw.wr.flush().await.unwrap();
        attackers.push(raw);
    }
    attackers
}

/// ferryd's threads that are running or ready to run now.
fn runnable_threads(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // "tid (name) S ...": the state follows the last parenthesis.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('R'))
        })
        .count()
}

/// Four sessions of one user ask for 64 checksums each. Each checksum
/// hashed its whole file in one step, on up to `max_threads_per_user` (8)
/// threads at once: 4x the cores of a 2-core machine, and another user's
/// `ls` took 7-13x its time. Hashing now runs in steps on the user's share
/// of the cores (1 here): ferryd's runnable threads are counted while the
/// attack runs. Checked to fail without the change (8 runnable threads).
/// The bulk threads that hash keep the process's priority here
/// (`bulk_nice = 0`): on a machine busy with other work, a thread at a
/// lower priority that has just finished a step waits a while to run the
/// few instructions that take it back to its queue, and would be counted
/// as runnable beside the one hashing the next step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_of_one_user_run_on_their_share_of_the_cores() {
    if ferry_e2e::disk_only(
        "checksums hashed by the disk engine's CPU share (object storage sends the recorded ones)",
    ) {
        return;
    }
    let s = server("max_cpu_threads = 2\nmax_cpu_threads_per_user = 1\nbulk_nice = 0\n");
    let attackers = checksum_flood(&s, 4, 64).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut samples = Vec::new();
    for _ in 0..40 {
        samples.push(runnable_threads(s.pid()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    samples.sort_unstable();
    let median = samples[samples.len() / 2];
    // One hashing step at a time, plus at most one thread answering.
    assert!(
        median <= 2,
        "ferryd ran {median} threads at once (median; sorted samples {samples:?}) \
         for one user's checksums; their share of the cores is 1"
    );
    assert!(samples[samples.len() - 1] >= 1, "the checksums did not run");
    drop(attackers);
}

/// With two threads on the whole server, one user's checksums of a huge
/// file took both for as long as a whole file's hash (minutes here):
/// another user's `ls` waited behind them. Now a checksum takes one core's
/// place (the user's share) and a thread only for a step of a few MiB, so
/// the other user is served meanwhile. Checked to hang without the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_listing_is_served_beside_checksums() {
    if ferry_e2e::disk_only(
        "checksums hashed by the disk engine's CPU share (object storage sends the recorded ones)",
    ) {
        return;
    }
    let s = server(
        "max_threads = 2\nmax_threads_per_user = 2\nmax_cpu_threads = 2\n\
         max_cpu_threads_per_user = 1\n",
    );
    let attackers = checksum_flood(&s, 2, 16).await;
    s.add_user("bob", "pw-bob", None);
    s.files("bob").write("bobs-file", b"hello");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bob = async {
        let mut raw = Raw::connect(&s).await;
        raw.login("bob", "pw-bob").await.expect("bob's login");
        let list = ClientMsg::Request {
            id: 1,
            req: Request::List { path: "/".into() },
        };
        raw.send(&list).await;
        while let Some(Ok(frame)) = raw.rd.next().await {
            if let Ok(ServerMsg::Response { id: 1, reply }) = frame.decode_control() {
                return reply;
            }
        }
        panic!("the server closed bob's session");
    };
    let reply = tokio::time::timeout(Duration::from_secs(60), bob)
        .await
        .expect("bob's listing hung behind mallory's checksums");
    match reply {
        Ok(Reply::Entries { entries, .. }) => {
            assert!(entries.iter().any(|e| e.name == "bobs-file"), "{entries:?}")
        }
        other => panic!("{other:?}"),
    }
    drop(attackers);
}

/// Each of ferryd's threads: its id, name, nice value and CPU time so far
/// (clock ticks), from /proc.
fn threads_of(pid: u32) -> Vec<(String, String, i64, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            // "tid (name) S ppid ...": fields counted from the state (3).
            let (head, rest) = stat.rsplit_once(") ")?;
            let (tid, name) = head.split_once(" (")?;
            let f: Vec<&str> = rest.split(' ').collect();
            let cpu = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some((
                tid.to_string(),
                name.to_string(),
                f.get(16)?.parse().ok()?,
                cpu,
            ))
        })
        .collect()
}

/// Hashing is bulk work: it runs on ferryd's bulk threads, which lower
/// their own priority (`bulk_nice`), so other users' listings and small
/// uploads get the cores first. The thread that does most of one user's
/// checksums is looked at while they run. Checked to fail with
/// `bulk_nice = 0` (the hashing thread then runs at the test's own nice
/// value) and on the code before the bulk threads (hashing ran on the
/// shared blocking threads).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_hash_on_threads_of_lowered_priority() {
    if ferry_e2e::disk_only(
        "checksums hashed by the disk engine's CPU share (object storage sends the recorded ones)",
    ) {
        return;
    }
    let s = server("max_cpu_threads = 1\nmax_cpu_threads_per_user = 1\nbulk_nice = 13\n");
    let attackers = checksum_flood(&s, 2, 8).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = threads_of(s.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = threads_of(s.pid());
    // CPU time over those 2 s, by thread.
    let busiest = after
        .iter()
        .map(|(tid, name, nice, cpu)| {
            let was = before
                .iter()
                .find(|(t, _, _, _)| t == tid)
                .map_or(0, |b| b.3);
            (cpu.saturating_sub(was), name, *nice)
        })
        .max()
        .expect("ferryd has threads");
    assert!(busiest.0 > 0, "nothing ran: {after:?}");
    assert!(
        busiest.1.starts_with("ferry-bulk") && busiest.2 >= 13,
        "the busiest thread while hashing was {busiest:?}; threads: {after:?}"
    );
    drop(attackers);
}
