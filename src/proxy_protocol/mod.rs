//! The PROXY protocol, versions 1 and 2: build the header sent to a backend (`send_proxy`), and
//! parse the one a trusted client sends first (`accept_proxy`).
//!
//! This module owns the wire format of HAProxy's "The PROXY protocol Versions 1 & 2" and nothing
//! else. It is a pure library: no I/O, no clock, no logging, no configuration. Both directions
//! run on the io_uring hot path, so it must never allocate, panic or loop on untrusted input:
//! encoders write into a fixed [`Header`] (or a caller's buffer), and [`parse`] reads a borrowed
//! slice and returns `Copy` values that borrow it.
//!
//! # Encoding
//! [`Header::v1`] / [`Header::v2`] (or [`encode_v1`] / [`encode_v2`] into a caller's buffer) take
//! the client's address as `src` and the address it connected to as `dst`. Families are chosen
//! like this, so an IPv4 client on a dual-stack (`[::]`) listener still reads as IPv4:
//! - both addresses IPv4 or IPv4-mapped IPv6 (`::ffff:a.b.c.d`): both are sent as IPv4
//!   (v1 `TCP4`, v2 `AF_INET`);
//! - otherwise both are sent as IPv6 (v1 `TCP6`, v2 `AF_INET6`), an IPv4 address as its mapped
//!   form. IPv6 flow info and scope id are not carried (the format has no room for them).
//!
//! v1 IPv6 text is written in RFC 5952 form using hex groups only (never a dotted-quad tail).
//! For health probes use [`Header::v2_local`]; in v1 the specification advises a real `TCP4`/`TCP6`
//! line built from the probe socket's own addresses, [`Header::v1_unknown`] being a fallback.
//!
//! # Parsing
//! [`parse`] is stateless: call it with *all* bytes received so far on the connection, after each
//! read, until it answers [`ParseOutcome::Complete`] (forward `input[consumed..]`, it belongs to
//! the client's stream) or [`ParseOutcome::Invalid`] (close the connection). Work per call is
//! bounded by the header caps below. The answer is monotonic: once `Complete`, more bytes give
//! the same `Complete`; once `Invalid`, they stay `Invalid`; and `Incomplete` is only given while
//! the bytes so far can still begin a valid header (see [`ParseOutcome::Incomplete`] for the
//! exact v1 rule), so garbage is refused at its first wrong byte.
//!
//! Limits and leniencies, all from the specification unless noted:
//! - v1 lines longer than [`V1_MAX_LEN`] (107) bytes, CRLF included, are [`ParseError::TooLong`];
//!   leading zeros are refused in IPv4 octets and ports; IPv6 text is anything the standard
//!   library's `Ipv6Addr` parser takes (so `::ffff:1.2.3.4`, which `inet_ntop` senders produce, is
//!   accepted); after `UNKNOWN` the rest of the line is ignored.
//! - v2 headers longer than [`MAX_V2_LEN`] are [`ParseError::TooLong`] (our cap, the wire allows
//!   16 + 65535). `PROXY` over TCP/IPv4 or TCP/IPv6 yields addresses; the other valid
//!   family/transport pairs (UNSPEC, UDP, UNIX) fall back to [`Addresses::Unknown`], as the
//!   specification allows. TLVs are checked to tile the rest of the block exactly and are then
//!   only exposed raw ([`ParsedHeader::tlvs`]); `PP2_TYPE_CRC32C` is not verified and SSL
//!   sub-TLVs are not looked into. For `LOCAL` the family is ignored: TLVs are read after its
//!   address block when the block is that long, otherwise the whole block is skipped unread.
//! - Addresses are returned as they were on the wire: an IPv4-mapped IPv6 address stays
//!   `SocketAddr::V6` (use `IpAddr::to_canonical` to fold it).

mod v1;
mod v2;

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use thiserror::Error;

/// Longest v1 line a receiver must take, CRLF included: `PROXY UNKNOWN` followed by two
/// full-length IPv6 addresses and two 5-digit ports. Also enough room for any header this module
/// encodes (its longest, a `TCP6` line, is 104 bytes; a v2 header without TLVs at most 52).
pub const V1_MAX_LEN: usize = 107;

/// Length of the fixed part of a v2 header: signature, version and command, family and
/// transport, and the 16-bit length of what follows.
pub const V2_FIXED_LEN: usize = 16;

/// Longest v2 header [`parse`] accepts, fixed part included: room for the IPv6 address block and
/// about 4 KiB of TLVs. Longer headers are refused with [`ParseError::TooLong`].
pub const MAX_V2_LEN: usize = V2_FIXED_LEN + 4096;

/// The 12 bytes every v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Shortest valid v1 line, `PROXY UNKNOWN\r\n`; a lower bound for any header.
const V1_MIN_LEN: usize = 15;

/// Registered v2 TLV types (section 2.2 of the specification), for matching on
/// [`ParsedHeader::tlvs`].
pub mod tlv {
    /// Application-Layer Protocol Negotiation: the ALPN the client negotiated.
    pub const ALPN: u8 = 0x01;
    /// Host name the client asked for (the TLS SNI, usually), UTF-8.
    pub const AUTHORITY: u8 = 0x02;
    /// CRC32c of the whole header; this module does not verify it.
    pub const CRC32C: u8 = 0x03;
    /// Padding, to be ignored.
    pub const NOOP: u8 = 0x04;
    /// Opaque connection id of up to 128 bytes set by the upstream proxy.
    pub const UNIQUE_ID: u8 = 0x05;
    /// TLS details: client flags, verify result, then sub-TLVs.
    pub const SSL: u8 = 0x20;
    /// Name of the network namespace, US-ASCII.
    pub const NETNS: u8 = 0x30;
}

/// Version of the PROXY protocol: the text line (v1) or the binary header (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Human-readable line, `PROXY TCP4 ...\r\n`.
    V1,
    /// Binary header starting with [`V2_SIGNATURE`].
    V2,
}

/// What the sender says the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// The sender opened the connection itself (a health check): use the real endpoints.
    Local,
    /// The connection is relayed on behalf of a client: the header names the original endpoints
    /// (v1 lines, `UNKNOWN` included, are always this).
    Proxy,
}

/// The original endpoints a header carries, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// The original TCP connection: the client (`src`) and the address it connected to (`dst`).
    Tcp {
        /// The client's address and port.
        src: SocketAddr,
        /// The address and port the client connected to.
        dst: SocketAddr,
    },
    /// No usable addresses (v1 `UNKNOWN`, v2 `LOCAL`, or a v2 family/transport other than
    /// TCP over IPv4/IPv6): use the real connection's endpoints.
    Unknown,
}

/// A header [`parse`] accepted. Borrows the input only for its TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedHeader<'a> {
    /// Which version was on the wire.
    pub version: Version,
    /// `LOCAL` or `PROXY`.
    pub command: Command,
    /// The original endpoints, or [`Addresses::Unknown`].
    pub addresses: Addresses,
    /// The v2 TLV area, already checked to be well formed; empty for v1.
    tlvs: &'a [u8],
}

impl<'a> ParsedHeader<'a> {
    /// The v2 TLVs in wire order, as `(type, value)` borrowing the parsed input; none for v1.
    pub fn tlvs(&self) -> Tlvs<'a> {
        Tlvs { rest: self.tlvs }
    }
}

/// Iterator over raw v2 TLVs, `(type, value)`. See [`ParsedHeader::tlvs`] and the [`tlv`] types.
#[derive(Debug, Clone, Copy)]
pub struct Tlvs<'a> {
    /// Bytes not yet walked.
    rest: &'a [u8],
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after) = self.rest.split_first()?;
        let len = match after {
            [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => return None,
        };
        let value = after.get(2..2 + len)?;
        self.rest = after.get(2 + len..)?;
        Some((kind, value))
    }
}

/// What [`parse`] makes of the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseOutcome<'a> {
    /// The bytes so far begin a valid header but do not finish it: read more and call again.
    ///
    /// Given only while no byte so far is provably wrong. For v1 every field already followed
    /// by a space is fully checked, and the field still arriving must be a prefix of a valid one
    /// (exactly for the protocol, IPv4 addresses and ports; for IPv6 text only its alphabet and
    /// length are checked until the field ends).
    Incomplete {
        /// A lower bound on the bytes still missing, at least 1; exact for v2 once its 16-byte
        /// fixed part has arrived.
        needed: usize,
    },
    /// A whole valid header.
    Complete {
        /// What it says.
        header: ParsedHeader<'a>,
        /// Its length: `input[consumed..]` is the client's data and must be forwarded.
        consumed: usize,
    },
    /// Not a valid header, and no more bytes can make it one: close the connection.
    Invalid(ParseError),
}

/// Why a header was refused. Each names one rule of the specification (or one of our caps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum ParseError {
    /// The first bytes are neither `PROXY ` nor the v2 signature.
    #[error("not a PROXY protocol header")]
    NotProxyProtocol,
    /// v1: no CRLF within 107 bytes; v2: the announced length passes [`MAX_V2_LEN`].
    #[error("PROXY header too long")]
    TooLong,
    /// v1: a CR not followed by LF, or an LF not preceded by CR.
    #[error("PROXY v1: line does not end with CRLF")]
    V1BadLineEnding,
    /// v1: the protocol is not `TCP4`, `TCP6` or `UNKNOWN`.
    #[error("PROXY v1: protocol is not TCP4, TCP6 or UNKNOWN")]
    V1BadProtocol,
    /// v1: an empty field, i.e. fields not separated by exactly one space.
    #[error("PROXY v1: fields not separated by exactly one space")]
    V1BadSeparator,
    /// v1: the line ends before both addresses and both ports.
    #[error("PROXY v1: missing address or port")]
    V1MissingField,
    /// v1: something after the destination port.
    #[error("PROXY v1: stray bytes after the destination port")]
    V1TrailingData,
    /// v1: an address is not valid text for the announced family.
    #[error("PROXY v1: bad IP address")]
    V1BadAddress,
    /// v1: a port or IPv4 octet written with a leading zero, which the specification forbids.
    #[error("PROXY v1: number with a leading zero")]
    V1LeadingZero,
    /// v1: a port is not a decimal number.
    #[error("PROXY v1: port is not a decimal number")]
    V1BadPort,
    /// v1: a port above 65535.
    #[error("PROXY v1: port above 65535")]
    V1PortOutOfRange,
    /// v2: the version nibble is not 2.
    #[error("PROXY v2: version is not 2")]
    V2BadVersion,
    /// v2: the command is neither `LOCAL` nor `PROXY`.
    #[error("PROXY v2: command is neither LOCAL nor PROXY")]
    V2BadCommand,
    /// v2: the address family is not UNSPEC, INET, INET6 or UNIX.
    #[error("PROXY v2: unknown address family")]
    V2BadFamily,
    /// v2: the transport is not UNSPEC, STREAM or DGRAM.
    #[error("PROXY v2: unknown transport protocol")]
    V2BadTransport,
    /// v2: a `PROXY` header whose address block is shorter than its family needs.
    #[error("PROXY v2: address block too short for its family")]
    V2AddressTooShort,
    /// v2: the TLVs after the addresses do not exactly fill the header.
    #[error("PROXY v2: malformed TLV")]
    V2BadTlv,
}

/// Parses the start of a connection that must begin with a PROXY header, v1 or v2.
///
/// `input` is every byte received so far; see the module docs for the contract.
pub fn parse(input: &[u8]) -> ParseOutcome<'_> {
    match input.first() {
        None => ParseOutcome::Incomplete { needed: V1_MIN_LEN },
        Some(b'P') => v1::parse(input),
        Some(b'\r') => v2::parse(input),
        Some(_) => ParseOutcome::Invalid(ParseError::NotProxyProtocol),
    }
}

/// An encoded header: a fixed buffer holding up to [`V1_MAX_LEN`] bytes and its length. `Copy`,
/// no heap; send [`Header::as_bytes`] before any client byte.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The header, then unused zeros.
    bytes: [u8; V1_MAX_LEN],
    /// How many of `bytes` are the header.
    len: u8,
}

impl Header {
    /// The header `send_proxy` of `version` asks for, for a client `src` connected to `dst`.
    pub fn new(version: Version, src: SocketAddr, dst: SocketAddr) -> Self {
        match version {
            Version::V1 => Self::v1(src, dst),
            Version::V2 => Self::v2(src, dst),
        }
    }

    /// A v1 line, `PROXY TCP4 ...` or `PROXY TCP6 ...` (see the module docs for the family).
    pub fn v1(src: SocketAddr, dst: SocketAddr) -> Self {
        Self::build(|buf| v1::write(buf, Endpoints::of(src, dst)))
    }

    /// The v1 line for a connection whose endpoints cannot be told: `PROXY UNKNOWN\r\n`.
    pub fn v1_unknown() -> Self {
        Self::build(v1::write_unknown)
    }

    /// A v2 header with the `PROXY` command over TCP (see the module docs for the family).
    pub fn v2(src: SocketAddr, dst: SocketAddr) -> Self {
        Self::build(|buf| v2::write(buf, Endpoints::of(src, dst)))
    }

    /// A v2 header with the `LOCAL` command and no address, for health probes.
    pub fn v2_local() -> Self {
        Self::build(v2::write_local)
    }

    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Copies the header to the start of `out` and returns its length.
    pub fn write_to(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let bytes = self.as_bytes();
        match out.get_mut(..bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                Ok(bytes.len())
            }
            None => Err(BufferTooSmall {
                needed: bytes.len(),
                available: out.len(),
            }),
        }
    }

    /// Runs one of the writers on a zeroed buffer; each returns how many bytes it wrote.
    fn build(write: impl FnOnce(&mut [u8; V1_MAX_LEN]) -> usize) -> Self {
        let mut bytes = [0; V1_MAX_LEN];
        let len = write(&mut bytes).min(V1_MAX_LEN);
        Self {
            bytes,
            len: len as u8, // at most 107
        }
    }
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Header(\"{}\")", self.as_bytes().escape_ascii())
    }
}

/// The output buffer handed to an `encode_*` function is too small; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[error("PROXY header needs {needed} bytes, the buffer has {available}")]
pub struct BufferTooSmall {
    /// The header's length.
    pub needed: usize,
    /// The buffer's length.
    pub available: usize,
}

/// Writes [`Header::v1`] to the start of `out` (104 bytes always suffice) and returns its length.
pub fn encode_v1(
    src: SocketAddr,
    dst: SocketAddr,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    Header::v1(src, dst).write_to(out)
}

/// Writes [`Header::v2`] to the start of `out` (52 bytes always suffice) and returns its length.
pub fn encode_v2(
    src: SocketAddr,
    dst: SocketAddr,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    Header::v2(src, dst).write_to(out)
}

/// Writes [`Header::v1_unknown`] (15 bytes) to the start of `out` and returns its length.
pub fn encode_unknown_v1(out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    Header::v1_unknown().write_to(out)
}

/// Writes [`Header::v2_local`] (16 bytes) to the start of `out` and returns its length.
pub fn encode_local_v2(out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    Header::v2_local().write_to(out)
}

/// A pair of endpoints after the family choice described in the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoints {
    /// Both sides are IPv4 (or were IPv4-mapped).
    V4(SocketAddrV4, SocketAddrV4),
    /// At least one side is a true IPv6 address; IPv4 sides are mapped.
    V6(SocketAddrV6, SocketAddrV6),
}

impl Endpoints {
    /// Picks the family for a `src`/`dst` pair.
    fn of(src: SocketAddr, dst: SocketAddr) -> Self {
        match (as_v4(src), as_v4(dst)) {
            (Some(src), Some(dst)) => Self::V4(src, dst),
            _ => Self::V6(as_v6(src), as_v6(dst)),
        }
    }
}

/// `addr` as IPv4 if it is IPv4 or IPv4-mapped IPv6 (not the deprecated IPv4-compatible `::a.b.c.d`).
fn as_v4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(v4) => Some(v4),
        SocketAddr::V6(v6) => v6
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, v6.port())),
    }
}

/// `addr` as IPv6, an IPv4 address in its mapped form; flow info and scope id dropped.
fn as_v6(addr: SocketAddr) -> SocketAddrV6 {
    match addr {
        SocketAddr::V4(v4) => SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0),
        SocketAddr::V6(v6) => SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    /// Valid headers of every kind, one of each.
    fn samples() -> Vec<Vec<u8>> {
        let v4 = "192.0.2.1:56324".parse().unwrap();
        let v4_dst = "192.0.2.11:443".parse().unwrap();
        let v6 = "[2001:db8::1]:1".parse().unwrap();
        let mut with_tlvs = Header::v2(v4, v4_dst).as_bytes().to_vec();
        with_tlvs[15] += 9;
        with_tlvs.extend_from_slice(&[tlv::NOOP, 0, 0, tlv::ALPN, 0, 3, b'h', b'/', b'1']);
        vec![
            Header::v1(v4, v4_dst).as_bytes().to_vec(),
            Header::v1(v6, v4_dst).as_bytes().to_vec(),
            Header::v1_unknown().as_bytes().to_vec(),
            b"PROXY UNKNOWN 1.2.3.4 anything\r\n".to_vec(),
            Header::v2(v4, v4_dst).as_bytes().to_vec(),
            Header::v2(v6, v4_dst).as_bytes().to_vec(),
            Header::v2_local().as_bytes().to_vec(),
            with_tlvs,
        ]
    }

    /// What the module docs promise `parse(encode(src, dst))` gives back.
    fn expected(src: SocketAddr, dst: SocketAddr) -> Addresses {
        let (src_ip, dst_ip) = (src.ip().to_canonical(), dst.ip().to_canonical());
        let v6 = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
            v6 => v6,
        };
        let (src_ip, dst_ip) = match (src_ip, dst_ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) => (src_ip, dst_ip),
            _ => (v6(src.ip()), v6(dst.ip())),
        };
        Addresses::Tcp {
            src: SocketAddr::new(src_ip, src.port()),
            dst: SocketAddr::new(dst_ip, dst.port()),
        }
    }

    /// Parses every prefix of `input` and checks the answers are consistent: `Incomplete` with a
    /// positive `needed` until some length, then one fixed `Complete` or some `Invalid` for good.
    fn check_prefixes(input: &[u8]) {
        let mut settled: Option<ParseOutcome<'_>> = None;
        for cut in 0..=input.len() {
            let outcome = parse(&input[..cut]);
            match (outcome, settled) {
                (ParseOutcome::Incomplete { needed }, None) => assert!(needed >= 1),
                (ParseOutcome::Complete { consumed, .. }, None) => {
                    assert!(consumed <= cut);
                    settled = Some(outcome);
                }
                (ParseOutcome::Invalid(_), None) => settled = Some(outcome),
                (ParseOutcome::Invalid(_), Some(ParseOutcome::Invalid(_))) => {}
                (now, Some(before)) => {
                    assert_eq!(now, before, "at {cut} of {}", input.escape_ascii())
                }
            }
        }
    }

    #[test]
    fn first_byte_decides_the_version() {
        assert_eq!(parse(b""), ParseOutcome::Incomplete { needed: 15 });
        assert_eq!(parse(b"P"), ParseOutcome::Incomplete { needed: 14 });
        assert_eq!(parse(b"\r"), ParseOutcome::Incomplete { needed: 15 });
        for first in [b'G', b'\n', 0, 0x16, b'p', b' '] {
            assert_eq!(
                parse(&[first]),
                ParseOutcome::Invalid(ParseError::NotProxyProtocol)
            );
        }
    }

    #[test]
    fn byte_by_byte_is_incomplete_until_the_last_byte() {
        for header in samples() {
            let mut input = header.clone();
            input.extend_from_slice(b"client bytes");
            for cut in 0..header.len() {
                match parse(&input[..cut]) {
                    ParseOutcome::Incomplete { needed } => {
                        assert!(
                            (1..=header.len() - cut).contains(&needed),
                            "{cut}: {needed}"
                        )
                    }
                    other => panic!("{} cut at {cut}: {other:?}", header.escape_ascii()),
                }
            }
            for cut in header.len()..=input.len() {
                let ParseOutcome::Complete { consumed, .. } = parse(&input[..cut]) else {
                    panic!("{} cut at {cut}", header.escape_ascii());
                };
                assert_eq!(consumed, header.len());
            }
            assert_eq!(&input[header.len()..], b"client bytes");
        }
    }

    #[test]
    fn encoders_write_into_caller_buffers() {
        let src = "[2001:db8::1]:1".parse().unwrap();
        let dst = "[2001:db8::2]:2".parse().unwrap();
        let mut out = [0u8; V1_MAX_LEN];
        let len = encode_v1(src, dst, &mut out).unwrap();
        assert_eq!(&out[..len], b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n");
        assert_eq!(encode_v2(src, dst, &mut out), Ok(52));
        assert_eq!(encode_unknown_v1(&mut out), Ok(15));
        assert_eq!(&out[..15], b"PROXY UNKNOWN\r\n");
        assert_eq!(encode_local_v2(&mut out[..16]), Ok(16));
        assert_eq!(
            encode_v2(src, dst, &mut out[..51]),
            Err(BufferTooSmall {
                needed: 52,
                available: 51
            })
        );
        let error = encode_local_v2(&mut []).unwrap_err();
        assert_eq!(
            error.to_string(),
            "PROXY header needs 16 bytes, the buffer has 0"
        );
    }

    #[test]
    fn header_is_small_and_debug_prints_the_bytes() {
        assert!(std::mem::size_of::<Header>() <= 108);
        assert_eq!(
            format!("{:?}", Header::v1_unknown()),
            "Header(\"PROXY UNKNOWN\\r\\n\")"
        );
        let v4 = "1.2.3.4:5".parse().unwrap();
        assert_eq!(Header::new(Version::V1, v4, v4), Header::v1(v4, v4));
        assert_eq!(Header::new(Version::V2, v4, v4), Header::v2(v4, v4));
    }

    #[test]
    fn errors_display_short_texts() {
        assert_eq!(ParseError::TooLong.to_string(), "PROXY header too long");
        assert_eq!(ParseError::V2BadTlv.to_string(), "PROXY v2: malformed TLV");
    }

    /// Any socket address, with extra weight on IPv4-mapped IPv6 ones.
    fn socket_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<u32>(), any::<u16>())
                .prop_map(|(ip, port)| SocketAddr::new(Ipv4Addr::from(ip).into(), port)),
            (any::<u128>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(
                |(ip, port, flow, scope)| {
                    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, flow, scope))
                }
            ),
            (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| {
                SocketAddr::new(Ipv4Addr::from(ip).to_ipv6_mapped().into(), port)
            }),
        ]
    }

    /// Bytes that look like the start of a header, then noise from a header-ish alphabet.
    fn header_like() -> impl Strategy<Value = Vec<u8>> {
        let starts = prop_oneof![
            Just(b"PROXY ".to_vec()),
            Just(b"PROXY TCP4 ".to_vec()),
            Just(b"PROXY TCP6 ".to_vec()),
            Just(b"PROXY UNKNOWN".to_vec()),
            (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(cmd, fam, len)| {
                let mut bytes = V2_SIGNATURE.to_vec();
                bytes.extend_from_slice(&[0x20 | (cmd & 0x3), fam, 0, len]);
                bytes
            }),
        ];
        let noise = prop::collection::vec(
            prop_oneof![
                prop::sample::select(b"0123456789abcdef.: \r\nPROXYTCP46UNKWf".to_vec()),
                any::<u8>(),
            ],
            0..120,
        );
        (starts, noise).prop_map(|(mut start, noise)| {
            start.extend(noise);
            start
        })
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(
            src in socket_addr(),
            dst in socket_addr(),
            v2 in any::<bool>(),
            tail in prop::collection::vec(any::<u8>(), 0..8),
        ) {
            let version = if v2 { Version::V2 } else { Version::V1 };
            let header = Header::new(version, src, dst);
            let mut input = header.as_bytes().to_vec();
            input.extend_from_slice(&tail);
            let ParseOutcome::Complete { header: parsed, consumed } = parse(&input) else {
                panic!("{header:?} did not parse");
            };
            prop_assert_eq!(consumed, header.as_bytes().len());
            prop_assert_eq!(parsed.version, version);
            prop_assert_eq!(parsed.command, Command::Proxy);
            prop_assert_eq!(parsed.addresses, expected(src, dst));
            let longest = if v2 { 52 } else { 104 };
            prop_assert!(header.as_bytes().len() <= longest);
        }

        #[test]
        fn ipv4_pairs_always_use_the_ipv4_family(
            src in any::<u32>(), dst in any::<u32>(), ports in any::<(u16, u16)>()
        ) {
            let src = SocketAddr::new(Ipv4Addr::from(src).into(), ports.0);
            let dst = SocketAddr::new(Ipv4Addr::from(dst).into(), ports.1);
            prop_assert!(Header::v1(src, dst).as_bytes().starts_with(b"PROXY TCP4 "));
            prop_assert_eq!(Header::v2(src, dst).as_bytes()[13], 0x11);
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..200)) {
            check_prefixes(&input);
        }

        #[test]
        fn header_like_bytes_settle_consistently(input in header_like()) {
            check_prefixes(&input);
        }

        #[test]
        fn mutated_headers_settle_consistently(
            which in any::<prop::sample::Index>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4),
            tail in prop::collection::vec(any::<u8>(), 0..16),
        ) {
            let samples = samples();
            let mut input = samples[which.index(samples.len())].clone();
            input.extend_from_slice(&tail);
            for (at, byte, kind) in edits {
                let at = at.index(input.len());
                match kind {
                    0 => input[at] = byte,
                    1 => input.insert(at, byte),
                    _ => { input.remove(at); }
                }
            }
            check_prefixes(&input);
        }

        #[test]
        fn v2_tlvs_round_trip(
            tlvs in prop::collection::vec(
                (any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)), 0..8),
        ) {
            let src = "192.0.2.1:1".parse().unwrap();
            let mut input = Header::v2(src, src).as_bytes().to_vec();
            for (kind, value) in &tlvs {
                input.push(*kind);
                input.extend_from_slice(&(value.len() as u16).to_be_bytes());
                input.extend_from_slice(value);
            }
            let block_len = (input.len() - V2_FIXED_LEN) as u16;
            input[14..16].copy_from_slice(&block_len.to_be_bytes());
            let ParseOutcome::Complete { header, consumed } = parse(&input) else {
                panic!("did not parse");
            };
            prop_assert_eq!(consumed, input.len());
            let parsed: Vec<(u8, Vec<u8>)> =
                header.tlvs().map(|(kind, value)| (kind, value.to_vec())).collect();
            prop_assert_eq!(parsed, tlvs);
        }
    }
}
