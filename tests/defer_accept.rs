//! End-to-end: `defer_accept` (`TCP_DEFER_ACCEPT` on the listeners). A client that connects and
//! sends nothing is not even accepted: no accept, no backend connection, no descriptor in
//! ringlb. A client that sends its request is served as ever, and so is a silent one once it
//! speaks.
//!
//! The kernel completes the handshake either way (the client sees its connect succeed); only the
//! accept waits. With `defer_accept = "5s"` (7 s after the kernel's rounding) every check here
//! falls well within the window. Without the option, the same silent client is accepted at once
//! (the control).

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use common::{io_backends, Proxy, DEADLINE};
use ringlb::{
    config::{IoBackend, RelayMode},
    metrics::WorkerCounter,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::{sleep, timeout, Instant},
};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_client_is_not_accepted_until_it_speaks(io: IoBackend) {
        let backend = CountingBackend::start().await;
        let mut config = common::config(io, &[backend.addr], RelayMode::Copy);
        config.startup.defer_accept = Some(Duration::from_secs(5));
        let proxy = Proxy::start(&config);
        proxy.wait_healthy(1).await;
        let accepted = || proxy.server().metrics().total(WorkerCounter::Accepted);

        // The handshake completes in the kernel; ringlb is not told.
        let mut silent = timeout(DEADLINE, TcpStream::connect(proxy.addr))
            .await
            .expect("the handshake completes")
            .expect("connect");
        sleep(Duration::from_millis(1500)).await;
        assert_eq!(accepted(), 0, "a client that sent nothing was accepted");
        assert_eq!(backend.relayed(), 0, "a backend was connected for it");
        assert_eq!(proxy.server().metrics().open_connections(), 0);

        // A client that speaks is served at once.
        let started = Instant::now();
        assert_eq!(exchange(proxy.addr).await, "served");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            (accepted(), backend.relayed()),
            (1, 1),
            "only the client that spoke is accepted"
        );

        // The silent one, once it speaks, too.
        silent.write_all(REQUEST).await.unwrap();
        assert_eq!(read_body(&mut silent).await, "served");
        assert_eq!((accepted(), backend.relayed()), (2, 2));
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_defer_accept_a_silent_client_is_accepted_at_once(io: IoBackend) {
        let backend = CountingBackend::start().await;
        let config = common::config(io, &[backend.addr], RelayMode::Copy);
        assert_eq!(config.startup.defer_accept, None, "off by default");
        let proxy = Proxy::start(&config);
        proxy.wait_healthy(1).await;
        let _silent = TcpStream::connect(proxy.addr).await.unwrap();
        let deadline = Instant::now() + DEADLINE;
        while proxy.server().metrics().total(WorkerCounter::Accepted) == 0 {
            assert!(
                Instant::now() < deadline,
                "the silent client was never accepted"
            );
            sleep(Duration::from_millis(10)).await;
        }
        // ... and connected to a backend, which waits for bytes that never come.
        while backend.relayed() == 0 {
            assert!(Instant::now() < deadline, "no backend connection for it");
            sleep(Duration::from_millis(10)).await;
        }
    }
);

/// One request through `addr`: the response's body.
async fn exchange(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(REQUEST).await.unwrap();
    read_body(&mut stream).await
}

async fn read_body(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    timeout(DEADLINE, stream.read_to_end(&mut response))
        .await
        .expect("a response within the deadline")
        .unwrap();
    common::body(&response)
}

/// A backend answering health probes, and every other connection, once it has sent something,
/// with `served`; counts the connections that are not probes as soon as they are accepted
/// (a connection that sends nothing counts too, once its first read has waited 100 ms).
struct CountingBackend {
    addr: SocketAddr,
    relayed: Arc<AtomicUsize>,
}

impl CountingBackend {
    async fn start() -> CountingBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let relayed = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&relayed);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let first = timeout(Duration::from_millis(100), stream.read(&mut buf)).await;
                    let request = match first {
                        Ok(Ok(n)) => &buf[..n],
                        Ok(Err(_)) => return,
                        // Silent: a relayed client that has not spoken.
                        Err(_) => {
                            count.fetch_add(1, Relaxed);
                            let _ = stream.read(&mut buf).await;
                            return;
                        }
                    };
                    if common::answered_health_probe(&mut stream, request).await {
                        return;
                    }
                    count.fetch_add(1, Relaxed);
                    let answer =
                        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nserved";
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        CountingBackend { addr, relayed }
    }

    fn relayed(&self) -> usize {
        self.relayed.load(Relaxed)
    }
}
