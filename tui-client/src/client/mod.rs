//! The async client library shared by the batch CLI and the TUI.

mod busy;
mod connect;
mod error;
pub(crate) mod session;
pub mod tls;

pub use busy::{is_busy, BusyNotify, BusyRetry, BusyWait, DEFAULT_BUSY_TIMEOUT};
pub use connect::{connect, login, ConnectOptions, DEFAULT_MAX_ITERATIONS};
pub use error::{ClientError, Result};
pub use session::{Client, FindQuery, Usage};
pub use tls::{Security, ServerIdentity, TlsOptions, Trust};
