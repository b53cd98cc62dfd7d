//! Lifecycle and limits: graceful drain on SIGTERM, a second signal, idle timeout,
//! max_connections and descriptor exhaustion.

mod common;

use std::time::{Duration, Instant};

use common::{binary::*, *};
use ringlb::config::{IoBackend, RelayMode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Writes `data` in chunks with pauses (so a signal lands mid-transfer), half-closes, and
/// returns what came back.
async fn slow_echo(addr: std::net::SocketAddr, data: Vec<u8>, pause: Duration) -> Vec<u8> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        for chunk in data.chunks(256 * 1024) {
            wr.write_all(chunk).await.unwrap();
            tokio::time::sleep(pause).await;
        }
        wr.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    rd.read_to_end(&mut back).await.unwrap();
    writer.await.unwrap();
    back
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_lets_a_long_transfer_finish_and_refuses_new_clients(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let mut ringlb = Process::start(&toml(io, &[echo.addr], ""), None);
        let addr = ringlb.addr;
        let data = random_bytes(8 * 1024 * 1024, 42);
        let transfer = tokio::spawn(slow_echo(addr, data.clone(), Duration::from_millis(50)));
        // Signal mid-transfer: once a megabyte went through.
        echo.wait_echoed(1024 * 1024).await;
        ringlb.signal("TERM");
        // New clients are refused once the listener is closed.
        tokio::time::timeout(DEADLINE, async {
            loop {
                match TcpStream::connect(addr).await {
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await
        .expect("new connections are refused after SIGTERM");
        assert!(
            *echo.echoed.borrow() < data.len(),
            "the signal landed before the transfer ended"
        );
        let back = tokio::time::timeout(DEADLINE, transfer)
            .await
            .expect("the transfer finishes")
            .unwrap();
        assert!(back == data, "the drained transfer arrived intact");
        let status = tokio::task::block_in_place(|| ringlb.wait_exit(DEADLINE));
        assert!(status.success(), "exit 0 after drain, got {status:?}");
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_signal_exits_at_once(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let mut ringlb = Process::start(&toml(io, &[echo.addr], "drain_timeout = \"1m\""), None);
        let mut idle = TcpStream::connect(ringlb.addr).await.unwrap();
        idle.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        idle.read_exact(&mut one).await.unwrap();
        ringlb.signal("TERM");
        ringlb.signal("INT");
        let started = Instant::now();
        let status = tokio::task::block_in_place(|| ringlb.wait_exit(Duration::from_secs(10)));
        assert!(!status.success());
        assert!(started.elapsed() < Duration::from_secs(10));
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_are_closed_and_busy_ones_kept(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let mut cfg = config(io, &[echo.addr], RelayMode::SpliceInline);
        cfg.live.traffic.idle_timeout = Duration::from_millis(400);
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(1).await;

        let mut busy = TcpStream::connect(proxy.addr).await.unwrap();
        let mut idle = TcpStream::connect(proxy.addr).await.unwrap();
        idle.write_all(b"hi").await.unwrap();
        let mut two = [0u8; 2];
        idle.read_exact(&mut two).await.unwrap();
        let started = Instant::now();
        // The busy one talks every 100 ms for 1.2 s: three idle timeouts' worth.
        for _ in 0..12 {
            busy.write_all(b"ping").await.unwrap();
            let mut four = [0u8; 4];
            busy.read_exact(&mut four).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut rest = Vec::new();
        let n = tokio::time::timeout(DEADLINE, idle.read_to_end(&mut rest))
            .await
            .expect("idle connection closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert!(started.elapsed() >= Duration::from_millis(400));
        busy.write_all(b"ping").await.unwrap();
        let mut four = [0u8; 4];
        busy.read_exact(&mut four)
            .await
            .expect("busy connection kept");
    }
);

async fn echo_once(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(b"abc").await?;
    let mut three = [0u8; 3];
    stream.read_exact(&mut three).await.map(|_| ())
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn max_connections_holds_new_clients_until_one_closes(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let mut cfg = config(io, &[echo.addr], RelayMode::Copy);
        cfg.live.traffic.max_connections = 4;
        cfg.startup.workers = 1;
        let proxy = Proxy::start(&cfg);
        proxy.wait_healthy(1).await;
        let mut open = Vec::new();
        for _ in 0..4 {
            let mut s = TcpStream::connect(proxy.addr).await.unwrap();
            echo_once(&mut s).await.unwrap();
            open.push(s);
        }
        // The fifth waits in the listen backlog: connected by the kernel, not served.
        let mut fifth = TcpStream::connect(proxy.addr).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(500), echo_once(&mut fifth)).await;
        assert!(waiting.is_err(), "the fifth client must wait at the cap");
        drop(open.pop());
        tokio::time::timeout(DEADLINE, echo_once(&mut fifth))
            .await
            .expect("served once a connection closed")
            .unwrap();
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn descriptor_exhaustion_is_survived_and_logged_sparingly(io: IoBackend) {
        if !common::binary::prlimit_available() {
            return;
        }
        let echo = EchoBackend::start().await;
        let mut ringlb = Process::start(
            &toml(io, &[echo.addr], "relay = \"copy\""),
            Some("--nofile=48:48"),
        );
        let addr = ringlb.addr;
        // Each proxied connection costs ringlb two descriptors: 40 clients exhaust 48.
        let mut clients = Vec::new();
        for _ in 0..40 {
            if let Ok(Ok(s)) =
                tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
            {
                clients.push(s);
            }
        }
        let exhausted_since = Instant::now();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let logged = ringlb.log_lines("accept failed");
        assert!(logged >= 1, "the exhaustion is logged");
        let seconds = exhausted_since.elapsed().as_secs() as usize + 2;
        assert!(
            logged <= seconds,
            "logged {logged} times in ~{seconds}s: flooding"
        );
        drop(clients);
        // With descriptors free again, a new client is served without a restart.
        tokio::time::timeout(DEADLINE, async {
            loop {
                if let Ok(mut s) = TcpStream::connect(addr).await {
                    if tokio::time::timeout(Duration::from_millis(500), echo_once(&mut s))
                        .await
                        .is_ok_and(|r| r.is_ok())
                    {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("ringlb serves again after descriptors free up");
        assert!(ringlb.child.try_wait().unwrap().is_none(), "still running");
    }
);
