//! Version 2, the binary header: 12-byte signature, version and command, family and transport,
//! 16-bit length, then the address block and TLVs.
//!
//! Owns writing (without TLVs) and reading that header (section 2.2 of the specification). It
//! never reads past the announced length and never waits for more than [`MAX_V2_LEN`] bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    Addresses, Command, Endpoints, ParseError, ParseOutcome, ParsedHeader, Tlvs, Version,
    MAX_V2_LEN, V1_MAX_LEN, V2_FIXED_LEN, V2_SIGNATURE,
};

// Byte 13: version (high nibble, only 2 exists) and command (low nibble).
const VERSION: u8 = 0x2;
const LOCAL: u8 = 0x0;
const PROXY: u8 = 0x1;
// Byte 14: address family (high nibble) and transport (low nibble, 0 is UNSPEC).
const AF_UNSPEC: u8 = 0x0;
const AF_INET: u8 = 0x1;
const AF_INET6: u8 = 0x2;
const AF_UNIX: u8 = 0x3;
const STREAM: u8 = 0x1;
const DGRAM: u8 = 0x2;

/// Writes a `PROXY` header over TCP for `endpoints` and returns its length (28 or 52).
pub(super) fn write(buf: &mut [u8; V1_MAX_LEN], endpoints: Endpoints) -> usize {
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        if let Some(dst) = buf.get_mut(len..len + bytes.len()) {
            dst.copy_from_slice(bytes);
            len += bytes.len();
        }
    };
    put(&V2_SIGNATURE);
    put(&[VERSION << 4 | PROXY]);
    match endpoints {
        Endpoints::V4(src, dst) => {
            put(&[AF_INET << 4 | STREAM]);
            put(&(address_len(AF_INET) as u16).to_be_bytes());
            put(&src.ip().octets());
            put(&dst.ip().octets());
            put(&src.port().to_be_bytes());
            put(&dst.port().to_be_bytes());
        }
        Endpoints::V6(src, dst) => {
            put(&[AF_INET6 << 4 | STREAM]);
            put(&(address_len(AF_INET6) as u16).to_be_bytes());
            put(&src.ip().octets());
            put(&dst.ip().octets());
            put(&src.port().to_be_bytes());
            put(&dst.port().to_be_bytes());
        }
    }
    len
}

/// Writes a `LOCAL` header with family `UNSPEC` and no address block; returns 16.
pub(super) fn write_local(buf: &mut [u8; V1_MAX_LEN]) -> usize {
    let rest = [VERSION << 4 | LOCAL, AF_UNSPEC << 4, 0, 0];
    for (slot, byte) in buf.iter_mut().zip(V2_SIGNATURE.iter().chain(&rest)) {
        *slot = *byte;
    }
    V2_FIXED_LEN
}

/// Length of the address block of `family`: two addresses, and two ports for IP.
fn address_len(family: u8) -> usize {
    match family {
        AF_INET => 2 * 4 + 2 * 2,
        AF_INET6 => 2 * 16 + 2 * 2,
        AF_UNIX => 2 * 108,
        _ => 0,
    }
}

/// Parses a v2 header from the start of `input`, which is known to start with CR.
pub(super) fn parse(input: &[u8]) -> ParseOutcome<'_> {
    parse_fallible(input).unwrap_or_else(ParseOutcome::Invalid)
}

/// [`parse`] with `?`: each byte of the fixed part is checked as soon as it arrives.
fn parse_fallible(input: &[u8]) -> Result<ParseOutcome<'_>, ParseError> {
    let seen = input.len().min(V2_SIGNATURE.len());
    if input.get(..seen) != V2_SIGNATURE.get(..seen) {
        return Err(ParseError::NotProxyProtocol);
    }
    let command = match input.get(12).map(|b| (b >> 4, b & 0xf)) {
        Some((VERSION, LOCAL)) => Some(Command::Local),
        Some((VERSION, PROXY)) => Some(Command::Proxy),
        Some((VERSION, _)) => return Err(ParseError::V2BadCommand),
        Some(_) => return Err(ParseError::V2BadVersion),
        None => None,
    };
    let family = match input.get(13).map(|b| (b >> 4, b & 0xf)) {
        Some((family, _)) if family > AF_UNIX => return Err(ParseError::V2BadFamily),
        Some((_, transport)) if transport > DGRAM => return Err(ParseError::V2BadTransport),
        family => family,
    };
    let (Some(command), Some((family, transport)), Some(&[hi, lo])) =
        (command, family, input.get(14..V2_FIXED_LEN))
    else {
        let needed = V2_FIXED_LEN.saturating_sub(input.len()).max(1);
        return Ok(ParseOutcome::Incomplete { needed });
    };
    let total = V2_FIXED_LEN + usize::from(u16::from_be_bytes([hi, lo]));
    if total > MAX_V2_LEN {
        return Err(ParseError::TooLong);
    }
    if command == Command::Proxy && total - V2_FIXED_LEN < address_len(family) {
        return Err(ParseError::V2AddressTooShort);
    }
    let Some(block) = input.get(V2_FIXED_LEN..total) else {
        let needed = total.saturating_sub(input.len()).max(1);
        return Ok(ParseOutcome::Incomplete { needed });
    };
    // A LOCAL block too short for its (ignored) family is skipped unread.
    let (address, tlvs) = block
        .split_at_checked(address_len(family))
        .unwrap_or((block, &[]));
    if !well_formed(tlvs) {
        return Err(ParseError::V2BadTlv);
    }
    let addresses = match (command, family, transport) {
        (Command::Proxy, AF_INET, STREAM) => tcp4(address),
        (Command::Proxy, AF_INET6, STREAM) => tcp6(address),
        // Every other valid pair may fall back to the real endpoints (spec, section 2.2).
        _ => Addresses::Unknown,
    };
    let header = ParsedHeader {
        version: Version::V2,
        command,
        addresses,
        tlvs,
    };
    Ok(ParseOutcome::Complete {
        header,
        consumed: total,
    })
}

/// Reads an `AF_INET` address block: two 4-byte addresses, then the two ports.
fn tcp4(block: &[u8]) -> Addresses {
    let ip = |at| IpAddr::V4(Ipv4Addr::from(array::<4>(block, at)));
    let port = |at| u16::from_be_bytes(array(block, at));
    Addresses::Tcp {
        src: SocketAddr::new(ip(0), port(8)),
        dst: SocketAddr::new(ip(4), port(10)),
    }
}

/// Reads an `AF_INET6` address block: two 16-byte addresses, then the two ports.
fn tcp6(block: &[u8]) -> Addresses {
    let ip = |at| IpAddr::V6(Ipv6Addr::from(array::<16>(block, at)));
    let port = |at| u16::from_be_bytes(array(block, at));
    Addresses::Tcp {
        src: SocketAddr::new(ip(0), port(32)),
        dst: SocketAddr::new(ip(16), port(34)),
    }
}

/// `N` bytes of `bytes` from `at`, zeros where `bytes` is too short (callers checked it is not).
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|slice| slice.try_into().ok())
        .unwrap_or([0; N])
}

/// Whether `bytes` is a sequence of whole TLVs, nothing more.
fn well_formed(bytes: &[u8]) -> bool {
    let mut tlvs = Tlvs { rest: bytes };
    while tlvs.next().is_some() {}
    tlvs.rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::super::{parse, tlv, Header};
    use super::*;

    /// A v2 header with bytes 13 and 14 as given and `block` after the length.
    fn header(ver_cmd: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[ver_cmd, family]);
        bytes.extend_from_slice(&(block.len() as u16).to_be_bytes());
        bytes.extend_from_slice(block);
        bytes
    }

    const TCP4_BLOCK: [u8; 12] = [192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb];

    fn complete(input: &[u8]) -> (ParsedHeader<'_>, usize) {
        match parse(input) {
            ParseOutcome::Complete { header, consumed } => (header, consumed),
            other => panic!("{:?}: {other:?}", input.escape_ascii().to_string()),
        }
    }

    fn tcp4_example() -> Addresses {
        Addresses::Tcp {
            src: "192.168.0.1:56324".parse().unwrap(),
            dst: "192.168.0.11:443".parse().unwrap(),
        }
    }

    #[test]
    fn signature_is_the_specified_bytes() {
        let spec = [
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        ];
        assert_eq!(V2_SIGNATURE, spec);
    }

    #[test]
    fn encodes_tcp4() {
        let Addresses::Tcp { src, dst } = tcp4_example() else {
            unreachable!()
        };
        let encoded = Header::v2(src, dst);
        assert_eq!(encoded.as_bytes(), header(0x21, 0x11, &TCP4_BLOCK));
        assert_eq!(encoded.as_bytes().len(), 28);
        let (parsed, consumed) = complete(encoded.as_bytes());
        assert_eq!(
            (parsed.command, parsed.addresses, consumed),
            (Command::Proxy, tcp4_example(), 28)
        );
    }

    #[test]
    fn encodes_tcp6_in_52_bytes() {
        let src = "[2001:db8::1]:1234".parse().unwrap();
        let dst = "[2001:db8::2]:443".parse().unwrap();
        let encoded = Header::v2(src, dst);
        let bytes = encoded.as_bytes();
        assert_eq!(bytes.len(), V2_FIXED_LEN + 36);
        assert_eq!(&bytes[12..16], &[0x21, 0x21, 0, 36]);
        assert_eq!(&bytes[48..], &[0x04, 0xd2, 0x01, 0xbb]);
        let (parsed, _) = complete(bytes);
        assert_eq!(parsed.addresses, Addresses::Tcp { src, dst });
    }

    #[test]
    fn mixed_families_encode_as_inet6_and_mapped_pairs_as_inet() {
        let v4 = "10.0.0.1:1".parse().unwrap();
        let v6 = "[2001:db8::2]:2".parse().unwrap();
        let mapped = "[::ffff:10.0.0.2]:2".parse().unwrap();
        assert_eq!(Header::v2(v4, v6).as_bytes()[13], 0x21);
        let encoded = Header::v2(v4, mapped);
        let (parsed, _) = complete(encoded.as_bytes());
        let expected = Addresses::Tcp {
            src: v4,
            dst: "10.0.0.2:2".parse().unwrap(),
        };
        assert_eq!(parsed.addresses, expected);
    }

    #[test]
    fn local_header_is_16_bytes_and_parses_as_local() {
        let local = Header::v2_local();
        assert_eq!(local.as_bytes(), header(0x20, 0x00, &[]));
        let (parsed, consumed) = complete(local.as_bytes());
        assert_eq!(
            (parsed.command, parsed.addresses, consumed),
            (Command::Local, Addresses::Unknown, 16)
        );
    }

    #[test]
    fn tlvs_are_exposed_raw_and_trailing_data_is_left() {
        let mut block = TCP4_BLOCK.to_vec();
        block.extend_from_slice(&[tlv::ALPN, 0, 2, b'h', b'2']);
        block.extend_from_slice(&[tlv::AUTHORITY, 0, 11]);
        block.extend_from_slice(b"example.com");
        block.extend_from_slice(&[tlv::NOOP, 0, 0]);
        let mut input = header(0x21, 0x11, &block);
        let header_len = input.len();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (parsed, consumed) = complete(&input);
        assert_eq!(consumed, header_len);
        assert_eq!(parsed.addresses, tcp4_example());
        let tlvs: Vec<_> = parsed.tlvs().collect();
        let expected: &[(u8, &[u8])] = &[
            (tlv::ALPN, b"h2"),
            (tlv::AUTHORITY, b"example.com"),
            (tlv::NOOP, b""),
        ];
        assert_eq!(tlvs, expected);
    }

    #[test]
    fn local_ignores_family_and_still_reads_tlvs_after_a_full_block() {
        // LOCAL with an INET family and no block at all: accepted, family ignored.
        let input = header(0x20, 0x11, &[]);
        let (parsed, _) = complete(&input);
        assert_eq!(
            (parsed.command, parsed.addresses),
            (Command::Local, Addresses::Unknown)
        );
        // LOCAL with a full INET block then a TLV: addresses ignored, TLV read.
        let mut block = TCP4_BLOCK.to_vec();
        block.extend_from_slice(&[tlv::UNIQUE_ID, 0, 1, 7]);
        let input = header(0x20, 0x11, &block);
        let (parsed, _) = complete(&input);
        assert_eq!(parsed.addresses, Addresses::Unknown);
        assert_eq!(
            parsed.tlvs().collect::<Vec<_>>(),
            [(tlv::UNIQUE_ID, &[7][..])]
        );
        // LOCAL with a block shorter than its family's: skipped unread.
        let input = header(0x20, 0x11, &[0xff; 5]);
        let (parsed, consumed) = complete(&input);
        assert_eq!((parsed.tlvs().count(), consumed), (0, 21));
    }

    #[test]
    fn other_families_and_transports_fall_back_to_unknown() {
        for (family, block) in [
            (0x00, &[][..]),
            (0x01, &[][..]),
            (0x10, &TCP4_BLOCK[..]),
            (0x12, &TCP4_BLOCK[..]),
            (0x22, &[0; 36][..]),
            (0x31, &[0; 216][..]),
            (0x32, &[0; 216][..]),
        ] {
            let input = header(0x21, family, block);
            let (parsed, consumed) = complete(&input);
            assert_eq!(parsed.command, Command::Proxy);
            assert_eq!(parsed.addresses, Addresses::Unknown, "family {family:#x}");
            assert_eq!(consumed, input.len());
        }
    }

    #[test]
    fn each_error_as_soon_as_its_byte_arrives() {
        use ParseError::*;
        let cases: Vec<(Vec<u8>, ParseError)> = vec![
            (b"\r\nX".to_vec(), NotProxyProtocol),
            (b"\r\n\r\n\0\r\nQUIX".to_vec(), NotProxyProtocol),
            (header(0x11, 0x11, &TCP4_BLOCK)[..13].to_vec(), V2BadVersion),
            (header(0x31, 0x11, &TCP4_BLOCK)[..13].to_vec(), V2BadVersion),
            (header(0x22, 0x11, &TCP4_BLOCK)[..13].to_vec(), V2BadCommand),
            (header(0x2f, 0x11, &TCP4_BLOCK)[..13].to_vec(), V2BadCommand),
            (header(0x21, 0x41, &TCP4_BLOCK)[..14].to_vec(), V2BadFamily),
            (header(0x21, 0xf1, &TCP4_BLOCK)[..14].to_vec(), V2BadFamily),
            (
                header(0x21, 0x13, &TCP4_BLOCK)[..14].to_vec(),
                V2BadTransport,
            ),
            (
                header(0x21, 0x11, &TCP4_BLOCK[..8])[..16].to_vec(),
                V2AddressTooShort,
            ),
            (
                header(0x21, 0x21, &TCP4_BLOCK)[..16].to_vec(),
                V2AddressTooShort,
            ),
            (
                header(0x21, 0x31, &[0; 215])[..16].to_vec(),
                V2AddressTooShort,
            ),
            (
                header(0x21, 0x11, &[&TCP4_BLOCK[..], &[1]].concat()),
                V2BadTlv,
            ),
            (
                header(0x21, 0x11, &[&TCP4_BLOCK[..], &[1, 0]].concat()),
                V2BadTlv,
            ),
            (
                header(0x21, 0x11, &[&TCP4_BLOCK[..], &[1, 0, 2, 9]].concat()),
                V2BadTlv,
            ),
            (header(0x20, 0x00, &[1, 0, 2, 9]), V2BadTlv),
        ];
        for (input, error) in cases {
            assert_eq!(
                parse(&input),
                ParseOutcome::Invalid(error),
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn too_long_is_refused_from_the_length_field() {
        let mut fixed = header(0x21, 0x11, &[]);
        let cap = (MAX_V2_LEN - V2_FIXED_LEN) as u16;
        fixed[14..16].copy_from_slice(&cap.to_be_bytes());
        assert_eq!(parse(&fixed), ParseOutcome::Incomplete { needed: 4096 });
        fixed[14..16].copy_from_slice(&(cap + 1).to_be_bytes());
        assert_eq!(parse(&fixed), ParseOutcome::Invalid(ParseError::TooLong));
        fixed[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(parse(&fixed), ParseOutcome::Invalid(ParseError::TooLong));
    }

    #[test]
    fn needed_is_exact_once_the_length_is_known() {
        let input = header(0x21, 0x11, &TCP4_BLOCK);
        for cut in 0..input.len() {
            let expected = match cut {
                0 => 15,
                1..16 => 16 - cut,
                _ => input.len() - cut,
            };
            assert_eq!(
                parse(&input[..cut]),
                ParseOutcome::Incomplete { needed: expected },
                "cut at {cut}"
            );
        }
    }
}
