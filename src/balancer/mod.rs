//! Backend selection: a lock-free snapshot of the healthy backends and the strategy that picks
//! one of them for each new connection.
//!
//! Workers call [`Balancer::pick`] (or [`Balancer::pick_excluding`] on a connect retry) once per
//! accepted connection: one `ArcSwap` load, then a few atomics (a shared counter and/or the
//! backends' shared `active` counts) and reads of tables that were built when the snapshot was
//! published. Only the control plane calls [`Balancer::publish`], which builds those tables
//! (smooth sequence, alias table, Maglev table) into a new immutable [`Snapshot`].
//!
//! A pick never locks, never allocates and never builds a table; weight-0 (draining) backends
//! may be published, so their live connections stay visible, but are never picked.
//!
//! One file per strategy: `round_robin.rs`, `least_conn.rs`, `p2c.rs` (power of two choices)
//! and `maglev.rs` (source hash); `snapshot.rs` builds their tables and dispatches a pick.

mod least_conn;
mod maglev;
mod p2c;
mod rng;
mod round_robin;
mod snapshot;
mod strategy;
#[cfg(test)]
mod tests;

use std::{
    net::SocketAddr,
    sync::{atomic::AtomicUsize, Arc},
};

use arc_swap::ArcSwap;
use crossbeam_utils::CachePadded;

pub use snapshot::Snapshot;
pub use strategy::{Strategy, UnknownStrategy};

use crate::backend::Backend;

/// Chooses a backend for each new connection. `Send + Sync`: share it in an `Arc`.
#[derive(Debug)]
pub struct Balancer {
    snapshot: ArcSwap<Snapshot>,
    /// Round-robin position and least-connections tie rotation, shared by all workers.
    next: CachePadded<AtomicUsize>,
}

impl Default for Balancer {
    fn default() -> Self {
        Self::with_strategy(Strategy::default())
    }
}

impl Balancer {
    /// A round-robin balancer with no backend: every pick returns `None` until
    /// [`Balancer::publish`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A balancer using `strategy`, with no backend until [`Balancer::publish`].
    pub fn with_strategy(strategy: Strategy) -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::empty(strategy)),
            next: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Replaces the healthy set, in a stable order, and rebuilds the strategy's table from the
    /// backends' current weights. Connections already relayed are not affected. Control plane
    /// only: allocates, and at 1,000 backends may take milliseconds.
    ///
    /// The strategy and the backends live in the one snapshot, and each writer replaces it with
    /// a compare-and-swap (`rcu`) built from the snapshot it replaces: a publish racing a
    /// [`Balancer::set_strategy`] can never bring back the old strategy, nor the strategy
    /// change the old backends. No lock; a writer that loses a race builds again (the health
    /// thread is the only writer in ringlb, so that never happens there).
    pub fn publish(&self, backends: Vec<Arc<Backend>>) {
        self.snapshot
            .rcu(|current| Snapshot::build(current.strategy(), backends.clone()));
    }

    /// Switches to `strategy` (e.g. on a configuration reload), rebuilding the current snapshot
    /// for it. Control plane only.
    pub fn set_strategy(&self, strategy: Strategy) {
        self.snapshot
            .rcu(|current| Snapshot::build(strategy, current.backends().to_vec()));
    }

    /// The strategy picks currently use.
    pub fn strategy(&self) -> Strategy {
        self.snapshot.load().strategy()
    }

    /// The current healthy set.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Number of backends in the current healthy set, draining (weight-0) ones included.
    pub fn healthy_count(&self) -> usize {
        self.snapshot.load().backends().len()
    }

    /// The backend for a new connection from `client`, or `None` when no healthy backend has a
    /// weight above 0. Only `source_hash` looks at `client`, and only at its IP.
    #[inline]
    pub fn pick(&self, client: SocketAddr) -> Option<Arc<Backend>> {
        self.pick_excluding_all(client, &[])
    }

    /// Like [`Balancer::pick`] for a connect retry: the same strategy's choice among the
    /// backends whose address is not `exclude`'s. `None` when no other backend is available
    /// (the caller may then retry `exclude` itself with [`Balancer::pick`]).
    #[inline]
    pub fn pick_excluding(&self, client: SocketAddr, exclude: &Backend) -> Option<Arc<Backend>> {
        self.pick_excluding_all(client, &[exclude])
    }

    /// Like [`Balancer::pick_excluding`] with several excluded backends (e.g. every backend that
    /// already failed this connection; a caller can keep them in a fixed-size array).
    #[inline]
    pub fn pick_excluding_all(
        &self,
        client: SocketAddr,
        exclude: &[&Backend],
    ) -> Option<Arc<Backend>> {
        let snapshot = self.snapshot.load();
        snapshot.choose(client, &self.next, exclude).cloned()
    }
}
