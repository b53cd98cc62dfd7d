//! End-to-end behaviour of the proxy: round robin, health, the no-backend answer, byte
//! integrity under every relay strategy, and abrupt closes.

mod common;

use std::time::Duration;

use common::*;
use ringlb::config::{IoBackend, RelayMode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const EXACT_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 19\r\nConnection: close\r\n\r\nService Unavailable";

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sequential_connections_alternate_strictly(io: IoBackend) {
        let a = NamedBackend::start("A").await;
        let b = NamedBackend::start("B").await;
        let proxy = Proxy::start(&config(io, &[a.addr, b.addr], RelayMode::SpliceInline));
        proxy.wait_healthy(2).await;
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(body(&get(proxy.addr).await));
        }
        for pair in seen.windows(2) {
            assert_ne!(pair[0], pair[1], "round robin must alternate: {seen:?}");
        }
        assert!(seen.iter().all(|s| s == "A" || s == "B"), "{seen:?}");
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_healthy_backend_gets_the_exact_503(io: IoBackend) {
        let proxy = Proxy::start(&config(
            io,
            &[dead_addr(), dead_addr()],
            RelayMode::SpliceInline,
        ));
        // Whether the health round already ran or the connects fail, the client sees the 503.
        assert_eq!(get(proxy.addr).await, EXACT_503);
        proxy.wait_healthy(0).await;
        assert_eq!(get(proxy.addr).await, EXACT_503);
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopped_backend_leaves_and_returns(io: IoBackend) {
        let a = NamedBackend::start("A").await;
        let b = NamedBackend::start("B").await;
        let proxy = Proxy::start(&config(io, &[a.addr, b.addr], RelayMode::SpliceInline));
        proxy.wait_healthy(2).await;

        let b_addr = b.stop().await;
        proxy.wait_healthy(1).await;
        for _ in 0..6 {
            assert_eq!(body(&get(proxy.addr).await), "A");
        }

        let b = NamedBackend::start_on(b_addr, "B").await;
        proxy.wait_healthy(2).await;
        let names: Vec<String> = futures_lite_collect(proxy.addr, 4).await;
        assert!(names.contains(&"B".to_string()), "{names:?}");

        a.stop().await;
        b.stop().await;
        proxy.wait_healthy(0).await;
        assert_eq!(get(proxy.addr).await, EXACT_503);
    }
);

async fn futures_lite_collect(addr: std::net::SocketAddr, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(body(&get(addr).await));
    }
    out
}

/// Sends `data`, half-closes, reads everything back and checks it is identical.
async fn echo_round_trip(addr: std::net::SocketAddr, data: Vec<u8>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let expected = data.clone();
    let writer = tokio::spawn(async move {
        for chunk in data.chunks(7919) {
            wr.write_all(chunk).await.expect("write");
        }
        wr.shutdown().await.expect("half-close");
    });
    let mut back = Vec::with_capacity(expected.len());
    rd.read_to_end(&mut back).await.expect("read back");
    writer.await.unwrap();
    assert_eq!(back.len(), expected.len(), "byte count");
    assert!(back == expected, "bytes differ");
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn integrity(io: IoBackend, relay: RelayMode) {
        let echo = EchoBackend::start().await;
        let echo2 = EchoBackend::start().await;
        let proxy = Proxy::start(&config(io, &[echo.addr, echo2.addr], relay));
        proxy.wait_healthy(2).await;
        let mut tasks = Vec::new();
        for i in 0..32 {
            let data = random_bytes(2 * 1024 * 1024 + i * 1013, i as u64 + 1);
            tasks.push(tokio::spawn(echo_round_trip(proxy.addr, data)));
        }
        tokio::time::timeout(DEADLINE * 3, async {
            for t in tasks {
                t.await.expect("round trip");
            }
        })
        .await
        .expect("all transfers finish in time");
    }
);

io_backends!(
    /// A backend that reads a little, then closes mid-stream: the client is closed promptly and the
    /// worker keeps serving.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn backend_closing_mid_stream_closes_client(io: IoBackend, relay: RelayMode) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if answered_health_probe(&mut s, &buf[..n]).await {
                        return;
                    }
                    let _ = s.write_all(b"partial").await;
                    // Dropping with unread input resets the connection.
                });
            }
        });
        let proxy = Proxy::start(&config(io, &[addr], relay));
        proxy.wait_healthy(1).await;
        for _ in 0..3 {
            let mut s = TcpStream::connect(proxy.addr).await.unwrap();
            let data = random_bytes(4 * 1024 * 1024, 7);
            let outcome = tokio::time::timeout(DEADLINE, async {
                let (mut rd, mut wr) = s.split();
                let write = async {
                    let _ = wr.write_all(&data).await;
                };
                let mut got = Vec::new();
                let read = async {
                    let _ = rd.read_to_end(&mut got).await;
                };
                tokio::join!(write, read);
                got
            })
            .await
            .expect("the client is closed promptly, not left hanging");
            assert!(outcome.starts_with(b"partial") || outcome.is_empty());
        }
    }
);

io_backends!(
    /// A client that vanishes mid-stream: the backend sees its connection end, and the proxy still
    /// serves the next client.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vanished_client_closes_backend(io: IoBackend, relay: RelayMode) {
        let echo = EchoBackend::start().await;
        let proxy = Proxy::start(&config(io, &[echo.addr], relay));
        proxy.wait_healthy(1).await;
        let closed = echo.closed.notified();
        {
            let s = std::net::TcpStream::connect(proxy.addr).unwrap();
            use std::io::Write;
            (&s).write_all(&random_bytes(256 * 1024, 3)).unwrap();
            let s = socket2::Socket::from(s);
            s.set_linger(Some(Duration::ZERO)).unwrap();
            drop(s); // RST
        }
        tokio::time::timeout(DEADLINE, closed)
            .await
            .expect("backend connection closed after the client vanished");
        echo_round_trip(proxy.addr, random_bytes(100_000, 9)).await;
    }
);

/// A listener whose accept queue is full drops further SYNs: connecting to it hangs.
fn blackhole() -> (socket2::Socket, std::net::TcpStream, std::net::SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    // Fill the (single-entry) accept queue; nobody ever accepts.
    let filler = std::net::TcpStream::connect(addr).unwrap();
    (s, filler, addr)
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connect_timeout_moves_on_to_the_next_backend(io: IoBackend) {
        let (_hole, _filler, hole_addr) = blackhole();
        let a = NamedBackend::start("A").await;
        let mut cfg = config(io, &[hole_addr, a.addr], RelayMode::SpliceInline);
        // Keep the blackhole in rotation: its probe hangs for longer than this test.
        cfg.live.health_check.interval = Duration::from_secs(60);
        cfg.live.health_check.timeout = Duration::from_secs(30);
        cfg.startup.workers = 1;
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(2).await;
        let started = std::time::Instant::now();
        // The first pick is the blackhole: the connect times out and the client lands on A.
        assert_eq!(body(&get(proxy.addr).await), "A");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
            "connect timeout should be ~3s, took {waited:?}"
        );
    }
);

io_backends!(
    /// Connections torn down while splices are in flight must not leak their pipes' bytes into
    /// later connections (pipes are pooled per worker).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aborted_transfers_never_leak_bytes_into_later_connections(
        io: IoBackend,
        relay: RelayMode,
    ) {
        let echo = EchoBackend::start().await;
        let mut cfg = config(io, &[echo.addr], relay);
        cfg.startup.workers = 1;
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(1).await;
        for round in 0..20u64 {
            let addr = proxy.addr;
            let aborted = tokio::spawn(async move {
                let s = TcpStream::connect(addr).await.unwrap();
                let (_rd, mut wr) = s.into_split();
                let _ = wr
                    .write_all(&random_bytes(2 * 1024 * 1024, 1000 + round))
                    .await;
                let s = wr.reunite(_rd).unwrap().into_std().unwrap();
                socket2::Socket::from(s)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap(); // dropped here: RST with bytes in flight
            });
            let intact = echo_round_trip(proxy.addr, random_bytes(300_000, round + 1));
            let (a, ()) = tokio::join!(aborted, intact);
            a.unwrap();
        }
    }
);
