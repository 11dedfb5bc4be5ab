//! Symbolic links, one rule both ways and in the CLI and the TUI: a link
//! named on the command line (or marked) is copied as what it points to;
//! links inside a tree are skipped unless `-L`; a followed link that loops
//! back is skipped; a broken one is reported. (The TUI's `L` toggle sets
//! the same option: see `tui_tmux.rs`.)

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::symlink;
use std::path::Path;

use ferry_e2e::{stderr, write_random, Server};

const PW: &str = "pw";
const CHUNK: usize = ferry_proto::CHUNK_SIZE;

fn server() -> Server {
    let s = Server::start();
    s.add_user("u", PW, None);
    s
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// The server's home holds `real.bin` (over one chunk), `small.txt`, `d/x.bin`
/// and a tree `t` with links to them, a loop and a broken link.
fn remote_links(s: &Server) -> std::path::PathBuf {
    let h = s.home("u");
    write_random(&h.join("real.bin"), 3 * CHUNK + 5, 1);
    std::fs::write(h.join("small.txt"), "small").unwrap();
    write_random(&h.join("d/x.bin"), 1000, 2);
    symlink("real.bin", h.join("alias.bin")).unwrap();
    symlink("small.txt", h.join("small-alias")).unwrap();
    symlink("d", h.join("linked")).unwrap();
    symlink("nowhere", h.join("gone")).unwrap();
    write_random(&h.join("t/own.bin"), 10, 3);
    symlink("../real.bin", h.join("t/alias.bin")).unwrap();
    symlink("../d", h.join("t/linked")).unwrap();
    symlink(".", h.join("t/loop")).unwrap();
    symlink("nowhere", h.join("t/gone")).unwrap();
    h
}

/// A remote link named in `get` is downloaded as what it points to (it was
/// skipped as "not a regular file": "0 files done" in the TUI).
#[test]
fn a_remote_link_named_is_copied_as_what_it_points_to() {
    if ferry_e2e::disk_only("symbolic links in a home (object storage has none)") {
        return;
    }
    let s = server();
    let h = remote_links(&s);
    let local = tempfile::tempdir().unwrap();
    let out = local.path();
    for (name, src) in [("alias.bin", "real.bin"), ("small-alias", "small.txt")] {
        let o = s.ferry("u", PW, &["get", name, out.join(name).to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(h.join(src)).unwrap(),
            "{name}"
        );
        assert!(!is_link(&out.join(name)));
    }
    // A link to a directory, with -r, is the directory's tree.
    let o = s.ferry(
        "u",
        PW,
        &["get", "-r", "linked", out.join("ld").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("ld/x.bin")).unwrap().len(), 1000);
    // A broken link is reported, not copied.
    let o = s.ferry("u", PW, &["get", "gone", out.join("g").to_str().unwrap()]);
    assert!(
        stderr(&o).contains("gone: broken link skipped"),
        "{}",
        stderr(&o)
    );
    assert!(!out.join("g").exists());
}

/// Inside a remote tree, links are skipped without -L and followed with it;
/// the loop is followed once at most (no link inside a directory reached
/// through a link is followed), and the broken one is reported.
#[test]
fn remote_links_inside_a_tree_are_followed_only_with_dash_l() {
    if ferry_e2e::disk_only("symbolic links in a home (object storage has none)") {
        return;
    }
    let s = server();
    let h = remote_links(&s);
    let local = tempfile::tempdir().unwrap();
    let plain = local.path().join("plain");
    let o = s.ferry("u", PW, &["get", "-r", "t", plain.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("symbolic link skipped (use -L"), "{err}");
    assert!(plain.join("own.bin").exists());
    for name in ["alias.bin", "linked", "loop", "gone"] {
        assert!(!plain.join(name).exists(), "{name} copied without -L");
    }

    let followed = local.path().join("followed");
    let o = s.ferry(
        "u",
        PW,
        &["get", "-r", "-L", "t", followed.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        std::fs::read(followed.join("alias.bin")).unwrap(),
        std::fs::read(h.join("real.bin")).unwrap()
    );
    assert_eq!(
        std::fs::read(followed.join("linked/x.bin")).unwrap().len(),
        1000
    );
    assert!(followed.join("loop/own.bin").exists(), "the loop once");
    assert!(!followed.join("loop/loop").exists(), "the loop twice");
    assert!(err.contains("not followed (it could loop)"), "{err}");
    assert!(err.contains("gone: broken link skipped"), "{err}");
    assert!(!is_link(&followed.join("alias.bin")));
}

/// A local link that loops back to a directory above it is skipped with
/// -L (the walk went round until the path was too long and failed); a
/// broken link named in `put` is reported and skipped.
#[test]
fn a_local_loop_is_skipped_and_a_broken_link_reported() {
    let s = server();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("t");
    write_random(&tree.join("sub/a.bin"), 100, 1);
    symlink("..", tree.join("sub/up")).unwrap();
    symlink("nowhere", local.path().join("gone")).unwrap();
    let o = s.ferry("u", PW, &["put", "-r", "-L", tree.to_str().unwrap(), "/t"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("(a loop) skipped"), "{}", stderr(&o));
    assert!(s.files("u").exists("t/sub/a.bin"));
    assert!(!s.files("u").exists("t/sub/up"));
    let gone = local.path().join("gone");
    let o = s.ferry("u", PW, &["put", gone.to_str().unwrap(), "/gone"]);
    assert!(stderr(&o).contains("broken link skipped"), "{}", stderr(&o));
    assert!(!s.files("u").exists("gone"));
}
