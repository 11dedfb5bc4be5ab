//! Two ferryd nodes on one root and one PostgreSQL database share each
//! user's quota (parallel uploads through both fit exactly as the quota
//! allows, and what one node frees the other can use) and her uploads in
//! progress (a newer upload of a path through one node takes over from
//! an older one through the other).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use ferry_e2e::Postgres;
use ferry_e2e::{bin, run_with_stdin, write_random, TEST_CONFIG};
use ferry_tui::client::{connect, Client, ConnectOptions, Security, TlsOptions};
use ferry_tui::transfer::{put_paths, Events, Status, TransferOptions};

const PW: &str = "pw";

/// One ferryd node on `config` and `db`; killed when dropped.
struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node(config: &Path, db: &str) -> Node {
    use std::io::BufRead;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_file_name("ferryd.log"))
        .unwrap();
    let mut child = Command::new(bin("ferryd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .args(["--database", db])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    Node { child, addr }
}

fn ferryd(config: &Path, db: &str, args: &[&str], stdin: &str) -> std::process::Output {
    let mut cmd = Command::new(bin("ferryd"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .args(["--database", db]);
    run_with_stdin(cmd, stdin)
}

async fn client(n: &Node, fingerprint: &str) -> Client {
    let mut opts = ConnectOptions::new(n.addr.to_string(), "u", PW);
    opts.security = Security::Tls(TlsOptions {
        fingerprint: Some(fingerprint.to_string()),
        ..Default::default()
    });
    connect(&opts).await.unwrap()
}

/// Two nodes on one root and one database, with user `u` of `quota`.
struct Pair {
    pg: Postgres,
    db: String,
    root: tempfile::TempDir,
    fingerprint: String,
    a: Node,
    b: Node,
}

impl Pair {
    fn start(quota: &str) -> Pair {
        let pg = Postgres::start();
        let db = pg.create_database();
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("ferryd.toml");
        std::fs::write(
            &config,
            format!("root = {:?}\n{TEST_CONFIG}", root.path().join("data")),
        )
        .unwrap();
        let add = ferryd(
            &config,
            &db,
            &["user", "add", "u", "--quota", quota],
            "pw\n",
        );
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let (a, b) = (node(&config, &db), node(&config, &db));
        let fp = ferryd(&config, &db, &["fingerprint"], "");
        let fingerprint = String::from_utf8_lossy(&fp.stdout).trim().to_string();
        Pair {
            pg,
            db,
            root,
            fingerprint,
            a,
            b,
        }
    }

    fn home(&self) -> std::path::PathBuf {
        self.root.path().join("data/home/u")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = (self.a.child.kill(), self.b.child.kill());
        let _ = (self.a.child.wait(), self.b.child.wait());
        self.pg.drop_database(&self.db);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_uploads_through_two_nodes_fit_the_quota_exactly() {
    // 12.5 MiB: four 3 MiB files fit (with the partials' directory), a
    // fifth does not.
    let p = Pair::start("12.5MiB");
    let (ca, cb) = (
        client(&p.a, &p.fingerprint).await,
        client(&p.b, &p.fingerprint).await,
    );
    let local = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..8 {
        let p = local.path().join(format!("f{i}.bin"));
        write_random(&p, 3 << 20, i);
        files.push(p);
    }
    let opts = TransferOptions {
        parallel: 4,
        ..Default::default()
    };
    let (ra, rb) = tokio::join!(
        put_paths(&ca, &files[..4], "/", opts.clone(), Events::none()),
        put_paths(&cb, &files[4..], "/", opts.clone(), Events::none()),
    );
    let reports: Vec<_> = ra.unwrap().into_iter().chain(rb.unwrap()).collect();
    let done = reports.iter().filter(|r| r.status == Status::Done).count();
    assert_eq!(done, 4, "exactly as many as the quota allows: {reports:#?}");
    let stored: u64 = std::fs::read_dir(p.home())
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    assert_eq!(stored, 12 << 20);

    // What node A frees, node B can use: frees reach the store within
    // milliseconds (written behind), so B may have to ask again once.
    let kept = reports
        .iter()
        .find(|r| r.status == Status::Done)
        .map(|r| r.remote.clone())
        .unwrap();
    ca.remove(&kept, ferry_proto::msg::RemoveMode::File)
        .await
        .unwrap();
    let mut tries = 0;
    let again = loop {
        let r = put_paths(&cb, &files[..1], "/again.bin", opts.clone(), Events::none())
            .await
            .unwrap();
        tries += 1;
        if r[0].status == Status::Done || tries == 50 {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(again[0].status, Status::Done, "{again:#?}");
}

/// A client cut off mid-upload through node A (A has not noticed) comes
/// back through node B: B asks A, through the store, to stop the old
/// upload, and resumes from the partial they share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_through_another_node_takes_over_the_old_one() {
    use ferry_e2e::raw::Raw;
    use ferry_proto::{ClientMsg, ErrorKind, Frame, Reply, Request, ServerMsg};
    use futures::SinkExt;

    let p = Pair::start("1GiB");
    let mut old = Raw::connect_to(p.a.addr, Some(&p.fingerprint)).await;
    old.login("u", PW).await.unwrap();
    let size = 4u64 << 20;
    old.send(&ClientMsg::Request {
        id: 1,
        req: Request::PutOpen {
            transfer: 1,
            path: "big.bin".into(),
            size,
            mtime: 0,
            mode: 0o644,
            overwrite: false,
            resume: true,
            eager: false,
        },
    })
    .await;
    let Some(ServerMsg::Response {
        reply: Ok(Reply::PutReady { .. }),
        ..
    }) = old.recv().await
    else {
        panic!("not ready")
    };
    old.send(&ClientMsg::PutStart {
        transfer: 1,
        offset: 0,
    })
    .await;
    // 1 MiB of the file, then silence (a cut the server has not seen).
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("big.bin");
    write_random(&src, size as usize, 7);
    let data = std::fs::read(&src).unwrap();
    for piece in data[..1 << 20].chunks(256 << 10) {
        old.wr
            .send(Frame::Data {
                transfer: 1,
                data: bytes::Bytes::copy_from_slice(piece),
            })
            .await
            .unwrap();
    }

    let cb = client(&p.b, &p.fingerprint).await;
    let put = put_paths(
        &cb,
        std::slice::from_ref(&src),
        "/big.bin",
        TransferOptions::default(),
        Events::none(),
    )
    .await
    .unwrap();
    assert_eq!(put[0].status, Status::Done, "{put:#?}");
    assert_eq!(std::fs::read(p.home().join("big.bin")).unwrap(), data);
    // The old upload was told it was superseded.
    match tokio::time::timeout(std::time::Duration::from_secs(10), old.recv()).await {
        Ok(Some(ServerMsg::Response {
            id: 1,
            reply: Err(e),
        })) => {
            assert_eq!(e.kind, ErrorKind::Cancelled, "{e}")
        }
        other => panic!("the old upload was not stopped: {other:?}"),
    }
}
