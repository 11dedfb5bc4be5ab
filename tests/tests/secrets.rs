//! Secrets at rest are private whatever the umask, and an unknown user's
//! login challenge cannot be told from a real one's.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ferry_e2e::raw::Raw;
use ferry_e2e::Server;
use ferry_proto::scram::ClientFirst;
use ferry_proto::{ClientMsg, ServerMsg};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// users.toml (salts and keys: an offline cracking target; now the
/// database ferry.db) was 0644 in a
/// 0755 root. Under umask 000 everything holding secrets is made private,
/// and ferryd warns at start about any that is not.
#[test]
fn secrets_are_private_whatever_the_umask() {
    // This test binary's children (ferryd) inherit it.
    rustix::process::umask(rustix::fs::Mode::empty());
    let mut s = Server::start();
    s.add_user("alice", "pw", None);
    let data = s.data();
    let mut paths = vec![
        (data.clone(), 0o700),
        (data.join("tls"), 0o700),
        (data.join("tls/key.pem"), 0o600),
    ];
    // Homes on the disk (in object storage, nothing of them is here).
    if s.store.is_none() {
        paths.push((data.join("home"), 0o700));
        paths.push((data.join("home/alice"), 0o700));
    }
    // The embedded database (with PostgreSQL, the state is not here).
    let embedded = s.database.is_none();
    if embedded {
        paths.push((data.join("ferry.db"), 0o600));
        paths.push((data.join("ferry.db-wal"), 0o600));
    }
    for (path, want) in paths {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    let log = s.root.path().join("ferryd.log");
    assert!(!std::fs::read_to_string(&log)
        .unwrap()
        .contains("holds secrets"));

    let opened = if embedded { "ferry.db" } else { "key.pem" };
    let opened_path = if embedded {
        data.join("ferry.db")
    } else {
        data.join("tls/key.pem")
    };
    std::fs::set_permissions(opened_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.restart_hard();
    let log = std::fs::read_to_string(&log).unwrap();
    let warning = log
        .lines()
        .find(|l| l.contains("holds secrets"))
        .unwrap_or_else(|| panic!("no warning in {log}"));
    assert!(
        warning.contains(opened) && warning.contains("0644"),
        "{warning}"
    );
}

/// The salt and iteration count the server shows `user` at login.
async fn challenge(s: &Server, user: &str) -> (String, String) {
    let mut raw = Raw::connect(s).await;
    let Some(ServerMsg::Welcome { .. }) = raw.recv().await else {
        panic!("no welcome")
    };
    let (mechanism, binding) = raw.scram_binding();
    let (_, client_first) = ClientFirst::new(user, "x", "nonce0123456789abc", binding);
    raw.send(&ClientMsg::AuthStart {
        mechanism: mechanism.into(),
        client_first,
    })
    .await;
    let Some(ServerMsg::AuthChallenge { server_first }) = raw.recv().await else {
        panic!("no challenge")
    };
    let field = |k: &str| {
        server_first
            .split(',')
            .find_map(|a| a.strip_prefix(k))
            .unwrap()
            .to_string()
    };
    (field("s="), field("i="))
}

/// After `[auth] iterations` changed, a real user's challenge showed the
/// old count and an unknown name's the new one. Unknown names now show
/// counts real users have, each name always the same.
#[tokio::test]
async fn unknown_users_show_the_iteration_counts_real_users_have() {
    let mut s = Server::start();
    s.add_user("alice", "pw", None);
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        text.replace("iterations = 4096", "iterations = 5000"),
    )
    .unwrap();
    s.restart_hard();

    let (alice_salt, alice_i) = challenge(&s, "alice").await;
    assert_eq!(alice_i, "4096");
    let (nobody_salt, nobody_i) = challenge(&s, "nobody").await;
    assert_eq!(
        nobody_i, alice_i,
        "an unknown name shows the only real count"
    );
    assert_eq!(nobody_salt.len(), alice_salt.len());

    // With users of both counts, unknown names show both, each stably.
    s.add_user("carol", "pw", None);
    assert_eq!(challenge(&s, "carol").await.1, "5000");
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..24 {
        let name = format!("ghost{i}");
        let (salt, count) = challenge(&s, &name).await;
        assert_eq!(challenge(&s, &name).await, (salt, count.clone()));
        seen.insert(count);
    }
    let both: std::collections::BTreeSet<String> = ["4096".to_string(), "5000".to_string()].into();
    assert_eq!(seen, both);
}
