//! A resume says what it is doing while it hashes the partial it found
//! (`TransferEvent::Checking`, the TUI's "checking N MiB already there"),
//! before bytes move, in both directions.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::PermissionsExt;

use ferry_e2e::uploads::part_size;
use ferry_e2e::{local_partial, write_random, Server};
use ferry_tui::transfer::{get_paths, put_paths, Events, Status, TransferEvent, TransferOptions};
use sha2::{Digest, Sha256};

const PW: &str = "pw";
const HELD: u64 = 1 << 20;

/// Where `Checking` and `Started` came, and what they said: the bytes
/// checked are those resumed from, `held` if given, else more than none.
fn checked_then_started(events: &[TransferEvent], held: Option<u64>) {
    let started = events.iter().position(
        |e| matches!(e, TransferEvent::Started { resumed_from, .. } if held.is_none_or(|h| *resumed_from == h) && *resumed_from > 0),
    );
    let resumed = started.map(|i| match &events[i] {
        TransferEvent::Started { resumed_from, .. } => *resumed_from,
        _ => 0,
    });
    let checking = events.iter().position(
        |e| matches!(e, TransferEvent::Checking { bytes, .. } if Some(*bytes) == resumed),
    );
    match (checking, started) {
        (Some(c), Some(s)) => assert!(c < s, "checking comes first: {events:?}"),
        _ => panic!("no checking then a resumed start: {events:?}"),
    }
}

fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<TransferEvent>) -> Vec<TransferEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// The server holds the start of up.bin from an earlier try: on the disk
/// a partial placed before the first login (so the home's usage counts
/// it), in object storage the parts done before a slow put was killed.
fn leave_a_partial_upload(s: &Server, src: &std::path::Path) -> Option<u64> {
    if s.store.is_some() {
        let mut put = s
            .ferry_command(
                "u",
                PW,
                &["put", src.to_str().unwrap(), "--limit-rate", "4MiB"],
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        ferry_e2e::uploads::wait_for_held(s, "u", "up.bin", 1);
        put.kill().unwrap();
        put.wait().unwrap();
        // Resumed from the last part done, whichever that is by now.
        return None;
    }
    let area = s.home("u").join(".ferry-partials");
    std::fs::create_dir_all(&area).unwrap();
    std::fs::set_permissions(&area, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key: String = Sha256::digest(b"/up.bin")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let bytes = std::fs::read(src).unwrap();
    std::fs::write(area.join(key), &bytes[..HELD as usize]).unwrap();
    Some(HELD)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_upload_says_it_is_checking_the_partial() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    // In object storage, more than a part: a cut resumes from a part's end.
    let size = (3 << 20).max(part_size(&s).map_or(0, |p| p as usize + (4 << 20)));
    let src = local.path().join("up.bin");
    write_random(&src, size, 1);
    let held = tokio::task::block_in_place(|| leave_a_partial_upload(&s, &src));

    let client = s.client("u", PW).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reports = put_paths(
        &client,
        std::slice::from_ref(&src),
        "/up.bin",
        TransferOptions::default(),
        Events::to(tx),
    )
    .await
    .unwrap();
    assert_eq!(reports[0].status, Status::Done);
    let bytes = std::fs::read(&src).unwrap();
    assert_eq!(
        tokio::task::block_in_place(|| s.files("u").read("up.bin")),
        bytes
    );
    checked_then_started(&drain(&mut rx), held);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_download_says_it_is_checking_the_partial() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    // The client holds the first MiB of big.bin.
    let remote = tokio::task::block_in_place(|| {
        s.files("u").write_random("big.bin", 3 << 20, 2);
        s.files("u").read("big.bin")
    });
    let dest = local.path().join("big.bin");
    std::fs::write(local_partial(&dest), &remote[..HELD as usize]).unwrap();
    let client = s.client("u", PW).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reports = get_paths(
        &client,
        &["big.bin".into()],
        &dest,
        TransferOptions::default(),
        Events::to(tx),
    )
    .await
    .unwrap();
    assert_eq!(reports[0].status, Status::Done);
    assert_eq!(std::fs::read(&dest).unwrap(), remote);
    checked_then_started(&drain(&mut rx), Some(HELD));
}
