//! ferryd behind a TCP load balancer that sends the PROXY protocol v2
//! header (HAProxy's `send-proxy-v2`): the client address it carries is
//! the one places, penalties, bans and the audit log see, and only from a
//! trusted balancer.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use ferry_e2e::raw::Raw;
use ferry_e2e::{balancer, wait_for_log, Server};
use ferry_proto::{ErrorKind, ServerMsg};
use ferry_tui::client::connect;

const PW: &str = "pw-alice";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A client address on the far side of the balancer (a documentation
/// network: nothing is ever sent to it, it is only written in headers).
fn client(host: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, host), port)
}

/// ferryd trusting `trusted` as balancers, with `limits` and `auth`
/// settings added to the test defaults.
fn server(trusted: &str, limits: &str, auth: &str) -> Server {
    let s = Server::start_with(&format!(
        "trusted_proxies = [{trusted}]\n[limits]\nlogin_timeout_secs = 20\nmax_dir_batch = 100\n{limits}\n\
         [auth]\niterations = 4096\nfailure_delay_ms = 1\nmax_failure_delay_ms = 1\nban_secs = 600\n{auth}\n"
    ));
    s.add_user("alice", PW, None);
    s
}

/// Logs in with the client library through `via`.
async fn login_via(
    s: &Server,
    via: SocketAddr,
    pw: &str,
) -> Result<ferry_tui::client::Client, ferry_tui::client::ClientError> {
    let mut opts = s.options("alice", pw);
    opts.server = via.to_string();
    connect(&opts).await
}

/// The audit line of a login through the balancer names the client the
/// header carries, never the balancer's 127.0.0.1; so does the end of the
/// session.
#[tokio::test]
async fn the_log_shows_the_carried_address() {
    let s = server("\"127.0.0.1\"", "", "");
    let via = balancer(s.addr, LOOPBACK, Some(client(7, 40001))).await;
    let c = login_via(&s, via, PW).await.unwrap();
    c.mkdir("d", false).await.unwrap();
    drop(c);
    let log = wait_for_log(&s, &["login ok", "addr=203.0.113.7:40001"]).await;
    wait_for_log(&s, &["session closed", "addr=203.0.113.7:40001"]).await;
    for line in log.lines().filter(|l| l.contains("login ok")) {
        assert!(!line.contains("addr=127.0.0.1"), "{line}");
    }
}

/// Failed logins carried from A get A banned; a login carried from B
/// through the same balancer still succeeds, and so does one directly.
#[tokio::test]
async fn a_ban_follows_the_carried_address() {
    let s = server("\"127.0.0.0/30\"", "", "ban_after_failures = 3");
    wait_for_log(&s, &["trusted_proxies=127.0.0.0/30", "PROXY v2 header"]).await;
    let a = balancer(s.addr, LOOPBACK, Some(client(1, 1111))).await;
    let b = balancer(s.addr, LOOPBACK, Some(client(2, 2222))).await;
    for _ in 0..3 {
        let e = login_via(&s, a, "wrong").await.unwrap_err();
        assert!(
            matches!(e.kind(), Some(ErrorKind::AuthFailed | ErrorKind::Banned)),
            "{e}"
        );
    }
    wait_for_log(&s, &["address banned", "addr=203.0.113.1"]).await;
    let e = login_via(&s, a, PW).await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Banned), "{e}");
    login_via(&s, b, PW).await.unwrap();
    // 127.0.0.5 is no balancer: it connects as itself.
    let mut raw = Raw::connect_from(&s, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5))).await;
    raw.login("alice", PW).await.unwrap();
}

/// A PROXY header from an address not trusted is refused (a stranger
/// cannot claim another's address); TLS from it is served as ever.
#[tokio::test]
async fn a_header_from_an_untrusted_peer_is_refused() {
    let s = server("\"127.0.0.2\"", "", "");
    let via = balancer(s.addr, LOOPBACK, Some(client(9, 999))).await;
    login_via(&s, via, PW).await.unwrap_err();
    wait_for_log(
        &s,
        &[
            "PROXY header from an address not in trusted_proxies",
            "addr=127.0.0.1",
        ],
    )
    .await;
    assert!(!std::fs::read_to_string(s.root.path().join("ferryd.log"))
        .unwrap()
        .contains("203.0.113.9"));
    s.client("alice", PW).await.unwrap();
}

/// A LOCAL header (a balancer's health check) is served as the balancer
/// itself; from a trusted balancer, a connection without a header is
/// refused.
#[tokio::test]
async fn a_local_header_is_served_as_the_balancer() {
    let s = server("\"127.0.0.1\"", "", "");
    let via = balancer(s.addr, LOOPBACK, None).await;
    login_via(&s, via, PW).await.unwrap();
    wait_for_log(&s, &["login ok", "addr=127.0.0.1:"]).await;
    s.client("alice", PW).await.unwrap_err();
    wait_for_log(&s, &["no PROXY v2 header", "proxy=127.0.0.1:"]).await;
    // From another loopback address, not a balancer, it is served.
    let mut raw = Raw::connect_from(&s, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))).await;
    raw.login("alice", PW).await.unwrap();
}

/// Through one balancer, 32 clients from different carried addresses
/// hold a connection not logged in yet at once, with 4 allowed per
/// address: all are admitted and all log in (counted by the balancer's
/// address, the 5th would have been closed). The limit per carried
/// address still holds: a 5th connection carried from an address that
/// holds 4 is closed.
#[tokio::test]
async fn many_clients_through_one_balancer_each_have_their_own_budget() {
    let s = server(
        "\"127.0.0.1\"",
        "max_unauthenticated_per_ip = 4\nmax_sessions_per_user = 64",
        "",
    );
    let fp = s.fingerprint.clone();
    let mut held = Vec::new();
    for i in 0..32u8 {
        let via = balancer(s.addr, LOOPBACK, Some(client(100 + i, 5000))).await;
        held.push(Raw::connect_to(via, fp.as_deref()).await);
    }
    // All 32 are strangers at once; each logs in.
    for raw in &mut held {
        raw.login("alice", PW).await.unwrap();
    }

    let crowd = balancer(s.addr, LOOPBACK, Some(client(50, 6000))).await;
    let mut four = Vec::new();
    for _ in 0..4 {
        let mut raw = Raw::connect_to(crowd, fp.as_deref()).await;
        match raw.recv().await {
            Some(ServerMsg::Welcome { .. }) => four.push(raw),
            other => panic!("{other:?}"),
        }
    }
    let e = login_via(&s, crowd, PW).await.unwrap_err();
    assert!(
        e.kind().is_none() || e.kind() == Some(ErrorKind::TooBusy),
        "{e}"
    );
    wait_for_log(&s, &["over the budget", "addr=203.0.113.50:6000"]).await;
    // Another carried address is not held up by it.
    let other = balancer(s.addr, LOOPBACK, Some(client(51, 6000))).await;
    login_via(&s, other, PW).await.unwrap();
    drop(four);
}

/// A bad network on the command line or in the config stops ferryd at
/// start with a message naming it.
#[test]
fn bad_trusted_proxies_stop_the_start() {
    let out = std::process::Command::new(ferry_e2e::bin("ferryd"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--trusted-proxy",
            "10.0.0.0/33",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = ferry_e2e::stderr(&out);
    assert!(err.contains("bad trusted proxy \"10.0.0.0/33\""), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferryd.toml");
    std::fs::write(&config, "trusted_proxies = [\"example.com\"]\n").unwrap();
    let out = std::process::Command::new(ferry_e2e::bin("ferryd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = ferry_e2e::stderr(&out);
    assert!(err.contains("bad trusted proxy \"example.com\""), "{err}");
}

/// The real HAProxy (`mode tcp`, `send-proxy-v2`, health checks every
/// 100 ms, which send LOCAL headers) in front of ferryd: a client from
/// 127.0.0.9 is logged as 127.0.0.9, and the checks are served quietly.
#[tokio::test]
async fn behind_haproxy_the_client_is_seen() {
    let s = server("\"127.0.0.1\"", "", "");
    let haproxy = ferry_e2e::Haproxy::start_with(
        &[s.addr],
        ferry_e2e::HaproxyOptions {
            health_check: Some(std::time::Duration::from_millis(100)),
            ..Default::default()
        },
    );
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    let mut raw = Raw::connect_via(haproxy.addr(), s.fingerprint.as_deref(), Some(from)).await;
    raw.login("alice", PW).await.unwrap();
    let log = wait_for_log(&s, &["login ok", "addr=127.0.0.9:"]).await;
    assert!(!log.contains("trusted proxy refused"), "{log}");
    assert!(!log.contains("not in trusted_proxies"), "{log}");
}
