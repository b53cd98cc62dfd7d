//! Shared helpers of the end-to-end tests: start ringlb in-process on 127.0.0.1:0 and small
//! backends on ephemeral ports.
#![allow(dead_code)]

pub mod admin_http;
pub mod binary;
pub mod fault_relay;
pub mod flood;
pub mod hostile;
pub mod io_backends;
pub mod line;
pub mod local_ports;
pub mod netns;
pub mod services;

// For `use common::*`: suites that run no test through them do not use them.
#[allow(unused_imports)]
pub(crate) use io_backends::{io_backends, relay_on};

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use ringlb::{
    config::{Admin, HealthCheck, IoBackend, Live, RelayMode, Startup, Target},
    Config, Server, Shutdown,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinHandle,
};

/// Every wait in these tests is bounded by this.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A configuration for `targets` on the I/O backend `io` (the test's, from [`io_backends!`])
/// with a fast health check, two workers and the given relay.
pub fn config(io: IoBackend, targets: &[SocketAddr], relay: RelayMode) -> Config {
    let targets = targets
        .iter()
        .map(|a| target(&a.ip().to_string(), a.port()))
        .collect();
    let defaults = Config::new(targets);
    Config {
        source: PathBuf::from("<test>"),
        startup: Startup {
            listen: "127.0.0.1:0".parse().unwrap(),
            workers: 2,
            relay,
            io_backend: io,
            // Many instances run at once: an ephemeral admin port each.
            admin: Admin {
                enabled: true,
                listen: "127.0.0.1:0".parse().unwrap(),
                token_file: None,
            },
            ..defaults.startup
        },
        live: Live {
            health_check: HealthCheck {
                interval: Duration::from_millis(100),
                timeout: Duration::from_millis(500),
                rise: 1,
                fall: 1,
            },
            ..defaults.live
        },
    }
}

/// A target at `host:port` (a name or an IP literal), probed with `GET /healthz`.
pub fn target(host: &str, port: u16) -> Target {
    Target::http(host, port, "/healthz")
}

/// A running proxy that stops when dropped.
pub struct Proxy {
    pub server: Option<Server>,
    pub addr: SocketAddr,
}

impl Proxy {
    pub fn start(config: &Config) -> Proxy {
        Self::start_with_resolver(config, Arc::new(ringlb::health::SystemResolver))
    }

    /// A proxy whose health checker resolves target names with `resolver`.
    pub fn start_with_resolver(
        config: &Config,
        resolver: Arc<dyn ringlb::health::Resolver>,
    ) -> Proxy {
        let server =
            Server::start_with_resolver(config, Shutdown::new(), resolver).expect("ringlb starts");
        if config.startup.io_backend != IoBackend::Auto {
            assert_eq!(server.io_backend(), config.startup.io_backend.as_str());
        }
        let addr = server.local_addr();
        Proxy {
            server: Some(server),
            addr,
        }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// Waits (bounded) until the balancer holds exactly `n` healthy backends.
    pub async fn wait_healthy(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while self.server().balancer().healthy_count() != n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} healthy backends, have {}",
                self.server().balancer().healthy_count()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
            let _ = server.wait();
        }
    }
}

/// Reads an HTTP request head; `None` at EOF before a full head.
pub async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(head)
}

fn is_health_probe(head: &[u8]) -> bool {
    head.starts_with(b"GET /healthz ")
}

async fn answer(stream: &mut TcpStream, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Answers `request` with 200 if it is ringlb's health probe (`GET /healthz`); `true` when it
/// was, and the connection is then done. Backends with a behaviour of their own call this on
/// their first read so that they stay healthy.
pub async fn answered_health_probe(stream: &mut TcpStream, request: &[u8]) -> bool {
    if !request.starts_with(b"GET /healthz") {
        return false;
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await;
    true
}

/// A backend on an ephemeral port whose connections go to `serve`, except ringlb's health
/// probes (a first byte `G`), which get a 200: for tests whose own protocol never starts with
/// `G`. Runs until the test's runtime ends.
pub async fn probed_backend<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let serve = Arc::clone(&serve);
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                if stream.peek(&mut first).await.is_err() {
                    return;
                }
                if first[0] == b'G' {
                    let mut head = [0u8; 1024];
                    let n = stream.read(&mut head).await.unwrap_or(0);
                    answered_health_probe(&mut stream, &head[..n]).await;
                    return;
                }
                serve(stream).await;
            });
        }
    });
    addr
}

/// A backend answering every request (health probes included) with 200 and `name` as the body,
/// one request per connection.
pub struct NamedBackend {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl NamedBackend {
    pub async fn start(name: &'static str) -> NamedBackend {
        Self::start_on("127.0.0.1:0".parse().unwrap(), name).await
    }

    pub async fn start_on(addr: SocketAddr, name: &'static str) -> NamedBackend {
        let listener = TcpListener::bind(addr).await.expect("bind backend");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    if read_head(&mut stream).await.is_some() {
                        answer(&mut stream, "200 OK", name).await;
                    }
                });
            }
        });
        NamedBackend { addr, task }
    }

    /// Stops listening: once this returns, new connections are refused. (`abort` alone only
    /// asks: until the task is dropped the listener still completes handshakes, and those
    /// connections are reset when it closes, which looks like a backend dying mid-request.)
    pub async fn stop(self) -> SocketAddr {
        self.task.abort();
        // A cancelled task's future, the listener with it, is dropped before its JoinHandle
        // reports the cancellation.
        let _ = self.task.await;
        self.addr
    }
}

/// Sends one `GET /` through `addr` and returns the whole response.
pub async fn get(addr: SocketAddr) -> Vec<u8> {
    tokio::time::timeout(DEADLINE, async {
        let mut s = TcpStream::connect(addr).await.expect("connect to proxy");
        s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read response");
        out
    })
    .await
    .expect("response within the deadline")
}

/// The body of an HTTP response.
pub fn body(response: &[u8]) -> String {
    let text = String::from_utf8_lossy(response);
    text.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

/// A backend that echoes every byte back and relays EOF (half-close), answering health probes
/// with 200. `closes` is notified each time a connection ends.
pub struct EchoBackend {
    pub addr: SocketAddr,
    pub closed: Arc<Notify>,
    /// Bytes echoed so far, over all connections.
    pub echoed: tokio::sync::watch::Receiver<usize>,
}

impl EchoBackend {
    pub async fn start() -> EchoBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let closed = Arc::new(Notify::new());
        let notify = Arc::clone(&closed);
        let (count, echoed) = tokio::sync::watch::channel(0usize);
        let count = Arc::new(count);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let notify = Arc::clone(&notify);
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    echo(stream, &count).await;
                    notify.notify_one();
                });
            }
        });
        EchoBackend {
            addr,
            closed,
            echoed,
        }
    }

    /// Waits (bounded) until at least `n` bytes were echoed.
    pub async fn wait_echoed(&self, n: usize) {
        let mut rx = self.echoed.clone();
        tokio::time::timeout(DEADLINE, rx.wait_for(|&b| b >= n))
            .await
            .expect("bytes reach the echo backend")
            .unwrap();
    }
}

async fn echo(mut stream: TcpStream, count: &tokio::sync::watch::Sender<usize>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if first && is_health_probe(&buf[..n]) {
            answer(&mut stream, "200 OK", "ok").await;
            return;
        }
        first = false;
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
        count.send_modify(|c| *c += n);
    }
    let _ = stream.shutdown().await;
}

/// An address on which nothing listens (bound, then released).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
