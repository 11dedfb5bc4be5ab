//! The real `ferry` TUI in tmux against a real ferryd: `=` highlights
//! what differs, then `S` syncs the local directory up with `--delete`
//! and an exclude: the preview, the run through the queue, the result on
//! the server, a second run with nothing to do, and a download from the
//! remote pane; `#` by the server's checksums.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use ferry_e2e::tmux::Tmux;
use ferry_e2e::{bin, Server};

const PW: &str = "pw";

#[test]
fn s_syncs_up_one_changed_file_and_one_to_delete() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let f = s.files("u");
    f.write("changed.txt", b"old");
    f.write("gone.txt", b"only on the server");
    let local = tempfile::tempdir().unwrap();
    let home = local.path().join("home");
    let work = local.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("changed.txt"), b"the new contents").unwrap();
    std::fs::write(work.join("skip.tmp"), b"excluded").unwrap();
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the remote listing", |s| {
        s.contains("gone.txt") && s.contains("skip.tmp")
    });

    // `=`: the differences on both panes, counted.
    t.keys(&["="]);
    let screen = t.wait_for("the comparison", |s| {
        s.contains("3 differ (by size and time): 1 only local, 1 only remote, 1 changed")
    });
    assert!(
        screen.contains("+skip.tmp") && screen.contains("+gone.txt"),
        "{screen}"
    );
    t.keys(&["="]);

    // `S` from the local pane: upload; --delete on, *.tmp excluded.
    t.keys(&["S"]);
    t.wait_for("the sync dialog", |s| {
        s.contains("Direction") && s.contains("upload")
    });
    t.keys(&["Down", "Space", "Down", "Down", "Down"]);
    t.type_text("*.tmp");
    t.keys(&["Enter"]);
    let screen = t.wait_for("the preview", |s| s.contains("Sync preview"));
    assert!(screen.contains("~ changed.txt"), "{screen}");
    assert!(screen.contains("- gone.txt"), "{screen}");
    assert!(!screen.contains("+ skip.tmp"), "excluded: {screen}");
    assert!(screen.contains("to update        1 file"), "{screen}");
    assert!(screen.contains("to delete        1 file"), "{screen}");
    t.keys(&["Enter"]);
    t.wait_for("the sync done", |s| {
        s.contains("sync: 0 copied, 1 updated, 1 deleted")
    });
    assert_eq!(f.read("changed.txt"), b"the new contents");
    assert!(!f.exists("gone.txt"), "deleted on the server");
    assert!(!f.exists("skip.tmp"), "excluded");

    // Again: nothing to do (mtimes were kept).
    t.keys(&["S", "Down", "Space", "Down", "Down", "Down"]);
    t.type_text("*.tmp");
    t.keys(&["Enter"]);
    t.wait_for("nothing to do", |s| {
        s.contains("nothing to do: the destination is up to date")
    });
    t.keys(&["Enter"]);

    // From the remote pane, S downloads; without --delete skip.tmp stays.
    f.write("fresh.txt", b"made on the server");
    t.keys(&["Tab", "S"]);
    t.wait_for("the download dialog", |s| s.contains("download: :/ →"));
    t.keys(&["Enter"]);
    let screen = t.wait_for("the download preview", |s| s.contains("+ fresh.txt"));
    assert!(screen.contains("to copy          1 file"), "{screen}");
    t.keys(&["Enter"]);
    t.wait_for("the download done", |s| {
        s.contains("sync: 1 copied, 0 updated, 0 deleted")
    });
    assert_eq!(
        std::fs::read(work.join("fresh.txt")).unwrap(),
        b"made on the server"
    );
    assert!(work.join("skip.tmp").exists());
    t.quit();
}

/// `#` asks the server for its hashes: files of equal size and other
/// times are the same when their contents are, and `M` marks the rest
/// on its newer side.
#[test]
fn hash_compare_uses_the_servers_checksums_and_m_marks_the_rest() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let f = s.files("u");
    f.write("twin.txt", b"same");
    f.write("other.txt", b"wxyz");
    let local = tempfile::tempdir().unwrap();
    let home = local.path().join("home");
    let work = local.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    // Equal sizes, times years apart: `=` calls both changed.
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    for (name, text) in [("twin.txt", b"same"), ("other.txt", b"abcd")] {
        let p = work.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the remote listing", |s| {
        s.matches("twin.txt").count() == 2 && s.matches("other.txt").count() == 2
    });
    t.keys(&["="]);
    t.wait_for("both changed by time", |s| {
        s.contains("2 differ (by size and time): 0 only local, 0 only remote, 2 changed")
    });
    t.keys(&["#"]);
    let screen = t.wait_for("one changed by contents", |s| {
        s.contains("1 differ (by contents): 0 only local, 0 only remote, 1 changed")
    });
    assert!(screen.contains("<other.txt"), "older here: {screen}");
    assert!(screen.contains(" twin.txt"), "{screen}");
    t.keys(&["M"]);
    t.wait_for("marked", |s| {
        // Newer on the server: marked there only.
        s.contains("marked 0 local and 1 remote entries to copy")
    });
    t.quit();
}

/// A sync job that starts later than right after its preview (it waited
/// in the queue), and a retry of it, plan again: the remote `old/`
/// previewed for deletion gained `keep.txt`, which the source has too by
/// then, so it is kept (the previewed plan removed `old/` whole), and the
/// retry finds nothing to send (the previewed plan re-sent every file).
#[test]
fn a_sync_job_that_waited_or_is_retried_plans_again() {
    use ferry_tui::sync::{plan, Sides};
    use ferry_tui::transfer::RateLimiter;
    use ferry_tui::tui::action::Action;
    use ferry_tui::tui::queue::JobSpec;
    use ferry_tui::tui::sync_dialog::{How, PlanRef, Previewed, SyncJob, FRESH};
    use std::sync::Arc;

    let s = Server::start();
    s.add_user("u", PW, None);
    let f = s.files("u");
    f.write("dst/old/x.txt", b"only on the server");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"to send").unwrap();
    let sides = Sides {
        up: true,
        local: src.clone(),
        remote: ferry_proto::RemotePath::parse("/dst").unwrap(),
    };
    let how = How {
        delete: true,
        ..How::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = s.client("u", PW).await.unwrap();
        let previewed = plan(&c, &sides, &how.options()).await.unwrap();
        let job = SyncJob {
            sides: sides.clone(),
            how: how.clone(),
            plan: Previewed::new(PlanRef(Arc::new(previewed))),
        };
        let spec = JobSpec {
            direction: ferry_tui::transfer::Direction::Put,
            sources: vec![src.display().to_string()].into(),
            dest: "/dst".into(),
            name: None,
            conflict: ferry_tui::transfer::Conflict::Overwrite,
            follow_links: false,
            sync: Some(Box::new(job)),
        };
        // While the job waits: old/ gets a file the source now has too.
        std::fs::create_dir_all(src.join("old")).unwrap();
        std::fs::write(src.join("old/keep.txt"), b"keep me").unwrap();
        f.write("dst/old/keep.txt", b"keep me");
        tokio::time::sleep(FRESH + std::time::Duration::from_secs(1)).await;
        let run = |n: u64| {
            let (c, spec) = (c.clone(), spec.clone());
            async move {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let r = ferry_tui::tui::jobs::run(&c, n, &spec, &tx, RateLimiter::new(0)).await;
                drop(tx);
                let mut said = None;
                while let Some(a) = rx.recv().await {
                    if let Action::OpDone { message, .. } = a {
                        said = message;
                    }
                }
                (r, said.unwrap_or_default())
            }
        };
        let (r, said) = run(1).await;
        assert_eq!(r, Ok(()), "{said}");
        // a.txt copied, x.txt deleted (keep.txt may be updated or same).
        assert!(
            said.starts_with("sync: 1 copied, ") && said.contains(" updated, 1 deleted"),
            "{said}"
        );
        assert!(f.exists("dst/old/keep.txt"), "kept: the source has it now");
        assert!(!f.exists("dst/old/x.txt"));
        assert_eq!(f.read("dst/a.txt"), b"to send");
        // A retry (the same job again): nothing left to do.
        let (r, said) = run(2).await;
        assert_eq!(r, Ok(()), "{said}");
        assert!(
            said.starts_with("sync: 0 copied, 0 updated, 0 deleted"),
            "{said}"
        );
        c.close().await;
    });
}
