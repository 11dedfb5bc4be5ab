//! The encrypted transport: trust on first use, pinning, CA-signed
//! certificates, plaintext mismatches, a man-in-the-middle relay, channel
//! binding and downgrade attempts, truncated handshakes.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use ferry_e2e::raw::Raw;
use ferry_e2e::{stderr, stdout, Server};
use ferry_proto::scram::{ClientBinding, ClientFirst};
use ferry_proto::{ClientMsg, ErrorKind, ServerMsg};
use ferry_tui::client::{connect, ClientError, ConnectOptions, Security, TlsOptions, Trust};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PW: &str = "pw";

fn server() -> Server {
    let s = Server::start();
    s.add_user("u", PW, None);
    s
}

fn tls_opts(f: impl FnOnce(&mut TlsOptions)) -> Security {
    let mut t = TlsOptions::default();
    f(&mut t);
    Security::Tls(t)
}

#[test]
fn first_contact_then_pinned_then_changed() {
    let mut s = server();
    let known = s.known_servers();
    let ferry_at = |addr: std::net::SocketAddr, extra: &[&str]| {
        let mut cmd = std::process::Command::new(ferry_e2e::bin("ferry"));
        cmd.args(["-s", &addr.to_string(), "-u", "u"])
            .args(extra)
            .arg("ls")
            .env("FERRY_PASSWORD", PW)
            .env("FERRY_KNOWN_SERVERS", &known)
            .stdin(std::process::Stdio::null());
        cmd.output().unwrap()
    };
    let addr = s.addr;
    let ferry = |extra: &[&str]| ferry_at(addr, extra);
    // The generated key is the server user's alone, and the fingerprint
    // is in ferryd's log for the administrator.
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(s.data().join("tls/key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let fp = s.fingerprint.clone().unwrap();
    let log = std::fs::read_to_string(s.config.with_file_name("ferryd.log")).unwrap();
    assert!(log.contains(&fp), "fingerprint logged at start");
    // Unknown and nobody to ask: refused, with the fingerprint to check.
    let o = ferry(&[]);
    assert_eq!(o.status.code(), Some(3));
    let fp = s.fingerprint.clone().unwrap();
    assert!(
        stderr(&o).contains(&fp) && stderr(&o).contains("--accept-new"),
        "{}",
        stderr(&o)
    );
    assert!(!known.exists());
    // --accept-new trusts and records it.
    assert!(ferry(&["--accept-new"]).status.success());
    let text = std::fs::read_to_string(&known).unwrap();
    assert_eq!(text.trim(), format!("{} {fp}", s.addr));
    // Later connections match the pin without any flag.
    assert!(ferry(&[]).status.success(), "{}", stderr(&ferry(&[])));

    // The server gets a new certificate (same address): refused loudly.
    std::fs::remove_dir_all(s.data().join("tls")).unwrap();
    s.restart_hard();
    // Point the old pin at the new port so the same name is checked.
    std::fs::write(&known, text.replace(&addr.to_string(), &s.addr.to_string())).unwrap();
    let o = ferry_at(s.addr, &["--accept-new"]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(err.contains("HAS CHANGED"), "{err}");
    assert!(
        err.contains(&format!("remove line 1 of {}", known.display())),
        "{err}"
    );
}

#[test]
fn fingerprint_flag_must_match() {
    let s = server();
    let o = s.ferry("u", PW, &["ls"]);
    assert!(o.status.success(), "the harness pins the right fingerprint");
    let mut cmd = std::process::Command::new(ferry_e2e::bin("ferry"));
    cmd.args([
        "-s",
        &s.addr.to_string(),
        "-u",
        "u",
        "--fingerprint",
        "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "ls",
    ])
    .env("FERRY_PASSWORD", PW)
    .env("FERRY_KNOWN_SERVERS", s.known_servers());
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("not the expected"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[tokio::test]
async fn plaintext_and_tls_mismatches_fail_clearly() {
    let tls_server = server();
    let mut opts = tls_server.options("u", PW);
    opts.security = Security::InsecurePlaintext;
    let err = tokio::time::timeout(Duration::from_secs(10), connect(&opts))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(err.to_string().contains("only accepts TLS"), "{err}");

    let plain = Server::start_plaintext();
    plain.add_user("u", PW, None);
    let mut opts = plain.options("u", PW);
    opts.security = tls_opts(|t| t.accept_new = true);
    let err = tokio::time::timeout(Duration::from_secs(10), connect(&opts))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        err.to_string().contains("did not answer with TLS")
            && err.to_string().contains("--insecure-plaintext"),
        "{err}"
    );
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn make_ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Ferry test CA");
    Ca {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

/// Starts ferryd with a certificate for `name` signed by `ca`.
fn ca_signed_server(ca: &Ca, name: &str, expired: bool) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    let s = Server::start_with(&format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n[auth]\niterations = 4096\n",
        dir.path().join("cert.pem"),
        dir.path().join("key.pem")
    ));
    s.add_user("u", PW, None);
    (s, dir)
}

#[tokio::test]
async fn ca_signed_certificates_valid_expired_and_misnamed() {
    let ca = make_ca();
    let opts_for = |s: &Server, ca_file: std::path::PathBuf| {
        let mut o = ConnectOptions::new(format!("localhost:{}", s.addr.port()), "u", PW);
        o.security = tls_opts(|t| t.ca_file = Some(ca_file));
        o
    };
    let (good, dir) = ca_signed_server(&ca, "localhost", false);
    let c = connect(&opts_for(&good, dir.path().join("ca.pem")))
        .await
        .unwrap();
    assert_eq!(c.identity().trust, Trust::CaSigned);
    c.list("/").await.unwrap();

    let (expired, dir) = ca_signed_server(&ca, "localhost", true);
    let err = connect(&opts_for(&expired, dir.path().join("ca.pem")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");

    let (misnamed, dir) = ca_signed_server(&ca, "other.example", false);
    let err = connect(&opts_for(&misnamed, dir.path().join("ca.pem")))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not valid for the name localhost"),
        "{err}"
    );
}

/// A man in the middle: terminates TLS with its own certificate and
/// relays everything to the real server over a second TLS connection.
async fn mitm(real: &Server) -> std::net::SocketAddr {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let certs = vec![CertificateDer::from_pem_slice(ck.cert.pem().as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(ck.key_pair.serialize_pem().as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = real.addr;
    let pin = TlsOptions {
        fingerprint: real.fingerprint.clone(),
        ..Default::default()
    };
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let pin = pin.clone();
            tokio::spawn(async move {
                let Ok(mut down) = acceptor.accept(client).await else {
                    return;
                };
                let tcp = TcpStream::connect(upstream).await.unwrap();
                let (mut up, _, _) =
                    ferry_tui::client::tls::handshake(tcp, &upstream.to_string(), &pin)
                        .await
                        .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_man_in_the_middle_is_refused() {
    let s = server();
    let proxy = mitm(&s).await;
    // With the real fingerprint known, the relay's certificate is refused.
    let mut opts = s.options("u", PW);
    opts.server = proxy.to_string();
    let err = connect(&opts).await.unwrap_err();
    assert!(
        matches!(err, ClientError::FingerprintMismatch { .. }),
        "{err}"
    );
    // Even a user who accepts the relay's certificate cannot be logged in
    // through it: the login is bound to the client's own TLS channel.
    opts.security = tls_opts(|t| t.accept_new = true);
    let err = connect(&opts).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::AuthFailed), "{err}");
    // The real server is unharmed.
    s.client("u", PW).await.unwrap().list("/").await.unwrap();
}

#[tokio::test]
async fn downgrades_of_channel_binding_are_refused() {
    let s = server();
    for (mechanism, binding) in [
        ("SCRAM-SHA-256", ClientBinding::SupportedNotUsed),
        ("SCRAM-SHA-256", ClientBinding::Unsupported),
    ] {
        let mut raw = Raw::connect(&s).await;
        let Some(ServerMsg::Welcome { mechanisms, .. }) = raw.recv().await else {
            panic!()
        };
        assert_eq!(
            mechanisms[0], "SCRAM-SHA-256-PLUS",
            "binding offered first over TLS"
        );
        let (_, client_first) = ClientFirst::new("u", PW, "nonce12345", binding);
        raw.send(&ClientMsg::AuthStart {
            mechanism: mechanism.into(),
            client_first,
        })
        .await;
        match raw.recv().await {
            Some(ServerMsg::Refused { error }) => {
                assert_eq!(error.kind, ErrorKind::AuthFailed);
                assert!(error.detail.contains("channel binding"), "{error}");
            }
            other => panic!("downgrade accepted: {other:?}"),
        }
    }
    // The right way in still works.
    let mut raw = Raw::connect(&s).await;
    raw.login("u", PW).await.expect("bound login");
}

#[tokio::test]
async fn truncated_handshakes_do_not_hang_anyone() {
    let s = server();
    // Half a ClientHello, then silence, then gone.
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    t.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    drop(t);
    s.client("u", PW).await.unwrap().list("/").await.unwrap();

    // A "server" that answers with half a handshake and hangs up.
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = fake.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut c, _) = fake.accept().await.unwrap();
        let mut buf = [0u8; 512];
        let _ = c.read(&mut buf).await;
        let _ = c.write_all(&[0x16, 0x03, 0x03, 0x00, 0x40, 0x02]).await;
    });
    let mut opts = ConnectOptions::new(addr.to_string(), "u", PW);
    opts.security = tls_opts(|t| t.accept_new = true);
    let err = tokio::time::timeout(Duration::from_secs(10), connect(&opts))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err}");
}

#[tokio::test]
async fn the_access_key_is_still_enforced_over_tls() {
    let s = Server::start_with("access_key = \"k3y\"");
    s.add_user("u", PW, None);
    assert!(s.fingerprint.is_some(), "TLS is on");
    let err = s.client("u", PW).await.unwrap_err();
    assert!(matches!(err, ClientError::AccessKeyRequired));
    let mut opts = s.options("u", PW);
    opts.access_key = Some("k3y".into());
    assert_eq!(
        connect(&opts).await.unwrap().identity().trust,
        Trust::Pinned
    );
}
