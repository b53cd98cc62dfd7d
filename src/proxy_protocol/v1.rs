//! Version 1, the text line: `PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n`.
//!
//! Owns writing and reading that one line (section 2.1 of the specification). It never reads
//! past the first CRLF, and never allocates: numbers and addresses are written and read by hand
//! into and from fixed buffers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    Addresses, Command, Endpoints, ParseError, ParseOutcome, ParsedHeader, Version, V1_MAX_LEN,
    V1_MIN_LEN,
};

/// What every v1 line starts with.
const PREFIX: &[u8] = b"PROXY ";

/// Longest IPv6 text taken: six hex groups and a dotted quad.
const MAX_V6_TEXT: usize = 45;

/// Writes the `TCP4` or `TCP6` line for `endpoints` and returns its length (at most 104).
pub(super) fn write(buf: &mut [u8; V1_MAX_LEN], endpoints: Endpoints) -> usize {
    let mut out = Cursor { buf, len: 0 };
    let (src_port, dst_port) = match endpoints {
        Endpoints::V4(src, dst) => {
            out.put(b"PROXY TCP4 ");
            out.put_ipv4(*src.ip());
            out.put(b" ");
            out.put_ipv4(*dst.ip());
            (src.port(), dst.port())
        }
        Endpoints::V6(src, dst) => {
            out.put(b"PROXY TCP6 ");
            out.put_ipv6(*src.ip());
            out.put(b" ");
            out.put_ipv6(*dst.ip());
            (src.port(), dst.port())
        }
    };
    out.put(b" ");
    out.put_decimal(src_port);
    out.put(b" ");
    out.put_decimal(dst_port);
    out.put(b"\r\n");
    out.len
}

/// Writes `PROXY UNKNOWN\r\n` and returns its length, 15.
pub(super) fn write_unknown(buf: &mut [u8; V1_MAX_LEN]) -> usize {
    let mut out = Cursor { buf, len: 0 };
    out.put(b"PROXY UNKNOWN\r\n");
    out.len
}

/// Appends to a fixed buffer. What would not fit is dropped, which cannot happen: the longest
/// line written is 104 bytes (tested).
struct Cursor<'a> {
    /// Where the line goes.
    buf: &'a mut [u8; V1_MAX_LEN],
    /// Bytes written so far.
    len: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    /// Decimal, no leading zeros.
    fn put_decimal(&mut self, n: u16) {
        let mut digits = [0u8; 5];
        let mut start = digits.len();
        let mut rest = n;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            start -= 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.put(&digits[start..]);
    }

    /// Lowercase hex, no leading zeros.
    fn put_hex(&mut self, n: u16) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut started = false;
        for shift in [12, 8, 4, 0] {
            let nibble = (n >> shift) & 0xf;
            if nibble != 0 || started || shift == 0 {
                started = true;
                self.put(&[DIGITS[usize::from(nibble)]]);
            }
        }
    }

    fn put_ipv4(&mut self, ip: Ipv4Addr) {
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                self.put(b".");
            }
            self.put_decimal(u16::from(octet));
        }
    }

    /// RFC 5952 text with hex groups only: the first longest run of two or more zero groups
    /// becomes `::`.
    fn put_ipv6(&mut self, ip: Ipv6Addr) {
        let (gap_start, gap_len) = longest_zero_run(ip.segments());
        let gap_end = gap_start + gap_len;
        for (i, group) in ip.segments().into_iter().enumerate() {
            if gap_len >= 2 && (gap_start..gap_end).contains(&i) {
                if i == gap_start {
                    self.put(b"::");
                }
                continue;
            }
            if i > 0 && !(gap_len >= 2 && i == gap_end) {
                self.put(b":");
            }
            self.put_hex(group);
        }
    }
}

/// Start and length of the first longest run of zero groups.
fn longest_zero_run(groups: [u16; 8]) -> (usize, usize) {
    let (mut best_start, mut best_len, mut run_start, mut run_len) = (0, 0, 0, 0);
    for (i, group) in groups.into_iter().enumerate() {
        if group != 0 {
            run_len = 0;
            continue;
        }
        if run_len == 0 {
            run_start = i;
        }
        run_len += 1;
        if run_len > best_len {
            (best_start, best_len) = (run_start, run_len);
        }
    }
    (best_start, best_len)
}

/// Parses a v1 line from the start of `input`, which is known to start with `P`.
pub(super) fn parse(input: &[u8]) -> ParseOutcome<'_> {
    let seen = input.len().min(PREFIX.len());
    if input.get(..seen) != PREFIX.get(..seen) {
        return ParseOutcome::Invalid(ParseError::NotProxyProtocol);
    }
    // In a line of at most 107 bytes the CR sits at index 105 at most.
    let window = input.get(..V1_MAX_LEN - 1).unwrap_or(input);
    let line_end = window.iter().position(|&b| b == b'\r' || b == b'\n');
    let complete = match line_end.map(|i| (input.get(i), input.get(i + 1))) {
        None if window.len() == V1_MAX_LEN - 1 => {
            return ParseOutcome::Invalid(ParseError::TooLong)
        }
        None | Some((Some(b'\r'), None)) => false,
        Some((Some(b'\r'), Some(b'\n'))) => true,
        Some(_) => return ParseOutcome::Invalid(ParseError::V1BadLineEnding),
    };
    let end = line_end.unwrap_or(input.len());
    let body = input.get(PREFIX.len()..end).unwrap_or(&[]);
    match parse_body(body, complete) {
        Err(error) => ParseOutcome::Invalid(error),
        Ok(Some(addresses)) => ParseOutcome::Complete {
            header: ParsedHeader {
                version: Version::V1,
                command: Command::Proxy,
                addresses,
                tlvs: &[],
            },
            consumed: end + 2,
        },
        // A trailing CR only waits for its LF; otherwise at least the CRLF is missing.
        Ok(None) if line_end.is_some() => ParseOutcome::Incomplete { needed: 1 },
        Ok(None) => ParseOutcome::Incomplete {
            needed: V1_MIN_LEN.saturating_sub(input.len()).max(2),
        },
    }
}

/// The address family a `TCP4` or `TCP6` line announces.
#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

/// Checks the text between `PROXY ` and the CRLF. With `complete == false` the line is still
/// arriving, and `Ok(None)` says the text so far can still begin a valid line.
fn parse_body(body: &[u8], complete: bool) -> Result<Option<Addresses>, ParseError> {
    let (protocol, rest) = match body.iter().position(|&b| b == b' ') {
        Some(i) => (body.get(..i).unwrap_or(&[]), body.get(i + 1..)),
        None => (body, None),
    };
    let family = match (protocol, rest) {
        // The specification says to ignore whatever follows UNKNOWN.
        (b"UNKNOWN", _) => return Ok(complete.then_some(Addresses::Unknown)),
        (b"TCP4", _) => Family::V4,
        (b"TCP6", _) => Family::V6,
        (b"", Some(_)) => return Err(ParseError::V1BadSeparator),
        (start, None)
            if !complete
                && [&b"TCP4"[..], b"TCP6", b"UNKNOWN"]
                    .iter()
                    .any(|name| name.starts_with(start)) =>
        {
            return Ok(None)
        }
        _ => return Err(ParseError::V1BadProtocol),
    };
    let Some(rest) = rest else {
        return if complete {
            Err(ParseError::V1MissingField)
        } else {
            Ok(None)
        };
    };
    let (mut src, mut dst, mut ports, mut count) = (None, None, [0u16; 2], 0);
    let mut fields = rest.split(|&b| b == b' ').peekable();
    while let Some(field) = fields.next() {
        let partial = !complete && fields.peek().is_none();
        if count == 4 {
            return Err(ParseError::V1TrailingData);
        }
        if field.is_empty() {
            return if partial {
                Ok(None)
            } else {
                Err(ParseError::V1BadSeparator)
            };
        }
        match count {
            0 => src = address(family, field, partial)?,
            1 => dst = address(family, field, partial)?,
            2 => ports[0] = port(field)?,
            _ => ports[1] = port(field)?,
        }
        count += 1;
    }
    if !complete {
        return Ok(None);
    }
    match (src, dst, count) {
        (Some(src), Some(dst), 4) => Ok(Some(Addresses::Tcp {
            src: SocketAddr::new(src, ports[0]),
            dst: SocketAddr::new(dst, ports[1]),
        })),
        _ => Err(ParseError::V1MissingField),
    }
}

/// An address of `family`. With `partial`, `text` may be cut short, and `Ok(None)` says it can
/// still become one (exact for IPv4; alphabet and length only for IPv6).
fn address(family: Family, text: &[u8], partial: bool) -> Result<Option<IpAddr>, ParseError> {
    match family {
        Family::V4 => Ok(ipv4(text, partial)?.map(IpAddr::V4)),
        Family::V6 if partial => {
            let alphabet = |b: &u8| b.is_ascii_hexdigit() || *b == b':' || *b == b'.';
            if text.len() <= MAX_V6_TEXT && text.iter().all(alphabet) {
                Ok(None)
            } else {
                Err(ParseError::V1BadAddress)
            }
        }
        Family::V6 => std::str::from_utf8(text)
            .ok()
            .and_then(|text| text.parse::<Ipv6Addr>().ok())
            .map(|ip| Some(IpAddr::V6(ip)))
            .ok_or(ParseError::V1BadAddress),
    }
}

/// A strict dotted quad: four decimal octets up to 255, without leading zeros. With `partial`,
/// `text` may stop anywhere, and `Ok(None)` says it can still become one.
fn ipv4(text: &[u8], partial: bool) -> Result<Option<Ipv4Addr>, ParseError> {
    let mut octets = [0u8; 4];
    let mut count = 0;
    let mut parts = text.split(|&b| b == b'.').peekable();
    while let Some(part) = parts.next() {
        let slot = octets.get_mut(count).ok_or(ParseError::V1BadAddress)?;
        count += 1;
        if part.is_empty() && partial && parts.peek().is_none() {
            break;
        }
        let octet = decimal(
            part,
            255,
            ParseError::V1BadAddress,
            ParseError::V1BadAddress,
        )?;
        *slot = octet as u8; // at most 255
    }
    match (partial, count) {
        (true, _) => Ok(None),
        (false, 4) => Ok(Some(Ipv4Addr::from(octets))),
        (false, _) => Err(ParseError::V1BadAddress),
    }
}

/// A port: decimal, no leading zero, at most 65535. Every check also holds for a prefix.
fn port(text: &[u8]) -> Result<u16, ParseError> {
    let value = decimal(
        text,
        u32::from(u16::MAX),
        ParseError::V1BadPort,
        ParseError::V1PortOutOfRange,
    )?;
    Ok(value as u16) // at most 65535
}

/// A non-empty decimal number without leading zero, at most `max`: `not_digits` if `text` is
/// empty or holds a non-digit, `too_big` past `max`.
fn decimal(
    text: &[u8],
    max: u32,
    not_digits: ParseError,
    too_big: ParseError,
) -> Result<u32, ParseError> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(not_digits);
    }
    if text.len() > 1 && text.first() == Some(&b'0') {
        return Err(ParseError::V1LeadingZero);
    }
    let mut value = 0u32;
    for &digit in text {
        value = value * 10 + u32::from(digit - b'0');
        if value > max {
            return Err(too_big);
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddrV4, SocketAddrV6};

    use super::super::{parse, Header};
    use super::*;

    fn complete(input: &[u8]) -> (ParsedHeader<'_>, usize) {
        match parse(input) {
            ParseOutcome::Complete { header, consumed } => (header, consumed),
            other => panic!("{:?}: {other:?}", input.escape_ascii().to_string()),
        }
    }

    fn invalid(input: &[u8]) -> ParseError {
        match parse(input) {
            ParseOutcome::Invalid(error) => error,
            other => panic!("{:?}: {other:?}", input.escape_ascii().to_string()),
        }
    }

    fn tcp(src: &str, dst: &str) -> Addresses {
        Addresses::Tcp {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
        }
    }

    fn v6_text(ip: &str) -> String {
        let ip: Ipv6Addr = ip.parse().unwrap();
        let header = Header::v1(
            SocketAddr::V6(SocketAddrV6::new(ip, 1, 0, 0)),
            "[2001:db8::1]:2".parse().unwrap(),
        );
        let line = std::str::from_utf8(header.as_bytes()).unwrap();
        line.split(' ').nth(2).unwrap().to_owned()
    }

    #[test]
    fn spec_example_before_http_request() {
        let input = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
        let (header, consumed) = complete(input);
        assert_eq!(consumed, 47);
        assert_eq!(&input[consumed..], b"GET / HTTP/1.1\r\n");
        assert_eq!(header.version, Version::V1);
        assert_eq!(header.command, Command::Proxy);
        assert_eq!(
            header.addresses,
            tcp("192.168.0.1:56324", "192.168.0.11:443")
        );
        assert_eq!(header.tlvs().count(), 0);
    }

    #[test]
    fn longest_tcp4_line_is_56_bytes() {
        let all = "255.255.255.255:65535".parse().unwrap();
        let header = Header::v1(all, all);
        let line = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
        assert_eq!(header.as_bytes(), line);
        assert_eq!(line.len(), 56);
        let (parsed, consumed) = complete(line);
        assert_eq!(consumed, 56);
        assert_eq!(parsed.addresses, Addresses::Tcp { src: all, dst: all });
    }

    #[test]
    fn longest_tcp6_line_is_104_bytes() {
        let ff = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
            .parse()
            .unwrap();
        let header = Header::v1(ff, ff);
        let ff_text = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let line = format!("PROXY TCP6 {ff_text} {ff_text} 65535 65535\r\n");
        assert_eq!(header.as_bytes(), line.as_bytes());
        assert_eq!(line.len(), 104);
        assert_eq!(
            complete(line.as_bytes()),
            (
                ParsedHeader {
                    version: Version::V1,
                    command: Command::Proxy,
                    addresses: Addresses::Tcp { src: ff, dst: ff },
                    tlvs: &[],
                },
                104
            )
        );
    }

    #[test]
    fn unknown_short_and_worst_case_lines() {
        assert_eq!(Header::v1_unknown().as_bytes(), b"PROXY UNKNOWN\r\n");
        let (header, consumed) = complete(b"PROXY UNKNOWN\r\nrest");
        assert_eq!((header.addresses, consumed), (Addresses::Unknown, 15));
        let ff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let worst = format!("PROXY UNKNOWN {ff} {ff} 65535 65535\r\n");
        assert_eq!(worst.len(), 107);
        assert_eq!(complete(worst.as_bytes()).1, 107);
        // Anything before the CRLF is ignored after UNKNOWN.
        assert_eq!(complete(b"PROXY UNKNOWN \xff garbage  \r\n").1, 27);
    }

    #[test]
    fn ipv6_text_is_rfc5952_with_hex_groups_only() {
        assert_eq!(v6_text("2001:db8:0:0:0:0:0:1"), "2001:db8::1");
        assert_eq!(v6_text("::"), "::");
        assert_eq!(v6_text("::1"), "::1");
        assert_eq!(v6_text("1::"), "1::");
        assert_eq!(v6_text("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        assert_eq!(v6_text("1:0:0:2:0:0:3:4"), "1::2:0:0:3:4");
        assert_eq!(v6_text("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
        assert_eq!(v6_text("::ffff:192.0.2.1"), "::ffff:c000:201");
        assert_eq!(
            v6_text("abcd:ef01:2345:6789:0:a:b:c"),
            "abcd:ef01:2345:6789:0:a:b:c"
        );
    }

    #[test]
    fn v4_mapped_pairs_become_tcp4_and_mixed_pairs_tcp6() {
        let mapped = "[::ffff:10.0.0.1]:1000".parse().unwrap();
        let v4 = "10.0.0.2:80".parse().unwrap();
        let v6 = "[2001:db8::2]:80".parse().unwrap();
        assert_eq!(
            Header::v1(mapped, v4).as_bytes(),
            b"PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\n"
        );
        assert_eq!(
            Header::v1(v4, v6).as_bytes(),
            b"PROXY TCP6 ::ffff:a00:2 2001:db8::2 80 80\r\n"
        );
        // The deprecated IPv4-compatible form is a true IPv6 address.
        let compatible = SocketAddr::V6(SocketAddrV6::new("::10.0.0.1".parse().unwrap(), 1, 0, 0));
        assert_eq!(
            Header::v1(compatible, compatible).as_bytes(),
            b"PROXY TCP6 ::a00:1 ::a00:1 1 1\r\n"
        );
    }

    #[test]
    fn tcp6_accepts_dotted_quad_tail_as_inet_ntop_writes_it() {
        let (header, _) = complete(b"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n");
        assert_eq!(header.addresses, tcp("[::ffff:1.2.3.4]:1", "[::1]:2"));
    }

    #[test]
    fn ports_and_octets_at_their_bounds() {
        let (header, _) = complete(b"PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n");
        let zero = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        assert_eq!(
            header.addresses,
            Addresses::Tcp {
                src: zero,
                dst: zero
            }
        );
    }

    #[test]
    fn each_error() {
        use ParseError::*;
        let cases: &[(&[u8], ParseError)] = &[
            (b"GET / HTTP/1.1\r\n", NotProxyProtocol),
            (b"PROXX", NotProxyProtocol),
            (b"PROXYTCP4", NotProxyProtocol),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", V1BadLineEnding),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", V1BadLineEnding),
            (b"PROXY UNKNOWN\rX", V1BadLineEnding),
            (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", V1BadProtocol),
            (b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", V1BadProtocol),
            (b"PROXY UNKNOWNX\r\n", V1BadProtocol),
            (b"PROXY \r\n", V1BadProtocol),
            (b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", V1BadSeparator),
            (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", V1BadSeparator),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", V1TrailingData),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", V1MissingField),
            (b"PROXY TCP4\r\n", V1MissingField),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", V1TrailingData),
            (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", V1BadAddress),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", V1BadAddress),
            (b"PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n", V1BadAddress),
            (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", V1BadAddress),
            (b"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", V1BadAddress),
            (b"PROXY TCP4 1.2..4 5.6.7.8 1 2\r\n", V1BadAddress),
            (b"PROXY TCP6 ::1%eth0 ::1 1 2\r\n", V1BadAddress),
            (b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", V1BadAddress),
            (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", V1LeadingZero),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", V1LeadingZero),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 8a 2\r\n", V1BadPort),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 +8 2\r\n", V1BadPort),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", V1PortOutOfRange),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999999999999999999\r\n",
                V1PortOutOfRange,
            ),
        ];
        for (input, error) in cases {
            assert_eq!(invalid(input), *error, "{}", input.escape_ascii());
        }
    }

    #[test]
    fn no_crlf_within_107_bytes_is_too_long() {
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(105, b'x');
        assert_eq!(parse(&line), ParseOutcome::Incomplete { needed: 2 });
        line.push(b'\r'); // CR at index 105: LF would be byte 107
        assert_eq!(parse(&line), ParseOutcome::Incomplete { needed: 1 });
        line.push(b'\n');
        assert_eq!(complete(&line).1, 107);
        line.truncate(106);
        line[105] = b'x';
        assert_eq!(invalid(&line), ParseError::TooLong);
        line.extend_from_slice(b"\r\n");
        assert_eq!(invalid(&line), ParseError::TooLong);
    }

    #[test]
    fn partial_lines_are_rejected_as_soon_as_they_are_wrong() {
        let incomplete: &[&[u8]] = &[
            b"",
            b"P",
            b"PROXY",
            b"PROXY ",
            b"PROXY TC",
            b"PROXY UNK",
            b"PROXY UNKNOWN",
            b"PROXY UNKNOWN whatever",
            b"PROXY TCP4",
            b"PROXY TCP4 ",
            b"PROXY TCP4 1.2.",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 0",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 6553",
            b"PROXY TCP6 2001:DB8::",
            b"PROXY TCP6 ::ffff:1.2.",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r",
        ];
        for input in incomplete {
            assert!(
                matches!(parse(input), ParseOutcome::Incomplete { .. }),
                "{}",
                input.escape_ascii()
            );
        }
        use ParseError::*;
        let invalid_now: &[(&[u8], ParseError)] = &[
            (b"X", NotProxyProtocol),
            (b"PX", NotProxyProtocol),
            (b"PROXY TCX", V1BadProtocol),
            (b"PROXY UNKNOWNX", V1BadProtocol),
            (b"PROXY  ", V1BadSeparator),
            (b"PROXY TCP4 256", V1BadAddress),
            (b"PROXY TCP4 1.2.3.4.", V1BadAddress),
            (b"PROXY TCP4 1..", V1BadAddress),
            (b"PROXY TCP4 00", V1LeadingZero),
            (b"PROXY TCP4 1.2.3.4 1.2.3 ", V1BadAddress),
            (b"PROXY TCP6 g", V1BadAddress),
            (b"PROXY TCP6 :::: ", V1BadAddress),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 01", V1LeadingZero),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536", V1PortOutOfRange),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", V1TrailingData),
        ];
        for (input, error) in invalid_now {
            assert_eq!(invalid(input), *error, "{}", input.escape_ascii());
        }
    }
}
