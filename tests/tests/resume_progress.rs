//! A resume says what it is doing while it hashes the partial it found
//! (`TransferEvent::Checking`, the TUI's "checking N MiB already there"),
//! before bytes move, in both directions.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::PermissionsExt;

use ferry_e2e::{local_partial, write_random, Server};
use ferry_tui::transfer::{get_paths, put_paths, Events, Status, TransferEvent, TransferOptions};
use sha2::{Digest, Sha256};

const PW: &str = "pw";
const HELD: u64 = 1 << 20;

/// Where `Checking` and `Started` came, and what they said.
fn checked_then_started(events: &[TransferEvent]) {
    let checking = events
        .iter()
        .position(|e| matches!(e, TransferEvent::Checking { bytes, .. } if *bytes == HELD));
    let started = events.iter().position(
        |e| matches!(e, TransferEvent::Started { resumed_from, .. } if *resumed_from == HELD),
    );
    match (checking, started) {
        (Some(c), Some(s)) => assert!(c < s, "checking comes first: {events:?}"),
        _ => panic!("no checking then a resumed start: {events:?}"),
    }
}

fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<TransferEvent>) -> Vec<TransferEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[tokio::test]
async fn a_resume_says_it_is_checking_the_partial_both_ways() {
    if ferry_e2e::disk_only("what the server keeps on its disk") {
        return;
    }
    let s = Server::start();
    s.add_user("u", PW, None);
    let home = s.home("u");
    let local = tempfile::tempdir().unwrap();

    // Upload: the server holds the first MiB of up.bin from an earlier try
    // (placed before the first login, so the home's usage counts it).
    let src = local.path().join("up.bin");
    write_random(&src, 3 << 20, 1);
    let area = home.join(".ferry-partials");
    std::fs::create_dir_all(&area).unwrap();
    std::fs::set_permissions(&area, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key: String = Sha256::digest(b"/up.bin")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(area.join(key), &bytes[..HELD as usize]).unwrap();

    let client = s.client("u", PW).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = TransferOptions::default();
    let reports = put_paths(
        &client,
        std::slice::from_ref(&src),
        "/up.bin",
        opts.clone(),
        Events::to(tx),
    )
    .await
    .unwrap();
    assert_eq!(reports[0].status, Status::Done);
    assert_eq!(std::fs::read(home.join("up.bin")).unwrap(), bytes);
    checked_then_started(&drain(&mut rx));

    // Download: the client holds the first MiB of big.bin.
    write_random(&home.join("big.bin"), 3 << 20, 2);
    let dest = local.path().join("big.bin");
    let remote = std::fs::read(home.join("big.bin")).unwrap();
    std::fs::write(local_partial(&dest), &remote[..HELD as usize]).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reports = get_paths(&client, &["big.bin".into()], &dest, opts, Events::to(tx))
        .await
        .unwrap();
    assert_eq!(reports[0].status, Status::Done);
    assert_eq!(std::fs::read(&dest).unwrap(), remote);
    checked_then_started(&drain(&mut rx));
}
