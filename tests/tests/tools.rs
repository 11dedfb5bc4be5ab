//! The everyday tools run by the server, through the real `ferry` and
//! ferryd, on the disk and (FERRY_TEST_STORE=s3) in object storage:
//! chmod, cat (byte ranges), hash, cp, find.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use ferry_e2e::objects::{TestStore, S3};
use ferry_e2e::{json_lines, on_s3, stderr, stdout, Server, TEST_CONFIG};
use sha2::{Digest, Sha256};

const PW: &str = "tools pass";

fn server() -> Server {
    let s = Server::start();
    s.add_user("alice", PW, Some("64MiB"));
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn mode_of(s: &Server, path: &str) -> String {
    let o = s.ferry("alice", PW, &["--json", "stat", path]);
    assert!(o.status.success(), "stat {path}: {}", stderr(&o));
    json_lines(&o)[0]["mode"].as_str().unwrap().to_string()
}

#[test]
fn chmod_sets_permission_bits_and_refuses_set_id_bits() {
    let s = server();
    s.files("alice").write("f", b"hello");
    s.files("alice").write("g", b"world");
    s.files("alice").mkdir("d");
    let ok = |args: &[&str]| {
        let o = s.ferry("alice", PW, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        o
    };
    ok(&["chmod", "640", "f", "g"]);
    assert_eq!(mode_of(&s, "f"), "640");
    assert_eq!(mode_of(&s, "g"), "640");
    ok(&["chmod", "0750", "d"]);
    assert_eq!(mode_of(&s, "d"), "750");
    let o = ok(&["--json", "chmod", "604", "f"]);
    assert_eq!(json_lines(&o)[0]["changed"][0], "f");
    assert_eq!(mode_of(&s, "f"), "604");

    // Set-id and sticky bits: refused, nothing changes.
    for mode in ["4755", "2755", "1777"] {
        let o = s.ferry("alice", PW, &["chmod", mode, "f"]);
        assert_eq!(o.status.code(), Some(1), "{mode}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim_end(), "ferry: f: bad request");
        assert_eq!(mode_of(&s, "f"), "604");
    }
    // A mode that would lock the server out of its own entries.
    let o = s.ferry("alice", PW, &["chmod", "200", "f"]);
    assert_eq!(o.status.code(), Some(1));
    let o = s.ferry("alice", PW, &["chmod", "555", "d"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(mode_of(&s, "d"), "750");
    // Every path is tried; the failure sets the status.
    let o = s.ferry("alice", PW, &["chmod", "644", "nope", "g"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope: no such file or directory"));
    assert_eq!(mode_of(&s, "g"), "644");
    // Not an octal mode: a usage error.
    let o = s.ferry("alice", PW, &["chmod", "rwx", "g"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = s.ferry("alice", PW, &["chmod", "755", "/"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn chmod_never_follows_a_symlink() {
    if ferry_e2e::disk_only("symbolic links made behind ferryd's back") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let s = server();
    let outside = s.root.path().join("outside");
    std::fs::write(&outside, "x").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&outside, s.home("alice").join("l")).unwrap();
    let o = s.ferry("alice", PW, &["chmod", "644", "l"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let mode = std::fs::metadata(&outside).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
}

#[test]
fn cat_prints_a_file_by_ranges_and_checks_it() {
    let s = server();
    // Several ranges (1 MiB each) and a short last one.
    let big = random((5 << 20) / 2 + 17, 1);
    s.files("alice").write("big.bin", &big);
    s.files("alice").write("empty", b"");
    s.files("alice").write("dir/small.txt", b"one line\n");
    let o = s.ferry("alice", PW, &["cat", "big.bin"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout == big, "cat printed other bytes");
    let o = s.ferry("alice", PW, &["cat", "/dir/small.txt"]);
    assert_eq!(stdout(&o), "one line\n");
    let o = s.ferry("alice", PW, &["cat", "empty"]);
    assert!(o.status.success() && o.stdout.is_empty());
    let o = s.ferry("alice", PW, &["cat", "dir"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim_end(), "ferry: dir: is a directory");
    let o = s.ferry("alice", PW, &["cat", "nope"]);
    assert_eq!(o.status.code(), Some(1));
}

/// A read asking for more than the cap gets the cap; ranges past the end
/// are empty; the bytes are the file's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ranges_are_capped() {
    let s = server();
    let data = random(3 << 20, 2);
    s.files("alice").write("f", &data);
    let client = s.client("alice", PW).await.unwrap();
    let path = client.resolve("f").unwrap();
    let (got, size) = client.read_range(&path, 0, u32::MAX).await.unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(got.len(), ferry_proto::msg::READ_MAX as usize);
    assert!(got[..] == data[..got.len()]);
    let (got, _) = client.read_range(&path, 12345, 100).await.unwrap();
    assert!(got[..] == data[12345..12445]);
    let end = data.len() as u64;
    let (got, _) = client.read_range(&path, end - 10, 100).await.unwrap();
    assert!(got[..] == data[data.len() - 10..]);
    let (got, _) = client.read_range(&path, end + 5, 100).await.unwrap();
    assert!(got.is_empty());
    client.close().await;
}

#[test]
fn hash_prints_sha256sum_lines() {
    let s = server();
    let a = random(3 << 20, 3);
    s.files("alice").write("a.bin", &a);
    s.files("alice").write("sub/b.txt", b"bee\n");
    let o = s.ferry("alice", PW, &["hash", "a.bin", "sub/b.txt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expect = format!(
        "{}  a.bin\n{}  sub/b.txt\n",
        hex(&Sha256::digest(&a)),
        hex(&Sha256::digest(b"bee\n"))
    );
    assert_eq!(stdout(&o), expect);
    // Again (the server may answer from what it knows): the same.
    let o = s.ferry("alice", PW, &["hash", "a.bin", "sub/b.txt"]);
    assert_eq!(stdout(&o), expect);

    let o = s.ferry("alice", PW, &["--json", "hash", "sub/b.txt", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    let v = &json_lines(&o)[0];
    assert_eq!(v[0]["sha256"], hex(&Sha256::digest(b"bee\n")));
    assert_eq!(v[0]["size"], 4);
    assert_eq!(v[1]["error"]["kind"], "NotFound");
    let o = s.ferry("alice", PW, &["hash", "sub"]);
    assert_eq!(o.status.code(), Some(1));
}

/// A checksum of a byte range hashes exactly those bytes; a range past
/// the end is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_of_ranges() {
    let s = server();
    let data = random(6 << 20, 4);
    s.files("alice").write("f", &data);
    let client = s.client("alice", PW).await.unwrap();
    let path = client.resolve("f").unwrap();
    let (n, sha) = client.checksum_range(&path, 5, Some(10)).await.unwrap();
    assert_eq!((n, sha), (10, Sha256::digest(&data[5..15]).into()));
    let (n, sha) = client.checksum_range(&path, 1 << 20, None).await.unwrap();
    assert_eq!(n, (5 << 20) as u64);
    assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(&data[1 << 20..])));
    let (_, whole) = client.checksum(&path, None).await.unwrap();
    assert_eq!(whole, <[u8; 32]>::from(Sha256::digest(&data)));
    let e = client
        .checksum_range(&path, 6 << 20, Some(1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ferry_proto::ErrorKind::BadRequest));
    client.close().await;
}

/// A file changed behind ferryd's back, even with its size and mtime put
/// back, is hashed again: a whole-file hash is reused only for the same
/// version of the file (its change time is in the key).
#[test]
fn a_changed_file_is_hashed_again() {
    if ferry_e2e::disk_only("files changed behind ferryd's back") {
        return;
    }
    let s = server();
    let at = s.home("alice").join("f");
    std::fs::write(&at, random(1 << 20, 5)).unwrap();
    let first = stdout(&s.ferry("alice", PW, &["hash", "f"]));
    let mtime = std::fs::metadata(&at).unwrap().modified().unwrap();
    let changed = random(1 << 20, 6);
    std::fs::write(&at, &changed).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&at)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let again = stdout(&s.ferry("alice", PW, &["hash", "f"]));
    assert_ne!(first, again);
    assert_eq!(again, format!("{}  f\n", hex(&Sha256::digest(&changed))));
}

/// Small limits for the attack tests.
fn limited(limits: &str) -> Server {
    let s =
        Server::start_with(&TEST_CONFIG.replace("[limits]\n", &format!("[limits]\n{limits}\n")));
    s.add_user("alice", PW, Some("64MiB"));
    s
}

fn usage(s: &Server, user: &str, pw: &str) -> (u64, u64) {
    let o = s.ferry(user, pw, &["--json", "quota"]);
    let v = &json_lines(&o)[0];
    (v["used"].as_u64().unwrap(), v["entries"].as_u64().unwrap())
}

#[test]
fn cp_copies_files_and_trees_on_the_server() {
    let s = server();
    let f = s.files("alice");
    let x = random(2 << 20, 7);
    f.write("a/x.bin", &x);
    f.write("a/sub/y.txt", b"why");
    f.write("a/sub/deeper/z.txt", b"zed");
    f.write("a/sub/empty", b"");
    let ok = |args: &[&str]| {
        let o = s.ferry("alice", PW, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        o
    };
    let before = usage(&s, "alice", PW);
    ok(&["cp", "a/x.bin", "x2.bin"]);
    assert!(f.read("x2.bin") == x);
    let after = usage(&s, "alice", PW);
    assert_eq!(after, (before.0 + x.len() as u64, before.1 + 1));

    let o = s.ferry("alice", PW, &["cp", "a", "b"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim_end(), "ferry: a: is a directory");
    let o = ok(&["--json", "cp", "-r", "a", "b"]);
    let v = &json_lines(&o)[0];
    assert_eq!(v["to"], "/b");
    assert_eq!(v["entries"], 7, "{v}");
    assert!(f.read("b/x.bin") == x);
    assert_eq!(f.read_string("b/sub/y.txt"), "why");
    assert_eq!(f.read_string("b/sub/deeper/z.txt"), "zed");
    assert!(f.read("b/sub/empty").is_empty());
    let tree = usage(&s, "alice", PW);
    assert_eq!(tree.1, after.1 + 7);
    assert_eq!(tree.0, after.0 + x.len() as u64 + 6 + 3 * 4096);
    // The copy keeps the files' modes and times.
    ok(&["chmod", "600", "a/sub/y.txt"]);
    ok(&["cp", "a/sub/y.txt", "y2"]);
    let (src, dst) = (
        json_lines(&ok(&["--json", "stat", "a/sub/y.txt"]))[0].clone(),
        json_lines(&ok(&["--json", "stat", "y2"]))[0].clone(),
    );
    assert_eq!((&src["mode"], &src["mtime"]), (&dst["mode"], &dst["mtime"]));

    // Into an existing directory, as cp does; never over an existing name.
    ok(&["cp", "x2.bin", "a/sub"]);
    assert!(f.exists("a/sub/x2.bin"));
    let o = s.ferry("alice", PW, &["cp", "x2.bin", "a/sub/x2.bin"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim_end(), "ferry: a/sub/x2.bin: already exists");
    let o = s.ferry("alice", PW, &["cp", "-r", "a", "a/sub/inside"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!f.exists("a/sub/inside"));
    let o = s.ferry("alice", PW, &["cp", "nope", "n2"]);
    assert_eq!(o.status.code(), Some(1));
}

/// The copy of a file in object storage names the same blob: removing
/// the original (and letting the sweeper run) leaves the copy readable;
/// removing the copy too lets the blob go. On disk the copy is a file of
/// its own (a clone or a copy).
#[test]
fn a_copy_outlives_its_original() {
    let (s, store) = if on_s3() {
        let store = TestStore::new(S3::start());
        let dir = tempfile::tempdir().unwrap();
        let table = format!(
            "{}trash_grace_secs = 0\nsweep_every_secs = 1\n",
            store.config(dir.path())
        );
        let s = Server::start_with(&table);
        (s, Some(store))
    } else {
        (Server::start(), None)
    };
    s.add_user("alice", PW, Some("64MiB"));
    let ok = |args: &[&str]| {
        let o = s.ferry("alice", PW, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    // Put through the client: this server's store is the test's own.
    let local = tempfile::tempdir().unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let at = local.path().join(name);
        std::fs::write(&at, bytes).unwrap();
        ok(&["put", at.to_str().unwrap(), &format!("/{name}")]);
    };
    let data = random(3 << 20, 8);
    put("f", &data);
    ok(&["cp", "f", "g"]);
    ok(&["mkdir", "t"]);
    ok(&["cp", "f", "t/h"]);
    ok(&["cp", "t/h", "t/h2"]);
    ok(&["rm", "f"]);
    ok(&["rm", "-r", "t"]);
    if let Some(store) = &store {
        // A file put and removed after them: once its blob is gone, the
        // sweeper has looked at the trash where f's blob went first.
        put("later", b"later");
        let n = store.s3.objects(&store.prefix).len();
        ok(&["rm", "later"]);
        let start = std::time::Instant::now();
        while store.s3.objects(&store.prefix).len() >= n {
            assert!(start.elapsed().as_secs() < 60, "the sweeper never ran");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    let o = s.ferry("alice", PW, &["cat", "g"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout == data, "the copy lost its bytes");
    if let Some(store) = &store {
        ok(&["rm", "g"]);
        let start = std::time::Instant::now();
        while !store.s3.objects(&store.prefix).is_empty() {
            assert!(start.elapsed().as_secs() < 60, "the last copy's blob stays");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// A copy over the quota (bytes or entries) is refused before anything
/// is written; a tree over the copy limit too.
#[test]
fn a_copy_over_quota_is_refused_and_leaves_nothing() {
    let s = limited("max_copy_entries = 10");
    s.add_user("q", "qpw", Some("5MiB"));
    let f = s.files("q");
    f.write("big", random(2 << 20, 9));
    f.write("t/one", random(1 << 20, 10));
    f.write("t/two", random(1 << 20, 11));
    let before = usage(&s, "q", "qpw");
    for args in [&["cp", "big", "big2"][..], &["cp", "-r", "t", "t2"]] {
        let o = s.ferry("q", "qpw", args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&o).ends_with("disk quota exceeded\n"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!f.exists("big2") && !f.exists("t2"));
    assert_eq!(usage(&s, "q", "qpw"), before);

    // A copy that would nest names deeper than the server allows.
    let deep = limited("max_depth = 3");
    deep.files("alice").mkdir("a/b/c");
    deep.files("alice").mkdir("x");
    let o = deep.ferry("alice", PW, &["cp", "-r", "a", "x"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("too deeply nested"), "{}", stderr(&o));
    assert!(!deep.files("alice").exists("x/a"));

    // More entries than one copy makes: refused, nothing made.
    let names = (0..12).map(|i| (format!("n{i}"), Vec::new()));
    f.write_files("wide", names);
    let o = s.ferry("q", "qpw", &["cp", "-r", "wide", "wide2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("wide"), "{}", stderr(&o));
    assert!(!f.exists("wide2"));
}

fn sorted_lines(o: &std::process::Output) -> Vec<String> {
    let mut v: Vec<String> = stdout(o).lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn find_searches_names_with_filters() {
    let s = server();
    let f = s.files("alice");
    f.write("a/x.txt", b"0123456789");
    f.write("a/b/y.txt", vec![7u8; 2000]);
    f.write("a/b/c/z.log", b"log");
    f.write("top.txt", b"top");
    let ok = |args: &[&str]| {
        let o = s.ferry("alice", PW, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        o
    };
    let all = ["/a/b/y.txt", "/a/x.txt", "/top.txt"];
    assert_eq!(sorted_lines(&ok(&["find", "*.txt"])), all);
    assert_eq!(sorted_lines(&ok(&["find", "/", "*.txt"])), all);
    assert_eq!(sorted_lines(&ok(&["find", "a", "*.txt"])), all[..2]);
    assert_eq!(sorted_lines(&ok(&["find", "[bc]"])), ["/a/b", "/a/b/c"]);
    assert_eq!(
        sorted_lines(&ok(&["find", "--min-size", "1000", "*"])),
        ["/a/b/y.txt"]
    );
    assert_eq!(
        sorted_lines(&ok(&["find", "--max-size", "3", "*"])),
        ["/a/b/c/z.log", "/top.txt"]
    );
    assert_eq!(
        sorted_lines(&ok(&["find", "--newer", "1h", "*.log"])),
        ["/a/b/c/z.log"]
    );
    assert!(stdout(&ok(&["find", "--older", "1h", "*"])).is_empty());
    assert!(stdout(&ok(&["find", "--older", "2000-01-01", "*"])).is_empty());
    let o = ok(&["--json", "find", "a", "y.*"]);
    let v = &json_lines(&o)[0];
    assert_eq!(
        (&v["name"], &v["kind"], &v["size"]),
        (&"/a/b/y.txt".into(), &"file".into(), &2000.into())
    );

    for (args, expect) in [
        (&["find", "top.txt", "*"][..], "top.txt: not a directory"),
        (&["find", "nope", "*"], "nope: no such file or directory"),
        (&["find", "[oops"], ".: bad request"),
    ] {
        let o = s.ferry("alice", PW, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&o).trim_end(),
            format!("ferry: {expect}"),
            "{args:?}"
        );
    }
    let o = s.ferry("alice", PW, &["find", "--newer", "soon", "*"]);
    assert_eq!(o.status.code(), Some(2));
}

/// A search over a tree larger than the server's bound stops there,
/// sends what it found, and says so (status 1); a smaller one completes.
#[test]
fn a_find_over_a_huge_tree_is_bounded() {
    let s = limited("find_max_visited = 50");
    let f = s.files("alice");
    f.write_files("wide", (0..300).map(|i| (format!("n{i:03}"), Vec::new())));
    f.write("small/one", b"1");
    let o = s.ferry("alice", PW, &["find", "*"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("stopped at the server's limits"),
        "{}",
        stderr(&o)
    );
    let n = stdout(&o).lines().count();
    assert!((1..=50).contains(&n), "{n} results");
    let o = s.ferry("alice", PW, &["find", "wide", "nothing-matches"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "bounded even when nothing matches"
    );
    let o = s.ferry("alice", PW, &["find", "small", "*"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "/small/one\n");
}

#[test]
fn find_never_follows_a_symlink() {
    if ferry_e2e::disk_only("symbolic links made behind ferryd's back") {
        return;
    }
    let s = server();
    let outside = s.root.path().join("outside");
    std::fs::create_dir_all(outside.join("deep")).unwrap();
    std::fs::write(outside.join("deep/secret"), "x").unwrap();
    std::os::unix::fs::symlink(&outside, s.home("alice").join("l")).unwrap();
    let o = s.ferry("alice", PW, &["find", "*"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "/l\n");
}

/// A client asks for 1 MiB ranges again and again and never reads a
/// reply: ferryd reads a range only once the connection's budget (4 MiB
/// here) has room for it, and stops reading the client at the budget, so
/// it holds about the budget, not a MiB per request in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_nobody_reads_stay_within_the_budget() {
    use ferry_proto::{ClientMsg, Frame, Request};
    use futures::SinkExt;
    let s = Server::start_with(&TEST_CONFIG.replace(
        "[limits]\n",
        "[limits]\nconnection_budget_mib = 4\nuser_budget_mib = 8\n",
    ));
    s.add_user("alice", PW, Some("64MiB"));
    s.files("alice").write("f", random(3 << 20, 12));
    let mut raw = ferry_e2e::raw::Raw::connect(&s).await;
    raw.login("alice", PW).await.expect("login");
    let (base, _) = s.memory_kib();
    let sender = tokio::spawn(async move {
        for id in 1..=2000u32 {
            let req = ClientMsg::Request {
                id,
                req: Request::Read {
                    transfer: id,
                    path: "/f".into(),
                    offset: u64::from(id % 3) << 20,
                    length: 1 << 20,
                },
            };
            if raw.wr.send(Frame::control(&req).unwrap()).await.is_err() {
                return raw;
            }
        }
        raw
    });
    // Long enough for the reads that can run to run (no timing asserted).
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let (now, peak) = s.memory_kib();
    let grew = peak.saturating_sub(base) / 1024;
    eprintln!("ferryd {base} KiB before, {now} now, peak {peak}");
    assert!(grew < 24, "ferryd grew by {grew} MiB for unread ranges");
    sender.abort();
}

/// On disk a tree's symbolic links are copied as links (never followed),
/// and fifos are left out.
#[test]
fn a_tree_copy_keeps_links_as_links() {
    if ferry_e2e::disk_only("links and fifos made behind ferryd's back") {
        return;
    }
    let s = server();
    let h = s.home("alice");
    std::fs::create_dir_all(h.join("t/d")).unwrap();
    std::fs::write(h.join("t/d/f"), "x").unwrap();
    std::os::unix::fs::symlink("/etc", h.join("t/out")).unwrap();
    std::os::unix::fs::symlink("d/f", h.join("t/in")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        h.join("t/fifo").as_path(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let o = s.ferry("alice", PW, &["--json", "cp", "-r", "t", "u"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["entries"], 5, "t, d, f and two links");
    assert_eq!(
        std::fs::read_link(h.join("u/out")).unwrap(),
        std::path::Path::new("/etc")
    );
    assert_eq!(
        std::fs::read_link(h.join("u/in")).unwrap(),
        std::path::Path::new("d/f")
    );
    assert_eq!(std::fs::read_to_string(h.join("u/d/f")).unwrap(), "x");
    assert!(!h.join("u/fifo").exists());
}
