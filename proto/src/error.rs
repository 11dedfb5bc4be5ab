//! Typed errors that cross the wire. The server maps every failure to one
//! [`ErrorKind`] plus a human-readable detail; clients match on the kind.

use serde::{Deserialize, Serialize};

/// What went wrong, as both sides understand it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The path does not exist.
    NotFound,
    /// The operating system refused the operation.
    PermissionDenied,
    /// The path leads outside the user's home directory.
    OutsideHome,
    /// Something already exists under that name.
    AlreadyExists,
    /// The directory is not empty.
    NotEmpty,
    /// A directory was expected.
    NotADirectory,
    /// A file was expected, but the path is a directory.
    IsADirectory,
    /// The operation would exceed the user's disk quota.
    QuotaExceeded,
    /// The server's disk is full.
    DiskFull,
    /// The path is not acceptable (NUL byte, empty component, too long...).
    InvalidPath,
    /// The request makes no sense (wrong state, bad argument).
    BadRequest,
    /// Login failed: unknown user or wrong password (never says which).
    AuthFailed,
    /// Too many failed logins from this address; try again later.
    Banned,
    /// The server refuses more connections or sessions right now.
    TooBusy,
    /// The access key challenge was not answered correctly.
    AccessDenied,
    /// The data did not verify (hash mismatch).
    IntegrityFailed,
    /// The peer broke the protocol.
    Protocol,
    /// A transfer was cancelled.
    Cancelled,
    /// Any other I/O failure on the server.
    Io,
    /// The operation would nest names deeper than the server allows.
    TooDeep,
    /// The peer made no progress for too long (a stalled transfer).
    TimedOut,
}

impl ErrorKind {
    /// A short phrase for messages like `ferry: PATH: <phrase>`.
    pub fn phrase(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "no such file or directory",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::OutsideHome => "outside your home directory",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::NotEmpty => "directory not empty",
            ErrorKind::NotADirectory => "not a directory",
            ErrorKind::IsADirectory => "is a directory",
            ErrorKind::QuotaExceeded => "disk quota exceeded",
            ErrorKind::DiskFull => "no space left on the server",
            ErrorKind::InvalidPath => "invalid path",
            ErrorKind::BadRequest => "bad request",
            ErrorKind::AuthFailed => "login failed: unknown user or wrong password",
            ErrorKind::Banned => "too many failed logins from this address; try again later",
            ErrorKind::TooBusy => "busy, try again later",
            ErrorKind::AccessDenied => "access key refused",
            ErrorKind::IntegrityFailed => "checksum mismatch: data was corrupted in transit",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Io => "I/O error on the server",
            ErrorKind::TimedOut => "no progress for too long; run it again to resume",
            ErrorKind::TooDeep => "too deeply nested (the server limits directory depth)",
        }
    }
}

/// An error as sent by the server: a kind and a detail for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", self.render())]
pub struct RemoteError {
    /// The category, for programs.
    pub kind: ErrorKind,
    /// Detail for people; may be empty. Never contains server-side absolute paths.
    pub detail: String,
}

impl RemoteError {
    /// An error with a detail.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> RemoteError {
        RemoteError {
            kind,
            detail: detail.into(),
        }
    }

    /// An error with no more to say than its kind.
    pub fn bare(kind: ErrorKind) -> RemoteError {
        RemoteError::new(kind, "")
    }

    fn render(&self) -> String {
        if self.detail.is_empty() {
            self.kind.phrase().to_string()
        } else {
            format!("{}: {}", self.detail, self.kind.phrase())
        }
    }
}
