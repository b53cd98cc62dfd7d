//! End-to-end: running out of file descriptors is this host's problem, not the backends'.
//!
//! The real binary runs under `prlimit --nofile=64:64` in front of two healthy backends while
//! idle clients hold every descriptor it has. Its health probes cannot even open a socket
//! (`EMFILE`); that must leave both backends in rotation (no `Healthy targets: 0`), and once the
//! clients go away, traffic flows without a restart.

mod common;

use std::time::Duration;

use common::{
    binary::{toml, Process},
    body, io_backends, NamedBackend,
};
use ringlb::config::IoBackend;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

/// Idle clients opened against a 64-descriptor ringlb: each one it serves costs it two.
const IDLE_CLIENTS: usize = 60;

/// The log line of the health checker when a probe could not run for local reasons.
const LOCAL_WARNING: &str = "health probe could not run";

/// The log line of the health checker publishing an empty healthy set.
const NONE_HEALTHY: &str = "Healthy targets: 0";

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn descriptor_exhaustion_leaves_healthy_backends_in_rotation(io: IoBackend) {
        if !common::binary::prlimit_available() {
            return;
        }
        let a = NamedBackend::start("a").await;
        let b = NamedBackend::start("b").await;
        let config = toml(io, &[a.addr, b.addr], "");
        assert!(config.contains("interval = \"100ms\""), "{config}");
        let config = config.replace("interval = \"100ms\"", "interval = \"300ms\"");
        let ringlb = Process::start(&config, Some("--nofile=64:64"));
        let first = request(ringlb.addr, Duration::from_secs(5)).await;
        assert!(
            matches!(first.as_deref(), Some("a" | "b")),
            "served before the exhaustion: {first:?}"
        );

        let mut idle = Vec::new();
        for _ in 0..IDLE_CLIENTS {
            let connect = TcpStream::connect(ringlb.addr);
            if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(2), connect).await {
                idle.push(stream);
            }
        }
        let exhausted_since = Instant::now();
        // Two warnings, at most one a second, span at least three rounds of 300 ms that could not
        // probe; without the fix the first such round takes both backends out (fall = 1).
        wait_for_log(&ringlb, Duration::from_secs(10), |p| {
            p.log_lines(LOCAL_WARNING) >= 2 || p.log_lines(NONE_HEALTHY) > 0
        })
        .await;
        let log = || ringlb.log.lock().unwrap().join("\n");
        assert_eq!(
            ringlb.log_lines(NONE_HEALTHY),
            0,
            "healthy backends taken out: {}",
            log()
        );
        let warnings = ringlb.log_lines(LOCAL_WARNING);
        let seconds = exhausted_since.elapsed().as_secs() as usize + 2;
        assert!(warnings <= seconds, "{warnings} warnings in ~{seconds}s");
        let warning = ringlb
            .log
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(LOCAL_WARNING))
            .cloned()
            .unwrap_or_else(|| panic!("no {LOCAL_WARNING:?} line: {}", log()));
        assert!(warning.contains("WARN"), "{warning}");
        assert!(warning.contains("Too many open files"), "{warning}");
        assert!(warning.contains("target states unchanged"), "{warning}");

        drop(idle);
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let answer = request(ringlb.addr, Duration::from_millis(500)).await;
            if matches!(answer.as_deref(), Some("a" | "b")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no backend answer after the clients left (last: {answer:?}): {}",
                log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(ringlb.log_lines(NONE_HEALTHY), 0, "{}", log());
    }
);

/// One `GET /` through `addr` within `within`: the response body, or `None` if there was no
/// complete response in time (refused, reset, or too slow).
async fn request(addr: std::net::SocketAddr, within: Duration) -> Option<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let get = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
        stream.write_all(get).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        Some(body(&response))
    };
    tokio::time::timeout(within, exchange).await.ok().flatten()
}

/// Waits until `done` holds for the process's log, or `within` passes (the log has no signal to
/// await: it is polled every 10 ms, as [`Process::wait_log`] does).
async fn wait_for_log(process: &Process, within: Duration, done: impl Fn(&Process) -> bool) {
    let deadline = Instant::now() + within;
    while !done(process) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
