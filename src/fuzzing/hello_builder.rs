//! ClientHello bytes built by hand: the handshake message with chosen extensions, a
//! `server_name` extension with chosen entries, and the message cut into records of chosen
//! sizes. For the round-trip property, the unit tests of `crate::tls` and the proptests.
//!
//! Owns nothing of the parser: it writes the wire format from RFC 8446 (section 4.1.2) and
//! RFC 6066 (section 3) directly, so a parser bug is not copied into the inputs.

/// Longest record payload (2^14).
const MAX_RECORD: usize = 1 << 14;

/// A TLS 1.3-style ClientHello handshake message (type, 24-bit length, body): version 3.3, a
/// fixed random, a 32-byte session id, four cipher suites, null compression, then
/// `extensions` as (type, data) in that order, or no extension block at all for `None`.
pub fn client_hello_message(extensions: Option<&[(u16, Vec<u8>)]>) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend((0..32u8).map(|i| i.wrapping_mul(37)));
    body.push(32);
    body.extend([0x5a; 32]);
    body.extend([0, 8, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2f]);
    body.extend([1, 0]);
    if let Some(extensions) = extensions {
        let mut block = Vec::new();
        for (kind, data) in extensions {
            block.extend(kind.to_be_bytes());
            block.extend(u16_len(data.len()));
            block.extend(data);
        }
        body.extend(u16_len(block.len()));
        body.extend(block);
    }
    let mut message = vec![1];
    message.extend(&(body.len() as u32).to_be_bytes()[1..]);
    message.extend(body);
    message
}

/// The data of a `server_name` extension listing `names` as (name type, name) in that order;
/// type 0 is `host_name`.
pub fn server_name_extension(names: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (kind, name) in names {
        list.push(*kind);
        list.extend(u16_len(name.len()));
        list.extend(*name);
    }
    let mut data = u16_len(list.len()).to_vec();
    data.extend(list);
    data
}

/// `message` in handshake records (version 3.1, as clients send) whose payloads have the
/// sizes of `fragments` (each clamped to 1..=2^14); what is left after them goes in records of
/// at most 2^14 bytes.
pub fn in_records(message: &[u8], fragments: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5 * (fragments.len() + 1));
    let mut rest = message;
    let mut sizes = fragments.iter().map(|&len| len.clamp(1, MAX_RECORD));
    while !rest.is_empty() {
        let len = sizes.next().unwrap_or(MAX_RECORD).min(rest.len());
        let (payload, after) = rest.split_at(len);
        out.extend([0x16, 3, 1]);
        out.extend(u16_len(len));
        out.extend(payload);
        rest = after;
    }
    out
}

/// A length as the two bytes that announce it (truncated, for the lengths the callers choose).
fn u16_len(len: usize) -> [u8; 2] {
    (len as u16).to_be_bytes()
}
