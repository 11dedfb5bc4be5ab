//! ferryd talks to a PostgreSQL that accepts only TLS (the URL's
//! `sslmode=verify-full`, `sslrootcert`): it logs users in through it, and
//! refuses to start against a server whose certificate it cannot verify.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Command;

use ferry_e2e::cluster::spawn_node;
use ferry_e2e::{bin, run_with_stdin, Postgres};
use ferry_tui::client::{connect, ConnectOptions, Security, TlsOptions};

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("ferryd.toml");
    std::fs::write(
        &config,
        format!("root = {:?}\n[auth]\niterations = 4096\n", dir.join("data")),
    )
    .unwrap();
    config
}

#[tokio::test]
async fn a_node_works_over_a_verified_tls_link_to_postgres() {
    let pg = Postgres::start_own_tls();
    let ca = pg.ca_file().unwrap();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(),
        ca.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let node = spawn_node(&config, &url, &dir.path().join("node.log"));
    let mut cmd = Command::new(bin("ferryd"));
    cmd.args(["user", "add", "u", "--config"])
        .arg(&config)
        .env("FERRY_DATABASE_URL", &url);
    let out = run_with_stdin(cmd, "pw-u\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fp = Command::new(bin("ferryd"))
        .args(["fingerprint", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let mut opts = ConnectOptions::new(node.addr.to_string(), "u", "pw-u");
    opts.security = Security::Tls(TlsOptions {
        fingerprint: Some(String::from_utf8_lossy(&fp.stdout).trim().to_string()),
        ..Default::default()
    });
    let client = connect(&opts).await.unwrap();
    client.list("/").await.unwrap();
    // Plain connections are what the cluster refuses: the link was TLS.
    let plain = format!("{}?sslmode=disable", pg.url());
    let out = Command::new(bin("ferryd"))
        .args(["user", "list", "--config"])
        .arg(&config)
        .env("FERRY_DATABASE_URL", &plain)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no encryption"),
        "{err}"
    );
}

#[tokio::test]
async fn a_database_certificate_that_cannot_be_verified_is_refused() {
    let pg = Postgres::start_own_tls();
    // The system's roots do not know the test CA.
    let url = format!("{}?sslmode=verify-full", pg.url());
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let out = Command::new(bin("ferryd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args(["--database", &url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}
