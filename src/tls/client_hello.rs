//! The ClientHello a TLS client sends first (RFC 8446, section 4.1.2; RFC 5246, section
//! 7.4.1.2), read far enough to check its structure and find its `server_name` (RFC 6066,
//! section 3).
//!
//! Owns walking the message: fixed fields, the extension list, the server name list. Never
//! looks into other extensions (ECH, key shares, ALPN are skipped by length), never keeps state
//! between calls, never allocates.

use super::{
    name::{ServerName, MAX_NAME_LEN},
    records::{Handshake, Stop},
    HelloError, HelloOutcome,
};

/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
/// Length of the handshake message header: type and 24-bit length.
const MESSAGE_HEADER_LEN: usize = 4;
/// Length of `Random`.
const RANDOM_LEN: usize = 32;
/// Longest legacy session id.
const MAX_SESSION_ID: usize = 32;
/// Extension type of `server_name`.
const SERVER_NAME: usize = 0;
/// `NameType` of a DNS host name in a server name list.
const HOST_NAME: u8 = 0;

/// Parses the start of a connection that should begin with a TLS ClientHello.
///
/// `input` is every byte received so far; see the [module docs](super) for the contract.
pub fn parse(input: &[u8]) -> HelloOutcome {
    let mut hs = Handshake::new(input, MESSAGE_HEADER_LEN);
    match client_hello(&mut hs) {
        Ok(sni) => HelloOutcome::Complete { sni },
        Err(Stop::Short { needed }) => HelloOutcome::Incomplete { needed },
        Err(Stop::NotTls) => HelloOutcome::NotTls,
        Err(Stop::Invalid(error)) => HelloOutcome::Invalid(error),
    }
}

/// The whole message: header, fixed fields, then the extensions if any bytes are left.
fn client_hello(hs: &mut Handshake<'_>) -> Result<Option<ServerName>, Stop> {
    if hs.byte()? != CLIENT_HELLO {
        return Err(HelloError::NotClientHello.into());
    }
    let end = MESSAGE_HEADER_LEN + hs.u24()?;
    hs.want(end)?;
    if hs.u16()? >> 8 != 3 {
        return Err(HelloError::BadVersion.into());
    }
    hs.skip(RANDOM_LEN)?;
    let session_id = usize::from(hs.byte()?);
    if session_id > MAX_SESSION_ID {
        return Err(HelloError::BadSessionId.into());
    }
    hs.skip(session_id)?;
    let suites = hs.u16()?;
    if suites < 2 || suites % 2 != 0 {
        return Err(HelloError::BadCipherSuites.into());
    }
    hs.skip(suites)?;
    let compression = usize::from(hs.byte()?);
    if compression == 0 {
        return Err(HelloError::BadCompressionMethods.into());
    }
    hs.skip(compression)?;
    // A hello of TLS 1.0 to 1.2 may end here: no extensions at all.
    if hs.read() == end {
        return Ok(None);
    }
    let extensions = hs.u16()?;
    if hs.read() + extensions != end {
        return Err(HelloError::BadExtensionsLength.into());
    }
    server_name_of(hs, end)
}

/// Walks the extensions up to `end`, each checked to fit; returns the first host name of the
/// one `server_name` extension.
fn server_name_of(hs: &mut Handshake<'_>, end: usize) -> Result<Option<ServerName>, Stop> {
    let mut sni = None;
    let mut seen = false;
    while hs.read() < end {
        let kind = hs.u16()?;
        let len = hs.u16()?;
        let ext_end = hs.read() + len;
        if ext_end > end {
            return Err(HelloError::BadExtensionLength.into());
        }
        if kind != SERVER_NAME {
            hs.skip(len)?;
            continue;
        }
        // Two extensions of one type are forbidden (RFC 8446, section 4.2), and two names
        // would be two routes.
        if seen {
            return Err(HelloError::DuplicateServerName.into());
        }
        seen = true;
        sni = server_name_list(hs, ext_end)?;
    }
    Ok(sni)
}

/// The server name list filling the extension up to `ext_end`: the first `host_name`, checked;
/// entries of other name types are skipped by their length, as every deployed parser does.
fn server_name_list(hs: &mut Handshake<'_>, ext_end: usize) -> Result<Option<ServerName>, Stop> {
    if hs.read() == ext_end {
        return Err(HelloError::BadServerNameList.into());
    }
    let list = hs.u16()?;
    if list == 0 || hs.read() + list != ext_end {
        return Err(HelloError::BadServerNameList.into());
    }
    let mut first = None;
    while hs.read() < ext_end {
        let name_type = hs.byte()?;
        let len = hs.u16()?;
        if hs.read() + len > ext_end {
            return Err(HelloError::BadServerNameList.into());
        }
        if name_type == HOST_NAME && first.is_none() {
            first = Some(host_name(hs, len)?);
        } else {
            hs.skip(len)?;
        }
    }
    Ok(first)
}

/// A host name of `len` bytes, copied out of the records, checked and lower-cased.
fn host_name(hs: &mut Handshake<'_>, len: usize) -> Result<ServerName, Stop> {
    let mut buf = [0; MAX_NAME_LEN];
    let Some(name) = buf.get_mut(..len) else {
        return Err(HelloError::BadServerName(super::NameError::TooLong).into());
    };
    hs.copy(name)?;
    ServerName::new(name).map_err(|why| HelloError::BadServerName(why).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        fuzzing::{client_hello_message, in_records, server_name_extension},
        tls::{NameError, MAX_HELLO},
    };

    /// Captured from `openssl s_client -servername Api.Example.COM` (OpenSSL 3.0, TLS 1.3).
    const OPENSSL_TLS13: &[u8] =
        include_bytes!("../../fuzz/corpus/tls_client_hello/openssl-tls13-sni");
    /// The same, with `-tls1_2 -servername www.example.org`.
    const OPENSSL_TLS12: &[u8] =
        include_bytes!("../../fuzz/corpus/tls_client_hello/openssl-tls12-sni");
    /// The same, with `-noservername`.
    const OPENSSL_NO_SNI: &[u8] =
        include_bytes!("../../fuzz/corpus/tls_client_hello/openssl-no-sni");

    fn sni(input: &[u8]) -> Option<String> {
        match parse(input) {
            HelloOutcome::Complete { sni } => sni.map(|name| name.to_string()),
            other => panic!("{other:?}"),
        }
    }

    fn hello(extensions: &[(u16, Vec<u8>)], fragments: &[usize]) -> Vec<u8> {
        in_records(&client_hello_message(Some(extensions)), fragments)
    }

    fn with_name(name: &[u8]) -> Vec<u8> {
        hello(&[(0, server_name_extension(&[(0, name)]))], &[])
    }

    #[test]
    fn openssl_hellos_give_their_names() {
        assert_eq!(sni(OPENSSL_TLS13).as_deref(), Some("api.example.com"));
        assert_eq!(sni(OPENSSL_TLS12).as_deref(), Some("www.example.org"));
        assert_eq!(sni(OPENSSL_NO_SNI), None);
    }

    #[test]
    fn every_prefix_is_incomplete_and_split_records_read_the_same() {
        for cut in 0..OPENSSL_TLS13.len() {
            let outcome = parse(&OPENSSL_TLS13[..cut]);
            let HelloOutcome::Incomplete { needed } = outcome else {
                panic!("{outcome:?} at {cut}");
            };
            assert!(
                cut + needed <= OPENSSL_TLS13.len(),
                "needed {needed} at {cut}"
            );
        }
        // The message alone, in records of every size from 1 byte.
        let message = &OPENSSL_TLS13[5..];
        for size in [1, 2, 3, 5, 64, 100] {
            let split = in_records(message, &vec![size; message.len()]);
            assert_eq!(sni(&split).as_deref(), Some("api.example.com"), "{size}");
        }
        // Bytes after the hello (a CCS, early data) are not looked at.
        let mut more = OPENSSL_TLS13.to_vec();
        more.extend_from_slice(b"\x14\x03\x03\x00\x01\x01garbage");
        assert_eq!(sni(&more).as_deref(), Some("api.example.com"));
    }

    #[test]
    fn other_protocols_are_not_tls() {
        for input in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"\x80\x2e\x01\x03\x01",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"\x16\x02",
            b"\x16\x03\x05",
            b"\x17\x03\x03\x00\x10",
        ] {
            assert_eq!(parse(input), HelloOutcome::NotTls, "{input:?}");
        }
        assert_eq!(parse(b""), HelloOutcome::Incomplete { needed: 9 });
        assert_eq!(parse(b"\x16\x03"), HelloOutcome::Incomplete { needed: 7 });
    }

    #[test]
    fn names_and_server_name_lists() {
        assert_eq!(sni(&hello(&[], &[])), None);
        assert_eq!(sni(&in_records(&client_hello_message(None), &[])), None);
        let list = server_name_extension(&[(7, b"opaque"), (0, b"First.Example"), (0, b"b.c")]);
        let others = [(0xfe0d, vec![9; 200]), (16, b"\x00\x03\x02h2".to_vec())];
        let extensions = [others[0].clone(), (0, list), others[1].clone()];
        assert_eq!(
            sni(&hello(&extensions, &[3, 90, 7])).as_deref(),
            Some("first.example")
        );
        let only_other_types = server_name_extension(&[(1, b"x")]);
        assert_eq!(sni(&hello(&[(0, only_other_types)], &[])), None);
        let bad = |error| HelloOutcome::Invalid(HelloError::BadServerName(error));
        assert_eq!(parse(&with_name(b"a_b.com")), bad(NameError::BadCharacter));
        assert_eq!(parse(&with_name(b"")), bad(NameError::Empty));
        assert_eq!(parse(&with_name(&[b'a'; 254])), bad(NameError::TooLong));
        let twice = vec![(0, server_name_extension(&[(0, b"a")])); 2];
        let duplicate = HelloOutcome::Invalid(HelloError::DuplicateServerName);
        assert_eq!(parse(&hello(&twice, &[])), duplicate);
        let empty_list = HelloOutcome::Invalid(HelloError::BadServerNameList);
        assert_eq!(parse(&hello(&[(0, vec![])], &[])), empty_list);
        assert_eq!(parse(&hello(&[(0, vec![0, 0])], &[])), empty_list);
    }

    #[test]
    fn malformed_hellos_are_invalid() {
        let good = with_name(b"example.com");
        let invalid = |at: usize, byte: u8| {
            let mut bytes = good.clone();
            bytes[at] = byte;
            match parse(&bytes) {
                HelloOutcome::Invalid(error) => error,
                other => panic!("{other:?} with {byte:#x} at {at}"),
            }
        };
        assert_eq!(invalid(5, 2), HelloError::NotClientHello);
        assert_eq!(invalid(9, 2), HelloError::BadVersion);
        assert_eq!(invalid(43, 33), HelloError::BadSessionId);
        assert_eq!(invalid(77, 7), HelloError::BadCipherSuites);
        assert_eq!(invalid(86, 0), HelloError::BadCompressionMethods);
        assert_eq!(invalid(88, 0xff), HelloError::BadExtensionsLength);
        assert_eq!(invalid(92, 0xff), HelloError::BadExtensionLength);
        // The record ends a byte before the message, and the next record is not handshake.
        let mut cut_short = good[..good.len() - 1].to_vec();
        cut_short[4] -= 1;
        cut_short.extend_from_slice(b"\x17\x03\x03\x00\x01\x00");
        let interleaved = HelloOutcome::Invalid(HelloError::NotHandshakeRecord);
        assert_eq!(parse(&cut_short), interleaved);
        // A 10-byte message cannot hold its random.
        let mut tiny = good.clone();
        tiny[6..9].copy_from_slice(&[0, 0, 10]);
        assert_eq!(parse(&tiny), HelloOutcome::Invalid(HelloError::Overrun));
    }

    #[test]
    fn the_cap_counts_record_headers() {
        // Padded by an extension so the hello, in one record, is exactly MAX_HELLO bytes.
        let base = hello(&[(21, vec![])], &[]).len();
        let padded = |extra: usize| hello(&[(21, vec![0; extra])], &[]);
        let exact = padded(MAX_HELLO - base);
        assert_eq!(exact.len(), MAX_HELLO);
        assert_eq!(sni(&exact), None);
        let over = padded(MAX_HELLO - base + 1);
        assert_eq!(over.len(), MAX_HELLO + 1);
        // Told from the message header already.
        assert_eq!(
            parse(&over[..9]),
            HelloOutcome::Invalid(HelloError::TooLarge)
        );
        // The same message in 1-byte records: the cap is reached at a record header.
        let message = &client_hello_message(Some(&[(21, vec![0; 3000])]));
        let tiny = in_records(message, &vec![1; message.len()]);
        assert_eq!(parse(&tiny), HelloOutcome::Invalid(HelloError::TooLarge));
    }
}
