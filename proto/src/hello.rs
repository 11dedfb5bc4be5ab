//! The first bytes on a connection: magic and protocol version, sent by both
//! sides before any frame, so that a mismatch can be reported in words.

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 7;

/// Magic bytes that open every Ferry connection.
pub const MAGIC: [u8; 6] = *b"FERRY\0";

/// Length of an encoded hello.
pub const HELLO_LEN: usize = 8;

/// The hello: magic plus a big-endian protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version of the sender.
    pub version: u16,
}

/// Why a peer's hello was not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HelloError {
    /// The bytes are not a Ferry hello at all.
    #[error("the peer does not speak the Ferry protocol")]
    NotFerry,
    /// Both speak Ferry, but different versions.
    #[error("{peer} speaks Ferry protocol {theirs}, this {me} speaks {ours}")]
    Version {
        /// Who the peer is ("server" or "client"), for the message.
        peer: &'static str,
        /// Who we are.
        me: &'static str,
        /// The peer's version.
        theirs: u16,
        /// Our version.
        ours: u16,
    },
}

impl Hello {
    /// Our own hello.
    pub fn ours() -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
        }
    }

    /// Encodes as the 8 bytes sent on the wire.
    pub fn encode(self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        out[..6].copy_from_slice(&MAGIC);
        out[6..].copy_from_slice(&self.version.to_be_bytes());
        out
    }

    /// Parses the peer's 8 bytes (any version).
    pub fn decode(bytes: &[u8; HELLO_LEN]) -> Result<Hello, HelloError> {
        if bytes[..6] != MAGIC {
            return Err(HelloError::NotFerry);
        }
        Ok(Hello {
            version: u16::from_be_bytes([bytes[6], bytes[7]]),
        })
    }

    /// Checks the peer's hello against ours. `peer` names the other side
    /// ("server" when the client checks, "client" when the server does).
    pub fn check(bytes: &[u8; HELLO_LEN], peer: &'static str) -> Result<Hello, HelloError> {
        let hello = Hello::decode(bytes)?;
        if hello.version != PROTOCOL_VERSION {
            let me = if peer == "server" { "client" } else { "server" };
            return Err(HelloError::Version {
                peer,
                me,
                theirs: hello.version,
                ours: PROTOCOL_VERSION,
            });
        }
        Ok(hello)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = Hello::ours().encode();
        assert_eq!(Hello::check(&bytes, "server"), Ok(Hello::ours()));
    }

    #[test]
    fn version_mismatch_reads_well() {
        let bytes = Hello { version: 1 }.encode();
        let err = Hello::check(&bytes, "server").unwrap_err();
        let want = format!("server speaks Ferry protocol 1, this client speaks {PROTOCOL_VERSION}");
        assert_eq!(err.to_string(), want);
    }

    #[test]
    fn garbage_is_not_ferry() {
        assert_eq!(Hello::decode(b"GET / HT"), Err(HelloError::NotFerry));
    }
}
