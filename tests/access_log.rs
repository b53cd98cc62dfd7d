//! The access log end to end, on both I/O backends: one JSON line per client connection with
//! its client, target, bytes and termination; the no-backend and idle-timeout endings; a file
//! reopened on SIGUSR1 by the real binary (logrotate); and a writer that cannot keep up (a FIFO
//! nobody reads) dropping and counting lines while traffic goes on.

mod common;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::{
    binary::{toml, Process, TempDir},
    *,
};
use ringlb::config::{AccessLog, Config, IoBackend, LogFormat, LogPath, RelayMode};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A configuration for `targets` logging to `path` as JSON, on one worker.
fn logged(io: IoBackend, targets: &[SocketAddr], path: &Path) -> Config {
    let mut config = config(io, targets, RelayMode::Auto);
    config.startup.workers = 1;
    config.live.access_log = AccessLog {
        path: LogPath::File(path.to_owned()),
        format: LogFormat::Json,
    };
    config
}

/// The log's lines, once it has at least `n` (bounded: the writer flushes every 100 ms).
fn wait_lines(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() >= n {
            return lines
                .iter()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{path:?}: {} lines, expected {n}: {text}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One echoed exchange: `payload` out, the same back, then the client's FIN and the
/// backend's. Returns the client's address.
async fn exchange(addr: SocketAddr, payload: &[u8]) -> SocketAddr {
    let mut client = TcpStream::connect(addr).await.unwrap();
    let local = client.local_addr().unwrap();
    client.write_all(payload).await.unwrap();
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(DEADLINE, client.read_exact(&mut back))
        .await
        .expect("echo within the deadline")
        .unwrap();
    assert_eq!(back, payload);
    client.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, client.read_to_end(&mut rest))
        .await
        .expect("the backend's FIN within the deadline")
        .unwrap();
    assert!(rest.is_empty());
    local
}

io_backends!(
    /// A normal exchange gives one line with every field right.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_normal_exchange_logs_one_json_line(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let dir = TempDir::new("alog-normal");
        let path = dir.0.join("access.log");
        let proxy = Proxy::start(&logged(io, &[echo.addr], &path));
        proxy.wait_healthy(1).await;
        let client = exchange(proxy.addr, b"hello, log").await;
        let lines = tokio::task::block_in_place(|| wait_lines(&path, 1));
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["client"], client.to_string(), "{line}");
        assert_eq!(line["target"], echo.addr.to_string(), "{line}");
        assert_eq!(line["service"], "default");
        assert_eq!(line["pool"], "default");
        assert!(line["sni"].is_null(), "{line}");
        assert_eq!(line["bytes_up"], 10, "{line}");
        assert_eq!(line["bytes_down"], 10, "{line}");
        assert_eq!(line["retries"], 0, "{line}");
        assert_eq!(line["termination"], "client_close", "{line}");
        assert!(line["connect_ms"].as_f64().unwrap() >= 0.0, "{line}");
        let duration = line["duration_ms"].as_f64().unwrap();
        assert!(duration >= line["connect_ms"].as_f64().unwrap(), "{line}");
        let ts = line["ts"].as_str().unwrap();
        let when = humantime::parse_rfc3339(ts).unwrap();
        let age = std::time::SystemTime::now().duration_since(when).unwrap();
        assert!(age < DEADLINE, "{ts} is now");
        assert_eq!(
            ts.len(),
            "2024-05-01T12:00:00.123Z".len(),
            "milliseconds: {ts}"
        );
        assert_eq!(proxy.server().metrics().access_log_dropped(), 0);
    }
);

io_backends!(
    /// The only backend is dead: the client gets the 503 and the line says why, with no
    /// connect time and no byte relayed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_backend_logs_connect_failed_or_no_backend(io: IoBackend) {
        let dead = dead_addr();
        let dir = TempDir::new("alog-dead");
        let path = dir.0.join("access.log");
        let proxy = Proxy::start(&logged(io, &[dead], &path));
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(DEADLINE, client.read_to_end(&mut answer))
            .await
            .expect("the 503 within the deadline")
            .unwrap();
        assert_eq!(answer, ringlb::RESPONSE_503);
        let lines = tokio::task::block_in_place(|| wait_lines(&path, 1));
        let line = &lines[0];
        assert_eq!(line["client"], client.local_addr().unwrap().to_string());
        match line["termination"].as_str().unwrap() {
            // Still in rotation: it was tried.
            "connect_failed" => assert_eq!(line["target"], dead.to_string(), "{line}"),
            // Already out of rotation: nothing could be tried.
            "no_backend" => assert!(line["target"].is_null(), "{line}"),
            other => panic!("termination {other}: {line}"),
        }
        assert!(line["connect_ms"].is_null(), "{line}");
        assert_eq!(
            (&line["bytes_up"], &line["bytes_down"]),
            (&0.into(), &0.into())
        );
    }
);

io_backends!(
    /// A connection that goes quiet is closed after `idle_timeout` and logged as such.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_connection_logs_idle_timeout(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let dir = TempDir::new("alog-idle");
        let path = dir.0.join("access.log");
        let mut config = logged(io, &[echo.addr], &path);
        config.live.traffic.idle_timeout = Duration::from_millis(300);
        let proxy = Proxy::start(&config);
        proxy.wait_healthy(1).await;
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        client.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        client.read_exact(&mut one).await.unwrap();
        // Then nothing: ringlb closes both sides.
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(DEADLINE, client.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "closed by the idle timeout");
        let lines = tokio::task::block_in_place(|| wait_lines(&path, 1));
        let line = &lines[0];
        assert_eq!(line["termination"], "idle_timeout", "{line}");
        assert_eq!(
            (&line["bytes_up"], &line["bytes_down"]),
            (&1.into(), &1.into())
        );
        assert!(line["duration_ms"].as_f64().unwrap() >= 300.0, "{line}");
    }
);

io_backends!(
    /// logrotate's way: the file is renamed, SIGUSR1 makes ringlb reopen its path, and the next
    /// lines land in the new file while the renamed one keeps what it had.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigusr1_reopens_the_file(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let dir = TempDir::new("alog-rotate");
        let path = dir.0.join("access.log");
        let extra = format!(
            "[access_log]\npath = {:?}\nformat = \"text\"",
            path.display()
        );
        let ringlb = Process::start(&toml(io, &[echo.addr], &extra), None);
        tokio::task::block_in_place(|| ringlb.wait_log("Healthy targets: 1", 1));
        exchange(ringlb.addr, b"before").await;
        let before = tokio::task::block_in_place(|| wait_text_lines(&path, 1));
        assert!(before[0].contains(" 6/6 0 client_close -"), "{before:?}");
        let rotated: PathBuf = dir.0.join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        ringlb.signal("USR1");
        tokio::task::block_in_place(|| ringlb.wait_log("SIGUSR1: access log reopened", 1));
        exchange(ringlb.addr, b"after!!").await;
        let after = tokio::task::block_in_place(|| wait_text_lines(&path, 1));
        assert!(after[0].contains(" 7/7 0 client_close -"), "{after:?}");
        assert_eq!(
            wait_text_lines(&rotated, 1),
            before,
            "the old file is left as it was"
        );
    }
);

/// The text log's lines, once it has at least `n`.
fn wait_text_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text.lines().map(str::to_owned).collect();
        }
        assert!(Instant::now() < deadline, "{path:?}: {text:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

io_backends!(
    /// The writer blocks on a FIFO nobody reads: the worker's queue fills, lines are dropped and
    /// counted, and connections are served all the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_cannot_keep_up_drops_and_counts(io: IoBackend) {
        use std::os::unix::fs::OpenOptionsExt;
        let echo = EchoBackend::start().await;
        let dir = TempDir::new("alog-fifo");
        let fifo = dir.0.join("access.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo");
        // Opened for reading (so ringlb's open for writing does not wait) and never read.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let proxy = Proxy::start(&logged(io, &[echo.addr], &fifo));
        proxy.wait_healthy(1).await;
        let metrics = std::sync::Arc::clone(proxy.server().metrics());
        // The pipe holds a few hundred lines, the worker's queue 8,192: then the drops begin.
        let wanted = ringlb::access_log::QUEUE_CAPACITY as u64 + 2_000;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let addr = proxy.addr;
            let metrics = std::sync::Arc::clone(&metrics);
            tasks.spawn(async move {
                while metrics.access_log_dropped() < 100 {
                    assert!(started.elapsed() < DEADLINE * 3, "no drop counted");
                    let mut c = TcpStream::connect(addr).await.unwrap();
                    c.write_all(b"y").await.unwrap();
                    let mut one = [0u8; 1];
                    c.read_exact(&mut one).await.unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let accepted = metrics.total(ringlb::metrics::WorkerCounter::Accepted);
        assert!(accepted >= wanted - 2_000, "{accepted} connections");
        assert!(metrics.access_log_dropped() >= 100);
        let text = metrics.encode();
        let counted = text
            .lines()
            .find(|l| l.starts_with("ringlb_access_log_dropped_total "))
            .unwrap_or_else(|| panic!("{text}"));
        let value: u64 = counted.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value >= 100, "{counted}");
        // Still serving, with the writer stuck.
        tokio::time::timeout(Duration::from_secs(5), exchange(proxy.addr, b"still here"))
            .await
            .expect("served while the log is stuck");
        // Unblock the writer (its next write fails with EPIPE) so the server stops promptly.
        drop(reader);
        drop(proxy);
    }
);
