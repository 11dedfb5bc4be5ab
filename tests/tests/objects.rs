//! Homes in S3-compatible object storage, against a real SeaweedFS
//! (`tests/src/objects.rs`): files live in the bucket and their names in
//! the database, a cut upload resumes from its last part (on another node
//! too, after a SIGKILL), a verified upload with the wrong bytes leaves
//! nothing behind, the sweeper leaves no blob and no multipart upload, and
//! a store that is down is a clear error that loses nothing.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Stdio;

use futures::SinkExt;
use std::time::{Duration, Instant};

use ferry_e2e::objects::{upload_done, TestStore, S3};
use ferry_e2e::raw::Raw;
use ferry_e2e::switch::SwitchProxy;
use ferry_e2e::{json_lines, stderr, write_random, Cluster, Postgres, Server, TEST_CONFIG};
use ferry_proto::msg::{ClientMsg, Request, ServerMsg};
use ferry_proto::{ErrorKind, Frame, Reply};

const PW: &str = "pw-u";
const DEADLINE: Duration = Duration::from_secs(30);

/// Small parts (the S3 minimum), a quick sweeper with no grace.
const STORE: &str = "part_size_mib = 5\ntrash_grace_secs = 0\nsweep_every_secs = 1\n";

/// A server whose homes are under a fresh prefix of `s3`.
fn server(s3: S3, extra: &str) -> (Server, TestStore) {
    let store = TestStore::new(s3);
    let dir = tempfile::tempdir().unwrap();
    let table = format!("{}{STORE}", store.config(dir.path()));
    let s = Server::start_with(&format!("{extra}\n{table}"));
    // The secret file must outlive the server's start only.
    drop(dir);
    (s, store)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn files_live_in_the_bucket_and_names_in_the_database() {
    let (s, store) = server(S3::start(), "");
    s.add_user("u", PW, Some("100MiB"));
    let local = tempfile::tempdir().unwrap();
    let big = local.path().join("big.bin");
    write_random(&big, 12 << 20, 1);
    std::fs::write(local.path().join("small.txt"), b"hello").unwrap();
    let ok = |args: &[&str]| {
        let o = s.ferry("u", PW, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        o
    };
    ok(&["mkdir", "docs"]);
    ok(&["put", big.to_str().unwrap(), "docs/"]);
    ok(&[
        "put",
        local.path().join("small.txt").to_str().unwrap(),
        "docs/",
    ]);
    assert!(
        !s.home("u").join("docs").exists(),
        "nothing on the local disk"
    );
    assert_eq!(
        store.s3.objects(&store.prefix).len(),
        2,
        "one blob per file"
    );
    assert!(store.s3.pending(&store.prefix).is_empty());
    ok(&["mv", "docs", "d2"]);
    let got = local.path().join("got.bin");
    ok(&["get", "d2/big.bin", got.to_str().unwrap()]);
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&big).unwrap());
    let ls = String::from_utf8_lossy(&ok(&["ls", "d2"]).stdout).to_string();
    assert!(ls.contains("big.bin") && ls.contains("small.txt"), "{ls}");
    let q = json_lines(&ok(&["--json", "quota"]));
    assert_eq!(q[0]["used"], (12u64 << 20) + 5 + 4096);
    // ferryd measures the namespace, not a home on disk.
    let o = s.ferryd(&["user", "list"], "");
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    let line = list
        .lines()
        .find(|l| l.starts_with("u "))
        .unwrap_or_default();
    assert!(
        line.split_whitespace().any(|w| w == "3"),
        "3 entries: {list}"
    );
    ok(&["rm", "-r", "d2"]);
    wait_until("the sweeper deletes the removed files' blobs", || {
        store.s3.objects(&store.prefix).is_empty()
    });
}

#[test]
fn a_cut_upload_resumes_from_its_last_part() {
    let (s, store) = server(S3::start(), "");
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("big.bin");
    let size = 16 << 20;
    write_random(&src, size, 2);
    let mut put = s
        .ferry_command(
            "u",
            PW,
            &["put", src.to_str().unwrap(), "--limit-rate", "2MiB"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Two parts (10 MiB) at 2 MiB/s, and some slack.
    std::thread::sleep(Duration::from_secs(7));
    put.kill().unwrap();
    put.wait().unwrap();
    assert_eq!(store.s3.pending(&store.prefix).len(), 1, "the upload waits");
    let o = s.ferry("u", PW, &["--json", "put", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = json_lines(&o)[0]["resumed_from"].as_u64().unwrap();
    assert!(
        resumed >= 5 << 20 && resumed % (5 << 20) == 0,
        "resumed from {resumed}: a part boundary"
    );
    let got = local.path().join("got.bin");
    let o = s.ferry("u", PW, &["get", "big.bin", got.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&src).unwrap());
    assert!(store.s3.pending(&store.prefix).is_empty());
    assert_eq!(store.s3.objects(&store.prefix).len(), 1);
}

/// An upload whose bytes do not match the sender's SHA-256 is aborted:
/// no name, no blob, no multipart upload left.
#[tokio::test(flavor = "multi_thread")]
async fn a_mismatched_upload_leaves_nothing() {
    let (s, store) = server(S3::start(), "");
    s.add_user("u", PW, None);
    let mut raw = Raw::connect(&s).await;
    raw.login("u", PW).await.unwrap();
    let size = 6u64 << 20;
    raw.send(&ClientMsg::Request {
        id: 1,
        req: Request::PutOpen {
            transfer: 1,
            path: "/x.bin".into(),
            size,
            mtime: 0,
            mode: 0o644,
            overwrite: false,
            resume: true,
            eager: false,
        },
    })
    .await;
    match raw.recv().await {
        Some(ServerMsg::Response {
            reply: Ok(Reply::PutReady { .. }),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    raw.send(&ClientMsg::PutStart {
        transfer: 1,
        offset: 0,
    })
    .await;
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..6 {
        let data = Frame::Data {
            transfer: 1,
            data: chunk.clone().into(),
        };
        raw.wr.send(data).await.unwrap();
    }
    raw.send(&ClientMsg::TransferEnd {
        transfer: 1,
        sha256: [0; 32],
    })
    .await;
    match raw.recv().await {
        Some(ServerMsg::Response { reply: Err(e), .. }) => {
            assert_eq!(e.kind, ErrorKind::IntegrityFailed, "{e}")
        }
        other => panic!("{other:?}"),
    }
    let o = s.ferry("u", PW, &["ls", "/"]);
    assert!(String::from_utf8_lossy(&o.stdout).trim().is_empty());
    assert!(store.s3.pending(&store.prefix).is_empty(), "aborted");
    wait_until("no blob is left", || {
        store.s3.objects(&store.prefix).is_empty()
    });
}

/// `ferryd serve` with `[store]` table `table`: its exit status and what
/// it said, or None if it was still running after 60 s (then killed).
fn serve_once(table: &str) -> Option<(std::process::ExitStatus, String)> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferryd.toml");
    std::fs::write(
        &config,
        format!("root = {:?}\n{TEST_CONFIG}{table}", dir.path().join("data")),
    )
    .unwrap();
    let mut child = std::process::Command::new(ferry_e2e::bin("ferryd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            let o = child.wait_with_output().unwrap();
            let said = format!("{}{}", ferry_e2e::stdout(&o), stderr(&o));
            return Some((o.status, said));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// ferryd does not start on a store it cannot use, and says why: one
/// that is down (a proxy in front of it cut; a port where nothing
/// listens) and one that refuses the credentials (the real store, a
/// wrong secret key).
#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_is_down_or_refuses_the_credentials_stops_ferryd() {
    let store = TestStore::new(S3::start());
    let dir = tempfile::tempdir().unwrap();
    let cut = SwitchProxy::start_cut(store.s3.endpoint_addr());
    // A port held by a socket that is bound but does not listen: nothing
    // else can take it, and connecting to it is refused.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let nobody = format!("http://{}", closed.local_addr().unwrap());
    let cases = [
        (
            "a cut proxy",
            Some(cut.url()),
            None,
            "error sending request",
        ),
        ("a closed port", Some(nobody), None, "Connection refused"),
        ("a wrong secret", None, Some("not-the-secret-key"), "403"),
    ];
    for (what, endpoint, secret, reason) in cases {
        let table = store.config_with(dir.path(), endpoint.as_deref(), secret);
        let (status, said) = tokio::task::spawn_blocking(move || serve_once(&table))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: ferryd still running after 60 s"));
        assert!(!status.success(), "{what}: ferryd started: {said}");
        assert!(
            !said.contains("listening on"),
            "{what}: ferryd listened: {said}"
        );
        assert!(
            said.contains("cannot open the object store") && said.contains(reason),
            "{what}: no clear reason: {said}"
        );
    }
    // The same store, through the proxy restored: ferryd starts.
    cut.restore();
    let table = store.config_with(dir.path(), Some(&cut.url()), None);
    let s = Server::start_with(&format!("{table}{STORE}"));
    s.add_user("u", PW, None);
    let o = s.ferry("u", PW, &["ls", "/"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A server whose store is reached through a [`SwitchProxy`] (forwarding).
fn server_via_proxy() -> (Server, TestStore, SwitchProxy, tempfile::TempDir) {
    let store = TestStore::new(S3::start());
    let proxy = SwitchProxy::start(store.s3.endpoint_addr());
    let dir = tempfile::tempdir().unwrap();
    let table = store.config_with(dir.path(), Some(&proxy.url()), None);
    let s = Server::start_with(&format!("{table}{STORE}"));
    (s, store, proxy, dir)
}

/// The store lost while serving: a listing still answers (the namespace
/// is in the database), an upload is refused with a clear error and
/// nothing appears; the store back, the same upload works.
#[test]
fn a_store_that_is_down_is_a_clear_error() {
    let (s, store, proxy, _dir) = server_via_proxy();
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f.bin");
    write_random(&src, 12 << 20, 3);
    let small = local.path().join("small.txt");
    std::fs::write(&small, b"small").unwrap();
    proxy.cut();
    let o = s.ferry("u", PW, &["ls", "/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [&src, &small] {
        let o = s.ferry(
            "u",
            PW,
            &["--busy-timeout", "0", "put", f.to_str().unwrap()],
        );
        assert!(!o.status.success(), "put without a store");
        assert!(
            stderr(&o).contains("object store is unavailable"),
            "{}",
            stderr(&o)
        );
    }
    let o = s.ferry("u", PW, &["ls", "/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        ferry_e2e::stdout(&o).trim().is_empty(),
        "nothing appears: {}",
        ferry_e2e::stdout(&o)
    );
    proxy.restore();
    for f in [&src, &small] {
        let o = s.ferry("u", PW, &["put", f.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let got = local.path().join("got.bin");
    let o = s.ferry("u", PW, &["get", "f.bin", got.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&src).unwrap());
    assert!(store.s3.pending(&store.prefix).is_empty());
}

/// Two nodes behind HAProxy on one database and one bucket: node A is
/// killed (SIGKILL) in the middle of an upload; the upload resumes through
/// node B from A's last part and ends byte-identical.
#[test]
fn an_upload_cut_on_one_node_resumes_on_the_other() {
    let store = TestStore::new(S3::start());
    let dir = tempfile::tempdir().unwrap();
    let database = format!(
        "heartbeat_ms = 200\nnode_expiry_secs = 2\n{}{STORE}",
        store.config(dir.path())
    );
    let mut c = Cluster::start_on(Postgres::start(), 2, "", &database);
    c.add_user("u", PW);
    let local = tempfile::tempdir().unwrap();
    let size = 16 << 20;
    let src = local.path().join("big.bin");
    write_random(&src, size, 4);
    let mut put = c
        .ferry_command(
            c.via(0),
            "u",
            PW,
            &["put", src.to_str().unwrap(), "--limit-rate", "2MiB"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(7));
    c.nodes[0].kill();
    let _ = put.wait();
    let o = c.ferry(c.via(1), "u", PW, &["--json", "put", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = json_lines(&o)[0]["resumed_from"].as_u64().unwrap();
    assert!(
        resumed >= 5 << 20 && resumed % (5 << 20) == 0,
        "resumed from {resumed}: a part boundary A finished"
    );
    let got = local.path().join("got.bin");
    let o = c.ferry(
        c.via(1),
        "u",
        PW,
        &["get", "big.bin", got.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&src).unwrap());
    assert!(store.s3.pending(&store.prefix).is_empty());
}

/// A directory of 10,000 files renamed while another session lists it
/// (in batches of 100) again and again, by its old and its new name:
/// every listing shows all 10,000 or fails (gone, or "moved while
/// listed"), never some of them.
#[tokio::test(flavor = "multi_thread")]
async fn a_directory_of_ten_thousand_files_moves_at_once() {
    let (s, _store) = server(S3::start(), "");
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("d");
    std::fs::create_dir(&tree).unwrap();
    for i in 0..10_000 {
        std::fs::File::create(tree.join(format!("f{i:05}"))).unwrap();
    }
    let o = s.ferry("u", PW, &["put", "-r", tree.to_str().unwrap(), "/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lister = s.client("u", PW).await.unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = {
        let done = done.clone();
        tokio::spawn(async move {
            let (mut full, mut refused) = (0, 0);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for dir in ["/d", "/e"] {
                    match lister.list(dir).await {
                        Ok(all) => {
                            assert_eq!(all.len(), 10_000, "{dir} listed half moved");
                            full += 1;
                        }
                        Err(e) => {
                            let kind = e.kind();
                            assert!(
                                matches!(kind, Some(ErrorKind::NotFound | ErrorKind::TooBusy)),
                                "{e}"
                            );
                            refused += 1;
                        }
                    }
                }
            }
            (full, refused)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let o = tokio::task::spawn_blocking({
        let f = s.ferry_command("u", PW, &["mv", "d", "e"]);
        move || {
            let mut f = f;
            f.output().unwrap()
        }
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (full, refused) = watch.await.unwrap();
    assert!(
        full >= 2 && refused >= 1,
        "{full} full listings, {refused} refused"
    );
}

/// One volume server of a replicated cluster killed: downloads go on
/// from the other copy.
#[test]
fn downloads_go_on_with_a_volume_server_down() {
    let s3 = S3::start_own("cluster");
    let (s, store) = server(s3, "");
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f.bin");
    write_random(&src, 12 << 20, 5);
    let o = s.ferry("u", PW, &["put", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    store.s3.kill("volume2");
    let got = local.path().join("got.bin");
    let o = s.ferry("u", PW, &["get", "f.bin", got.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&src).unwrap());
}

/// The store lost in the middle of an upload, after its first part: the
/// client fails with the store's reason and nothing appears under the
/// name; once the store is back, the same put resumes from the last part
/// done (not from zero) and ends byte-identical.
#[test]
fn a_store_lost_mid_upload_keeps_the_upload_resumable() {
    let (s, store, proxy, _dir) = server_via_proxy();
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("big.bin");
    write_random(&src, 16 << 20, 6);
    let put = s
        .ferry_command(
            "u",
            PW,
            &[
                "--busy-timeout",
                "0",
                "put",
                src.to_str().unwrap(),
                "--limit-rate",
                "2MiB",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first part (5 MiB) is stored and recorded.
    wait_until("the first part is stored", || {
        upload_done(&s, "u", "/big.bin") >= 5 << 20
    });
    proxy.cut();
    let o = put.wait_with_output().unwrap();
    assert!(
        !o.status.success(),
        "the put cannot finish without the store"
    );
    assert!(
        stderr(&o).contains("object store is unavailable"),
        "{}",
        stderr(&o)
    );
    let o = s.ferry("u", PW, &["ls", "/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        ferry_e2e::stdout(&o).trim().is_empty(),
        "nothing under the name: {}",
        ferry_e2e::stdout(&o)
    );
    proxy.restore();
    let o = s.ferry("u", PW, &["--json", "put", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = json_lines(&o)[0]["resumed_from"].as_u64().unwrap();
    assert!(
        resumed >= 5 << 20 && resumed % (5 << 20) == 0,
        "resumed from {resumed}: the end of a part done"
    );
    let got = local.path().join("got.bin");
    let o = s.ferry("u", PW, &["get", "big.bin", got.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&src).unwrap());
    assert!(store.s3.pending(&store.prefix).is_empty());
    assert_eq!(store.s3.objects(&store.prefix).len(), 1);
}

/// An upload abandoned after some parts is aborted by the sweeper once
/// stale: no multipart upload and no blob are left, and its bytes no
/// longer count.
#[test]
fn the_sweeper_aborts_abandoned_uploads() {
    let store = TestStore::new(S3::start());
    let dir = tempfile::tempdir().unwrap();
    let table = format!("{}{STORE}stale_upload_secs = 9\n", store.config(dir.path()));
    let s = Server::start_with(&table);
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("big.bin");
    write_random(&src, 16 << 20, 8);
    let mut put = s
        .ferry_command(
            "u",
            PW,
            &["put", src.to_str().unwrap(), "--limit-rate", "2MiB"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(7));
    put.kill().unwrap();
    put.wait().unwrap();
    assert_eq!(store.s3.pending(&store.prefix).len(), 1);
    // stale_upload_secs is 9 in this server's config (above): later
    // sweeps abort it.
    wait_until("the sweeper aborts the abandoned upload", || {
        store.s3.pending(&store.prefix).is_empty()
    });
    assert!(store.s3.objects(&store.prefix).is_empty());
    let q = json_lines(&s.ferry("u", PW, &["--json", "quota"]));
    assert_eq!(q[0]["used"], 0, "{q:?}");
}

/// Two nodes on one database and one bucket: two 12 MiB uploads of one
/// user through different nodes at once, under a 20 MiB quota: exactly
/// one fits.
#[test]
fn the_quota_holds_across_nodes() {
    let store = TestStore::new(S3::start());
    let dir = tempfile::tempdir().unwrap();
    let database = format!("{}{STORE}", store.config(dir.path()));
    let c = Cluster::start_on(Postgres::start(), 2, "", &database);
    c.add_user("u", PW);
    let o = c.ferryd(&["user", "quota", "u", "20MiB"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let local = tempfile::tempdir().unwrap();
    let (a, b) = (local.path().join("a.bin"), local.path().join("b.bin"));
    write_random(&a, 12 << 20, 9);
    write_random(&b, 12 << 20, 10);
    let puts: Vec<_> = [(0, &a), (1, &b)]
        .into_iter()
        .map(|(i, f)| {
            c.ferry_command(c.via(i), "u", PW, &["put", f.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = puts
        .into_iter()
        .map(|p| p.wait_with_output().unwrap())
        .collect();
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        ok,
        1,
        "exactly one fits: {:?}",
        outs.iter().map(stderr).collect::<Vec<_>>()
    );
    let refused = outs.iter().find(|o| !o.status.success()).unwrap();
    assert!(stderr(refused).contains("quota"), "{}", stderr(refused));
}

/// A blob nobody names (a node died between storing and naming it) is
/// collected only once older than any upload may take: a younger one may
/// be a small file's blob on its way to its name (with the trash's grace
/// alone, 0 s here, the sweeper once deleted 8 of 1,000 such blobs under
/// their names).
#[test]
fn unnamed_blobs_are_collected_only_when_no_upload_can_still_name_them() {
    let store = TestStore::new(S3::start());
    let dir = tempfile::tempdir().unwrap();
    let table = format!("{}{STORE}stale_upload_secs = 6\n", store.config(dir.path()));
    let s = Server::start_with(&table);
    s.add_user("u", PW, None);
    let key = format!("{}/u/0123456789abcdef0123456789abcdef", store.prefix);
    store.s3.put_object(&key, b"on its way");
    // Several sweeps (every second, no grace): still there.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(store.s3.objects(&store.prefix), vec![key.clone()]);
    // Older than stale_upload_secs: collected.
    wait_until("the orphan is collected", || {
        store.s3.objects(&store.prefix).is_empty()
    });
}
