//! Valid inputs to start each fuzz target from: encoded sample messages,
//! a genuine SCRAM exchange, a few paths.

use bytes::BytesMut;
use tokio_util::codec::Encoder;

use super::exchange;
use crate::hello::Hello;
use crate::msg::{ClientMsg, Request, ServerMsg};
use crate::{wire, Frame, FrameCodec};

/// Valid inputs for each target, to start a fuzzer from (and replayed by
/// the tests even when the corpus is empty).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let text = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect();
    match target {
        "frame" => {
            let mut codec = FrameCodec::new();
            let mut buf = BytesMut::new();
            for m in sample_client_msgs() {
                if let Ok(f) = Frame::control(&m) {
                    let _ = codec.encode(f, &mut buf);
                }
            }
            let data = Frame::Data {
                transfer: 3,
                data: bytes::Bytes::from_static(b"file bytes"),
            };
            let _ = codec.encode(data, &mut buf);
            vec![buf.to_vec()]
        }
        "client_msg" => sample_client_msgs()
            .iter()
            .filter_map(|m| wire::encode(m).ok())
            .collect(),
        "server_msg" => sample_server_msgs()
            .iter()
            .filter_map(|m| wire::encode(m).ok())
            .collect(),
        "hello" => vec![Hello::ours().encode().to_vec(), b"GET / HTTP/1.1".to_vec()],
        "path" => text(&[
            "/docs/2024\n../x/./y",
            "a//b/../c",
            "/..",
            "\n/abs",
            "a\n../.ferry-partials/x",
            "/.ferry-partials2/.ferry-partial",
        ]),
        "scram_client_first" => text(&[
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "p=tls-exporter,,n=a=2Cb=3D,r=abc,x=ext",
            "y,,n=user,r=abc",
        ]),
        "scram_server_first" => text(&[
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=4095,e=x",
        ]),
        "scram_client_final" => {
            let ex = exchange();
            let mut out: Vec<Vec<u8>> = ex.genuine.iter().map(|(c, _)| c.clone().into()).collect();
            out.push(b"c=biws,r=x,p=AAAA".to_vec());
            out
        }
        "scram_server_final" => {
            let mut out: Vec<Vec<u8>> = vec![exchange().genuine[0].1.clone().into()];
            out.push(b"e=invalid-proof".to_vec());
            out
        }
        _ => Vec::new(),
    }
}

fn sample_client_msgs() -> Vec<ClientMsg> {
    use crate::msg::RemoveMode;
    let req = |id, req| ClientMsg::Request { id, req };
    vec![
        ClientMsg::AccessProof {
            answer: vec![1; 32],
        },
        ClientMsg::AuthStart {
            mechanism: crate::msg::SCRAM_SHA_256.into(),
            client_first: "n,,n=user,r=abc".into(),
        },
        ClientMsg::AuthFinish {
            client_final: "c=biws,r=abc,p=xyz".into(),
        },
        req(
            1,
            Request::List {
                path: "/a/../b".into(),
            },
        ),
        req(
            2,
            Request::Remove {
                path: "x".into(),
                mode: RemoveMode::Recursive,
            },
        ),
        req(
            3,
            Request::Rename {
                from: "x".into(),
                to: "y/z".into(),
                overwrite: true,
            },
        ),
        req(
            4,
            Request::PutOpen {
                transfer: 1,
                path: "big".into(),
                size: 5 << 32,
                mtime: -1,
                mode: 0o644,
                overwrite: false,
                resume: true,
                eager: false,
            },
        ),
        req(
            5,
            Request::GetOpen {
                transfer: 2,
                path: "big".into(),
                offset: 9,
                prefix_sha256: Some([3; 32]),
                rehash: true,
            },
        ),
        ClientMsg::PutStart {
            transfer: 1,
            offset: 1 << 33,
        },
        ClientMsg::TransferEnd {
            transfer: 1,
            sha256: [7; 32],
        },
        ClientMsg::Cancel { transfer: 2 },
    ]
}

fn sample_server_msgs() -> Vec<ServerMsg> {
    use crate::msg::{Entry, EntryKind, Reply};
    use crate::{ErrorKind, RemoteError};
    let entry = Entry {
        name: "naïve.txt".into(),
        kind: EntryKind::File,
        size: 10,
        mtime: 5,
        mode: 0o644,
    };
    let response = |id, reply| ServerMsg::Response { id, reply };
    vec![
        ServerMsg::Welcome {
            server: "ferryd".into(),
            mechanisms: vec![crate::msg::SCRAM_SHA_256.into()],
            access_challenge: Some(vec![9; 32]),
        },
        ServerMsg::AuthChallenge {
            server_first: "r=abc,s=QSXCR+Q6sek8bf92,i=4096".into(),
        },
        ServerMsg::AuthOk {
            server_final: "v=abc".into(),
            max_requests: 64,
            max_small_uploads: 256,
        },
        ServerMsg::Refused {
            error: RemoteError::bare(ErrorKind::Banned),
        },
        response(
            1,
            Ok(Reply::Entries {
                entries: vec![entry.clone(); 2],
                more: true,
            }),
        ),
        response(2, Ok(Reply::Stat(entry))),
        response(3, Err(RemoteError::new(ErrorKind::OutsideHome, "../etc"))),
        response(
            4,
            Ok(Reply::Quota {
                used: 1,
                limit: Some(2),
                entries: 3,
                max_entries: None,
            }),
        ),
        response(
            5,
            Ok(Reply::PutReady {
                partial: 10,
                prefix_sha256: Some([1; 32]),
            }),
        ),
        response(
            6,
            Ok(Reply::GetReady {
                size: 10,
                offset: 0,
                mtime: 5,
                mode: 0o600,
            }),
        ),
        response(
            7,
            Ok(Reply::GetDone {
                sha256: [4; 32],
                stored: true,
            }),
        ),
    ]
}
