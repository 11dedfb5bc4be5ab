//! Test harness: starts the real `ferryd` on 127.0.0.1:0 with a temporary
//! root, adds users with the real `ferryd user add`, and drives the real
//! `ferry` binary or the client library against it.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use ferry_tui::client::{connect, Client, ClientError, ConnectOptions, Security, TlsOptions};

pub mod cluster;
mod files;
pub mod fixtures;
pub mod objects;
pub mod raw;
pub mod switch;
pub mod tmux;
pub mod trees;
pub mod uploads;
pub use cluster::Cluster;
pub use files::Files;
pub use fixtures::{Haproxy, HaproxyOptions, Postgres, TestDatabase};

/// Directory holding the workspace's built binaries.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("FERRY_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // target/debug/deps/<test> -> target/debug
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of a workspace binary, checked to exist.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not found: run `cargo test --workspace` (or `cargo build --workspace`) so the binaries are built",
        p.display()
    );
    p
}

/// Config used by tests: fast hashing, quick penalties, short timeouts.
pub const TEST_CONFIG: &str = r#"
[limits]
login_timeout_secs = 5
max_dir_batch = 100

[auth]
iterations = 4096
failure_delay_ms = 10
max_failure_delay_ms = 50
ban_after_failures = 1000
ban_secs = 60
"#;

/// A running ferryd.
pub struct Server {
    /// Temporary root (users.toml, homes).
    pub root: tempfile::TempDir,
    /// The config file.
    pub config: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The TLS certificate's fingerprint (None in plaintext mode).
    pub fingerprint: Option<String>,
    /// With `FERRY_TEST_DATABASE=postgres`: this server's own database.
    pub database: Option<TestDatabase>,
    /// With `FERRY_TEST_STORE=s3`: the object store and this server's
    /// prefix in it.
    pub store: Option<objects::TestStore>,
    /// Passwords of the users added, for [`Server::files`].
    passwords: std::sync::Mutex<std::collections::HashMap<String, String>>,
    child: Child,
}

impl Server {
    /// Starts ferryd with [`TEST_CONFIG`].
    pub fn start() -> Server {
        Server::start_with("")
    }

    /// Starts ferryd with [`TEST_CONFIG`] plus `extra` TOML at the top level
    /// (e.g. `access_key = "k"`). `extra` may also replace whole tables.
    pub fn start_with(extra: &str) -> Server {
        let root = tempfile::tempdir().expect("tempdir");
        let config = root.path().join("ferryd.toml");
        let text = if extra.contains("[limits]") || extra.contains("[auth]") {
            extra.to_string()
        } else {
            format!("{extra}\n{TEST_CONFIG}")
        };
        let store = objects::TestStore::for_server().filter(|_| !text.contains("[store]"));
        let tables = store
            .as_ref()
            .map(|s| s.config(root.path()))
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!("root = {:?}\n{text}{tables}", root.path().join("data")),
        )
        .expect("write config");
        let database = TestDatabase::for_server();
        let (child, addr) = spawn(&config, &database);
        let plaintext = text.contains("insecure_plaintext = true");
        let fingerprint = (!plaintext).then(|| {
            let out = Command::new(bin("ferryd"))
                .args(["fingerprint", "--config"])
                .arg(&config)
                .output()
                .expect("fingerprint");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        });
        Server {
            root,
            config,
            addr,
            fingerprint,
            database,
            store,
            passwords: Default::default(),
            child,
        }
    }

    /// Starts ferryd without TLS (`insecure_plaintext`).
    pub fn start_plaintext() -> Server {
        Server::start_with("insecure_plaintext = true")
    }

    /// A known-servers file private to this test.
    pub fn known_servers(&self) -> PathBuf {
        self.root.path().join("known_servers")
    }

    /// The arguments that make `ferry` trust this server.
    pub fn trust_args(&self) -> Vec<String> {
        match &self.fingerprint {
            Some(fp) => vec!["--fingerprint".into(), fp.clone()],
            None => vec!["--insecure-plaintext".into()],
        }
    }

    /// `user`'s files as a test sets them up and looks at them: in her
    /// home on disk, or, when the home is in object storage, through the
    /// real client (the user must have been added by [`Server::add_user`]).
    pub fn files(&self, user: &str) -> Files<'_> {
        let password = self
            .passwords
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .cloned()
            .unwrap_or_default();
        Files {
            server: self,
            user: user.to_string(),
            password,
        }
    }

    /// The server root.
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// A user's home on disk.
    pub fn home(&self, user: &str) -> PathBuf {
        self.data().join("home").join(user)
    }

    /// Where the server keeps the partial of `user`'s upload to `remote`
    /// (its directory is created, so a test can plant a partial there).
    pub fn partial(&self, user: &str, remote: &str) -> PathBuf {
        let area = self.home(user).join(".ferry-partials");
        std::fs::create_dir_all(&area).expect("partial area");
        let path = ferry_proto::RemotePath::parse(remote).expect("remote path");
        area.join(ferry_server::transfer::partials::key(&path))
    }

    /// Adds a user with `ferryd user add`, password on stdin.
    pub fn add_user(&self, name: &str, password: &str, quota: Option<&str>) {
        self.passwords
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), password.to_string());
        let mut cmd = Command::new(bin("ferryd"));
        cmd.args(["user", "add", name, "--config"])
            .arg(&self.config);
        if let Some(q) = quota {
            cmd.args(["--quota", q]);
        }
        if let Some(db) = &self.database {
            cmd.env("FERRY_DATABASE_URL", &db.url);
        }
        let out = run_with_stdin(cmd, &format!("{password}\n"));
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `ferryd <args> --config <this server's config>` (e.g.
    /// `["user", "set", "alice", "--max-entries", "5"]`), with `stdin`.
    pub fn ferryd(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(bin("ferryd"));
        cmd.args(args).arg("--config").arg(&self.config);
        if let Some(db) = &self.database {
            cmd.env("FERRY_DATABASE_URL", &db.url);
        }
        run_with_stdin(cmd, stdin)
    }

    /// Runs the real `ferry` binary as `user` with `args`.
    pub fn ferry(&self, user: &str, password: &str, args: &[&str]) -> Output {
        self.ferry_command(user, password, args)
            .output()
            .expect("run ferry")
    }

    /// The `ferry` command of [`Server::ferry`], to spawn (and kill).
    pub fn ferry_command(&self, user: &str, password: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("ferry"));
        cmd.args(["-s", &self.addr.to_string(), "-u", user])
            .args(self.trust_args())
            .args(args)
            .env("FERRY_KNOWN_SERVERS", self.known_servers())
            .env("FERRY_PASSWORD", password)
            .env_remove("FERRY_SERVER")
            .env_remove("FERRY_ACCESS_KEY")
            .stdin(Stdio::null());
        cmd
    }

    /// Connection options for a user.
    pub fn options(&self, user: &str, password: &str) -> ConnectOptions {
        let mut opts = ConnectOptions::new(self.addr.to_string(), user, password);
        opts.security = match &self.fingerprint {
            Some(fp) => Security::Tls(TlsOptions {
                fingerprint: Some(fp.clone()),
                ..Default::default()
            }),
            None => Security::InsecurePlaintext,
        };
        opts
    }

    /// Logs in with the client library.
    pub async fn client(&self, user: &str, password: &str) -> Result<Client, ClientError> {
        connect(&self.options(user, password)).await
    }

    /// Kills ferryd with SIGKILL and starts it again on a new port.
    pub fn restart_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr) = spawn(&self.config, &self.database);
        self.child = child;
        self.addr = addr;
    }

    /// Kills ferryd with SIGKILL and starts it again on the same address
    /// (clients that remember the address can reconnect).
    pub fn restart_hard_same_port(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr) = spawn_at(&self.config, &self.addr.to_string(), &self.database);
        self.child = child;
        self.addr = addr;
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited 0.
    pub fn stop(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// ferryd's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// ferryd's memory now and at its peak, in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("ferryd's /proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .expect("memory field")
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what ferryd said (its log goes with the
        // temporary root): the client's message alone often names only
        // the kind of error, not its cause.
        if std::thread::panicking() {
            let path = self.root.path().join("ferryd.log");
            let log =
                String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "--- the last {} lines of ferryd.log:\n{}",
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// ferryd's log goes to `ferryd.log` beside its config (appended across
/// restarts), so test output stays readable and the log stays inspectable.
fn log_file(config: &Path) -> Stdio {
    let path = config.with_file_name("ferryd.log");
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::null(),
    }
}

fn spawn(config: &Path, database: &Option<TestDatabase>) -> (Child, SocketAddr) {
    spawn_at(config, "127.0.0.1:0", database)
}

fn spawn_at(config: &Path, listen: &str, database: &Option<TestDatabase>) -> (Child, SocketAddr) {
    let mut cmd = Command::new(bin("ferryd"));
    cmd.args(["serve", "--listen", listen, "--config"])
        .arg(config);
    if let Some(db) = database {
        cmd.args(["--database", &db.url]);
    }
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log_file(config))
        .spawn()
        .expect("spawn ferryd");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read listen line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected ferryd output {line:?}"))
        .parse()
        .expect("address");
    (child, addr)
}

/// Runs a command with `input` on stdin.
pub fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The command may exit before reading: a broken pipe is not the failure.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes());
    child.wait_with_output().expect("wait")
}

/// Stdout as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as a string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `size` bytes of deterministic pseudo-random content.
pub fn write_random(path: &Path, size: usize, seed: u64) {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        data.extend_from_slice(&x.wrapping_mul(0x2545F4914F6CDD1D).to_le_bytes());
    }
    data.truncate(size);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, data).expect("write");
}

/// Parses `--json` output: one object per line.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// A TCP proxy on loopback that forwards one connection to `target` and
/// flips one byte at `flip_at` in the server-to-client stream (`downstream`)
/// or the client-to-server stream: a corrupted chunk in transit.
pub async fn corrupting_proxy(target: SocketAddr, downstream: bool, flip_at: u64) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = tokio::net::TcpStream::connect(target).await else {
            return;
        };
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        async fn pump(
            r: &mut tokio::net::tcp::OwnedReadHalf,
            w: &mut tokio::net::tcp::OwnedWriteHalf,
            flip: Option<u64>,
        ) {
            let mut buf = vec![0u8; 64 * 1024];
            let mut pos = 0u64;
            loop {
                let n = match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Some(at) = flip {
                    if at >= pos && at < pos + n as u64 {
                        buf[(at - pos) as usize] ^= 0x55;
                    }
                }
                pos += n as u64;
                if w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = w.shutdown().await;
        }
        let up = pump(&mut cr, &mut sw, (!downstream).then_some(flip_at));
        let down = pump(&mut sr, &mut cw, downstream.then_some(flip_at));
        tokio::join!(up, down);
    });
    addr
}

/// A TCP load balancer on loopback, as HAProxy in `mode tcp` with
/// `send-proxy-v2`: every connection to the address returned is forwarded
/// to `target` from the address `from` (a loopback alias), after a PROXY
/// protocol v2 header naming `client` as the source (a LOCAL header, as
/// for a health check, when None). The header is built here by hand from
/// the specification, not by the server's code.
pub async fn balancer(
    target: SocketAddr,
    from: std::net::IpAddr,
    client: Option<std::net::SocketAddrV4>,
) -> SocketAddr {
    use tokio::io::AsyncWriteExt;
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    match client {
        None => header.extend([0x20, 0x00, 0, 0]),
        Some(c) => {
            let to = match target.ip() {
                std::net::IpAddr::V4(v4) => v4,
                std::net::IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
            };
            // PROXY, TCP over IPv4, 12 bytes of addresses.
            header.extend([0x21, 0x11, 0, 12]);
            header.extend(c.ip().octets());
            header.extend(to.octets());
            header.extend(c.port().to_be_bytes());
            header.extend(target.port().to_be_bytes());
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            let header = header.clone();
            tokio::spawn(async move {
                let socket = match from {
                    std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
                    std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
                };
                let Ok(socket) = socket else { return };
                if socket.bind(SocketAddr::new(from, 0)).is_err() {
                    return;
                }
                let Ok(mut up) = socket.connect(target).await else {
                    return;
                };
                if up.write_all(&header).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            });
        }
    });
    addr
}

/// Waits (up to 10 s) for ferryd's log to hold a line containing all of
/// `parts`; returns the whole log.
pub async fn wait_for_log(server: &Server, parts: &[&str]) -> String {
    let path = server.root.path().join("ferryd.log");
    for _ in 0..200 {
        let log = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
        if log.lines().any(|l| parts.iter().all(|p| l.contains(p))) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(&path).unwrap_or_default();
    panic!("no log line with {parts:?} in:\n{log}");
}

/// Where the client keeps the partial of a download to `target` (its
/// directory is created, so a test can plant a partial there).
pub fn local_partial(target: &Path) -> PathBuf {
    let part = ferry_tui::transfer::local::partial_path(target);
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).expect("partials directory");
    }
    part
}

/// Asserts no file under a final name in `dir` (recursively) differs from
/// the same path under `source`: partial files are the only torn ones.
pub fn assert_no_torn_files(dir: &Path, source: &Path) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let ft = entry.file_type().expect("type");
        if name == ferry_proto::msg::PARTIALS_DIR {
            continue;
        }
        if ft.is_dir() {
            assert_no_torn_files(&p, &source.join(&name));
        } else if ft.is_file() {
            let src = source.join(&name);
            if src.exists() {
                assert_eq!(
                    std::fs::read(&p).expect("read"),
                    std::fs::read(&src).expect("read"),
                    "{} is torn",
                    p.display()
                );
            }
        }
    }
}

/// True when the suite's servers keep homes in object storage
/// (`FERRY_TEST_STORE=s3`).
pub fn on_s3() -> bool {
    std::env::var("FERRY_TEST_STORE").as_deref() == Ok("s3")
}

/// For tests of the disk engine itself (partial files, the file system's
/// limits, what is on disk): true, with a note, when the suite runs on
/// object storage, where the test does not apply; the caller returns.
pub fn disk_only(what: &str) -> bool {
    if on_s3() {
        eprintln!("not on object storage: this test checks {what} on the local disk");
    }
    on_s3()
}
