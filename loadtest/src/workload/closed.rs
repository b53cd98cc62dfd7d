//! Closed loop, as fast as possible: the next request goes out when the last reply is in.
//!
//! Owns the max-mode loop of one connection. It measures throughput, and latency from the
//! actual send time (a closed loop cannot be corrected for coordinated omission: its latencies
//! describe a client that politely waits, so rate mode is the one to quote for latency). Never
//! runs past the window's end.

use std::{net::SocketAddr, time::Instant};

use crate::recorder::{Live, Recorder};

use super::{
    is_connect_error, keep_alive_request, open_before_start, Window, Workload, CONNECT_BACKOFF,
};

/// Runs one closed-loop connection until the window ends.
pub async fn run(workload: &Workload, addr: SocketAddr, window: Window, live: &Live) -> Recorder {
    let mut recorder = Recorder::default();
    let mut conn = open_before_start(addr, workload, &window, &mut recorder, live).await;
    while Instant::now() < window.end {
        let sent = Instant::now();
        let outcome = keep_alive_request(&mut conn, addr, workload.timeout).await;
        let done = Instant::now();
        match outcome {
            Ok(()) => recorder.success(done - sent, live),
            Err(kind) => {
                recorder.failure(kind, live);
                if is_connect_error(kind) {
                    tokio::time::sleep(CONNECT_BACKOFF).await;
                }
            }
        }
        recorder.last_done = done - window.start;
    }
    recorder
}
