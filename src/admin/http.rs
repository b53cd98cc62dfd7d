//! Just enough HTTP/1.1 for the admin endpoints: one request per connection (a `GET` or `HEAD`,
//! or a runtime API `POST`/`PUT` with a body of a few bytes), answered with a complete response
//! and `Connection: close`.
//!
//! Owns reading a request (its head parsed by `httparse`, head and body together at most
//! [`MAX_HEAD`] bytes, the body at most [`MAX_BODY`] and only by `Content-Length`) and writing a
//! response. Never keeps a connection alive, never panics on what a client sends, never holds a
//! buffer for a client that has sent nothing, never shows the `Authorization` header (it is kept
//! as [`Credentials`], which print redacted); the caller bounds the request and the whole
//! exchange with deadlines.

use std::io;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Most bytes of a request head; a longer one is answered 431.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Most headers parsed in a request head.
const MAX_HEADERS: usize = 32;
/// Most bytes of a request body: the runtime API's values are a word or a number.
pub(crate) const MAX_BODY: usize = 64;

/// What the admin reads of a request: its request line, its credentials and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// `GET`, `HEAD`, or whatever else the client sent.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string, without its `?` (empty without one); not decoded.
    pub query: String,
    /// The `Authorization` header's value, if one was sent.
    pub authorization: Option<Credentials>,
    /// The body (`Content-Length` bytes, at most [`MAX_BODY`]); empty without one.
    pub body: Vec<u8>,
}

/// An `Authorization` header's value: compared, never printed (`Debug` shows `<redacted>`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials(pub Vec<u8>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
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
    /// The head (with the body) is longer than [`MAX_HEAD`].
    #[error("request head larger than {MAX_HEAD} bytes")]
    TooLarge,
    /// `Content-Length` says more than [`MAX_BODY`].
    #[error("request body larger than {MAX_BODY} bytes")]
    BodyTooLarge,
    /// The body is not framed as the admin reads one (a chunked body, an unreadable or
    /// repeated `Content-Length`), or `Authorization` comes twice.
    #[error("{0}")]
    Unframed(&'static str),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads one request (head and body) from `stream`.
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

/// The request in `bytes` (its head, then its body), `None` while it is incomplete.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<Request>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(bytes).map_err(ReadError::Malformed)? {
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(len) => len,
    };
    let (length, authorization) = framing(request.headers)?;
    let Some(body) = bytes[head_len..].get(..length) else {
        return Ok(None);
    };
    let target = request.path.unwrap_or("/");
    let target = target.split('#').next().unwrap_or(target);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Some(Request {
        method: request.method.unwrap_or("").to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        authorization,
        body: body.to_vec(),
    }))
}

/// The body's length (0 without `Content-Length`) and the credentials, from the headers.
fn framing(headers: &[httparse::Header<'_>]) -> Result<(usize, Option<Credentials>), ReadError> {
    let mut length = None;
    let mut authorization = None;
    for header in headers {
        let name = header.name;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadError::Unframed(
                "a chunked body is not accepted; send Content-Length",
            ));
        } else if name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value).ok().map(str::trim);
            let parsed = value
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .map(|v| v.parse::<usize>().unwrap_or(usize::MAX));
            match (parsed, length) {
                (None, _) => return Err(ReadError::Unframed("Content-Length is not a number")),
                (Some(n), Some(seen)) if n != seen => {
                    return Err(ReadError::Unframed(
                        "Content-Length given twice, differently",
                    ))
                }
                (Some(n), _) => length = Some(n),
            }
        } else if name.eq_ignore_ascii_case("authorization") {
            if authorization.is_some() {
                return Err(ReadError::Unframed("Authorization given twice"));
            }
            authorization = Some(Credentials(header.value.to_vec()));
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY {
        return Err(ReadError::BodyTooLarge);
    }
    Ok((length, authorization))
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
    /// Headers of its own (`Allow`, `WWW-Authenticate`); a 405 without `Allow` says
    /// `GET, HEAD`.
    pub headers: Vec<(&'static str, &'static str)>,
}

const TEXT: &str = "text/plain; charset=utf-8";

impl Response {
    /// `200 OK` with `body` of type `content_type`.
    pub fn ok(content_type: &'static str, body: String) -> Self {
        Self {
            status: 200,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    /// A plain-text answer with status `status`.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: TEXT,
            body: body.to_owned(),
            headers: Vec::new(),
        }
    }

    /// The same response with the header `name: value` as well.
    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The response head and, unless `head_only`, the body, as sent on the wire.
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut extra = String::new();
        let has_allow = self.headers.iter().any(|(name, _)| *name == "Allow");
        if self.status == 405 && !has_allow {
            extra.push_str("Allow: GET, HEAD\r\n");
        }
        for (name, value) in &self.headers {
            extra.push_str(&format!("{name}: {value}\r\n"));
        }
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{extra}\
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
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
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
        assert_eq!(request.query, "x=1");
        let request = parse(b"POST /targets/a:80/state?pool=web#x HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (request.path.as_str(), request.query.as_str()),
            ("/targets/a:80/state", "pool=web")
        );
        assert!(parse(b"HEAD /healthz HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap()
            .is_head());
    }

    #[test]
    fn bodies_are_read_by_content_length_and_bounded() {
        let post = b"POST /targets/a:80/state HTTP/1.1\r\nAuthorization: Bearer t0k\r\n\
                     Content-Length: 5\r\n\r\ndrain";
        for cut in 0..post.len() {
            assert!(parse(&post[..cut]).unwrap().is_none(), "{cut} bytes");
        }
        let request = parse(post).unwrap().unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.body, b"drain");
        assert_eq!(
            request.authorization,
            Some(Credentials(b"Bearer t0k".to_vec()))
        );
        assert!(!format!("{request:?}").contains("t0k"), "{request:?}");
        let pipelined = [&post[..], b"GET / HTTP/1.1\r\n\r\n"].concat();
        assert_eq!(parse(&pipelined).unwrap().unwrap().body, b"drain");
        let get = parse(b"GET /status HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert!(get.body.is_empty() && get.authorization.is_none());

        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(
            parse(big.as_bytes()),
            Err(ReadError::BodyTooLarge)
        ));
        let huge = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert!(matches!(
            parse(huge.as_bytes()),
            Err(ReadError::BodyTooLarge)
        ));
        for unframed in [
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "POST / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
        ] {
            assert!(
                matches!(parse(unframed.as_bytes()), Err(ReadError::Unframed(_))),
                "{unframed:?}"
            );
        }
        let twice = "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(parse(twice.as_bytes()).unwrap().unwrap().body, b"x");
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
        let mutating = Response::text(405, "").with_header("Allow", "POST, PUT");
        let mutating = String::from_utf8(mutating.to_bytes(true)).unwrap();
        assert!(mutating.contains("\r\nAllow: POST, PUT\r\n"), "{mutating}");
        assert!(!mutating.contains("GET"), "{mutating}");
    }
}
