//! A FIN the backend sent right behind its reply reaches the client in the reply's last
//! segment (`conn::fin`), and bytes are never held back waiting for a FIN that has not come.
//!
//! The merge is observed the way the client's kernel sees it: the number of segments its socket
//! received (`TCP_INFO`'s `tcpi_segs_in`), through ringlb against straight from the backend.
//! The backend sends reply and FIN in one segment itself (`MSG_MORE`, then `SHUT_WR`), so both
//! reach ringlb together and the count does not depend on timing. On io_uring the copy-based
//! relays (`copy`, `auto`) merge; the splice strategies pass bytes through a pipe and do not.

mod common;

use std::{
    net::SocketAddr,
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use common::{config, io_backends, random_bytes, Proxy, DEADLINE};
use ringlb::config::{IoBackend, RelayMode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

/// The request: its length in bytes, then how the reply is written.
const ONE_SEGMENT: u8 = b'1';
const TRICKLE: u8 = b't';

/// A backend answering `[mode, len(4 bytes)]` with `random_bytes(len, len)`:
/// - `ONE_SEGMENT`: the reply with `MSG_MORE`, then `SHUT_WR`, so reply and FIN share the
///   last segment; then it reads to EOF.
/// - `TRICKLE`: the reply in 64-byte writes, then it waits (no FIN) for the client to send the
///   reply's length back, and only then closes.
///
/// Health probes (`GET`) get a 200.
async fn backend() -> SocketAddr {
    common::probed_backend(|mut stream| async move {
        let mut head = [0u8; 5];
        if stream.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
        let reply = random_bytes(len, len as u64);
        let _ = match head[0] {
            ONE_SEGMENT => reply_then_fin(&mut stream, &reply).await,
            _ => trickle(&mut stream, &reply).await,
        };
    })
    .await
}

async fn reply_then_fin(stream: &mut TcpStream, reply: &[u8]) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < reply.len() {
        stream.writable().await?;
        let sock = socket2::SockRef::from(&*stream);
        match sock.send_with_flags(&reply[sent..], libc::MSG_MORE) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    stream.shutdown().await?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.map(drop)
}

async fn trickle(stream: &mut TcpStream, reply: &[u8]) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    for chunk in reply.chunks(64) {
        stream.write_all(chunk).await?;
    }
    let mut ack = [0u8; 4];
    stream.read_exact(&mut ack).await?;
    assert_eq!(u32::from_be_bytes(ack) as usize, reply.len());
    Ok(())
}

fn request(mode: u8, len: usize) -> Vec<u8> {
    [&[mode][..], &(len as u32).to_be_bytes()].concat()
}

/// Segments the socket has received (`tcpi_segs_in`), SYN-ACK and pure ACKs included.
fn segments_in(stream: &TcpStream) -> u32 {
    // The kernel's `struct tcp_info` is append-only ABI; `tcpi_segs_in` sits at byte 140
    // (after the u8 fields, 24 u32s and four u64s) since Linux 4.2. glibc's struct stops
    // before it, hence the raw buffer.
    const SEGS_IN: usize = 140;
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, which outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    assert!(len as usize >= SEGS_IN + 4, "TCP_INFO too short: {len}");
    u32::from_ne_bytes(info[SEGS_IN..SEGS_IN + 4].try_into().unwrap())
}

/// Sends a `ONE_SEGMENT` request for `len` bytes to `addr`, reads the whole reply up to EOF,
/// checks it, and returns the segments the client's socket received by then.
async fn one_segment_exchange(addr: SocketAddr, len: usize) -> u32 {
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&request(ONE_SEGMENT, len)).await.unwrap();
    let mut reply = Vec::new();
    timeout(DEADLINE, client.read_to_end(&mut reply))
        .await
        .expect("the reply and its EOF arrive")
        .unwrap();
    assert!(reply == random_bytes(len, len as u64), "{len}-byte reply");
    segments_in(&client)
}

/// The relays to try on `io`: the copy-based ones (epoll always copies).
fn copying_relays(io: IoBackend) -> &'static [RelayMode] {
    match io {
        IoBackend::Epoll => &[RelayMode::Copy],
        _ => &[RelayMode::Copy, RelayMode::Auto],
    }
}

io_backends!(
    /// The client receives exactly the segments it would receive from the backend directly:
    /// ringlb adds no separate FIN segment (nor the ACK that would answer it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reply_and_the_fin_behind_it_reach_the_client_in_one_segment(io: IoBackend) {
        let backend = backend().await;
        for &relay in copying_relays(io) {
            let proxy = Proxy::start(&config(io, &[backend], relay));
            proxy.wait_healthy(1).await;
            for len in [1, 200, 9000] {
                let direct = one_segment_exchange(backend, len).await;
                let proxied = one_segment_exchange(proxy.addr, len).await;
                assert_eq!(
                    proxied,
                    direct,
                    "segments a client received for a {len}-byte reply and its FIN, through \
                     ringlb against directly ({})",
                    common::relay_on(io, relay)
                );
            }
        }
    }
);

io_backends!(
    /// Replies of every size around the relay's buffer arrive whole and in order before the
    /// EOF, however the FIN rides.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replies_of_every_size_arrive_whole_before_the_fin(io: IoBackend, relay: RelayMode) {
        let backend = backend().await;
        let proxy = Proxy::start(&config(io, &[backend], relay));
        proxy.wait_healthy(1).await;
        for len in [1, 1460, 16383, 16384, 16385, 65536, 300_000] {
            one_segment_exchange(proxy.addr, len).await;
        }
    }
);

io_backends!(
    /// A reply written in small pieces and then silence (the backend waits for the client's
    /// answer before it closes) reaches the client at once: no byte waits for a FIN that has
    /// not come.
    ///
    /// Bytes wrongly held with `MSG_MORE` are not lost, only late: the kernel sends a held
    /// partial segment when an ACK comes in or, failing that, after its 200 ms floor. So the
    /// check is on time, made robust to a loaded machine: of 20 rounds, the fastest must take
    /// under 100 ms (a few milliseconds when nothing is held; every round ≥ 200 ms when the
    /// last bytes are).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_followed_by_silence_are_never_held_back(io: IoBackend, relay: RelayMode) {
        let backend = backend().await;
        let proxy = Proxy::start(&config(io, &[backend], relay));
        proxy.wait_healthy(1).await;
        let mut fastest = Duration::MAX;
        for round in 0..20 {
            let len = 64 * 40 + round;
            let mut client = TcpStream::connect(proxy.addr).await.unwrap();
            let start = Instant::now();
            client.write_all(&request(TRICKLE, len)).await.unwrap();
            let mut reply = vec![0u8; len];
            timeout(DEADLINE, client.read_exact(&mut reply))
                .await
                .expect("the trickled reply arrives")
                .unwrap();
            fastest = fastest.min(start.elapsed());
            assert!(reply == random_bytes(len, len as u64));
            client.write_all(&(len as u32).to_be_bytes()).await.unwrap();
            let mut rest = Vec::new();
            timeout(DEADLINE, client.read_to_end(&mut rest))
                .await
                .unwrap()
                .unwrap();
            assert!(rest.is_empty());
        }
        assert!(
            fastest < Duration::from_millis(100),
            "the fastest of 20 trickled replies took {fastest:?}: bytes were held back ({})",
            common::relay_on(io, relay)
        );
    }
);
