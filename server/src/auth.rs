//! The login handshake after the hello: optional access-key challenge, then
//! SCRAM-SHA-256. Unknown users get a mock verifier and fail exactly like a
//! wrong password; failures are penalised per source and per user
//! (`penalty.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ferry_proto::msg::{SCRAM_SHA_256, SCRAM_SHA_256_PLUS};
use ferry_proto::scram::{ServerBinding, ServerFirst, Verifier};
use ferry_proto::{access, ClientMsg, ErrorKind, RemoteError, ServerMsg};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::accounts::Session;
use crate::link::{recv, send, LinkError, Reader, Writer};
use crate::logfmt::q;
use crate::penalty::Attempt;
use crate::places::{Admission, Stage};
use crate::server::Shared;
use crate::store::nodes::SessionRefused;

/// How a handshake ended without a session.
#[derive(Debug, thiserror::Error)]
pub enum AuthEnd {
    /// The client was told why and the connection is to be closed.
    #[error("refused: {0}")]
    Refused(RemoteError),
    /// The link failed.
    #[error(transparent)]
    Link(#[from] LinkError),
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthEnd> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|_| AuthEnd::Refused(RemoteError::bare(ErrorKind::Io)))?;
    Ok(b)
}

async fn refuse<W: AsyncWrite + Unpin>(w: &mut Writer<W>, error: RemoteError) -> AuthEnd {
    // Best effort: the peer may already be gone.
    let _ = send(
        w,
        &ServerMsg::Refused {
            error: error.clone(),
        },
    )
    .await;
    AuthEnd::Refused(error)
}

/// Runs the handshake; on success the user has a live session.
pub async fn login<R, W>(
    r: &mut Reader<R>,
    w: &mut Writer<W>,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    binding: ServerBinding,
    admission: &mut Admission,
) -> Result<Session, AuthEnd>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let ip = peer.ip();
    if let Err(e) = shared.penalties.check(ip) {
        tracing::warn!(target: "audit", addr = %peer, "connection from banned address refused");
        return Err(refuse(w, e).await);
    }
    let access_nonce = match shared.config.access_key {
        Some(_) => Some(random_bytes::<{ access::NONCE_LEN }>()?.to_vec()),
        None => None,
    };
    let mut mechanisms = vec![SCRAM_SHA_256.to_string()];
    if matches!(binding, ServerBinding::TlsExporter(_)) {
        mechanisms.insert(0, SCRAM_SHA_256_PLUS.to_string());
    }
    send(
        w,
        &ServerMsg::Welcome {
            server: format!("ferryd {}", env!("CARGO_PKG_VERSION")),
            mechanisms,
            access_challenge: access_nonce.clone(),
        },
    )
    .await?;

    if let (Some(key), Some(nonce)) = (&shared.config.access_key, &access_nonce) {
        let answer = match recv(r).await? {
            ClientMsg::AccessProof { answer } => answer,
            _ => Vec::new(),
        };
        // A wrong key counts like a wrong password (no user name).
        let attempt = match shared.penalties.begin(ip, "").await {
            Ok(a) => a,
            Err(e) => return Err(refuse(w, e).await),
        };
        if access::verify(key.as_bytes(), nonce, &answer) {
            if let Err(e) = attempt.succeeded().await {
                return Err(refuse(w, e).await);
            }
        } else {
            let delay = attempt.failed().await;
            tracing::warn!(target: "audit", addr = %peer, "access key refused");
            tokio::time::sleep(delay).await;
            return Err(refuse(
                w,
                RemoteError::new(
                    ErrorKind::AccessDenied,
                    "this server needs an access key (--access-key or FERRY_ACCESS_KEY)",
                ),
            )
            .await);
        }
    }

    let ClientMsg::AuthStart {
        mechanism,
        client_first,
    } = recv(r).await?
    else {
        return Err(refuse(
            w,
            RemoteError::new(ErrorKind::Protocol, "expected AuthStart"),
        )
        .await);
    };
    admission.progress(Stage::LoggingIn);
    let parsed = match ServerFirst::parse_client_first(&client_first) {
        Ok(p) => p,
        Err(e) => {
            return Err(refuse(w, RemoteError::new(ErrorKind::Protocol, e.to_string())).await)
        }
    };
    let user = parsed.username().to_string();
    let plus = mechanism == SCRAM_SHA_256_PLUS;
    if !plus && mechanism != SCRAM_SHA_256 {
        return Err(refuse(
            w,
            RemoteError::new(
                ErrorKind::Protocol,
                format!("unsupported mechanism {mechanism}"),
            ),
        )
        .await);
    }

    // Over TLS the login must be bound to this channel: a client that says
    // it cannot bind ('n') or thinks we cannot ('y') is refused, so a
    // relay between two TLS connections cannot pass a login through.
    if matches!(binding, ServerBinding::TlsExporter(_)) && (!plus || !parsed.requests_binding()) {
        if let Ok(attempt) = shared.penalties.begin(ip, &user).await {
            attempt.failed().await;
        }
        tracing::warn!(target: "audit", user = %q(&user), addr = %peer, "login refused: no channel binding over TLS");
        let why = "this server requires SCRAM-SHA-256-PLUS with tls-exporter channel binding";
        return Err(refuse(w, RemoteError::new(ErrorKind::AuthFailed, why)).await);
    }

    // Real or mock: the same code path either way.
    // An unknown name's mock shows an iteration count real users have
    // (see `users::mock_iterations`), so no field tells it apart.
    let login = match shared
        .store
        .for_login(&user, &shared.secret, shared.config.auth.iterations)
        .await
    {
        Ok(login) => login,
        Err(e) => {
            tracing::warn!(target: "audit", user = %q(&user), addr = %peer, error = %e, "login refused: state store unavailable");
            return Err(refuse(w, e.to_remote()).await);
        }
    };
    let record = login.record;
    let verifier = record
        .as_ref()
        .and_then(|rec| rec.verifier().ok())
        .unwrap_or_else(|| Verifier::mock(&shared.secret, &user, login.mock_iterations));
    let server_nonce = B64.encode(random_bytes::<18>()?);
    let (state, server_first) = match ServerFirst::new(parsed, verifier, &server_nonce, binding) {
        Ok(v) => v,
        Err(e) => {
            let attempt = match shared.penalties.begin(ip, &user).await {
                Ok(a) => a,
                Err(e) => return Err(refuse(w, e).await),
            };
            return Err(fail(w, peer, attempt, &user, &e.to_string()).await);
        }
    };
    send(w, &ServerMsg::AuthChallenge { server_first }).await?;

    let ClientMsg::AuthFinish { client_final } = recv(r).await? else {
        return Err(refuse(
            w,
            RemoteError::new(ErrorKind::Protocol, "expected AuthFinish"),
        )
        .await);
    };
    // After failures against this user from elsewhere, its turn may wait
    // (or be refused as busy); then the proof is checked only if this
    // source's failures and proofs in flight leave room below its ban, and
    // refused if a ban came meanwhile.
    let deadline = admission.deadline().into_std();
    let turn = match shared.penalties.turn(ip, &user, deadline).await {
        Ok(turn) => turn,
        Err(e) => {
            tracing::warn!(target: "audit", user = %q(&user), addr = %peer, error = %e, "login deferred: failed logins as this user from other addresses");
            return Err(refuse(w, e).await);
        }
    };
    let attempt = match shared.penalties.begin_after(ip, &user, turn).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(target: "audit", user = %q(&user), addr = %peer, error = %e, "login refused unchecked");
            return Err(refuse(w, e).await);
        }
    };
    let server_final = match state.handle_client_final(&client_final) {
        Ok(v) => v,
        Err(e) => return Err(fail(w, peer, attempt, &user, &e.to_string()).await),
    };
    let Some(record) = record else {
        // Unreachable in practice (a mock verifier's keys are unknowable),
        // but never let one through.
        return Err(fail(w, peer, attempt, &user, "unknown user").await);
    };
    if let Err(e) = attempt.succeeded().await {
        tracing::warn!(target: "audit", user = %q(&user), addr = %peer, "login refused: address banned while it was checked");
        return Err(refuse(w, e).await);
    }
    // The stranger's place is given back and a session's taken only now:
    // connections that are not logged in never compete with sessions.
    if let Err(e) = admission.promote() {
        tracing::warn!(target: "audit", user = %q(&user), addr = %peer, "login refused: server at its session limit");
        return Err(refuse(w, e).await);
    }
    let mut session = match shared
        .accounts
        .open(
            &user,
            shared.config.home_of(&user),
            record.limits(shared.config.limits.max_entries_per_user),
            shared.config.limits.max_sessions_per_user,
            record.stored_key.clone(),
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(target: "audit", user = %q(&user), addr = %peer, error = %e, "login refused");
            return Err(refuse(w, e).await);
        }
    };
    // Sessions per user are counted over every node sharing the store.
    match shared
        .store
        .open_session(
            &shared.node,
            &user,
            peer,
            shared.config.limits.max_sessions_per_user,
        )
        .await
    {
        Ok(row) => session.hold_row(row),
        Err(SessionRefused::Full(max)) => {
            tracing::warn!(target: "audit", user = %q(&user), addr = %peer, "login refused: {max} sessions of this user on all nodes");
            let e = RemoteError::new(
                ErrorKind::TooBusy,
                format!("too many sessions for this user ({max}, on all nodes)"),
            );
            return Err(refuse(w, e).await);
        }
        Err(SessionRefused::Store(e)) => {
            tracing::warn!(target: "audit", user = %q(&user), addr = %peer, error = %e, "login refused: state store unavailable");
            return Err(refuse(w, e.to_remote()).await);
        }
    }
    let limits = &shared.config.limits;
    let max_requests = u32::try_from(limits.max_requests_in_flight).unwrap_or(u32::MAX);
    let max_small_uploads = u32::try_from(limits.max_small_uploads_in_flight).unwrap_or(u32::MAX);
    send(
        w,
        &ServerMsg::AuthOk {
            server_final,
            max_requests,
            max_small_uploads,
        },
    )
    .await?;
    tracing::info!(target: "audit", user = %q(&user), addr = %peer, "login ok");
    Ok(session)
}

async fn fail<W: AsyncWrite + Unpin>(
    w: &mut Writer<W>,
    peer: SocketAddr,
    attempt: Attempt<'_>,
    user: &str,
    why: &str,
) -> AuthEnd {
    let delay = attempt.failed().await;
    tracing::warn!(target: "audit", user = %q(user), addr = %peer, reason = %q(why), "login failed");
    tokio::time::sleep(delay).await;
    refuse(w, RemoteError::bare(ErrorKind::AuthFailed)).await
}
