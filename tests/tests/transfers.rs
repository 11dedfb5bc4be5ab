//! Uploads and downloads end to end with the real binaries: round trips,
//! resume from every interesting partial size in both directions, kills of
//! the client and of the server, corruption in transit, conflicts, trees.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ferry_e2e::uploads::{held, leave_unfinished, part_size, wait_for_held};
use ferry_e2e::{assert_no_torn_files, bin, json_lines, stderr, stdout, write_random, Server};

const PW: &str = "pw";
const CHUNK: usize = ferry_proto::CHUNK_SIZE;

fn server() -> Server {
    let s = Server::start();
    s.add_user("u", PW, None);
    s
}

/// The client's partial of a download to `dir/name`.
fn partial(dir: &Path, name: &str) -> std::path::PathBuf {
    ferry_e2e::local_partial(&dir.join(name))
}

#[test]
fn round_trips_of_awkward_sizes_and_names() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7];
    for (i, size) in sizes.iter().enumerate() {
        let name = format!("fïlé {i} ☃.bin");
        let src = local.path().join(&name);
        write_random(&src, *size, i as u64);
        let o = s.ferry(
            "u",
            PW,
            &["--json", "put", src.to_str().unwrap(), &format!("/{name}")],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let r = &json_lines(&o)[0];
        assert_eq!(r["status"], "done");
        assert_eq!(r["size"], *size as u64);
        assert_eq!(r["resumed_from"], 0);
        assert_eq!(s.files("u").read(&name), std::fs::read(&src).unwrap());
        let back = local.path().join(format!("back {i}"));
        let o = s.ferry(
            "u",
            PW,
            &["--json", "get", &format!("/{name}"), back.to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(json_lines(&o)[0]["sha256"], r["sha256"]);
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap());
    }
}

#[test]
fn put_resumes_from_every_partial_size() {
    if ferry_e2e::disk_only(
        "partial files planted in the disk engine's partial area (object storage resumes at part boundaries: objects.rs)",
    ) {
        return;
    }
    let s = server();
    let local = tempfile::tempdir().unwrap();
    // Past `ferry_proto::direct::DIRECT_MIN`, so resuming at 0 and at 1 MiB
    // writes direct and the odd offsets through the page cache.
    let size = 17 * CHUNK + 12345;
    let src = local.path().join("data.bin");
    write_random(&src, size, 42);
    let content = std::fs::read(&src).unwrap();
    for held in [0, 1, 1024, 1 << 20, size - 1, size] {
        let home = s.home("u");
        let _ = std::fs::remove_file(home.join("data.bin"));
        std::fs::write(s.partial("u", "data.bin"), &content[..held]).unwrap();
        let o = s.ferry("u", PW, &["--json", "put", src.to_str().unwrap()]);
        assert!(o.status.success(), "{held}: {}", stderr(&o));
        let r = &json_lines(&o)[0];
        assert_eq!(r["resumed_from"], held as u64, "{held}");
        assert_eq!(
            std::fs::read(home.join("data.bin")).unwrap(),
            content,
            "{held}"
        );
        assert!(!s.partial("u", "data.bin").exists());
    }
}

#[test]
fn get_resumes_from_every_partial_size() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let size = 17 * CHUNK + 999;
    s.files("u").write_random("data.bin", size, 7);
    let content = s.files("u").read("data.bin");
    for held in [0, 1, 1024, 1 << 20, size - 1, size] {
        let target = local.path().join("data.bin");
        let _ = std::fs::remove_file(&target);
        std::fs::write(partial(local.path(), "data.bin"), &content[..held]).unwrap();
        let o = s.ferry(
            "u",
            PW,
            &["--json", "get", "data.bin", target.to_str().unwrap()],
        );
        assert!(o.status.success(), "{held}: {}", stderr(&o));
        assert_eq!(json_lines(&o)[0]["resumed_from"], held as u64, "{held}");
        assert_eq!(std::fs::read(&target).unwrap(), content, "{held}");
        assert!(!partial(local.path(), "data.bin").exists());
    }
}

/// A file of one chunk or less downloads whole, like its upload: a
/// leftover partial is not resumed, and is replaced, not left behind.
#[test]
fn a_one_chunk_get_replaces_a_leftover_partial() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    s.files("u").write_random("small.bin", CHUNK - 7, 3);
    let content = s.files("u").read("small.bin");
    let target = local.path().join("small.bin");
    std::fs::write(partial(local.path(), "small.bin"), &content[..1000]).unwrap();
    let o = s.ferry(
        "u",
        PW,
        &["--json", "get", "small.bin", target.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&o)[0]["resumed_from"], 0);
    assert_eq!(std::fs::read(&target).unwrap(), content);
    assert!(!partial(local.path(), "small.bin").exists());
}

#[test]
fn a_partial_that_differs_restarts_from_zero_with_a_message() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f.bin");
    // Larger than one chunk: one-chunk files skip resuming altogether; in
    // object storage, larger than a part, so some of it can be held.
    let size = (3 * CHUNK).max(part_size(&s).map_or(0, |p| p as usize + (4 << 20)));
    write_random(&src, size, 1);
    // Same length prefix, different bytes: size alone would be fooled.
    let mut wrong = std::fs::read(&src).unwrap();
    wrong[10] ^= 1;
    if s.store.is_some() {
        // An earlier upload of the wrong bytes, cut after a part.
        let other = local.path().join("other").join("f.bin");
        std::fs::create_dir(other.parent().unwrap()).unwrap();
        std::fs::write(&other, &wrong).unwrap();
        assert!(leave_unfinished(&s, "u", PW, &other, "f.bin") > 0);
    } else {
        std::fs::write(s.partial("u", "f.bin"), &wrong[..50_000]).unwrap();
    }
    let o = s.ferry("u", PW, &["--json", "put", src.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(json_lines(&o)[0]["resumed_from"], 0);
    assert!(
        stderr(&o).contains("differs") && stderr(&o).contains("restarting from zero"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.files("u").read("f.bin"), std::fs::read(&src).unwrap());
    if let Some(store) = &s.store {
        assert!(
            store.s3.pending(&store.prefix).is_empty(),
            "the old upload is aborted"
        );
        assert_eq!(store.s3.objects(&store.prefix).len(), 1, "one blob");
    }
}

#[test]
fn a_local_partial_that_differs_restarts_the_get_from_zero() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f.bin");
    write_random(&src, 3 * CHUNK, 1);
    let mut wrong = std::fs::read(&src).unwrap()[..50_000].to_vec();
    wrong[10] ^= 1;
    std::fs::write(partial(local.path(), "g.bin"), &wrong).unwrap();
    s.files("u").write("g.bin", std::fs::read(&src).unwrap());
    let target = local.path().join("g.bin");
    let o = s.ferry(
        "u",
        PW,
        &["--json", "get", "g.bin", target.to_str().unwrap()],
    );
    assert!(o.status.success());
    assert_eq!(json_lines(&o)[0]["resumed_from"], 0);
    assert!(stderr(&o).contains("restarting from zero"));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&src).unwrap()
    );
}

/// Starts `ferry` slowly moving a file, kills it partway.
fn start_slow(s: &Server, args: &[&str]) -> std::process::Child {
    Command::new(bin("ferry"))
        .args(["-s", &s.addr.to_string(), "-u", "u"])
        .args(s.trust_args())
        .args(args)
        .args(["--limit-rate", "2MiB"])
        .env("FERRY_PASSWORD", PW)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for_partial(p: &Path, min: u64) -> u64 {
    for _ in 0..200 {
        if let Ok(md) = std::fs::metadata(p) {
            if md.len() >= min {
                return md.len();
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{} never reached {min} bytes", p.display());
}

#[test]
fn killed_client_then_rerun_resumes_both_ways() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    // In object storage, more than a part: a cut resumes from a part's end.
    let size = (8 << 20).max(part_size(&s).map_or(0, |p| p as usize + (4 << 20)));
    let src = local.path().join("big.bin");
    write_random(&src, size, 3);

    let mut child = start_slow(&s, &["put", src.to_str().unwrap()]);
    wait_for_held(&s, "u", "big.bin", 1 << 20);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !s.files("u").exists("big.bin"),
        "no torn file under the final name"
    );
    let o = s.ferry("u", PW, &["--json", "put", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = json_lines(&o)[0]["resumed_from"].as_u64().unwrap();
    assert!(resumed >= 1 << 20 && resumed < size as u64, "{resumed}");
    assert_eq!(s.files("u").read("big.bin"), std::fs::read(&src).unwrap());

    let target = local.path().join("copy.bin");
    let mut child = start_slow(&s, &["get", "big.bin", target.to_str().unwrap()]);
    wait_for_partial(&partial(local.path(), "copy.bin"), 1 << 20);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!target.exists());
    let o = s.ferry(
        "u",
        PW,
        &["--json", "get", "big.bin", target.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = json_lines(&o)[0]["resumed_from"].as_u64().unwrap();
    assert!(resumed >= 1 << 20, "{resumed}");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&src).unwrap()
    );
}

#[test]
fn server_killed_mid_upload_restarts_and_the_upload_resumes() {
    let mut s = server();
    let local = tempfile::tempdir().unwrap();
    let size = (8 << 20).max(part_size(&s).map_or(0, |p| p as usize + (4 << 20)));
    let src = local.path().join("big.bin");
    write_random(&src, size, 4);
    let mut child = start_slow(&s, &["put", src.to_str().unwrap()]);
    wait_for_held(&s, "u", "big.bin", 1 << 20);
    s.restart_hard(); // SIGKILL, then a new ferryd on the same root
    let status = child.wait().unwrap();
    assert!(!status.success(), "the client notices the cut");
    assert!(!s.files("u").exists("big.bin"));
    let o = s.ferry("u", PW, &["--json", "put", src.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(json_lines(&o)[0]["resumed_from"].as_u64().unwrap() > 0);
    assert_eq!(s.files("u").read("big.bin"), std::fs::read(&src).unwrap());
    // Usage is right after the restart.
    let q = json_lines(&s.ferry("u", PW, &["--json", "quota"]));
    assert_eq!(q[0]["used"], size as u64);
}

#[test]
fn conflicts_never_overwrite_silently() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("a.txt");
    std::fs::write(&src, "new content").unwrap();
    s.files("u").write("a.txt", "old");
    let put = |policy: Option<&str>| {
        let mut args = vec!["--json", "put", src.to_str().unwrap()];
        if let Some(p) = policy {
            args.extend(["--on-conflict", p]);
        }
        s.ferry("u", PW, &args)
    };
    let o = put(None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(s.files("u").read_string("a.txt"), "old");
    assert_eq!(put(Some("fail")).status.code(), Some(1));
    let o = put(Some("skip"));
    assert!(o.status.success());
    assert_eq!(json_lines(&o)[0]["status"], "skipped");
    assert_eq!(s.files("u").read_string("a.txt"), "old");
    assert!(put(Some("rename")).status.success());
    assert_eq!(s.files("u").read_string("a (1).txt"), "new content");
    assert_eq!(
        put(Some("resume")).status.code(),
        Some(1),
        "differs: refused"
    );
    assert!(put(Some("overwrite")).status.success());
    assert_eq!(s.files("u").read_string("a.txt"), "new content");
    let o = put(Some("resume"));
    assert!(o.status.success());
    assert_eq!(
        json_lines(&o)[0]["status"],
        "skipped",
        "identical: already complete"
    );

    // Downloads too.
    let target = local.path().join("a.txt");
    let o = s.ferry("u", PW, &["get", "a (1).txt", target.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    std::fs::write(&target, "local").unwrap();
    let o = s.ferry(
        "u",
        PW,
        &[
            "get",
            "a.txt",
            target.to_str().unwrap(),
            "--on-conflict",
            "rename",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(local.path().join("a (1).txt")).unwrap(),
        "new content"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "local");
}

#[test]
fn trees_round_trip_and_special_files_are_skipped() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    for i in 0..60 {
        write_random(
            &tree.join(format!("d{}/sub {}/f-{i}.txt", i % 3, i % 5)),
            i * 100,
            i as u64,
        );
    }
    write_random(&tree.join("ünïcode ☃/empty"), 0, 0);
    std::fs::create_dir_all(tree.join("empty dir")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", tree.join("link")).unwrap();
    assert!(Command::new("mkfifo")
        .arg(tree.join("fifo"))
        .status()
        .unwrap()
        .success());
    let o = s.ferry(
        "u",
        PW,
        &["--json", "put", "-r", tree.to_str().unwrap(), "/"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_lines(&o).len(), 61);
    let err = stderr(&o);
    assert!(err.contains("link: symbolic link skipped"), "{err}");
    assert!(err.contains("fifo: special file"), "{err}");
    assert!(s.files("u").exists("tree/empty dir"));

    let back = local.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let o = s.ferry("u", PW, &["get", "-r", "/tree", back.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let diff = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(&tree)
        .arg(back.join("tree"))
        .output()
        .unwrap();
    // Only the skipped link and fifo differ.
    let text = String::from_utf8_lossy(&diff.stdout);
    let others: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(": link") && !l.contains(": fifo"))
        .collect();
    assert!(others.is_empty(), "{text}");
}

#[test]
fn directory_without_r_is_refused_politely() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(local.path().join("d")).unwrap();
    let o = s.ferry("u", PW, &["put", local.path().join("d").to_str().unwrap()]);
    assert!(
        stderr(&o).contains("is a directory (use -r"),
        "{}",
        stderr(&o)
    );
    if s.store.is_none() {
        assert_no_torn_files(&s.home("u"), local.path());
    }
    assert!(!s.files("u").exists("d"), "nothing arrived");
    assert!(stdout(&o).is_empty());
}

#[test]
fn many_tiny_files_pipeline_in_order() {
    // Eager one-chunk uploads put PutOpen and data on one queue; with
    // hundreds in flight, any reordering would show as a failed file.
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tiny");
    for i in 0..400 {
        write_random(
            &tree.join(format!("d{}/f{i}", i % 7)),
            1 + i % 300,
            i as u64,
        );
    }
    let o = s.ferry(
        "u",
        PW,
        &["put", "-r", tree.to_str().unwrap(), "/", "--parallel", "32"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let back = local.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let o = s.ferry("u", PW, &["get", "-r", "/tiny", back.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(back.join("tiny"))
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
}

#[test]
fn local_symlinks_are_followed_only_when_asked() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("t");
    write_random(&tree.join("real.bin"), 1000, 1);
    write_random(&local.path().join("outside/x.bin"), 2000, 2);
    std::os::unix::fs::symlink(local.path().join("outside"), tree.join("linked dir")).unwrap();
    std::os::unix::fs::symlink(tree.join("real.bin"), tree.join("alias.bin")).unwrap();
    let o = s.ferry("u", PW, &["put", "-r", tree.to_str().unwrap(), "/plain"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!s.files("u").exists("plain/alias.bin"));
    assert!(!s.files("u").exists("plain/linked dir"));
    let o = s.ferry(
        "u",
        PW,
        &["put", "-r", "-L", tree.to_str().unwrap(), "/followed"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        s.files("u").read("followed/alias.bin"),
        std::fs::read(tree.join("real.bin")).unwrap()
    );
    assert_eq!(s.files("u").read("followed/linked dir/x.bin").len(), 2000);
    // What arrived are regular files: the server never holds a client's
    // link (object storage has none).
    if s.store.is_none() {
        assert!(
            !std::fs::symlink_metadata(s.home("u").join("followed/alias.bin"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}

#[test]
fn the_client_keeps_to_the_servers_request_limit() {
    // 200 small files at --parallel 32 want many in flight; this server
    // runs 3 requests at once and queues 3 more, and takes 3 small uploads
    // at once. The client learns the limits at login and waits instead of
    // being refused.
    let s = Server::start_with(
        "[limits]\nmax_requests_in_flight = 3\nmax_small_uploads_in_flight = 3\n",
    );
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("small");
    for i in 0..200 {
        write_random(&tree.join(format!("d{}/f{i}", i % 5)), 100 + i, i as u64);
    }
    let o = s.ferry(
        "u",
        PW,
        &["put", "-r", tree.to_str().unwrap(), "/", "--parallel", "32"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let back = local.path().join("back");
    let o = s.ferry(
        "u",
        PW,
        &[
            "get",
            "-r",
            "/small",
            back.to_str().unwrap(),
            "--parallel",
            "32",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(&back)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
}

/// A small file (one PUT, no resume handshake) replaces an earlier
/// upload of the same name left unfinished (in object storage: after a
/// part): nothing of it is left (no partial, no multipart upload), and
/// the quota counts the small file only.
#[test]
fn a_small_upload_replaces_an_unfinished_upload_and_counts_it_once() {
    small_replaces_unfinished();
}

fn small_replaces_unfinished() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    // Slow enough to be cut on the disk; more than a part in object storage.
    let size = (8 << 20).max(part_size(&s).map_or(0, |p| p as usize + (4 << 20)));
    let big = local.path().join("big").join("small.txt");
    write_random(&big, size, 5);
    assert!(leave_unfinished(&s, "u", PW, &big, "small.txt") > 0);
    let small = local.path().join("small.txt");
    std::fs::write(&small, b"hello").unwrap();
    let o = s.ferry("u", PW, &["put", small.to_str().unwrap(), "/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(s.files("u").read("small.txt"), b"hello");
    if let Some(store) = &s.store {
        let pending = store.s3.pending(&store.prefix);
        assert!(pending.is_empty(), "the old upload is aborted: {pending:?}");
        assert_eq!(store.s3.objects(&store.prefix).len(), 1, "one blob");
    }
    assert_eq!(held(&s, "u", "small.txt"), 0, "nothing left to resume");
    let q = json_lines(&s.ferry("u", PW, &["--json", "quota"]));
    assert_eq!(q[0]["used"], 5, "{q:?}");
    assert_eq!(q[0]["entries"], 1, "{q:?}");
}

/// A small file (sent without the resume handshake) replaces whatever
/// partial an earlier attempt left, and the quota counts it once; a name
/// its partial cannot take is refused with a clear message.
#[test]
fn a_small_upload_replaces_a_leftover_partial_and_counts_it_once() {
    if ferry_e2e::disk_only(
        "partial files planted in the disk engine's partial area (object storage resumes at part boundaries: objects.rs)",
    ) {
        return;
    }
    let s = Server::start();
    s.add_user("u", PW, Some("1M"));
    let home = s.home("u");
    std::fs::write(s.partial("u", "small.txt"), vec![9u8; 3000]).unwrap();
    std::fs::create_dir(s.partial("u", "blocked.txt")).unwrap();
    let local = tempfile::tempdir().unwrap();
    let small = local.path().join("small.txt");
    let blocked = local.path().join("blocked.txt");
    std::fs::write(&small, b"hello").unwrap();
    std::fs::write(&blocked, b"x").unwrap();
    let o = s.ferry("u", PW, &["put", small.to_str().unwrap(), "/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(home.join("small.txt")).unwrap(), b"hello");
    assert!(!s.partial("u", "small.txt").exists());
    let o = s.ferry("u", PW, &["put", blocked.to_str().unwrap(), "/"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("partial-file name is taken"),
        "{}",
        stderr(&o)
    );
    assert!(!home.join("blocked.txt").exists());
    let o = s.ferry("u", PW, &["quota"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // small.txt's 5 bytes and the directory in the partial's place, made
    // outside ferryd, at a directory's 4 KiB; the replaced partial is gone.
    assert!(
        stdout(&o).starts_with("used 4101 of"),
        "small.txt and the blocking directory count: {}",
        stdout(&o)
    );
}
