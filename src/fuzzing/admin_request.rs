//! Properties of the admin listener's request reader (`crate::admin::http::parse`).
//!
//! Owns the checks of what the admin endpoints rely on: a request (head and body) from anyone
//! who can reach the admin port, in reads of any size, gives the same request (or the same
//! refusal), within [`MAX_HEAD`] bytes, with a routable path, a method that is an HTTP token and
//! a body of at most [`MAX_BODY`] bytes. Never changes the reader; it only calls it.

use super::split::{schedule, Stream};
use crate::admin::http::{parse, ReadError, MAX_BODY, MAX_HEAD};

/// How reading one request head ends, owned so answers over different buffers compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Read {
    /// A whole request: its method and path (without query), credentials and body.
    Request {
        method: String,
        path: String,
        authorization: Option<Vec<u8>>,
        body: Vec<u8>,
    },
    /// Not HTTP/1.x; answered 400.
    Malformed(httparse::Error),
    /// A `Content-Length` above [`MAX_BODY`]; answered 413.
    BodyTooLarge,
    /// A body the admin does not read (chunked, a bad length); answered 400.
    Unframed(&'static str),
    /// No end of head within [`MAX_HEAD`] bytes; answered 431.
    TooLarge,
    /// The client closed first; not answered.
    Closed,
}

/// Fuzz entry point: `data` as what a client sends to the admin port, split by [`schedule`].
pub fn admin_request(data: &[u8]) {
    admin_request_split(data, &schedule(data));
}

/// `data` sent to the admin port in reads of `lengths`: checks the answer to the whole input,
/// and that the read loop ends the same way whether the bytes come split or in one read.
pub fn admin_request_split(data: &[u8], lengths: &[usize]) {
    check(data, answer(data));
    let split = read(data, lengths);
    assert_eq!(
        split,
        read(data, &[]),
        "split {lengths:?} of {}",
        data.escape_ascii()
    );
    if let Read::Request { .. } = split {
        // The answer came within the first MAX_HEAD bytes, from a prefix that holds the head.
        let seen = &data[..data.len().min(MAX_HEAD)];
        assert!(
            seen.windows(2).any(|w| w == b"\n\n") || seen.windows(3).any(|w| w == b"\n\r\n"),
            "a request without the end of its head: {}",
            seen.escape_ascii()
        );
    }
}

/// `parse`'s answer, owned; `None` while the head is incomplete.
fn answer(head: &[u8]) -> Option<Read> {
    match parse(head) {
        Ok(None) => None,
        Ok(Some(request)) => Some(Read::Request {
            method: request.method,
            path: request.path,
            authorization: request.authorization.map(|c| c.0),
            body: request.body,
        }),
        Err(ReadError::Malformed(error)) => Some(Read::Malformed(error)),
        Err(ReadError::BodyTooLarge) => Some(Read::BodyTooLarge),
        Err(ReadError::Unframed(why)) => Some(Read::Unframed(why)),
        Err(other) => panic!("parse answered {other}, which only the socket loop may"),
    }
}

/// Invariants of one answer.
fn check(head: &[u8], answer: Option<Read>) {
    let Some(Read::Request {
        method, path, body, ..
    }) = answer
    else {
        return;
    };
    assert!(body.len() <= MAX_BODY, "a body of {} bytes", body.len());
    assert!(!method.is_empty(), "empty method");
    assert!(
        method.bytes().all(is_token_byte),
        "method {method:?} is not a token"
    );
    assert!(!path.contains(['?', '#']), "path {path:?} keeps its query");
    // The path is the start of the request target, the second field of the request line.
    let line_start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    let line = &head[line_start..];
    let target = line.split(|&b| b == b' ').nth(1).unwrap_or_default();
    assert!(
        target.starts_with(path.as_bytes()),
        "path {path:?} is not the start of {}",
        target.escape_ascii()
    );
}

/// An RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The admin's read loop (`admin::http::read_request`): append each read to a [`MAX_HEAD`]-byte
/// buffer, parse everything after each one, stop at the first answer.
fn read(data: &[u8], lengths: &[usize]) -> Read {
    let mut stream = Stream::new(data, lengths);
    let mut buf = Vec::with_capacity(MAX_HEAD);
    loop {
        if buf.len() == MAX_HEAD {
            return Read::TooLarge;
        }
        let Some(bytes) = stream.read(MAX_HEAD - buf.len()) else {
            return Read::Closed;
        };
        buf.extend_from_slice(bytes);
        if let Some(answer) = answer(&buf) {
            return answer;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_requests_pass() {
        let get = b"GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\r\n";
        assert_eq!(
            read(get, &[1; 100]),
            Read::Request {
                method: "GET".into(),
                path: "/metrics".into(),
                authorization: None,
                body: Vec::new(),
            }
        );
        admin_request(get);
        admin_request(b"HEAD /healthz HTTP/1.0\r\n\r\n");
        let post = b"POST /targets/a:80/state HTTP/1.1\r\nAuthorization: Bearer x\r\n\
                     Content-Length: 5\r\n\r\ndrain";
        assert!(matches!(read(post, &[1; 200]), Read::Request { body, .. } if body == b"drain"));
        admin_request(post);
        admin_request(b"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n");
        admin_request(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
        assert_eq!(read(b"GET / HTTP/1.1\r\n", &[3]), Read::Closed);
        assert_eq!(read(&[b'a'; MAX_HEAD + 1], &[]), Read::TooLarge);
    }
}
