//! The counters the hot path writes: per-worker event counts (process-wide and per service) and
//! per-backend byte counts.
//!
//! Owns their memory layout, which is what keeps counting cheap: every worker writes only cache
//! lines of its own (a [`WorkerStats`] block with its per-service blocks, its shard of a
//! backend's [`ByteCounters`]) with one `Relaxed` increment, so workers never contend on a
//! counter. Never sums on the write side: totals are computed only when read (a scrape), off the
//! hot path. Never allocates after [`WorkerStats::new`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

/// Direction index: bytes from the client to the backend.
pub const UPSTREAM: usize = 0;
/// Direction index: bytes from the backend to the client.
pub const DOWNSTREAM: usize = 1;

/// Something a worker counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerCounter {
    /// A client connection was accepted.
    Accepted,
    /// A client received the 503 answer: no backend could take it.
    Rejected,
    /// A connect failed and the next backend was tried.
    Retry,
    /// Accepting paused because `max_connections` was reached; clients wait in the listen
    /// backlog meanwhile, none is refused.
    LimitReached,
    /// An accept failed (descriptors or memory exhausted); accepting paused briefly.
    AcceptError,
    /// A client was closed for an invalid, oversized or late PROXY header (`accept_proxy`).
    ProxyHeaderRefused,
    /// `relay = "auto"`: a direction moved from copy to splice (it carries bulk).
    ToSplice,
    /// `relay = "auto"`: a direction moved back from splice to copy (its traffic turned small).
    ToCopy,
    /// A backend connect found no free local port (`EADDRNOTAVAIL`: the ephemeral range is
    /// exhausted toward that backend); local, so no backend is blamed.
    NoLocalPort,
}

impl WorkerCounter {
    /// Every counter, in exposition order.
    pub const ALL: [WorkerCounter; 9] = [
        WorkerCounter::Accepted,
        WorkerCounter::Rejected,
        WorkerCounter::Retry,
        WorkerCounter::LimitReached,
        WorkerCounter::AcceptError,
        WorkerCounter::ProxyHeaderRefused,
        WorkerCounter::ToSplice,
        WorkerCounter::ToCopy,
        WorkerCounter::NoLocalPort,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Something a worker counts per service (the `service` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceCounter {
    /// A client connection was accepted on the service's listener.
    Accepted,
    /// A client of the service got `on_no_backend` (no backend could take it, or no pool was
    /// chosen).
    NoBackend,
    /// A client's TLS ClientHello was refused (invalid, too long or late) on a service that
    /// routes by SNI.
    TlsHelloRefused,
    /// A route (SNI) sent the connection to a pool other than the service's default.
    Routed,
}

impl ServiceCounter {
    /// Every per-service counter, in exposition order.
    pub const ALL: [ServiceCounter; 4] = [
        ServiceCounter::Accepted,
        ServiceCounter::NoBackend,
        ServiceCounter::TlsHelloRefused,
        ServiceCounter::Routed,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One service's counters in one worker.
type ServiceCounts = CachePadded<[AtomicU64; ServiceCounter::ALL.len()]>;

/// The event counters of one worker, on cache lines of their own.
///
/// Created by the server for each worker; the worker increments, the metrics registry reads.
#[derive(Debug)]
pub struct WorkerStats {
    /// The worker's index (the `worker` label).
    id: usize,
    counts: CachePadded<[AtomicU64; WorkerCounter::ALL.len()]>,
    /// Per service, in the order of the effective services; each block padded, so this worker's
    /// lines are its own even where its allocation borders another worker's.
    services: Box<[ServiceCounts]>,
}

impl WorkerStats {
    /// Zeroed counters for worker `id`, with a block for each of `services` services.
    pub fn new(id: usize, services: usize) -> Self {
        Self {
            id,
            counts: CachePadded::new(Default::default()),
            services: (0..services).map(|_| ServiceCounts::default()).collect(),
        }
    }

    /// How many services this worker counts for.
    pub fn services(&self) -> usize {
        self.services.len()
    }

    /// Counts one `counter` for service `service` (its index in the effective services): one
    /// `Relaxed` increment on a line only this worker writes. A service this block was not made
    /// for is not counted: a counter is never worth a panic on a worker.
    #[inline]
    pub fn add_service(&self, service: usize, counter: ServiceCounter) {
        if let Some(counts) = self.services.get(service) {
            counts[counter.index()].fetch_add(1, Relaxed);
        }
    }

    /// How many `counter`s this worker counted for service `service` so far (0 for a service it
    /// has no block for).
    pub fn get_service(&self, service: usize, counter: ServiceCounter) -> u64 {
        let counts = self.services.get(service);
        counts.map_or(0, |c| c[counter.index()].load(Relaxed))
    }

    /// The worker's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Counts one `event`: one `Relaxed` increment on a line only this worker writes.
    #[inline]
    pub fn add(&self, event: WorkerCounter) {
        self.counts[event.index()].fetch_add(1, Relaxed);
    }

    /// How many `event`s this worker counted so far.
    pub fn get(&self, event: WorkerCounter) -> u64 {
        self.counts[event.index()].load(Relaxed)
    }
}

/// Byte counters are spread over this many cache lines per backend; worker `i` writes line
/// `i % BYTE_SHARDS`, so up to this many workers never share one.
pub const BYTE_SHARDS: usize = 16;

/// Bytes relayed through one backend, per direction ([`UPSTREAM`]: client to
/// backend, [`DOWNSTREAM`]: backend to client), sharded by worker.
///
/// A backend is shared by every worker and its bytes are counted on every send, so one shared
/// counter would bounce its cache line between cores on every completion; each worker adds to
/// its own shard instead, and [`ByteCounters::total`] sums the shards when read.
#[derive(Debug, Default)]
pub struct ByteCounters {
    shards: [CachePadded<[AtomicU64; 2]>; BYTE_SHARDS],
}

impl ByteCounters {
    /// Adds `moved[dir]` bytes per direction, written by worker `worker`.
    #[inline]
    pub fn add(&self, worker: usize, moved: [u64; 2]) {
        let shard = &self.shards[worker % BYTE_SHARDS];
        for (counter, bytes) in shard.iter().zip(moved) {
            if bytes > 0 {
                counter.fetch_add(bytes, Relaxed);
            }
        }
    }

    /// Bytes relayed so far, per direction, over every worker.
    pub fn total(&self) -> [u64; 2] {
        let mut total = [0u64; 2];
        for shard in &self.shards {
            for (sum, counter) in total.iter_mut().zip(shard.iter()) {
                *sum = sum.wrapping_add(counter.load(Relaxed));
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn worker_counters_are_independent() {
        let stats = WorkerStats::new(3, 1);
        stats.add(WorkerCounter::Accepted);
        stats.add(WorkerCounter::Accepted);
        stats.add(WorkerCounter::Retry);
        assert_eq!(stats.id(), 3);
        assert_eq!(stats.get(WorkerCounter::Accepted), 2);
        assert_eq!(stats.get(WorkerCounter::Retry), 1);
        for event in [
            WorkerCounter::Rejected,
            WorkerCounter::LimitReached,
            WorkerCounter::AcceptError,
        ] {
            assert_eq!(stats.get(event), 0, "{event:?}");
        }
    }

    #[test]
    fn worker_counters_sit_on_their_own_cache_line() {
        assert!(std::mem::align_of::<WorkerStats>() >= 64);
        let stats = [WorkerStats::new(0, 2), WorkerStats::new(1, 2)];
        let a = stats[0].counts.as_ptr() as usize;
        let b = stats[1].counts.as_ptr() as usize;
        assert!(a.abs_diff(b) >= 64);
        // Each service block is padded too: the boxed blocks of two workers never share a line.
        assert!(std::mem::align_of::<ServiceCounts>() >= 64);
    }

    #[test]
    fn service_counters_are_per_service_and_ignore_unknown_services() {
        let stats = WorkerStats::new(0, 2);
        assert_eq!(stats.services(), 2);
        stats.add_service(0, ServiceCounter::Accepted);
        stats.add_service(1, ServiceCounter::Accepted);
        stats.add_service(1, ServiceCounter::Accepted);
        stats.add_service(1, ServiceCounter::Routed);
        stats.add_service(2, ServiceCounter::Accepted);
        stats.add_service(usize::MAX, ServiceCounter::NoBackend);
        assert_eq!(stats.get_service(0, ServiceCounter::Accepted), 1);
        assert_eq!(stats.get_service(1, ServiceCounter::Accepted), 2);
        assert_eq!(stats.get_service(1, ServiceCounter::Routed), 1);
        assert_eq!(stats.get_service(0, ServiceCounter::Routed), 0);
        assert_eq!(stats.get_service(2, ServiceCounter::Accepted), 0);
        for counter in [ServiceCounter::NoBackend, ServiceCounter::TlsHelloRefused] {
            assert_eq!(stats.get_service(1, counter), 0, "{counter:?}");
        }
        let none = WorkerStats::new(1, 0);
        none.add_service(0, ServiceCounter::Accepted);
        assert_eq!(none.get_service(0, ServiceCounter::Accepted), 0);
    }

    #[test]
    fn byte_shards_sum_per_direction() {
        let bytes = ByteCounters::default();
        // More workers than shards: workers 0 and BYTE_SHARDS share a shard.
        for worker in 0..=BYTE_SHARDS {
            bytes.add(worker, [10, 1]);
        }
        bytes.add(5, [0, 100]);
        let workers = BYTE_SHARDS as u64 + 1;
        assert_eq!(bytes.total(), [10 * workers, workers + 100]);
    }

    #[test]
    fn concurrent_adds_are_all_counted() {
        let bytes = Arc::new(ByteCounters::default());
        let threads: Vec<_> = (0..4)
            .map(|worker| {
                let bytes = Arc::clone(&bytes);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        bytes.add(worker, [1, 2]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(bytes.total(), [40_000, 80_000]);
    }
}
