//! One replica connection: read requests, answer them in order, stream `/echo` bodies back.
//!
//! Owns the per-connection buffers and the keep-alive / pipelining loop. Never buffers an
//! `/echo` body whole and never answers while the replica is paused.

use std::{io, sync::atomic::Ordering, sync::Arc};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{
    http::{self, Head, Parsed, Response},
    proxy_header, routes, State,
};

/// The largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Read size, and the chunk size of `/echo`.
const CHUNK: usize = 64 * 1024;

/// Serves one connection until the client closes it, an error occurs or the replica stops.
pub(super) async fn serve(mut stream: TcpStream, state: Arc<State>) {
    state.open.fetch_add(1, Ordering::Relaxed);
    let _open = Open(&state);
    let mut stopped = state.stopped.subscribe();
    tokio::select! {
        _ = serve_requests(&mut stream, &state) => {}
        () = super::until_stopped(&mut stopped) => {}
    }
}

/// Counts the connection out of `open` when it ends, however it ends.
struct Open<'a>(&'a State);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_requests(stream: &mut TcpStream, state: &State) -> io::Result<()> {
    let mut paused = state.paused.subscribe();
    let mut buf = Vec::with_capacity(CHUNK);
    let mut out = Vec::with_capacity(CHUNK);
    if !proxy_header::skip(stream, &mut buf).await? {
        return Ok(());
    }
    loop {
        let head = match http::parse(&buf) {
            Parsed::Partial if buf.len() > MAX_HEAD => {
                return refuse(stream, out, 400, state).await
            }
            Parsed::Partial => {
                flush(stream, &mut out).await?;
                if read_more(stream, &mut buf).await? == 0 {
                    return Ok(());
                }
                continue;
            }
            Parsed::Bad(_) => return refuse(stream, out, 400, state).await,
            Parsed::Head(head) => head,
        };
        if routes::body_too_large(&head) {
            return refuse(stream, out, 413, state).await;
        }
        let end = head.len + head.content_length;
        if !routes::is_echo(&head) && buf.len() < end {
            flush(stream, &mut out).await?;
            if read_more(stream, &mut buf).await? == 0 {
                return Ok(());
            }
            continue;
        }
        let is_paused = *paused.borrow();
        if is_paused {
            flush(stream, &mut out).await?;
            let _ = paused.wait_for(|p| !*p).await;
        }
        if routes::is_echo(&head) {
            flush(stream, &mut out).await?;
            echo(stream, &mut buf, &head, &state.name).await?;
        } else {
            let reply = routes::route(&head, &buf[head.len..end], state);
            let response = Response {
                status: reply.status,
                content_type: reply.content_type,
                body: reply.body.as_ref(),
                allow: reply.allow,
                close: head.close,
            };
            response.write_to(&state.name, &mut out);
            buf.drain(..end);
        }
        state.served.fetch_add(1, Ordering::Relaxed);
        if head.close {
            flush(stream, &mut out).await?;
            return stream.shutdown().await;
        }
    }
}

/// Streams the `/echo` body back as it arrives: the response head first, then every chunk.
async fn echo(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head: &Head,
    name: &str,
) -> io::Result<()> {
    let len = head.content_length;
    let response_head =
        http::head_bytes(200, "application/octet-stream", len, name, None, head.close);
    stream.write_all(&response_head).await?;
    let buffered = (buf.len() - head.len).min(len);
    stream
        .write_all(&buf[head.len..head.len + buffered])
        .await?;
    buf.drain(..head.len + buffered);
    let mut remaining = len - buffered;
    let mut chunk = vec![0u8; CHUNK];
    while remaining > 0 {
        let want = remaining.min(CHUNK);
        let n = stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        stream.write_all(&chunk[..n]).await?;
        remaining -= n;
    }
    Ok(())
}

/// Answers `status`, closes the connection, and ends the loop.
async fn refuse(
    stream: &mut TcpStream,
    mut out: Vec<u8>,
    status: u16,
    state: &State,
) -> io::Result<()> {
    let mut response = Response::text(status, "request refused\n");
    response.close = true;
    response.write_to(&state.name, &mut out);
    state.served.fetch_add(1, Ordering::Relaxed);
    flush(stream, &mut out).await?;
    stream.shutdown().await
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.reserve(CHUNK);
    stream.read_buf(buf).await
}

async fn flush(stream: &mut TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        stream.write_all(out).await?;
        out.clear();
    }
    Ok(())
}
