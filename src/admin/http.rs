//! Just enough HTTP/1.1 for the admin endpoints: one `GET` or `HEAD` per connection, answered
//! with a complete response and `Connection: close`.
//!
//! Owns reading a request head (parsed by `httparse`, at most [`MAX_HEAD`] bytes) and writing a
//! response. Never reads a request body, never keeps a connection alive, never panics on what a
//! client sends, never holds a buffer for a client that has sent nothing; the caller bounds the
//! head and the whole exchange with deadlines.

use std::io;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Most bytes of a request head; a longer one is answered 431.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Most headers parsed in a request head.
const MAX_HEADERS: usize = 32;

/// The request line of a parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// `GET`, `HEAD`, or whatever else the client sent.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
}

impl Request {
    /// A `HEAD` request: the answer carries no body.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Why no request could be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The client closed before sending a whole head: nothing to answer.
    #[error("closed before a complete request")]
    Closed,
    /// The head is not HTTP/1.x.
    #[error("malformed request: {0}")]
    Malformed(httparse::Error),
    /// The head is longer than [`MAX_HEAD`].
    #[error("request head larger than {MAX_HEAD} bytes")]
    TooLarge,
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads one request head from `stream`.
pub(super) async fn read_request(stream: &mut TcpStream) -> Result<Request, ReadError> {
    // The buffer is allocated once the first bytes are there: a connection that sends nothing
    // (an idle attacker's) holds none.
    stream.readable().await?;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Err(ReadError::TooLarge);
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        len += n;
        if let Some(request) = parse(&buf[..len])? {
            return Ok(request);
        }
    }
}

/// The request in `head`, `None` while it is incomplete.
pub(crate) fn parse(head: &[u8]) -> Result<Option<Request>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head).map_err(ReadError::Malformed)? {
        httparse::Status::Partial => Ok(None),
        httparse::Status::Complete(_) => {
            let target = request.path.unwrap_or("/");
            let path = target.split(['?', '#']).next().unwrap_or(target);
            Ok(Some(Request {
                method: request.method.unwrap_or("").to_owned(),
                path: path.to_owned(),
            }))
        }
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

const TEXT: &str = "text/plain; charset=utf-8";

impl Response {
    /// `200 OK` with `body` of type `content_type`.
    pub fn ok(content_type: &'static str, body: String) -> Self {
        Self {
            status: 200,
            content_type,
            body,
        }
    }

    /// A plain-text answer with status `status`.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: TEXT,
            body: body.to_owned(),
        }
    }

    /// The response head and, unless `head_only`, the body, as sent on the wire.
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let allow = if self.status == 405 {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}\
             Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
        );
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }

    /// Writes the response and shuts down writing, so the client sees the end at once.
    pub async fn send(&self, stream: &mut TcpStream, head_only: bool) -> io::Result<()> {
        stream.write_all(&self.to_bytes(head_only)).await?;
        stream.shutdown().await
    }
}

/// The reason phrase of the status codes the admin uses.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_without_their_query() {
        let request = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/metrics");
        assert!(parse(b"HEAD /healthz HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap()
            .is_head());
    }

    #[test]
    fn partial_and_malformed_heads_are_told_apart() {
        assert!(parse(b"GET /metrics HTTP/1.1\r\nHost:").unwrap().is_none());
        assert!(matches!(
            parse(b"GET /metrics SPDY/3\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            Err(ReadError::Malformed(_))
        ));
    }

    #[test]
    fn responses_carry_length_and_close() {
        let response = Response::text(503, "draining\n");
        let wire = String::from_utf8(response.to_bytes(false)).unwrap();
        assert!(
            wire.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{wire}"
        );
        assert!(wire.contains("\r\nContent-Length: 9\r\n"), "{wire}");
        assert!(wire.contains("\r\nConnection: close\r\n"), "{wire}");
        assert!(wire.ends_with("\r\n\r\ndraining\n"), "{wire}");
        let head = String::from_utf8(response.to_bytes(true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        let refused = String::from_utf8(Response::text(405, "").to_bytes(true)).unwrap();
        assert!(refused.contains("\r\nAllow: GET, HEAD\r\n"), "{refused}");
    }
}
