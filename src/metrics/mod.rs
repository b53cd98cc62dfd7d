//! Metrics: the counters the hot path writes, and their Prometheus exposition.
//!
//! Owns [`WorkerStats`] (one cache-padded block of counters per worker, with one per service),
//! [`ByteCounters`] (per-backend bytes, sharded by worker) and [`Metrics`], the registry that
//! reads and sums them when scraped, labelling every target and endpoint with its pool and every
//! per-service count with its service. Workers only ever do `Relaxed` increments on cache lines
//! of their own; every sum, label and string is made here, on the admin thread, when `/metrics`
//! is asked for. Never takes a lock a worker could take, never formats the exposition by hand
//! (the `prometheus-client` encoder does).

mod collect;
mod failure;
pub mod names;
mod snapshot;

use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::{encoding::prometheus_text, registry::Registry};

pub use crate::stats::{ByteCounters, ServiceCounter, WorkerCounter, WorkerStats, BYTE_SHARDS};
pub use failure::WorkerFailure;
#[cfg(test)]
pub(crate) use snapshot::test_pool;
pub use snapshot::{PoolSnapshot, Snapshot};

use crate::{
    access_log::AccessLog, health::PoolHandle, limit::ConnectionLimit, shutdown::Shutdown,
};

/// The `Content-Type` of [`Metrics::encode`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The name of the io_uring I/O backend, as `ringlb_io_backend{backend=…}` shows it.
pub const IO_URING: &str = "io_uring";

/// Everything the metrics are read from; shared with the registry's collector.
#[derive(Debug)]
struct Sources {
    workers: Vec<Arc<WorkerStats>>,
    /// Every pool's checker, in the order of the effective pools.
    pools: Vec<PoolHandle>,
    /// The effective services' names; index `i` is the `service` of `add_service(i, _)`.
    services: Vec<String>,
    limit: Arc<ConnectionLimit>,
    shutdown: Shutdown,
    /// Set once at start-up by whoever picks the I/O backend; read at each scrape.
    io_backend: Mutex<&'static str>,
    /// The first worker that ended on its own; set at most once.
    worker_failure: OnceLock<WorkerFailure>,
    /// The access log's counters; set once at start-up.
    access_log: OnceLock<Arc<AccessLog>>,
}

/// The metrics registry of one ringlb instance: reads the live counters on demand.
pub struct Metrics {
    sources: Arc<Sources>,
    registry: Registry,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry over `workers`' counters, every pool's checker (`pools`, in the order of the
    /// effective pools), the effective services' names (`services`, in the order their indices
    /// count in [`WorkerStats::add_service`]), the connection cap and the shutdown signal. The
    /// I/O backend starts as [`IO_URING`].
    pub fn new(
        workers: Vec<Arc<WorkerStats>>,
        pools: Vec<PoolHandle>,
        services: Vec<String>,
        limit: Arc<ConnectionLimit>,
        shutdown: Shutdown,
    ) -> Metrics {
        let sources = Arc::new(Sources {
            workers,
            pools,
            services,
            limit,
            shutdown,
            io_backend: Mutex::new(IO_URING),
            worker_failure: OnceLock::new(),
            access_log: OnceLock::new(),
        });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collect::Collector::new(Arc::clone(&sources))));
        Metrics { sources, registry }
    }

    /// Records which I/O backend relays connections (`"io_uring"`, `"epoll"`).
    pub fn set_io_backend(&self, name: &'static str) {
        *self
            .sources
            .io_backend
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = name;
    }

    /// Records where the access log's counters are read (once, at start-up).
    pub fn set_access_log(&self, log: Arc<AccessLog>) {
        let _ = self.sources.access_log.set(log);
    }

    /// Access-log lines lost so far (queue full, or a write error).
    pub fn access_log_dropped(&self) -> u64 {
        self.sources.access_log.get().map_or(0, |log| log.dropped())
    }

    /// Access-log lines written so far.
    pub fn access_log_written(&self) -> u64 {
        self.sources.access_log.get().map_or(0, |log| log.written())
    }

    /// The I/O backend in use.
    pub fn io_backend(&self) -> &'static str {
        self.sources.io_backend()
    }

    /// Sum of `event` over every worker.
    pub fn total(&self, event: WorkerCounter) -> u64 {
        self.sources.total(event)
    }

    /// Sum of `counter` for service `service` (its index) over every worker.
    pub fn service_total(&self, service: usize, counter: ServiceCounter) -> u64 {
        self.sources.service_total(service, counter)
    }

    /// The effective services' names, in index order.
    pub fn services(&self) -> &[String] {
        &self.sources.services
    }

    /// `event` per worker, in worker order.
    pub fn per_worker(&self, event: WorkerCounter) -> Vec<u64> {
        self.sources.workers.iter().map(|w| w.get(event)).collect()
    }

    /// Client connections open now, over all workers.
    pub fn open_connections(&self) -> usize {
        self.sources.limit.open()
    }

    /// Whether shutdown has started (ringlb drains and accepts no new client).
    pub fn draining(&self) -> bool {
        self.sources.shutdown.is_triggered()
    }

    /// Records that a worker thread ended on its own; only the first failure is kept.
    pub fn record_worker_failure(&self, failure: WorkerFailure) {
        let _ = self.sources.worker_failure.set(failure);
    }

    /// The first worker failure, if a worker ended on its own.
    pub fn worker_failure(&self) -> Option<&WorkerFailure> {
        self.sources.worker_failure.get()
    }

    /// Every pool's latest health report joined with its endpoints' live counters.
    pub fn snapshot(&self) -> Snapshot {
        self.sources.snapshot()
    }

    /// The whole exposition, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; an error could only come from the collector,
        // which returns none of its own.
        if let Err(e) = prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        text
    }
}

impl Sources {
    fn io_backend(&self) -> &'static str {
        *self.io_backend.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn total(&self, event: WorkerCounter) -> u64 {
        let counts = self.workers.iter().map(|w| w.get(event));
        counts.fold(0, u64::wrapping_add)
    }

    fn service_total(&self, service: usize, counter: ServiceCounter) -> u64 {
        let counts = self.workers.iter().map(|w| w.get_service(service, counter));
        counts.fold(0, u64::wrapping_add)
    }

    /// Health-check rounds finished, summed over the pools (each checker counts its own).
    fn health_rounds(&self) -> u64 {
        let rounds = self.pools.iter().map(|p| p.status.rounds());
        rounds.fold(0, u64::wrapping_add)
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.pools)
    }
}

#[cfg(test)]
mod tests;
