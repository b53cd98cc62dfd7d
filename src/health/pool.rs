//! The endpoints the health checker knows, their hysteresis state and the published membership.
//!
//! Owns the consecutive success/failure counters of every endpoint, its `Arc<Backend>` (kept for
//! as long as its address keeps resolving, so worker counters survive health flaps) and the last
//! membership handed to the balancer. Pure bookkeeping: never does I/O, never awaits, never
//! publishes by itself. Logs each state flip, and nothing else per round.
//!
//! The runtime API reaches it as plain settings per target ([`Pool::set_admin`]): the weight its
//! backends get (0 while it drains) and whether it is in maintenance (its endpoints are kept,
//! and probed by nobody, but never published).

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use tracing::{info, warn};

use super::{probe::ProbeFailure, status::EndpointStatus};
use crate::{backend::Backend, config::SendProxy};

/// What a backend is created with: its target's weight and PROXY protocol setting.
type Setup = (u32, SendProxy);

/// An endpoint's identity: its target's index in the configuration and its address.
pub(crate) type Key = (usize, SocketAddr);

/// The outcome of one probe (or of a failed resolution) for one endpoint.
pub(crate) type Outcome = Result<(), ProbeFailure>;

/// Where an endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Just appeared in a resolution: enters on its first passed probe.
    New,
    /// In the healthy set; leaves after `fall` consecutive failures.
    Healthy,
    /// Out of the healthy set; comes back after `rise` consecutive successes.
    Unhealthy,
}

#[derive(Debug)]
struct Endpoint {
    backend: Arc<Backend>,
    state: State,
    successes: u32,
    failures: u32,
    last: Option<Outcome>,
    /// How long the last probe took.
    check_duration: Option<Duration>,
}

/// All endpoints, per target in configuration order, each target's in address order.
#[derive(Debug)]
pub(crate) struct Pool {
    rise: u32,
    fall: u32,
    targets: Vec<BTreeMap<SocketAddr, Endpoint>>,
    /// Each target's weight, given to its endpoints' backends.
    weights: Vec<u32>,
    /// Each target's PROXY protocol setting, given to its endpoints' backends.
    proxies: Vec<SendProxy>,
    /// Each target's maintenance flag: its endpoints are never published.
    maint: Vec<bool>,
    /// The membership last returned by [`Pool::take_change`]; `None` forces the next one out
    /// (a weight changed: the balancer's tables must be rebuilt).
    published: Option<Vec<Key>>,
}

impl Endpoint {
    fn new(target: usize, name: &str, addr: SocketAddr, state: State, setup: Setup) -> Self {
        let backend = Backend::with_weight(target, name, addr, setup.0);
        backend.set_send_proxy(setup.1.version());
        Self {
            backend: Arc::new(backend),
            state,
            successes: 0,
            failures: 0,
            last: None,
            check_duration: None,
        }
    }

    /// Counts `outcome` and returns the state it leads to.
    fn count(&mut self, ok: bool, rise: u32, fall: u32) -> State {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
        match (self.state, ok) {
            (State::New, true) => State::Healthy,
            (State::New, false) => State::Unhealthy,
            (State::Healthy, false) if self.failures >= fall => State::Unhealthy,
            (State::Unhealthy, true) if self.successes >= rise => State::Healthy,
            (state, _) => state,
        }
    }

    /// Forgets every judgement: the endpoint is as new (leaving maintenance).
    fn reset(&mut self) {
        self.state = State::New;
        self.successes = 0;
        self.failures = 0;
        self.last = None;
        self.check_duration = None;
        self.backend.clear_ejected();
    }

    fn status(&self, maint: bool) -> EndpointStatus {
        EndpointStatus {
            addr: self.backend.addr,
            healthy: self.state == State::Healthy && !maint,
            consecutive_successes: self.successes,
            consecutive_failures: self.failures,
            last: self.last.clone(),
            check_duration: self.check_duration,
        }
    }
}

impl Pool {
    /// An empty pool for `targets` targets; thresholds below 1 count as 1.
    pub(crate) fn new(targets: usize, rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            targets: (0..targets).map(|_| BTreeMap::new()).collect(),
            weights: vec![1; targets],
            proxies: vec![SendProxy::Off; targets],
            maint: vec![false; targets],
            published: None,
        }
    }

    /// The same pool giving target `i` weight `weights[i]` (missing ones weigh 1).
    pub(crate) fn with_weights(mut self, weights: &[u32]) -> Self {
        for (w, &given) in self.weights.iter_mut().zip(weights) {
            *w = given;
        }
        self
    }

    fn weight(&self, target: usize) -> u32 {
        self.weights.get(target).copied().unwrap_or(1)
    }

    /// The same pool giving target `i`'s backends the PROXY protocol setting `proxies[i]`
    /// (missing ones are off).
    pub(crate) fn with_send_proxy(mut self, proxies: &[SendProxy]) -> Self {
        self.set_send_proxy(proxies);
        self
    }

    /// Gives target `i`'s backends, known and future, the PROXY protocol setting `proxies[i]`
    /// (missing ones are off); used at start and on reload.
    pub(crate) fn set_send_proxy(&mut self, proxies: &[SendProxy]) {
        self.proxies = (0..self.targets.len())
            .map(|i| proxies.get(i).copied().unwrap_or_default())
            .collect();
        for (known, &proxy) in self.targets.iter().zip(&self.proxies) {
            for endpoint in known.values() {
                endpoint.backend.set_send_proxy(proxy.version());
            }
        }
    }

    /// What a new backend of `target` is created with: weight and PROXY protocol setting.
    fn setup(&self, target: usize) -> Setup {
        let proxy = self.proxies.get(target).copied().unwrap_or_default();
        (self.weight(target), proxy)
    }

    /// Gives `target`'s backends, known and future, `weight`, and puts the target in or out of
    /// maintenance (the runtime API's state, resolved by the checker). Whatever changed, the
    /// next [`Pool::take_change`] publishes, so the balancer rebuilds its tables. Out of
    /// maintenance, the target's endpoints are judged afresh: as new endpoints, each enters on
    /// its first passed probe (a never-probed target's on the next round).
    pub(crate) fn set_admin(&mut self, target: usize, weight: u32, maint: bool) {
        let (Some(known), Some(w), Some(m)) = (
            self.targets.get_mut(target),
            self.weights.get_mut(target),
            self.maint.get_mut(target),
        ) else {
            return;
        };
        if *w == weight && *m == maint {
            return;
        }
        if *m && !maint {
            for endpoint in known.values_mut() {
                endpoint.reset();
            }
        }
        *w = weight;
        *m = maint;
        for endpoint in known.values() {
            endpoint.backend.set_weight(weight);
        }
        self.published = None;
    }

    /// Whether `target` is in maintenance.
    pub(crate) fn in_maint(&self, target: usize) -> bool {
        self.maint.get(target).copied().unwrap_or(false)
    }

    /// Adds `addrs` of `target` as healthy without a probe (start-up priming).
    pub(crate) fn admit(&mut self, target: usize, name: &str, addrs: &[SocketAddr]) {
        let setup = self.setup(target);
        let Some(known) = self.targets.get_mut(target) else {
            return;
        };
        for &addr in addrs {
            known
                .entry(addr)
                .or_insert_with(|| Endpoint::new(target, name, addr, State::Healthy, setup));
        }
    }

    /// Makes `target`'s endpoints exactly `addrs` (sorted): unknown addresses arrive as new
    /// (entering on their first passed probe), addresses no longer resolved leave at once.
    pub(crate) fn follow(&mut self, target: usize, name: &str, addrs: &[SocketAddr]) {
        let setup = self.setup(target);
        let Some(known) = self.targets.get_mut(target) else {
            return;
        };
        known.retain(|addr, endpoint| {
            let keep = addrs.binary_search(addr).is_ok();
            if !keep {
                let healthy = endpoint.state == State::Healthy;
                info!(target = %name, addr = %addr, healthy, "backend removed: no longer resolved");
            }
            keep
        });
        for &addr in addrs {
            known
                .entry(addr)
                .or_insert_with(|| Endpoint::new(target, name, addr, State::New, setup));
        }
    }

    /// Counts `failure` for every known endpoint of `target` (its resolution failed).
    pub(crate) fn fail_target(&mut self, target: usize, failure: &ProbeFailure) {
        let Some(known) = self.targets.get(target) else {
            return;
        };
        let addrs: Vec<SocketAddr> = known.keys().copied().collect();
        for addr in addrs {
            self.record((target, addr), Err(failure.clone()));
        }
    }

    /// Counts `outcome` for the endpoint `key`, flipping (and logging) its state on a threshold.
    /// A local failure ([`ProbeFailure::is_local`]) counts for nothing: the endpoint keeps its
    /// state and counters, and the failure is only shown as its last outcome (except on a new
    /// endpoint, which stays "never probed" rather than look judged).
    pub(crate) fn record(&mut self, key: Key, outcome: Outcome) {
        let (rise, fall) = (self.rise, self.fall);
        let Some(endpoint) = self.targets.get_mut(key.0).and_then(|t| t.get_mut(&key.1)) else {
            return;
        };
        if is_local(&outcome) {
            if endpoint.state != State::New {
                endpoint.last = Some(outcome);
            }
            return;
        }
        let next = endpoint.count(outcome.is_ok(), rise, fall);
        if next != endpoint.state {
            log_flip(&endpoint.backend, &outcome);
            if next == State::Healthy {
                endpoint.backend.clear_ejected();
            }
        }
        endpoint.state = next;
        endpoint.last = Some(outcome);
    }

    /// Remembers how long the last probe of endpoint `key` took.
    pub(crate) fn timed(&mut self, key: Key, took: Duration) {
        if let Some(endpoint) = self.targets.get_mut(key.0).and_then(|t| t.get_mut(&key.1)) {
            endpoint.check_duration = Some(took);
        }
    }

    /// Takes endpoint `key` out at once, whatever `fall` says: a worker could not connect to
    /// it. It comes back like any unhealthy endpoint, after `rise` passed probes. A local
    /// failure ejects nothing (the ejector filters those already; this is the second guard).
    pub(crate) fn eject(&mut self, key: Key, failure: ProbeFailure) {
        if failure.is_local() {
            return;
        }
        let fall = self.fall;
        let Some(endpoint) = self.targets.get_mut(key.0).and_then(|t| t.get_mut(&key.1)) else {
            return;
        };
        let outcome = Err(failure);
        if endpoint.state == State::Healthy {
            log_flip(&endpoint.backend, &outcome);
        }
        endpoint.state = State::Unhealthy;
        endpoint.successes = 0;
        endpoint.failures = endpoint.failures.max(fall);
        endpoint.last = Some(outcome);
    }

    /// Puts every endpoint of `target` that no probe has judged yet into the healthy set: the
    /// target is never probed (`health_check = "none"`).
    pub(crate) fn admit_new(&mut self, target: usize) {
        let Some(known) = self.targets.get_mut(target) else {
            return;
        };
        for endpoint in known.values_mut().filter(|e| e.state == State::New) {
            endpoint.state = State::Healthy;
            log_flip(&endpoint.backend, &Ok(()));
        }
    }

    /// Brings endpoint `key` back without a probe if it is out (the back-off after a passive
    /// ejection of a target that is never probed has elapsed); `true` if it came back.
    pub(crate) fn readmit(&mut self, key: Key) -> bool {
        let Some(endpoint) = self.targets.get_mut(key.0).and_then(|t| t.get_mut(&key.1)) else {
            return false;
        };
        if endpoint.state != State::Unhealthy {
            return false;
        }
        endpoint.state = State::Healthy;
        endpoint.failures = 0;
        endpoint.backend.clear_ejected();
        info!(target = %endpoint.backend.name, addr = %key.1, "backend up: ejection back-off elapsed");
        true
    }

    /// The healthy backends in publication order, if the membership differs from the last one
    /// returned (always on the first call); remembers it as published.
    pub(crate) fn take_change(&mut self) -> Option<Vec<Arc<Backend>>> {
        let healthy: Vec<&Endpoint> = self
            .targets
            .iter()
            .zip(&self.maint)
            .filter(|(_, &maint)| !maint)
            .flat_map(|(known, _)| known.values())
            .filter(|e| e.state == State::Healthy)
            .collect();
        let keys: Vec<Key> = healthy
            .iter()
            .map(|e| (e.backend.target, e.backend.addr))
            .collect();
        if self.published.as_ref() == Some(&keys) {
            return None;
        }
        let backends = healthy.iter().map(|e| Arc::clone(&e.backend)).collect();
        self.published = Some(keys);
        Some(backends)
    }

    /// A pool for a reloaded configuration: target `i` of the new configuration keeps the
    /// endpoints (and their health state, maintenance included) of old target `previous[i]`,
    /// if any. Where the index
    /// is unchanged the endpoints keep their `Arc<Backend>` (and counters), with the new
    /// weight; a target that moved to another index gets fresh backends, because a backend's
    /// target index is part of its identity. Targets without a previous one start empty and
    /// fill on the next round; old targets left out are dropped (their open connections keep
    /// their own `Arc` and run to their end).
    pub(crate) fn reconfigure(
        mut self,
        previous: &[Option<usize>],
        names: &[String],
        weights: &[u32],
        rise: u32,
        fall: u32,
    ) -> Pool {
        let mut next = Pool::new(previous.len(), rise, fall).with_weights(weights);
        for (i, prev) in previous.iter().enumerate() {
            let Some(old) = prev
                .and_then(|j| self.targets.get_mut(j))
                .map(std::mem::take)
            else {
                continue;
            };
            next.maint[i] = prev.is_some_and(|j| self.in_maint(j));
            let weight = next.weight(i);
            next.targets[i] = old
                .into_iter()
                .map(|(addr, mut endpoint)| {
                    if endpoint.backend.target == i {
                        endpoint.backend.set_weight(weight);
                    } else {
                        endpoint.backend =
                            Arc::new(Backend::with_weight(i, names[i].as_str(), addr, weight));
                    }
                    (addr, endpoint)
                })
                .collect();
        }
        next
    }

    /// Every known endpoint's backend, healthy or not, per target in address order.
    pub(crate) fn backends(&self) -> Vec<Arc<Backend>> {
        let endpoints = self.targets.iter().flat_map(BTreeMap::values);
        endpoints.map(|e| Arc::clone(&e.backend)).collect()
    }

    /// The number of known endpoints.
    pub(crate) fn len(&self) -> usize {
        self.targets.iter().map(BTreeMap::len).sum()
    }

    /// The status of `target`'s endpoints, in address order.
    pub(crate) fn status(&self, target: usize) -> Vec<EndpointStatus> {
        let maint = self.in_maint(target);
        self.targets
            .get(target)
            .map(|known| known.values().map(|e| e.status(maint)).collect())
            .unwrap_or_default()
    }
}

/// Whether `outcome` is inconclusive: this host, not the endpoint, failed.
fn is_local(outcome: &Outcome) -> bool {
    outcome.as_ref().is_err_and(ProbeFailure::is_local)
}

/// Logs an endpoint's state flip caused by `outcome`: up on a success, down (with why) on a
/// failure.
fn log_flip(backend: &Backend, outcome: &Outcome) {
    let (name, addr) = (&backend.name, backend.addr);
    match outcome {
        Ok(()) => info!(target = %name, addr = %addr, "backend up"),
        Err(reason) => warn!(target = %name, addr = %addr, reason = %reason, "backend down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 80))
    }

    fn healthy(pool: &Pool, target: usize) -> Vec<bool> {
        pool.status(target).iter().map(|e| e.healthy).collect()
    }

    const FAIL: Outcome = Err(ProbeFailure::Refused);

    #[test]
    fn a_healthy_endpoint_leaves_after_fall_consecutive_failures() {
        let mut pool = Pool::new(1, 2, 3);
        pool.admit(0, "a:80", &[addr(1)]);
        for outcome in [FAIL, FAIL, Ok(()), FAIL, FAIL] {
            pool.record((0, addr(1)), outcome);
            assert_eq!(healthy(&pool, 0), [true]);
        }
        pool.record((0, addr(1)), FAIL);
        assert_eq!(healthy(&pool, 0), [false]);
        assert_eq!(pool.status(0)[0].consecutive_failures, 3);
        assert_eq!(pool.status(0)[0].last, Some(FAIL));
    }

    #[test]
    fn an_unhealthy_endpoint_comes_back_after_rise_consecutive_successes() {
        let mut pool = Pool::new(1, 2, 1);
        pool.admit(0, "a:80", &[addr(1)]);
        pool.record((0, addr(1)), FAIL);
        for outcome in [Ok(()), FAIL, Ok(())] {
            pool.record((0, addr(1)), outcome);
            assert_eq!(healthy(&pool, 0), [false]);
        }
        pool.record((0, addr(1)), Ok(()));
        assert_eq!(healthy(&pool, 0), [true]);
    }

    #[test]
    fn new_endpoints_enter_on_their_first_passed_probe_only() {
        let mut pool = Pool::new(1, 3, 3);
        pool.follow(0, "a:80", &[addr(1), addr(2)]);
        assert_eq!(healthy(&pool, 0), [false, false]);
        pool.record((0, addr(1)), Ok(()));
        pool.record((0, addr(2)), FAIL);
        assert_eq!(healthy(&pool, 0), [true, false]);
        // Having failed, the second one now needs `rise` successes like any unhealthy endpoint.
        pool.record((0, addr(2)), Ok(()));
        assert_eq!(healthy(&pool, 0), [true, false]);
    }

    #[test]
    fn unresolved_addresses_leave_and_survivors_keep_their_backend() {
        let mut pool = Pool::new(1, 1, 1);
        pool.admit(0, "a:80", &[addr(1), addr(2)]);
        let before = pool.take_change().unwrap();
        pool.follow(0, "a:80", &[addr(2), addr(3)]);
        pool.record((0, addr(3)), Ok(()));
        let after = pool.take_change().unwrap();
        assert_eq!(
            after.iter().map(|b| b.addr).collect::<Vec<_>>(),
            [addr(2), addr(3)]
        );
        assert!(
            Arc::ptr_eq(&before[1], &after[0]),
            "same Arc for the same endpoint"
        );
    }

    #[test]
    fn membership_is_published_once_per_change_in_config_then_address_order() {
        let mut pool = Pool::new(2, 1, 1);
        pool.admit(1, "b:80", &[addr(1)]);
        pool.admit(0, "a:80", &[addr(9), addr(5)]);
        let order: Vec<Key> = pool
            .take_change()
            .unwrap()
            .iter()
            .map(|b| (b.target, b.addr))
            .collect();
        assert_eq!(order, [(0, addr(5)), (0, addr(9)), (1, addr(1))]);
        pool.record((1, addr(1)), Ok(()));
        assert!(pool.take_change().is_none(), "nothing changed");
        pool.record((1, addr(1)), FAIL);
        assert_eq!(pool.take_change().map(|b| b.len()), Some(2));
    }

    #[test]
    fn unprobed_endpoints_enter_at_once_and_come_back_only_when_readmitted() {
        let mut pool = Pool::new(1, 3, 1).with_send_proxy(&[SendProxy::V2]);
        pool.follow(0, "a:80", &[addr(1)]);
        pool.admit_new(0);
        assert_eq!(healthy(&pool, 0), [true]);
        let backend = pool.take_change().unwrap().remove(0);
        assert_eq!(
            backend.send_proxy(),
            Some(crate::proxy_protocol::Version::V2)
        );
        pool.eject((0, addr(1)), ProbeFailure::Passive("refused".into()));
        pool.admit_new(0);
        assert_eq!(healthy(&pool, 0), [false], "an ejected endpoint is not new");
        assert!(pool.readmit((0, addr(1))));
        assert_eq!(healthy(&pool, 0), [true]);
        assert!(!pool.readmit((0, addr(1))), "already in");
        pool.set_send_proxy(&[SendProxy::Off]);
        assert_eq!(
            backend.send_proxy(),
            None,
            "a reload reaches known backends"
        );
    }

    #[test]
    fn a_failed_resolution_counts_against_every_known_endpoint() {
        let mut pool = Pool::new(1, 1, 2);
        pool.admit(0, "a:80", &[addr(1), addr(2)]);
        let failure = ProbeFailure::ResolveFailed("timeout".into());
        pool.fail_target(0, &failure);
        assert_eq!(healthy(&pool, 0), [true, true]);
        pool.fail_target(0, &failure);
        assert_eq!(healthy(&pool, 0), [false, false]);
        assert_eq!(pool.status(0)[0].last, Some(Err(failure)));
        assert_eq!(pool.len(), 2, "kept while the name does not resolve");
    }

    fn local() -> ProbeFailure {
        ProbeFailure::Local("Too many open files (os error 24)".into())
    }

    #[test]
    fn a_local_failure_changes_no_state_and_publishes_nothing() {
        let mut pool = Pool::new(2, 1, 1);
        pool.admit(0, "a:80", &[addr(1)]);
        pool.follow(1, "b:80", &[addr(2), addr(3)]);
        pool.record((1, addr(2)), Ok(()));
        pool.record((1, addr(3)), FAIL);
        assert!(pool.take_change().is_some());
        let before: Vec<EndpointStatus> = (0..2).flat_map(|t| pool.status(t)).collect();
        for _ in 0..3 {
            for key in [(0, addr(1)), (1, addr(2)), (1, addr(3))] {
                pool.record(key, Err(local()));
            }
            pool.fail_target(0, &local());
            pool.eject((1, addr(2)), local());
        }
        assert!(pool.take_change().is_none(), "nothing to publish");
        let after: Vec<EndpointStatus> = (0..2).flat_map(|t| pool.status(t)).collect();
        for (was, is) in before.iter().zip(&after) {
            assert_eq!(was.healthy, is.healthy, "{}", is.addr);
            assert_eq!(was.consecutive_successes, is.consecutive_successes);
            assert_eq!(was.consecutive_failures, is.consecutive_failures);
            assert_eq!(is.last, Some(Err(local())), "shown as the last outcome");
        }
        assert_eq!(healthy(&pool, 0), [true]);
        assert_eq!(healthy(&pool, 1), [true, false]);
        // Hysteresis picks up where it was: one real failure is still one.
        pool.record((1, addr(2)), FAIL);
        assert_eq!(healthy(&pool, 1), [false, false]);
        assert_eq!(pool.status(1)[0].consecutive_failures, 1);
    }

    #[test]
    fn a_new_endpoint_stays_unjudged_after_a_local_failure() {
        let mut pool = Pool::new(1, 1, 1);
        pool.follow(0, "a:80", &[addr(1)]);
        pool.record((0, addr(1)), Err(local()));
        assert_eq!(pool.status(0)[0].last, None, "still never probed");
        pool.record((0, addr(1)), Ok(()));
        assert_eq!(healthy(&pool, 0), [true], "enters on its first real pass");
    }

    #[test]
    fn a_weight_change_republishes_the_same_membership() {
        let mut pool = Pool::new(2, 1, 1);
        pool.admit(0, "a:80", &[addr(1)]);
        pool.admit(1, "b:80", &[addr(2)]);
        let before = pool.take_change().unwrap();
        assert!(pool.take_change().is_none());
        pool.set_admin(0, 3, false);
        let after = pool.take_change().expect("republished for the new weight");
        assert_eq!(after.len(), 2);
        assert!(
            Arc::ptr_eq(&before[0], &after[0]),
            "same backend, new weight"
        );
        assert_eq!(after[0].weight(), 3);
        pool.set_admin(0, 3, false);
        assert!(pool.take_change().is_none(), "nothing changed");
        pool.set_admin(0, 0, false);
        let drained = pool.take_change().unwrap();
        assert_eq!(
            drained.len(),
            2,
            "a draining backend stays published, at weight 0"
        );
        assert_eq!(drained[0].weight(), 0);
        pool.follow(0, "a:80", &[addr(1), addr(3)]);
        pool.record((0, addr(3)), Ok(()));
        let grown = pool.take_change().unwrap();
        assert_eq!(
            grown[1].weight(),
            0,
            "a new endpoint gets the target's weight"
        );
    }

    #[test]
    fn maintenance_unpublishes_and_leaving_it_judges_afresh() {
        let mut pool = Pool::new(2, 2, 1);
        pool.admit(0, "a:80", &[addr(1)]);
        pool.admit(1, "b:80", &[addr(2)]);
        pool.take_change();
        pool.set_admin(0, 0, true);
        let published: Vec<Key> = pool
            .take_change()
            .unwrap()
            .iter()
            .map(|b| (b.target, b.addr))
            .collect();
        assert_eq!(published, [(1, addr(2))]);
        assert_eq!(healthy(&pool, 0), [false], "shown out of rotation");
        assert!(pool.in_maint(0));
        // Still resolved and kept; whatever happens to it is not published.
        pool.record((0, addr(1)), Ok(()));
        assert!(pool.take_change().is_none());
        pool.set_admin(0, 1, false);
        let status = &pool.status(0)[0];
        assert!(!status.healthy);
        assert_eq!(status.last, None, "never probed since");
        // As a new endpoint: its first passed probe brings it in, whatever `rise` says.
        pool.record((0, addr(1)), Ok(()));
        assert_eq!(pool.take_change().map(|b| b.len()), Some(2));
    }

    #[test]
    fn a_reload_keeps_a_target_in_maintenance_where_it_moved() {
        let mut pool = Pool::new(2, 1, 1);
        pool.admit(0, "a:80", &[addr(1)]);
        pool.admit(1, "b:80", &[addr(2)]);
        pool.set_admin(1, 0, true);
        let names = ["b:80".to_owned(), "a:80".to_owned()];
        let mut next = pool.reconfigure(&[Some(1), Some(0)], &names, &[0, 1], 1, 1);
        assert!(next.in_maint(0) && !next.in_maint(1));
        let published = next.take_change().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].addr, addr(1));
    }
}
