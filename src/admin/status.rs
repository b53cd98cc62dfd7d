//! `GET /status`: every pool and its targets, each target's runtime state and weight, its
//! resolved addresses, health state, last check and live connection counts, as JSON.
//!
//! Owns the JSON shape (documented in the README): the targets grouped by pool under `pools`,
//! and also as one flat `targets` list (each naming its pool) for the consumers written before
//! there were pools. Builds it from [`Metrics::snapshot`] on the admin thread. Never touches a
//! counter, never blocks a health checker.

use std::net::SocketAddr;

use serde::Serialize;

use crate::{
    health::{AdminState, EndpointStatus, TargetStatus},
    metrics::{Metrics, PoolSnapshot},
    stats::{DOWNSTREAM, UPSTREAM},
};

/// The whole document.
#[derive(Debug, Serialize)]
struct Status<'a, 'p> {
    /// Shutdown started: no new client is accepted, open connections are finishing.
    draining: bool,
    /// The worker that ended on its own and why (ringlb is then stopping), `null` otherwise.
    worker_failure: Option<WorkerFailure<'a>>,
    io_backend: &'static str,
    open_connections: usize,
    /// Health-check rounds finished, summed over the pools (0 until the first one ends).
    health_check_rounds: u64,
    /// Every pool, in configuration order, with its targets.
    pools: &'p [Pool<'a>],
    /// Every pool's targets, one list, in pool order (each says its pool).
    targets: Vec<&'p Target<'a>>,
}

#[derive(Debug, Serialize)]
struct Pool<'a> {
    /// `[[pools]] name`, or `default`.
    name: &'a str,
    /// Rounds its health checker finished (0 until the first one ends).
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
    /// The pool it belongs to (a name may be in several pools: one entry per pool).
    pool: &'a str,
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
    let pools: Vec<Pool> = snapshot.pools.iter().map(pool).collect();
    let rounds = pools.iter().map(|p| p.health_check_rounds);
    let status = Status {
        draining: metrics.draining(),
        worker_failure: metrics.worker_failure().map(|f| WorkerFailure {
            worker: f.worker,
            cause: &f.cause,
        }),
        io_backend: metrics.io_backend(),
        open_connections: metrics.open_connections(),
        health_check_rounds: rounds.fold(0, u64::wrapping_add),
        pools: &pools,
        targets: pools.iter().flat_map(|p| &p.targets).collect(),
    };
    let mut text = serde_json::to_string_pretty(&status).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot render /status");
        "{}".to_owned()
    });
    text.push('\n');
    text
}

fn pool(pool: &PoolSnapshot) -> Pool<'_> {
    let targets = pool.report.targets.iter().enumerate();
    Pool {
        name: &pool.name,
        health_check_rounds: pool.report.round,
        targets: targets
            .map(|(index, t)| target(&pool.name, t, |addr| pool.backend(index, addr)))
            .collect(),
    }
}

fn target<'a>(
    pool: &'a str,
    target: &'a TargetStatus,
    backend: impl Fn(SocketAddr) -> Option<&'a crate::backend::Backend>,
) -> Target<'a> {
    let maint = target.state == AdminState::Maint;
    Target {
        name: &target.name,
        pool,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        backend::Backend, health::StatusReport, limit::ConnectionLimit, metrics::test_pool,
        shutdown::Shutdown,
    };

    fn target(addr: SocketAddr, state: AdminState) -> TargetStatus {
        TargetStatus {
            name: "api:8001".into(),
            resolve_error: None,
            state,
            weight: 1,
            weight_override: None,
            endpoints: vec![EndpointStatus {
                addr,
                healthy: true,
                consecutive_successes: 1,
                consecutive_failures: 0,
                last: Some(Ok(())),
                check_duration: None,
            }],
        }
    }

    /// Pools `web` (round 3) and `db` (round 2), each holding a target `api:8001`, drained in
    /// `web` only, with one live connection on `db`'s endpoint.
    fn two_pools() -> serde_json::Value {
        let (web, db) = (test_pool("web"), test_pool("db"));
        let (one, two): (SocketAddr, SocketAddr) = (
            "10.0.0.1:8001".parse().unwrap(),
            "10.0.0.2:8001".parse().unwrap(),
        );
        for (pool, addr, state, round) in [
            (&web, one, AdminState::Drain, 3),
            (&db, two, AdminState::Ready, 2),
        ] {
            pool.status.store(StatusReport {
                round,
                targets: vec![target(addr, state)],
            });
            let backend = Arc::new(Backend::new(0, "api:8001", addr));
            pool.status.store_backends(vec![backend]);
        }
        db.status.backends()[0].connection_opened();
        let metrics = Metrics::new(
            Vec::new(),
            vec![web, db],
            vec!["default".into()],
            Arc::new(ConnectionLimit::new(1)),
            Shutdown::new(),
        );
        serde_json::from_str(&render(&metrics)).unwrap()
    }

    #[test]
    fn targets_are_grouped_by_pool() {
        let status = two_pools();
        let pools = status["pools"].as_array().unwrap();
        let names: Vec<_> = pools.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["web", "db"]);
        assert_eq!(pools[0]["health_check_rounds"], 3);
        assert_eq!(pools[1]["health_check_rounds"], 2);
        let web = &pools[0]["targets"][0];
        assert_eq!(
            (&web["name"], &web["pool"]),
            (&"api:8001".into(), &"web".into())
        );
        assert_eq!(web["state"], "drain");
        assert_eq!(web["endpoints"][0]["addr"], "10.0.0.1:8001");
        let db = &pools[1]["targets"][0];
        assert_eq!((&db["pool"], &db["state"]), (&"db".into(), &"ready".into()));
        assert_eq!(db["endpoints"][0]["active_connections"], 1);
        assert_eq!(
            web["endpoints"][0]["active_connections"], 0,
            "not the other pool's"
        );
    }

    #[test]
    fn the_flat_target_list_stays_with_each_targets_pool() {
        let status = two_pools();
        assert_eq!(status["health_check_rounds"], 5, "summed over the pools");
        let flat = status["targets"].as_array().unwrap();
        let pools: Vec<_> = flat.iter().map(|t| t["pool"].as_str().unwrap()).collect();
        assert_eq!(pools, ["web", "db"]);
        assert_eq!(flat[0], status["pools"][0]["targets"][0]);
        assert_eq!(flat[1], status["pools"][1]["targets"][0]);
    }
}
