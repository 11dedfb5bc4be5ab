//! Per-user usage: one user's measurement never delays another's login.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use ferry_e2e::Server;

const PW: &str = "pw";

/// Fills `dir` with `n` empty directories, 500 per parent.
fn many_dirs(dir: &std::path::Path, n: usize) {
    for i in 0..n {
        let parent = dir.join(format!("d{}", i / 500));
        if i % 500 == 0 {
            std::fs::create_dir(&parent).unwrap();
        }
        std::fs::create_dir(parent.join(i.to_string())).unwrap();
    }
}

/// While ferryd walks one user's large home at her first login, another
/// user logs in and lists: nothing of hers waits for that walk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_usage_measurement_never_delays_another_login() {
    if ferry_e2e::disk_only(
        "the walk that measures a home on the disk at login (in object storage, usage is kept in the database)",
    ) {
        return;
    }
    // Nothing kept: every login of "big" measures her home again.
    let s = Server::start_with("[limits]\nusage_kept_secs = 0\nhandshake_timeout_secs = 60\n");
    s.add_user("big", PW, Some("1GiB"));
    s.add_user("small", PW, None);
    // On tmpfs where there is one: made and removed in seconds, where a
    // busy disk takes minutes.
    let shm = std::path::Path::new("/dev/shm");
    let tree = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let t = Instant::now();
    many_dirs(tree.path(), 200_000);
    eprintln!("made 200,000 directories in {:?}", t.elapsed());
    std::fs::remove_dir(s.home("big")).unwrap();
    std::os::unix::fs::symlink(tree.path(), s.home("big")).unwrap();

    // How long one login of "big" takes, walk included.
    let t = Instant::now();
    let c = s.client("big", PW).await.unwrap();
    let alone = t.elapsed();
    c.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await; // her account is forgotten
    eprintln!("login with a walk of 200,000 directories: {alone:?}");

    let big = {
        let opts = s.options("big", PW);
        tokio::spawn(async move { ferry_tui::client::connect(&opts).await })
    };
    // Well into her walk (the handshake is a small part of it), the other
    // user logs in and lists his home.
    tokio::time::sleep(alone / 4).await;
    let small = s.client("small", PW).await.unwrap();
    small.list("/").await.unwrap();
    assert!(
        !big.is_finished(),
        "the other user's login waited for the walk of a home not his"
    );
    big.await.unwrap().unwrap().close().await;
}
