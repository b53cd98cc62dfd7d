//! Properties of the ClientHello parser (`crate::tls::parse`).
//!
//! Owns the checks of what SNI routing relies on: whatever a client sends, and however its
//! bytes are split into reads, the answer is the same; it settles once and for good; `needed`
//! is an honest lower bound that never leads past the 16 KiB cap; "not TLS" is exactly the plain
//! rule on the first three bytes; and a server name found is a lower-case DNS name the client
//! did send. The round trip builds hellos with [`super::hello_builder`] and checks the name
//! comes back. Never changes the parser's behaviour; it only calls it.

use super::{
    assert_printable_reason,
    hello_builder::{client_hello_message, in_records, server_name_extension},
    split::{schedule, Stream},
};
use crate::tls::{parse, HelloError, HelloOutcome, MAX_HELLO};

/// Every prefix this long or shorter is parsed; past it only the cuts of the read schedule are.
const EVERY_CUT: usize = 300;

/// What a connection's first bytes come to, as a worker sees it after its last read. Owned,
/// so answers over different buffers compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fed {
    /// A whole ClientHello and its server name, if any.
    Complete(Option<String>),
    /// Not TLS.
    NotTls,
    /// Refused, and why: the parser reads in order, so the reason does not depend on the split.
    Invalid(HelloError),
    /// The client stopped sending before the hello was complete.
    Closed,
}

impl Fed {
    fn of(outcome: HelloOutcome) -> Option<Self> {
        match outcome {
            HelloOutcome::Incomplete { .. } => None,
            HelloOutcome::Complete { sni } => Some(Self::Complete(sni.map(|n| n.to_string()))),
            HelloOutcome::NotTls => Some(Self::NotTls),
            HelloOutcome::Invalid(error) => Some(Self::Invalid(error)),
        }
    }
}

/// Fuzz entry point: `data` as the first bytes of a connection, split by [`schedule`].
pub fn tls_client_hello(data: &[u8]) {
    tls_client_hello_split(data, &schedule(data));
}

/// `data` as the first bytes of a connection, arriving in reads of `lengths` (see
/// [`super::split`]): checks the answer to the whole input, the answers to its prefixes, and
/// that the read loop ends the same way whether the bytes come split or in one read.
pub fn tls_client_hello_split(data: &[u8], lengths: &[usize]) {
    let whole = parse(data);
    check_outcome(data, whole);
    if let HelloOutcome::Complete { sni: Some(name) } = whole {
        let payload = handshake_payload(data);
        let found = payload
            .windows(name.as_str().len())
            .any(|w| w.eq_ignore_ascii_case(name.as_str().as_bytes()));
        assert!(found, "{name} is not in the handshake bytes");
    }
    check_prefixes(data, lengths);
    assert_eq!(
        feed(data, lengths),
        feed(data, &[]),
        "split {lengths:?} of {}",
        data.escape_ascii()
    );
}

/// The plain rule for "not TLS": the first byte is not 0x16 (handshake), or the second is not
/// 3, or the third is above 4.
fn not_tls_rule(input: &[u8]) -> bool {
    input.first().is_some_and(|&b| b != 0x16)
        || input.get(1).is_some_and(|&b| b != 3)
        || input.get(2).is_some_and(|&b| b > 4)
}

/// Checks one answer against the input it was given; cheap, so it runs for every prefix.
fn check_outcome(input: &[u8], outcome: HelloOutcome) {
    assert_eq!(
        outcome == HelloOutcome::NotTls,
        not_tls_rule(input),
        "{outcome:?} for {}",
        input.escape_ascii()
    );
    match outcome {
        HelloOutcome::Incomplete { needed } => {
            assert!(needed >= 1, "needed 0");
            assert!(
                input.len() + needed <= MAX_HELLO,
                "{} bytes in, {needed} more asked, past the cap",
                input.len()
            );
        }
        HelloOutcome::Complete { sni: Some(name) } => {
            let name = name.as_str();
            assert!(crate::tls::check_name(name.as_bytes()).is_ok(), "{name:?}");
            assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name:?}");
            // Record header, handshake header, the fixed fields, the extension headers.
            assert!(input.len() >= 5 + 4 + 41 + 2 + 4 + 2 + 3 + name.len());
        }
        HelloOutcome::Complete { sni: None } => assert!(input.len() >= 5 + 4 + 41),
        HelloOutcome::Invalid(why) => assert_printable_reason(&why.to_string(), 80),
        HelloOutcome::NotTls => {}
    }
}

/// The handshake bytes of the records at the start of `input`, put together (the payload of a
/// record cut short included), without checking the record headers.
fn handshake_payload(input: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    let mut rest = input;
    while let Some(([_, _, _, hi, lo], after)) = rest.split_first_chunk::<5>() {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(after.len());
        payload.extend_from_slice(&after[..len]);
        rest = &after[len..];
    }
    payload
}

/// Parses the prefixes of `data` (all up to [`EVERY_CUT`], then the cuts of `lengths`) and
/// checks the answers settle: `Incomplete` up to some length, then one answer for good, with
/// every `needed` along the way leading no further than where a `Complete` came.
fn check_prefixes(data: &[u8], lengths: &[usize]) {
    let cuts = super::split::cuts(data.len(), lengths, EVERY_CUT);
    let mut settled: Option<Fed> = None;
    let mut promised = 0;
    for cut in cuts {
        let prefix = &data[..cut];
        let outcome = parse(prefix);
        check_outcome(prefix, outcome);
        match (Fed::of(outcome), &settled) {
            (None, None) => {
                if let HelloOutcome::Incomplete { needed } = outcome {
                    promised = promised.max(cut + needed);
                }
            }
            (None, Some(before)) => panic!("Incomplete at {cut} after {before:?}"),
            (Some(now), None) => {
                if matches!(now, Fed::Complete(_)) {
                    assert!(promised <= cut, "asked for up to {promised}, done at {cut}");
                }
                settled = Some(now);
            }
            (Some(now), Some(before)) => assert_eq!(&now, before, "answer changed at {cut}"),
        }
    }
}

/// The read loop a worker would run: append each read to a [`MAX_HELLO`]-byte buffer, parse
/// everything after each one, stop at the first answer. The buffer never fills while the
/// answer is still `Incomplete` (the cap is part of the parser's contract). No `lengths` means
/// one read of everything.
fn feed(data: &[u8], lengths: &[usize]) -> Fed {
    let mut stream = Stream::new(data, lengths);
    let mut buf = Vec::with_capacity(MAX_HELLO);
    loop {
        assert!(buf.len() < MAX_HELLO, "buffer full, still Incomplete");
        let Some(read) = stream.read(MAX_HELLO - buf.len()) else {
            return Fed::Closed;
        };
        buf.extend_from_slice(read);
        if let Some(answer) = Fed::of(parse(&buf)) {
            return answer;
        }
    }
}

/// Characters the round trip's names are made of, upper case included; `%` (index 0xf0 and
/// up pick raw bytes instead) stands for anything else.
const NAME_ALPHABET: &[u8] = b"abcxyzABCXYZ0189-.";

/// Fuzz entry point: a hello built from `data`, see [`tls_sni_round_trip_of`]. Byte 0 is where
/// `server_name` goes among the other extensions, byte 1 the number of record sizes that
/// follow (mod 8), one byte each (size 1 + 2·b); then a length byte and the name, each byte
/// mapped to [`NAME_ALPHABET`] below 0xf0 and kept raw from 0xf0; then other extensions as
/// (type: 2 bytes, length: 1 byte, data).
pub fn tls_sni_round_trip(data: &[u8]) {
    let mut rest = data;
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        head
    };
    let at = take(1).first().copied().unwrap_or(0);
    let count = usize::from(take(1).first().copied().unwrap_or(0) % 8);
    let fragments: Vec<usize> = take(count)
        .iter()
        .map(|&b| 1 + 2 * usize::from(b))
        .collect();
    let name_len = usize::from(take(1).first().copied().unwrap_or(0));
    let name: Vec<u8> = take(name_len)
        .iter()
        .map(|&b| match b {
            0xf0.. => b,
            _ => NAME_ALPHABET[usize::from(b) % NAME_ALPHABET.len()],
        })
        .collect();
    let mut others = Vec::new();
    // Bounded so the extension block's 16-bit length never wraps.
    let mut total = 0;
    while let [hi, lo, len, after @ ..] = rest {
        if total > 20_000 {
            break;
        }
        let len = usize::from(*len).min(after.len());
        others.push((u16::from_be_bytes([*hi, *lo]), after[..len].to_vec()));
        total += 4 + len;
        rest = &after[len..];
    }
    let lengths = schedule(data);
    tls_sni_round_trip_of(&name, &others, usize::from(at), &fragments, &lengths);
}

/// A ClientHello whose `server_name` holds `name` (then a second, ignored host name), put at
/// index `at` (mod the count) among the `others` extensions (type 0 among them left out), cut
/// into records of `fragments`, read in `lengths`: the parser finds `name` lower-cased exactly
/// when the plain DNS-name rule accepts it, and refuses it as a bad server name otherwise; a
/// hello over the cap is too large; one byte short is `Incomplete`; bytes after it change
/// nothing.
pub fn tls_sni_round_trip_of(
    name: &[u8],
    others: &[(u16, Vec<u8>)],
    at: usize,
    fragments: &[usize],
    lengths: &[usize],
) {
    let mut extensions: Vec<(u16, Vec<u8>)> = others
        .iter()
        .filter(|(kind, _)| *kind != 0)
        .cloned()
        .collect();
    let sni = server_name_extension(&[(0, name), (0, b"second.example")]);
    extensions.insert(at % (extensions.len() + 1), (0, sni));
    let data = in_records(&client_hello_message(Some(&extensions)), fragments);
    let (fits, valid) = (data.len() <= MAX_HELLO, dns_name_rule(name));
    // The cap and the name are both checked where the parser meets them, so a bad name in an
    // early record of an oversized hello may be told first.
    let got = Fed::of(parse(&data));
    match &got {
        Some(Fed::Complete(Some(found))) if fits && valid => {
            assert_eq!(*found, String::from_utf8_lossy(name).to_ascii_lowercase());
        }
        Some(Fed::Invalid(HelloError::TooLarge)) if !fits => {}
        Some(Fed::Invalid(HelloError::BadServerName(_))) if !valid => {}
        other => panic!(
            "{other:?} for the name {} in {} bytes",
            name.escape_ascii(),
            data.len()
        ),
    }
    let mut longer = data.clone();
    longer.extend_from_slice(b"\x17\x03\x03\x00\x05early");
    assert_eq!(Fed::of(parse(&longer)), got);
    if fits && valid {
        let short = parse(&data[..data.len() - 1]);
        assert!(
            matches!(short, HelloOutcome::Incomplete { .. }),
            "{short:?}"
        );
    }
    tls_client_hello_split(&data, lengths);
}

/// The plain rule for a routable name, written apart from `crate::tls::check_name`: 1 to 253
/// bytes; dot-separated labels of 1 to 63 ASCII letters, digits or hyphens.
fn dns_name_rule(name: &[u8]) -> bool {
    (1..=253).contains(&name.len())
        && name.split(|&b| b == b'.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_hellos_round_trip() {
        let others = vec![(0xfe0d, vec![1; 40]), (43, vec![2, 3, 4]), (16, vec![])];
        for (name, at, fragments) in [
            (&b"Api.Example.com"[..], 0, &[][..]),
            (b"a.internal.example.com", 2, &[1, 1, 1, 7, 300]),
            (b"bad_name.com", 1, &[40]),
            (b"", 3, &[]),
        ] {
            tls_sni_round_trip_of(name, &others, at, fragments, &[1; 600]);
        }
        tls_sni_round_trip(b"");
        tls_sni_round_trip(&[0xff; 300]);
    }

    #[test]
    fn garbage_is_answered_the_same_however_split() {
        for input in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",
            b"\x16\x03\x01\x00\x00",
            b"\x80\x2e\x01\x03\x01",
        ] {
            tls_client_hello_split(input, &[]);
            tls_client_hello_split(input, &[1, 2, 3]);
        }
        assert_eq!(feed(b"\x16\x03\x01\x00", &[2]), Fed::Closed);
    }
}
