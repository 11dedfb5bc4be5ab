//! A TUI queue job of many files, stopped after some of them finished (as
//! `p`, `c` or a lost connection stop it) and started again the way the
//! queue resumes it (`JobSpec::resumed`), through the real transfer engine
//! against the real ferryd: the files it finished are skipped as complete,
//! none fails "already exists", and every file arrives whole. Both ways.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_e2e::{write_random, Server};
use ferry_tui::client::Client;
use ferry_tui::transfer::{Conflict, Direction, RateLimiter, Status, TransferEvent};
use ferry_tui::tui::action::Action;
use ferry_tui::tui::jobs;
use ferry_tui::tui::queue::JobSpec;
use tokio::sync::mpsc;

const PW: &str = "pw";
const FILES: usize = 10;
const SIZE: usize = 256 << 10;

fn spec(direction: Direction, source: String, dest: String) -> JobSpec {
    JobSpec {
        direction,
        sources: Arc::from(vec![source]),
        dest,
        name: None,
        // The default of a copy with no conflict seen.
        conflict: Conflict::Auto,
        follow_links: false,
        sync: None,
    }
}

/// Runs `spec` slowly and drops it (as the runtime cancels a job) once at
/// least `stop_after` files finished; how many had.
async fn run_and_stop(c: &Client, spec: &JobSpec, stop_after: usize) -> usize {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (c2, s2) = (c.clone(), spec.clone());
    // 1 MiB/s: 2.5 s for the tree, so the job is stopped well before its end.
    let run =
        tokio::spawn(async move { jobs::run(&c2, 1, &s2, &tx, RateLimiter::new(1 << 20)).await });
    let mut done = 0;
    while let Some(a) = rx.recv().await {
        if let Action::JobEvent {
            event: TransferEvent::Finished { report, .. },
            ..
        } = a
        {
            assert!(report.status.is_done(), "{report:?}");
            done += 1;
            if done >= stop_after {
                break;
            }
        }
    }
    run.abort();
    let _ = run.await;
    done
}

/// Runs `spec` to its end; the reports of its files.
async fn run_to_end(c: &Client, spec: &JobSpec) -> Vec<Status> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let result = tokio::time::timeout(
        Duration::from_secs(120),
        jobs::run(c, 2, spec, &tx, RateLimiter::new(0)),
    )
    .await
    .expect("the resumed job finishes");
    assert_eq!(result, Ok(()));
    drop(tx);
    let mut out = Vec::new();
    while let Ok(a) = rx.try_recv() {
        if let Action::JobEvent {
            event: TransferEvent::Finished { report, .. },
            ..
        } = a
        {
            out.push(report.status);
        }
    }
    out
}

fn check(statuses: &[Status], stopped_after: usize) {
    assert_eq!(statuses.len(), FILES, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| !s.is_failed()),
        "no file fails on resume: {statuses:?}"
    );
    let skipped = statuses
        .iter()
        .filter(|s| matches!(s, Status::Skipped(why) if why.contains("already complete")))
        .count();
    assert!(
        skipped >= stopped_after,
        "the {stopped_after} finished files are skipped as complete: {statuses:?}"
    );
}

fn tree(dir: &Path) {
    for i in 0..FILES {
        write_random(&dir.join(format!("f{i}.bin")), SIZE, i as u64 + 1);
    }
}

#[test]
fn a_stopped_job_of_many_files_resumes_without_failing_its_finished_files() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let work = tempfile::tempdir().unwrap();
    let up = work.path().join("tree");
    tree(&up);
    let down = work.path().join("down");
    std::fs::create_dir_all(&down).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = s.client("u", PW).await.unwrap();

        // Upload: F5 on the local tree/ into the remote home.
        let put = spec(Direction::Put, up.display().to_string(), "/".into());
        let stopped = run_and_stop(&c, &put, 4).await;
        assert!(stopped < FILES, "stopped before the end");
        check(&run_to_end(&c, &put.resumed()).await, stopped);

        // Download: F5 on the remote tree/ into down/.
        let get = spec(Direction::Get, "/tree".into(), down.display().to_string());
        let stopped = run_and_stop(&c, &get, 4).await;
        assert!(stopped < FILES, "stopped before the end");
        check(&run_to_end(&c, &get.resumed()).await, stopped);
        c.close().await;
    });

    for i in 0..FILES {
        let name = format!("f{i}.bin");
        let want = std::fs::read(up.join(&name)).unwrap();
        assert!(
            s.files("u").read(format!("tree/{name}")) == want,
            "{name} up"
        );
        assert!(
            std::fs::read(down.join("tree").join(&name)).unwrap() == want,
            "{name} down"
        );
    }
}
