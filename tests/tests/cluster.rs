//! Two ferryd nodes on one root and one PostgreSQL database, the real
//! HAProxy in front (`send-proxy-v2`): sessions are counted over both,
//! `ferryd user` changes reach both, a node killed with SIGKILL stops
//! counting and its upload resumes through the other, the audit log
//! names the client, and a database that is away is a clear error.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ferry_e2e::raw::Raw;
use ferry_e2e::{json_lines, stderr, write_random, Cluster, Postgres};
use ferry_proto::ErrorKind;
use ferry_tui::client::Client;

const PW: &str = "pw-u";
/// Far beyond every interval at play (checks every 1 s, heartbeats, a
/// 2 s expiry), for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

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

/// Logs in through `via` until it works (a session row goes in the
/// background, a node expires after a while).
async fn until_login(c: &Cluster, via: std::net::SocketAddr, pw: &str) -> Client {
    let start = Instant::now();
    loop {
        match c.client(via, "u", pw).await {
            Ok(client) => return client,
            Err(e) if start.elapsed() > DEADLINE => panic!("still refused: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Asserts a login through `via` is refused as busy because of the
/// sessions on all nodes.
async fn assert_full(c: &Cluster, via: std::net::SocketAddr) {
    let e = c.client(via, "u", PW).await.expect_err("login refused");
    assert_eq!(e.kind(), Some(ErrorKind::TooBusy), "{e}");
    assert!(e.to_string().contains("on all nodes"), "{e}");
}

/// With two sessions per user allowed, one session on each node fills
/// them: a third login is refused on either node; once one closes, a
/// login works again.
#[tokio::test]
async fn sessions_per_user_are_counted_over_both_nodes() {
    let c = Cluster::start("max_sessions_per_user = 2", "");
    c.add_user("u", PW);
    let a = c.client(c.via(0), "u", PW).await.unwrap();
    let b = c.client(c.via(1), "u", PW).await.unwrap();
    assert_full(&c, c.via(0)).await;
    assert_full(&c, c.via(1)).await;
    assert_full(&c, c.balancer()).await;
    c.nodes[0]
        .wait_for_log(&["login refused", "sessions of this user on all nodes"])
        .await;
    c.nodes[1]
        .wait_for_log(&["login refused", "sessions of this user on all nodes"])
        .await;
    a.close().await;
    drop(a);
    // Node A's session is gone: a login through B takes its place.
    let again = until_login(&c, c.via(1), PW).await;
    again.list("/").await.unwrap();
    b.list("/").await.unwrap();
    assert_full(&c, c.via(0)).await;
}

/// `ferryd user passwd` (run against the shared database) closes the
/// sessions that used the old password on both nodes; then `ferryd user
/// del` closes the new ones on both, and the user logs in nowhere.
#[tokio::test]
async fn user_changes_close_sessions_on_both_nodes() {
    let c = Cluster::start("", "");
    c.add_user("u", PW);
    let a = c.client(c.via(0), "u", PW).await.unwrap();
    let b = c.client(c.via(1), "u", PW).await.unwrap();
    let o = c.ferryd(&["user", "passwd", "u"], "new password\n");
    assert!(o.status.success(), "{}", stderr(&o));
    for s in [&a, &b] {
        let why = until_refused(s).await;
        assert!(why.contains("password was changed"), "{why}");
    }
    let a = until_login(&c, c.via(0), "new password").await;
    let b = until_login(&c, c.via(1), "new password").await;
    let o = c.ferryd(&["user", "del", "u"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    for s in [&a, &b] {
        let why = until_refused(s).await;
        assert!(why.contains("removed"), "{why}");
    }
    for i in 0..2 {
        let e = c.client(c.via(i), "u", "new password").await.err().unwrap();
        assert_eq!(e.kind(), Some(ErrorKind::AuthFailed), "{e}");
    }
}

/// Node A dies (SIGKILL) while u uploads through it, u's only session
/// allowed. Its session counts on B until A's heartbeat is older than
/// the expiry (2 s here), then u logs in through B, and the upload
/// resumes there from the partial A left in the shared home.
#[tokio::test]
async fn a_killed_node_stops_counting_and_its_upload_resumes_on_the_other() {
    kill_mid_upload(None).await;
}

/// As above with a 12 MiB quota: A's reservation for the 8 MiB upload
/// returns once A is dead, or the resumed upload would not fit, and the
/// usage after is the file's size. (Before the reservations were noted
/// on the uploads' rows: `needs 7340032 bytes, 4194304 of 12582912
/// free`.)
#[tokio::test]
async fn a_killed_nodes_reservation_returns() {
    kill_mid_upload(Some("12MiB")).await;
}

async fn kill_mid_upload(quota: Option<&str>) {
    let mut c = Cluster::start(
        "max_sessions_per_user = 1",
        "heartbeat_ms = 200\nnode_expiry_secs = 2",
    );
    c.add_user("u", PW);
    if let Some(q) = quota {
        let o = c.ferryd(&["user", "quota", "u", q], "");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let local = tempfile::tempdir().unwrap();
    let size = 8 << 20;
    let src = local.path().join("big.bin");
    write_random(&src, size, 7);
    let mut put = c
        .ferry_command(
            c.via(0),
            "u",
            PW,
            &["put", src.to_str().unwrap(), "--limit-rate", "1MiB"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = c.partial("u", "big.bin");
    let start = Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 1 << 20 {
        assert!(start.elapsed() < DEADLINE, "the upload did not start");
        std::thread::sleep(Duration::from_millis(25));
    }
    // A's session counts on B.
    assert_full(&c, c.via(1)).await;

    c.nodes[0].kill();
    let status = put.wait().unwrap();
    assert!(!status.success(), "the client notices the cut");
    assert!(!c.home("u").join("big.bin").exists());
    // After the expiry, A's session no longer counts.
    let b = until_login(&c, c.via(1), PW).await;
    b.close().await;
    drop(b);
    // The upload resumes through the balancer, which finds only B (the
    // CLI waits out the closed session's row, as busy).
    let o = c.ferry(
        c.balancer(),
        "u",
        PW,
        &["--json", "put", src.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = json_lines(&o)[0]["resumed_from"].as_u64().unwrap();
    assert!(resumed >= 1 << 20 && resumed < size as u64, "{resumed}");
    assert_eq!(
        std::fs::read(c.home("u").join("big.bin")).unwrap(),
        std::fs::read(&src).unwrap()
    );
    if quota.is_some() {
        let q = json_lines(&c.ferry(c.balancer(), "u", PW, &["--json", "quota"]));
        assert_eq!(q[0]["used"], size as u64, "the usage holds A's reservation");
    }
    c.nodes[1]
        .wait_for_log(&["dead nodes removed with their sessions"])
        .await;
}

/// Clients from 127.0.0.9 and 127.0.0.10 log in through HAProxy: the
/// audit lines of the nodes that served them name them, never HAProxy's
/// 127.0.0.1.
#[tokio::test]
async fn the_audit_log_names_the_client_behind_haproxy() {
    let c = Cluster::start("", "");
    c.add_user("u", PW);
    let mut held = Vec::new();
    for host in [9, 10] {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, host));
        let mut raw = Raw::connect_via(c.balancer(), Some(&c.fingerprint), Some(from)).await;
        raw.login("u", PW).await.unwrap();
        held.push(raw);
    }
    for host in [9, 10] {
        let addr = format!("addr=127.0.0.{host}:");
        let start = Instant::now();
        loop {
            let served = c
                .nodes
                .iter()
                .filter(|n| {
                    n.log_text()
                        .lines()
                        .any(|l| l.contains("login ok") && l.contains(&addr))
                })
                .count();
            if served == 1 {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "{served} nodes logged {addr}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for n in &c.nodes {
        for line in n.log_text().lines().filter(|l| l.contains("login ok")) {
            assert!(!line.contains("addr=127.0.0.1:"), "{line}");
        }
    }
}

/// `ferryd serve` on a database that is down exits with an error saying
/// so, and a non-zero status, instead of serving without its state.
#[test]
fn a_database_down_at_start_stops_ferryd() {
    let pg = Postgres::start_own();
    let url = pg.create_database();
    pg.pause();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferryd.toml");
    std::fs::write(&config, format!("root = {:?}\n", dir.path().join("data"))).unwrap();
    let mut child = std::process::Command::new(ferry_e2e::bin("ferryd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args(["--database", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("ferryd still runs without its database");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("ferryd: cannot open the state store: the database is unavailable"),
        "{err}"
    );
}

/// The database goes away while ferryd serves: a login is refused as
/// busy, saying why; when the database is back, logins work again with
/// no restart of ferryd.
#[tokio::test]
async fn a_database_lost_while_serving_refuses_logins_until_it_returns() {
    let c = Cluster::start_on(Postgres::start_own(), 1, "", "");
    c.add_user("u", PW);
    c.client(c.via(0), "u", PW).await.unwrap();
    c.postgres().pause();
    let e = c.client(c.via(0), "u", PW).await.expect_err("refused");
    assert_eq!(e.kind(), Some(ErrorKind::TooBusy), "{e}");
    assert!(
        e.to_string()
            .contains("the server's database is unavailable"),
        "{e}"
    );
    c.postgres().resume();
    let again = until_login(&c, c.via(0), PW).await;
    again.list("/").await.unwrap();
    // The node is still the one started before the loss.
    assert_eq!(c.nodes[0].log_text().matches("ferryd listening").count(), 1);
}

/// A session that ends while the database is away cannot delete its row
/// then; once the database is back, the row goes, so the user's one
/// session allowed is free again (it is not held until the node stops).
#[tokio::test]
async fn a_session_ended_while_the_database_was_away_stops_counting() {
    let c = Cluster::start_on(
        Postgres::start_own(),
        1,
        "max_sessions_per_user = 1",
        "heartbeat_ms = 200",
    );
    c.add_user("u", PW);
    let s = c.client(c.via(0), "u", PW).await.unwrap();
    c.postgres().pause();
    s.close().await;
    drop(s);
    c.nodes[0]
        .wait_for_log(&["cannot remove a closed session's row"])
        .await;
    c.postgres().resume();
    until_login(&c, c.via(0), PW).await;
}

/// Node A stands still past the expiry: node B takes it for dead and
/// removes its sessions. When A goes on, its session (still open) counts
/// again on every node: B refuses u's second session.
#[tokio::test]
async fn a_node_taken_for_dead_counts_its_sessions_again() {
    let c = Cluster::start(
        "max_sessions_per_user = 1",
        "heartbeat_ms = 200\nnode_expiry_secs = 2",
    );
    c.add_user("u", PW);
    let a = c.client(c.via(0), "u", PW).await.unwrap();
    c.nodes[0].freeze();
    c.nodes[1]
        .wait_for_log(&["dead nodes removed with their sessions"])
        .await;
    c.nodes[0].thaw();
    c.nodes[0]
        .wait_for_log(&["this node was taken for dead"])
        .await;
    a.list("/").await.unwrap();
    // Its next heartbeats have long registered it again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_full(&c, c.via(1)).await;
}
