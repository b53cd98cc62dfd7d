//! `retry_on_early_close`: a backend that closes before answering is replaced, transparently;
//! once it has answered, or past the replay buffer, there is no replay.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::*;
use ringlb::config::{IoBackend, RelayMode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A backend that passes health probes but resets every other connection after reading the
/// request, without a byte of answer: what clients queued in a closing listener's backlog get.
async fn early_closer() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                if answered_health_probe(&mut s, &buf[..n]).await {
                    return;
                }
                let s = s.into_std().unwrap();
                let s = socket2::Socket::from(s);
                let _ = s.set_linger(Some(Duration::ZERO));
            });
        }
    });
    addr
}

/// GETs through the proxy; `None` when the connection fails or ends without a response.
async fn try_get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    (!out.is_empty()).then(|| body(&out))
}

async fn failures(io: IoBackend, replay: bool, relay: RelayMode) -> usize {
    let bad = early_closer().await;
    let good = NamedBackend::start("A").await;
    let mut cfg = config(io, &[bad, good.addr], relay);
    cfg.live.traffic.retry_on_early_close = replay;
    cfg.startup.workers = 1;
    let proxy = Proxy::start(&cfg);
    proxy.wait_healthy(2).await;
    let mut failed = 0;
    for _ in 0..20 {
        match try_get(proxy.addr).await {
            Some(b) => assert_eq!(b, "A"),
            None => failed += 1,
        }
        // Keep the early closer in rotation: the passive check takes it out after each
        // failure, the next probe round (100 ms) brings it back.
        proxy.wait_healthy(2).await;
    }
    failed
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn early_closes_are_replayed_to_another_backend(io: IoBackend, relay: RelayMode) {
        assert_eq!(
            failures(io, true, relay).await,
            0,
            "{relay:?}: a request failed with replay on"
        );
    }
);

/// A backend that resets every connection the moment it accepts it, before a byte arrives
/// (a crashing process whose backlog the kernel resets); health probes are off for it.
async fn instant_resetter() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let s = socket2::Socket::from(s.into_std().unwrap());
            let _ = s.set_linger(Some(Duration::ZERO));
        }
    });
    addr
}

io_backends!(
    /// The client's request is already waiting in ringlb's socket when the backend resets, but
    /// not yet forwarded: the client did speak, so it is replayed, not passed the reset as if
    /// it had stayed silent (the reset and the request race in the replay phase).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reset_that_races_the_clients_unforwarded_request_is_replayed(
        io: IoBackend,
        relay: RelayMode,
    ) {
        let bad = instant_resetter().await;
        let good = NamedBackend::start("A").await;
        let mut cfg = config(io, &[bad, good.addr], relay);
        cfg.live.targets[0].health_check = ringlb::config::HealthCheckKind::None;
        cfg.live.traffic.retry_on_early_close = true;
        // Kept in rotation: every second client meets it first.
        cfg.live.traffic.passive_fall = 1_000;
        cfg.startup.workers = 1;
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(2).await;
        for i in 0..30 {
            assert_eq!(
                try_get(proxy.addr).await.as_deref(),
                Some("A"),
                "request {i} ({})",
                relay_on(io, relay)
            );
        }
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_replay_early_closes_fail_requests(io: IoBackend) {
        assert!(
            failures(io, false, RelayMode::Copy).await > 0,
            "the early closer should fail some requests when replay is off"
        );
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replay_keeps_bytes_intact_past_the_buffer(io: IoBackend, relay: RelayMode) {
        let echo = EchoBackend::start().await;
        let mut cfg = config(io, &[echo.addr], relay);
        cfg.live.traffic.retry_on_early_close = true;
        cfg.live.traffic.replay_buffer = 4096;
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(1).await;
        // Megabytes through a 4 KiB replay buffer: committed once full, nothing lost.
        let data = random_bytes(3 * 1024 * 1024, 77);
        let s = TcpStream::connect(proxy.addr).await.unwrap();
        let (mut rd, mut wr) = s.into_split();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            wr.write_all(&data).await.unwrap();
            wr.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        tokio::time::timeout(DEADLINE, rd.read_to_end(&mut back))
            .await
            .expect("transfer finishes")
            .unwrap();
        writer.await.unwrap();
        assert!(back == expected, "{relay:?}: bytes differ");
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replay_keeps_bytes_intact_for_server_first_protocols(io: IoBackend) {
        // A backend that speaks first (a greeting) commits at once. It tells health probes apart
        // by their request arriving right away; clients that wait get the greeting.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    let first =
                        tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await;
                    if let Ok(Ok(n)) = first {
                        // A client that speaks first is a health probe (or nothing to serve).
                        answered_health_probe(&mut s, &buf[..n]).await;
                        return;
                    }
                    let _ = s.write_all(b"220 hello\r\n").await;
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let _ = s.write_all(&buf[..n]).await;
                });
            }
        });
        let mut cfg = config(io, &[addr], RelayMode::Copy);
        cfg.live.traffic.retry_on_early_close = true;
        cfg.live.health_check.interval = Duration::from_secs(3600);
        let proxy = Proxy::start(&cfg);
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let mut greeting = [0u8; 11];
        tokio::time::timeout(DEADLINE, s.read_exact(&mut greeting))
            .await
            .expect("the greeting arrives before the client says anything")
            .unwrap();
        assert_eq!(&greeting, b"220 hello\r\n");
        s.write_all(b"QUIT").await.unwrap();
        let mut echo = [0u8; 4];
        s.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"QUIT");
    }
);
