//! What the health checker last observed, readable from any thread.
//!
//! Owns the latest [`StatusReport`], the runtime overrides in force, the count of finished
//! rounds and the count of publications.
//! Written only by the health checker (one `ArcSwap` store and one `watch` send per round);
//! readers never block the checker and the checker never waits for readers.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::{
    overrides::{AdminState, Overrides},
    probe::ProbeFailure,
};
use crate::backend::Backend;

/// A shared view of the health checker, from [`super::HealthChecker::status_handle`].
#[derive(Debug)]
pub struct HealthStatus {
    report: ArcSwap<StatusReport>,
    rounds: watch::Sender<u64>,
    publications: AtomicU64,
    /// Every endpoint known at the end of the last round, healthy or not, with its live
    /// counters (for metrics and the admin's `/status`).
    backends: ArcSwap<Vec<Arc<Backend>>>,
    /// The runtime API's overrides in force.
    overrides: ArcSwap<Overrides>,
}

/// Everything the checker knew at the end of a round (or after priming, as round 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusReport {
    /// The round this report closes; 0 before the first round.
    pub round: u64,
    /// One entry per configured target, in configuration order.
    pub targets: Vec<TargetStatus>,
}

/// The state of one configured target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    /// The target as configured (`host:port`).
    pub name: String,
    /// Why the last resolution failed, or `None` if it succeeded.
    pub resolve_error: Option<ProbeFailure>,
    /// Its state, as the runtime API set it (`ready` unless overridden).
    pub state: AdminState,
    /// Its weight in the file.
    pub weight: u32,
    /// The weight the runtime API gave it instead, if any.
    pub weight_override: Option<u32>,
    /// The endpoints currently known for this target, in address order.
    pub endpoints: Vec<EndpointStatus>,
}

/// The state of one resolved endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    /// The endpoint's address.
    pub addr: SocketAddr,
    /// Whether it is in the balancer's healthy set.
    pub healthy: bool,
    /// Consecutive passed probes, up to now.
    pub consecutive_successes: u32,
    /// Consecutive failed probes (or failed resolutions), up to now.
    pub consecutive_failures: u32,
    /// The last probe's outcome, `None` if it was never probed (primed at start-up).
    pub last: Option<Result<(), ProbeFailure>>,
    /// How long the last probe took, `None` if it was never probed.
    pub check_duration: Option<Duration>,
}

impl StatusReport {
    /// The endpoint `addr` of target `target`, if it is known.
    pub fn endpoint(&self, target: usize, addr: SocketAddr) -> Option<&EndpointStatus> {
        let endpoints = &self.targets.get(target)?.endpoints;
        endpoints.iter().find(|e| e.addr == addr)
    }
}

impl HealthStatus {
    pub(crate) fn new() -> Self {
        Self {
            report: ArcSwap::from_pointee(StatusReport::default()),
            rounds: watch::Sender::new(0),
            publications: AtomicU64::new(0),
            backends: ArcSwap::from_pointee(Vec::new()),
            overrides: ArcSwap::from_pointee(Overrides::default()),
        }
    }

    /// The latest report.
    pub fn report(&self) -> Arc<StatusReport> {
        self.report.load_full()
    }

    /// The number of rounds finished so far.
    pub fn rounds(&self) -> u64 {
        *self.rounds.borrow()
    }

    /// A receiver of the number of finished rounds: `rx.wait_for(|&n| n >= k).await` returns once
    /// round `k` has published its result and stored its report.
    pub fn subscribe_rounds(&self) -> watch::Receiver<u64> {
        self.rounds.subscribe()
    }

    /// How many healthy sets the checker has published to the balancer so far.
    pub fn publications(&self) -> u64 {
        self.publications.load(Relaxed)
    }

    /// Every endpoint known at the end of the last round (healthy or not), in report order,
    /// with its live counters.
    pub fn backends(&self) -> Arc<Vec<Arc<Backend>>> {
        self.backends.load_full()
    }

    /// The runtime API's overrides in force: what a binary upgrade hands over to the new
    /// process (see [`super::Reloader::restore`]).
    pub fn overrides(&self) -> Arc<Overrides> {
        self.overrides.load_full()
    }

    pub(crate) fn store_overrides(&self, overrides: Overrides) {
        self.overrides.store(Arc::new(overrides));
    }

    pub(crate) fn store_backends(&self, backends: Vec<Arc<Backend>>) {
        self.backends.store(Arc::new(backends));
    }

    pub(crate) fn store(&self, report: StatusReport) {
        self.report.store(Arc::new(report));
    }

    pub(crate) fn round_finished(&self, round: u64) {
        self.rounds.send_replace(round);
    }

    pub(crate) fn published(&self) {
        self.publications.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_subscribers_see_finished_rounds() {
        let status = HealthStatus::new();
        let mut rx = status.subscribe_rounds();
        status.round_finished(3);
        assert_eq!(*rx.wait_for(|&n| n >= 3).await.unwrap(), 3);
        assert_eq!(status.rounds(), 3);
    }

    #[test]
    fn endpoints_are_found_by_target_and_address() {
        let addr: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let report = StatusReport {
            round: 1,
            targets: vec![TargetStatus {
                name: "a:80".into(),
                resolve_error: None,
                state: AdminState::Ready,
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
            }],
        };
        assert!(report.endpoint(0, addr).is_some_and(|e| e.healthy));
        assert!(report.endpoint(1, addr).is_none());
    }
}
