//! A sync's steps that move no bytes (deleting what only the destination
//! has) are announced as `TransferEvent::Phase` once its files are done,
//! through the real engine against the real ferryd: the TUI's stall
//! watchdog leaves a job in such a phase alone.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use ferry_e2e::{write_random, Server};
use ferry_proto::path::RemotePath;
use ferry_tui::sync::{self, Sides, SyncOptions};
use ferry_tui::transfer::{Events, TransferEvent};
use tokio::sync::mpsc;

const PW: &str = "pw";

#[test]
fn a_sync_says_when_it_deletes() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let files = s.files("u");
    files.write_random("dst/old/x.bin", 1000, 1);
    files.write_random("dst/stale.bin", 1000, 2);
    let work = tempfile::tempdir().unwrap();
    write_random(&work.path().join("new.bin"), 100_000, 3);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = rt.block_on(async {
        let c = s.client("u", PW).await.unwrap();
        let sides = Sides {
            up: true,
            local: work.path().to_path_buf(),
            remote: RemotePath::parse("/dst").unwrap(),
        };
        let opts = SyncOptions {
            delete: true,
            ..Default::default()
        };
        let plan = sync::plan(&c, &sides, &opts).await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let out = sync::run(&c, &sides, &plan, &opts, Events::to(tx))
            .await
            .unwrap();
        assert_eq!(out.deleted.len(), 2, "{out:?}");
        assert!(out.deleted.iter().all(|d| d.error.is_none()), "{out:?}");
        let mut events = Vec::new();
        while let Some(ev) = rx.recv().await {
            events.push(ev);
        }
        c.close().await;
        events
    });
    let phase = events
        .iter()
        .position(|e| matches!(e, TransferEvent::Phase { what: "deleting" }))
        .unwrap_or_else(|| panic!("no deleting phase: {events:?}"));
    let last_file = events
        .iter()
        .rposition(|e| matches!(e, TransferEvent::Finished { .. }))
        .unwrap();
    assert!(last_file < phase, "{events:?}");
    assert!(!files.exists("dst/old") && !files.exists("dst/stale.bin"));
    assert!(files.exists("dst/new.bin"));
}
