//! Several ferryd nodes on one root directory and one PostgreSQL database,
//! the real HAProxy in front of them (`send-proxy-v2`): the harness of the
//! cluster tests.
//!
//! Every node trusts 127.0.0.1 as a balancer, so each is reached through
//! an HAProxy: [`Cluster::balancer`] spreads connections over all nodes
//! (round robin), [`Cluster::via`] reaches one node only (an HAProxy with
//! that node as its one backend), so a test knows which node serves it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use ferry_tui::client::{connect, Client, ClientError, ConnectOptions, Security, TlsOptions};

use crate::fixtures::{Haproxy, Postgres};
use crate::{bin, run_with_stdin};

/// `[auth]` of the cluster tests: fast hashing, quick penalties.
pub const CLUSTER_AUTH: &str = "[auth]\niterations = 4096\nfailure_delay_ms = 10\n\
     max_failure_delay_ms = 50\nban_after_failures = 1000\nban_secs = 60\n";

/// One ferryd of a [`Cluster`].
pub struct Node {
    /// Where it listens (only balancers may connect: it trusts 127.0.0.1).
    pub addr: SocketAddr,
    /// Its log (stderr), appended to across restarts.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// What the node logged so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits (up to 20 s) for a log line containing all of `parts`;
    /// returns the whole log.
    pub async fn wait_for_log(&self, parts: &[&str]) -> String {
        for _ in 0..400 {
            let log = self.log_text();
            if log.lines().any(|l| parts.iter().all(|p| l.contains(p))) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no line with {parts:?} in {}:\n{}",
            self.log.display(),
            self.log_text()
        );
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGSTOP: the node stands still (no heartbeat) until [`Node::thaw`].
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Node::freeze`].
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let child = self.child.as_ref().expect("the node runs");
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} failed");
    }

    /// SIGKILL: the node dies without a word to the database.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two (or more) ferryd nodes sharing one root and one PostgreSQL
/// database, with HAProxy in front.
pub struct Cluster {
    /// The nodes, in start order.
    pub nodes: Vec<Node>,
    /// The shared database's URL.
    pub url: String,
    /// The shared config file (the same for every node).
    pub config: PathBuf,
    /// The TLS certificate's fingerprint (all nodes serve the same one,
    /// from the shared root).
    pub fingerprint: String,
    balancer: Haproxy,
    fronts: Vec<Haproxy>,
    postgres: Postgres,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Two nodes on a fresh database of the suite's cluster
    /// ([`Postgres::start`]); `limits` and `database` are the bodies of the
    /// config's `[limits]` and `[database]` tables.
    pub fn start(limits: &str, database: &str) -> Cluster {
        Cluster::start_on(Postgres::start(), 2, limits, database)
    }

    /// `count` nodes on a fresh database of `postgres`.
    pub fn start_on(postgres: Postgres, count: usize, limits: &str, database: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = postgres.create_database();
        let config = dir.path().join("ferryd.toml");
        std::fs::write(
            &config,
            format!(
                "root = {:?}\ntrusted_proxies = [\"127.0.0.1\"]\n\
                 [limits]\nlogin_timeout_secs = 10\n{limits}\n{CLUSTER_AUTH}\n[database]\n{database}\n",
                dir.path().join("data")
            ),
        )
        .expect("write config");
        // One after the other: the first makes the certificate and the
        // schema, the others find them.
        let nodes: Vec<Node> = (0..count)
            .map(|i| spawn_node(&config, &url, &dir.path().join(format!("node{i}.log"))))
            .collect();
        let out = Command::new(bin("ferryd"))
            .args(["fingerprint", "--config"])
            .arg(&config)
            .output()
            .expect("fingerprint");
        let fingerprint = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
        let balancer = Haproxy::start(&addrs, true);
        let fronts = addrs.iter().map(|a| Haproxy::start(&[*a], true)).collect();
        Cluster {
            nodes,
            url,
            config,
            fingerprint,
            balancer,
            fronts,
            postgres,
            dir,
        }
    }

    /// HAProxy in front of all nodes (round robin; a node that refuses
    /// the connection is skipped).
    pub fn balancer(&self) -> SocketAddr {
        self.balancer.addr()
    }

    /// An HAProxy in front of node `i` only.
    pub fn via(&self, i: usize) -> SocketAddr {
        self.fronts[i].addr()
    }

    /// The database's cluster.
    pub fn postgres(&self) -> &Postgres {
        &self.postgres
    }

    /// The shared root.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A user's home on disk.
    pub fn home(&self, user: &str) -> PathBuf {
        self.data().join("home").join(user)
    }

    /// Where a node keeps the partial of `user`'s upload to `remote`.
    pub fn partial(&self, user: &str, remote: &str) -> PathBuf {
        let path = ferry_proto::RemotePath::parse(remote).expect("remote path");
        self.home(user)
            .join(ferry_proto::msg::PARTIALS_DIR)
            .join(ferry_server::transfer::partials::key(&path))
    }

    /// Runs `ferryd <args> --config <config>` against the shared
    /// database, with `stdin`.
    pub fn ferryd(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(bin("ferryd"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .env("FERRY_DATABASE_URL", &self.url);
        run_with_stdin(cmd, stdin)
    }

    /// Adds a user with `ferryd user add`.
    pub fn add_user(&self, name: &str, password: &str) {
        let out = self.ferryd(&["user", "add", name], &format!("{password}\n"));
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Connection options for a user through `via` (a balancer).
    pub fn options(&self, via: SocketAddr, user: &str, password: &str) -> ConnectOptions {
        let mut opts = ConnectOptions::new(via.to_string(), user, password);
        opts.security = Security::Tls(TlsOptions {
            fingerprint: Some(self.fingerprint.clone()),
            ..Default::default()
        });
        opts
    }

    /// Logs in with the client library through `via`.
    pub async fn client(
        &self,
        via: SocketAddr,
        user: &str,
        password: &str,
    ) -> Result<Client, ClientError> {
        connect(&self.options(via, user, password)).await
    }

    /// The real `ferry` binary as `user` through `via`, with `args`, not
    /// started yet.
    pub fn ferry_command(
        &self,
        via: SocketAddr,
        user: &str,
        password: &str,
        args: &[&str],
    ) -> Command {
        let mut cmd = Command::new(bin("ferry"));
        cmd.args(["-s", &via.to_string(), "-u", user])
            .args(["--fingerprint", &self.fingerprint])
            .args(args)
            .env("FERRY_KNOWN_SERVERS", self.dir.path().join("known_servers"))
            .env("FERRY_PASSWORD", password)
            .env_remove("FERRY_SERVER")
            .env_remove("FERRY_ACCESS_KEY")
            .env_remove("FERRY_BUSY_TIMEOUT")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the real `ferry` binary and waits for it.
    pub fn ferry(&self, via: SocketAddr, user: &str, password: &str, args: &[&str]) -> Output {
        self.ferry_command(via, user, password, args)
            .output()
            .expect("run ferry")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        if self.postgres.is_shared() {
            self.postgres.drop_database(&self.url);
        }
    }
}

/// Starts a ferryd on `config` and the database `url`, logging to `log`;
/// returns once it said where it listens.
pub fn spawn_node(config: &Path, url: &str, log: &Path) -> Node {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("node log");
    let mut child = Command::new(bin("ferryd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .args(["--database", url])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("spawn ferryd");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    let Some(addr) = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
    else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "ferryd did not start ({line:?}): {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    };
    Node {
        addr,
        log: log.to_path_buf(),
        child: Some(child),
    }
}
