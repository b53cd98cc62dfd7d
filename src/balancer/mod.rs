//! Backend selection: a lock-free snapshot of the healthy backends plus a round-robin counter.
//!
//! Workers call [`Balancer::pick`] on every accepted connection: one `ArcSwap` load and one
//! `fetch_add`. Only the control plane calls [`Balancer::publish`]. Never locks, never allocates
//! on `pick`.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
};

use arc_swap::ArcSwap;
use crossbeam_utils::CachePadded;

use crate::backend::Backend;

/// An immutable set of healthy backends, replaced wholesale on every change.
#[derive(Debug, Default)]
pub struct Snapshot {
    backends: Vec<Arc<Backend>>,
}

impl Snapshot {
    /// The backends in this snapshot, in publication order.
    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }
}

/// Chooses a backend for each new connection.
#[derive(Debug, Default)]
pub struct Balancer {
    snapshot: ArcSwap<Snapshot>,
    next: CachePadded<AtomicUsize>,
}

impl Balancer {
    /// A balancer with no backend: every pick returns `None` until [`Balancer::publish`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the healthy set. Connections already relayed are not affected.
    pub fn publish(&self, backends: Vec<Arc<Backend>>) {
        self.snapshot.store(Arc::new(Snapshot { backends }));
    }

    /// The current healthy set.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Number of backends in the current healthy set.
    pub fn healthy_count(&self) -> usize {
        self.snapshot.load().backends.len()
    }

    /// The backend for a new connection from `client`, or `None` when none is healthy.
    pub fn pick(&self, _client: SocketAddr) -> Option<Arc<Backend>> {
        let snapshot = self.snapshot.load();
        let len = snapshot.backends.len();
        if len == 0 {
            return None;
        }
        let i = self.next.fetch_add(1, Relaxed) % len;
        Some(Arc::clone(&snapshot.backends[i]))
    }
}
