//! Moving bytes on the epoll backend: both directions of a connection, each a loop of "wait
//! until readable, read into a buffer, write all of it", with half-close and the idle timeout.
//!
//! Buffers come from a per-worker pool and are held only between a read and the end of its
//! write, so idle connections hold no buffer and steady traffic allocates nothing once the pool
//! has grown (the io_uring worker keeps the same promise). Never blocks the thread, never loses,
//! reorders or copies a byte twice.

use std::{
    cell::{Cell, RefCell},
    io,
    net::Shutdown,
    ops::{Deref, DerefMut},
    time::Duration,
};

use socket2::SockRef;
use tokio::{net::TcpStream, time::Instant};

/// Bytes one read moves at most: large enough that a bulk transfer costs few system calls.
const BUFFER_SIZE: usize = 64 * 1024;
/// Idle buffers kept for reuse (16 MiB); beyond this they are freed.
const MAX_IDLE: usize = 256;

/// One worker's pool of relay buffers. Not shared between threads.
pub(super) struct Buffers {
    idle: RefCell<Vec<Box<[u8]>>>,
}

impl Buffers {
    pub(super) fn new() -> Buffers {
        Buffers {
            idle: RefCell::new(Vec::new()),
        }
    }

    /// A buffer of [`BUFFER_SIZE`] bytes, reused when one is idle; it returns on drop.
    fn take(&self) -> Buffer<'_> {
        let bytes = self
            .idle
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0; BUFFER_SIZE].into_boxed_slice());
        Buffer { bytes, pool: self }
    }
}

/// A borrowed buffer. Its old contents never matter: only what the last read put in it is
/// written.
struct Buffer<'a> {
    bytes: Box<[u8]>,
    pool: &'a Buffers,
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        let mut idle = self.pool.idle.borrow_mut();
        if idle.len() < MAX_IDLE {
            idle.push(std::mem::take(&mut self.bytes));
        }
    }
}

impl Deref for Buffer<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl DerefMut for Buffer<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
}

/// Relays both ways until each side has sent its EOF and it was passed on (`Ok`), a socket
/// fails, or no byte moved either way for `idle` (`TimedOut`). The caller closes both sockets.
pub(super) async fn relay(
    buffers: &Buffers,
    client: &TcpStream,
    server: &TcpStream,
    idle: Duration,
) -> io::Result<()> {
    let active = Cell::new(Instant::now());
    let both = async {
        tokio::try_join!(
            pump(buffers, client, server, &active),
            pump(buffers, server, client, &active),
        )
    };
    let mut both = std::pin::pin!(both);
    loop {
        // Wakes at most once per `idle` while bytes flow: the deadline moves with the activity.
        let deadline = active.get() + idle;
        tokio::select! {
            done = &mut both => return done.map(|_| ()),
            () = tokio::time::sleep_until(deadline) => {
                if active.get() + idle <= Instant::now() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
        }
    }
}

/// One direction: everything `src` sends is written to `dst`; `src`'s EOF becomes a `SHUT_WR`
/// on `dst` once every byte before it was written.
async fn pump(
    buffers: &Buffers,
    src: &TcpStream,
    dst: &TcpStream,
    active: &Cell<Instant>,
) -> io::Result<()> {
    loop {
        src.readable().await?;
        let mut buf = buffers.take();
        let n = match src.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        active.set(Instant::now());
        write_all(dst, &buf[..n], active).await?;
    }
    SockRef::from(dst).shutdown(Shutdown::Write)
}

/// Writes all of `bytes`, waiting for room as needed; each partial write counts as activity.
async fn write_all(dst: &TcpStream, mut bytes: &[u8], active: &Cell<Instant>) -> io::Result<()> {
    while !bytes.is_empty() {
        dst.writable().await?;
        match dst.try_write(bytes) {
            Ok(n) => {
                bytes = &bytes[n..];
                active.set(Instant::now());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads and drops whatever `stream` sends until its EOF or an error.
pub(super) async fn discard(buffers: &Buffers, stream: &TcpStream) {
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.try_read(&mut buffers.take()) {
            Ok(0) => return,
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    #[test]
    fn buffers_are_reused() {
        let pool = Buffers::new();
        drop(pool.take());
        assert_eq!(pool.idle.borrow().len(), 1);
        let held = pool.take();
        assert_eq!(held.len(), BUFFER_SIZE);
        assert!(pool.idle.borrow().is_empty());
    }

    /// A connected pair of loopback sockets.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap());
        let (near, far) = tokio::join!(near, listener.accept());
        (near.unwrap(), far.unwrap().0)
    }

    #[tokio::test]
    async fn each_eof_is_passed_on_after_the_bytes_before_it() {
        let (mut client, proxy_client) = pair().await;
        let (proxy_server, mut server) = pair().await;
        let pool = Buffers::new();
        let relay = relay(&pool, &proxy_client, &proxy_server, Duration::from_secs(5));
        let ends = async {
            client.write_all(b"request").await.unwrap();
            client.shutdown().await.unwrap();
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"request", "upstream bytes, then the client's EOF");
            // The other direction still flows after the first EOF.
            server.write_all(b"response").await.unwrap();
            server.shutdown().await.unwrap();
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"response");
        };
        let (relayed, ()) = tokio::join!(relay, ends);
        relayed.unwrap();
        let idle = pool.idle.borrow().len();
        assert!((1..=2).contains(&idle), "{idle} buffers back in the pool");
    }

    #[tokio::test]
    async fn a_silent_connection_times_out() {
        let (_client, proxy_client) = pair().await;
        let (proxy_server, _server) = pair().await;
        let pool = Buffers::new();
        let idle = Duration::from_millis(50);
        let err = relay(&pool, &proxy_client, &proxy_server, idle)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
