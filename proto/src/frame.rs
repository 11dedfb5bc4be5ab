//! Frames: a 4-byte big-endian length, then a one-byte tag and a body.
//! Control frames carry one encoded message; data frames carry a transfer id
//! and raw file bytes (never a bincode `Vec<u8>`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::wire::{self, WireError};
use crate::MAX_FRAME;

const TAG_CONTROL: u8 = 0;
const TAG_DATA: u8 = 1;
const DATA_HEADER: usize = 1 + 4;

/// One frame, decoded as far as the framing layer goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// An encoded control message (decode it with [`Frame::decode_control`]).
    Control(Bytes),
    /// File data for a transfer.
    Data {
        /// Transfer id, chosen when the transfer was opened.
        transfer: u32,
        /// The bytes.
        data: Bytes,
    },
}

impl Frame {
    /// Encodes a control message into a frame.
    pub fn control<T: Serialize>(msg: &T) -> Result<Frame, WireError> {
        Ok(Frame::Control(Bytes::from(wire::encode(msg)?)))
    }

    /// Decodes this control frame's message.
    pub fn decode_control<T: DeserializeOwned>(&self) -> Result<T, FrameError> {
        match self {
            Frame::Control(body) => Ok(wire::decode(body)?),
            Frame::Data { .. } => Err(FrameError::UnexpectedData),
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the protocol maximum, or the smaller
    /// limit of the codec's current stage (see [`FrameCodec::with_max`]).
    #[error("frame too large (the maximum here is {MAX_FRAME} bytes, or less before login)")]
    TooLarge,
    /// A frame with no tag, or a data frame too short for its header.
    #[error("truncated frame")]
    Truncated,
    /// A tag this version does not know.
    #[error("unknown frame type {0}")]
    UnknownTag(u8),
    /// A data frame where a control message was expected.
    #[error("unexpected data frame")]
    UnexpectedData,
    /// The control message did not decode.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The connection failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
}

/// The codec for both directions: length-delimited frames with a hard maximum.
#[derive(Debug)]
pub struct FrameCodec {
    inner: LengthDelimitedCodec,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new()
    }
}

impl FrameCodec {
    /// A codec enforcing [`MAX_FRAME`].
    pub fn new() -> FrameCodec {
        FrameCodec::with_max(MAX_FRAME)
    }

    /// A codec that refuses frames longer than `max` bytes (at most
    /// [`MAX_FRAME`]) as soon as their length prefix arrives, before
    /// reserving room for them: a server reads the login with a small one.
    pub fn with_max(max: usize) -> FrameCodec {
        FrameCodec {
            inner: LengthDelimitedCodec::builder()
                .big_endian()
                .length_field_length(4)
                .max_frame_length(max.min(MAX_FRAME))
                .new_codec(),
        }
    }

    /// Changes the largest frame accepted from now on (at most [`MAX_FRAME`]).
    pub fn set_max(&mut self, max: usize) {
        self.inner.set_max_frame_length(max.min(MAX_FRAME));
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        // LengthDelimitedCodec checks the prefix against the maximum before
        // reserving anything, so a hostile 4 GiB prefix costs nothing.
        let mut body = match self.inner.decode(src) {
            Ok(Some(body)) => body,
            Ok(None) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(FrameError::TooLarge)
            }
            Err(e) => return Err(FrameError::Io(e)),
        };
        if body.is_empty() {
            return Err(FrameError::Truncated);
        }
        match body.get_u8() {
            TAG_CONTROL => Ok(Some(Frame::Control(body.freeze()))),
            TAG_DATA => {
                if body.len() < 4 {
                    return Err(FrameError::Truncated);
                }
                let transfer = body.get_u32();
                Ok(Some(Frame::Data {
                    transfer,
                    data: body.freeze(),
                }))
            }
            tag => Err(FrameError::UnknownTag(tag)),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let (tag, header_id, body) = match frame {
            Frame::Control(body) => (TAG_CONTROL, None, body),
            Frame::Data { transfer, data } => (TAG_DATA, Some(transfer), data),
        };
        let len = 1 + header_id.map_or(0, |_| 4) + body.len();
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge);
        }
        dst.reserve(4 + len);
        dst.put_u32(len as u32);
        dst.put_u8(tag);
        if let Some(id) = header_id {
            dst.put_u32(id);
        }
        dst.extend_from_slice(&body);
        Ok(())
    }
}

impl FrameCodec {
    /// The bytes that precede `len` bytes of file data in a data frame, for
    /// writers that send large payloads straight to the stream instead of
    /// copying them through the codec's buffer.
    pub fn data_header(transfer: u32, len: usize) -> Result<[u8; 4 + DATA_HEADER], FrameError> {
        let frame_len = DATA_HEADER + len;
        if frame_len > MAX_FRAME {
            return Err(FrameError::TooLarge);
        }
        let mut h = [0u8; 4 + DATA_HEADER];
        h[..4].copy_from_slice(&(frame_len as u32).to_be_bytes());
        h[4] = TAG_DATA;
        h[5..].copy_from_slice(&transfer.to_be_bytes());
        Ok(h)
    }
}

/// Largest file payload that fits one data frame.
pub const MAX_DATA: usize = MAX_FRAME - DATA_HEADER;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, RemoteError};
    use crate::msg::*;
    use proptest::prelude::*;

    fn encode_all(frames: &[Frame]) -> BytesMut {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        for f in frames {
            codec.encode(f.clone(), &mut buf).expect("encode");
        }
        buf
    }

    fn decode_all(mut buf: BytesMut) -> Vec<Frame> {
        let mut codec = FrameCodec::new();
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).expect("decode") {
            out.push(f);
        }
        assert!(buf.is_empty());
        out
    }

    fn sample_messages() -> (Vec<ClientMsg>, Vec<ServerMsg>) {
        let entry = Entry {
            name: "naïve file.txt".into(),
            kind: EntryKind::File,
            size: u64::MAX,
            mtime: -5,
            mode: 0o644,
        };
        let client = vec![
            ClientMsg::AccessProof {
                answer: vec![1; 32],
            },
            ClientMsg::AuthStart {
                mechanism: SCRAM_SHA_256.into(),
                client_first: "n,,n=user,r=abc".into(),
            },
            ClientMsg::AuthFinish {
                client_final: "c=biws,r=abc,p=xyz".into(),
            },
            ClientMsg::Request {
                id: 1,
                req: Request::List { path: "/".into() },
            },
            ClientMsg::Request {
                id: 2,
                req: Request::Stat { path: "a".into() },
            },
            ClientMsg::Request {
                id: 3,
                req: Request::Mkdir {
                    path: "a/b".into(),
                    parents: true,
                },
            },
            ClientMsg::Request {
                id: 4,
                req: Request::Remove {
                    path: "x".into(),
                    mode: RemoveMode::Recursive,
                },
            },
            ClientMsg::Request {
                id: 5,
                req: Request::Rename {
                    from: "x".into(),
                    to: "y".into(),
                    overwrite: false,
                },
            },
            ClientMsg::Request {
                id: u32::MAX,
                req: Request::Quota,
            },
            ClientMsg::Request {
                id: 6,
                req: Request::PutOpen {
                    transfer: 1,
                    path: "big".into(),
                    size: 5 << 32,
                    mtime: 1,
                    mode: 0o600,
                    overwrite: false,
                    resume: true,
                    eager: false,
                },
            },
            ClientMsg::Request {
                id: 7,
                req: Request::GetOpen {
                    transfer: 2,
                    path: "big".into(),
                    offset: 9,
                    prefix_sha256: Some([3; 32]),
                    rehash: true,
                },
            },
            ClientMsg::Request {
                id: 8,
                req: Request::Checksum {
                    path: "f".into(),
                    offset: 0,
                    length: Some(3),
                },
            },
            ClientMsg::PutStart {
                transfer: 1,
                offset: 1 << 33,
            },
            ClientMsg::TransferEnd {
                transfer: 1,
                sha256: [7; 32],
            },
            ClientMsg::Cancel { transfer: 2 },
        ];
        let server = vec![
            ServerMsg::Welcome {
                server: "ferryd 0.1".into(),
                mechanisms: vec![SCRAM_SHA_256.into()],
                access_challenge: Some(vec![9; 32]),
            },
            ServerMsg::AuthChallenge {
                server_first: "r=abc,s=xyz,i=4096".into(),
            },
            ServerMsg::AuthOk {
                server_final: "v=abc".into(),
                max_requests: 64,
                max_small_uploads: 256,
            },
            ServerMsg::Refused {
                error: RemoteError::bare(ErrorKind::AuthFailed),
            },
            ServerMsg::Response {
                id: 1,
                reply: Ok(Reply::Entries {
                    entries: vec![entry.clone(); 3],
                    more: true,
                }),
            },
            ServerMsg::Response {
                id: 2,
                reply: Ok(Reply::Stat(entry)),
            },
            ServerMsg::Response {
                id: 3,
                reply: Ok(Reply::Done),
            },
            ServerMsg::Response {
                id: 4,
                reply: Ok(Reply::Quota {
                    used: 1 << 40,
                    limit: Some(1 << 41),
                    entries: 1 << 20,
                    max_entries: Some(1 << 21),
                }),
            },
            ServerMsg::Response {
                id: 5,
                reply: Err(RemoteError::new(ErrorKind::OutsideHome, "../etc")),
            },
            ServerMsg::Response {
                id: 6,
                reply: Ok(Reply::PutReady {
                    partial: 10,
                    prefix_sha256: Some([1; 32]),
                }),
            },
            ServerMsg::Response {
                id: 6,
                reply: Ok(Reply::PutDone {
                    size: 10,
                    sha256: [2; 32],
                }),
            },
            ServerMsg::Response {
                id: 7,
                reply: Ok(Reply::GetReady {
                    size: 1 << 40,
                    offset: 0,
                    mtime: 5,
                    mode: 0o644,
                }),
            },
            ServerMsg::Response {
                id: 7,
                reply: Ok(Reply::GetDone {
                    sha256: [4; 32],
                    stored: true,
                }),
            },
            ServerMsg::Response {
                id: 8,
                reply: Ok(Reply::Checksum {
                    length: 3,
                    sha256: [5; 32],
                }),
            },
        ];
        (client, server)
    }

    #[test]
    fn every_message_round_trips() {
        let (client, server) = sample_messages();
        for m in &client {
            let f = Frame::control(m).expect("encode");
            let back = decode_all(encode_all(&[f]));
            assert_eq!(&back[0].decode_control::<ClientMsg>().expect("decode"), m);
        }
        for m in &server {
            let f = Frame::control(m).expect("encode");
            let back = decode_all(encode_all(&[f]));
            assert_eq!(&back[0].decode_control::<ServerMsg>().expect("decode"), m);
        }
    }

    #[test]
    fn byte_at_a_time_gives_the_same_frames() {
        let (client, _) = sample_messages();
        let mut frames: Vec<Frame> = client
            .iter()
            .map(|m| Frame::control(m).expect("enc"))
            .collect();
        frames.push(Frame::Data {
            transfer: 7,
            data: Bytes::from(vec![0xAB; 70_000]),
        });
        frames.push(Frame::Data {
            transfer: 8,
            data: Bytes::new(),
        });
        let wire = encode_all(&frames);
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = codec.decode(&mut buf).expect("decode") {
                out.push(f);
            }
        }
        assert_eq!(out, frames);
    }

    #[test]
    fn oversized_prefix_is_rejected_without_allocating() {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::from(&[0xFFu8, 0xFF, 0xFF, 0xFF, 0][..]);
        let before = buf.capacity();
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::TooLarge)));
        assert!(buf.capacity() <= before.max(64));
        // Just over the maximum is refused too.
        let mut buf = BytesMut::new();
        buf.put_u32((MAX_FRAME + 1) as u32);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::TooLarge)));
    }

    #[test]
    fn data_header_matches_the_encoder() {
        let data = Bytes::from(vec![5u8; 1000]);
        let mut direct = BytesMut::new();
        direct.extend_from_slice(&FrameCodec::data_header(42, data.len()).unwrap());
        direct.extend_from_slice(&data);
        assert_eq!(direct, encode_all(&[Frame::Data { transfer: 42, data }]));
        assert!(FrameCodec::data_header(1, MAX_DATA + 1).is_err());
    }

    #[test]
    fn encoder_refuses_oversized_frames() {
        let mut codec = FrameCodec::new();
        let data = Bytes::from(vec![0u8; MAX_DATA + 1]);
        let mut buf = BytesMut::new();
        assert!(codec
            .encode(Frame::Data { transfer: 1, data }, &mut buf)
            .is_err());
        let data = Bytes::from(vec![0u8; MAX_DATA]);
        assert!(codec
            .encode(Frame::Data { transfer: 1, data }, &mut buf)
            .is_ok());
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let mut codec = FrameCodec::new();
        // Empty frame.
        let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Truncated)));
        // Unknown tag.
        let mut buf = BytesMut::from(&[0u8, 0, 0, 1, 9][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::UnknownTag(9))
        ));
        // Data frame without its id.
        let mut buf = BytesMut::from(&[0u8, 0, 0, 2, 1, 0][..]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Truncated)));
        // A control frame that decodes to nothing valid.
        let f = Frame::Control(Bytes::from_static(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF]));
        assert!(f.decode_control::<ClientMsg>().is_err());
        // A claimed huge Vec inside a small frame must not allocate it.
        let f = Frame::Control(Bytes::from_static(&[0, 0xFC, 0xFF, 0xFF, 0xFF, 0x7F]));
        assert!(f.decode_control::<ClientMsg>().is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut codec = FrameCodec::new();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(f)) = codec.decode(&mut buf) {
                let _ = f.decode_control::<ClientMsg>();
                let _ = f.decode_control::<ServerMsg>();
            }
        }

        #[test]
        fn requests_round_trip(id in any::<u32>(), path in ".{0,64}", parents in any::<bool>(), size in any::<u64>(), mtime in any::<i64>()) {
            let msgs = vec![
                ClientMsg::Request { id, req: Request::Mkdir { path: path.clone(), parents } },
                ClientMsg::Request { id, req: Request::Rename { from: path.clone(), to: path.clone(), overwrite: parents } },
            ];
            for m in msgs {
                let f = Frame::control(&m).expect("encode");
                prop_assert_eq!(f.decode_control::<ClientMsg>().expect("decode"), m);
            }
            let reply = ServerMsg::Response { id, reply: Ok(Reply::Stat(Entry { name: path, kind: EntryKind::Dir, size, mtime, mode: 0o755 })) };
            let f = Frame::control(&reply).expect("encode");
            prop_assert_eq!(f.decode_control::<ServerMsg>().expect("decode"), reply);
        }

        #[test]
        fn data_frames_round_trip(transfer in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let f = Frame::Data { transfer, data: Bytes::from(data) };
            let back = decode_all(encode_all(std::slice::from_ref(&f)));
            prop_assert_eq!(back, vec![f]);
        }
    }
}
