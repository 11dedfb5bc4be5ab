//! Login penalties across nodes: two ferryd processes on one root and one
//! PostgreSQL database. Failures from a source spread over both nodes add
//! up to one ban, a ban earned through one node holds on the other, and
//! other sources still log in.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferry_e2e::raw::Raw;
use ferry_e2e::{bin, run_with_stdin, Haproxy, Postgres};
use ferry_proto::scram::ClientFirst;
use ferry_proto::{ClientMsg, ErrorKind, ServerMsg};

const BOB: &str = "pw-bob";

/// One ferryd node (killed on drop).
struct Node {
    addr: SocketAddr,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two nodes on one root and one database.
struct Cluster {
    a: Node,
    b: Node,
    fingerprint: String,
    url: String,
    pg: Postgres,
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.pg.is_shared() {
            self.pg.drop_database(&self.url);
        }
    }
}

/// A node's config: its own directory (and log), the shared root. Both
/// trust 127.0.0.1 as a balancer (HAProxy); clients connect from other
/// loopback addresses.
fn config(dir: &Path, name: &str, root: &Path) -> PathBuf {
    let node = dir.join(name);
    std::fs::create_dir_all(&node).unwrap();
    let path = node.join("ferryd.toml");
    std::fs::write(
        &path,
        format!(
            "root = {root:?}\ntrusted_proxies = [\"127.0.0.1\"]\n[limits]\nlogin_timeout_secs = 5\n[auth]\niterations = 4096\n\
             failure_delay_ms = 1\nmax_failure_delay_ms = 1\nban_after_failures = 4\nban_secs = 600\n"
        ),
    )
    .unwrap();
    path
}

fn start_node(config: &Path, url: &str) -> Node {
    let log = std::fs::File::create(config.with_file_name("ferryd.log")).unwrap();
    let mut child = Command::new(bin("ferryd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .args(["--database", url])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected ferryd output {line:?}"))
        .parse()
        .unwrap();
    Node { addr, child }
}

impl Cluster {
    fn start() -> Cluster {
        let pg = Postgres::start();
        let url = pg.create_database();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let (config_a, config_b) = (
            config(dir.path(), "a", &root),
            config(dir.path(), "b", &root),
        );
        // One after the other: the first makes the root's certificate.
        let a = start_node(&config_a, &url);
        let b = start_node(&config_b, &url);
        let mut add = Command::new(bin("ferryd"));
        add.args(["user", "add", "bob", "--config"])
            .arg(&config_a)
            .env("FERRY_DATABASE_URL", &url);
        let out = run_with_stdin(add, &format!("{BOB}\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(bin("ferryd"))
            .args(["fingerprint", "--config"])
            .arg(&config_b)
            .output()
            .unwrap();
        let fingerprint = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Cluster {
            a,
            b,
            fingerprint,
            url,
            pg,
            dir,
        }
    }
}

fn refusal(msg: Option<ServerMsg>) -> ErrorKind {
    match msg {
        Some(ServerMsg::Refused { error }) => error.kind,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// One whole login to `node` from `from`: Ok, or the refusal's kind
/// (whenever it came).
async fn login(c: &Cluster, node: &Node, from: IpAddr, pw: &str) -> Result<(), ErrorKind> {
    login_on(
        Raw::connect_via(node.addr, Some(&c.fingerprint), Some(from)).await,
        pw,
    )
    .await
}

/// A whole login as bob on a connection after the hello.
async fn login_on(mut raw: Raw, pw: &str) -> Result<(), ErrorKind> {
    match raw.recv().await {
        Some(ServerMsg::Welcome { .. }) => {}
        other => return Err(refusal(other)),
    }
    let (mechanism, binding) = raw.scram_binding();
    let (first, client_first) = ClientFirst::new("bob", pw, "nonce0123456789abc", binding);
    raw.send(&ClientMsg::AuthStart {
        mechanism: mechanism.into(),
        client_first,
    })
    .await;
    let server_first = match raw.recv().await {
        Some(ServerMsg::AuthChallenge { server_first }) => server_first,
        other => return Err(refusal(other)),
    };
    let (_, client_final) = first.handle_server_first(&server_first, 1_000_000).unwrap();
    raw.send(&ClientMsg::AuthFinish { client_final }).await;
    match raw.recv().await {
        Some(ServerMsg::AuthOk { .. }) => Ok(()),
        other => Err(refusal(other)),
    }
}

/// Whether `node` refuses a connection from `from` as banned before any
/// proof (from its own table, which takes other nodes' bans from the
/// store), polled for up to 10 s.
async fn refused_at_connect(c: &Cluster, node: &Node, from: IpAddr) -> bool {
    for _ in 0..100 {
        let mut raw = Raw::connect_via(node.addr, Some(&c.fingerprint), Some(from)).await;
        match raw.recv().await {
            Some(ServerMsg::Refused { error }) if error.kind == ErrorKind::Banned => return true,
            Some(ServerMsg::Welcome { .. }) => {}
            other => panic!("expected a welcome or a ban, got {other:?}"),
        }
        // Left before any proof: not counted.
        drop(raw);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn src(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 3, last))
}

/// Four failures, two through each node, reach the threshold of four:
/// the source is banned on both (each node counting only its own saw two).
#[tokio::test]
async fn failures_spread_over_two_nodes_ban_the_source_on_both() {
    let c = Cluster::start();
    let attacker = src(1);
    for node in [&c.a, &c.b, &c.a, &c.b] {
        assert_eq!(
            login(&c, node, attacker, "guess").await,
            Err(ErrorKind::AuthFailed)
        );
    }
    // Refused even with the right password, through either node.
    assert_eq!(login(&c, &c.a, attacker, BOB).await, Err(ErrorKind::Banned));
    assert_eq!(login(&c, &c.b, attacker, BOB).await, Err(ErrorKind::Banned));
    assert!(refused_at_connect(&c, &c.a, attacker).await);
    assert!(refused_at_connect(&c, &c.b, attacker).await);
    // Another source is not punished.
    assert_eq!(login(&c, &c.a, src(2), BOB).await, Ok(()));
    assert_eq!(login(&c, &c.b, src(2), BOB).await, Ok(()));
}

/// A ban earned entirely through node A refuses the source on node B: its
/// logins at once, its connections as they start within seconds.
#[tokio::test]
async fn a_ban_earned_on_one_node_refuses_the_source_on_the_other() {
    let c = Cluster::start();
    let attacker = src(5);
    for _ in 0..4 {
        assert_eq!(
            login(&c, &c.a, attacker, "guess").await,
            Err(ErrorKind::AuthFailed)
        );
    }
    assert_eq!(login(&c, &c.b, attacker, BOB).await, Err(ErrorKind::Banned));
    assert!(refused_at_connect(&c, &c.b, attacker).await);
    assert_eq!(login(&c, &c.b, src(6), BOB).await, Ok(()));
    assert_eq!(login(&c, &c.a, src(6), BOB).await, Ok(()));
}

/// Proofs checked in parallel through both nodes: no more are evaluated
/// than the threshold (each node counting only its own let as many
/// through again).
#[tokio::test]
async fn parallel_guesses_through_both_nodes_are_not_evaluated_beyond_the_threshold() {
    let c = Cluster::start();
    let attacker = src(9);
    let mut started = Vec::new();
    for i in 0..12 {
        let node = if i % 2 == 0 { &c.a } else { &c.b };
        let mut raw = Raw::connect_via(node.addr, Some(&c.fingerprint), Some(attacker)).await;
        let Some(ServerMsg::Welcome { .. }) = raw.recv().await else {
            panic!("no welcome")
        };
        let (mechanism, binding) = raw.scram_binding();
        let (first, client_first) = ClientFirst::new("bob", "guess", "nonce0123456789abc", binding);
        raw.send(&ClientMsg::AuthStart {
            mechanism: mechanism.into(),
            client_first,
        })
        .await;
        let Some(ServerMsg::AuthChallenge { server_first }) = raw.recv().await else {
            panic!("no challenge")
        };
        let (_, client_final) = first.handle_server_first(&server_first, 1_000_000).unwrap();
        started.push((raw, client_final));
    }
    let finishing: Vec<_> = started
        .into_iter()
        .map(|(mut raw, client_final)| {
            tokio::spawn(async move {
                raw.send(&ClientMsg::AuthFinish { client_final }).await;
                refusal(raw.recv().await)
            })
        })
        .collect();
    let mut evaluated = 0;
    for f in finishing {
        match f.await.unwrap() {
            ErrorKind::AuthFailed => evaluated += 1,
            ErrorKind::Banned | ErrorKind::TooBusy => {}
            other => panic!("{other:?}"),
        }
    }
    println!("{evaluated} of 12 parallel guesses through two nodes evaluated");
    assert!(
        evaluated <= 4,
        "{evaluated} guesses evaluated with a threshold of 4"
    );
    // The guesses evaluated count toward the ban like any.
    for _ in evaluated..4 {
        let guess = login(&c, &c.a, attacker, "guess").await;
        assert_eq!(guess, Err(ErrorKind::AuthFailed));
    }
    assert_eq!(login(&c, &c.b, attacker, BOB).await, Err(ErrorKind::Banned));
}

/// Behind the real HAProxy (round robin, `send-proxy-v2`): guesses from
/// one client alternate between the nodes, which see the client's address
/// in the PROXY header; together they ban it, and another client behind
/// the same HAProxy still logs in.
#[tokio::test]
async fn behind_haproxy_guesses_over_both_nodes_ban_the_client_only() {
    let c = Cluster::start();
    let haproxy = Haproxy::start(&[c.a.addr, c.b.addr], true);
    let attacker = src(11);
    let via = |from| Raw::connect_via(haproxy.addr(), Some(&c.fingerprint), Some(from));
    for _ in 0..4 {
        let guess = login_on(via(attacker).await, "guess").await;
        assert_eq!(guess, Err(ErrorKind::AuthFailed));
    }
    // Both nodes had some of them, under the client's address.
    for node in ["a", "b"] {
        let log = std::fs::read_to_string(c.dir.path().join(node).join("ferryd.log")).unwrap();
        let failed = log
            .lines()
            .filter(|l| l.contains("login failed") && l.contains("addr=127.0.3.11:"))
            .count();
        assert!(failed > 0, "node {node} saw no guess:\n{log}");
    }
    // Banned on both nodes, even with the right password.
    for _ in 0..2 {
        let refused = login_on(via(attacker).await, BOB).await;
        assert_eq!(refused, Err(ErrorKind::Banned));
    }
    assert_eq!(login_on(via(src(12)).await, BOB).await, Ok(()));
}
