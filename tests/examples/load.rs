//! Load and abuse driver for `tests/bench/load.sh`: many honest clients at
//! once, many idle sessions, hostile sessions of one user, and a victim
//! that times ordinary work. Not a test: it prints figures, the script
//! measures ferryd's memory around it.
//!
//! Usage:
//!   load honest ADDR CLIENTS SIZE      users load0.. each put+get+ls own file
//!   load idle ADDR SESSIONS SECS       sessions of users load0.. held idle
//!   load victim ADDR USER BIGFILE      ls, 1 KiB put, BIGFILE put (ms)
//!   load hostile ADDR USER SECS        16 hostile sessions of USER
//!   load checksums ADDR USER SECS      16 sessions of USER asking checksums
//!   load strangers ADDR SOURCE SECS    1,000 silent + 1,000 trickling sockets
//!
//! Environment: FERRY_PASSWORD (every user's), FERRY_FINGERPRINT (TLS,
//! pinned; plaintext without it), LOAD_USERS (users to spread honest and
//! idle clients over; default one per client).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use ferry_e2e::raw::Raw;
use ferry_proto::msg::Request;
use ferry_proto::{ClientMsg, Frame};
use ferry_tui::client::{connect, BusyRetry, Client, ConnectOptions, Security, TlsOptions};
use ferry_tui::transfer::{get_paths, put_paths, Conflict, Events, Status, TransferOptions};
use futures::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

struct Target {
    addr: SocketAddr,
    fingerprint: Option<String>,
    password: String,
}

impl Target {
    fn from_env(addr: &str) -> anyhow::Result<Target> {
        Ok(Target {
            addr: addr.parse().context("ADDR must be host:port")?,
            fingerprint: std::env::var("FERRY_FINGERPRINT").ok(),
            password: std::env::var("FERRY_PASSWORD").context("FERRY_PASSWORD")?,
        })
    }

    fn options(&self, user: &str) -> ConnectOptions {
        let mut opts = ConnectOptions::new(self.addr.to_string(), user, &self.password);
        // As the CLI does: a server that turns a connection away as busy
        // (all 1,000 clients come from one address here) is waited out.
        opts.busy = BusyRetry::for_up_to(Duration::from_secs(120));
        opts.security = match &self.fingerprint {
            Some(fp) => Security::Tls(TlsOptions {
                fingerprint: Some(fp.clone()),
                ..Default::default()
            }),
            None => Security::InsecurePlaintext,
        };
        opts
    }

    async fn client(&self, user: &str) -> anyhow::Result<Client> {
        Ok(connect(&self.options(user)).await?)
    }

    async fn raw(&self, user: &str) -> Raw {
        let mut raw = Raw::connect_to(self.addr, self.fingerprint.as_deref()).await;
        if raw.login(user, &self.password).await.is_err() {
            panic!("hostile login refused");
        }
        raw
    }
}

fn users() -> Option<usize> {
    std::env::var("LOAD_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
}

fn user_of(i: usize) -> String {
    match users() {
        Some(n) if n > 0 => format!("load{}", i % n),
        _ => format!("load{i}"),
    }
}

fn sha(path: &Path) -> anyhow::Result<[u8; 32]> {
    Ok(Sha256::digest(std::fs::read(path)?).into())
}

fn write_content(path: &Path, size: usize, seed: u64) -> anyhow::Result<()> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut buf = Vec::with_capacity(size);
    while buf.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.extend_from_slice(&x.to_le_bytes());
    }
    buf.truncate(size);
    std::fs::write(path, buf)?;
    Ok(())
}

fn all_done(reports: &[ferry_tui::transfer::FileReport]) -> bool {
    !reports.is_empty() && reports.iter().all(|r| r.status == Status::Done)
}

fn overwrite() -> TransferOptions {
    TransferOptions {
        on_conflict: Conflict::Overwrite,
        ..Default::default()
    }
}

/// One honest client: its own file up, back down, listed; same SHA-256.
async fn honest_one(t: &Target, i: usize, dir: &Path, size: usize) -> anyhow::Result<()> {
    let src = dir.join(format!("src{i}"));
    let back = dir.join(format!("back{i}"));
    write_content(&src, size, i as u64)?;
    let client = t.client(&user_of(i)).await?;
    let name = format!("/load-{i}.bin");
    let up = put_paths(
        &client,
        std::slice::from_ref(&src),
        &name,
        overwrite(),
        Events::none(),
    )
    .await?;
    if !all_done(&up) {
        bail!("put: {up:?}");
    }
    let down = get_paths(
        &client,
        std::slice::from_ref(&name),
        &back,
        overwrite(),
        Events::none(),
    )
    .await?;
    if !all_done(&down) {
        bail!("get: {down:?}");
    }
    let listed = client.list("/").await?;
    if !listed.iter().any(|e| format!("/{}", e.name) == name) {
        bail!("ls does not show {name}");
    }
    if sha(&src)? != sha(&back)? {
        bail!("SHA-256 differs after the round trip");
    }
    client.close().await;
    Ok(())
}

async fn honest(t: Arc<Target>, clients: usize, size: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let t = t.clone();
        let dir = dir.path().to_path_buf();
        tasks.push(tokio::spawn(async move {
            let begun = Instant::now();
            let r = honest_one(&t, i, &dir, size).await;
            (r, begun.elapsed())
        }));
    }
    let (mut ok, mut times) = (0usize, Vec::with_capacity(clients));
    for task in tasks {
        match task.await {
            Ok((Ok(()), took)) => {
                ok += 1;
                times.push(took.as_secs_f64());
            }
            Ok((Err(e), _)) => eprintln!("[load] client failed: {e:#}"),
            Err(e) => eprintln!("[load] client panicked: {e}"),
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 - 1.0) * p) as usize)
            .copied()
    };
    println!(
        "ok={ok} clients={clients} wall_s={:.2} p50_s={:.2} max_s={:.2}",
        start.elapsed().as_secs_f64(),
        pct(0.5).unwrap_or(f64::NAN),
        pct(1.0).unwrap_or(f64::NAN)
    );
    if ok != clients {
        std::process::exit(1);
    }
    Ok(())
}

async fn idle(t: Arc<Target>, sessions: usize, secs: u64) -> anyhow::Result<()> {
    let mut held = Vec::with_capacity(sessions);
    for chunk in (0..sessions).collect::<Vec<_>>().chunks(50) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let t = t.clone();
            tasks.push(tokio::spawn(async move { t.client(&user_of(i)).await }));
        }
        for task in tasks {
            held.push(task.await??);
        }
    }
    println!("ready sessions={}", held.len());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let alive = held.iter().filter(|c| c.closed_reason().is_none()).count();
    println!("alive={alive}");
    Ok(())
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times what a user does while others may be attacking: `ls`, a 1 KiB
/// put and a large put, three rounds each, medians in ms.
async fn victim(t: Arc<Target>, user: &str, big: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let small = dir.path().join("small");
    write_content(&small, 1024, 7)?;
    let client = t.client(user).await?;
    let (mut ls, mut put_small, mut put_big) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let s = Instant::now();
        client.list("/").await?;
        ls.push(s.elapsed().as_secs_f64() * 1000.0);
        let s = Instant::now();
        let r = put_paths(
            &client,
            std::slice::from_ref(&small),
            &format!("/small-{round}"),
            overwrite(),
            Events::none(),
        )
        .await?;
        if !all_done(&r) {
            bail!("small put: {r:?}");
        }
        put_small.push(s.elapsed().as_secs_f64() * 1000.0);
        let s = Instant::now();
        let r = put_paths(
            &client,
            &[big.to_path_buf()],
            "/big",
            overwrite(),
            Events::none(),
        )
        .await?;
        if !all_done(&r) {
            bail!("big put: {r:?}");
        }
        put_big.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "ls_ms={:.1} put1k_ms={:.1} putbig_ms={:.1}",
        median_ms(ls),
        median_ms(put_small),
        median_ms(put_big)
    );
    client.close().await;
    Ok(())
}

/// One hostile session's attack, repeated until the deadline (the server
/// may close the connection: that is a defence working, so reconnect).
async fn attack(t: Arc<Target>, user: String, kind: usize, until: Instant, sent: Arc<AtomicU64>) {
    while Instant::now() < until {
        let t2 = t.clone();
        let user2 = user.clone();
        let sent2 = sent.clone();
        let task = tokio::spawn(async move {
            let mut raw = t2.raw(&user2).await;
            attack_once(&mut raw, kind, until, &sent2).await;
        });
        let left = until.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, task).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn put_open(id: u32, transfer: u32, path: String, size: u64, eager: bool) -> ClientMsg {
    ClientMsg::Request {
        id,
        req: Request::PutOpen {
            transfer,
            path,
            size,
            mtime: 0,
            mode: 0o644,
            overwrite: true,
            resume: false,
            eager,
        },
    }
}

async fn send_data(raw: &mut Raw, transfer: u32, data: Bytes) {
    let _ = raw.wr.send(Frame::Data { transfer, data }).await;
}

/// The attacks of issue 12, none of which reads a reply.
async fn attack_once(raw: &mut Raw, kind: usize, until: Instant, sent: &AtomicU64) {
    let chunk = Bytes::from(vec![0x5au8; 1 << 20]);
    match kind % 5 {
        // Listings of a large directory, never read.
        0 => {
            for id in 0..64 {
                let req = Request::List {
                    path: "/many".into(),
                };
                raw.send(&ClientMsg::Request { id, req }).await;
            }
        }
        // Uploads opened and never started.
        1 => {
            for id in 0..64 {
                raw.send(&put_open(id, id, format!("/never-{id}"), 1 << 30, false))
                    .await;
            }
        }
        // Small uploads sent without their end.
        2 => {
            for id in 0..256 {
                raw.send(&put_open(id, id, format!("/noend-{id}"), 1 << 20, true))
                    .await;
                send_data(raw, id, chunk.clone()).await;
                sent.fetch_add(1 << 20, Ordering::Relaxed);
            }
        }
        // Empty uploads whose replies are never read.
        3 => {
            let mut id = 0u32;
            while Instant::now() < until {
                raw.send(&put_open(id, id, format!("/empty-{}", id % 1000), 0, true))
                    .await;
                raw.send(&ClientMsg::TransferEnd {
                    transfer: id,
                    sha256: Sha256::digest(b"").into(),
                })
                .await;
                id = id.wrapping_add(1);
            }
        }
        // Deep directories, as deep as the server lets them be.
        _ => {
            let mut path = String::new();
            for level in 0..4096 {
                path.push_str("/d");
                let req = Request::Mkdir {
                    path: format!("/deep{path}"),
                    parents: true,
                };
                raw.send(&ClientMsg::Request { id: level, req }).await;
            }
        }
    }
    let left = until.saturating_duration_since(Instant::now());
    tokio::time::sleep(left).await;
}

async fn hostile(t: Arc<Target>, user: &str, secs: u64) -> anyhow::Result<()> {
    // A directory for the listing attack: 10,000 entries.
    let client = t.client(user).await?;
    if client.stat("/many").await.is_err() {
        client.mkdir("/many", false).await?;
        let dir = tempfile::tempdir()?;
        for i in 0..10_000 {
            std::fs::write(
                dir.path().join(format!("entry-with-a-longish-name-{i:05}")),
                b"",
            )?;
        }
        let src: Vec<PathBuf> = vec![dir.path().to_path_buf()];
        let opts = TransferOptions {
            recursive: true,
            ..overwrite()
        };
        put_paths(&client, &src, "/many-src", opts, Events::none()).await?;
        client.rename("/many-src", "/many/x", false).await.ok();
    }
    client.close().await;
    let until = Instant::now() + Duration::from_secs(secs);
    let sent = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..16)
        .map(|k| tokio::spawn(attack(t.clone(), user.to_string(), k, until, sent.clone())))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    println!(
        "hostile_done bytes_sent_unended={}",
        sent.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Red-team F10: 16 sessions of one user, each keeping 64 checksums of a
/// 64 MiB file in flight (asking again as answers come), until `secs`.
async fn checksums(t: Arc<Target>, user: &str, secs: u64) -> anyhow::Result<()> {
    let client = t.client(user).await?;
    if client.stat("/sum64").await.is_err() {
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("sum64");
        write_content(&src, 64 << 20, 64)?;
        let r = put_paths(&client, &[src], "/sum64", overwrite(), Events::none()).await?;
        if !all_done(&r) {
            bail!("put of the file to hash: {r:?}");
        }
    }
    client.close().await;
    let until = Instant::now() + Duration::from_secs(secs);
    let answered = Arc::new(AtomicU64::new(0));
    let ask = |id: u32| ClientMsg::Request {
        id,
        req: Request::Checksum {
            path: "/sum64".into(),
            offset: 0,
            length: None,
        },
    };
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (t, user, answered) = (t.clone(), user.to_string(), answered.clone());
            tokio::spawn(async move {
                let mut raw = t.raw(&user).await;
                for id in 1..=64 {
                    raw.send(&ask(id)).await;
                }
                let mut id = 64;
                while Instant::now() < until {
                    let left = until.saturating_duration_since(Instant::now());
                    match tokio::time::timeout(left, raw.rd.next()).await {
                        Ok(Some(Ok(_))) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                            id += 1;
                            raw.send(&ask(id)).await;
                        }
                        _ => break,
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    println!(
        "checksums_done answered={}",
        answered.load(Ordering::Relaxed)
    );
    Ok(())
}

/// A stranger from `source`: 1,000 sockets that say nothing and 1,000 that
/// send one byte a second, never logging in.
async fn strangers(t: Arc<Target>, source: &str, secs: u64) -> anyhow::Result<()> {
    let source: std::net::IpAddr = source.parse().context("SOURCE must be an IP address")?;
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let addr = t.addr;
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let sock = match tokio::net::TcpSocket::new_v4() {
                    Ok(s) => s,
                    Err(_) => return,
                };
                if sock.bind(SocketAddr::new(source, 0)).is_err() {
                    return;
                }
                let Ok(mut stream) = sock.connect(addr).await else {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                };
                loop {
                    if Instant::now() >= until {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if i % 2 == 1 && stream.write_all(&[0x16]).await.is_err() {
                        break;
                    }
                    if i % 2 == 0 {
                        let mut b = [0u8; 1];
                        match tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut b))
                            .await
                        {
                            Ok(Ok(0)) | Ok(Err(_)) => break,
                            _ => {}
                        }
                    }
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    println!("strangers_done");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |s: &str| -> anyhow::Result<u64> {
        s.parse().with_context(|| format!("{s}: not a number"))
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["honest", addr, n, size] => {
            honest(
                Arc::new(Target::from_env(addr)?),
                num(n)? as usize,
                num(size)? as usize,
            )
            .await
        }
        ["idle", addr, n, secs] => {
            idle(
                Arc::new(Target::from_env(addr)?),
                num(n)? as usize,
                num(secs)?,
            )
            .await
        }
        ["victim", addr, user, big] => {
            victim(Arc::new(Target::from_env(addr)?), user, Path::new(big)).await
        }
        ["hostile", addr, user, secs] => {
            hostile(Arc::new(Target::from_env(addr)?), user, num(secs)?).await
        }
        ["checksums", addr, user, secs] => {
            checksums(Arc::new(Target::from_env(addr)?), user, num(secs)?).await
        }
        ["strangers", addr, source, secs] => {
            strangers(Arc::new(Target::from_env(addr)?), source, num(secs)?).await
        }
        _ => bail!("usage: see the top of tests/examples/load.rs"),
    }
}
