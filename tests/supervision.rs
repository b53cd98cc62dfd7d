//! The process watches itself, against the real (debug) binary: a worker that panics is logged
//! with its id and cause, turns `/healthz` to 503, and stops the whole process after a drain
//! with a non-zero exit code, so its supervisor restarts it; and a descriptor limit too small
//! for `max_connections` is warned about at start.

mod common;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use common::{
    admin_http::{admin_addr, get},
    binary::{toml, Process},
    *,
};
use ringlb::config::IoBackend;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A client connection served by a worker that is running: its echo comes back. Worker 1,
/// told to panic, never accepts, so connections it was handed get no echo and are left.
async fn connection_to_a_live_worker(addr: SocketAddr) -> (TcpStream, Vec<TcpStream>) {
    let mut stranded = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "no connection reached worker 0");
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut one)).await {
            Ok(Ok(_)) => return (s, stranded),
            // In worker 1's backlog; reset once it dies.
            _ => stranded.push(s),
        }
    }
}

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_that_panics_stops_ringlb_after_a_drain_with_a_failure(io: IoBackend) {
        let echo = EchoBackend::start().await;
        let text =
            toml(io, &[echo.addr], "drain_timeout = \"2s\"").replace("workers = 1", "workers = 2");
        assert!(text.contains("workers = 2"), "{text}");
        let mut ringlb = Process::start_with(&text, None, |cmd| {
            cmd.env("RINGLB_DEBUG_PANIC_WORKER", "1");
        });
        tokio::task::block_in_place(|| ringlb.wait_log("Healthy targets: 1", 1));
        let admin = admin_addr(&ringlb);
        assert_eq!(get(admin, "/healthz").await, (200, "ok\n".to_owned()));

        // The first open connection is worker 1's cue to panic; this one keeps the drain going.
        let (mut open, stranded) = connection_to_a_live_worker(ringlb.addr).await;
        tokio::task::block_in_place(|| ringlb.wait_log("worker failed", 1));
        let failed_at = Instant::now();
        let line = {
            let log = ringlb.log.lock().unwrap();
            log.iter()
                .find(|l| l.contains("worker failed"))
                .cloned()
                .unwrap()
        };
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains("worker=1"), "names the worker: {line}");
        assert!(
            line.contains("panicked: RINGLB_DEBUG_PANIC_WORKER=1: injected panic"),
            "names the panic: {line}"
        );

        let (status, body) = get(admin, "/healthz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("worker 1 failed: panicked"), "{body}");
        let (_, status_json) = get(admin, "/status").await;
        assert!(status_json.contains("\"worker\": 1"), "{status_json}");
        assert!(status_json.contains("\"draining\": true"), "{status_json}");
        // Draining, not dead: the other worker still relays the open connection.
        open.write_all(b"y").await.unwrap();
        let mut one = [0u8; 1];
        open.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"y");
        assert!(ringlb.child.try_wait().unwrap().is_none(), "still draining");

        let status = tokio::task::block_in_place(|| ringlb.wait_exit(DEADLINE));
        assert_eq!(status.code(), Some(1), "exits non-zero: {status:?}");
        let took = failed_at.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "exits once drain_timeout (2s) is over, took {took:?}"
        );
        assert_eq!(
            ringlb.log_lines("stopping ringlb after a worker failure"),
            1
        );
        drop(stranded);
    }
);

io_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_descriptor_limit_too_small_for_max_connections_is_warned_about(io: IoBackend) {
        if !common::binary::prlimit_available() {
            return;
        }
        let echo = EchoBackend::start().await;
        // The warning comes before "ringlb started", which Process::start waits for. 10
        // connections (20 descriptors with the copy relay; auto and splice may hold pipes too)
        // and no admin API fit in 64 with the reserve.
        let small = toml(io, &[echo.addr], "max_connections = 10\nrelay = \"copy\"")
            .replace("[admin]\n", "[admin]\nenabled = false\n");
        let roomy = Process::start(&small, Some("--nofile=64:64"));
        assert_eq!(roomy.log_lines("open-files limit is too small"), 0);
        drop(roomy);
        // 100 connections do not, and the admin API may hold 1024 more descriptors. The default
        // relay (auto) may splice on io_uring, so a connection may hold two pipes there.
        let text = toml(io, &[echo.addr], "max_connections = 100");
        let tight = Process::start(&text, Some("--nofile=64:64"));
        let warnings: Vec<String> = {
            let log = tight.log.lock().unwrap();
            log.iter()
                .filter(|l| l.contains("open-files limit is too small"))
                .cloned()
                .collect()
        };
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let line = &warnings[0];
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("limit=64"), "{line}");
        assert!(line.contains("max_connections=100"), "{line}");
        let per_connection = if io == IoBackend::Epoll { 2 } else { 6 };
        assert!(
            line.contains(&format!("per_connection={per_connection} ")),
            "{line}"
        );
    }
);
