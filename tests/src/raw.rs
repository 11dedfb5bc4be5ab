//! Speaking the protocol by hand, for tests that misbehave on purpose.

use std::net::SocketAddr;
use std::time::Duration;

use ferry_tui::client::TlsOptions;

use crate::Server;
use ferry_proto::msg::{SCRAM_SHA_256, SCRAM_SHA_256_PLUS};
use ferry_proto::scram::{ClientBinding, ClientFirst};
use ferry_proto::{ClientMsg, Frame, FrameCodec, Hello, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite};

/// A byte stream both ways.
pub trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Duplex for T {}

/// The byte stream under a raw connection: TLS, or plain TCP.
pub type Stream = Box<dyn Duplex>;

/// A connection after the hello.
pub struct Raw {
    /// Frames from the server.
    pub rd: FramedRead<ReadHalf<Stream>, FrameCodec>,
    /// Frames to the server.
    pub wr: FramedWrite<WriteHalf<Stream>, FrameCodec>,
    /// tls-exporter data when on TLS.
    pub binding: Option<Vec<u8>>,
}

/// Opens the transport the server expects (TLS pinned to its
/// fingerprint, or plain TCP), before any Ferry byte.
pub async fn transport(server: &Server) -> (Stream, Option<Vec<u8>>) {
    transport_to(server.addr, server.fingerprint.as_deref()).await
}

/// Opens a transport to `addr`: TLS pinned to `fingerprint`, or plain
/// TCP without one (for tools that run against a server they did not
/// start, such as the load benchmark).
pub async fn transport_to(
    addr: SocketAddr,
    fingerprint: Option<&str>,
) -> (Stream, Option<Vec<u8>>) {
    transport_from(addr, fingerprint, None).await
}

/// [`transport_to`] from the source address `from` (a loopback alias
/// such as 127.0.1.7 needs no setup on Linux), or any.
pub async fn transport_from(
    addr: SocketAddr,
    fingerprint: Option<&str>,
    from: Option<std::net::IpAddr>,
) -> (Stream, Option<Vec<u8>>) {
    let tcp = match from {
        None => TcpStream::connect(addr).await.expect("connect"),
        Some(ip) => {
            let socket = match ip {
                std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
                std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
            }
            .expect("socket");
            socket.bind(SocketAddr::new(ip, 0)).expect("bind");
            socket.connect(addr).await.expect("connect")
        }
    };
    match fingerprint {
        None => (Box::new(tcp), None),
        Some(fp) => {
            let opts = TlsOptions {
                fingerprint: Some(fp.to_string()),
                ..Default::default()
            };
            let (tls, binding, _) =
                ferry_tui::client::tls::handshake(tcp, &addr.to_string(), &opts)
                    .await
                    .expect("TLS");
            (Box::new(tls), Some(binding))
        }
    }
}

impl Raw {
    /// Connects and exchanges hellos.
    pub async fn connect(server: &Server) -> Raw {
        Raw::connect_to(server.addr, server.fingerprint.as_deref()).await
    }

    /// Connects to `addr` (TLS pinned to `fingerprint`, or plain TCP)
    /// and exchanges hellos.
    pub async fn connect_to(addr: SocketAddr, fingerprint: Option<&str>) -> Raw {
        Raw::connect_via(addr, fingerprint, None).await
    }

    /// Connects to `server` from the source address `from` and
    /// exchanges hellos.
    pub async fn connect_from(server: &Server, from: std::net::IpAddr) -> Raw {
        Raw::connect_via(server.addr, server.fingerprint.as_deref(), Some(from)).await
    }

    /// Connects to `addr` (TLS pinned to `fingerprint`, or plain TCP)
    /// from the source address `from` (or any) and exchanges hellos.
    pub async fn connect_via(
        addr: SocketAddr,
        fingerprint: Option<&str>,
        from: Option<std::net::IpAddr>,
    ) -> Raw {
        let (mut s, binding) = transport_from(addr, fingerprint, from).await;
        s.write_all(&Hello::ours().encode()).await.expect("hello");
        let mut theirs = [0u8; 8];
        s.read_exact(&mut theirs).await.expect("server hello");
        Hello::check(&theirs, "server").expect("same version");
        let (r, w) = tokio::io::split(s);
        Raw {
            rd: FramedRead::new(r, FrameCodec::new()),
            wr: FramedWrite::new(w, FrameCodec::new()),
            binding,
        }
    }

    /// Sends a message.
    pub async fn send(&mut self, msg: &ClientMsg) {
        self.wr
            .send(Frame::control(msg).expect("encode"))
            .await
            .expect("send");
    }

    /// Receives a message, or None when the server closed the connection.
    pub async fn recv(&mut self) -> Option<ServerMsg> {
        match tokio::time::timeout(Duration::from_secs(10), self.rd.next())
            .await
            .expect("server answered in time")
        {
            Some(Ok(f)) => Some(f.decode_control().expect("decodable")),
            _ => None,
        }
    }

    /// The mechanism and binding a correct client uses here.
    pub fn scram_binding(&self) -> (&'static str, ClientBinding) {
        match &self.binding {
            Some(b) => (SCRAM_SHA_256_PLUS, ClientBinding::TlsExporter(b.clone())),
            None => (SCRAM_SHA_256, ClientBinding::Unsupported),
        }
    }

    /// Runs a full SCRAM login; returns the client-first and
    /// client-final messages sent (for replay tests).
    pub async fn login(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<(String, String), ServerMsg> {
        let Some(ServerMsg::Welcome { .. }) = self.recv().await else {
            panic!("no welcome")
        };
        let (mechanism, binding) = self.scram_binding();
        let (first, client_first) =
            ClientFirst::new(user, password, "testnonce0123456789", binding);
        self.send(&ClientMsg::AuthStart {
            mechanism: mechanism.into(),
            client_first: client_first.clone(),
        })
        .await;
        let Some(ServerMsg::AuthChallenge { server_first }) = self.recv().await else {
            panic!("no challenge")
        };
        let (_, client_final) = first
            .handle_server_first(&server_first, 1_000_000)
            .expect("server first");
        self.send(&ClientMsg::AuthFinish {
            client_final: client_final.clone(),
        })
        .await;
        match self.recv().await {
            Some(ServerMsg::AuthOk { .. }) => Ok((client_first, client_final)),
            Some(other) => Err(other),
            None => panic!("closed"),
        }
    }
}
