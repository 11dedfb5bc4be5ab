//! Corruption in transit is caught on both sides; quotas hold up front,
//! against a client that lies about sizes, and under concurrent uploads;
//! stale partials are swept; browsing works while data streams.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::time::Duration;

use ferry_e2e::raw::Raw;
use ferry_e2e::uploads::held;
use ferry_e2e::{corrupting_proxy, write_random, Server};
use ferry_proto::{ClientMsg, ErrorKind, Frame, Reply, Request, ServerMsg};
use ferry_tui::client::{connect, ConnectOptions};
use ferry_tui::transfer::{get_paths, put_paths, Events, Status, TransferEvent, TransferOptions};
use futures::SinkExt;

const PW: &str = "pw";

/// The server's client options, pointed at a proxy instead.
fn proxied(s: &Server, proxy: std::net::SocketAddr) -> ConnectOptions {
    let mut opts = s.options("u", PW);
    opts.server = proxy.to_string();
    opts
}

#[tokio::test]
async fn a_corrupted_chunk_is_rejected_both_ways() {
    // In plaintext, where Ferry's own SHA-256 is the only defence (over TLS
    // a flipped byte already breaks the record MAC; see the TLS tests).
    let s = Server::start_plaintext();
    s.add_user("u", PW, Some("100MiB"));
    let local = tempfile::tempdir().unwrap();
    s.files("u").write_random("big.bin", 2 << 20, 9);

    // Download through a proxy that flips one byte of file data.
    let proxy = corrupting_proxy(s.addr, true, 1_000_000).await;
    let client = connect(&proxied(&s, proxy)).await.unwrap();
    let dest = local.path().join("big.bin");
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
    if s.store.is_some() {
        // Object storage sends the SHA-256 recorded at upload: the client
        // takes a mismatch for a stale record, says so, and asks again
        // with a fresh hash (see the test of stale records below), which
        // gets the file right.
        assert_eq!(reports[0].status, Status::Done, "corruption not caught");
        let warned = std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|e| matches!(e, TransferEvent::Warning { .. }))
            .count();
        assert!(warned >= 1, "the mismatch is reported");
        assert_eq!(
            Some(std::fs::read(&dest).unwrap()),
            s.files("u").try_read("big.bin")
        );
    } else {
        match &reports[0].status {
            Status::Failed(msg) => assert!(msg.contains("does not match"), "{msg}"),
            other => panic!("corruption not caught: {other:?}"),
        }
        assert!(!dest.exists(), "no torn file under the final name");
    }
    assert!(
        !ferry_tui::transfer::local::partial_path(&local.path().join("big.bin")).exists(),
        "bad partial discarded"
    );

    // Upload through a proxy that flips one byte on the way up.
    let src = local.path().join("up.bin");
    write_random(&src, 2 << 20, 10);
    let proxy = corrupting_proxy(s.addr, false, 1_000_000).await;
    let client = connect(&proxied(&s, proxy)).await.unwrap();
    let reports = put_paths(
        &client,
        std::slice::from_ref(&src),
        "/up.bin",
        TransferOptions::default(),
        Events::none(),
    )
    .await
    .unwrap();
    match &reports[0].status {
        Status::Failed(msg) => assert!(
            msg.contains("does not match") || msg.contains("corrupted in transit"),
            "{msg}"
        ),
        other => panic!("corruption not caught: {other:?}"),
    }
    assert!(!s.files("u").exists("up.bin"));
    assert_eq!(held(&s, "u", "up.bin"), 0, "nothing kept to resume");
    if s.store.is_none() {
        assert!(!s.partial("u", "up.bin").exists());
    }
    let c = s.client("u", PW).await.unwrap();
    assert_eq!(c.quota().await.unwrap().0, 2 << 20, "only big.bin counts");
}

#[tokio::test]
async fn quota_refuses_up_front_and_leaves_nothing() {
    let s = Server::start();
    s.add_user("q", PW, Some("1MiB"));
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("two.bin");
    write_random(&src, 2 << 20, 1);
    let c = s.client("q", PW).await.unwrap();
    let reports = put_paths(&c, &[src], "/", TransferOptions::default(), Events::none())
        .await
        .unwrap();
    match &reports[0].status {
        Status::Failed(msg) => assert!(msg.contains("disk quota exceeded"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(c.list("/").await.unwrap().is_empty(), "nothing in the home");
    assert_eq!(held(&s, "q", "two.bin"), 0, "not even a partial");
    if s.store.is_none() {
        assert_eq!(
            std::fs::read_dir(s.home("q"))
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_name() != ferry_proto::msg::PARTIALS_DIR)
                .count(),
            0,
            "nothing in the home"
        );
        assert!(!s.partial("q", "two.bin").exists(), "not even a partial");
    }
    assert_eq!(c.quota().await.unwrap(), (0, Some(1 << 20)));
}

#[tokio::test]
async fn a_client_lying_about_the_size_is_stopped_at_the_quota() {
    let s = Server::start();
    s.add_user("q", PW, Some("1MiB"));
    let mut raw = Raw::connect(&s).await;
    raw.login("q", PW).await.unwrap();
    let put = Request::PutOpen {
        transfer: 1,
        path: "liar.bin".into(),
        size: 1000,
        mtime: 0,
        mode: 0o644,
        overwrite: false,
        resume: true,
        eager: false,
    };
    raw.send(&ClientMsg::Request { id: 1, req: put }).await;
    let Some(ServerMsg::Response {
        reply: Ok(Reply::PutReady { partial: 0, .. }),
        ..
    }) = raw.recv().await
    else {
        panic!("not ready")
    };
    raw.send(&ClientMsg::PutStart {
        transfer: 1,
        offset: 0,
    })
    .await;
    let chunk = bytes::Bytes::from(vec![0xAB; 256 * 1024]);
    for _ in 0..8 {
        // The server may stop reading us; do not wait forever.
        let sent = tokio::time::timeout(
            Duration::from_secs(2),
            raw.wr.send(Frame::Data {
                transfer: 1,
                data: chunk.clone(),
            }),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            break;
        }
    }
    match raw.recv().await {
        Some(ServerMsg::Response {
            id: 1,
            reply: Err(e),
        }) => assert_eq!(e.kind, ErrorKind::QuotaExceeded, "{e}"),
        other => panic!("liar not stopped: {other:?}"),
    }
    let c = s.client("q", PW).await.unwrap();
    let (used, limit) = c.quota().await.unwrap();
    assert!(used <= limit.unwrap(), "{used}");
    assert!(held(&s, "q", "liar.bin") <= 1 << 20);
    assert!(!s.files("q").exists("liar.bin"));
}

#[tokio::test]
async fn parallel_uploads_race_against_one_quota() {
    let s = Server::start();
    s.add_user("q", PW, Some("10MiB"));
    let local = tempfile::tempdir().unwrap();
    let mut tasks = Vec::new();
    for i in 0..5 {
        let src: PathBuf = local.path().join(format!("f{i}.bin"));
        write_random(&src, 3 << 20, i);
        let opts = s.options("q", PW);
        // Separate connections, all at once.
        tasks.push(tokio::spawn(async move {
            let c = connect(&opts).await.unwrap();
            put_paths(&c, &[src], "/", TransferOptions::default(), Events::none())
                .await
                .unwrap()
                .remove(0)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap().status {
            Status::Done => ok += 1,
            Status::Failed(msg) => assert!(msg.contains("quota"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ok, 3, "exactly three 3 MiB files fit in 10 MiB");
    let c = s.client("q", PW).await.unwrap();
    assert_eq!(c.quota().await.unwrap().0, 9 << 20);
}

#[tokio::test]
async fn stale_partials_are_swept() {
    if ferry_e2e::disk_only(
        "the disk engine's sweep of stale partial files (object storage's sweeper: objects.rs)",
    ) {
        return;
    }
    let s = Server::start_with(
        "[limits]\nhandshake_timeout_secs = 5\n[auth]\niterations = 4096\n[transfers]\npartial_max_age_secs = 1\nsweep_interval_secs = 1\n",
    );
    s.add_user("u", PW, None);
    let part = s.partial("u", "old.bin");
    std::fs::write(&part, vec![1u8; 5000]).unwrap();
    let keep = s.home("u").join("keep.bin");
    std::fs::write(&keep, b"x").unwrap();
    for _ in 0..200 {
        if !part.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!part.exists(), "stale partial removed");
    assert!(keep.exists());
}

#[tokio::test]
async fn browsing_is_answered_while_data_streams() {
    let s = Server::start();
    s.add_user("u", PW, None);
    s.files("u").write_random("big.bin", 16 << 20, 5);
    let local = tempfile::tempdir().unwrap();
    let c = s.client("u", PW).await.unwrap();
    let opts = TransferOptions {
        rate_limit: Some(8 << 20),
        ..TransferOptions::default()
    };
    let c2 = c.clone();
    let dest = local.path().join("big.bin");
    let transfer = tokio::spawn(async move {
        get_paths(&c2, &["big.bin".into()], &dest, opts, Events::none()).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        assert_eq!(c.list("/").await.unwrap().len(), 1);
        c.stat("big.bin").await.unwrap();
    }
    assert!(
        !transfer.is_finished(),
        "browsing finished while the transfer was still running"
    );
    let reports = transfer.await.unwrap().unwrap();
    assert_eq!(reports[0].status, Status::Done);
}

#[tokio::test]
async fn over_tls_a_flipped_byte_breaks_the_connection_and_tears_nothing() {
    let s = Server::start();
    s.add_user("u", PW, None);
    s.files("u").write_random("big.bin", 2 << 20, 11);
    let local = tempfile::tempdir().unwrap();
    let proxy = corrupting_proxy(s.addr, true, 1_000_000).await;
    let client = connect(&proxied(&s, proxy)).await.unwrap();
    let dest = local.path().join("big.bin");
    let reports = get_paths(
        &client,
        &["big.bin".into()],
        &dest,
        TransferOptions::default(),
        Events::none(),
    )
    .await
    .unwrap();
    assert!(reports[0].status.is_failed(), "{:?}", reports[0].status);
    assert!(!dest.exists());
}

/// A raw download of `path`: the `GetDone` hash and whether it was the one
/// recorded at upload.
async fn raw_get(raw: &mut Raw, transfer: u32, path: &str, rehash: bool) -> ([u8; 32], bool) {
    use futures::StreamExt;
    let req = Request::GetOpen {
        transfer,
        path: path.into(),
        offset: 0,
        prefix_sha256: None,
        rehash,
    };
    raw.send(&ClientMsg::Request { id: transfer, req }).await;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), raw.rd.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Frame::Data { .. } = frame {
            continue;
        }
        match frame.decode_control::<ServerMsg>().unwrap() {
            ServerMsg::Response {
                reply: Ok(Reply::GetReady { .. }),
                ..
            } => {}
            ServerMsg::Response {
                reply: Ok(Reply::GetDone { sha256, stored }),
                ..
            } => return (sha256, stored),
            other => panic!("{other:?}"),
        }
    }
}

/// Uploads one local file and checks it arrived.
async fn put_one(client: &ferry_tui::client::Client, src: &std::path::Path, remote: &str) {
    let opts = TransferOptions::default();
    let srcs = [src.to_path_buf()];
    let put = put_paths(client, &srcs, remote, opts, Events::none());
    assert_eq!(put.await.unwrap()[0].status, Status::Done);
}

fn sha256_of(path: &std::path::Path) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).into()
}

#[tokio::test]
async fn downloads_send_the_checksum_recorded_at_upload_and_heal_a_stale_one() {
    if ferry_e2e::disk_only(
        "a file changed in place on the disk behind ferryd's back (blobs in object storage are immutable)",
    ) {
        return;
    }
    let s = Server::start_plaintext();
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f.bin");
    write_random(&src, 3 << 20, 21);
    let client = s.client("u", PW).await.unwrap();
    let opts = TransferOptions::default;
    put_one(&client, &src, "/").await;
    let on_server = s.home("u").join("f.bin");
    let mut raw = Raw::connect(&s).await;
    raw.login("u", PW).await.unwrap();
    let (sha, stored) = raw_get(&mut raw, 1, "f.bin", false).await;
    if !stored {
        // No user extended attributes on this filesystem: nothing to test.
        eprintln!("no checksum recorded here (filesystem without user xattrs?); skipped");
        return;
    }
    assert_eq!(sha, sha256_of(&src), "the hash verified at upload");
    assert_eq!(raw_get(&mut raw, 2, "f.bin", true).await, (sha, false));

    // Changed in place behind ferryd's back, size and mtime restored: the
    // record looks valid but is wrong.
    let edit_in_place = |path: &std::path::Path| {
        use std::io::{Seek, SeekFrom, Write};
        let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.seek(SeekFrom::Start(2_000_000)).unwrap();
        f.write_all(b"edited in place").unwrap();
        f.set_modified(mtime).unwrap();
    };
    edit_in_place(&on_server);
    assert_eq!(raw_get(&mut raw, 3, "f.bin", false).await, (sha, true));
    let warnings = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<TransferEvent>| {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|e| matches!(e, TransferEvent::Warning { .. }))
            .count()
    };
    // The client finds the mismatch, says so, asks again with a fresh hash
    // and gets the file as it now is.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let dest = local.path().join("back.bin");
    let get = get_paths(&client, &["f.bin".into()], &dest, opts(), Events::to(tx)).await;
    let report = &get.unwrap()[0];
    assert_eq!(report.status, Status::Done);
    assert_eq!(report.resumed_from, 0);
    assert_eq!(warnings(&mut rx), 1);
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(&on_server).unwrap()
    );
    assert!(!ferry_tui::transfer::local::partial_path(&local.path().join("back.bin")).exists());
    // ... and the server dropped the wrong record.
    let fresh = sha256_of(&on_server);
    assert_eq!(raw_get(&mut raw, 4, "f.bin", false).await, (fresh, false));

    // With --rehash the server hashes as it reads: no mismatch, no
    // warning, and the wrong record is dropped all the same.
    put_one(&client, &src, "/f2.bin").await;
    let on_server = s.home("u").join("f2.bin");
    edit_in_place(&on_server);
    assert_eq!(raw_get(&mut raw, 5, "f2.bin", false).await, (sha, true));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let dest = local.path().join("rehashed.bin");
    let rehash = TransferOptions {
        rehash: true,
        ..opts()
    };
    let get = get_paths(&client, &["f2.bin".into()], &dest, rehash, Events::to(tx)).await;
    assert_eq!(get.unwrap()[0].status, Status::Done);
    assert_eq!(warnings(&mut rx), 0);
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(&on_server).unwrap()
    );
    assert_eq!(raw_get(&mut raw, 6, "f2.bin", false).await, (fresh, false));

    // Corruption in transit of a file with a record: the retry starts over
    // (the corrupted partial fails the prefix check) and gets it right.
    let src = local.path().join("g.bin");
    write_random(&src, 3 << 20, 22);
    put_one(&client, &src, "/").await;
    let proxy = corrupting_proxy(s.addr, true, 1_000_000).await;
    let flipped = connect(&proxied(&s, proxy)).await.unwrap();
    let dest = local.path().join("g-back.bin");
    let get = get_paths(&flipped, &["g.bin".into()], &dest, opts(), Events::none())
        .await
        .unwrap();
    assert_eq!(get[0].status, Status::Done);
    assert_eq!(sha256_of(&dest), sha256_of(&src));
}

/// A user's usage carries over from one session to the next for
/// `usage_kept_secs` (so back-to-back commands do not walk the home each
/// time); once that lapses, the next login measures the home again and
/// sees files placed there behind ferryd's back.
#[tokio::test]
async fn usage_carries_over_between_sessions_then_is_measured_afresh() {
    if ferry_e2e::disk_only(
        "a file written into the home on the disk behind ferryd's back (in object storage, usage is the namespace in the database)",
    ) {
        return;
    }
    let kept = 3;
    let s = Server::start_with(&format!("[limits]\nusage_kept_secs = {kept}\n"));
    s.add_user("u", PW, Some("10M"));
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("f.bin");
    write_random(&src, 1 << 20, 3);
    let client = s.client("u", PW).await.unwrap();
    put_one(&client, &src, "/").await;
    client.close().await;
    // Written behind ferryd's back, on the disk.
    std::fs::write(s.home("u").join("outside.bin"), vec![0u8; 1 << 20]).unwrap();
    // Right after: the usage ferryd kept, not a fresh walk.
    let client = s.client("u", PW).await.unwrap();
    assert_eq!(client.quota().await.unwrap().0, 1 << 20);
    client.close().await;
    // Once the kept time has lapsed: measured again, the outside file too.
    tokio::time::sleep(Duration::from_millis(kept * 1000 + 1500)).await;
    let client = s.client("u", PW).await.unwrap();
    assert_eq!(client.quota().await.unwrap().0, 2 << 20);
}
