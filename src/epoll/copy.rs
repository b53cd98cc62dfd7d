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
    ops::{Deref, DerefMut},
    pin::Pin,
    task::Poll,
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWriteExt, Interest, ReadBuf},
    net::{
        tcp::{ReadHalf, WriteHalf},
        TcpStream,
    },
    time::Instant,
};

use crate::{
    backend::Backend,
    conn::{
        ending::{Close, Ending, Linger, LingerStep, Side, LINGER_POLL},
        fin,
    },
    stats::{DOWNSTREAM, UPSTREAM},
    uring::sys,
};

/// Bytes one relay read moves at most: large enough that a bulk transfer costs few system
/// calls.
pub(super) const BUFFER_SIZE: usize = 64 * 1024;
/// Idle buffers a pool keeps for reuse (16 MiB of relay buffers); beyond this they are freed.
const MAX_IDLE: usize = 256;

/// One worker's pool of equally sized buffers. Not shared between threads.
pub(super) struct Buffers {
    idle: RefCell<Vec<Box<[u8]>>>,
    size: usize,
}

impl Buffers {
    /// A pool of `size`-byte buffers.
    pub(super) fn new(size: usize) -> Buffers {
        Buffers {
            idle: RefCell::new(Vec::new()),
            size,
        }
    }

    /// A buffer of `len` bytes, reused when an idle one has that length (the replay pool's
    /// size changes when a reload changes `replay_buffer`); it returns on drop.
    pub(super) fn take_len(&self, len: usize) -> Buffer<'_> {
        let reused = self.idle.borrow_mut().pop().filter(|b| b.len() == len);
        let bytes = reused.unwrap_or_else(|| vec![0; len].into_boxed_slice());
        Buffer {
            bytes,
            pool: self,
            grown: false,
        }
    }

    /// A buffer of the pool's size, reused when one is idle; it returns on drop.
    pub(super) fn take(&self) -> Buffer<'_> {
        self.take_len(self.size)
    }

    /// Keeps `bytes` for reuse, unless the pool holds enough idle buffers already.
    fn give_back(&self, bytes: Box<[u8]>) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < MAX_IDLE {
            idle.push(bytes);
        }
    }
}

/// A borrowed buffer. Its old contents never matter: only what the last read put in it is
/// written.
pub(super) struct Buffer<'a> {
    bytes: Box<[u8]>,
    pool: &'a Buffers,
    /// Grown past the pool's size ([`Buffer::grow`]): freed on drop, not kept.
    grown: bool,
}

impl Buffer<'_> {
    /// Grows the buffer to `len` bytes, keeping what it holds. The pool's buffer goes back to
    /// the pool at once; the grown one is freed on drop, so a rare large ClientHello does not
    /// leave its memory in the pool.
    pub(super) fn grow(&mut self, len: usize) {
        if len <= self.bytes.len() {
            return;
        }
        let mut grown = vec![0; len].into_boxed_slice();
        grown[..self.bytes.len()].copy_from_slice(&self.bytes);
        let pooled = std::mem::replace(&mut self.bytes, grown);
        if !std::mem::replace(&mut self.grown, true) {
            self.pool.give_back(pooled);
        }
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        if !self.grown {
            self.pool.give_back(std::mem::take(&mut self.bytes));
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

/// Where the bytes a connection relays are counted: its backend's counters, on this worker's
/// shard, and the connection's own (for its access-log line).
#[derive(Clone, Copy)]
pub(super) struct Delivered<'a> {
    /// The connection's backend.
    pub(super) backend: &'a Backend,
    /// This worker's index.
    pub(super) worker: usize,
    /// The connection's bytes per direction.
    pub(super) bytes: &'a Cell<[u64; 2]>,
}

impl Delivered<'_> {
    pub(super) fn add(self, dir: usize, bytes: usize) {
        let mut moved = [0; 2];
        moved[dir] = bytes as u64;
        self.backend.bytes_moved(self.worker, moved);
        let mut total = self.bytes.get();
        total[dir] += bytes as u64;
        self.bytes.set(total);
    }
}

/// Relays both ways until both directions are over ([`crate::conn::ending`]): each side's EOF
/// passed on, or a socket failed and what the other direction held was delivered. Returns how
/// to close; `TimedOut` when no byte moved either way for `idle`. The caller closes both
/// sockets.
pub(super) async fn relay(
    buffers: &Buffers,
    client: &mut TcpStream,
    server: &mut TcpStream,
    idle: Duration,
    count: Delivered<'_>,
) -> io::Result<Close> {
    let active = Cell::new(Instant::now());
    let ending = Cell::new(Ending::default());
    let (client_rd, client_wr) = client.split();
    let (server_rd, server_wr) = server.split();
    let shared = (&active, &ending);
    let up = pump(buffers, client_rd, server_wr, shared, (count, UPSTREAM));
    let down = pump(buffers, server_rd, client_wr, shared, (count, DOWNSTREAM));
    let (mut up, mut down) = (std::pin::pin!(up), std::pin::pin!(down));
    let mut running = [true; 2];
    loop {
        if let Some(close) = ending.get().close() {
            // A stopped direction's pump is dropped here, with the bytes it held.
            return Ok(close);
        }
        // Wakes at most once per `idle` while bytes flow: the deadline moves with the activity.
        let deadline = active.get() + idle;
        let now = ending.get();
        tokio::select! {
            () = &mut up, if running[UPSTREAM] && !now.over(UPSTREAM) => running[UPSTREAM] = false,
            () = &mut down, if running[DOWNSTREAM] && !now.over(DOWNSTREAM) => {
                running[DOWNSTREAM] = false;
            }
            () = tokio::time::sleep_until(deadline) => {
                if active.get() + idle <= Instant::now() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
        }
    }
}

/// One direction: everything `src` sends is written to `dst`; `src`'s EOF becomes a `SHUT_WR`
/// on `dst` once every byte before it was written (unless `src` failed: then the other side is
/// reset later). Written bytes are counted as direction `dir`; how the direction ended goes
/// into `ending`.
async fn pump(
    buffers: &Buffers,
    mut src: ReadHalf<'_>,
    mut dst: WriteHalf<'_>,
    (active, ending): (&Cell<Instant>, &Cell<Ending>),
    (count, dir): (Delivered<'_>, usize),
) {
    let fail = |side: Side, e: io::Error| {
        let mut now = ending.get();
        now.fail(side, e.raw_os_error().unwrap_or(libc::EIO));
        ending.set(now);
    };
    loop {
        // `ready` does not count against tokio's cooperative budget, while a read refused
        // for want of budget looks like "nothing there": without this the loop would spin.
        tokio::task::consume_budget().await;
        let ready = match src.ready(Interest::READABLE).await {
            Ok(ready) => ready,
            Err(e) => {
                fail(Side::src(dir), e);
                break;
            }
        };
        let mut buf = buffers.take();
        let n = match read_ready(&mut src, &mut buf).await {
            Ok(Some(0)) => break,
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                // Everything read before the error was written: the direction ends.
                fail(Side::src(dir), e);
                break;
            }
        };
        active.set(Instant::now());
        let mut sent = 0;
        if fin::follows(n, buf.len(), ready.is_read_closed()) {
            match send_before_fin(&dst, &buf[..n]) {
                Ok(written) => {
                    sent = written;
                    count.add(dir, written);
                }
                Err(e) => return fail(Side::dst(dir), e),
            }
        }
        while sent < n {
            match dst.write(&buf[sent..n]).await {
                Ok(0) => return fail(Side::dst(dir), io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    sent += written;
                    count.add(dir, written);
                }
                Err(e) => return fail(Side::dst(dir), e),
            }
            active.set(Instant::now());
        }
    }
    if !ending.get().src_failed(dir) {
        if let Err(e) = dst.shutdown().await {
            return fail(Side::dst(dir), e);
        }
    }
    let mut now = ending.get();
    now.end(dir);
    ending.set(now);
}

/// Sends what `dst` has room for now of `bytes`, the last before a FIN `src` already sent, with
/// `MSG_MORE`: the FIN passed on next joins their segment ([`crate::conn::fin`]). Returns 0
/// when `dst` has no room (the plain writes that follow take over, without the merge).
fn send_before_fin(dst: &WriteHalf<'_>, bytes: &[u8]) -> io::Result<usize> {
    let stream: &TcpStream = dst.as_ref();
    let flags = fin::send_flags(true);
    match stream.try_io(Interest::WRITABLE, || {
        socket2::SockRef::from(stream).send_with_flags(bytes, flags)
    }) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        done => done,
    }
}

/// Resets `stream` once its send queue has drained or stopped draining (the peer has every
/// byte relayed to it, then learns that the other side failed); `stream` closes on drop.
pub(super) async fn reset_when_drained(stream: TcpStream) {
    let mut linger = Linger::new(std::time::Instant::now());
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    // Bytes a `MSG_MORE` send held for a FIN that never came go out now, not with the reset.
    sys::set_nodelay(fd);
    while linger.step(sys::unacked_bytes(fd), std::time::Instant::now()) == LingerStep::Wait {
        tokio::time::sleep(LINGER_POLL).await;
    }
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
}

/// Reads what `src` holds now, without waiting: `None` when it holds nothing after all (the
/// readiness was stale), so the caller gives the buffer back before waiting again.
///
/// Reading through `AsyncRead` rather than `try_read` lets tokio clear the readiness after a
/// short read, which saves the `EAGAIN` read that would otherwise follow every message.
async fn read_ready(src: &mut ReadHalf<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut buf = ReadBuf::new(buf);
    std::future::poll_fn(|cx| match Pin::new(&mut *src).poll_read(cx, &mut buf) {
        Poll::Pending => Poll::Ready(Ok(None)),
        Poll::Ready(done) => Poll::Ready(done.map(|()| Some(buf.filled().len()))),
    })
    .await
}

/// Writes all of `bytes` to `dst`, waiting for room as needed; with `count`, they are counted
/// as upstream bytes of its backend (replayed client bytes; a PROXY header is not counted).
pub(super) async fn write_all(
    dst: &TcpStream,
    mut bytes: &[u8],
    count: Option<Delivered<'_>>,
) -> io::Result<()> {
    while !bytes.is_empty() {
        dst.writable().await?;
        match dst.try_write(bytes) {
            Ok(n) => {
                bytes = &bytes[n..];
                if let Some(count) = count {
                    count.add(UPSTREAM, n);
                }
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
        // Yields to the worker's other tasks (and the linger timer) under a flood.
        tokio::task::consume_budget().await;
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{
        super::testing::{backend, pair},
        *,
    };

    #[test]
    fn a_grown_buffer_keeps_its_bytes_and_is_not_pooled() {
        let pool = Buffers::new(4);
        let mut buf = pool.take();
        buf.copy_from_slice(b"abcd");
        buf.grow(10);
        assert_eq!(&buf[..4], b"abcd");
        assert_eq!(buf.len(), 10);
        // The pool got its own 4-byte buffer back at once, and never gets the grown one.
        assert_eq!(pool.idle.borrow().len(), 1);
        drop(buf);
        assert_eq!(pool.idle.borrow().len(), 1);
        assert!(pool.idle.borrow().iter().all(|b| b.len() == 4));
    }

    #[test]
    fn buffers_are_reused() {
        let pool = Buffers::new(BUFFER_SIZE);
        drop(pool.take());
        assert_eq!(pool.idle.borrow().len(), 1);
        let held = pool.take();
        assert_eq!(held.len(), BUFFER_SIZE);
        assert!(pool.idle.borrow().is_empty());
    }

    #[tokio::test]
    async fn each_eof_is_passed_on_after_the_bytes_before_it() {
        let (mut client, mut proxy_client) = pair().await;
        let (mut proxy_server, mut server) = pair().await;
        let pool = Buffers::new(BUFFER_SIZE);
        let idle = Duration::from_secs(5);
        let backend = backend();
        let count = Delivered {
            backend: &backend,
            worker: 0,
            bytes: &Cell::default(),
        };
        let relay = relay(&pool, &mut proxy_client, &mut proxy_server, idle, count);
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
        assert!(matches!(relayed.unwrap(), Close::Clean(_)));
        assert_eq!(
            backend.stats.bytes.total(),
            [7, 8],
            "bytes counted per direction"
        );
        let idle = pool.idle.borrow().len();
        assert!((1..=2).contains(&idle), "{idle} buffers back in the pool");
    }

    /// A transfer far larger than tokio's cooperative budget, fed and drained by threads of
    /// their own so the sockets never run dry: the relay must keep yielding and finish, not
    /// spin on readiness it may not use. It runs on a thread of its own, so a spin fails the
    /// test instead of hanging it.
    #[test]
    fn a_bulk_transfer_fed_from_other_threads_finishes() {
        use std::io::{Read, Write};
        const LEN: usize = 256 * 1024 * 1024;
        let std_pair = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let near = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (far, _) = listener.accept().unwrap();
            (near, far)
        };
        let (mut client, proxy_client) = std_pair();
        let (proxy_server, mut server) = std_pair();
        let sender = std::thread::spawn(move || {
            let chunk = vec![7u8; 1024 * 1024];
            for _ in 0..LEN / chunk.len() {
                client.write_all(&chunk).unwrap();
            }
            client.shutdown(std::net::Shutdown::Write).unwrap();
            client.read_to_end(&mut Vec::new()).unwrap()
        });
        let receiver = std::thread::spawn(move || {
            let (mut total, mut buf) = (0, vec![0u8; 256 * 1024]);
            loop {
                match server.read(&mut buf).unwrap() {
                    0 => break,
                    n => total += n,
                }
            }
            server.shutdown(std::net::Shutdown::Write).unwrap();
            total
        });
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let relayed = runtime.block_on(async {
                proxy_client.set_nonblocking(true).unwrap();
                proxy_server.set_nonblocking(true).unwrap();
                let mut proxy_client = TcpStream::from_std(proxy_client).unwrap();
                let mut proxy_server = TcpStream::from_std(proxy_server).unwrap();
                let pool = Buffers::new(BUFFER_SIZE);
                let idle = Duration::from_secs(30);
                let backend = backend();
                let count = Delivered {
                    backend: &backend,
                    worker: 0,
                    bytes: &Cell::default(),
                };
                relay(&pool, &mut proxy_client, &mut proxy_server, idle, count).await
            });
            let _ = done.send(matches!(relayed, Ok(Close::Clean(_))));
        });
        let relayed = finished
            .recv_timeout(Duration::from_secs(60))
            .expect("the relay finished instead of spinning");
        assert!(relayed, "both EOFs were passed on");
        assert_eq!(receiver.join().unwrap(), LEN);
        assert_eq!(sender.join().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_silent_connection_times_out() {
        let (_client, mut proxy_client) = pair().await;
        let (mut proxy_server, _server) = pair().await;
        let pool = Buffers::new(BUFFER_SIZE);
        let idle = Duration::from_millis(50);
        let backend = backend();
        let count = Delivered {
            backend: &backend,
            worker: 0,
            bytes: &Cell::default(),
        };
        let err = relay(&pool, &mut proxy_client, &mut proxy_server, idle, count)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
