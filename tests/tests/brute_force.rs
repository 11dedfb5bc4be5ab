//! Password guessing against the login: the ways around the per-address
//! ban that once worked, each closed.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::IpAddr;

use ferry_e2e::raw::Raw;
use ferry_e2e::Server;
use ferry_proto::scram::ClientFirst;
use ferry_proto::{access, ClientMsg, ErrorKind, ServerMsg};

const BOB: &str = "pw-bob";

/// Small thresholds, no delays worth waiting for.
fn server(auth: &str, top: &str) -> Server {
    let s = Server::start_with(&format!(
        "{top}\n[limits]\nlogin_timeout_secs = 5\n[auth]\niterations = 4096\nfailure_delay_ms = 1\nmax_failure_delay_ms = 1\nban_secs = 600\n{auth}\n"
    ));
    s.add_user("bob", BOB, None);
    s.add_user("mallory", "pw-mallory", None);
    s
}

/// How one login attempt ended: `Ok(())` logged in, or the kind of the
/// refusal, whenever it came.
type Outcome = Result<(), ErrorKind>;

fn refused(msg: Option<ServerMsg>) -> ErrorKind {
    match msg {
        Some(ServerMsg::Refused { error }) => error.kind,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A login from `from`, up to the challenge: the connection and the
/// client's state, or the refusal.
async fn start(s: &Server, from: IpAddr, user: &str, pw: &str) -> Result<(Raw, String), ErrorKind> {
    let mut raw = Raw::connect_from(s, from).await;
    match raw.recv().await {
        Some(ServerMsg::Welcome { .. }) => {}
        other => return Err(refused(other)),
    }
    let (mechanism, binding) = raw.scram_binding();
    let (first, client_first) = ClientFirst::new(user, pw, "nonce0123456789abc", binding);
    raw.send(&ClientMsg::AuthStart {
        mechanism: mechanism.into(),
        client_first,
    })
    .await;
    match raw.recv().await {
        Some(ServerMsg::AuthChallenge { server_first }) => {
            let (_, client_final) = first.handle_server_first(&server_first, 1_000_000).unwrap();
            Ok((raw, client_final))
        }
        other => Err(refused(other)),
    }
}

/// The end of a login [`start`]ed.
async fn finish(mut raw: Raw, client_final: String) -> Outcome {
    raw.send(&ClientMsg::AuthFinish { client_final }).await;
    match raw.recv().await {
        Some(ServerMsg::AuthOk { .. }) => Ok(()),
        other => Err(refused(other)),
    }
}

/// One whole login attempt from `from`.
async fn attempt(s: &Server, from: IpAddr, user: &str, pw: &str) -> Outcome {
    let (raw, client_final) = start(s, from, user, pw).await?;
    finish(raw, client_final).await
}

const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

/// The attacker's own successful login (as herself) once cleared the
/// address's failures: guesses against bob went on without a ban.
#[tokio::test]
async fn an_own_login_does_not_clear_failures_against_another_user() {
    let s = server("ban_after_failures = 5", "");
    for _ in 0..4 {
        assert_eq!(
            attempt(&s, HOME, "bob", "guess").await,
            Err(ErrorKind::AuthFailed)
        );
    }
    assert_eq!(attempt(&s, HOME, "mallory", "pw-mallory").await, Ok(()));
    assert_eq!(
        attempt(&s, HOME, "bob", "guess").await,
        Err(ErrorKind::AuthFailed)
    );
    // Five failures from this address: banned, whoever asks.
    assert_eq!(
        attempt(&s, HOME, "bob", "guess").await,
        Err(ErrorKind::Banned)
    );
    assert_eq!(
        attempt(&s, HOME, "mallory", "pw-mallory").await,
        Err(ErrorKind::Banned)
    );
}

/// Connections that had passed the ban check at their start were all
/// evaluated: many parallel guesses per ban instead of the threshold.
#[tokio::test]
async fn parallel_guesses_beyond_the_threshold_are_not_evaluated() {
    let s = server("ban_after_failures = 3", "");
    let mut started = Vec::new();
    for _ in 0..12 {
        started.push(start(&s, HOME, "bob", "guess").await.expect("challenge"));
    }
    let finishing: Vec<_> = started
        .into_iter()
        .map(|(raw, fin)| tokio::spawn(finish(raw, fin)))
        .collect();
    let mut evaluated = 0;
    for f in finishing {
        match f.await.unwrap() {
            Err(ErrorKind::AuthFailed) => evaluated += 1,
            Err(ErrorKind::Banned) | Err(ErrorKind::TooBusy) => {}
            other => panic!("{other:?}"),
        }
    }
    println!("{evaluated} of 12 parallel guesses evaluated");
    assert!(
        evaluated <= 3,
        "{evaluated} guesses evaluated with a threshold of 3"
    );
}

/// A wrong access key was not counted at all.
#[tokio::test]
async fn failed_access_key_proofs_count_toward_the_ban() {
    let s = server("ban_after_failures = 3", "access_key = \"sesame\"");
    for _ in 0..3 {
        let mut raw = Raw::connect_from(&s, HOME).await;
        let Some(ServerMsg::Welcome {
            access_challenge: Some(nonce),
            ..
        }) = raw.recv().await
        else {
            panic!("no access challenge")
        };
        raw.send(&ClientMsg::AccessProof {
            answer: access::respond(b"wrong", &nonce).to_vec(),
        })
        .await;
        assert_eq!(refused(raw.recv().await), ErrorKind::AccessDenied);
    }
    let mut opts = s.options("bob", BOB);
    opts.access_key = Some("sesame".into());
    let err = ferry_tui::client::connect(&opts).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Banned), "{err}");
}

/// Each new address started fresh: one guess against bob from each of
/// many addresses was never slowed. Now failures against one user, from
/// anywhere, space out that user's logins from addresses it has not
/// logged in from; bob's own address is not slowed, and the penalty
/// lapses.
#[tokio::test]
async fn guesses_from_many_addresses_slow_that_user_without_locking_him_out() {
    let s = server(
        "ban_after_failures = 1000\nuser_penalty_after = 4\nuser_delay_ms = 60000\nmax_user_delay_ms = 60000\nforget_after_secs = 3",
        "",
    );
    // bob logs in from home before the attack.
    assert_eq!(attempt(&s, HOME, "bob", BOB).await, Ok(()));
    for i in 1..=4 {
        let from = IpAddr::from([127, 0, 1, i]);
        assert_eq!(
            attempt(&s, from, "bob", "guess").await,
            Err(ErrorKind::AuthFailed)
        );
    }
    // A fifth address, even with the right password: not evaluated now.
    let fifth = IpAddr::from([127, 0, 1, 5]);
    assert_eq!(
        attempt(&s, fifth, "bob", BOB).await,
        Err(ErrorKind::TooBusy)
    );
    // Other users are not slowed, nor bob from where he logged in before.
    assert_eq!(attempt(&s, fifth, "mallory", "pw-mallory").await, Ok(()));
    assert_eq!(attempt(&s, HOME, "bob", BOB).await, Ok(()));
    // Not for good: once the failures are forgotten, bob logs in anywhere.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_eq!(attempt(&s, fifth, "bob", BOB).await, Ok(()));
}

/// Addresses of one network once each started afresh: nine guesses from
/// each of 127.0.9.1, .2, ... were never banned. Together they ban their
/// network (a /24 here); bob logs in from another network meanwhile.
#[tokio::test]
async fn guesses_from_many_addresses_of_one_network_ban_the_network() {
    let s = server(
        "ban_after_failures = 3\nnetwork_ban_after_failures = 6\nipv4_network_prefix_len = 24",
        "",
    );
    for i in 1..=3 {
        let from = IpAddr::from([127, 0, 9, i]);
        for _ in 0..2 {
            assert_eq!(
                attempt(&s, from, "bob", "guess").await,
                Err(ErrorKind::AuthFailed)
            );
        }
    }
    // Each address is one failure short of its own ban; the network is
    // banned, the right password from a new address in it included.
    let fresh = IpAddr::from([127, 0, 9, 200]);
    assert_eq!(attempt(&s, fresh, "bob", BOB).await, Err(ErrorKind::Banned));
    let elsewhere = IpAddr::from([127, 0, 10, 1]);
    assert_eq!(attempt(&s, elsewhere, "bob", BOB).await, Ok(()));
}
