//! `GET /status`: every target, its runtime state and weight, its resolved addresses, health
//! state, last check and live connection counts, as JSON.
//!
//! Owns the JSON shape (documented in the README); builds it from [`Metrics::snapshot`] on the
//! admin thread. Never touches a counter, never blocks the health checker.

use std::net::SocketAddr;

use serde::Serialize;

use crate::{
    health::{AdminState, EndpointStatus, TargetStatus},
    metrics::Metrics,
    stats::{DOWNSTREAM, UPSTREAM},
};

/// The whole document.
#[derive(Debug, Serialize)]
struct Status<'a> {
    /// Shutdown started: no new client is accepted, open connections are finishing.
    draining: bool,
    /// The worker that ended on its own and why (ringlb is then stopping), `null` otherwise.
    worker_failure: Option<WorkerFailure<'a>>,
    io_backend: &'static str,
    open_connections: usize,
    /// Health-check rounds finished (0 until the first one ends).
    health_check_rounds: u64,
    targets: Vec<Target<'a>>,
}

#[derive(Debug, Serialize)]
struct WorkerFailure<'a> {
    worker: usize,
    /// The panic message or the error.
    cause: &'a str,
}

#[derive(Debug, Serialize)]
struct Target<'a> {
    /// As configured, `host:port`.
    name: &'a str,
    /// `ready`, `drain` (no new connection) or `maint` (out of rotation, not probed), as the
    /// runtime API set it.
    state: &'static str,
    /// Its weight in the file.
    weight: u32,
    /// The weight the runtime API set instead, `null` when none is.
    weight_override: Option<u32>,
    /// Every address the name resolved to (one endpoint each).
    addresses: Vec<SocketAddr>,
    /// Why the last resolution failed, `null` when it succeeded.
    resolve_error: Option<String>,
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, Serialize)]
struct Endpoint {
    addr: SocketAddr,
    /// `up` (in rotation), `down` (out of rotation), `pending` (resolved, not probed yet) or
    /// `maint` (its target is in maintenance: not probed, out of rotation).
    state: &'static str,
    /// `passed`, `failed`, or `null` before the first probe.
    last_check: Option<&'static str>,
    /// Why the last check failed (`refused`, `timeout`, `status 500`, ...), `null` otherwise.
    reason: Option<String>,
    /// How long the last probe took, in milliseconds.
    last_check_ms: Option<f64>,
    consecutive_successes: u32,
    consecutive_failures: u32,
    /// Live counters; `null` only for an endpoint that left during this request.
    active_connections: Option<usize>,
    connections_total: Option<u64>,
    connect_failures: Option<u64>,
    bytes_upstream: Option<u64>,
    bytes_downstream: Option<u64>,
}

/// The `/status` document, pretty-printed.
pub(super) fn render(metrics: &Metrics) -> String {
    let snapshot = metrics.snapshot();
    let targets = snapshot
        .report
        .targets
        .iter()
        .enumerate()
        .map(|(index, target)| self::target(target, |addr| snapshot.backend(index, addr)))
        .collect();
    let status = Status {
        draining: metrics.draining(),
        worker_failure: metrics.worker_failure().map(|f| WorkerFailure {
            worker: f.worker,
            cause: &f.cause,
        }),
        io_backend: metrics.io_backend(),
        open_connections: metrics.open_connections(),
        health_check_rounds: snapshot.report.round,
        targets,
    };
    let mut text = serde_json::to_string_pretty(&status).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot render /status");
        "{}".to_owned()
    });
    text.push('\n');
    text
}

fn target<'a>(
    target: &'a TargetStatus,
    backend: impl Fn(SocketAddr) -> Option<&'a crate::backend::Backend>,
) -> Target<'a> {
    let maint = target.state == AdminState::Maint;
    Target {
        name: &target.name,
        state: target.state.as_str(),
        weight: target.weight,
        weight_override: target.weight_override,
        addresses: target.endpoints.iter().map(|e| e.addr).collect(),
        resolve_error: target.resolve_error.as_ref().map(ToString::to_string),
        endpoints: target
            .endpoints
            .iter()
            .map(|e| endpoint(e, maint, backend(e.addr)))
            .collect(),
    }
}

fn endpoint(
    status: &EndpointStatus,
    maint: bool,
    backend: Option<&crate::backend::Backend>,
) -> Endpoint {
    let state = match (maint, status.healthy, &status.last) {
        (true, _, _) => "maint",
        (false, true, _) => "up",
        (false, false, None) => "pending",
        (false, false, Some(_)) => "down",
    };
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let bytes = backend.map(|b| b.stats.bytes.total());
    Endpoint {
        addr: status.addr,
        state,
        last_check: status
            .last
            .as_ref()
            .map(|last| if last.is_ok() { "passed" } else { "failed" }),
        reason: match &status.last {
            Some(Err(reason)) => Some(reason.to_string()),
            _ => None,
        },
        last_check_ms: status.check_duration.map(|d| d.as_secs_f64() * 1e3),
        consecutive_successes: status.consecutive_successes,
        consecutive_failures: status.consecutive_failures,
        active_connections: backend.map(|b| b.active()),
        connections_total: backend.map(|b| b.stats.total.load(relaxed)),
        connect_failures: backend.map(|b| b.stats.connect_failures.load(relaxed)),
        bytes_upstream: bytes.map(|b| b[UPSTREAM]),
        bytes_downstream: bytes.map(|b| b[DOWNSTREAM]),
    }
}
