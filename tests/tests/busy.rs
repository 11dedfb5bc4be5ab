//! Busy is not failure: many parallel commands of one user beyond the
//! server's session limit wait their turn (`--busy-timeout`), and fail
//! with exit status 4 only when told not to wait.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use ferry_e2e::{bin, stderr, stdout, write_random, Server};

const PW: &str = "s3cret pass";

/// A server that lets each user have two sessions at once.
fn server() -> Server {
    let s = Server::start_with(
        "[limits]\nmax_sessions_per_user = 2\nhandshake_timeout_secs = 5\n\
         [auth]\niterations = 4096\nfailure_delay_ms = 10\nmax_failure_delay_ms = 50\n",
    );
    s.add_user("alice", PW, None);
    s
}

/// Starts the real `ferry` as alice without waiting for it.
fn spawn(s: &Server, args: &[&str]) -> Child {
    Command::new(bin("ferry"))
        .args(["-s", &s.addr.to_string(), "-u", "alice"])
        .args(s.trust_args())
        .args(args)
        .env("FERRY_KNOWN_SERVERS", s.known_servers())
        .env("FERRY_PASSWORD", PW)
        .env_remove("FERRY_SERVER")
        .env_remove("FERRY_ACCESS_KEY")
        .env_remove("FERRY_BUSY_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Six uploads of distinct files and six listings, all at once.
fn twelve_commands(s: &Server, local: &std::path::Path, extra: &[&str]) -> Vec<Child> {
    let mut children = Vec::new();
    for i in 0..6 {
        let f = local.join(format!("f{i}.bin"));
        write_random(&f, 128 * 1024, i);
        let f = f.to_str().unwrap().to_string();
        // Rate-limited, so each upload holds its session for a while and
        // the commands really overlap.
        let mut args = extra.to_vec();
        args.extend(["put", "--limit-rate", "512KiB", &f, "/"]);
        children.push(spawn(s, &args));
        let mut args = extra.to_vec();
        args.push("ls");
        children.push(spawn(s, &args));
    }
    children
}

fn wait_all(children: Vec<Child>) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

fn assert_uploaded(s: &Server, local: &std::path::Path) {
    for i in 0..6 {
        let name = format!("f{i}.bin");
        assert_eq!(
            s.files("alice").read(&name),
            std::fs::read(local.join(&name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn parallel_commands_beyond_the_session_limit_all_succeed() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let outputs = wait_all(twelve_commands(&s, local.path(), &[]));
    for o in &outputs {
        assert!(o.status.success(), "{:?}: {}", o.status, stderr(o));
        // Not on a terminal: no retry notices, only the results.
        assert!(!stderr(o).contains("busy"), "{}", stderr(o));
    }
    assert_uploaded(&s, local.path());
}

#[test]
fn commands_wait_for_sessions_held_elsewhere() {
    let s = server();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Both of alice's sessions are taken (say, by a long transfer).
    let held = rt.block_on(async {
        let a = s.client("alice", PW).await.unwrap();
        let b = s.client("alice", PW).await.unwrap();
        (a, b)
    });
    let local = tempfile::tempdir().unwrap();
    let children = twelve_commands(&s, local.path(), &["--busy-timeout", "120"]);
    // Every command is refused at least once while both are held.
    std::thread::sleep(Duration::from_millis(1500));
    rt.block_on(async {
        held.0.close().await;
        held.1.close().await;
    });
    for o in wait_all(children) {
        assert!(o.status.success(), "{:?}: {}", o.status, stderr(&o));
    }
    assert_uploaded(&s, local.path());
}

#[test]
fn busy_timeout_zero_fails_at_once_with_exit_4() {
    let s = server();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _held = rt.block_on(async {
        let a = s.client("alice", PW).await.unwrap();
        let b = s.client("alice", PW).await.unwrap();
        (a, b)
    });
    let local = tempfile::tempdir().unwrap();
    let outputs = wait_all(twelve_commands(&s, local.path(), &["--busy-timeout", "0"]));
    for o in &outputs {
        assert_eq!(o.status.code(), Some(4), "{}", stderr(o));
        assert!(stderr(o).contains("busy, try again later"), "{}", stderr(o));
    }
    // With --json, stdout holds the error object and nothing else.
    let o = s.ferry("alice", PW, &["--busy-timeout", "0", "--json", "ls"]);
    assert_eq!(o.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["error"]["kind"], "TooBusy");
    // A wrong password is never retried: it fails as a login failure.
    let o = s.ferry("alice", "wrong", &["--busy-timeout", "60", "ls"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

#[test]
fn connections_turned_away_before_login_are_retried() {
    // Two strangers from this address may be logging in at once; more are
    // reset at accept, before TLS.
    let s = Server::start_with(
        "[limits]\nmax_unauthenticated_per_ip = 2\n\
         [auth]\niterations = 4096\nfailure_delay_ms = 10\nmax_failure_delay_ms = 50\n",
    );
    s.add_user("alice", PW, None);
    let silent: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let o = s.ferry("alice", PW, &["--busy-timeout", "0", "ls"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("turned the connection away"),
        "{}",
        stderr(&o)
    );
    let waiting = spawn(&s, &["ls"]);
    std::thread::sleep(Duration::from_millis(1500));
    drop(silent);
    let o = waiting.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Logins and logouts of one user overlapping on the embedded database
/// (SQLite): each writes its session row. A transaction that read first
/// and wrote after another connection's write failed at once with
/// "database is locked" (SQLITE_BUSY_SNAPSHOT), refusing the login as
/// busy; the store now takes the write lock first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_logins_of_one_user_are_not_refused_by_the_database() {
    let s = Server::start_with("[limits]\nmax_sessions_per_user = 1000\n");
    s.add_user("u", PW, None);
    // 12 at a time: under the 16 logins in flight one address may have.
    for _round in 0..6 {
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let opts = s.options("u", PW);
            tasks.push(tokio::spawn(async move {
                let c = ferry_tui::client::connect(&opts).await?;
                c.close().await;
                Ok::<_, ferry_tui::client::ClientError>(())
            }));
        }
        for t in tasks {
            if let Err(e) = t.await.unwrap() {
                panic!("a login was refused: {e}");
            }
        }
    }
}
