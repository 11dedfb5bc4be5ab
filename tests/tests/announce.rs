//! On PostgreSQL a change reaches every node as it commits (LISTEN/NOTIFY),
//! not at the next poll: with both polls set to ten minutes, a deleted
//! user's session on a running node closes, and a ban earned through one
//! node refuses connections to the other as they start.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_e2e::cluster::{spawn_node, Node};
use ferry_e2e::raw::Raw;
use ferry_e2e::{bin, run_with_stdin, Postgres};
use ferry_proto::{ErrorKind, ServerMsg};
use ferry_tui::client::{connect, Client, ClientError, ConnectOptions, Security, TlsOptions};

const PW: &str = "pw-u";
/// Far beyond the time an announcement takes, far below the polls.
const DEADLINE: Duration = Duration::from_secs(20);

/// Nodes on one fresh database whose polls wait ten minutes.
struct Setup {
    nodes: Vec<Node>,
    url: String,
    config: PathBuf,
    fingerprint: String,
    _postgres: Postgres,
    _dir: tempfile::TempDir,
}

fn setup(count: usize) -> Setup {
    let postgres = Postgres::start();
    let url = postgres.create_database();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferryd.toml");
    std::fs::write(
        &config,
        format!(
            "root = {:?}\n[auth]\niterations = 4096\nfailure_delay_ms = 1\n\
             max_failure_delay_ms = 1\nban_after_failures = 2\nban_secs = 600\n\
             user_store_check_ms = 600000\nban_sync_ms = 600000\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let nodes = (0..count)
        .map(|i| spawn_node(&config, &url, &dir.path().join(format!("node{i}.log"))))
        .collect();
    let out = Command::new(bin("ferryd"))
        .args(["fingerprint", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let fingerprint = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let s = Setup {
        nodes,
        url,
        config,
        fingerprint,
        _postgres: postgres,
        _dir: dir,
    };
    s.ferryd(&["user", "add", "u"], &format!("{PW}\n"));
    s
}

impl Setup {
    fn ferryd(&self, args: &[&str], stdin: &str) {
        let mut cmd = Command::new(bin("ferryd"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .env("FERRY_DATABASE_URL", &self.url);
        let out = run_with_stdin(cmd, stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ferryd {args:?}: {err}");
    }

    async fn client(&self, node: usize, pw: &str) -> Result<Client, ClientError> {
        let addr = self.nodes[node].addr.to_string();
        let mut opts = ConnectOptions::new(addr, "u", pw);
        opts.security = Security::Tls(TlsOptions {
            fingerprint: Some(self.fingerprint.clone()),
            ..Default::default()
        });
        connect(&opts).await
    }
}

#[tokio::test]
async fn a_deleted_users_session_closes_without_waiting_for_the_poll() {
    let s = setup(1);
    let c = s.client(0, PW).await.unwrap();
    c.list("/").await.unwrap();
    s.ferryd(&["user", "del", "u"], "");
    let start = Instant::now();
    let why = loop {
        match c.list("/").await {
            Err(e) => break e.to_string(),
            Ok(_) if start.elapsed() > DEADLINE => panic!("the session still works"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert!(why.contains("removed"), "{why}");
}

#[tokio::test]
async fn a_ban_through_one_node_refuses_connections_to_the_other_as_they_start() {
    let s = setup(2);
    for _ in 0..2 {
        let e = s.client(0, "guess").await.err().unwrap();
        assert_eq!(e.kind(), Some(ErrorKind::AuthFailed), "{e}");
    }
    // Node 1 refuses before the login: its own table has the ban.
    let start = Instant::now();
    loop {
        let mut raw = Raw::connect_to(s.nodes[1].addr, Some(&s.fingerprint)).await;
        match raw.recv().await {
            Some(ServerMsg::Refused { error }) => {
                assert_eq!(error.kind, ErrorKind::Banned);
                break;
            }
            Some(ServerMsg::Welcome { .. }) if start.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("node 1 still greets a banned address: {other:?}"),
        }
    }
}
