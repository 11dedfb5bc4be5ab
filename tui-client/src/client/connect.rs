//! Opening a session: TCP, TLS 1.3 (unless plaintext was asked for), the
//! hello, the optional access-key challenge and SCRAM-SHA-256 (-PLUS with
//! tls-exporter channel binding over TLS) with mutual authentication.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ferry_proto::hello::HELLO_LEN;
use ferry_proto::msg::{SCRAM_SHA_256, SCRAM_SHA_256_PLUS};
use ferry_proto::scram::{ClientBinding, ClientFirst};
use ferry_proto::{access, ClientMsg, Frame, FrameCodec, Hello, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::busy::BusyRetry;
use super::error::{ClientError, Result};
use super::session::Client;
use super::tls::{self, Security, ServerIdentity, Trust};

/// Highest PBKDF2 iteration count the client accepts by default: a hostile
/// server must not be able to stall it with a huge count.
pub const DEFAULT_MAX_ITERATIONS: u32 = 1_000_000;

/// Everything needed to log in.
#[derive(Clone)]
pub struct ConnectOptions {
    /// `host:port`.
    pub server: String,
    /// User name.
    pub user: String,
    /// Password (used for SCRAM only; it never leaves this process).
    pub password: String,
    /// Access key, if the server requires one.
    pub access_key: Option<String>,
    /// Iteration cap for SCRAM.
    pub max_iterations: u32,
    /// Limit for the TCP connect and the whole login.
    pub timeout: Duration,
    /// TLS (default) or explicit plaintext.
    pub security: Security,
    /// Waiting out a busy server (too many connections, too many sessions
    /// of this user, a request refused as busy). Default: no retry.
    pub busy: BusyRetry,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("access_key", &self.access_key.as_ref().map(|_| "<hidden>"))
            .field("security", &self.security)
            .field("busy", &self.busy)
            .finish()
    }
}

impl ConnectOptions {
    /// Options with default limits and TLS with default trust (system CAs,
    /// the default known-servers file; unknown servers are refused with
    /// their fingerprint so the caller can ask the user).
    pub fn new(
        server: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        ConnectOptions {
            server: server.into(),
            user: user.into(),
            password: password.into(),
            access_key: None,
            max_iterations: DEFAULT_MAX_ITERATIONS,
            timeout: Duration::from_secs(30),
            security: Security::Tls(tls::TlsOptions {
                known_servers: tls::default_known_servers(),
                ..Default::default()
            }),
            busy: BusyRetry::default(),
        }
    }
}

/// Connects over TCP, sets up TLS and logs in. A server that refuses
/// the connection or the session as busy is tried again as `opts.busy`
/// allows; any other failure is returned at once.
pub async fn connect(opts: &ConnectOptions) -> Result<Client> {
    opts.busy.run(|| connect_once(opts)).await
}

async fn connect_once(opts: &ConnectOptions) -> Result<Client> {
    let connect = TcpStream::connect(&opts.server);
    let stream = match tokio::time::timeout(opts.timeout, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) if super::error::is_turned_away(&source) => {
            return Err(ClientError::TurnedAway {
                server: opts.server.clone(),
            })
        }
        Ok(Err(source)) => {
            return Err(ClientError::Connect {
                addr: opts.server.clone(),
                source,
            })
        }
        Err(_) => {
            return Err(ClientError::Connect {
                addr: opts.server.clone(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
            })
        }
    };
    let _ = stream.set_nodelay(true);
    let work = async {
        match &opts.security {
            Security::InsecurePlaintext => {
                let identity = ServerIdentity {
                    fingerprint: None,
                    trust: Trust::Plaintext,
                };
                login(stream, opts, None, identity).await
            }
            Security::Tls(t) => {
                let (stream, binding, identity) = tls::handshake(stream, &opts.server, t).await?;
                login(stream, opts, Some(binding), identity).await
            }
        }
    };
    tokio::time::timeout(opts.timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Disconnected(
                "the server did not complete the login in time".into(),
            ))
        })
}

fn nonce() -> Result<String> {
    let mut b = [0u8; 18];
    getrandom::getrandom(&mut b)
        .map_err(|e| ClientError::Protocol(format!("no system randomness: {e}")))?;
    Ok(B64.encode(b))
}

/// Logs in over any byte stream (TCP, TLS, or an in-memory pipe in tests).
/// `binding` is the TLS channel's tls-exporter data, when there is one.
pub async fn login<S>(
    stream: S,
    opts: &ConnectOptions,
    binding: Option<Vec<u8>>,
    identity: ServerIdentity,
) -> Result<Client>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    // A reset before the server's hello is how ferryd turns a connection
    // away (plaintext; over TLS the handshake meets it first).
    let turned_away = |e: &std::io::Error| {
        super::error::is_turned_away(e).then(|| ClientError::TurnedAway {
            server: opts.server.clone(),
        })
    };
    wr.write_all(&Hello::ours().encode())
        .await
        .map_err(|e| turned_away(&e).unwrap_or_else(|| ClientError::Disconnected(e.to_string())))?;
    wr.flush()
        .await
        .map_err(|e| turned_away(&e).unwrap_or_else(|| ClientError::Disconnected(e.to_string())))?;
    let mut theirs = [0u8; HELLO_LEN];
    rd.read_exact(&mut theirs).await.map_err(|e| {
        turned_away(&e).unwrap_or_else(|| {
            ClientError::Disconnected(
                "the server closed the connection during the hello (is it a Ferry server?)".into(),
            )
        })
    })?;
    let hello = Hello::check(&theirs, "server")?;
    let mut reader =
        FramedRead::with_capacity(rd, FrameCodec::new(), ferry_proto::chunks::READ_BUFFER);
    let mut writer = FramedWrite::new(wr, FrameCodec::new());

    let ServerMsg::Welcome {
        server,
        mechanisms,
        access_challenge,
    } = recv(&mut reader).await?
    else {
        return Err(ClientError::Protocol("expected a welcome".into()));
    };
    if let Some(nonce) = access_challenge {
        let Some(key) = &opts.access_key else {
            return Err(ClientError::AccessKeyRequired);
        };
        let answer = access::respond(key.as_bytes(), &nonce).to_vec();
        send(&mut writer, &ClientMsg::AccessProof { answer }).await?;
    }
    let offers = |m: &str| mechanisms.iter().any(|x| x == m);
    // Over TLS, bind the login to this very channel; if the server does not
    // offer binding, say we could have ('y'), so a server that does offer
    // it detects the downgrade.
    let (mechanism, cb) = match binding {
        Some(data) if offers(SCRAM_SHA_256_PLUS) => {
            (SCRAM_SHA_256_PLUS, ClientBinding::TlsExporter(data))
        }
        Some(_) => (SCRAM_SHA_256, ClientBinding::SupportedNotUsed),
        None => (SCRAM_SHA_256, ClientBinding::Unsupported),
    };
    if !offers(mechanism) {
        return Err(ClientError::Protocol(format!(
            "no common login mechanism (server offers {mechanisms:?})"
        )));
    }
    let (first, client_first) = ClientFirst::new(&opts.user, &opts.password, &nonce()?, cb);
    send(
        &mut writer,
        &ClientMsg::AuthStart {
            mechanism: mechanism.into(),
            client_first,
        },
    )
    .await?;
    let ServerMsg::AuthChallenge { server_first } = recv(&mut reader).await? else {
        return Err(ClientError::Protocol("expected a SCRAM challenge".into()));
    };
    let (last, client_final) = first.handle_server_first(&server_first, opts.max_iterations)?;
    send(&mut writer, &ClientMsg::AuthFinish { client_final }).await?;
    let ServerMsg::AuthOk {
        server_final,
        max_requests,
        max_small_uploads,
    } = recv(&mut reader).await?
    else {
        return Err(ClientError::Protocol("expected the login result".into()));
    };
    // Mutual authentication: the server proves it holds our verifier.
    last.handle_server_final(&server_final)?;
    Ok(Client::start(
        reader,
        writer,
        super::session::Established {
            server,
            protocol: hello.version,
            user: opts.user.clone(),
            identity,
            limits: super::session::Limits {
                max_requests,
                max_small_uploads,
            },
            busy: opts.busy.clone(),
        },
    ))
}

async fn send<W: AsyncWrite + Unpin>(
    w: &mut FramedWrite<W, FrameCodec>,
    msg: &ClientMsg,
) -> Result<()> {
    let frame = Frame::control(msg).map_err(ferry_proto::FrameError::from)?;
    w.send(frame)
        .await
        .map_err(|e| ClientError::Disconnected(e.to_string()))
}

/// Receives the next handshake message; a `Refused` becomes an error.
async fn recv<R: AsyncRead + Unpin>(r: &mut FramedRead<R, FrameCodec>) -> Result<ServerMsg> {
    match r.next().await {
        None => Err(ClientError::Disconnected(
            "the server closed the connection".into(),
        )),
        Some(Err(e)) => Err(e.into()),
        Some(Ok(frame)) => match frame.decode_control::<ServerMsg>()? {
            ServerMsg::Refused { error } => Err(ClientError::Refused(error)),
            msg => Ok(msg),
        },
    }
}
