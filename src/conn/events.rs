//! The log events of a worker's connections, written once for both I/O drivers so that a line
//! reads the same whichever driver runs (operators grep for them), plus the accept pause both
//! drivers keep after an accept error.
//!
//! Owns the wording, levels and fields of these lines and the once-a-second limit on the loud
//! ones. Never decides anything and never does I/O.

use std::{
    cell::Cell,
    io,
    net::SocketAddr,
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

/// A log line of one worker written at most once a second; the next one says how many were held
/// back meanwhile. Shared by reference (`Cell`), as the epoll driver's connection tasks are.
#[derive(Debug, Default, Clone)]
pub(crate) struct Throttle {
    last: Cell<Option<Instant>>,
    held: Cell<u64>,
}

impl Throttle {
    /// `Some(lines held back since the last one)` when a line may be written now.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .get()
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.held.set(self.held.get() + 1);
            return None;
        }
        self.last.set(Some(now));
        Some(self.held.replace(0))
    }
}

/// A connect to a backend found no free local port (`EADDRNOTAVAIL`): every port of the range
/// is in use toward that backend address. At most once a second per worker.
pub(crate) fn no_local_port(throttle: &Throttle, worker: usize, backend: &str, addr: SocketAddr) {
    if let Some(also) = throttle.allow() {
        tracing::warn!(worker, backend, %addr, also,
            "no local port for a backend connection: add `source` addresses (or widen \
             net.ipv4.ip_local_port_range); backend not blamed");
    }
}

/// A backend socket could not be bound to its `source` address (gone from this host since the
/// start?): the client gets the no-backend answer. At most once a second per worker.
pub(crate) fn source_bind_failed(
    throttle: &Throttle,
    worker: usize,
    source: Option<SocketAddr>,
    error: &io::Error,
) {
    if let Some(also) = throttle.allow() {
        let source = source.map(|s| s.ip());
        tracing::warn!(worker, ?source, %error, also,
            "cannot bind a backend connection to its source address; backend not blamed");
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
        Close::Clean(_) => {}
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
