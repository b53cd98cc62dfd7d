//! One HTTP health probe: connect, send `GET <path>`, read the status line, under one deadline.
//!
//! Owns the wire format of the probe and the short failure reasons shown in logs and status.
//! Never reads more than [`MAX_STATUS_LINE`] bytes, never outlives its deadline and never panics
//! on whatever the peer sends.

use std::{io, net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::local_error;

/// Most bytes read while looking for the end of the status line.
pub const MAX_STATUS_LINE: usize = 4096;

/// Most bytes of a peer's answer quoted in a failure reason.
pub(crate) const QUOTE_LIMIT: usize = 48;

/// Why an endpoint failed a round. The `Display` text is the short reason used in logs and in
/// [`super::HealthStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeFailure {
    /// Nothing listens on the port.
    #[error("refused")]
    Refused,
    /// The deadline passed (connect, request and status line together).
    #[error("timeout")]
    Timeout,
    /// The peer reset or aborted the connection.
    #[error("reset")]
    Reset,
    /// The peer closed the connection without sending anything.
    #[error("closed without response")]
    Closed,
    /// The status line carried a status outside 2xx.
    #[error("status {0}")]
    Status(u16),
    /// The peer sent something that is not an HTTP/1.x status line (quoted, escaped, truncated).
    #[error("bad response: {0}")]
    BadResponse(String),
    /// Any other socket error, as the OS describes it.
    #[error("{0}")]
    Io(String),
    /// The target's name could not be resolved (error or deadline); the endpoints known from
    /// earlier rounds count a failure.
    #[error("resolve failed: {0}")]
    ResolveFailed(String),
    /// The target's name resolved, but to no address at all.
    #[error("no addresses")]
    NoAddresses,
    /// A worker's connect to this endpoint failed (passive health check).
    #[error("connect failed in traffic: {0}")]
    Passive(String),
    /// The configured host or path cannot be written into a request line.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A TCP check's reply did not begin with `health_check_expect`; the first line received
    /// (quoted, escaped, truncated).
    #[error("expect mismatch: got {0}")]
    ExpectMismatch(String),
    /// The probe could not run for a reason of this host, not of the endpoint: no descriptor,
    /// memory, buffer or local port (see [`crate::local_error`]); the OS's description. Says
    /// nothing about the endpoint, so it counts neither as a failure nor as a success.
    #[error("local error: {0}")]
    Local(String),
}

impl ProbeFailure {
    /// Whether this outcome is inconclusive because this host, not the endpoint, failed
    /// ([`ProbeFailure::Local`]).
    pub fn is_local(&self) -> bool {
        matches!(self, ProbeFailure::Local(_))
    }
}

/// The request bytes for `path` on `host` (as configured, `host:port`), sent as is to every
/// endpoint of the target.
pub(crate) fn build_request(host: &str, path: &str) -> Result<Vec<u8>, ProbeFailure> {
    let path = if path.is_empty() { "/" } else { path };
    let unsafe_text = |s: &str| s.bytes().any(|b| b.is_ascii_control() || b == b' ');
    if let Some(bad) = [host, path].into_iter().find(|s| unsafe_text(s)) {
        return Err(ProbeFailure::InvalidRequest(quote(bad.as_bytes())));
    }
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         User-Agent: ringlb-health\r\n\r\n"
    );
    Ok(request.into_bytes())
}

/// Probes `addr` with `request`; succeeds iff an `HTTP/1.x 2xx` status line arrives within
/// `timeout` (connect, write and read together).
pub(crate) async fn probe(
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<(), ProbeFailure> {
    match tokio::time::timeout(timeout, exchange(addr, request)).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err(ProbeFailure::Timeout),
    }
}

async fn exchange(addr: SocketAddr, request: &[u8]) -> Result<(), ProbeFailure> {
    let mut stream = TcpStream::connect(addr).await.map_err(classify)?;
    // Best effort: the request is one small write either way.
    let _ = stream.set_nodelay(true);
    stream.write_all(request).await.map_err(classify)?;
    let line = read_status_line(&mut stream).await?;
    check_status_line(&line)
}

/// Reads until the first `\n`, at most [`MAX_STATUS_LINE`] bytes; returns the line without its
/// line ending. Gives up as soon as the bytes cannot start an HTTP/1.x status line.
pub(crate) async fn read_status_line<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Vec<u8>, ProbeFailure> {
    let mut buf = vec![0u8; MAX_STATUS_LINE];
    let mut len = 0;
    loop {
        let Some(free) = buf.get_mut(len..).filter(|free| !free.is_empty()) else {
            return Err(ProbeFailure::BadResponse(format!(
                "no status line in the first {MAX_STATUS_LINE} bytes"
            )));
        };
        let n = reader.read(free).await.map_err(classify)?;
        let seen = &buf[..len + n];
        if n == 0 {
            return Err(match len {
                0 => ProbeFailure::Closed,
                _ => ProbeFailure::BadResponse(format!("truncated {}", quote(seen))),
            });
        }
        if let Some(end) = seen[len..].iter().position(|&b| b == b'\n') {
            let line = &seen[..len + end];
            return Ok(line.strip_suffix(b"\r").unwrap_or(line).to_vec());
        }
        if !could_start_status_line(seen) {
            return Err(ProbeFailure::BadResponse(quote(seen)));
        }
        len += n;
    }
}

/// Whether `bytes` may be the beginning of `HTTP/1.`.
fn could_start_status_line(bytes: &[u8]) -> bool {
    const PREFIX: &[u8] = b"HTTP/1.";
    let n = bytes.len().min(PREFIX.len());
    bytes[..n] == PREFIX[..n]
}

/// `Ok` for an `HTTP/1.x 2xx` status line, the reason otherwise.
pub(crate) fn check_status_line(line: &[u8]) -> Result<(), ProbeFailure> {
    match parse_status(line) {
        Some(code) if (200..300).contains(&code) => Ok(()),
        Some(code) => Err(ProbeFailure::Status(code)),
        None => Err(ProbeFailure::BadResponse(quote(line))),
    }
}

/// The status code of an `HTTP/1.x NNN[ reason]` line.
fn parse_status(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (minor, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b" ")?;
    if !minor.is_ascii_digit() || rest.len() < 3 {
        return None;
    }
    let (code, tail) = rest.split_at(3);
    if !code.iter().all(u8::is_ascii_digit) || !matches!(tail.first(), None | Some(b' ')) {
        return None;
    }
    Some(code.iter().fold(0, |acc, d| acc * 10 + u16::from(d - b'0')))
}

/// `bytes` as a short printable, quoted string: escaped, cut after [`QUOTE_LIMIT`] bytes.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(QUOTE_LIMIT)];
    let more = if bytes.len() > QUOTE_LIMIT { "..." } else { "" };
    format!("\"{}\"{more}", shown.escape_ascii())
}

/// The short reason for a socket error; a shortage of this host (a `socket()` that gets
/// `EMFILE`, a connect without a free local port) is [`ProbeFailure::Local`], whatever step of
/// the probe it hit.
pub(super) fn classify(error: io::Error) -> ProbeFailure {
    if local_error::is_local_io(&error) {
        return ProbeFailure::Local(error.to_string());
    }
    match error.kind() {
        io::ErrorKind::ConnectionRefused => ProbeFailure::Refused,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ProbeFailure::Reset,
        io::ErrorKind::TimedOut => ProbeFailure::Timeout,
        _ => ProbeFailure::Io(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_the_documented_shape() {
        let request = build_request("api.internal:8080", "/healthz").unwrap();
        assert_eq!(
            request,
            b"GET /healthz HTTP/1.1\r\nHost: api.internal:8080\r\nConnection: close\r\n\
              User-Agent: ringlb-health\r\n\r\n"
        );
        let root = build_request("[::1]:80", "").unwrap();
        assert!(root.starts_with(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n"));
    }

    #[test]
    fn request_refuses_header_injection() {
        let err = build_request("h:1", "/x\r\nEvil: 1").unwrap_err();
        assert!(matches!(err, ProbeFailure::InvalidRequest(_)), "{err}");
        assert!(build_request("h:1", "/a b").is_err());
    }

    #[test]
    fn status_lines_are_parsed_strictly() {
        assert_eq!(check_status_line(b"HTTP/1.1 200 OK"), Ok(()));
        assert_eq!(check_status_line(b"HTTP/1.0 204"), Ok(()));
        assert_eq!(check_status_line(b"HTTP/1.1 299 Whatever"), Ok(()));
        assert_eq!(
            check_status_line(b"HTTP/1.1 500 Oops"),
            Err(ProbeFailure::Status(500))
        );
        assert_eq!(
            check_status_line(b"HTTP/1.1 302 Found"),
            Err(ProbeFailure::Status(302))
        );
        for bad in [
            &b"HTTP/2 200"[..],
            b"HTTP/1.1 20",
            b"HTTP/1.1 2000",
            b"HTTP/1.x 200",
            b"http/1.1 200",
            b"",
        ] {
            assert!(
                matches!(check_status_line(bad), Err(ProbeFailure::BadResponse(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn quotes_are_printable_and_short() {
        assert_eq!(quote(b"SSH-2.0\r\n\x00"), "\"SSH-2.0\\r\\n\\x00\"");
        let long = quote(&[b'A'; 1000]);
        assert!(long.ends_with("\"..."), "{long}");
        assert!(long.len() < QUOTE_LIMIT + 8, "{long}");
    }

    #[tokio::test]
    async fn status_line_reader_stops_early() {
        let mut ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(read_status_line(&mut ok).await.unwrap(), b"HTTP/1.1 200 OK");

        let mut garbage: &[u8] = b"SSH-2.0-OpenSSH_9.6";
        let err = read_status_line(&mut garbage).await.unwrap_err();
        assert_eq!(err.to_string(), "bad response: \"SSH-2.0-OpenSSH_9.6\"");

        let huge = [b"HTTP/1.1 200 ".as_slice(), &[b'x'; 10_000]].concat();
        let err = read_status_line(&mut huge.as_slice()).await.unwrap_err();
        assert!(err.to_string().contains("no status line"), "{err}");

        let mut empty: &[u8] = b"";
        assert_eq!(
            read_status_line(&mut empty).await,
            Err(ProbeFailure::Closed)
        );
        let mut cut: &[u8] = b"HTTP/1.1 2";
        let err = read_status_line(&mut cut).await.unwrap_err();
        assert!(
            err.to_string().starts_with("bad response: truncated"),
            "{err}"
        );
    }

    #[test]
    fn socket_errors_get_short_reasons() {
        let kind = |k| classify(io::Error::from(k)).to_string();
        assert_eq!(kind(io::ErrorKind::ConnectionRefused), "refused");
        assert_eq!(kind(io::ErrorKind::ConnectionReset), "reset");
        assert_eq!(kind(io::ErrorKind::BrokenPipe), "reset");
        assert_eq!(kind(io::ErrorKind::TimedOut), "timeout");
    }

    #[test]
    fn shortages_of_this_host_are_local_with_their_real_cause() {
        let errno = |e| classify(io::Error::from_raw_os_error(e));
        let emfile = errno(libc::EMFILE);
        assert!(emfile.is_local(), "{emfile:?}");
        assert_eq!(
            emfile.to_string(),
            "local error: Too many open files (os error 24)"
        );
        assert!(errno(libc::EADDRNOTAVAIL).is_local());
        assert!(errno(libc::ENOBUFS).is_local());
        assert_eq!(errno(libc::ECONNREFUSED), ProbeFailure::Refused);
        assert!(!errno(libc::EHOSTUNREACH).is_local());
    }
}
