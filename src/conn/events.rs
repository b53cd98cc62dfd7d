//! The log events of a worker's connections, written once for both I/O drivers so that a line
//! reads the same whichever driver runs (operators grep for them), plus the accept pause both
//! drivers keep after an accept error.
//!
//! Owns the wording, levels and fields of these lines and the once-a-second limit on the loud
//! ones. Never decides anything and never does I/O.

use std::{
    io,
    time::{Duration, Instant},
};

use super::ending::{Close, SocketError};
use super::header::HeaderRefused;

/// How long accepting pauses after an accept error (out of descriptors or memory), and how often
/// a worker at the connection cap looks whether another worker's connection has closed.
pub(crate) const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Accept errors of one worker, logged at most once a second.
#[derive(Debug, Default)]
pub(crate) struct AcceptErrors {
    last: Option<Instant>,
}

impl AcceptErrors {
    /// An accept failed with `error` while `open` connections were open; the caller pauses
    /// accepting for [`ACCEPT_PAUSE`].
    pub(crate) fn failed(&mut self, worker: usize, error: &io::Error, open: usize) {
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.last = Some(now);
            tracing::warn!(worker, %error, open, "accept failed; pausing accepts for 100ms");
        }
    }
}

/// The connection cap was reached: accepting pauses.
pub(crate) fn limit_reached(worker: usize, open: usize) {
    tracing::debug!(worker, open, "max_connections reached: pausing accepts");
}

/// Shutdown: no new connections; `open` may finish until the drain deadline.
pub(crate) fn stopping(worker: usize, open: usize) {
    tracing::debug!(worker, open, "stopping: no new connections");
}

/// The drain deadline passed with `open` connections still open.
pub(crate) fn drain_expired(worker: usize, open: usize) {
    if open > 0 {
        tracing::info!(worker, open, "drain timeout: closing open connections");
    }
}

/// The worker's loop has ended.
pub(crate) fn stopped(worker: usize) {
    tracing::debug!(worker, "worker stopped");
}

/// A connection moved no byte for `idle_timeout`.
pub(crate) fn idle_timeout(worker: usize) {
    tracing::debug!(worker, "idle timeout: closing connection");
}

/// A client's PROXY header was refused.
pub(crate) fn header_refused(worker: usize, why: &HeaderRefused) {
    tracing::debug!(worker, reason = %why, "PROXY header refused; closing the client");
}

/// No socket could be made for a backend.
pub(crate) fn no_backend_socket(worker: usize, error: &io::Error) {
    tracing::debug!(worker, %error, "cannot create backend socket");
}

/// How a relayed connection ended, when it was not cleanly.
pub(crate) fn ended(worker: usize, close: Close) {
    match close {
        Close::Clean => {}
        Close::BothFailed(fault) => {
            tracing::debug!(worker, %fault, "connection failed on both sides");
        }
        Close::Reset { reset, fault } => reset_after(worker, reset, fault),
    }
}

fn reset_after(worker: usize, reset: super::ending::Side, fault: SocketError) {
    tracing::debug!(worker, %fault, %reset,
        "connection failed: resetting the other side once it has every byte");
}

/// A connection failed for a reason of the worker's own (`error`).
pub(crate) fn failed(worker: usize, error: &io::Error) {
    tracing::debug!(worker, %error, "connection failed");
}
