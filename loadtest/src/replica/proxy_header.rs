//! A PROXY protocol header at the start of a replica connection, skipped: with `send_proxy` on,
//! ringlb begins every connection (health checks included) with one.
//!
//! Owns only recognising where a v1 line or a v2 header ends. Never validates the addresses
//! (the replica does not use them) and never reads past what it must: the bytes after the
//! header stay in the buffer for the HTTP parser.

use std::io;

use tokio::{io::AsyncReadExt, net::TcpStream};

/// The start of a v1 header.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The start of a v2 header.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included.
const V1_MAX: usize = 107;

/// Where a header at the start of `buf` stands.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Not a header: the bytes are the client's.
    None,
    /// May be a header: read more.
    Partial,
    /// A header of this many bytes.
    Header(usize),
}

fn find(buf: &[u8]) -> Found {
    let prefix_of = |magic: &[u8]| buf.len() < magic.len() && magic.starts_with(buf);
    if buf.is_empty() || prefix_of(V1_PREFIX) || prefix_of(V2_SIGNATURE) {
        return Found::Partial;
    }
    if buf.starts_with(V1_PREFIX) {
        return match buf.windows(2).position(|w| w == b"\r\n") {
            Some(end) if end + 2 <= V1_MAX => Found::Header(end + 2),
            None if buf.len() < V1_MAX => Found::Partial,
            _ => Found::None,
        };
    }
    if buf.starts_with(V2_SIGNATURE) {
        return match buf.get(14..16) {
            Some(len) => {
                let total = 16 + usize::from(u16::from_be_bytes([len[0], len[1]]));
                if buf.len() >= total {
                    Found::Header(total)
                } else {
                    Found::Partial
                }
            }
            None => Found::Partial,
        };
    }
    Found::None
}

/// Reads the start of the connection into `buf` and drops a PROXY header there, if any;
/// `false` when the client closed before anything but (part of) a header arrived.
pub(super) async fn skip(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        match find(buf) {
            Found::None => return Ok(true),
            Found::Header(len) => {
                buf.drain(..len);
                return Ok(true);
            }
            Found::Partial => {
                buf.reserve(4096);
                if stream.read_buf(buf).await? == 0 {
                    return Ok(false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_and_requests_left_alone() {
        assert_eq!(find(b""), Found::Partial);
        assert_eq!(find(b"GET / HTTP/1.1\r\n"), Found::None);
        assert_eq!(find(b"PRO"), Found::Partial);
        assert_eq!(find(b"PROXY TCP4 1.2.3.4"), Found::Partial);
        let v1 = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET /";
        assert_eq!(find(v1), Found::Header(v1.len() - 5));
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0, 12]);
        assert_eq!(find(&v2), Found::Partial);
        v2.extend_from_slice(&[0; 12]);
        v2.extend_from_slice(b"GET /");
        assert_eq!(find(&v2), Found::Header(28));
        assert_eq!(find(&v2[..5]), Found::Partial);
    }
}
