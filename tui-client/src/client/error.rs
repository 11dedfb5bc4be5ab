//! Errors the client library reports. Each says what failed and, where it
//! helps, what to do. Their messages are safe to print on a terminal:
//! whatever the server supplied in them is escaped ([`crate::display`]).

use ferry_proto::frame::FrameError;
use ferry_proto::hello::HelloError;
use ferry_proto::path::PathError;
use ferry_proto::scram::ScramError;
use ferry_proto::{ErrorKind, RemoteError};

use crate::display::{escape, sanitize};

/// Anything that can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {}: {source}", escape(addr))]
    Connect {
        /// Where we tried.
        addr: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The peer is not a compatible Ferry server.
    #[error(transparent)]
    Hello(#[from] HelloError),
    /// The server refused the connection or the login.
    #[error("{}", escape(&.0.to_string()))]
    Refused(RemoteError),
    /// The server answered a request with an error.
    #[error("{}", escape(&.0.to_string()))]
    Remote(RemoteError),
    /// The login exchange failed on our side (e.g. the server could not
    /// prove it knows the password verifier).
    #[error("login failed: {}", sanitize(&.0.to_string()))]
    Scram(#[from] ScramError),
    /// A path given by the user is not acceptable.
    #[error("{}: {source}", escape(path))]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        source: PathError,
    },
    /// The server reset the connection before sending a byte: how ferryd
    /// turns away a connection when its address already has as many
    /// connections logging in as it may. Retried like a busy answer.
    #[error(
        "{} turned the connection away before the handshake (too many connections \
         from this address are logging in); try again later",
        escape(server)
    )]
    TurnedAway {
        /// The server as given.
        server: String,
    },
    /// The server requires an access key and none was given.
    #[error("this server requires an access key: pass --access-key or set FERRY_ACCESS_KEY")]
    AccessKeyRequired,
    /// The server broke the protocol.
    #[error("protocol error: {}", sanitize(.0))]
    Protocol(String),
    /// Framing or socket failure.
    #[error("{}", sanitize(&.0.to_string()))]
    Frame(#[from] FrameError),
    /// The connection is gone.
    #[error("connection lost: {}", sanitize(.0))]
    Disconnected(String),
    /// TLS could not be set up, or the server's certificate was refused.
    #[error("{}", sanitize(.0))]
    Tls(String),
    /// First contact with a server whose certificate no trusted CA signed.
    #[error("{server} presented a certificate that no trusted authority signed; its fingerprint is {fingerprint}. \
             Check it with the server's administrator (ferryd fingerprint), then connect with \
             --fingerprint {fingerprint} (or --accept-new to trust it as is)")]
    UnknownServer {
        /// The server as given.
        server: String,
        /// Its certificate's fingerprint.
        fingerprint: String,
    },
    /// The certificate differs from the fingerprint given on the command line.
    #[error(
        "{server} presented certificate {got}, not the expected {expected}: refusing to connect \
             (someone may be intercepting the connection)"
    )]
    FingerprintMismatch {
        /// The server.
        server: String,
        /// What was given.
        expected: String,
        /// What it presented.
        got: String,
    },
    /// The certificate differs from the one pinned on first contact.
    #[error("WARNING: THE IDENTITY OF SERVER {server} HAS CHANGED!\n\
             Someone could be intercepting your connection (a man-in-the-middle attack), \
             or the server's certificate was replaced.\n\
             Expected {expected}, got {got}.\n\
             If the change is expected, remove line {line} of {file} and connect again.", file = file.display())]
    ServerChanged {
        /// The server.
        server: String,
        /// The pinned fingerprint.
        expected: String,
        /// What it presented.
        got: String,
        /// The known-servers file.
        file: std::path::PathBuf,
        /// The line holding the old pin.
        line: usize,
    },
    /// A local file operation failed.
    #[error("{}: {source}", escape(path))]
    Local {
        /// The local path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl ClientError {
    /// The wire error kind, when the server sent one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Remote(e) | ClientError::Refused(e) => Some(e.kind),
            ClientError::TurnedAway { .. } => Some(ErrorKind::TooBusy),
            ClientError::Path {
                source: PathError::OutsideHome,
                ..
            } => Some(ErrorKind::OutsideHome),
            ClientError::Path { .. } => Some(ErrorKind::InvalidPath),
            _ => None,
        }
    }

    /// True when the connection can no longer be used.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            ClientError::Remote(_) | ClientError::Path { .. } | ClientError::Local { .. }
        )
    }
}

/// True for the reset with which a server turns a connection away before
/// saying anything (see [`ClientError::TurnedAway`]).
pub(crate) fn is_turned_away(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::ConnectionReset
}

/// Result alias for the client library.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_supplied_text_is_escaped() {
        let detail = "x\u{1b}]0;owned\u{7}\nferry: forged";
        for e in [
            ClientError::Remote(RemoteError::new(ErrorKind::NotFound, detail)),
            ClientError::Refused(RemoteError::new(ErrorKind::TooBusy, detail)),
            ClientError::Disconnected(detail.into()),
            ClientError::Protocol(detail.into()),
            ClientError::Tls(detail.into()),
        ] {
            let shown = e.to_string();
            assert!(shown.contains("x\\e]0;owned\\a\\nferry: forged"), "{shown}");
            assert!(!shown.chars().any(crate::display::is_unsafe), "{shown:?}");
        }
    }
}
