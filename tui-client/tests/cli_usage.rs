//! The `ferry` binary's behaviour without a server.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Command;

#[test]
fn unreachable_server_is_one_line_and_exit_3() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["-s", &format!("127.0.0.1:{port}"), "-u", "x", "ls"])
        .env("FERRY_PASSWORD", "pw")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("ferry: cannot connect to 127.0.0.1:{port}: ")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn usage_error_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["mv", "only-one"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
