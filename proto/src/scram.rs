//! SCRAM-SHA-256 (RFC 5802, RFC 7677) client and server state machines, sans-IO.
//!
//! Channel binding uses `tls-exporter` (RFC 9266). The gs2 header the client sent is echoed
//! back inside the proof-covered `c=` attribute, so a man in the middle cannot strip binding
//! without breaking the proof; a client that says `y` ("I support binding but think you do
//! not") to a server that does support it is a downgrade and is refused.
//!
//! Nonces and salts come from the caller: this module does no I/O and draws no randomness.
//! No SASLprep is applied: passwords are used as their raw UTF-8 bytes, so both sides must
//! agree on a normalisation (if any) before calling in here.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The smallest iteration count either side accepts (RFC 7677 recommends at least 4096).
pub const MIN_ITERATIONS: u32 = 4096;
/// Longest SCRAM message accepted from the peer, in bytes.
pub const MAX_MESSAGE_LEN: usize = 4096;

const CB_NAME: &str = "tls-exporter";

/// What the server stores per user: never the password.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verifier {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl Verifier {
    /// Derives the verifier from a password: SaltedPassword = PBKDF2-HMAC-SHA256, then
    /// StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key").
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Verifier {
        let keys = Keys::derive(password, salt, iterations);
        Verifier {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha256(&keys.client_key),
            server_key: keys.server_key,
        }
    }

    /// A verifier for a user that does not exist: deterministic from a server secret and the
    /// name, so that repeated attempts see the same salt (no user-enumeration tell). Pass the
    /// same `iterations` as real users get. No password matches it (StoredKey has no known preimage).
    pub fn mock(secret: &[u8], username: &str, iterations: u32) -> Verifier {
        let name = username.as_bytes();
        Verifier {
            salt: hmac(secret, &[b"salt", name])[..16].to_vec(),
            iterations,
            stored_key: hmac(secret, &[b"stored key", name]),
            server_key: hmac(secret, &[b"server key", name]),
        }
    }
}

/// How the client handles channel binding (gs2 header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientBinding {
    /// "n": client does not support binding
    Unsupported,
    /// "y": client supports it but thinks the server does not
    SupportedNotUsed,
    /// "p=tls-exporter": bind to this exporter data
    TlsExporter(Vec<u8>),
}

/// What the server knows about its channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerBinding {
    /// plaintext: server offers no binding
    None,
    /// TLS: server offers SCRAM-SHA-256-PLUS with this tls-exporter data
    TlsExporter(Vec<u8>),
}

/// Everything that can go wrong in a SCRAM exchange.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    /// A message is syntactically invalid, too long, or uses an unsupported feature.
    #[error("malformed SCRAM message: {0}")]
    Malformed(String),
    /// The nonce does not extend ours (client) or does not match this exchange (server).
    #[error("SCRAM nonce mismatch")]
    NonceMismatch,
    /// The server asked for more PBKDF2 iterations than the client is willing to spend.
    #[error("SCRAM iteration count {got} exceeds the limit {max}")]
    IterationsTooHigh { got: u32, max: u32 },
    /// The server asked for fewer PBKDF2 iterations than [`MIN_ITERATIONS`].
    #[error("SCRAM iteration count {got} is below the minimum {MIN_ITERATIONS}")]
    IterationsTooLow { got: u32 },
    /// Authentication failed: wrong user or password (deliberately indistinguishable).
    #[error("authentication failed")]
    InvalidProof,
    /// The server could not prove it knows the verifier: possible impostor.
    #[error("server signature mismatch: the server could not prove its identity")]
    ServerSignatureMismatch,
    /// The channel-binding data in `c=` does not match this side's channel.
    #[error("channel binding mismatch")]
    BindingMismatch,
    /// The client said 'y' (binding supported, thought unavailable) but the server offers it.
    #[error("channel binding downgrade detected")]
    Downgrade,
    /// The client asked for a channel-binding type the server cannot provide.
    #[error("channel binding {0:?} is not supported here")]
    BindingUnsupported(String),
    /// The server reported an error with an "e=" attribute.
    #[error("SCRAM server error: {0}")]
    ServerError(String),
}

impl ScramError {
    /// The RFC 5802 server-final error message ("e=...") a server may send for this error.
    pub fn server_final_error(&self) -> String {
        let value = match self {
            ScramError::Malformed(_) => "invalid-encoding",
            ScramError::InvalidProof => "invalid-proof",
            ScramError::BindingMismatch => "channel-bindings-dont-match",
            ScramError::Downgrade => "server-does-support-channel-binding",
            ScramError::BindingUnsupported(_) => "channel-binding-not-supported",
            _ => "other-error",
        };
        format!("e={value}")
    }
}

// ---------------------------------------------------------------------------------------------
// Client side

/// Client state after sending client-first.
pub struct ClientFirst {
    password: String,
    client_nonce: String,
    /// gs2 header followed by the channel-binding data: the decoded value of `c=`.
    cbind_input: Vec<u8>,
    client_first_bare: String,
}

impl std::fmt::Debug for ClientFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFirst").finish_non_exhaustive() // never print the password
    }
}

impl ClientFirst {
    /// Starts an exchange. `client_nonce` must be printable ASCII without ',' (caller supplies
    /// randomness, e.g. base64 of 18 random bytes); otherwise the server will reject the message.
    /// The username is escaped ('=' → "=3D", ',' → "=2C"); the password is used as raw UTF-8.
    pub fn new(
        username: &str,
        password: &str,
        client_nonce: &str,
        binding: ClientBinding,
    ) -> (ClientFirst, String) {
        let (gs2_header, cbind_data) = match binding {
            ClientBinding::Unsupported => ("n,,".to_string(), Vec::new()),
            ClientBinding::SupportedNotUsed => ("y,,".to_string(), Vec::new()),
            ClientBinding::TlsExporter(data) => (format!("p={CB_NAME},,"), data),
        };
        let client_first_bare = format!("n={},r={client_nonce}", escape_username(username));
        let message = format!("{gs2_header}{client_first_bare}");
        let mut cbind_input = gs2_header.into_bytes();
        cbind_input.extend_from_slice(&cbind_data);
        let state = ClientFirst {
            password: password.to_string(),
            client_nonce: client_nonce.to_string(),
            cbind_input,
            client_first_bare,
        };
        (state, message)
    }

    /// Checks the server-first message (nonce starts with ours, iterations in
    /// [`MIN_ITERATIONS`, `max_iterations`]), computes the proof and returns client-final.
    pub fn handle_server_first(
        self,
        server_first: &str,
        max_iterations: u32,
    ) -> Result<(ClientFinal, String), ScramError> {
        check_len(server_first)?;
        let mut parts = server_first.split(',');
        let first = parts.next().unwrap_or_default();
        reject_mandatory_extension(first)?;
        let nonce = attr(first, 'r')?;
        check_nonce(nonce)?;
        let salt = decode_b64(attr(parts.next().unwrap_or_default(), 's')?, "salt")?;
        let iterations = parse_iterations(attr(parts.next().unwrap_or_default(), 'i')?)?;
        check_extensions(parts)?;
        if salt.is_empty() {
            return Err(malformed("empty salt"));
        }
        if nonce.len() <= self.client_nonce.len() || !nonce.starts_with(&self.client_nonce) {
            return Err(ScramError::NonceMismatch);
        }
        if iterations < MIN_ITERATIONS {
            return Err(ScramError::IterationsTooLow { got: iterations });
        }
        if iterations > max_iterations {
            return Err(ScramError::IterationsTooHigh {
                got: iterations,
                max: max_iterations,
            });
        }

        let keys = Keys::derive(&self.password, &salt, iterations);
        let without_proof = format!("c={},r={nonce}", B64.encode(&self.cbind_input));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let stored_key = sha256(&keys.client_key);
        let signature = hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof = xor(&keys.client_key, &signature);
        let state = ClientFinal {
            server_signature: hmac(&keys.server_key, &[auth_message.as_bytes()]),
        };
        Ok((state, format!("{without_proof},p={}", B64.encode(proof))))
    }
}

/// Client state after sending client-final: waiting for the server's signature.
/// Clone holds no secret, and lets the fuzz harness try many server-finals
/// against one state without a PBKDF2 run each.
#[derive(Clone, Debug)]
pub struct ClientFinal {
    /// What the server must send back; not secret (the server reveals it).
    server_signature: [u8; 32],
}

impl ClientFinal {
    /// Mutual authentication: verifies `v=` in constant time; `e=` gives [`ScramError::ServerError`].
    pub fn handle_server_final(self, server_final: &str) -> Result<(), ScramError> {
        check_len(server_final)?;
        let mut parts = server_final.split(',');
        let first = parts.next().unwrap_or_default();
        if let Some(error) = first.strip_prefix("e=") {
            return Err(ScramError::ServerError(error.to_string()));
        }
        let signature = decode_b64(attr(first, 'v')?, "server signature")?;
        check_extensions(parts)?;
        if bool::from(signature.as_slice().ct_eq(&self.server_signature)) {
            Ok(())
        } else {
            Err(ScramError::ServerSignatureMismatch)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server side

/// The client's gs2 channel-binding flag.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Gs2Flag {
    N,
    Y,
    P(String),
}

/// A parsed client-first message, before the verifier has been looked up.
#[derive(Clone, Debug)]
pub struct ClientFirstParsed {
    username: String,
    client_nonce: String,
    flag: Gs2Flag,
    gs2_header: String,
    client_first_bare: String,
}

impl ClientFirstParsed {
    /// The (unescaped) username, for looking up the verifier.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether the client asked for channel binding ("p=...").
    pub fn requests_binding(&self) -> bool {
        matches!(self.flag, Gs2Flag::P(_))
    }
}

/// Server state after sending server-first.
pub struct ServerFirst {
    stored_key: [u8; 32],
    server_key: [u8; 32],
    nonce: String,
    /// The expected decoded value of `c=`: gs2 header followed by our channel-binding data.
    cbind_input: Vec<u8>,
    /// client-first-bare "," server-first.
    auth_prefix: String,
    binding_used: bool,
}

impl std::fmt::Debug for ServerFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerFirst")
            .field("binding_used", &self.binding_used)
            .finish_non_exhaustive()
    }
}

impl ServerFirst {
    /// Parses client-first and returns it so the caller can look up the user's verifier.
    /// Only an empty authzid is accepted; mandatory extensions ("m=") are refused.
    pub fn parse_client_first(client_first: &str) -> Result<ClientFirstParsed, ScramError> {
        check_len(client_first)?;
        let mut split = client_first.splitn(3, ',');
        let (flag, authzid) = (split.next().unwrap_or_default(), split.next());
        let bare = split
            .next()
            .ok_or_else(|| malformed("missing gs2 header"))?;
        let flag = match flag {
            "n" => Gs2Flag::N,
            "y" => Gs2Flag::Y,
            _ => match flag.strip_prefix("p=") {
                Some(name) if is_cb_name(name) => Gs2Flag::P(name.to_string()),
                _ => return Err(malformed("bad channel-binding flag")),
            },
        };
        if authzid != Some("") {
            return Err(malformed("authzid is not supported"));
        }
        let gs2_header = client_first[..client_first.len() - bare.len()].to_string();
        let mut parts = bare.split(',');
        let first = parts.next().unwrap_or_default();
        reject_mandatory_extension(first)?;
        let username = unescape_username(attr(first, 'n')?)?;
        let client_nonce = attr(parts.next().unwrap_or_default(), 'r')?;
        check_nonce(client_nonce)?;
        check_extensions(parts)?;
        Ok(ClientFirstParsed {
            username,
            client_nonce: client_nonce.to_string(),
            flag,
            gs2_header,
            client_first_bare: bare.to_string(),
        })
    }

    /// Produces server-first from the parsed client-first, the user's verifier (real or
    /// [`Verifier::mock`]), a server nonce suffix (printable ASCII without ',') and the
    /// server's channel. A client 'y' on a binding-capable server is a [`ScramError::Downgrade`];
    /// a client 'n' is allowed here, so check [`ServerFirst::client_binding_used`] if policy
    /// demands binding on TLS.
    pub fn new(
        parsed: ClientFirstParsed,
        verifier: Verifier,
        server_nonce: &str,
        binding: ServerBinding,
    ) -> Result<(ServerFirst, String), ScramError> {
        check_nonce(server_nonce)?;
        let mut cbind_input = parsed.gs2_header.into_bytes();
        let binding_used = match (&parsed.flag, binding) {
            (Gs2Flag::N, _) | (Gs2Flag::Y, ServerBinding::None) => false,
            (Gs2Flag::Y, ServerBinding::TlsExporter(_)) => return Err(ScramError::Downgrade),
            (Gs2Flag::P(name), _) if name != CB_NAME => {
                return Err(ScramError::BindingUnsupported(name.clone()))
            }
            (Gs2Flag::P(name), ServerBinding::None) => {
                return Err(ScramError::BindingUnsupported(name.clone()))
            }
            (Gs2Flag::P(_), ServerBinding::TlsExporter(data)) => {
                cbind_input.extend_from_slice(&data);
                true
            }
        };
        let nonce = format!("{}{server_nonce}", parsed.client_nonce);
        let message = format!(
            "r={nonce},s={},i={}",
            B64.encode(&verifier.salt),
            verifier.iterations
        );
        let state = ServerFirst {
            stored_key: verifier.stored_key,
            server_key: verifier.server_key,
            nonce,
            cbind_input,
            auth_prefix: format!("{},{message}", parsed.client_first_bare),
            binding_used,
        };
        Ok((state, message))
    }

    /// Whether this exchange is bound to the TLS channel (client sent "p=tls-exporter").
    pub fn client_binding_used(&self) -> bool {
        self.binding_used
    }

    /// Verifies the nonce, the channel binding (`c=` must equal base64(gs2-header + cbind-data))
    /// and the client proof (constant-time compare of H(ClientKey) with StoredKey).
    /// On success returns the server-final message "v=...".
    pub fn handle_client_final(self, client_final: &str) -> Result<String, ScramError> {
        check_len(client_final)?;
        let (without_proof, proof) = client_final
            .rsplit_once(',')
            .ok_or_else(|| malformed("missing proof"))?;
        let proof = decode_b64(attr(proof, 'p')?, "proof")?;
        let mut parts = without_proof.split(',');
        let cbind = decode_b64(
            attr(parts.next().unwrap_or_default(), 'c')?,
            "channel binding",
        )?;
        let nonce = attr(parts.next().unwrap_or_default(), 'r')?;
        check_extensions(parts)?;
        let proof: [u8; 32] = proof
            .try_into()
            .map_err(|_| malformed("proof must be 32 bytes"))?;
        if nonce != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        if !bool::from(cbind.as_slice().ct_eq(&self.cbind_input)) {
            return Err(ScramError::BindingMismatch);
        }
        let auth_message = format!("{},{without_proof}", self.auth_prefix);
        let signature = hmac(&self.stored_key, &[auth_message.as_bytes()]);
        let client_key = xor(&proof, &signature);
        if !bool::from(sha256(&client_key).ct_eq(&self.stored_key)) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = hmac(&self.server_key, &[auth_message.as_bytes()]);
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

// ---------------------------------------------------------------------------------------------
// Crypto and parsing helpers

/// ClientKey and ServerKey derived from a password.
struct Keys {
    client_key: [u8; 32],
    server_key: [u8; 32],
}

impl Keys {
    fn derive(password: &str, salt: &[u8], iterations: u32) -> Keys {
        let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), salt, iterations);
        Keys {
            client_key: hmac(&salted, &[b"Client Key"]),
            server_key: hmac(&salted, &[b"Server Key"]),
        }
    }
}

/// HMAC-SHA-256 over the concatenation of `parts`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC hashes over-long keys and pads short ones, so every key length is valid.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

fn malformed(what: &str) -> ScramError {
    ScramError::Malformed(what.to_string())
}

fn check_len(message: &str) -> Result<(), ScramError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(malformed("message too long"));
    }
    Ok(())
}

/// The value of attribute `name` ("name=value"), or Malformed.
fn attr(part: &str, name: char) -> Result<&str, ScramError> {
    part.strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
        .ok_or_else(|| ScramError::Malformed(format!("expected attribute '{name}='")))
}

fn reject_mandatory_extension(part: &str) -> Result<(), ScramError> {
    if part.starts_with("m=") {
        return Err(malformed("unsupported mandatory extension"));
    }
    Ok(())
}

/// Optional trailing extensions must look like `ALPHA "=" value`; their content is ignored.
fn check_extensions<'a>(parts: impl Iterator<Item = &'a str>) -> Result<(), ScramError> {
    for part in parts {
        let b = part.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
            return Err(malformed("bad extension attribute"));
        }
    }
    Ok(())
}

/// Nonces are non-empty printable ASCII without ','.
fn check_nonce(nonce: &str) -> Result<(), ScramError> {
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(malformed("nonce must be printable ASCII without ','"));
    }
    Ok(())
}

fn is_cb_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

fn decode_b64(value: &str, what: &str) -> Result<Vec<u8>, ScramError> {
    B64.decode(value)
        .map_err(|_| ScramError::Malformed(format!("bad base64 in {what}")))
}

fn parse_iterations(value: &str) -> Result<u32, ScramError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("iteration count must be decimal digits"));
    }
    // All digits, so the only possible failure is overflow: report it as too high.
    Ok(value.parse().unwrap_or(u32::MAX))
}

/// Escapes a username for `n=`: '=' becomes "=3D" and ',' becomes "=2C".
pub fn escape_username(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

/// Reverses [`escape_username`]; a '=' not followed by "2C" or "3D", an empty name, or a NUL is Malformed.
pub fn unescape_username(escaped: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("=2C") {
            out.push(',');
        } else if tail.starts_with("=3D") {
            out.push('=');
        } else {
            return Err(malformed("bad '=' escape in username"));
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    if out.is_empty() || out.contains('\0') {
        return Err(malformed("empty username or NUL in username"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ClientBinding as C;
    use ServerBinding as S;

    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SNONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";

    fn rfc_verifier() -> Verifier {
        Verifier::derive("pencil", &B64.decode(SALT).unwrap_or_default(), 4096)
    }

    fn client() -> ClientFirst {
        ClientFirst::new("user", "pencil", NONCE, C::Unsupported).0
    }

    fn server(
        client_first: &str,
        snonce: &str,
        binding: S,
    ) -> Result<(ServerFirst, String), ScramError> {
        let parsed = ServerFirst::parse_client_first(client_first)?;
        ServerFirst::new(parsed, rfc_verifier(), snonce, binding)
    }

    /// Runs a whole exchange as "user"; returns the first error from either side.
    fn exchange(
        password: &str,
        verifier: Verifier,
        client: C,
        server: S,
    ) -> Result<(), ScramError> {
        let (c1, first) = ClientFirst::new("user", password, NONCE, client);
        let parsed = ServerFirst::parse_client_first(&first)?;
        let (s1, server_first) = ServerFirst::new(parsed, verifier, SNONCE, server)?;
        let (c2, client_final) = c1.handle_server_first(&server_first, 10_000)?;
        c2.handle_server_final(&s1.handle_client_final(&client_final)?)
    }

    fn assert_malformed<T: std::fmt::Debug>(input: &str, got: Result<T, ScramError>) {
        assert!(
            matches!(got, Err(ScramError::Malformed(_))),
            "{input:?}: {got:?}"
        );
    }

    #[test]
    fn rfc7677_example() -> Result<(), ScramError> {
        let (c1, first) = ClientFirst::new("user", "pencil", NONCE, C::Unsupported);
        assert_eq!(first, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (s1, server_first) = server(&first, SNONCE, S::None)?;
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let (c2, client_final) = c1.handle_server_first(&server_first, 4096)?;
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        // RFC 7677 section 3 verbatim.
        let server_final = s1.handle_client_final(&client_final)?;
        assert_eq!(
            server_final,
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        c2.handle_server_final(&server_final)
    }

    #[test]
    fn wrong_password_and_unknown_user_look_the_same() {
        let bad_password = exchange("pencil!", rfc_verifier(), C::Unsupported, S::None);
        assert_eq!(bad_password, Err(ScramError::InvalidProof));
        let mock = Verifier::mock(b"server secret", "user", 4096);
        let unknown_user = exchange("pencil", mock.clone(), C::Unsupported, S::None);
        assert_eq!(unknown_user, Err(ScramError::InvalidProof));
        assert_eq!(mock, Verifier::mock(b"server secret", "user", 4096));
        assert_eq!(mock.salt.len(), 16);
        let other = Verifier::mock(b"server secret", "usr", 4096);
        assert_ne!(mock.salt, other.salt);
        assert_ne!(mock.stored_key, other.stored_key);
        assert_ne!(mock, Verifier::mock(b"other secret", "user", 4096));
    }

    #[test]
    fn client_checks_server_first() {
        let full = format!("{NONCE}{SNONCE}");
        let err = |nonce: &str, i: &str| {
            let msg = format!("r={nonce},s={SALT},i={i}");
            client().handle_server_first(&msg, 10_000).err()
        };
        let high = |got| Some(ScramError::IterationsTooHigh { got, max: 10_000 });
        assert_eq!(err(&full, "100000"), high(100_000));
        assert_eq!(err(&full, "99999999999999"), high(u32::MAX));
        assert_eq!(
            err(&full, "4095"),
            Some(ScramError::IterationsTooLow { got: 4095 })
        );
        let foreign = "XOprNGfwEbeRWgbNEkqO123";
        assert_eq!(err(foreign, "4096"), Some(ScramError::NonceMismatch));
        assert_eq!(err(NONCE, "4096"), Some(ScramError::NonceMismatch));
        assert!(matches!(
            err(&full, "+4096"),
            Some(ScramError::Malformed(_))
        ));
    }

    #[test]
    fn client_detects_forged_server_signature() -> Result<(), ScramError> {
        let (s1, server_first) = server("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", SNONCE, S::None)?;
        let (c2, client_final) = client().handle_server_first(&server_first, 4096)?;
        let genuine = s1.handle_client_final(&client_final)?;
        let (c2b, _) = client().handle_server_first(&server_first, 4096)?;
        let forged = c2b.handle_server_final(&format!("v={}", B64.encode([0u8; 32])));
        assert_eq!(forged, Err(ScramError::ServerSignatureMismatch));
        let (c2c, _) = client().handle_server_first(&server_first, 4096)?;
        let refused = c2c.handle_server_final("e=invalid-proof");
        assert_eq!(
            refused,
            Err(ScramError::ServerError("invalid-proof".into()))
        );
        c2.handle_server_final(&genuine)
    }

    #[test]
    fn replayed_client_final_fails() -> Result<(), ScramError> {
        let first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let (_, server_first1) = server(first, SNONCE, S::None)?;
        let (_, client_final1) = client().handle_server_first(&server_first1, 4096)?;
        let (s2, _) = server(first, "a-different-server-nonce", S::None)?;
        assert_eq!(
            s2.handle_client_final(&client_final1),
            Err(ScramError::NonceMismatch)
        );
        Ok(())
    }

    #[test]
    fn channel_binding() -> Result<(), ScramError> {
        let x = || b"exporter-x".to_vec();
        let run = |c, s| exchange("pencil", rfc_verifier(), c, s);
        run(C::TlsExporter(x()), S::TlsExporter(x()))?;
        let other = run(C::TlsExporter(x()), S::TlsExporter(b"y".to_vec()));
        assert_eq!(other, Err(ScramError::BindingMismatch));
        assert_eq!(
            run(C::SupportedNotUsed, S::TlsExporter(x())),
            Err(ScramError::Downgrade)
        );
        run(C::SupportedNotUsed, S::None)?;
        let plaintext = run(C::TlsExporter(x()), S::None);
        assert_eq!(
            plaintext,
            Err(ScramError::BindingUnsupported(CB_NAME.into()))
        );
        // 'n' on TLS is allowed by the state machine but visible to the caller.
        let (s1, _) = server("n,,n=user,r=abc", "def", S::TlsExporter(x()))?;
        assert!(!s1.client_binding_used());
        let (s1, _) = server("p=tls-exporter,,n=user,r=abc", "def", S::TlsExporter(x()))?;
        assert!(s1.client_binding_used());
        // A client-final whose gs2 header differs from client-first's ('y' stripped to 'n').
        let (c1, first) = ClientFirst::new("user", "pencil", NONCE, C::SupportedNotUsed);
        let (s1, server_first) = server(&first, SNONCE, S::None)?;
        let (_, client_final) = c1.handle_server_first(&server_first, 4096)?;
        let stripped = client_final.replacen("c=eSws", "c=biws", 1);
        assert_eq!(
            s1.handle_client_final(&stripped),
            Err(ScramError::BindingMismatch)
        );
        Ok(())
    }

    #[test]
    fn usernames_round_trip_through_escaping() -> Result<(), ScramError> {
        for name in ["a,b", "=", "x=2C,=3D", ",,==", "ünï"] {
            let (_, first) = ClientFirst::new(name, "pw", NONCE, C::Unsupported);
            assert_eq!(ServerFirst::parse_client_first(&first)?.username(), name);
        }
        assert_eq!(escape_username("a,b=c"), "a=2Cb=3Dc");
        Ok(())
    }

    /// One message per line; the leading newline makes the empty message the first case.
    const BAD_CLIENT_FIRST: &str = "
garbage
n,,
n,,n=user
n,,r=abc
x,,n=user,r=abc
n,a=admin,n=user,r=abc
n,,m=ext,n=user,r=abc
n,,n=us=er,r=abc
n,,n=user=2,r=abc
n,,n=,r=abc
n,,n=user,r=
n,,n=user,r=a b
n,,n=user,r=abc,1=x
p=,,n=user,r=abc";
    /// FULL stands for the combined nonce.
    const BAD_SERVER_FIRST: &str = "
r=x
r=FULL,s=!!!,i=4096
r=FULL,s=,i=4096
r=FULL,s=W22ZaJ0SNY7soEsUEjb6gQ==
r=FULL,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1
r=FULL,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=
m=x,r=FULL,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096
s=W22ZaJ0SNY7soEsUEjb6gQ==,r=FULL,i=4096";
    const BAD_CLIENT_FINAL: &str = "
c=biws
c=biws,r=abcdef
c=biws,r=abcdef,p=***
c=biws,r=abcdef,p=AAAA
c=b!ws,r=abcdef,p=AAAA
r=abcdef,c=biws,p=AAAA
c=biws,r=abcdef,,p=AAAA";

    #[test]
    fn malformed_messages_are_rejected() -> Result<(), ScramError> {
        let huge = format!("n,,n=user,r={}", "a".repeat(5000));
        for bad in BAD_CLIENT_FIRST.lines().chain([huge.as_str()]) {
            assert_malformed(bad, ServerFirst::parse_client_first(bad));
        }
        let full = format!("{NONCE}{SNONCE}");
        for bad in BAD_SERVER_FIRST.lines().map(|l| l.replace("FULL", &full)) {
            assert_malformed(&bad, client().handle_server_first(&bad, 10_000));
        }
        assert_malformed(
            "huge",
            client().handle_server_first(&"r=".repeat(3000), 10_000),
        );
        for bad in BAD_CLIENT_FINAL.lines().chain([huge.as_str()]) {
            let (s1, _) = server("n,,n=user,r=abc", "def", S::None)?;
            assert_malformed(bad, s1.handle_client_final(bad));
        }
        let ok_first = format!("r={full},s={SALT},i=4096");
        let (c2, _) = client().handle_server_first(&ok_first, 4096)?;
        assert_malformed("v=!!", c2.handle_server_final("v=!!"));
        Ok(())
    }

    proptest! {
        #[test]
        fn random_input_never_panics(s in "\\PC{0,80}|[nyp=,a-z0-9rsicv]{0,80}") {
            let _ = ServerFirst::parse_client_first(&s);
            let _ = client().handle_server_first(&s, 4096);
            let _ = unescape_username(&s);
            let parsed = ServerFirst::parse_client_first("n,,n=user,r=abc");
            let mock = Verifier::mock(b"k", "user", 4096);
            if let Ok((s1, _)) = parsed.and_then(|p| ServerFirst::new(p, mock, "def", S::None)) {
                let _ = s1.handle_client_final(&s);
            }
        }
    }
}
