//! The everyday tools run by the server, through the real `ferry` and
//! ferryd, on the disk and (FERRY_TEST_STORE=s3) in object storage:
//! chmod, cat (byte ranges), hash.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use ferry_e2e::{json_lines, stderr, stdout, Server};
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
