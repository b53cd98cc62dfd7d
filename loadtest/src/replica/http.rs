//! The replica's side of HTTP/1.1: parsing a request head and writing a response.
//!
//! Owns the wire format only: no routing, no I/O. Bodies must be framed by `Content-Length`;
//! chunked request bodies are refused (the load generator never sends them).

use std::fmt::Write as _;

/// The most headers a request may carry.
const MAX_HEADERS: usize = 32;

/// A parsed request head, owning what the replica needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Request target without the query string, e.g. `/spells`.
    pub path: String,
    /// Bytes taken by the head, including the blank line.
    pub len: usize,
    /// Length of the body that follows (0 without `Content-Length`).
    pub content_length: usize,
    /// The client asked to close after this request (`Connection: close` or HTTP/1.0).
    pub close: bool,
}

/// What [`parse`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A complete head.
    Head(Head),
    /// Not HTTP/1.x we can serve; the reason goes into the 400 response.
    Bad(&'static str),
}

/// Parses the request head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Bad("malformed request"),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Parsed::Bad("malformed request");
    };
    let mut head = Head {
        method: method.to_owned(),
        path: target.split('?').next().unwrap_or(target).to_owned(),
        len,
        content_length: 0,
        close: version == 0,
    };
    for header in req.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) => head.content_length = n,
                Err(_) => return Parsed::Bad("bad Content-Length"),
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Bad("chunked request bodies are not supported");
        } else if header.name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        }
    }
    Parsed::Head(head)
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    /// Status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: &'a [u8],
    /// An `Allow` header value, for 405 responses.
    pub allow: Option<&'static str>,
    /// Close the connection after this response.
    pub close: bool,
}

impl<'a> Response<'a> {
    /// A plain-text response.
    pub fn text(status: u16, body: &'a str) -> Response<'a> {
        Response {
            status,
            content_type: "text/plain",
            body: body.as_bytes(),
            allow: None,
            close: false,
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: &'a [u8]) -> Response<'a> {
        Response {
            status,
            content_type: "application/json",
            body,
            allow: None,
            close: false,
        }
    }

    /// Appends the head and body to `out`; `replica` names the server in `X-Replica`.
    pub fn write_to(&self, replica: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(&head_bytes(
            self.status,
            self.content_type,
            self.body.len(),
            replica,
            self.allow,
            self.close,
        ));
        out.extend_from_slice(self.body);
    }
}

/// The bytes of a response head announcing a `len`-byte body.
pub fn head_bytes(
    status: u16,
    content_type: &str,
    len: usize,
    replica: &str,
    allow: Option<&str>,
    close: bool,
) -> Vec<u8> {
    let mut head = String::with_capacity(160);
    let _ = write!(
        head,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         X-Replica: {replica}\r\n",
        reason(status)
    );
    if let Some(allow) = allow {
        let _ = write!(head, "Allow: {allow}\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_get_with_keep_alive() {
        let Parsed::Head(head) = parse(b"GET /spells?x=1 HTTP/1.1\r\nHost: a\r\n\r\nGET") else {
            panic!("not parsed");
        };
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/spells");
        assert_eq!(head.len, 37);
        assert!(!head.close);
    }

    #[test]
    fn parses_content_length_and_close() {
        let req = b"POST /spells HTTP/1.1\r\nContent-Length: 12\r\nConnection: close\r\n\r\n";
        let Parsed::Head(head) = parse(req) else {
            panic!("not parsed");
        };
        assert_eq!(head.content_length, 12);
        assert!(head.close);
    }

    #[test]
    fn partial_and_bad_requests_are_told_apart() {
        assert_eq!(parse(b"GET /spells HTTP/1.1\r\nHo"), Parsed::Partial);
        assert!(matches!(
            parse(b"\x00\x01 nonsense\r\n\r\n"),
            Parsed::Bad(_)
        ));
        let chunked = b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(parse(chunked), Parsed::Bad(_)));
    }

    #[test]
    fn writes_a_framed_response() {
        let mut out = Vec::new();
        Response::text(200, "ok\n").write_to("r0", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.contains("X-Replica: r0\r\n"));
        assert!(text.ends_with("\r\n\r\nok\n"));
    }
}
