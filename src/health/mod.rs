//! Active health checking: resolves and probes every target, publishes the healthy set.
//!
//! Owns the schedule of probe rounds, the per-endpoint hysteresis (in `pool`) and every call to
//! [`Balancer::publish`]. Runs on its own thread (`ringlb-health`) with its own current-thread
//! tokio runtime, entirely off the hot path. Never blocks a worker, never takes a lock a worker
//! could take (workers only load the balancer's snapshot), never panics.
//!
//! A round resolves every target's name anew (each address is its own endpoint), then probes
//! every endpoint concurrently by its target's kind (`GET <health_check_endpoint>`, a TCP
//! connect with optional send/expect, or nothing for `none`; see `check`), each under the
//! configured timeout, and publishes the healthy set only when its membership changed.
//!
//! A probe or resolution that could not run because this host ran short (no descriptor, memory
//! or local port: `ProbeFailure::Local`) is inconclusive: the endpoint's state and counters stay
//! as they were, and one warning a second names the cause (see `inconclusive`). A balancer out
//! of descriptors must not also declare every healthy backend dead.
//!
//! A target that is never probed (`health_check = "none"`) enters as soon as it resolves; a
//! worker's failed connect still ejects it at once, and it comes back, without a probe, one
//! `interval` after the ejection.
//!
//! The runtime API's overrides (a target drained, in maintenance, or given another weight; see
//! `overrides`) arrive through the reload channel and are applied here, at once, even in the
//! middle of a round (a reload that arrives during a round waits for its end, and so does
//! anything sent after it): the target's backends get their weight (0 while draining), a target
//! in maintenance is neither probed nor published, and the balancer is republished before the
//! request is answered. A reload keeps the overrides of every target whose entry it leaves
//! unchanged and clears the others.

pub(crate) mod check;
mod eject;
mod inconclusive;
pub mod overrides;
mod pool;
pub(crate) mod probe;
mod reload;
mod resolver;
mod status;

use std::{
    collections::VecDeque, future::Future, io, sync::Arc, thread::JoinHandle, time::Duration,
};

use tokio::{
    runtime::{Builder, Runtime},
    task::JoinSet,
    time::{Instant, Interval, MissedTickBehavior},
};
use tracing::{debug, error, info, warn};

pub use eject::Ejector;
pub use overrides::{AdminState, Change, Kept, Overrides, TargetOverride};
pub use probe::{ProbeFailure, MAX_STATUS_LINE};
pub use reload::{Applied, ChangeError, Reloader};
pub use resolver::{ResolveFuture, Resolver, SystemResolver};
pub use status::{EndpointStatus, HealthStatus, StatusReport, TargetStatus};

use crate::{
    balancer::Balancer,
    config::{HealthCheck, SendProxy, Target},
    shutdown::Shutdown,
};
use pool::{Key, Pool};
use resolver::Answer;

/// An ejector whose reports go nowhere but the returned receiver (for unit tests of the data
/// path's policy).
#[cfg(test)]
pub(crate) fn test_ejector() -> (
    Ejector,
    tokio::sync::mpsc::UnboundedReceiver<(Key, ProbeFailure)>,
) {
    eject::channel()
}

/// The control plane's handles on one pool's checker: what metrics, `/status` and the
/// runtime API read and send to, with the pool's name (`[[pools]] name`, or `"default"`).
#[derive(Debug, Clone)]
pub struct PoolHandle {
    /// The pool's name.
    pub name: String,
    /// What its checker sees.
    pub status: Arc<HealthStatus>,
    /// Its checker's control channel (reloads, runtime overrides).
    pub reloader: Reloader,
}

impl HealthChecker {
    /// This checker's handles, under the name of the pool it checks.
    pub fn pool_handle(&self, name: &str) -> PoolHandle {
        PoolHandle {
            name: name.to_owned(),
            status: self.status_handle(),
            reloader: self.reloader(),
        }
    }
}

/// Shortest time between two rounds, whatever the configuration says.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// Probes targets and keeps the balancer's healthy set up to date.
pub struct HealthChecker {
    plans: Vec<Plan>,
    settings: HealthCheck,
    balancer: Arc<Balancer>,
    resolver: Arc<dyn Resolver>,
    pool: Pool,
    /// Back-off timers of ejected endpoints of never-probed targets; each yields its key.
    readmissions: JoinSet<Key>,
    status: Arc<HealthStatus>,
    round: u64,
    /// Probes and resolutions of recent rounds that could not run for local reasons.
    inconclusive: inconclusive::Inconclusive,
    ejector: Ejector,
    ejections: Option<eject::Ejections>,
    reloader: Reloader,
    messages: reload::Messages,
    /// Messages that arrived during a round and wait for its end (a reload, and whatever came
    /// after one), in order.
    deferred: VecDeque<reload::Message>,
    /// The runtime API's overrides in force.
    overrides: Overrides,
    /// A round is wanted as soon as possible (a target left maintenance: probe it now).
    round_due: bool,
    /// The pool it checks, named in every line it logs (`None`: the seed form's one pool,
    /// logged without a name as before pools existed).
    pool_name: Option<String>,
}

/// One configured target, ready to be resolved and probed.
#[derive(Debug)]
struct Plan {
    /// `host:port` as configured: the `Host` header, the backend name and the log field.
    name: String,
    host: String,
    port: u16,
    check: check::Check,
    resolve_error: Option<ProbeFailure>,
    /// Its weight in the file.
    weight: u32,
    /// Its entry as `--check` prints it: what tells a changed target on reload.
    entry: String,
}

impl Plan {
    fn new(target: &Target) -> Self {
        let name = target.address.to_string();
        Self {
            check: check::Check::new(target, &name),
            host: target.address.host.clone(),
            port: target.address.port,
            resolve_error: None,
            weight: target.weight,
            entry: target.to_toml(),
            name,
        }
    }

    /// Remembers how the last resolution went, logging when that changes.
    fn note_resolution(&mut self, error: Option<ProbeFailure>) {
        match (&self.resolve_error, &error) {
            (None, Some(reason)) => {
                warn!(target = %self.name, reason = %reason, "target resolution failed");
            }
            (Some(_), None) => info!(target = %self.name, "target resolves again"),
            _ => {}
        }
        self.resolve_error = error;
    }
}

impl HealthChecker {
    /// A checker for `targets` that publishes into `balancer`, resolving with the system
    /// resolver. Publishes nothing until [`HealthChecker::prime`] or the first round.
    pub fn new(targets: Vec<Target>, settings: HealthCheck, balancer: Arc<Balancer>) -> Self {
        let plans: Vec<Plan> = targets.iter().map(Plan::new).collect();
        let weights: Vec<u32> = targets.iter().map(|t| t.weight).collect();
        let pool = Pool::new(plans.len(), settings.rise, settings.fall)
            .with_weights(&weights)
            .with_send_proxy(&send_proxies(&targets));
        let (ejector, ejections) = eject::channel();
        let (reloader, messages) = reload::channel();
        Self {
            reloader,
            messages,
            deferred: VecDeque::new(),
            overrides: Overrides::default(),
            round_due: false,
            pool_name: None,
            ejector,
            ejections: Some(ejections),
            plans,
            settings,
            balancer,
            resolver: Arc::new(SystemResolver),
            pool,
            readmissions: JoinSet::new(),
            status: Arc::new(HealthStatus::new()),
            round: 0,
            inconclusive: inconclusive::Inconclusive::default(),
        }
    }

    /// The span its lines are logged in: the pool's name, when it has one.
    fn span(&self) -> Option<tracing::Span> {
        let name = self.pool_name.as_deref()?;
        Some(tracing::info_span!("pool", name))
    }

    /// The same checker naming `pool` in every line it logs.
    pub fn for_pool(mut self, pool: &str) -> Self {
        self.pool_name = Some(pool.to_owned());
        self
    }

    /// The same checker resolving names with `resolver` instead of the system resolver.
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// A shared view of what the checker sees: per-endpoint state and last outcome, and the
    /// number of finished rounds (awaitable).
    pub fn status_handle(&self) -> Arc<HealthStatus> {
        Arc::clone(&self.status)
    }

    /// A handle to hand the checker a reloaded configuration (targets, weights, health settings,
    /// strategy), applied on the checker's thread and followed by an immediate round, or a
    /// runtime override of one target (see [`Reloader::change`]).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// A handle workers use to report a backend they could not connect to: the checker takes it
    /// out of rotation at once and brings it back after `rise` passed probes.
    pub fn ejector(&self) -> Ejector {
        self.ejector.clone()
    }

    /// Resolves every target once and publishes every resolved endpoint as healthy, so traffic
    /// flows from the first accepted connection. Blocks the caller for at most about the
    /// configured timeout (names are resolved concurrently, on a helper thread, so this may also
    /// be called from async code). A name that does not resolve is logged and left out.
    pub fn prime(&mut self) {
        let span = self.span();
        let _entered = span.as_ref().map(tracing::Span::enter);
        let answers = match self.resolve_on_helper_thread() {
            Ok(answers) => answers,
            Err(e) => {
                error!(error = %e, "cannot resolve targets at start-up");
                Vec::new()
            }
        };
        for ((index, plan), answer) in self.plans.iter_mut().enumerate().zip(answers) {
            if let Ok(addrs) = &answer {
                self.pool.admit(index, &plan.name, addrs);
            }
            plan.note_resolution(answer.err());
        }
        self.commit();
    }

    /// Runs probe rounds on a new thread, `ringlb-health`, until `shutdown` fires (even in the
    /// middle of a round). The first round starts at once, then one every `interval`, start to
    /// start; a round longer than the interval delays the next one, never overlaps it.
    pub fn spawn(self, shutdown: Shutdown) -> io::Result<JoinHandle<()>> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new()
            .name("ringlb-health".into())
            .spawn(move || self.run(runtime, shutdown))
    }

    /// Runs every checker of `checkers` (one per pool) on one new thread, `ringlb-health`,
    /// with one current-thread runtime, until `shutdown` fires: each as
    /// [`HealthChecker::spawn`] would run it, its lines logged under its pool's name. Pools
    /// cost no thread each: their probes are concurrent tasks on the same runtime.
    pub fn spawn_all(
        checkers: Vec<HealthChecker>,
        shutdown: Shutdown,
    ) -> io::Result<JoinHandle<()>> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new()
            .name("ringlb-health".into())
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    for mut checker in checkers {
                        let span = checker.span().unwrap_or_else(tracing::Span::none);
                        let run = async move { checker.run_forever().await };
                        tokio::task::spawn_local(tracing::Instrument::instrument(run, span));
                    }
                    shutdown.wait().await;
                });
                // The checkers' tasks go with the local set; do not wait for a `getaddrinfo`
                // stuck on the blocking pool.
                drop(local);
                runtime.shutdown_background();
                debug!("health checkers stopped");
            })
    }

    /// Runs one round on the caller's tokio runtime and returns its number, counting from 1.
    /// [`HealthChecker::spawn`] calls this every interval; tests call it directly to step
    /// through rounds. Like any tokio I/O, it must be polled inside a runtime with time and I/O
    /// enabled. Dropping it mid-round aborts its probes and publishes nothing.
    pub async fn run_round(&mut self) -> u64 {
        let started = Instant::now();
        let timeout = self.settings.timeout;
        let resolver = Arc::clone(&self.resolver);
        let answers = self
            .serving(resolver::resolve_all(&resolver, self.names(), timeout))
            .await;
        let jobs = self.follow(answers);
        let keys: Vec<Key> = jobs.iter().map(|(key, _)| *key).collect();
        let outcomes = self.serving(probe_all(jobs, timeout)).await;
        for (key, (outcome, took)) in keys.into_iter().zip(outcomes) {
            // A probe that could not run took no time worth showing.
            let local = outcome.as_ref().is_err_and(|f| self.inconclusive.note(f));
            if !local {
                self.pool.timed(key, took);
            }
            self.pool.record(key, outcome);
        }
        self.inconclusive.warn_if_due(std::time::Instant::now());
        self.round += 1;
        self.commit();
        self.status.round_finished(self.round);
        let (round, endpoints, took) = (self.round, self.pool.len(), started.elapsed());
        debug!(round, endpoints, elapsed = ?took, "health round finished");
        self.round
    }

    fn run(mut self, runtime: Runtime, shutdown: Shutdown) {
        let span = self.span();
        let _entered = span.as_ref().map(tracing::Span::enter);
        runtime.block_on(async {
            tokio::select! {
                biased;
                () = shutdown.wait() => {}
                () = self.run_forever() => {}
            }
        });
        // Do not wait for a `getaddrinfo` stuck on the blocking pool.
        runtime.shutdown_background();
        debug!("health checker stopped");
    }

    async fn run_forever(&mut self) {
        let mut ticker = ticker(self.settings.interval);
        let Some(mut ejections) = self.ejections.take() else {
            return;
        };
        loop {
            if let Some(message) = self.deferred.pop_front() {
                if self.handle(message) {
                    ticker = self::ticker(self.settings.interval);
                }
                continue;
            }
            if std::mem::take(&mut self.round_due) {
                self.run_round().await;
                continue;
            }
            tokio::select! {
                _ = ticker.tick() => {
                    self.run_round().await;
                }
                Some(message) = self.messages.recv() => {
                    if self.handle(message) {
                        ticker = self::ticker(self.settings.interval);
                    }
                }
                Some((key, failure)) = ejections.recv() => {
                    self.pool.eject(key, failure);
                    self.schedule_readmission(key);
                    self.commit();
                }
                Some(Ok(key)) = self.readmissions.join_next(), if !self.readmissions.is_empty() => {
                    self.readmit(key);
                }
            }
        }
    }

    /// Acts on a message of the control channel between rounds; `true` when the interval
    /// changed (the caller then starts a new ticker, whose first tick is immediate).
    fn handle(&mut self, message: reload::Message) -> bool {
        match message {
            reload::Message::Reload(update) => {
                let interval_changed = update.settings.interval != self.settings.interval;
                self.apply(update);
                // Otherwise probe the new set now (a new ticker does at once).
                self.round_due |= !interval_changed;
                interval_changed
            }
            reload::Message::Override(command) => {
                self.override_target(command);
                false
            }
            reload::Message::Restore(overrides, done) => {
                let kept = self.restore(overrides);
                let _ = done.send(kept);
                false
            }
        }
    }

    /// Awaits `work` (a phase of a round), applying the runtime API's overrides that arrive
    /// meanwhile at once, so that a slow round never delays a drain; a reload (and whatever
    /// follows it) waits for the end of the round, whose endpoints it would renumber.
    async fn serving<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            let message = tokio::select! {
                biased;
                out = &mut work => return out,
                Some(message) = self.messages.recv() => message,
            };
            match message {
                reload::Message::Override(command) if self.deferred.is_empty() => {
                    self.override_target(command);
                }
                other => self.deferred.push_back(other),
            }
        }
    }

    /// Applies one runtime API request, republishes, and answers it.
    fn override_target(&mut self, command: reload::Command) {
        let reload::Command {
            target,
            change,
            done,
        } = command;
        let Some(index) = self.plans.iter().position(|p| p.name == target) else {
            let _ = done.send(Err(ChangeError::UnknownTarget(target)));
            return;
        };
        let was = self.overrides.state(&target);
        self.overrides
            .set(&target, &self.plans[index].entry, change);
        let applied = self.applied(index);
        match change {
            Change::State(state) => {
                info!(target = %target, from = %was, to = %state, "runtime API: target state set")
            }
            Change::Weight(weight) => {
                let weight = weight.map_or_else(|| "the file's".to_owned(), |w| w.to_string());
                info!(target = %target, weight = %weight, "runtime API: target weight set")
            }
        }
        self.round_due |= was == AdminState::Maint && applied.state != AdminState::Maint;
        self.enforce();
        self.commit();
        let _ = done.send(Ok(applied));
    }

    /// Takes over the overrides of the process this one replaces, where the entry is the same.
    pub(crate) fn restore(&mut self, handed: Overrides) -> Kept {
        let plans = &self.plans;
        let entry_of = |name: &str| {
            let plan = plans.iter().find(|p| p.name == name);
            plan.map(|p| p.entry.as_str())
        };
        let kept = self.overrides.restore(handed, entry_of);
        for target in &kept.kept {
            let state = self.overrides.state(target);
            info!(target = %target, state = %state, "runtime overrides taken over");
        }
        for target in &kept.cleared {
            warn!(target = %target, "runtime overrides handed over for a target that changed or is gone; dropped");
        }
        self.enforce();
        self.commit();
        kept
    }

    /// Target `index`'s overrides, as the API reports them.
    fn applied(&self, index: usize) -> Applied {
        let plan = &self.plans[index];
        Applied {
            target: plan.name.clone(),
            state: self.overrides.state(&plan.name),
            weight: plan.weight,
            weight_override: self.overrides.weight_override(&plan.name),
        }
    }

    /// Gives every target's backends the weight and maintenance flag its overrides say.
    fn enforce(&mut self) {
        for (index, plan) in self.plans.iter().enumerate() {
            let weight = self.overrides.weight(&plan.name, plan.weight);
            let maint = self.overrides.state(&plan.name) == AdminState::Maint;
            self.pool.set_admin(index, weight, maint);
        }
    }

    /// An ejected endpoint of a never-probed target comes back after one `interval`: there is
    /// no probe to bring it back, and the next failed connect takes it out again.
    fn schedule_readmission(&mut self, key: Key) {
        if self.plans.get(key.0).is_some_and(|p| !p.check.probes()) {
            let backoff = self.settings.interval;
            self.readmissions.spawn(async move {
                tokio::time::sleep(backoff).await;
                key
            });
        }
    }

    fn readmit(&mut self, key: Key) {
        let unprobed = self.plans.get(key.0).is_some_and(|p| !p.check.probes());
        if unprobed && self.pool.readmit(key) {
            self.commit();
        }
    }

    /// Switches to a reloaded configuration, keeping what is known of targets that stay.
    fn apply(&mut self, update: reload::Update) {
        let previous: Vec<Option<usize>> = update
            .targets
            .iter()
            .map(|t| {
                let name = t.address.to_string();
                self.plans.iter().position(|p| p.name == name)
            })
            .collect();
        let plans: Vec<Plan> = update.targets.iter().map(Plan::new).collect();
        let kept = self.overrides.retain_unchanged(|name| {
            let plan = plans.iter().find(|p| p.name == name);
            plan.map(|p| p.entry.as_str())
        });
        for target in &kept.cleared {
            info!(target = %target, "reload changed or removed the target: its runtime overrides are cleared");
        }
        let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
        let weights: Vec<u32> = plans
            .iter()
            .map(|p| self.overrides.weight(&p.name, p.weight))
            .collect();
        let (rise, fall) = (update.settings.rise, update.settings.fall);
        let pool = std::mem::replace(&mut self.pool, Pool::new(0, rise, fall));
        self.pool = pool.reconfigure(&previous, &names, &weights, rise, fall);
        self.pool.set_send_proxy(&send_proxies(&update.targets));
        self.plans = plans;
        self.enforce();
        self.settings = update.settings;
        if self.balancer.strategy() != update.balance {
            self.balancer.set_strategy(update.balance);
        }
        info!(targets = self.plans.len(), "configuration reloaded");
        self.commit();
    }

    fn names(&self) -> Vec<(String, u16)> {
        let names = self.plans.iter().map(|p| (p.host.clone(), p.port));
        names.collect()
    }

    fn resolve_on_helper_thread(&self) -> io::Result<Vec<Answer>> {
        let (resolver, names) = (Arc::clone(&self.resolver), self.names());
        let timeout = self.settings.timeout;
        let helper = std::thread::Builder::new()
            .name("ringlb-health-prime".into())
            .spawn(move || {
                let runtime = Builder::new_current_thread().enable_all().build()?;
                let answers = runtime.block_on(resolver::resolve_all(&resolver, names, timeout));
                runtime.shutdown_background();
                Ok(answers)
            })?;
        helper
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("start-up resolver thread panicked")))
    }

    /// Applies this round's answers to the pool; returns the probes to run.
    fn follow(&mut self, answers: Vec<Answer>) -> Vec<(Key, check::Check)> {
        let mut jobs = Vec::new();
        for ((index, plan), answer) in self.plans.iter_mut().enumerate().zip(answers) {
            // In maintenance: its addresses are followed, nothing of it is judged.
            let maint = self.pool.in_maint(index);
            match answer {
                Ok(addrs) => {
                    plan.note_resolution(None);
                    self.pool.follow(index, &plan.name, &addrs);
                    if maint {
                        continue;
                    }
                    if plan.check.probes() {
                        let probes = addrs.iter().map(|&a| ((index, a), plan.check.clone()));
                        jobs.extend(probes);
                    } else {
                        self.pool.admit_new(index);
                    }
                }
                // This host could not even ask: the endpoints known stay as they are, unprobed.
                Err(failure) if self.inconclusive.note(&failure) => {}
                Err(failure) if maint => plan.note_resolution(Some(failure)),
                Err(failure) => {
                    plan.note_resolution(Some(failure.clone()));
                    self.pool.fail_target(index, &failure);
                }
            }
        }
        jobs
    }

    /// Makes what changed visible: the report first, then the balancer's healthy set, so that
    /// whoever sees a backend leave or join (an operator comparing traffic with `/status`, a
    /// test) finds the reason already reported.
    fn commit(&mut self) {
        self.store_report();
        self.publish_if_changed();
    }

    fn publish_if_changed(&mut self) {
        let Some(backends) = self.pool.take_change() else {
            return;
        };
        let healthy = backends.len();
        self.balancer.publish(backends);
        self.status.published();
        info!(endpoints = self.pool.len(), "Healthy targets: {healthy}");
    }

    fn store_report(&self) {
        let targets = self
            .plans
            .iter()
            .enumerate()
            .map(|(index, plan)| TargetStatus {
                name: plan.name.clone(),
                resolve_error: plan.resolve_error.clone(),
                state: self.overrides.state(&plan.name),
                weight: plan.weight,
                weight_override: self.overrides.weight_override(&plan.name),
                endpoints: self.pool.status(index),
            });
        let report = StatusReport {
            round: self.round,
            targets: targets.collect(),
        };
        self.status.store(report);
        self.status.store_overrides(self.overrides.clone());
        self.status.store_backends(self.pool.backends());
    }
}

/// A ticker of `interval` (at least [`MIN_INTERVAL`]) whose first tick is immediate and whose
/// late ticks delay the next ones.
fn ticker(interval: Duration) -> Interval {
    let mut ticker = tokio::time::interval(interval.max(MIN_INTERVAL));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// Each target's PROXY protocol setting (already resolved against the top-level one).
fn send_proxies(targets: &[Target]) -> Vec<SendProxy> {
    let settings = targets.iter().map(|t| t.send_proxy.unwrap_or_default());
    settings.collect()
}

/// Probes every endpoint concurrently, each under `timeout`; outcomes and how long each probe
/// took, in input order.
async fn probe_all(
    jobs: Vec<(Key, check::Check)>,
    timeout: Duration,
) -> Vec<(pool::Outcome, Duration)> {
    let probes = jobs.into_iter().map(|((_, addr), check)| async move {
        let started = Instant::now();
        let outcome = check.run(addr, timeout).await;
        (outcome, started.elapsed())
    });
    let lost = || (Err(ProbeFailure::Io("probe task failed".into())), timeout);
    join_indexed(probes, lost).await
}

/// Runs `jobs` concurrently as tasks of the current runtime and returns their outputs in input
/// order (`lost()` for a task that panicked). Dropping the returned future aborts every task.
async fn join_indexed<F, T>(jobs: impl IntoIterator<Item = F>, lost: impl Fn() -> T) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut tasks = JoinSet::new();
    let mut outputs: Vec<Option<T>> = Vec::new();
    for (index, job) in jobs.into_iter().enumerate() {
        tasks.spawn(async move { (index, job.await) });
        outputs.push(None);
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, output)) = joined {
            if let Some(slot) = outputs.get_mut(index) {
                *slot = Some(output);
            }
        }
    }
    outputs
        .into_iter()
        .map(|o| o.unwrap_or_else(&lost))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, sync::Mutex};

    use tokio::{io::AsyncWriteExt, net::TcpListener};

    use super::*;
    use crate::config::TargetAddress;

    /// Collects formatted log lines of the current thread.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    fn settings() -> HealthCheck {
        HealthCheck {
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(2),
            rise: 1,
            fall: 1,
        }
    }

    /// A server answering every connection with `500` on an ephemeral port.
    async fn failing_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"HTTP/1.1 500 Oops\r\n\r\n").await;
            }
        });
        addr
    }

    /// A subscriber writing into a capture, and the capture.
    fn capture_logs() -> (Capture, impl tracing::Subscriber + Send + Sync) {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (capture, subscriber)
    }

    #[test]
    fn flips_and_membership_changes_are_logged() {
        let (capture, subscriber) = capture_logs();
        let runtime = Builder::new_current_thread().enable_all().build().unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let addr = runtime.block_on(failing_server());
            let target = Target {
                address: TargetAddress {
                    host: addr.ip().to_string(),
                    port: addr.port(),
                },
                health_check_endpoint: "/healthz".into(),
                weight: 1,
                ..Default::default()
            };
            let balancer = Arc::new(Balancer::new());
            let mut checker = HealthChecker::new(vec![target], settings(), balancer.clone());
            checker.prime();
            assert_eq!(balancer.healthy_count(), 1);
            runtime.block_on(checker.run_round());
            assert_eq!(balancer.healthy_count(), 0);
        });
        let logs = capture.text();
        assert!(logs.contains("Healthy targets: 1"), "{logs}");
        assert!(logs.contains("Healthy targets: 0"), "{logs}");
        let down = logs
            .lines()
            .find(|l| l.contains("backend down"))
            .unwrap_or("");
        assert!(down.contains("WARN"), "{logs}");
        assert!(down.contains("reason=status 500"), "{logs}");
        assert!(down.contains("target=127.0.0.1:"), "{logs}");
    }

    /// Resolves every name to `addr` until told to fail with `EMFILE`, as `getaddrinfo` does
    /// when it cannot open its own socket.
    struct ShortOfDescriptors {
        addr: SocketAddr,
        failing: std::sync::atomic::AtomicBool,
    }

    impl Resolver for ShortOfDescriptors {
        fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> ResolveFuture<'a> {
            Box::pin(async move {
                if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(io::Error::from_raw_os_error(libc::EMFILE));
                }
                Ok(vec![self.addr])
            })
        }
    }

    #[test]
    fn rounds_that_cannot_run_here_change_nothing_and_warn_once_a_second() {
        let (capture, subscriber) = capture_logs();
        let runtime = Builder::new_current_thread().enable_all().build().unwrap();
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let resolver = Arc::new(ShortOfDescriptors {
            addr,
            failing: false.into(),
        });
        tracing::subscriber::with_default(subscriber, || {
            let target = Target {
                address: TargetAddress {
                    host: "app.internal".into(),
                    port: 9,
                },
                weight: 1,
                ..Default::default()
            };
            let balancer = Arc::new(Balancer::new());
            let mut checker = HealthChecker::new(vec![target], settings(), balancer.clone())
                .with_resolver(resolver.clone());
            checker.prime();
            let status = checker.status_handle();
            let published = status.publications();
            resolver
                .failing
                .store(true, std::sync::atomic::Ordering::Relaxed);
            for _ in 0..3 {
                runtime.block_on(checker.run_round());
            }
            assert_eq!(balancer.healthy_count(), 1, "still in rotation");
            assert_eq!(status.publications(), published, "nothing published");
            let report = status.report();
            let endpoint = report.endpoint(0, addr).expect("still known");
            assert!(endpoint.healthy);
            assert_eq!(endpoint.consecutive_failures, 0);
            assert_eq!(report.targets[0].resolve_error, None);
        });
        let logs = capture.text();
        let warnings: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("health probe could not run"))
            .collect();
        assert_eq!(warnings.len(), 1, "three quick rounds, one warning: {logs}");
        assert!(warnings[0].contains("WARN"), "{logs}");
        assert!(
            warnings[0].contains(
                "health probe could not run: Too many open files (os error 24); \
                 target states unchanged"
            ),
            "{logs}"
        );
        assert!(!logs.contains("Healthy targets: 0"), "{logs}");
        assert!(!logs.contains("resolution failed"), "{logs}");
    }

    #[tokio::test]
    async fn join_indexed_keeps_input_order() {
        let jobs = [30u64, 0, 10].map(|ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        });
        assert_eq!(join_indexed(jobs, || 999).await, [30, 0, 10]);
    }

    #[tokio::test]
    async fn an_invalid_path_fails_every_probe_with_its_reason() {
        let addr = failing_server().await;
        let target = Target {
            address: TargetAddress {
                host: addr.ip().to_string(),
                port: addr.port(),
            },
            health_check_endpoint: "/a b".into(),
            weight: 1,
            ..Default::default()
        };
        let balancer = Arc::new(Balancer::new());
        let mut checker = HealthChecker::new(vec![target], settings(), balancer);
        checker.run_round().await;
        let report = checker.status_handle().report();
        let last = report.endpoint(0, addr).and_then(|e| e.last.clone());
        assert!(
            matches!(last, Some(Err(ProbeFailure::InvalidRequest(_)))),
            "{last:?}"
        );
    }

    /// A server answering every connection with `200`, counting them, on an ephemeral port.
    async fn counting_server() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&count);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
            }
        });
        (addr, count)
    }

    fn literal(addr: SocketAddr, weight: u32) -> Target {
        Target {
            address: TargetAddress {
                host: addr.ip().to_string(),
                port: addr.port(),
            },
            health_check_endpoint: "/healthz".into(),
            weight,
            ..Default::default()
        }
    }

    /// Applies `change` to `target` as the admin's request would, outside a round.
    fn change(checker: &mut HealthChecker, target: SocketAddr, change: Change) -> Applied {
        let (done, mut applied) = tokio::sync::oneshot::channel();
        let target = target.to_string();
        checker.override_target(reload::Command {
            target,
            change,
            done,
        });
        applied
            .try_recv()
            .expect("answered at once")
            .expect("known")
    }

    /// The weights of the published backends, by address.
    fn published(balancer: &Balancer) -> Vec<(SocketAddr, u32)> {
        let snapshot = balancer.snapshot();
        snapshot
            .backends()
            .iter()
            .map(|b| (b.addr, b.weight()))
            .collect()
    }

    #[tokio::test]
    async fn overrides_reweigh_drain_and_take_out_before_the_answer() {
        let (a, probes_a) = counting_server().await;
        let (b, _) = counting_server().await;
        let balancer = Arc::new(Balancer::new());
        let targets = vec![literal(a, 1), literal(b, 1)];
        let mut checker = HealthChecker::new(targets, settings(), balancer.clone());
        checker.prime();
        let applied = change(&mut checker, a, Change::Weight(Some(3)));
        assert_eq!(applied.weight_override, Some(3));
        assert_eq!(published(&balancer), [(a, 3), (b, 1)]);
        let applied = change(&mut checker, a, Change::State(AdminState::Drain));
        assert_eq!((applied.state, applied.weight), (AdminState::Drain, 1));
        assert_eq!(published(&balancer), [(a, 0), (b, 1)], "drained: weight 0");
        let report = checker.status_handle().report();
        assert_eq!(report.targets[0].state, AdminState::Drain);
        assert_eq!(report.targets[0].weight_override, Some(3));

        change(&mut checker, a, Change::State(AdminState::Maint));
        assert_eq!(published(&balancer), [(b, 1)], "out of rotation");
        let before = probes_a.load(std::sync::atomic::Ordering::Relaxed);
        checker.run_round().await;
        checker.run_round().await;
        assert_eq!(
            probes_a.load(std::sync::atomic::Ordering::Relaxed),
            before,
            "not probed in maintenance"
        );
        assert_eq!(published(&balancer), [(b, 1)]);
        assert!(!checker.status_handle().report().targets[0].endpoints[0].healthy);

        change(&mut checker, a, Change::State(AdminState::Ready));
        assert!(checker.round_due, "probed as soon as it is back");
        assert_eq!(
            published(&balancer),
            [(b, 1)],
            "enters on its first passed probe"
        );
        checker.run_round().await;
        assert_eq!(
            published(&balancer),
            [(a, 3), (b, 1)],
            "back, with its override"
        );
        assert!(probes_a.load(std::sync::atomic::Ordering::Relaxed) > before);
        let (done, mut unknown) = tokio::sync::oneshot::channel();
        checker.override_target(reload::Command {
            target: "nowhere:1".into(),
            change: Change::State(AdminState::Drain),
            done,
        });
        assert_eq!(
            unknown.try_recv().unwrap(),
            Err(ChangeError::UnknownTarget("nowhere:1".into()))
        );
    }

    #[tokio::test]
    async fn a_reload_clears_the_overrides_of_the_targets_it_changes_only() {
        let (a, _) = counting_server().await;
        let (b, _) = counting_server().await;
        let balancer = Arc::new(Balancer::new());
        let targets = vec![literal(a, 1), literal(b, 1)];
        let mut checker = HealthChecker::new(targets, settings(), balancer.clone());
        checker.prime();
        change(&mut checker, a, Change::State(AdminState::Drain));
        change(&mut checker, b, Change::Weight(Some(5)));
        // b's entry changes (its weight in the file), a's does not; they swap places.
        let update = reload::Update {
            targets: vec![literal(b, 2), literal(a, 1)],
            settings: settings(),
            balance: crate::balancer::Strategy::RoundRobin,
        };
        checker.handle(reload::Message::Reload(update));
        assert_eq!(checker.overrides.state(&a.to_string()), AdminState::Drain);
        assert_eq!(checker.overrides.weight_override(&b.to_string()), None);
        checker.run_round().await;
        let mut weights = published(&balancer);
        weights.sort();
        let mut expected = vec![(a, 0), (b, 2)];
        expected.sort();
        assert_eq!(
            weights, expected,
            "a still drained, b at its new file weight"
        );

        // What an upgrade hands over applies where the entry is the same.
        let handed = (*checker.status_handle().overrides()).clone();
        let json = serde_json::to_string(&handed).unwrap();
        let fresh = Arc::new(Balancer::new());
        let targets = vec![literal(b, 2), literal(a, 1)];
        let mut next = HealthChecker::new(targets, settings(), fresh.clone());
        next.prime();
        let kept = next.restore(serde_json::from_str(&json).unwrap());
        assert_eq!(kept.kept, [a.to_string()]);
        let mut weights = published(&fresh);
        weights.sort();
        assert_eq!(weights, expected, "taken over before any round");
    }

    #[tokio::test]
    async fn a_drain_is_applied_in_the_middle_of_a_slow_round() {
        let (a, _) = counting_server().await;
        // Accepts and never answers: every probe of it takes the whole timeout.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let slow = silent.local_addr().unwrap();
        let balancer = Arc::new(Balancer::new());
        let targets = vec![literal(a, 1), literal(slow, 1)];
        let mut checker = HealthChecker::new(targets, settings(), balancer.clone());
        checker.prime();
        let reloader = checker.reloader();
        let started = Instant::now();
        let round = checker.run_round();
        let drain = async {
            let applied = reloader
                .change(&a.to_string(), Change::State(AdminState::Drain))
                .await;
            (applied, started.elapsed(), published(&balancer))
        };
        let (_, (applied, took, weights)) = tokio::join!(round, drain);
        assert_eq!(applied.unwrap().state, AdminState::Drain);
        assert!(
            took < Duration::from_millis(1500),
            "answered before the round's 2 s probe ended: {took:?}"
        );
        assert_eq!(weights.first(), Some(&(a, 0)));
        drop(silent);
    }
}
