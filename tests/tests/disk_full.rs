//! A full disk on either side: a clear error, the partial kept for a later
//! resume, nothing else damaged. Uses small tmpfs mounts, so it needs root
//! (CI runs as root); elsewhere it says it was skipped.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_e2e::{stderr, write_random, Server};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .ok()?
            .success();
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_on_either_side() {
    if ferry_e2e::disk_only("a full file system (a small tmpfs) under the server's homes") {
        return;
    }
    let s = Server::start();
    s.add_user("d", "pw", None);
    let Some(_server_disk) = Tmpfs::mount(&s.home("d"), "3m") else {
        eprintln!("SKIPPED disk_full_on_either_side: mounting a tmpfs needs root");
        return;
    };
    std::fs::write(s.home("d").join("precious.txt"), "keep me").unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("big.bin");
    write_random(&src, 5 << 20, 1);

    let o = s.ferry("d", "pw", &["put", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no space left on the server"),
        "{}",
        stderr(&o)
    );
    assert!(!s.home("d").join("big.bin").exists());
    let part = std::fs::metadata(s.partial("d", "big.bin")).unwrap().len();
    assert!(part > 0, "partial kept for a resume");
    assert_eq!(
        std::fs::read_to_string(s.home("d").join("precious.txt")).unwrap(),
        "keep me"
    );
    // The server is fine and the quota report is sane.
    let o = s.ferry("d", "pw", &["quota"]);
    assert!(o.status.success());

    // Now the client's disk fills on a download.
    std::fs::remove_file(s.partial("d", "big.bin")).unwrap();
    write_random(&s.home("d").join("two.bin"), 2 << 20, 2);
    let small = local.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let Some(_client_disk) = Tmpfs::mount(&small, "1m") else {
        panic!("second tmpfs mount failed")
    };
    std::fs::write(small.join("mine.txt"), "mine").unwrap();
    let o = s.ferry("d", "pw", &["get", "two.bin", small.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("No space left on device"),
        "{}",
        stderr(&o)
    );
    assert!(!small.join("two.bin").exists());
    assert!(
        std::fs::metadata(ferry_tui::transfer::local::partial_path(
            &small.join("two.bin")
        ))
        .unwrap()
        .len()
            > 0
    );
    assert_eq!(
        std::fs::read_to_string(small.join("mine.txt")).unwrap(),
        "mine"
    );
}
