//! The real-engine fixtures themselves: PostgreSQL gives working, separate
//! databases, and HAProxy forwards with (or without) a PROXY v2 header
//! carrying the client's address. They fail, not skip, when an engine is
//! missing: CI installs both.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferry_e2e::{Haproxy, Postgres};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const DEADLINE: Duration = Duration::from_secs(30);

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

#[test]
fn postgres_databases_work_and_are_separate() {
    let pg = Postgres::start();
    let a = pg.create_database();
    let b = pg.create_database();
    assert_ne!(a, b);
    let o = pg.psql(
        &a,
        "create table t(x int); insert into t values (1), (2), (39); select sum(x) from t",
    );
    assert!(o.status.success(), "psql on {a}: {}", err(&o));
    assert_eq!(out(&o), "42");
    // The second database is a different one: no table t there.
    let o = pg.psql(&b, "select count(*) from t");
    assert!(!o.status.success(), "t leaked into {b}");
    assert!(err(&o).contains("does not exist"), "{}", err(&o));
    // A dropped database is gone.
    pg.drop_database(&b);
    let o = pg.psql(&b, "select 1");
    assert!(!o.status.success(), "{b} still there");
    pg.drop_database(&a);
}

#[test]
fn postgres_paused_cluster_comes_back_with_its_data() {
    let pg = Postgres::start_own();
    let db = pg.create_database();
    let o = pg.psql(&db, "create table t(x int); insert into t values (7)");
    assert!(o.status.success(), "{}", err(&o));
    pg.pause();
    let o = pg.psql(&db, "select x from t");
    assert!(!o.status.success(), "the paused cluster still answers");
    pg.resume();
    let o = pg.psql(&db, "select x from t");
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "7");
}

/// Connects to `to` from the loopback alias `from` (not 127.0.0.1, so the
/// client's address differs from HAProxy's own).
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().expect("socket");
    s.bind(SocketAddr::new(IpAddr::V4(from), 0)).expect("bind");
    s.connect(to).await.expect("connect to haproxy")
}

const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

#[tokio::test]
async fn haproxy_sends_proxy_v2_with_the_client_address() {
    let backend = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy = Haproxy::start(&[backend.local_addr().expect("addr")], true);
    let mut client = connect_from(Ipv4Addr::new(127, 0, 0, 7), proxy.addr()).await;
    let client_addr = client.local_addr().expect("client addr");
    client.write_all(b"hello ferry").await.expect("write");

    let (mut conn, _) = tokio::time::timeout(DEADLINE, backend.accept())
        .await
        .expect("haproxy connected in time")
        .expect("accept");
    let mut head = [0u8; 16];
    tokio::time::timeout(DEADLINE, conn.read_exact(&mut head))
        .await
        .expect("header in time")
        .expect("read header");
    assert_eq!(head[..12], SIGNATURE, "no PROXY v2 signature: {head:?}");
    assert_eq!(head[12], 0x21, "version 2, command PROXY");
    assert_eq!(head[13], 0x11, "TCP over IPv4");
    let len = u16::from_be_bytes([head[14], head[15]]) as usize;
    assert!(len >= 12, "address block of {len} bytes");
    let mut rest = vec![0u8; len];
    conn.read_exact(&mut rest).await.expect("read addresses");
    let src = SocketAddr::from((
        [rest[0], rest[1], rest[2], rest[3]],
        u16::from_be_bytes([rest[8], rest[9]]),
    ));
    let dst = SocketAddr::from((
        [rest[4], rest[5], rest[6], rest[7]],
        u16::from_be_bytes([rest[10], rest[11]]),
    ));
    assert_eq!(src, client_addr, "the header carries the client's address");
    assert_eq!(dst, proxy.addr(), "and the address it connected to");

    // Then the client's bytes, untouched.
    let mut body = [0u8; 11];
    tokio::time::timeout(DEADLINE, conn.read_exact(&mut body))
        .await
        .expect("body in time")
        .expect("read body");
    assert_eq!(&body, b"hello ferry");
    // And back.
    conn.write_all(b"ok").await.expect("reply");
    let mut reply = [0u8; 2];
    tokio::time::timeout(DEADLINE, client.read_exact(&mut reply))
        .await
        .expect("reply in time")
        .expect("read reply");
    assert_eq!(&reply, b"ok");
}

#[tokio::test]
async fn haproxy_without_proxy_v2_forwards_only_the_bytes() {
    let backend = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy = Haproxy::start(&[backend.local_addr().expect("addr")], false);
    let mut client = connect_from(Ipv4Addr::new(127, 0, 0, 7), proxy.addr()).await;
    client.write_all(b"hello ferry").await.expect("write");
    let (mut conn, from) = tokio::time::timeout(DEADLINE, backend.accept())
        .await
        .expect("haproxy connected in time")
        .expect("accept");
    assert_ne!(from.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)));
    let mut body = [0u8; 11];
    tokio::time::timeout(DEADLINE, conn.read_exact(&mut body))
        .await
        .expect("body in time")
        .expect("read body");
    assert_eq!(&body, b"hello ferry");
}

#[tokio::test]
async fn haproxy_spreads_connections_over_the_backends() {
    let a = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let b = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy = Haproxy::start(
        &[a.local_addr().expect("addr"), b.local_addr().expect("addr")],
        false,
    );
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(proxy.addr()).await.expect("connect");
        c.write_all(b"x").await.expect("write");
        clients.push(c);
    }
    // Round robin: one connection reaches each backend.
    for l in [&a, &b] {
        tokio::time::timeout(DEADLINE, l.accept())
            .await
            .expect("each backend gets a connection")
            .expect("accept");
    }
}
