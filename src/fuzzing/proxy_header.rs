//! Properties of the PROXY protocol parser and encoders (`crate::proxy_protocol`).
//!
//! Owns the checks of what `accept_proxy` relies on: whatever a client sends, and however its
//! bytes are split into reads, the answer is the same; a header is never longer than its
//! version's maximum, `consumed` never passes the input, `needed` is an honest lower bound, and
//! every encoded header parses back to the addresses the module docs promise. Never changes
//! the parser's behaviour; it only calls it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use super::split::{schedule, Stream};
use crate::proxy_protocol::{
    encode_local_v2, encode_unknown_v1, encode_v1, encode_v2, parse, Addresses, BufferTooSmall,
    Command, Header, ParseOutcome, Version, MAX_V2_LEN, V1_MAX_LEN, V2_FIXED_LEN, V2_SIGNATURE,
};

/// Every prefix this long or shorter is parsed; past it only the cuts of the read schedule are
/// (the answer is settled by then for every v1 line and every v2 fixed part and address block).
const EVERY_CUT: usize = 256;

/// Longest header each encoder writes (module docs): a v1 `TCP6` line, a v2 IPv6 header.
const LONGEST_V1: usize = 104;
const LONGEST_V2: usize = 52;

/// What a connection's first bytes come to, as the worker sees it after its last read. Owned,
/// so answers over different buffers compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fed {
    /// A whole header: what it says, its TLVs and its length.
    Complete {
        version: Version,
        command: Command,
        addresses: Addresses,
        tlvs: Vec<(u8, Vec<u8>)>,
        consumed: usize,
    },
    /// Refused. Which `ParseError` is not compared: it names the rule the parser checked
    /// first among the broken ones it could see, so a later read can show it an earlier broken
    /// rule (`PROXY TCP4  ` is a bad separator; with a `\n` after it, a bad line ending). The
    /// verdict, and with it what the worker does, does not change.
    Invalid,
    /// The receive buffer ([`MAX_V2_LEN`] bytes, as the workers size it) filled up while the
    /// parser still asked for more: the worker refuses this as too long.
    BufferFull,
    /// The client stopped sending before the header was complete.
    Closed,
}

impl Fed {
    fn of(outcome: ParseOutcome<'_>) -> Option<Self> {
        match outcome {
            ParseOutcome::Incomplete { .. } => None,
            ParseOutcome::Invalid(_) => Some(Self::Invalid),
            ParseOutcome::Complete { header, consumed } => Some(Self::Complete {
                version: header.version,
                command: header.command,
                addresses: header.addresses,
                tlvs: header.tlvs().map(|(t, v)| (t, v.to_vec())).collect(),
                consumed,
            }),
        }
    }
}

/// Fuzz entry point: `data` as the first bytes of a connection, split by [`schedule`].
pub fn proxy_header(data: &[u8]) {
    proxy_header_split(data, &schedule(data));
}

/// `data` as the first bytes of a connection, arriving in reads of `lengths` (see
/// [`super::split`]): checks the answer to the whole input, the answers to its prefixes, and
/// that the worker's read loop ends the same way whether the bytes come split or in one read.
pub fn proxy_header_split(data: &[u8], lengths: &[usize]) {
    let whole = parse(data);
    check_outcome(data, whole);
    if let ParseOutcome::Complete { header, consumed } = whole {
        check_header(data, header.version, consumed);
        if let Addresses::Tcp { src, dst } = header.addresses {
            check_reencoded(data, header.version, consumed, src, dst);
        }
    }
    check_prefixes(data, lengths);
    assert_eq!(
        feed(data, lengths),
        feed(data, &[]),
        "split {lengths:?} of {}",
        data.escape_ascii()
    );
}

/// Checks one answer against the input it was given; cheap, so it runs for every prefix.
fn check_outcome(input: &[u8], outcome: ParseOutcome<'_>) {
    // The first byte decides the version ('P' or CR; anything else is refused at once).
    let (version, longest) = match input.first() {
        Some(b'P') => (Version::V1, V1_MAX_LEN),
        _ => (Version::V2, MAX_V2_LEN),
    };
    match outcome {
        ParseOutcome::Incomplete { needed } => {
            assert!(needed >= 1, "needed 0 for {}", input.escape_ascii());
            assert!(
                input.len() + needed <= longest,
                "{} bytes in, {needed} more asked, past the {longest}-byte maximum",
                input.len()
            );
        }
        ParseOutcome::Invalid(_) => {}
        ParseOutcome::Complete { header, consumed } => {
            assert!(
                consumed <= input.len(),
                "consumed {consumed} of {}",
                input.len()
            );
            assert_eq!(header.version, version);
            assert!(consumed <= longest, "{consumed}-byte {version:?} header");
            if header.command == Command::Local {
                assert_eq!(header.version, Version::V2, "a v1 line is always PROXY");
                assert_eq!(
                    header.addresses,
                    Addresses::Unknown,
                    "LOCAL carries addresses"
                );
            }
            if let Addresses::Tcp { src, dst } = header.addresses {
                assert_eq!(header.command, Command::Proxy);
                assert_eq!(src.is_ipv4(), dst.is_ipv4(), "mixed families {src} {dst}");
            }
            // The TLVs tile a part of the header: what they cover fits in it.
            let covered: usize = header.tlvs().map(|(_, value)| 3 + value.len()).sum();
            assert!(covered <= consumed.saturating_sub(V2_FIXED_LEN));
            if header.version == Version::V1 {
                assert_eq!(covered, 0, "TLVs in a v1 line");
            }
        }
    }
}

/// Deeper checks of a whole header of `consumed` bytes at the start of `input`.
fn check_header(input: &[u8], version: Version, consumed: usize) {
    let header = &input[..consumed];
    match version {
        Version::V1 => {
            assert!(header.starts_with(b"PROXY ") && header.ends_with(b"\r\n"));
            assert!(
                !header[..consumed - 2].contains(&b'\n'),
                "LF inside the line"
            );
        }
        Version::V2 => {
            assert!(header.starts_with(&V2_SIGNATURE));
            let announced = usize::from(u16::from_be_bytes([header[14], header[15]]));
            assert_eq!(consumed, V2_FIXED_LEN + announced);
        }
    }
    // The header alone gives the same answer; one byte less of it is not an answer yet.
    assert_eq!(Fed::of(parse(header)), Fed::of(parse(input)));
    assert!(matches!(
        parse(&header[..consumed - 1]),
        ParseOutcome::Incomplete { .. }
    ));
}

/// A parsed `src`/`dst` encodes again to a header that parses back to them; where the wire
/// form is unique (v1 `TCP4`; v2 without TLVs in the family the encoder picks) the bytes are
/// exactly the ones received.
fn check_reencoded(
    input: &[u8],
    version: Version,
    consumed: usize,
    src: SocketAddr,
    dst: SocketAddr,
) {
    proxy_round_trip_of(src, dst, &input[consumed..]);
    let encoded = Header::new(version, src, dst);
    let encoded = encoded.as_bytes();
    let header = &input[..consumed];
    let unique = match version {
        Version::V1 => header.starts_with(b"PROXY TCP4 "),
        Version::V2 => encoded.len() == consumed && encoded[13] == header[13],
    };
    if unique {
        assert_eq!(
            encoded,
            header,
            "accepted {} but writes {}",
            header.escape_ascii(),
            encoded.escape_ascii()
        );
    }
}

/// Parses the prefixes of `data` (all up to [`EVERY_CUT`], then the cuts of `lengths`) and
/// checks the answers settle: `Incomplete` up to some length, then one `Complete` or one
/// `Invalid` for good, with every `needed` along the way a lower bound that is exact for v2
/// once its fixed part is in.
fn check_prefixes(data: &[u8], lengths: &[usize]) {
    let cuts = super::split::cuts(data.len(), lengths, EVERY_CUT);
    let mut settled: Option<Fed> = None;
    let mut promised = 0; // the longest `cut + needed` of an Incomplete so far
    let mut last_incomplete = None;
    for cut in cuts {
        let prefix = &data[..cut];
        let outcome = parse(prefix);
        check_outcome(prefix, outcome);
        match (outcome, Fed::of(outcome), &settled) {
            (ParseOutcome::Incomplete { needed }, _, None) => {
                promised = promised.max(cut + needed);
                last_incomplete = Some((cut, needed));
            }
            (_, None, Some(before)) => panic!("Incomplete at {cut} after {before:?}"),
            (_, None, None) => unreachable!("only Incomplete has no answer"),
            (_, Some(now), None) => {
                if let Fed::Complete { consumed, .. } = now {
                    assert!(
                        promised <= consumed,
                        "asked for up to {promised}, done at {consumed}"
                    );
                    if let Some((at, needed)) = last_incomplete {
                        assert!(
                            at < consumed,
                            "Incomplete at {at} for a {consumed}-byte header"
                        );
                        if data[0] == b'\r' && at >= V2_FIXED_LEN {
                            assert_eq!(at + needed, consumed, "v2 needed is exact");
                        }
                    }
                }
                settled = Some(now);
            }
            (_, Some(now), Some(before)) => assert_eq!(
                &now,
                before,
                "answer changed at {cut} of {}",
                data.escape_ascii()
            ),
        }
    }
}

/// The worker's read loop (`worker/engine/proxy_header.rs`, `epoll/proxy.rs`): append each
/// read to a [`MAX_V2_LEN`]-byte buffer, parse everything received after each one, stop at the
/// first answer. No `lengths` means one read of everything.
fn feed(data: &[u8], lengths: &[usize]) -> Fed {
    let mut stream = Stream::new(data, lengths);
    let mut buf = Vec::with_capacity(MAX_V2_LEN);
    loop {
        if buf.len() == MAX_V2_LEN {
            return Fed::BufferFull;
        }
        let Some(read) = stream.read(MAX_V2_LEN - buf.len()) else {
            return Fed::Closed;
        };
        buf.extend_from_slice(read);
        if let Some(answer) = Fed::of(parse(&buf)) {
            return answer;
        }
    }
}

/// Bytes of one encoded socket address in a [`proxy_round_trip`] input.
const ADDR_BYTES: usize = 26;

/// Fuzz entry point: a kind byte and two socket addresses of [`ADDR_BYTES`] each (zeros where
/// `data` is shorter), then the rest as client bytes after the header; see
/// [`proxy_round_trip_of`].
pub fn proxy_round_trip(data: &[u8]) {
    let mut fixed = [0u8; 1 + 2 * ADDR_BYTES];
    let head = data.len().min(fixed.len());
    fixed[..head].copy_from_slice(&data[..head]);
    let (src, dst) = fixed[1..].split_at(ADDR_BYTES);
    let src = socket_addr(fixed[0], src);
    let dst = socket_addr(fixed[0] >> 2, dst);
    proxy_round_trip_of(src, dst, &data[head..]);
}

/// An IPv4, IPv6 or IPv4-mapped IPv6 address (by `kind % 4`, IPv6 twice as likely) from
/// [`ADDR_BYTES`] bytes: address (the first 4 for IPv4), port, flow info, scope id.
fn socket_addr(kind: u8, bytes: &[u8]) -> SocketAddr {
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let port = u16::from_be_bytes([bytes[16], bytes[17]]);
    let v4 = Ipv4Addr::from(word(0));
    let ip = match kind % 4 {
        0 => return SocketAddr::new(v4.into(), port),
        1 => v4.to_ipv6_mapped(),
        _ => Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[..16]).unwrap_or_default()),
    };
    SocketAddr::V6(SocketAddrV6::new(ip, port, word(18), word(22)))
}

/// Encodes `src`/`dst` in both versions and parses them back, followed by `tail` (the client's
/// first bytes): the header is complete at its own length whatever follows, short enough, not
/// complete one byte earlier, and says what the module docs promise (both sides IPv4 when both
/// are IPv4 or IPv4-mapped, else both IPv6). The `encode_*` functions write the same bytes and
/// refuse a buffer one byte short without touching it. `LOCAL` and `UNKNOWN` round-trip too.
pub fn proxy_round_trip_of(src: SocketAddr, dst: SocketAddr, tail: &[u8]) {
    let want = expected(src, dst);
    let encode: [(Version, EncodeFn, usize); 2] = [
        (Version::V1, encode_v1, LONGEST_V1),
        (Version::V2, encode_v2, LONGEST_V2),
    ];
    for (version, encode, longest) in encode {
        let header = Header::new(version, src, dst);
        let bytes = header.as_bytes();
        assert!(
            bytes.len() <= longest,
            "{header:?} is longer than {longest}"
        );
        let mut out = [0xa5u8; V1_MAX_LEN];
        assert_eq!(encode(src, dst, &mut out), Ok(bytes.len()));
        assert_eq!(&out[..bytes.len()], bytes);
        let mut short = [0xa5u8; V1_MAX_LEN];
        let too_small = BufferTooSmall {
            needed: bytes.len(),
            available: bytes.len() - 1,
        };
        assert_eq!(
            encode(src, dst, &mut short[..bytes.len() - 1]),
            Err(too_small)
        );
        assert!(short.iter().all(|&b| b == 0xa5), "a refused encode wrote");
        expect_complete(bytes, tail, version, Command::Proxy, want);
    }
    let mut out = [0u8; V1_MAX_LEN];
    assert_eq!(encode_local_v2(&mut out), Ok(V2_FIXED_LEN));
    let local = &out[..V2_FIXED_LEN];
    expect_complete(local, tail, Version::V2, Command::Local, Addresses::Unknown);
    let mut out = [0u8; V1_MAX_LEN];
    let len = encode_unknown_v1(&mut out).unwrap_or_default();
    let unknown = &out[..len];
    expect_complete(
        unknown,
        tail,
        Version::V1,
        Command::Proxy,
        Addresses::Unknown,
    );
}

type EncodeFn = fn(SocketAddr, SocketAddr, &mut [u8]) -> Result<usize, BufferTooSmall>;

/// `header` then `tail` parses to exactly `header`, saying `version`, `command`, `addresses`.
fn expect_complete(
    header: &[u8],
    tail: &[u8],
    version: Version,
    command: Command,
    addresses: Addresses,
) {
    let input = [header, tail].concat();
    let want = Fed::Complete {
        version,
        command,
        addresses,
        tlvs: Vec::new(),
        consumed: header.len(),
    };
    assert_eq!(
        Fed::of(parse(&input)),
        Some(want.clone()),
        "{}",
        input.escape_ascii()
    );
    assert_eq!(feed(&input, &schedule(&input)), want);
    assert!(matches!(
        parse(&header[..header.len() - 1]),
        ParseOutcome::Incomplete { .. }
    ));
}

/// What the module docs promise `parse(encode(src, dst))` gives back.
fn expected(src: SocketAddr, dst: SocketAddr) -> Addresses {
    let as_v6 = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        v6 => v6,
    };
    let (src_ip, dst_ip) = match (src.ip().to_canonical(), dst.ip().to_canonical()) {
        (src_ip @ IpAddr::V4(_), dst_ip @ IpAddr::V4(_)) => (src_ip, dst_ip),
        _ => (as_v6(src.ip()), as_v6(dst.ip())),
    };
    Addresses::Tcp {
        src: SocketAddr::new(src_ip, src.port()),
        dst: SocketAddr::new(dst_ip, dst.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_headers_pass() {
        let src: SocketAddr = "192.0.2.1:56324".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        for header in [
            Header::v1(src, src),
            Header::v2(src, dst),
            Header::v2_local(),
        ] {
            let mut input = header.as_bytes().to_vec();
            input.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            proxy_header(&input);
            proxy_header_split(&input, &[1; 200]);
        }
        proxy_header(b"PROXY UNKNOWN ffff::1 whatever\r\nhello");
        proxy_round_trip(b"");
        proxy_round_trip(&[0xff; 80]);
    }

    #[test]
    fn garbage_is_refused_the_same_however_split() {
        for input in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PROXY TCP4 1.2.3.4",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff",
        ] {
            proxy_header_split(input, &[]);
            proxy_header_split(input, &[1, 2, 3]);
        }
        assert_eq!(feed(b"PROXY TCP4 1.2.3", &[2]), Fed::Closed);
    }
}
