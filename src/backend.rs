//! A backend endpoint: one resolved address of one configured target, with its live counters.
//!
//! Backends are created by the control plane and shared with workers through balancer snapshots
//! (`Arc<Backend>`). The same endpoint keeps the same `Arc` across snapshots, so its counters
//! survive health flaps. Counters are atomics with `Relaxed` ordering: never a lock.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
};

use crossbeam_utils::CachePadded;

/// One resolved endpoint of a target.
#[derive(Debug)]
pub struct Backend {
    /// Index of the target in the configuration this endpoint belongs to.
    pub target: usize,
    /// The target as written in the configuration (`host:port`), for logs.
    pub name: String,
    /// The address connections go to.
    pub addr: SocketAddr,
    /// `addr` in the kernel's layout, kept here so a pending connect can point at it for as
    /// long as the connection holds this backend.
    pub sockaddr: socket2::SockAddr,
    /// Live counters, written by every worker.
    pub stats: CachePadded<BackendStats>,
}

/// Counters of one backend, shared by all workers.
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Connections currently relayed to this backend.
    pub active: AtomicUsize,
    /// Connections ever handed to this backend.
    pub total: AtomicU64,
    /// Connect attempts that failed.
    pub connect_failures: AtomicU64,
}

impl Backend {
    /// A backend with zeroed counters.
    pub fn new(target: usize, name: impl Into<String>, addr: SocketAddr) -> Self {
        Self {
            target,
            name: name.into(),
            addr,
            sockaddr: addr.into(),
            stats: CachePadded::new(BackendStats::default()),
        }
    }

    /// Records a new connection to this backend.
    pub fn connection_opened(&self) {
        self.stats.active.fetch_add(1, Relaxed);
        self.stats.total.fetch_add(1, Relaxed);
    }

    /// Records the end of a connection opened with [`Backend::connection_opened`].
    pub fn connection_closed(&self) {
        self.stats.active.fetch_sub(1, Relaxed);
    }

    /// Records a failed connect.
    pub fn connect_failed(&self) {
        self.stats.connect_failures.fetch_add(1, Relaxed);
    }

    /// Connections currently open to this backend.
    pub fn active(&self) -> usize {
        self.stats.active.load(Relaxed)
    }
}
