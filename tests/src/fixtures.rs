//! Real engines for tests: a throwaway PostgreSQL cluster and HAProxy, in
//! temporary directories, on 127.0.0.1.
//!
//! Neither is a mock: `tests/scripts/postgres.sh` runs Debian's PostgreSQL
//! (`initdb` + `pg_ctl`), and [`Haproxy`] runs the `haproxy` binary in TCP
//! mode. When one is not installed, the fixture panics saying so: CI
//! (`bash .ci/run`) installs both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Set by `.ci/run` to the URL of one cluster it started for the whole
/// suite: [`Postgres::start`] then uses it instead of starting its own.
pub const SHARED_POSTGRES_ENV: &str = "FERRY_TEST_POSTGRES_URL";

/// The script that starts and stops a throwaway cluster.
pub fn postgres_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh")
}

fn run_script(args: &[&str]) -> Output {
    run_script_with(args, &[])
}

fn run_script_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new("bash")
        .arg(postgres_script())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run tests/scripts/postgres.sh")
}

/// The PostgreSQL bin directory the script uses (highest installed version).
pub fn postgres_bindir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = run_script(&["bindir"]);
        assert!(
            out.status.success(),
            "PostgreSQL is needed by this test and was not found (CI installs the Debian package `postgresql`): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// A PostgreSQL cluster: this test's own (stopped and removed on drop), or
/// the suite's shared one from [`SHARED_POSTGRES_ENV`].
pub struct Postgres {
    url: String,
    /// The cluster's directory when it is ours.
    dir: Option<tempfile::TempDir>,
}

impl Postgres {
    /// The suite's shared cluster if [`SHARED_POSTGRES_ENV`] is set, else a
    /// new throwaway one.
    pub fn start() -> Postgres {
        match std::env::var(SHARED_POSTGRES_ENV) {
            Ok(url) if !url.trim().is_empty() => Postgres {
                url: url.trim().to_string(),
                dir: None,
            },
            _ => Postgres::start_own(),
        }
    }

    /// Always a new throwaway cluster (for tests that stop and restart it).
    pub fn start_own() -> Postgres {
        Postgres::start_own_with(&[])
    }

    /// A new throwaway cluster that accepts only TLS connections, with a
    /// certificate for 127.0.0.1 signed by a test CA ([`Postgres::ca_file`]).
    pub fn start_own_tls() -> Postgres {
        Postgres::start_own_with(&[("PG_SSL", "1")])
    }

    fn start_own_with(env: &[(&str, &str)]) -> Postgres {
        postgres_bindir();
        let dir = tempfile::tempdir().expect("tempdir");
        let out = run_script_with(&["start", &dir.path().join("pg").to_string_lossy()], env);
        assert!(
            out.status.success(),
            "could not start a throwaway PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Postgres {
            url: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            dir: Some(dir),
        }
    }

    /// The cluster's URL (its `postgres` database, as superuser).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The test CA of a cluster from [`Postgres::start_own_tls`].
    pub fn ca_file(&self) -> Option<PathBuf> {
        let ca = self.dir.as_ref()?.path().join("pg").join("ca.pem");
        ca.exists().then_some(ca)
    }

    /// True when this is the suite's shared cluster.
    pub fn is_shared(&self) -> bool {
        self.dir.is_none()
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn create_database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Unique across the processes of one suite sharing a cluster.
        let name = format!(
            "ferry_{}_{}_{}",
            std::process::id(),
            nanos,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = self.psql(&self.url, &format!("CREATE DATABASE {name}"));
        assert!(
            out.status.success(),
            "CREATE DATABASE {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        with_database(&self.url, &name)
    }

    /// Drops a database made by [`Postgres::create_database`], closing its
    /// connections (best effort: the cluster is throwaway anyway).
    pub fn drop_database(&self, url: &str) {
        if let Some(name) = database_name(url) {
            let _ = self.psql(
                &self.url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }

    /// Runs `psql` against `url` with `sql`; output unaligned, tuples only.
    pub fn psql(&self, url: &str, sql: &str) -> Output {
        Command::new(postgres_bindir().join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run psql")
    }

    /// Stops our cluster, keeping its data (a database that went away).
    pub fn pause(&self) {
        let dir = self.own_dir("pause");
        let out = run_script(&["stop", &dir]);
        assert!(out.status.success(), "stop failed: {}", stderr(&out));
    }

    /// Starts our paused cluster again on the same port, with its data.
    pub fn resume(&self) {
        let dir = self.own_dir("resume");
        let out = run_script(&["start", &dir]);
        assert!(out.status.success(), "restart failed: {}", stderr(&out));
    }

    fn own_dir(&self, what: &str) -> String {
        let dir = self
            .dir
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: the shared cluster is not ours to stop"));
        dir.path().join("pg").to_string_lossy().into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = run_script(&["stop", &dir.path().join("pg").to_string_lossy()]);
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// `url` with its path (the database name) replaced by `name`, query kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn database_name(url: &str) -> Option<&str> {
    let base = url.split('?').next()?;
    let after_scheme = base.find("://")? + 3;
    let slash = base[after_scheme..].find('/')? + after_scheme;
    let name = &base[slash + 1..];
    // Only names create_database makes: nothing to quote.
    (name.starts_with("ferry_") && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(name)
}

/// When `FERRY_TEST_DATABASE=postgres`, a fresh database for one test
/// server: on the shared cluster, or on a cluster of its own.
pub struct TestDatabase {
    /// The database's URL.
    pub url: String,
    cluster: Postgres,
}

impl TestDatabase {
    /// A fresh database if the suite runs on PostgreSQL, else None (the
    /// embedded default).
    pub fn for_server() -> Option<TestDatabase> {
        match std::env::var("FERRY_TEST_DATABASE").as_deref() {
            Ok("postgres") => {
                let cluster = Postgres::start();
                let url = cluster.create_database();
                Some(TestDatabase { url, cluster })
            }
            Ok("") | Ok("sqlite") | Err(_) => None,
            Ok(other) => panic!("FERRY_TEST_DATABASE={other:?}: expected postgres or sqlite"),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.cluster.is_shared() {
            self.cluster.drop_database(&self.url);
        }
    }
}

/// How [`Haproxy`] balances and talks to its backends.
#[derive(Clone, Debug)]
pub struct HaproxyOptions {
    /// Send a PROXY protocol v2 header on each backend connection.
    pub send_proxy_v2: bool,
    /// `roundrobin` (the default: connections alternate) or `leastconn`.
    pub balance: &'static str,
    /// Health-check the backends at this interval (the checks are extra
    /// connections the backends see); None: no checks, a refused
    /// connection is retried on another backend (`option redispatch`).
    pub health_check: Option<Duration>,
}

impl Default for HaproxyOptions {
    fn default() -> Self {
        HaproxyOptions {
            send_proxy_v2: true,
            balance: "roundrobin",
            health_check: None,
        }
    }
}

/// A running HAProxy in TCP mode on 127.0.0.1 (killed on drop).
pub struct Haproxy {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

/// The haproxy binary (Debian puts it in /usr/sbin, which a non-root PATH
/// may lack).
pub fn haproxy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HAPROXY") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "HAProxy is needed by this test and was not found (CI installs the Debian package `haproxy`: apt-get install haproxy)"
            )
        })
}

impl Haproxy {
    /// Starts HAProxy in front of `backends`, sending a PROXY v2 header to
    /// them when `send_proxy_v2`; round robin, no health checks.
    pub fn start(backends: &[SocketAddr], send_proxy_v2: bool) -> Haproxy {
        Haproxy::start_with(
            backends,
            HaproxyOptions {
                send_proxy_v2,
                ..HaproxyOptions::default()
            },
        )
    }

    /// Starts HAProxy in front of `backends` with `opts`.
    pub fn start_with(backends: &[SocketAddr], opts: HaproxyOptions) -> Haproxy {
        assert!(!backends.is_empty(), "HAProxy needs a backend");
        let bin = haproxy_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut last_log = String::new();
        // A port free a moment ago may be taken before haproxy binds it:
        // retry with another.
        for _ in 0..5 {
            let port = free_port();
            let cfg = dir.path().join("haproxy.cfg");
            std::fs::write(&cfg, config(port, backends, &opts)).expect("write haproxy.cfg");
            let log = dir.path().join("haproxy.log");
            let log_file = std::fs::File::create(&log).expect("haproxy.log");
            let mut child = Command::new(&bin)
                .arg("-db")
                .arg("-f")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("log fd"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("could not run {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_log = std::fs::read_to_string(&log).unwrap_or_default();
                    if last_log.contains("cannot bind")
                        || last_log.contains("Address already in use")
                    {
                        break;
                    }
                    panic!("haproxy exited ({status}): {last_log}");
                }
                if listening(port) {
                    return Haproxy {
                        addr: SocketAddr::from(([127, 0, 0, 1], port)),
                        child,
                        dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "haproxy is not listening on 127.0.0.1:{port} after 20 s: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("haproxy could not bind a port: {last_log}");
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What haproxy printed (warnings, alerts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16, backends: &[SocketAddr], opts: &HaproxyOptions) -> String {
    let mut cfg = format!(
        "global\n    maxconn 4096\n\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n    \
         timeout server 1h\n    retries 3\n    option redispatch\n\n\
         listen ferry\n    bind 127.0.0.1:{port}\n    balance {}\n",
        opts.balance
    );
    for (i, b) in backends.iter().enumerate() {
        let addr = match b {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("ipv6@{}:{}", a.ip(), a.port()),
        };
        cfg.push_str(&format!("    server node{i} {addr}"));
        if opts.send_proxy_v2 {
            cfg.push_str(" send-proxy-v2");
        }
        if let Some(every) = opts.health_check {
            cfg.push_str(&format!(" check inter {}ms", every.as_millis().max(100)));
        }
        cfg.push('\n');
    }
    cfg
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// True when something listens on 127.0.0.1:`port` (read from
/// /proc/net/tcp, so the check opens no connection a backend would see).
fn listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .map(|t| {
            t.lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1] == want && f[3] == "0A"
            })
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5/postgres", "ferry_1"),
            "postgres://postgres@127.0.0.1:5/ferry_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:5/db?sslmode=disable", "ferry_2"),
            "postgres://u:p@h:5/ferry_2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5", "ferry_3"),
            "postgres://h:5/ferry_3"
        );
        assert_eq!(database_name("postgres://h:5/ferry_3?x=1"), Some("ferry_3"));
        assert_eq!(database_name("postgres://h:5/postgres"), None);
        assert_eq!(database_name("postgres://h:5/ferry_x;drop"), None);
    }
}
