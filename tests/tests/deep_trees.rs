//! Deep trees: one made outside ferryd, deeper than any stack, is measured
//! at login and removed without crashing the server; ferryd itself creates
//! nothing deeper than `limits.max_depth`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::fd::OwnedFd;
use std::path::Path;

use ferry_e2e::{stderr, Server};
use ferry_proto::msg::RemoveMode;
use rustix::fs::{mkdirat, openat, unlinkat, AtFlags, Mode, OFlags, CWD};

const PW: &str = "s3cret pass";

fn open_dir(at: impl rustix::fd::AsFd, name: &str) -> OwnedFd {
    openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

fn write_at(at: impl rustix::fd::AsFd, name: &str, len: usize) {
    let fd = openat(
        at,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::io::write(&fd, &vec![7u8; len]).unwrap();
}

/// Builds `levels` nested directories named `d` under `top`, one name at
/// a time relative to the last (no path ever reaches PATH_MAX), with a
/// file of `leaf` bytes at the bottom.
fn build_chain(top: &Path, levels: usize, leaf: usize) {
    let mut fd = openat(
        CWD,
        top,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    for _ in 0..levels {
        mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
        fd = open_dir(&fd, "d");
    }
    write_at(&fd, "leaf", leaf);
}

/// Removes what [`build_chain`] made, bottom up through `..`, so a failed
/// test does not leave the temporary root to std's recursive removal.
struct Chain<'a>(&'a Path);

impl Drop for Chain<'_> {
    fn drop(&mut self) {
        let Ok(mut fd) = openat(
            CWD,
            self.0,
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        ) else {
            return;
        };
        let mut depth = 0;
        while let Ok(next) = openat(
            &fd,
            "d",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
            Mode::empty(),
        ) {
            fd = next;
            depth += 1;
        }
        let _ = unlinkat(&fd, "leaf", AtFlags::empty());
        for _ in 0..depth {
            fd = open_dir(&fd, "..");
            let _ = unlinkat(&fd, "d", AtFlags::REMOVEDIR);
        }
    }
}

/// 20,000 levels built behind ferryd's back: the login's usage walk and
/// `rm -r` used to recurse once per level (stack overflow, or two open
/// files per level); now both finish and the server lives on.
#[test]
fn a_tree_deeper_than_any_stack_is_measured_and_removed() {
    if ferry_e2e::disk_only(
        "a 20,000-level tree built on the disk behind ferryd's back (the disk engine's usage walk and rm -r)",
    ) {
        return;
    }
    let mut s = Server::start();
    s.add_user("u", PW, Some("10MiB"));
    let home = s.home("u");
    std::fs::write(home.join("top"), vec![1u8; 500]).unwrap();
    build_chain(&home, 20_000, 1000);
    let _chain = Chain(&home);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The first login measures the home.
        let c = match s.client("u", PW).await {
            Ok(c) => c,
            Err(e) => {
                std::thread::sleep(std::time::Duration::from_millis(500));
                let log = std::fs::read_to_string(s.config.with_file_name("ferryd.log"));
                let log = log.unwrap_or_default();
                let tail = &log[log.len().saturating_sub(600)..];
                panic!(
                    "login failed ({e}); ferryd running: {}; log ends:\n{tail}",
                    s.is_running()
                );
            }
        };
        // The files' bytes and 4 KiB per directory.
        assert_eq!(
            c.quota().await.unwrap().0,
            1500 + 20_000 * 4096,
            "usage counts the deep leaf"
        );
        c.remove("d", RemoveMode::Recursive).await.unwrap();
        assert!(s.is_running(), "ferryd died removing a deep tree");
        assert_eq!(c.quota().await.unwrap().0, 500);
    });
    assert!(!home.join("d").exists(), "the whole chain is gone");
    assert!(home.join("top").exists());
}

/// Nothing ferryd does nests deeper than `limits.max_depth`: not
/// `mkdir -p`, not a move of a directory into a deeper place (its own
/// depth counts), not an upload into an over-deep directory made outside.
#[test]
fn operations_cannot_nest_deeper_than_the_limit() {
    let s = Server::start_with(
        "[limits]\nhandshake_timeout_secs = 5\nmax_depth = 8\n[auth]\niterations = 4096\n",
    );
    s.add_user("u", PW, None);
    let run = |args: &[&str]| s.ferry("u", PW, args);
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    let too_deep = |args: &[&str]| {
        let o = run(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains("too deep"), "{args:?}: {}", stderr(&o));
    };
    ok(&["mkdir", "-p", "1/2/3/4/5/6/7/8"]);
    too_deep(&["mkdir", "-p", "1/2/3/4/5/6/7/8/9"]);
    too_deep(&["mkdir", "-p", "a/b/c/d/e/f/g/h/i/j"]);
    // t/x/y moved to depth 7 would put y at 9; to depth 6, at 8.
    ok(&["mkdir", "-p", "t/x/y"]);
    ok(&["mkdir", "-p", "p/q/r/s/v/w"]);
    too_deep(&["mv", "t", "p/q/r/s/v/w/t"]);
    ok(&["mv", "t", "p/q/r/s/v/t"]);
    // Moving a deep tree up creates no depth.
    ok(&["mv", "p/q/r/s/v/t", "t2"]);
    if s.store.is_some() {
        // Object storage has no outside to make one in.
        return;
    }
    // An over-deep directory made outside: reachable, but nothing new in it.
    let home = s.home("u");
    std::fs::create_dir_all(home.join("o/o/o/o/o/o/o/o/o")).unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("f"), b"hello").unwrap();
    let f = local.path().join("f");
    too_deep(&["put", f.to_str().unwrap(), "/o/o/o/o/o/o/o/o/o/f"]);
    ok(&["put", f.to_str().unwrap(), "/o/o/o/o/o/o/o/f"]);
    ok(&["rm", "-r", "o"]);
}
