//! Partial files live where no user operation can reach them: a file named
//! like a partial cannot replace an upload's bytes, names of every valid
//! length transfer both ways, and the stale-partial sweeper never touches
//! what a user made.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use ferry_e2e::raw::Raw;
use ferry_e2e::{stderr, stdout, write_random, Server};
use ferry_proto::{ClientMsg, Frame, Reply, Request, ServerMsg};
use futures::SinkExt;
use sha2::{Digest, Sha256};

const PW: &str = "s3cret pass";

async fn reply(raw: &mut Raw, id: u32) -> Result<Reply, ferry_proto::RemoteError> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), raw.recv()).await {
            Ok(Some(ServerMsg::Response { id: got, reply })) if got == id => return reply,
            Ok(Some(_)) => continue,
            other => panic!("no reply to {id}: {other:?}"),
        }
    }
}

/// While `x` uploads, another session of the same user puts a file named
/// `.x.ferry-part` (the old partial's name). The upload used to report
/// success with its own SHA-256 while `x` held the other file's bytes.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_named_like_a_partial_cannot_replace_an_upload() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let content: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let mut raw = Raw::connect(&s).await;
    raw.login("u", PW).await.unwrap();
    raw.send(&ClientMsg::Request {
        id: 1,
        req: Request::PutOpen {
            transfer: 1,
            path: "x".into(),
            size: content.len() as u64,
            mtime: 0,
            mode: 0o644,
            overwrite: false,
            resume: false,
            eager: false,
        },
    })
    .await;
    assert!(matches!(
        reply(&mut raw, 1).await,
        Ok(Reply::PutReady { .. })
    ));
    raw.send(&ClientMsg::PutStart {
        transfer: 1,
        offset: 0,
    })
    .await;
    let (first, rest) = content.split_at(300_000);
    raw.wr
        .send(Frame::Data {
            transfer: 1,
            data: bytes::Bytes::copy_from_slice(first),
        })
        .await
        .unwrap();

    // Meanwhile, another session puts `.x.ferry-part`.
    let local = tempfile::tempdir().unwrap();
    let evil = local.path().join(".x.ferry-part");
    std::fs::write(&evil, b"not what x's uploader sent").unwrap();
    let o = s.ferry(
        "u",
        PW,
        &["put", "--on-conflict", "overwrite", evil.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    raw.wr
        .send(Frame::Data {
            transfer: 1,
            data: bytes::Bytes::copy_from_slice(rest),
        })
        .await
        .unwrap();
    let sha: [u8; 32] = Sha256::digest(&content).into();
    raw.send(&ClientMsg::TransferEnd {
        transfer: 1,
        sha256: sha,
    })
    .await;
    match reply(&mut raw, 1).await {
        Ok(Reply::PutDone { sha256, .. }) => assert_eq!(sha256, sha),
        other => panic!("{other:?}"),
    }
    let (x, evil) = tokio::task::block_in_place(|| {
        (s.files("u").read("x"), s.files("u").read(".x.ferry-part"))
    });
    assert!(x == content, "x holds bytes the upload did not verify");
    assert_eq!(evil, b"not what x's uploader sent");
    if s.store.is_some() {
        // Object storage has no partial area.
        return;
    }
    let home = s.home("u");
    // The partial area itself can be neither seen nor named.
    assert!(home.join(".ferry-partials").is_dir());
    let o = s.ferry("u", PW, &["ls", "/"]);
    assert!(o.status.success() && !stdout(&o).contains(".ferry-partials"));
    for args in [
        &["rm", "-r", ".ferry-partials"][..],
        &["ls", "/.ferry-partials"],
    ] {
        let o = s.ferry("u", PW, args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains("reserved"), "{args:?}: {}", stderr(&o));
    }
    assert!(home.join(".ferry-partials").is_dir());
}

/// Names of 244 to 255 bytes could not be uploaded or downloaded: the
/// partial's name (`.NAME.ferry-part`) passed the file system's limit.
#[test]
fn names_of_255_bytes_transfer_both_ways() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let up = tempfile::tempdir().unwrap();
    let down = tempfile::tempdir().unwrap();
    // One whole-in-one-go file, one resumable (more than a chunk).
    let small = format!("{}.txt", "s".repeat(251));
    let big = "b".repeat(255);
    std::fs::write(up.path().join(&small), b"small file").unwrap();
    write_random(&up.path().join(&big), 3 << 20, 9);
    for name in [&small, &big] {
        assert_eq!(name.len(), 255);
        let src = up.path().join(name);
        let o = s.ferry("u", PW, &["put", src.to_str().unwrap()]);
        assert!(o.status.success(), "put: {}", stderr(&o));
        assert_eq!(s.files("u").read(name), std::fs::read(&src).unwrap());
        let o = s.ferry("u", PW, &["get", name, down.path().to_str().unwrap()]);
        assert!(o.status.success(), "get: {}", stderr(&o));
        assert_eq!(
            std::fs::read(down.path().join(name)).unwrap(),
            std::fs::read(&src).unwrap()
        );
    }
}

/// The sweeper deleted a user's own file named `db.ferry-part` whose
/// (client-kept) modification time was old. It now looks only at the
/// partial areas, never at a home.
#[test]
fn the_sweeper_never_touches_a_users_files() {
    if ferry_e2e::disk_only(
        "the disk engine's sweep of stale partials against files made in the home on the disk",
    ) {
        return;
    }
    let s = Server::start_with(
        "[limits]\nhandshake_timeout_secs = 5\n[auth]\niterations = 4096\n[transfers]\npartial_max_age_secs = 1\nsweep_interval_secs = 1\n",
    );
    s.add_user("u", PW, None);
    let home = s.home("u");
    std::fs::create_dir(home.join("sub")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), home.join("link")).unwrap();
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let files = [
        home.join("db.ferry-part"),
        home.join(".notes.txt.ferry-part"),
        home.join("sub/.x.ferry-part"),
        outside.path().join(".y.ferry-part"),
    ];
    for f in &files {
        std::fs::write(f, b"mine").unwrap();
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    // Several sweeps, one of them with a session open.
    std::thread::sleep(Duration::from_secs(2));
    let o = s.ferry("u", PW, &["ls"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::thread::sleep(Duration::from_secs(2));
    for f in &files {
        assert!(f.exists(), "{} was swept", f.display());
    }
}
