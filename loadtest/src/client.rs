//! The load generator's HTTP/1.1 client: one keep-alive connection, one request at a time.
//!
//! Owns connecting, writing a prebuilt request and reading exactly one response (status line,
//! `Content-Length` body, or a body up to EOF on `Connection: close`). Never retries and never
//! decides what a failure means for the measurement: it returns an [`ErrorKind`] and the caller
//! counts it. Non-2xx statuses are returned as errors.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::outcome::ErrorKind;

/// Read size and bulk chunk size.
const CHUNK: usize = 64 * 1024;
/// The most headers a response may carry.
const MAX_HEADERS: usize = 32;

/// `GET /spells` on a keep-alive connection.
pub const GET_SPELLS: &[u8] = b"GET /spells HTTP/1.1\r\nHost: loadtest\r\n\r\n";
/// `GET /spells`, asking the server to close afterwards.
pub const GET_SPELLS_CLOSE: &[u8] =
    b"GET /spells HTTP/1.1\r\nHost: loadtest\r\nConnection: close\r\n\r\n";

/// What a successful (2xx) response looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Body bytes read.
    pub body_len: u64,
    /// The server will close the connection (it said `Connection: close`).
    pub close: bool,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy)]
struct ResponseHead {
    status: u16,
    len: usize,
    content_length: Option<u64>,
    close: bool,
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `addr` within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, ErrorKind> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(ErrorKind::ConnectTimeout),
            Ok(Err(e)) => return Err(ErrorKind::from_io(&e)),
            Ok(Ok(stream)) => stream,
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(CHUNK),
        })
    }

    /// Sends `request` (a complete request without a body) and reads the response.
    pub async fn request(&mut self, request: &[u8]) -> Result<Reply, ErrorKind> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| ErrorKind::from_io(&e))?;
        let head = self.read_head().await?;
        let body_len = self.read_body(&head, None).await?;
        finish(head, body_len)
    }

    /// Sends `POST /echo` with a `len`-byte body while reading the echo back, adding every
    /// echoed byte to `echoed` as it arrives.
    pub async fn echo(&mut self, len: u64, echoed: &AtomicU64) -> Result<Reply, ErrorKind> {
        let request =
            format!("POST /echo HTTP/1.1\r\nHost: loadtest\r\nContent-Length: {len}\r\n\r\n");
        let Conn { stream, buf } = self;
        let (mut reader, mut writer) = stream.split();
        let send = async {
            writer.write_all(request.as_bytes()).await?;
            let chunk = vec![0x5a_u8; CHUNK];
            let mut left = len;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                writer.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
            Ok(())
        };
        let receive = async {
            let head = read_head(&mut reader, buf).await?;
            let body_len = read_body(&mut reader, buf, &head, Some(echoed)).await?;
            Ok::<_, ErrorKind>((head, body_len))
        };
        let send = async {
            send.await
                .map_err(|e: std::io::Error| ErrorKind::from_io(&e))
        };
        let ((), (head, body_len)) = tokio::try_join!(send, receive)?;
        finish(head, body_len)
    }

    /// Half-closes and waits for the server's EOF (so that `TIME_WAIT` stays on its side).
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
        let mut sink = [0u8; 1024];
        while let Ok(n) = self.stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    }

    async fn read_head(&mut self) -> Result<ResponseHead, ErrorKind> {
        read_head(&mut self.stream, &mut self.buf).await
    }

    async fn read_body(
        &mut self,
        head: &ResponseHead,
        echoed: Option<&AtomicU64>,
    ) -> Result<u64, ErrorKind> {
        read_body(&mut self.stream, &mut self.buf, head, echoed).await
    }
}

/// Turns a complete response into the caller's result: 2xx is a [`Reply`], the rest an error.
fn finish(head: ResponseHead, body_len: u64) -> Result<Reply, ErrorKind> {
    if (200..300).contains(&head.status) {
        Ok(Reply {
            status: head.status,
            body_len,
            close: head.close,
        })
    } else {
        Err(ErrorKind::from_status(head.status))
    }
}

/// Reads until `buf` starts with a complete response head; consumes the head from `buf`.
async fn read_head<R: AsyncReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> Result<ResponseHead, ErrorKind> {
    loop {
        if let Some(head) = parse_head(buf)? {
            buf.drain(..head.len);
            return Ok(head);
        }
        if buf.len() > CHUNK {
            return Err(ErrorKind::Protocol);
        }
        buf.reserve(CHUNK);
        match reader.read_buf(buf).await {
            Ok(0) => return Err(ErrorKind::Closed),
            Ok(_) => {}
            Err(e) => return Err(ErrorKind::from_io(&e)),
        }
    }
}

/// Reads (and discards) the body announced by `head`; leaves any following bytes in `buf`.
async fn read_body<R: AsyncReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    head: &ResponseHead,
    echoed: Option<&AtomicU64>,
) -> Result<u64, ErrorKind> {
    let until_eof = head.content_length.is_none() && head.close;
    let mut left = head
        .content_length
        .unwrap_or(if until_eof { u64::MAX } else { 0 });
    let mut read = 0;
    loop {
        let taken = (buf.len() as u64).min(left) as usize;
        buf.drain(..taken);
        left -= taken as u64;
        read += taken as u64;
        if let Some(counter) = echoed {
            counter.fetch_add(taken as u64, Ordering::Relaxed);
        }
        if left == 0 {
            return Ok(read);
        }
        buf.reserve(CHUNK);
        match reader.read_buf(buf).await {
            Ok(0) if until_eof => return Ok(read),
            Ok(0) => return Err(ErrorKind::Closed),
            Ok(_) => {}
            Err(e) => return Err(ErrorKind::from_io(&e)),
        }
    }
}

/// Parses a response head at the start of `buf`: `Ok(None)` when incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, ErrorKind> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ErrorKind::Protocol),
    };
    let status = response.code.ok_or(ErrorKind::Protocol)?;
    let mut head = ResponseHead {
        status,
        len,
        content_length: None,
        close: response.version == Some(0),
    };
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| ErrorKind::Protocol)?
            .trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(value.parse().map_err(|_| ErrorKind::Protocol)?);
        } else if header.name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // The replicas never chunk; a chunked body means we are not talking to them.
            return Err(ErrorKind::Protocol);
        }
    }
    Ok(Some(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_complete_head() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length, Some(5));
        assert_eq!(head.len, 38);
        assert!(!head.close);
    }

    #[test]
    fn incomplete_and_garbage_heads() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
            .unwrap()
            .is_none());
        assert_eq!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").unwrap_err(),
            ErrorKind::Protocol
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(chunked).unwrap_err(), ErrorKind::Protocol);
    }

    #[test]
    fn non_2xx_is_an_error() {
        let head = parse_head(b"HTTP/1.1 503 Nope\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(finish(head, 0).unwrap_err(), ErrorKind::Status5xx);
    }
}
