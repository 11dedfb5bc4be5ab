//! `ferry sync` end to end, the real ferryd and the real `ferry`, both
//! ways: the plan's counts, a second run that transfers nothing, updates,
//! deletions only inside the destination, dry runs, `--checksum`, include
//! and exclude rules, and kept modification times. Remote files are set up
//! and read through the harness, so the tests run on both stores.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::Output;
use std::time::{Duration, UNIX_EPOCH};

use ferry_e2e::{json_lines, stderr, write_random, Server};
use serde_json::Value;

const PW: &str = "syncpass";

fn server() -> Server {
    let s = Server::start();
    s.add_user("u", PW, None);
    s
}

/// A sync's plan and result lines (with `--json`), after checking it
/// succeeded.
struct Run {
    plan: Value,
    result: Option<Value>,
    lines: Vec<Value>,
}

fn sync(s: &Server, args: &[&str]) -> Run {
    let o = sync_output(s, args);
    assert!(o.status.success(), "sync {args:?}: {}", stderr(&o));
    parse(&o)
}

fn sync_output(s: &Server, args: &[&str]) -> Output {
    let mut all = vec!["--json", "sync"];
    all.extend_from_slice(args);
    s.ferry("u", PW, &all)
}

fn parse(o: &Output) -> Run {
    let lines = json_lines(o);
    let plan = lines
        .iter()
        .find_map(|l| l.get("plan").cloned())
        .unwrap_or_else(|| panic!("no plan in {lines:?}"));
    let result = lines.iter().find_map(|l| l.get("result").cloned());
    Run {
        plan,
        result,
        lines,
    }
}

/// `(files, bytes)` of a tally in the JSON.
fn tally(v: &Value, key: &str) -> (u64, u64) {
    let t = &v[key];
    (t["files"].as_u64().unwrap(), t["bytes"].as_u64().unwrap())
}

fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn mtime(path: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().mtime()
}

/// The remote file's mtime, as `ferry stat --json` shows it.
fn remote_mtime(s: &Server, path: &str) -> i64 {
    let o = s.ferry("u", PW, &["--json", "stat", path]);
    assert!(o.status.success(), "stat {path}: {}", stderr(&o));
    json_lines(&o)[0]["mtime"].as_i64().unwrap()
}

/// A local tree: 3 small files over two levels, one of several chunks,
/// an empty directory; old, distinct mtimes.
fn make_tree(root: &Path) -> u64 {
    let files: [(&str, usize); 4] = [
        ("a.txt", 10),
        ("sub/b.bin", 3000),
        ("sub/deeper/c.bin", 1),
        ("big.bin", 700 * 1024),
    ];
    let mut bytes = 0;
    for (i, (name, size)) in files.iter().enumerate() {
        let p = root.join(name);
        write_random(&p, *size, i as u64 + 1);
        set_mtime(&p, 1_600_000_000 + i as u64 * 1000);
        bytes += *size as u64;
    }
    std::fs::create_dir_all(root.join("empty")).unwrap();
    bytes
}

#[test]
fn upload_then_nothing_then_exactly_the_changed_file() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("photos");
    let bytes = make_tree(&src);
    let src_arg = src.to_str().unwrap();

    let first = sync(&s, &[src_arg, ":backup/photos"]);
    assert_eq!(tally(&first.plan, "copy"), (4, bytes));
    assert_eq!(tally(&first.plan, "update"), (0, 0));
    assert_eq!(tally(&first.plan, "unchanged"), (0, 0));
    let result = first.result.unwrap();
    assert_eq!(tally(&result, "copied"), (4, bytes));
    assert_eq!(result["failed"], 0);
    for name in ["a.txt", "sub/b.bin", "sub/deeper/c.bin", "big.bin"] {
        let remote = format!("backup/photos/{name}");
        assert_eq!(
            s.files("u").read(&remote),
            std::fs::read(src.join(name)).unwrap(),
            "{name}"
        );
        assert_eq!(
            remote_mtime(&s, &remote),
            mtime(&src.join(name)),
            "{name}: mtime kept"
        );
    }
    assert!(s.files("u").exists("backup/photos/empty"));

    let second = sync(&s, &[src_arg, ":backup/photos"]);
    assert_eq!(tally(&second.plan, "copy"), (0, 0));
    assert_eq!(tally(&second.plan, "update"), (0, 0));
    assert_eq!(tally(&second.plan, "unchanged"), (4, bytes));
    let result = second.result.unwrap();
    assert_eq!(tally(&result, "copied"), (0, 0));
    assert_eq!(tally(&result, "updated"), (0, 0));
    assert!(
        !second.lines.iter().any(|l| l.get("status").is_some()),
        "no file transferred: {:?}",
        second.lines
    );

    // One file changes (a new size, a new mtime): exactly it is sent.
    std::fs::write(src.join("sub/b.bin"), b"changed").unwrap();
    let third = sync(&s, &[src_arg, ":backup/photos"]);
    assert_eq!(tally(&third.plan, "update"), (1, 7));
    assert_eq!(tally(&third.plan, "copy"), (0, 0));
    assert_eq!(tally(&third.plan, "unchanged"), (3, bytes - 3000));
    let result = third.result.unwrap();
    assert_eq!(tally(&result, "updated"), (1, 7));
    assert_eq!(tally(&result, "copied"), (0, 0));
    assert_eq!(s.files("u").read("backup/photos/sub/b.bin"), b"changed");

    // A file whose mtime alone changed is sent again too (size and mtime).
    set_mtime(&src.join("a.txt"), 1_700_000_000);
    let fourth = sync(&s, &[src_arg, ":backup/photos"]);
    assert_eq!(tally(&fourth.result.unwrap(), "updated"), (1, 10));
    assert_eq!(remote_mtime(&s, "backup/photos/a.txt"), 1_700_000_000);
}

#[test]
fn delete_removes_only_what_is_inside_the_destination() {
    let s = server();
    let f = s.files("u");
    f.write("backup/photos/keep.txt", "k");
    f.write("backup/photos/extra.txt", "extra");
    f.write("backup/photos/old/deep/x.bin", "xx");
    f.write("backup/photos/held/y.keep", "protected");
    f.write("backup/photos/held/z.txt", "z");
    f.write("backup/photos-old/sibling.txt", "sibling");
    f.write("backup/outside.txt", "outside");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("photos");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("keep.txt"), "k").unwrap();
    let src_arg = src.to_str().unwrap();

    // Without --delete nothing goes.
    let run = sync(&s, &[src_arg, ":backup/photos"]);
    assert_eq!(tally(&run.plan, "delete"), (0, 0));
    assert!(f.exists("backup/photos/extra.txt"));

    let run = sync(
        &s,
        &["--delete", "--exclude", "*.keep", src_arg, ":backup/photos"],
    );
    assert_eq!(
        tally(&run.plan, "delete"),
        (3, 5 + 2 + 1),
        "extra.txt, old/deep/x.bin, held/z.txt; not held/y.keep"
    );
    assert_eq!(run.plan["delete"]["dirs"], 2, "old and old/deep");
    assert_eq!(
        run.result.unwrap()["deleted"],
        3,
        "extra.txt, old/, held/z.txt"
    );
    assert!(!f.exists("backup/photos/extra.txt"));
    assert!(!f.exists("backup/photos/old"));
    assert!(!f.exists("backup/photos/held/z.txt"));
    assert_eq!(f.read_string("backup/photos/held/y.keep"), "protected");
    assert_eq!(f.read_string("backup/photos/keep.txt"), "k");
    assert_eq!(f.read_string("backup/photos-old/sibling.txt"), "sibling");
    assert_eq!(f.read_string("backup/outside.txt"), "outside");
}

#[test]
fn nothing_is_deleted_when_a_file_failed() {
    let s = Server::start();
    s.add_user("u", PW, Some("64KiB"));
    let f = s.files("u");
    f.write("dst/extra.txt", "extra");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    write_random(&src.join("small.txt"), 10, 1);
    write_random(&src.join("too-big.bin"), 100 * 1024, 2);
    let o = sync_output(&s, &["--delete", src.to_str().unwrap(), ":dst"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let run = parse(&o);
    assert_eq!(tally(&run.plan, "delete"), (1, 5));
    let result = run.result.unwrap();
    assert_eq!(result["failed"], 1, "{result}");
    assert_eq!(result["deleted"], 0, "{result}");
    assert!(result["deletions_skipped"].is_string(), "{result}");
    assert_eq!(f.read_string("dst/extra.txt"), "extra");
    assert_eq!(
        f.read("dst/small.txt"),
        std::fs::read(src.join("small.txt")).unwrap()
    );
}

#[test]
fn dry_run_changes_nothing_and_lists_the_plan() {
    let s = server();
    let f = s.files("u");
    f.write("dst/stale.txt", "stale");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    let bytes = make_tree(&src);
    let src_arg = src.to_str().unwrap();
    let run = sync(&s, &["--dry-run", "--delete", src_arg, ":dst"]);
    assert_eq!(tally(&run.plan, "copy"), (4, bytes));
    assert_eq!(tally(&run.plan, "delete"), (1, 5));
    assert_eq!(run.plan["dry_run"], true);
    assert!(run.result.is_none(), "a dry run has no result");
    let actions: Vec<_> = run
        .lines
        .iter()
        .filter_map(|l| Some((l["action"].as_str()?, l["path"].as_str()?)))
        .collect();
    assert!(
        actions.contains(&("copy", "sub/deeper/c.bin")),
        "{actions:?}"
    );
    assert!(actions.contains(&("delete", "stale.txt")), "{actions:?}");
    assert!(f.exists("dst/stale.txt"));
    assert!(!f.exists("dst/a.txt"));
    assert!(!f.exists("dst/empty"));

    // Downloads too: the local side stays as it was.
    let dl = local.path().join("dl");
    let run = sync(&s, &["-n", ":dst", dl.to_str().unwrap()]);
    assert_eq!(tally(&run.plan, "copy"), (1, 5));
    assert!(!dl.exists());

    // Text for people: the four counts.
    let o = s.ferry("u", PW, &["sync", "--dry-run", src_arg, ":dst"]);
    let text = ferry_e2e::stdout(&o);
    for what in ["to copy:", "to update:", "to delete:", "unchanged:"] {
        assert!(text.contains(what), "{text}");
    }
    assert!(!f.exists("dst/a.txt"));
}

#[test]
fn checksum_finds_a_change_that_kept_size_and_mtime() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    make_tree(&src);
    let src_arg = src.to_str().unwrap();
    sync(&s, &[src_arg, ":dst"]);
    // Same size, same mtime, other bytes.
    let p = src.join("sub/b.bin");
    let old = mtime(&p);
    write_random(&p, 3000, 99);
    set_mtime(&p, old as u64);
    let plain = sync(&s, &[src_arg, ":dst"]);
    assert_eq!(tally(&plain.plan, "update"), (0, 0), "size and mtime agree");
    let hashed = sync(&s, &["--checksum", src_arg, ":dst"]);
    assert_eq!(tally(&hashed.plan, "update"), (1, 3000));
    assert_eq!(tally(&hashed.plan, "unchanged").0, 3);
    assert_eq!(tally(&hashed.result.unwrap(), "updated"), (1, 3000));
    assert_eq!(
        s.files("u").read("dst/sub/b.bin"),
        std::fs::read(&p).unwrap()
    );
    let again = sync(&s, &["-c", src_arg, ":dst"]);
    assert_eq!(tally(&again.plan, "update"), (0, 0));
    assert_eq!(tally(&again.plan, "unchanged").0, 4);

    // Downloads: the client hashes its copy, the server its own.
    let dl = local.path().join("dl");
    sync(&s, &[":dst", dl.to_str().unwrap()]);
    let q = dl.join("a.txt");
    let old = mtime(&q);
    std::fs::write(&q, b"0123456789").unwrap();
    set_mtime(&q, old as u64);
    let hashed = sync(&s, &["--checksum", ":dst", dl.to_str().unwrap()]);
    assert_eq!(tally(&hashed.plan, "update"), (1, 10));
    assert_eq!(
        std::fs::read(&q).unwrap(),
        std::fs::read(src.join("a.txt")).unwrap()
    );
}

/// Contents equal, times not: `--checksum` transfers nothing and sets the
/// destination's time, so a plain sync (size and mtime) then agrees too.
#[test]
fn checksum_sets_only_the_time_when_the_contents_agree() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    make_tree(&src);
    let src_arg = src.to_str().unwrap();
    sync(&s, &[src_arg, ":dst"]);
    set_mtime(&src.join("sub/b.bin"), 1_700_000_000);
    let hashed = sync(&s, &["--checksum", src_arg, ":dst"]);
    assert_eq!(tally(&hashed.plan, "update"), (0, 0));
    assert_eq!(tally(&hashed.plan, "unchanged").0, 4);
    assert_eq!(hashed.plan["times_to_set"], 1);
    assert_eq!(hashed.result.unwrap()["times_set"], 1);
    assert_eq!(remote_mtime(&s, "dst/sub/b.bin"), 1_700_000_000);
    let plain = sync(&s, &[src_arg, ":dst"]);
    assert_eq!(tally(&plain.plan, "update"), (0, 0), "the times agree now");

    // Downloads set the local file's time.
    let dl = local.path().join("dl");
    let dl_arg = dl.to_str().unwrap();
    sync(&s, &[":dst", dl_arg]);
    set_mtime(&dl.join("a.txt"), 1_000);
    let hashed = sync(&s, &["-c", ":dst", dl_arg]);
    assert_eq!(tally(&hashed.plan, "update"), (0, 0));
    assert_eq!(hashed.plan["times_to_set"], 1);
    assert_eq!(mtime(&dl.join("a.txt")), mtime(&src.join("a.txt")));
    let plain = sync(&s, &[":dst", dl_arg]);
    assert_eq!(tally(&plain.plan, "update"), (0, 0));
    assert_eq!(plain.plan["times_to_set"], 0);
}

#[test]
fn exclude_and_include_rules() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    for name in ["a.jpg", "b.txt", "sub/c.jpg", "sub/d.txt", "cache/e.jpg"] {
        write_random(&src.join(name), 5, 1);
    }
    let src_arg = src.to_str().unwrap();
    let run = sync(
        &s,
        &[
            "--exclude",
            "cache/",
            "--include",
            "*/",
            "--include",
            "*.jpg",
            "--exclude",
            "*",
            src_arg,
            ":dst",
        ],
    );
    assert_eq!(tally(&run.plan, "copy"), (2, 10), "a.jpg and sub/c.jpg");
    let f = s.files("u");
    assert!(f.exists("dst/a.jpg") && f.exists("dst/sub/c.jpg"));
    assert!(!f.exists("dst/b.txt") && !f.exists("dst/sub/d.txt"));
    assert!(!f.exists("dst/cache"));

    // The first matching rule wins: an exclude before an include.
    let run = sync(
        &s,
        &["--exclude", "*.txt", "--include", "b.txt", src_arg, ":dst2"],
    );
    assert_eq!(tally(&run.plan, "copy"), (3, 15), "no .txt file");
    assert!(!f.exists("dst2/b.txt"));
    // An include before an exclude keeps what it names.
    let run = sync(
        &s,
        &["--include", "b.txt", "--exclude", "*.txt", src_arg, ":dst3"],
    );
    assert_eq!(tally(&run.plan, "copy"), (4, 20), "b.txt but not sub/d.txt");
    assert!(f.exists("dst3/b.txt") && !f.exists("dst3/sub/d.txt"));

    // A bad glob is a usage error.
    let o = sync_output(&s, &["--exclude", "[a", src_arg, ":dst"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn download_then_nothing_then_the_changed_file_and_deletions() {
    let s = server();
    let f = s.files("u");
    let local = tempfile::tempdir().unwrap();
    // Uploaded with old mtimes (uploads keep them), so a copy that did not
    // keep them would show.
    let origin = local.path().join("origin");
    for (i, (name, size)) in [
        ("a.txt", 5),
        ("sub/big.bin", 600 * 1024),
        ("sub/deeper/c.txt", 1),
    ]
    .into_iter()
    .enumerate()
    {
        write_random(&origin.join(name), size, i as u64);
        set_mtime(&origin.join(name), 1_500_000_000 + i as u64 * 77);
    }
    std::fs::create_dir_all(origin.join("emptydir")).unwrap();
    let o = s.ferry("u", PW, &["put", "-r", origin.to_str().unwrap(), "/tree"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(remote_mtime(&s, "tree/sub/deeper/c.txt"), 1_500_000_154);
    let dst = local.path().join("copy");
    let dst_arg = dst.to_str().unwrap();

    let first = sync(&s, &[":tree", dst_arg]);
    assert_eq!(tally(&first.plan, "copy"), (3, 5 + 600 * 1024 + 1));
    assert_eq!(tally(&first.result.unwrap(), "copied").0, 3);
    for name in ["a.txt", "sub/big.bin", "sub/deeper/c.txt"] {
        assert_eq!(
            std::fs::read(dst.join(name)).unwrap(),
            f.read(format!("tree/{name}")),
            "{name}"
        );
        assert_eq!(
            mtime(&dst.join(name)),
            remote_mtime(&s, &format!("tree/{name}")),
            "{name}: mtime kept"
        );
    }
    assert!(dst.join("emptydir").is_dir());

    let second = sync(&s, &[":tree", dst_arg]);
    assert_eq!(tally(&second.plan, "copy"), (0, 0));
    assert_eq!(tally(&second.plan, "update"), (0, 0));
    assert_eq!(tally(&second.plan, "unchanged").0, 3);
    let result = second.result.unwrap();
    assert_eq!(tally(&result, "copied"), (0, 0));
    assert_eq!(tally(&result, "updated"), (0, 0));

    // The remote file changes: exactly it comes down.
    f.write("tree/a.txt", "ALPHA!");
    // Local extras: deleted only with --delete, and only inside DST.
    std::fs::write(dst.join("local-only.txt"), "mine").unwrap();
    std::fs::create_dir_all(dst.join("sub/mine/inner")).unwrap();
    std::fs::write(dst.join("sub/mine/inner/m.txt"), "m").unwrap();
    let beside = local.path().join("copy-beside.txt");
    std::fs::write(&beside, "beside").unwrap();
    let third = sync(&s, &[":tree", dst_arg]);
    assert_eq!(tally(&third.plan, "update"), (1, 6));
    assert_eq!(tally(&third.plan, "delete"), (0, 0));
    assert_eq!(tally(&third.result.unwrap(), "updated"), (1, 6));
    assert_eq!(std::fs::read(dst.join("a.txt")).unwrap(), b"ALPHA!");
    assert!(dst.join("local-only.txt").exists());

    let fourth = sync(&s, &["--delete", ":tree", dst_arg]);
    assert_eq!(tally(&fourth.plan, "delete"), (2, 5));
    assert_eq!(fourth.result.unwrap()["deleted"], 2);
    assert!(!dst.join("local-only.txt").exists());
    assert!(!dst.join("sub/mine").exists());
    assert!(dst.join("sub/big.bin").exists());
    assert_eq!(std::fs::read(&beside).unwrap(), b"beside");
}

#[test]
fn links_are_skipped_and_never_written_through() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("real.txt"), "real").unwrap();
    std::os::unix::fs::symlink("real.txt", src.join("link.txt")).unwrap();
    let o = sync_output(&s, &[src.to_str().unwrap(), ":dst"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("link.txt"), "warned: {}", stderr(&o));
    assert_eq!(tally(&parse(&o).plan, "copy"), (1, 4));
    assert!(!s.files("u").exists("dst/link.txt"));

    // Downloading onto a local link: the file it points to stays as it
    // was, and so does the link (even with --delete).
    s.files("u").write("dst/victim.txt", "from the server");
    let outside = local.path().join("outside.txt");
    std::fs::write(&outside, "untouched").unwrap();
    let dl = local.path().join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    std::os::unix::fs::symlink(&outside, dl.join("victim.txt")).unwrap();
    let o = sync_output(&s, &["--delete", ":dst", dl.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("victim.txt"), "warned: {}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched");
    assert!(dl.join("victim.txt").is_symlink());
    assert_eq!(
        std::fs::read_to_string(dl.join("real.txt")).unwrap(),
        "real"
    );
}

#[test]
fn exactly_one_side_is_remote_and_the_source_is_a_directory() {
    let s = server();
    for args in [["a", "b"], [":a", ":b"]] {
        let o = sync_output(&s, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("remote"), "{}", stderr(&o));
    }
    let local = tempfile::tempdir().unwrap();
    let o = sync_output(&s, &[":missing", local.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    s.files("u").write("file.txt", "x");
    let o = sync_output(&s, &[":file.txt", local.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
}
