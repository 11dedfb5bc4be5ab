//! The one place that knows control messages are bincode 2. Swapping the
//! encoding means changing this module only.

use serde::{de::DeserializeOwned, Serialize};

use crate::MAX_FRAME;

/// A control message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The bytes are not a valid message of the expected type.
    #[error("malformed message: {0}")]
    Decode(String),
    /// The message has bytes left over after a complete value.
    #[error("malformed message: {0} trailing bytes")]
    Trailing(usize),
    /// The message could not be encoded (too large, usually).
    #[error("cannot encode message: {0}")]
    Encode(String),
}

fn config() -> impl bincode::config::Config {
    // The limit bounds every allocation a decoded length prefix can ask for.
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encodes a control message body.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(msg, config()).map_err(|e| WireError::Encode(e.to_string()))
}

/// Decodes a control message body; the whole slice must be one value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(WireError::Trailing(bytes.len() - used));
    }
    Ok(value)
}
