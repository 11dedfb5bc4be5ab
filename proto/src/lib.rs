//! Ferry's wire protocol, with no I/O: the hello, frames and their codec,
//! control messages, typed errors, remote paths and the SCRAM login state
//! machines. Both `ferryd` and the client speak through this crate only.

pub mod access;
pub mod chunks;
pub mod commit;
pub mod direct;
pub mod error;
pub mod fingerprint;
pub mod frame;
pub mod fuzz;
pub mod hello;
pub mod msg;
pub mod path;
pub mod scram;
pub mod size;
pub mod wire;

pub use error::{ErrorKind, RemoteError};
pub use frame::{Frame, FrameCodec, FrameError};
pub use hello::{Hello, HelloError, PROTOCOL_VERSION};
pub use msg::{ClientMsg, Reply, Request, ServerMsg};
pub use path::RemotePath;

/// Largest data chunk carried in one data frame.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Read buffer under a TLS stream. rustls reads the socket a few KiB at a
/// time (at most one record per call): 65,000 `recvfrom` calls per GiB,
/// each with its own TCP bookkeeping. Buffering below rustls makes that a
/// few thousand large reads for one extra copy in memory.
pub const TLS_READ_BUFFER: usize = 256 * 1024;

/// Frames a connection's writer sends per flush at most, beyond the one
/// it woke for: whatever is already queued goes out together (one TLS
/// record and one `writev` for a burst of small replies or requests).
pub const WRITE_BATCH: usize = 32;

/// Hard maximum for one frame on the wire (header included). A length prefix
/// above this closes the connection before anything is allocated for it.
pub const MAX_FRAME: usize = 1024 * 1024 + 64;
