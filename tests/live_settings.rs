//! A reload applies the workers' own settings (timeouts, retries, replay, the no-backend
//! answer, the connection cap) to new connections, without a restart; open connections keep the
//! settings they started with.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::*;
use ringlb::config::{IoBackend, OnNoBackend, RelayMode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A backend that passes its health probes but resets every real request after reading it,
/// as a listener closing with clients in its backlog does.
async fn resetter() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                if answered_health_probe(&mut stream, &buf[..n]).await {
                    return;
                }
                let socket = socket2::Socket::from(stream.into_std().unwrap());
                let _ = socket.set_linger(Some(Duration::ZERO));
            });
        }
    });
    addr
}

/// One request; `true` when the good backend's answer came back.
async fn request(proxy: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(proxy).await else {
        return false;
    };
    if s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(DEADLINE, s.read_to_end(&mut answer)).await;
    matches!(read, Ok(Ok(_))) && body(&answer) == "b"
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_turns_replay_on_for_new_connections_without_a_restart(io: IoBackend) {
        let bad = resetter().await;
        let good = NamedBackend::start("b").await;
        let mut cfg = config(io, &[bad, good.addr], RelayMode::Auto);
        // Probes never bring a passively ejected backend back within the test.
        cfg.live.health_check.interval = Duration::from_secs(60);
        cfg.live.traffic.passive_fall = 1_000;
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(2).await;

        // Without replay, requests that land on the resetting backend fail.
        let mut failed = 0;
        for _ in 0..10 {
            failed += usize::from(!request(proxy.addr).await);
        }
        assert!(
            failed > 0,
            "the resetting backend failed some requests before the reload"
        );

        let mut reloaded = cfg.clone();
        reloaded.live.traffic.retry_on_early_close = true;
        let restart = proxy.server().reload_handle().reload(&reloaded);
        assert!(
            restart.is_empty(),
            "traffic settings need no restart: {restart:?}"
        );
        for i in 0..20 {
            assert!(
                request(proxy.addr).await,
                "request {i} after the reload failed"
            );
        }
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_changes_the_no_backend_answer(io: IoBackend) {
        let mut cfg = config(io, &[dead_addr()], RelayMode::Copy);
        cfg.live.health_check.interval = Duration::from_secs(60);
        let proxy = Proxy::start(&cfg);
        // The default answer is the 503.
        let answer = get(proxy.addr).await;
        assert!(answer.starts_with(b"HTTP/1.1 503"), "{answer:?}");

        let mut reloaded = cfg.clone();
        reloaded.live.traffic.on_no_backend = OnNoBackend::Close;
        assert!(proxy.server().reload_handle().reload(&reloaded).is_empty());
        let answer = get(proxy.addr).await;
        assert!(
            answer.is_empty(),
            "a FIN and no byte after the reload: {answer:?}"
        );
    }
);
