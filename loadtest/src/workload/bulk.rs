//! Bulk transfer: each connection echoes `--bytes` through the path, again and again.
//!
//! Owns the bulk-mode loop of one connection. Every payload byte crosses the path twice (client
//! to replica and back), so a proxy relays real bytes in both directions at once. Throughput
//! counts echoed bytes as they arrive, so a transfer cut off by the end of the window still
//! counts for what it moved; the latency histogram holds complete transfers only. Never runs
//! past the window's end.

use std::{net::SocketAddr, sync::atomic::Ordering, time::Instant};

use crate::{
    client::Conn,
    recorder::{Live, Recorder},
};

use super::{is_connect_error, open_before_start, Window, Workload, CONNECT_BACKOFF};

/// Runs one bulk connection until the window ends.
pub async fn run(workload: &Workload, addr: SocketAddr, window: Window, live: &Live) -> Recorder {
    let mut recorder = Recorder::default();
    let mut conn = open_before_start(addr, workload, &window, &mut recorder, live).await;
    let before = live.bytes.load(Ordering::Relaxed);
    while Instant::now() < window.end {
        let open = match conn.as_mut() {
            Some(open) => open,
            None => match Conn::connect(addr, workload.timeout).await {
                Ok(open) => conn.insert(open),
                Err(kind) => {
                    recorder.failure(kind, live);
                    if is_connect_error(kind) {
                        tokio::time::sleep(CONNECT_BACKOFF).await;
                    }
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let transfer = open.echo(workload.bytes, &live.bytes);
        match tokio::time::timeout_at(window.end.into(), transfer).await {
            Err(_window_closed) => break,
            Ok(Ok(_)) => recorder.success(sent.elapsed(), live),
            Ok(Err(kind)) => {
                recorder.failure(kind, live);
                conn = None;
            }
        }
    }
    recorder.bytes = live.bytes.load(Ordering::Relaxed) - before;
    recorder.last_done = Instant::now().min(window.end) - window.start;
    recorder
}
