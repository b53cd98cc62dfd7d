//! Hostile clients and the backends that expose them (`tests/hostile.rs`): slow readers in front
//! of a backend that pushes as fast as it can, backends with a header timeout, a backend that
//! resets every real request; and reading the real binary's CPU time and admin `/status`.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream},
};

use super::{answered_health_probe, binary::Process, DEADLINE};

// --- The real binary: CPU time, /status (its admin address: `admin_http::admin_addr`) ---

/// CPU time (user + system) the process `pid` has used so far, in seconds, from
/// `/proc/<pid>/stat` (fields 14 and 15, in clock ticks).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')').expect("(comm) in stat") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `after_name` starts at field 3 (state): utime is field 14, stime field 15.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(per_second > 0, "sysconf(_SC_CLK_TCK)");
    ticks as f64 / per_second as f64
}

/// `GET /status` from the admin listener at `admin`, parsed.
pub async fn status(admin: SocketAddr) -> serde_json::Value {
    tokio::time::timeout(DEADLINE, async {
        let mut s = TcpStream::connect(admin).await.expect("connect to admin");
        s.write_all(b"GET /status HTTP/1.1\r\nHost: admin\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read /status");
        let text = String::from_utf8(raw).expect("UTF-8 /status");
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "/status answered {head:?}"
        );
        serde_json::from_str(body).expect("/status is JSON")
    })
    .await
    .expect("/status within the deadline")
}

/// Every endpoint of every target in a `/status` document.
pub fn endpoints(status: &serde_json::Value) -> Vec<&serde_json::Value> {
    let targets = status["targets"].as_array().expect("targets");
    targets
        .iter()
        .flat_map(|t| t["endpoints"].as_array().expect("endpoints"))
        .collect()
}

/// The endpoint at `addr` in a `/status` document.
pub fn endpoint(status: &serde_json::Value, addr: SocketAddr) -> &serde_json::Value {
    let addr = addr.to_string();
    endpoints(status)
        .into_iter()
        .find(|e| e["addr"] == addr.as_str())
        .unwrap_or_else(|| panic!("no endpoint {addr} in {status:#}"))
}

/// Polls `/status` (bounded) until every one of its `n` endpoints is `up`.
pub async fn wait_all_up(admin: SocketAddr, n: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let status = status(admin).await;
        let all = endpoints(&status);
        if all.len() == n && all.iter().all(|e| e["state"] == "up") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {n} endpoints up: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `toml` (from [`super::binary::toml`]) with its health-check interval line replaced by
/// `lines` (more `[health_check]` keys may follow on their own lines).
pub fn health_check(toml: &str, lines: &str) -> String {
    let default = "interval = \"100ms\"\n";
    assert!(toml.contains(default), "{toml}");
    toml.replacen(default, &format!("{lines}\n"), 1)
}

/// Starts the real binary on `toml` without blocking the runtime's other tasks (the backends).
pub fn start(toml: &str) -> Process {
    tokio::task::block_in_place(|| Process::start(toml, None))
}

// --- Slow readers and the backend that pushes at them -------------------------------------

/// What a slow reader sends: the [`PushBackend`] answers it with megabytes.
pub const PUSH_REQUEST: &[u8] = b"PUSH\n";

/// The most a [`PushBackend`] pushes on one connection.
pub const PUSH_LIMIT: u64 = 16 * 1024 * 1024;

/// Counters of a [`PushBackend`], shared with its connections.
#[derive(Default)]
pub struct PushStats {
    /// Connections that asked to be pushed at.
    pub pushers: AtomicUsize,
    /// Pushing connections whose last write would block and are waiting to be writable, or
    /// that pushed all of [`PUSH_LIMIT`].
    pub stuck: AtomicUsize,
    /// Pushing connections that pushed all of [`PUSH_LIMIT`]: something on the way took
    /// megabytes a client never read.
    pub finished: AtomicUsize,
    /// Bytes pushed so far, over all connections.
    pub pushed: AtomicU64,
}

/// A backend that answers health probes, echoes every connection, and answers
/// [`PUSH_REQUEST`] (after echoing it) by writing up to [`PUSH_LIMIT`] as fast as the socket
/// takes it.
pub struct PushBackend {
    pub addr: SocketAddr,
    pub stats: Arc<PushStats>,
}

impl PushBackend {
    pub async fn start() -> PushBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(PushStats::default());
        let shared = Arc::clone(&stats);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_push(stream, Arc::clone(&shared)));
            }
        });
        PushBackend { addr, stats }
    }
}

async fn serve_push(mut stream: TcpStream, stats: Arc<PushStats>) {
    let mut buf = vec![0u8; 16 * 1024];
    let n = match stream.read(&mut buf).await {
        Ok(n) if n > 0 => n,
        _ => return,
    };
    if answered_health_probe(&mut stream, &buf[..n]).await {
        return;
    }
    if stream.write_all(&buf[..n]).await.is_err() {
        return;
    }
    if buf[..n].starts_with(PUSH_REQUEST) {
        stats.pushers.fetch_add(1, Relaxed);
        push(&mut stream, &stats).await;
        return;
    }
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Writes until the socket would block, waits until it is writable, again, up to the limit.
async fn push(stream: &mut TcpStream, stats: &PushStats) {
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0u64;
    while sent < PUSH_LIMIT {
        match stream.try_write(&chunk) {
            Ok(n) => {
                sent += n as u64;
                stats.pushed.fetch_add(n as u64, Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stats.stuck.fetch_add(1, Relaxed);
                let writable = stream.writable().await;
                stats.stuck.fetch_sub(1, Relaxed);
                if writable.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
    // Done: as still as a blocked writer. Keep the connection open until the client leaves.
    stats.finished.fetch_add(1, Relaxed);
    stats.stuck.fetch_add(1, Relaxed);
    let mut sink = [0u8; 1024];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// Waits until the pushing has stopped moving: every pushing connection stuck and no byte
/// pushed for `quiet`, with at least `want` pushers. Gives up after `settle`; returns whether
/// that state was reached.
pub async fn wait_still(stats: &PushStats, want: usize, quiet: Duration, settle: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + settle;
    let mut last = (u64::MAX, tokio::time::Instant::now());
    loop {
        let pushed = stats.pushed.load(Relaxed);
        let pushers = stats.pushers.load(Relaxed);
        let now = tokio::time::Instant::now();
        if pushed != last.0 || stats.stuck.load(Relaxed) < pushers {
            last = (pushed, now);
        } else if pushers >= want && now - last.1 >= quiet {
            return true;
        }
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client with a 4 KiB receive buffer (set before connecting, so the window it announces
/// is small from the start) that sends [`PUSH_REQUEST`] and never reads.
pub async fn slow_reader(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_nonblocking(true).unwrap();
    let socket = TcpSocket::from_std_stream(socket.into());
    let mut stream = tokio::time::timeout(DEADLINE, socket.connect(addr))
        .await
        .expect("slow reader connects within the deadline")
        .expect("slow reader connects");
    stream.write_all(PUSH_REQUEST).await.unwrap();
    stream
}

/// A fresh client: sends `line` and reads it back, all within `within`.
pub async fn echo_within(addr: SocketAddr, line: &str, within: Duration) -> Result<(), String> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(line.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut back = vec![0u8; line.len()];
        s.read_exact(&mut back).await.map_err(|e| e.to_string())?;
        match back == line.as_bytes() {
            true => Ok(()),
            false => Err(format!("got {:?}", String::from_utf8_lossy(&back))),
        }
    };
    match tokio::time::timeout(within, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("no echo within {within:?}")),
    }
}

// --- Backends that expose over-eager passive ejection --------------------------------------

/// A backend with a header timeout (nginx's `client_header_timeout`, Redis's `timeout`): a
/// client that sends nothing within `patience` is closed (FIN, no byte); a request is
/// answered `200` with `name` as the body; health probes pass.
pub struct ImpatientBackend {
    pub addr: SocketAddr,
    /// Connections it closed for their silence.
    pub closed_idle: Arc<AtomicUsize>,
}

impl ImpatientBackend {
    pub async fn start(name: &'static str, patience: Duration) -> ImpatientBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let closed_idle = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&closed_idle);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    match tokio::time::timeout(patience, stream.read(&mut buf)).await {
                        Err(_) => {
                            let _ = stream.shutdown().await;
                            count.fetch_add(1, Relaxed);
                        }
                        Ok(Ok(n)) if n > 0 => {
                            if !answered_health_probe(&mut stream, &buf[..n]).await {
                                let response = format!(
                                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\
                                     Connection: close\r\n\r\n{name}",
                                    name.len()
                                );
                                let _ = stream.write_all(response.as_bytes()).await;
                            }
                            let _ = stream.shutdown().await;
                        }
                        Ok(_) => {}
                    }
                });
            }
        });
        ImpatientBackend { addr, closed_idle }
    }
}

/// A backend whose health probes pass but that resets (`SO_LINGER` 0) every other
/// connection after reading its request, without a byte of answer.
pub struct ResettingBackend {
    pub addr: SocketAddr,
    /// Requests (not probes) it read and reset.
    pub hits: Arc<AtomicUsize>,
}

impl ResettingBackend {
    pub async fn start() -> ResettingBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 || answered_health_probe(&mut stream, &buf[..n]).await {
                        return;
                    }
                    count.fetch_add(1, Relaxed);
                    let socket = socket2::Socket::from(stream.into_std().unwrap());
                    let _ = socket.set_linger(Some(Duration::ZERO));
                });
            }
        });
        ResettingBackend { addr, hits }
    }
}

/// Sends one `GET /` through `addr`: the whole response, or what went wrong.
pub async fn try_get(addr: SocketAddr) -> Result<Vec<u8>, String> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        Ok(out)
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .unwrap_or_else(|_| Err("no response within the deadline".into()))
}
