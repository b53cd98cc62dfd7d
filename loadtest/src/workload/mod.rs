//! The workloads: what one load connection does during a phase, one file per mode.
//!
//! Owns the [`Mode`]s and the [`Window`] every loop is bounded by. A loop never starts a request
//! after its window's hard end, never retries a failure silently (each one is counted), and
//! returns its [`Recorder`] by value for the phase to merge.

pub mod bulk;
pub mod closed;
pub mod connect;
pub mod rate;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    client::{Conn, GET_SPELLS},
    outcome::ErrorKind,
    recorder::{Live, Recorder},
};

/// Pause after a failed connect before the next attempt in the closed loops, so that a dead
/// path costs a bounded number of attempts.
pub const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// How the load is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Open loop at a constant rate; latency from the intended send time.
    Rate,
    /// Closed loop, as fast as possible; reports throughput.
    Max,
    /// Each connection echoes `--bytes` through the path, over and over; reports Gbit/s.
    Bulk,
    /// A new TCP connection per request; reports connections/s and connect latency.
    Connect,
}

impl Mode {
    /// The unit of the mode's throughput figure.
    pub fn throughput_unit(self) -> &'static str {
        match self {
            Mode::Rate | Mode::Max => "req/s",
            Mode::Bulk => "Gbit/s",
            Mode::Connect => "conn/s",
        }
    }
}

/// Everything a load connection needs to know about the workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The mode.
    pub mode: Mode,
    /// Total intended requests per second over all connections (rate mode).
    pub rate: f64,
    /// Number of concurrent connections.
    pub connections: usize,
    /// Bytes per echo transfer (bulk mode).
    pub bytes: u64,
    /// Deadline of one request (and of one connect).
    pub timeout: Duration,
}

/// The time bounds of one phase.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When measurement starts (connections are opened just before).
    pub start: Instant,
    /// No request is *scheduled* at or after this.
    pub end: Instant,
    /// No request is *sent* at or after this (late, queued requests may still go until then).
    pub hard_end: Instant,
}

impl Window {
    /// A window starting `setup` from now and lasting `duration`, with `grace` for stragglers.
    pub fn after(setup: Duration, duration: Duration, grace: Duration) -> Window {
        let start = Instant::now() + setup;
        Window {
            start,
            end: start + duration,
            hard_end: start + duration + grace,
        }
    }
}

/// Runs connection `index` of `workload` against `addr` for `window`.
pub async fn run_connection(
    workload: Arc<Workload>,
    index: usize,
    addr: SocketAddr,
    window: Window,
    live: Arc<Live>,
) -> Recorder {
    match workload.mode {
        Mode::Rate => rate::run(&workload, index, addr, window, &live).await,
        Mode::Max => closed::run(&workload, addr, window, &live).await,
        Mode::Bulk => bulk::run(&workload, addr, window, &live).await,
        Mode::Connect => connect::run(&workload, addr, window, &live).await,
    }
}

/// One `GET /spells` on the kept-alive connection in `conn`, connecting first if there is none.
/// The connection is dropped after any failure and after a `Connection: close` reply.
pub async fn keep_alive_request(
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(), ErrorKind> {
    let open = match conn {
        Some(open) => open,
        None => conn.insert(Conn::connect(addr, timeout).await?),
    };
    let result = tokio::time::timeout(timeout, open.request(GET_SPELLS))
        .await
        .unwrap_or(Err(ErrorKind::Timeout));
    match result {
        Ok(reply) => {
            if reply.close {
                *conn = None;
            }
            Ok(())
        }
        Err(kind) => {
            *conn = None;
            Err(kind)
        }
    }
}

/// Opens the first connection before the window starts (failures are counted), then waits for
/// the start.
pub async fn open_before_start(
    addr: SocketAddr,
    workload: &Workload,
    window: &Window,
    recorder: &mut Recorder,
    live: &Live,
) -> Option<Conn> {
    let conn = match Conn::connect(addr, workload.timeout).await {
        Ok(conn) => Some(conn),
        Err(kind) => {
            recorder.failure(kind, live);
            None
        }
    };
    tokio::time::sleep_until(window.start.into()).await;
    conn
}

/// True for errors that mean "could not connect": closed loops back off after them.
pub fn is_connect_error(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Refused | ErrorKind::ConnectTimeout)
}
