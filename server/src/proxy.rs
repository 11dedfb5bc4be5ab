//! The PROXY protocol v2 header a trusted load balancer puts before a
//! connection's bytes: which peers are trusted, and the client address read.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ppp::v2::{Addresses, Command, Header, Protocol};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use crate::places::{Admission, Places};

/// The 12 bytes every v2 header starts with.
pub const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part: signature, version and command, family and protocol,
/// length of the rest.
const FIXED: usize = 16;
/// Largest header read: the fixed part, the longest address block (two
/// UNIX paths, 216 bytes) and room for TLVs. HAProxy's own reader caps
/// it the same way.
pub const MAX_HEADER: usize = 536;

/// A network of trusted peers: an address and how many leading bits of it
/// count (`10.0.0.0/8`, `fd00::/8`; a bare address is the one host).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = |why: &str| {
            format!("bad trusted proxy {s:?}: {why} (give an address or a network such as 10.0.0.0/8 or fd00::/8)")
        };
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let net: IpAddr = addr.trim().parse().map_err(|_| bad("not an IP address"))?;
        let net = net.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| bad(&format!("the prefix length must be 0 to {max}")))?,
        };
        Ok(Cidr { net, bits })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(s: String) -> Result<Cidr, String> {
        s.parse()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

/// Whether `ip` is one of the `trusted` peers.
pub fn trusted(trusted: &[Cidr], ip: IpAddr) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

/// What a header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// A proxied TCP connection from this client.
    Client(SocketAddr),
    /// The balancer's own connection (a health check): use the socket's
    /// address.
    Local,
}

/// Why a header was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    /// Closed before the first byte (a plain TCP health check).
    #[error("closed before any byte")]
    Empty,
    /// Closed inside the header.
    #[error("closed inside the PROXY header")]
    Truncated,
    /// The text form (v1).
    #[error("a PROXY v1 (text) header: only v2 is accepted (HAProxy: send-proxy-v2)")]
    V1,
    /// Not a PROXY header at all (e.g. a client's TLS hello sent to ferryd
    /// directly from a trusted address).
    #[error("no PROXY v2 header: a trusted proxy must send one first (HAProxy: send-proxy-v2)")]
    Missing,
    /// Longer than [`MAX_HEADER`].
    #[error("PROXY header of {0} bytes, over the {MAX_HEADER} accepted")]
    Oversized(usize),
    /// Well framed but unusable.
    #[error("bad PROXY v2 header: {0}")]
    Malformed(String),
}

/// How long the whole header is, from its fixed part (sans-IO).
pub fn header_len(fixed: &[u8; FIXED]) -> Result<usize, HeaderError> {
    if fixed.starts_with(b"PROXY ") {
        return Err(HeaderError::V1);
    }
    if !fixed.starts_with(SIGNATURE) {
        return Err(HeaderError::Missing);
    }
    let len = FIXED + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if len > MAX_HEADER {
        return Err(HeaderError::Oversized(len));
    }
    Ok(len)
}

/// What a whole header says (sans-IO); TLVs are ignored.
pub fn decode(header: &[u8]) -> Result<Carried, HeaderError> {
    let h = Header::try_from(header).map_err(|e| HeaderError::Malformed(e.to_string()))?;
    if h.len() != header.len() {
        return Err(HeaderError::Malformed("length mismatch".into()));
    }
    match h.command {
        Command::Local => Ok(Carried::Local),
        Command::Proxy => match (h.protocol, h.addresses) {
            (Protocol::Stream, Addresses::IPv4(a)) => Ok(Carried::Client(SocketAddr::from((
                a.source_address,
                a.source_port,
            )))),
            (Protocol::Stream, Addresses::IPv6(a)) => Ok(Carried::Client(SocketAddr::from((
                a.source_address,
                a.source_port,
            )))),
            (p, a) => Err(HeaderError::Malformed(format!(
                "PROXY command for {:?} over {p:?}: only TCP over IPv4 or IPv6 is served",
                a.address_family()
            ))),
        },
    }
}

/// Reads one header from the start of `stream`, never a byte past it (what
/// follows is the client's). The caller bounds the time.
pub async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Carried, HeaderError> {
    let mut buf = [0u8; MAX_HEADER];
    let mut n = 0;
    // The fixed part, decided as soon as it cannot be a v2 header (a v1
    // header may be shorter than 16 bytes).
    while n < FIXED {
        match stream.read(&mut buf[n..FIXED]).await {
            Ok(0) if n == 0 => return Err(HeaderError::Empty),
            Ok(0) | Err(_) => return Err(HeaderError::Truncated),
            Ok(k) => n += k,
        }
        let seen = &buf[..n];
        let v1 = b"PROXY ";
        let k = n.min(v1.len());
        if seen[..k] == v1[..k] {
            if n >= v1.len() {
                return Err(HeaderError::V1);
            }
            continue;
        }
        let sig = n.min(SIGNATURE.len());
        if seen[..sig] != SIGNATURE[..sig] {
            return Err(HeaderError::Missing);
        }
    }
    let mut fixed = [0u8; FIXED];
    fixed.copy_from_slice(&buf[..FIXED]);
    let len = header_len(&fixed)?;
    stream
        .read_exact(&mut buf[FIXED..len])
        .await
        .map_err(|_| HeaderError::Truncated)?;
    decode(&buf[..len])
}

/// Reads the PROXY header a trusted balancer's connection starts with,
/// under the login deadline, and moves its stranger's place to the client
/// it names; returns that client's address (the balancer's own for a
/// LOCAL header), or None when the connection is to be closed (logged).
pub async fn admit<S: AsyncRead + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
    places: &Places,
    admission: &mut Admission,
    cancel: &CancellationToken,
) -> Option<SocketAddr> {
    let header = tokio::time::timeout_at(admission.deadline(), read(stream));
    let carried = tokio::select! {
        _ = cancel.cancelled() => return None,
        r = header => r,
    };
    let client = match carried {
        Ok(Ok(Carried::Client(client))) => client,
        Ok(Ok(Carried::Local)) => peer,
        // A balancer's plain TCP health check.
        Ok(Err(HeaderError::Empty)) => {
            tracing::debug!(proxy = %peer, "trusted proxy closed before sending anything");
            return None;
        }
        Ok(Err(e)) => {
            tracing::warn!(proxy = %peer, error = %e, "connection from a trusted proxy refused");
            return None;
        }
        Err(_) => {
            tracing::info!(proxy = %peer, "no PROXY header by the login deadline; connection dropped");
            return None;
        }
    };
    if !places.carried(admission, client.ip()) {
        tracing::info!(addr = %client, proxy = %peer, "connection closed: over the budget of connections not logged in");
        return None;
    }
    if client != peer {
        tracing::debug!(addr = %client, proxy = %peer, "client address from the PROXY header");
    }
    Some(client)
}

/// A v2 header carrying `client` (PROXY, TCP) or none (LOCAL), as a
/// balancer sends it.
#[cfg(test)]
fn encode(client: Option<SocketAddr>, server: SocketAddr) -> Vec<u8> {
    let mut h = SIGNATURE.to_vec();
    match client {
        None => h.extend([0x20, 0x00, 0, 0]),
        Some(SocketAddr::V4(c)) => {
            let s = match server {
                SocketAddr::V4(s) => *s.ip(),
                SocketAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
            };
            h.extend([0x21, 0x11, 0, 12]);
            h.extend(c.ip().octets());
            h.extend(s.octets());
            h.extend(c.port().to_be_bytes());
            h.extend(server.port().to_be_bytes());
        }
        Some(SocketAddr::V6(c)) => {
            let s = match server.ip() {
                IpAddr::V4(s) => s.to_ipv6_mapped(),
                IpAddr::V6(s) => s,
            };
            h.extend([0x21, 0x21, 0, 36]);
            h.extend(c.ip().octets());
            h.extend(s.octets());
            h.extend(c.port().to_be_bytes());
            h.extend(server.port().to_be_bytes());
        }
    }
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn server() -> SocketAddr {
        "127.0.0.1:7272".parse().unwrap()
    }

    async fn read_all(bytes: &[u8]) -> (Result<Carried, HeaderError>, usize) {
        let mut r = bytes;
        let got = read(&mut r).await;
        (got, bytes.len() - r.len())
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains([10, 1, 2, 3].into()));
        assert!(!c.contains([10, 2, 0, 1].into()));
        assert!(c.contains("::ffff:10.1.9.9".parse().unwrap()));
        let host: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(host.to_string(), "192.0.2.7/32");
        assert!(host.contains([192, 0, 2, 7].into()));
        assert!(!host.contains([192, 0, 2, 8].into()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains([10, 0, 0, 1].into()));
        let one: Cidr = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains([203, 0, 113, 1].into()));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "x",
            "10.0.0.0/-1",
            "10.0.0.0/",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_cidrs_in_the_config_are_a_clear_error() {
        let ok: crate::Config =
            toml::from_str(r#"trusted_proxies = ["10.0.0.0/8", "::1"]"#).unwrap();
        assert_eq!(ok.trusted_proxies.len(), 2);
        let e = toml::from_str::<crate::Config>(r#"trusted_proxies = ["10.0.0.0/33"]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad trusted proxy \"10.0.0.0/33\""), "{e}");
    }

    #[tokio::test]
    async fn proxied_addresses_are_read_and_nothing_more() {
        let client: SocketAddr = "203.0.113.9:40000".parse().unwrap();
        let mut bytes = encode(Some(client), server());
        let header = bytes.len();
        bytes.extend(b"\x16\x03\x01 the client's TLS");
        assert_eq!(
            read_all(&bytes).await,
            (Ok(Carried::Client(client)), header)
        );
        let v6: SocketAddr = "[2001:db8::5]:1234".parse().unwrap();
        let bytes = encode(Some(v6), server());
        assert_eq!(read_all(&bytes).await.0, Ok(Carried::Client(v6)));
        assert_eq!(
            read_all(&encode(None, server())).await.0,
            Ok(Carried::Local)
        );
    }

    #[tokio::test]
    async fn tlvs_are_skipped() {
        let client: SocketAddr = "198.51.100.1:5".parse().unwrap();
        let mut bytes = encode(Some(client), server());
        bytes[15] += 7;
        bytes.extend([0x04, 0, 4, 1, 2, 3, 4]); // a NOOP TLV
        let len = bytes.len();
        bytes.extend(b"rest");
        assert_eq!(read_all(&bytes).await, (Ok(Carried::Client(client)), len));
    }

    #[tokio::test]
    async fn truncated_headers_are_refused() {
        let full = encode(Some("203.0.113.9:1".parse().unwrap()), server());
        assert_eq!(read_all(&[]).await.0, Err(HeaderError::Empty));
        for cut in [1, 11, 15, 16, full.len() - 1] {
            assert_eq!(
                read_all(&full[..cut]).await.0,
                Err(HeaderError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn oversized_headers_are_refused_unread() {
        let mut bytes = encode(None, server());
        bytes[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        bytes.resize(70_000, 0);
        let (got, used) = read_all(&bytes).await;
        assert_eq!(got, Err(HeaderError::Oversized(FIXED + 65535)));
        assert_eq!(used, FIXED);
        let mut just = encode(None, server());
        just[14..16].copy_from_slice(&((MAX_HEADER - FIXED) as u16).to_be_bytes());
        just.resize(MAX_HEADER, 0);
        assert_eq!(read_all(&just).await.0, Ok(Carried::Local));
    }

    #[tokio::test]
    async fn garbage_is_refused() {
        // A client's TLS hello, sent directly.
        let tls = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        let (got, used) = read_all(tls).await;
        assert_eq!(got, Err(HeaderError::Missing));
        assert!(used <= FIXED, "read {used} bytes");
        assert_eq!(
            read_all(b"FERRY\0\0\x03").await.0,
            Err(HeaderError::Missing)
        );
        // v1, even when shorter than the fixed part.
        let v1 = b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 7272\r\n";
        assert_eq!(read_all(v1).await.0, Err(HeaderError::V1));
        assert_eq!(read_all(b"PROXY UNKNOWN\r\n").await.0, Err(HeaderError::V1));
        let good = encode(Some("203.0.113.9:1".parse().unwrap()), server());
        let bad = |at: usize, byte: u8| {
            let mut b = good.clone();
            b[at] = byte;
            b
        };
        // Version 1 in the binary form, an unknown command, an unknown family.
        for b in [bad(12, 0x11), bad(12, 0x2f), bad(13, 0x41)] {
            assert!(
                matches!(read_all(&b).await.0, Err(HeaderError::Malformed(_))),
                "{b:?}"
            );
        }
        // UDP, UNIX, AF_UNSPEC under PROXY: not a TCP client.
        for fam in [0x12, 0x00] {
            assert!(matches!(
                read_all(&bad(13, fam)).await.0,
                Err(HeaderError::Malformed(_))
            ));
        }
        // An address block shorter than its family needs.
        let mut short = good.clone();
        short[15] = 4;
        short.truncate(FIXED + 4);
        assert!(matches!(
            read_all(&short).await.0,
            Err(HeaderError::Malformed(_))
        ));
        // A signature with one byte wrong.
        assert_eq!(read_all(&bad(7, b'q')).await.0, Err(HeaderError::Missing));
    }
}
