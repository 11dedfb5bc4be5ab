//! Fuzz harnesses: one function per decoder of untrusted bytes, shared by
//! the coverage-guided targets in `fuzz/` and by the test that replays the
//! saved corpus (`fuzz/corpus/<target>/`) on the stable compiler.
//!
//! Each function must never panic on any input; the `assert!`s in here are
//! the invariants a decoded value must satisfy (a message that decodes
//! encodes back to itself, a path that parses is normalised...), so a
//! broken invariant is reported by the fuzzer as a crash.

use std::path::Component;
use std::sync::OnceLock;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::hello::{Hello, HELLO_LEN};
use crate::msg::{ClientMsg, Request, ServerMsg, PARTIALS_DIR};
use crate::path::{RemotePath, MAX_NAME, MAX_PATH};
use crate::scram::{
    escape_username, unescape_username, ClientBinding, ClientFinal, ClientFirst, ServerBinding,
    ServerFirst, Verifier, MAX_MESSAGE_LEN, MIN_ITERATIONS,
};
use crate::{access, wire, Frame, FrameCodec};

mod seeds;
pub use seeds::seeds;

/// A harness: takes any bytes, panics only on a broken invariant.
pub type Harness = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/` and the
/// `fuzz/fuzz_targets/` file) and its harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("frame", frame),
    ("client_msg", client_msg),
    ("server_msg", server_msg),
    ("hello", hello),
    ("path", path),
    ("scram_client_first", scram_client_first),
    ("scram_server_first", scram_server_first),
    ("scram_client_final", scram_client_final),
    ("scram_server_final", scram_server_final),
];

/// A byte stream through the frame codec, whole and in small pieces: both
/// give the same frames and the same error, every frame's control message
/// goes through [`client_msg`] and [`server_msg`], and the frames encode
/// back to exactly the bytes they were decoded from.
pub fn frame(data: &[u8]) {
    let whole = decode_frames(data, data.len().max(1));
    let step = data.first().map_or(1, |b| usize::from(b % 16) + 1);
    assert_eq!(
        whole,
        decode_frames(data, step),
        "split input, other frames"
    );
    let (frames, _, consumed) = whole;
    let mut codec = FrameCodec::new();
    let mut again = BytesMut::new();
    for f in frames {
        if let Frame::Control(body) = &f {
            client_msg(body);
            server_msg(body);
        }
        if let Err(e) = codec.encode(f, &mut again) {
            panic!("a decoded frame does not encode: {e}");
        }
    }
    assert_eq!(
        &again[..],
        &data[..consumed],
        "frames re-encode differently"
    );
}

/// Feeds `data` to one codec `step` bytes at a time: the frames, the first
/// error (as text) and how many bytes the frames took.
fn decode_frames(data: &[u8], step: usize) -> (Vec<Frame>, Option<String>, usize) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let (mut fed, mut consumed) = (0, 0);
    for piece in data.chunks(step) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => {
                    frames.push(f);
                    consumed = fed - buf.len();
                }
                Ok(None) => break,
                Err(e) => return (frames, Some(e.to_string()), consumed),
            }
        }
    }
    (frames, None, consumed)
}

/// A client-to-server control message body, as the server decodes it.
pub fn client_msg(data: &[u8]) {
    let Ok(msg) = wire::decode::<ClientMsg>(data) else {
        return;
    };
    round_trip(&msg, data);
    match &msg {
        ClientMsg::AccessProof { answer } => {
            let nonce = [7u8; access::NONCE_LEN];
            let right = access::respond(b"key", &nonce);
            assert_eq!(access::verify(b"key", &nonce, answer), answer[..] == right);
        }
        ClientMsg::AuthStart { client_first, .. } => scram_client_first(client_first.as_bytes()),
        ClientMsg::AuthFinish { client_final } => scram_client_final(client_final.as_bytes()),
        ClientMsg::Request { req, .. } => request_paths(req),
        ClientMsg::PutStart { .. } | ClientMsg::TransferEnd { .. } | ClientMsg::Cancel { .. } => {}
    }
}

/// The paths in a request go through [`RemotePath::parse`], as the server
/// parses them.
fn request_paths(req: &Request) {
    let paths: &[&String] = match req {
        Request::List { path }
        | Request::Stat { path }
        | Request::Mkdir { path, .. }
        | Request::Remove { path, .. }
        | Request::Checksum { path, .. }
        | Request::PutOpen { path, .. }
        | Request::GetOpen { path, .. }
        | Request::Chmod { path, .. }
        | Request::Read { path, .. }
        | Request::Find { path, .. }
        | Request::SetMtime { path, .. } => &[path],
        Request::Rename { from, to, .. } | Request::Copy { from, to, .. } => &[from, to],
        Request::Quota => &[],
    };
    for p in paths {
        match RemotePath::parse(p) {
            Ok(parsed) => check_path(&parsed),
            Err(e) => drop(e.to_remote(p).to_string()),
        }
    }
}

/// A server-to-client control message body, as the client decodes it.
pub fn server_msg(data: &[u8]) {
    let Ok(msg) = wire::decode::<ServerMsg>(data) else {
        return;
    };
    round_trip(&msg, data);
    // The client shows errors to people and asks whether a reply is final.
    match &msg {
        ServerMsg::Refused { error }
        | ServerMsg::Response {
            reply: Err(error), ..
        } => {
            assert!(error.to_string().contains(error.kind.phrase()));
        }
        ServerMsg::Response { reply: Ok(r), .. } => drop(r.is_final()),
        ServerMsg::AuthChallenge { server_first } => scram_server_first(server_first.as_bytes()),
        ServerMsg::AuthOk { server_final, .. } => scram_server_final(server_final.as_bytes()),
        ServerMsg::Welcome { .. } => {}
    }
}

/// A decoded message encodes to at most as many bytes (the encoder writes
/// the shortest form) and decodes back to itself.
fn round_trip<T>(msg: &T, data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let again = match wire::encode(msg) {
        Ok(bytes) => bytes,
        Err(e) => panic!("a decoded message does not encode: {e}"),
    };
    assert!(again.len() <= data.len(), "re-encoding is longer");
    match wire::decode::<T>(&again) {
        Ok(back) => assert_eq!(&back, msg, "decode(encode(m)) != m"),
        Err(e) => panic!("a re-encoded message does not decode: {e}"),
    }
}

/// The peer's hello: a hello that decodes encodes to the same 8 bytes.
pub fn hello(data: &[u8]) {
    let Some(bytes) = data.get(..HELLO_LEN) else {
        return;
    };
    let Ok(bytes) = <[u8; HELLO_LEN]>::try_from(bytes) else {
        return;
    };
    match Hello::decode(&bytes) {
        Ok(h) => assert_eq!(h.encode(), bytes),
        Err(e) => drop(e.to_string()),
    }
    for peer in ["server", "client"] {
        match Hello::check(&bytes, peer) {
            Ok(h) => assert_eq!(h, Hello::ours()),
            Err(e) => drop(e.to_string()),
        }
    }
}

/// Remote paths: UTF-8 input of the form `cwd\nrelative` (no newline: the
/// home as cwd). A path that parses is normalised, stays under the home
/// and parses back to itself from its display form.
pub fn path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (cwd, rel) = text.split_once('\n').unwrap_or(("", text));
    let Ok(cwd) = RemotePath::parse(cwd) else {
        return;
    };
    check_path(&cwd);
    let Ok(joined) = cwd.join(rel) else {
        return;
    };
    check_path(&joined);
    if rel.starts_with('/') {
        assert_eq!(RemotePath::parse(rel).as_ref(), Ok(&joined));
    } else if !rel.split('/').any(|p| p == "..") {
        assert!(joined.parts().starts_with(cwd.parts()), "join lost the cwd");
    }
    if let Some(name) = joined.file_name() {
        assert_eq!(joined.parent().child(name).as_ref(), Ok(&joined));
    }
}

/// What every parsed path satisfies.
fn check_path(p: &RemotePath) {
    for part in p.parts() {
        assert!(!part.is_empty() && part != "." && part != "..", "{part:?}");
        assert!(!part.contains('/') && !part.contains('\0'), "{part:?}");
        assert!(part.len() <= MAX_NAME);
        assert_ne!(part, PARTIALS_DIR, "the partials' directory is reachable");
    }
    let shown = p.to_string();
    assert!(shown.len() <= MAX_PATH);
    assert_eq!(RemotePath::parse(&shown).as_ref(), Ok(p), "not normalised");
    let relative = p.to_relative();
    let plain = |c: Component| matches!(c, Component::Normal(_));
    assert!(
        p.is_root() || relative.components().all(plain),
        "{relative:?}"
    );
}

const NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
const SERVER_NONCE: &str = "3rfcNHYJY1ZVvWVs7j";
const EXPORTER: &[u8] = b"tls-exporter bytes";

/// One client-first per binding the server side is fuzzed against.
fn client_firsts() -> [(&'static str, ClientBinding, ServerBinding); 2] {
    [
        (
            "n,,n=user,r=",
            ClientBinding::Unsupported,
            ServerBinding::None,
        ),
        (
            "p=tls-exporter,,n=user,r=",
            ClientBinding::TlsExporter(EXPORTER.to_vec()),
            ServerBinding::TlsExporter(EXPORTER.to_vec()),
        ),
    ]
}

/// A real exchange as user "user" with password "pencil", run once: the
/// verifier, each binding's genuine client-final and server-final, and the
/// client's state waiting for a server-final.
pub(super) struct Exchange {
    pub(super) verifier: Verifier,
    pub(super) genuine: Vec<(String, String)>,
    client_final: ClientFinal,
}

pub(super) fn exchange() -> &'static Exchange {
    static ONCE: OnceLock<Exchange> = OnceLock::new();
    ONCE.get_or_init(|| {
        let verifier = Verifier::derive("pencil", b"salt of the earth", MIN_ITERATIONS);
        let mut genuine = Vec::new();
        let mut waiting = None;
        for (_, client, server) in client_firsts() {
            let (c1, first) = ClientFirst::new("user", "pencil", NONCE, client);
            let finals = ServerFirst::parse_client_first(&first)
                .and_then(|p| ServerFirst::new(p, verifier.clone(), SERVER_NONCE, server))
                .and_then(|(s1, server_first)| {
                    let (c2, client_final) = c1.handle_server_first(&server_first, 4096)?;
                    let server_final = s1.handle_client_final(&client_final)?;
                    waiting.get_or_insert(c2);
                    Ok((client_final, server_final))
                });
            match finals {
                Ok(pair) => genuine.push(pair),
                Err(e) => panic!("the reference exchange fails: {e}"),
            }
        }
        match waiting {
            Some(client_final) => Exchange {
                verifier,
                genuine,
                client_final,
            },
            None => unreachable!("two exchanges ran"),
        }
    })
}

/// The server parsing a client-first (UTF-8, as `AuthStart` carries it),
/// then answering it on either kind of channel.
pub fn scram_client_first(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = ServerFirst::parse_client_first(text) else {
        return;
    };
    let name = parsed.username();
    assert!(!name.is_empty() && !name.contains('\0'));
    assert_eq!(
        unescape_username(&escape_username(name)).as_deref(),
        Ok(name)
    );
    let (_, again) = ClientFirst::new(name, "pw", NONCE, ClientBinding::Unsupported);
    match ServerFirst::parse_client_first(&again) {
        Ok(p) => assert_eq!(p.username(), name),
        // Our nonce may be longer than the peer's, and push it over the limit.
        Err(e) => assert!(
            again.len() > MAX_MESSAGE_LEN,
            "a parsed username does not survive escaping: {e}"
        ),
    }
    let mock = Verifier::mock(b"secret", name, MIN_ITERATIONS);
    for binding in [ServerBinding::None, ServerBinding::TlsExporter(vec![1; 32])] {
        if let Ok((state, server_first)) =
            ServerFirst::new(parsed.clone(), mock.clone(), SERVER_NONCE, binding)
        {
            assert!(server_first.starts_with("r="));
            assert_eq!(state.client_binding_used(), parsed.requests_binding());
        }
    }
}

/// The client parsing a server-first. The client allows one iteration
/// fewer than the minimum, so every message is refused before PBKDF2
/// (which would make each run take a millisecond); the checks that come
/// before the key derivation are the whole parser.
pub fn scram_server_first(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (c1, _) = ClientFirst::new("user", "pencil", NONCE, ClientBinding::Unsupported);
    let refused = c1.handle_server_first(text, MIN_ITERATIONS - 1);
    assert!(
        refused.is_err(),
        "accepted fewer iterations than the minimum"
    );
}

/// The server parsing a client-final on a plain and on a bound channel.
/// Only the genuine proof logs in, and it gets the genuine server-final.
pub fn scram_client_final(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ex = exchange();
    for ((first, _, binding), (client_final, server_final)) in
        client_firsts().into_iter().zip(&ex.genuine)
    {
        let first = format!("{first}{NONCE}");
        let state = ServerFirst::parse_client_first(&first)
            .and_then(|p| ServerFirst::new(p, ex.verifier.clone(), SERVER_NONCE, binding));
        let Ok((state, _)) = state else {
            panic!("the reference client-first is refused");
        };
        if let Ok(v) = state.handle_client_final(text) {
            assert_eq!(&v, server_final);
            let proof = |m: &str| m.rsplit_once(',').map(|(_, p)| p.to_string());
            assert_eq!(proof(text), proof(client_final), "a forged proof passed");
        }
    }
}

/// The client parsing a server-final: only the genuine signature passes.
pub fn scram_server_final(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ex = exchange();
    if ex.client_final.clone().handle_server_final(text).is_ok() {
        let genuine = &ex.genuine[0].1;
        assert_eq!(text.split(',').next(), Some(genuine.as_str()), "forged");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fuzz_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
    }

    fn corpus_dir(target: &str) -> PathBuf {
        fuzz_dir().join("corpus").join(target)
    }

    /// CI's share of the fuzzing: every saved corpus input (and every seed)
    /// through its harness, on the stable compiler; and every harness has
    /// its libFuzzer target.
    #[test]
    fn saved_corpus_replays_without_a_crash() {
        for (name, harness) in TARGETS {
            let dir = corpus_dir(name);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let mut count = 0;
            for entry in entries {
                let path = entry.expect("corpus entry").path();
                let data = std::fs::read(&path).expect("corpus file");
                if std::panic::catch_unwind(|| harness(&data)).is_err() {
                    panic!("{} fails (fuzz/README.md: replay it)", path.display());
                }
                count += 1;
            }
            assert!(count > 0, "{name}: empty corpus");
            let target = fuzz_dir().join(format!("fuzz_targets/{name}.rs"));
            let source = std::fs::read_to_string(&target)
                .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
            assert!(source.contains(&format!("fuzz::{name}(")), "{name}");
            for seed in seeds(name) {
                harness(&seed);
            }
        }
    }

    /// Writes the seeds into `fuzz/corpus/` (run once with
    /// `cargo test -p ferry-proto fuzz::tests::write_seeds -- --ignored`).
    #[test]
    #[ignore]
    fn write_seeds() {
        for (name, _) in TARGETS {
            let dir = corpus_dir(name);
            std::fs::create_dir_all(&dir).expect("corpus dir");
            for (i, seed) in seeds(name).iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), seed).expect("write seed");
            }
        }
    }
}
