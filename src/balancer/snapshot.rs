//! One published, immutable view of the backends, with every table a strategy needs.
//!
//! Owns building those tables (at publish, on the control plane) and dispatching a pick to the
//! strategy that reads them. A snapshot is never modified once built: a pick only reads it and
//! the backends' shared atomics, and never locks or allocates.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
};

use super::{least_conn, maglev::Maglev, p2c::AliasTable, round_robin, Strategy};
use crate::backend::Backend;

/// An immutable set of healthy backends, replaced wholesale on every change.
#[derive(Debug)]
pub struct Snapshot {
    strategy: Strategy,
    /// Every published backend, in publication order, draining ones included.
    backends: Vec<Arc<Backend>>,
    /// The backends that may get new connections (weight > 0), in publication order.
    candidates: Vec<Candidate>,
    table: Table,
}

/// A backend that may be picked, with the weight it had when the snapshot was built.
#[derive(Debug)]
pub(super) struct Candidate {
    pub(super) backend: Arc<Backend>,
    pub(super) weight: u32,
    /// Load of one active connection, on a scale shared by the snapshot's candidates:
    /// lcm(weights) / weight, so that comparing `active × cost` compares `active / weight`
    /// exactly, with one multiply per candidate and no division. When the lcm exceeds 2^32 it
    /// is 2^32 / weight, exact to about one part in 2^32 / weight.
    cost: u64,
}

impl Candidate {
    /// Active connections relative to weight, comparable between candidates of one snapshot.
    #[inline]
    pub(super) fn load(&self) -> u64 {
        // The field rather than `Backend::active`, so that the load inlines into callers in
        // other crates (benches) as well.
        let active = self.backend.stats.active.load(Relaxed);
        (active as u64).saturating_mul(self.cost)
    }
}

/// The candidates among `backends`: those with weight > 0, in order, with their load costs.
pub(super) fn candidates(backends: &[Arc<Backend>]) -> Vec<Candidate> {
    const SCALE: u64 = 1 << 32;
    let weighted: Vec<(&Arc<Backend>, u32)> = backends
        .iter()
        .map(|backend| (backend, backend.weight()))
        .filter(|&(_, weight)| weight > 0)
        .collect();
    let lcm = weighted.iter().try_fold(1u64, |lcm, &(_, weight)| {
        let weight = u64::from(weight);
        let lcm = lcm / gcd(lcm, weight) * weight;
        (lcm <= SCALE).then_some(lcm)
    });
    weighted
        .into_iter()
        .map(|(backend, weight)| Candidate {
            backend: Arc::clone(backend),
            weight,
            cost: lcm.unwrap_or(SCALE) / u64::from(weight),
        })
        .collect()
}

/// Greatest common divisor.
pub(super) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The strategy's precomputed table; indices point into `Snapshot::candidates`.
#[derive(Debug)]
enum Table {
    /// Least connections reads only the live counters.
    None,
    /// Round robin: the smooth weighted sequence.
    Sequence(Box<[u32]>),
    /// Power of two choices: weighted draws.
    Alias(AliasTable),
    /// Source hash: the Maglev lookup table.
    Maglev(Maglev),
}

impl Default for Snapshot {
    /// An empty round-robin snapshot.
    fn default() -> Self {
        Self::empty(Strategy::default())
    }
}

impl Snapshot {
    /// Builds the snapshot and the table `strategy` needs. Control plane only: this allocates
    /// and may take milliseconds (see the strategy modules for the costs).
    pub(super) fn build(strategy: Strategy, backends: Vec<Arc<Backend>>) -> Self {
        let candidates = candidates(&backends);
        let weights: Vec<u32> = candidates.iter().map(|c| c.weight).collect();
        let table = match strategy {
            Strategy::RoundRobin => Table::Sequence(round_robin::sequence(&weights)),
            Strategy::LeastConnections => Table::None,
            Strategy::PowerOfTwo => Table::Alias(AliasTable::new(&weights)),
            Strategy::SourceHash => Table::Maglev(Maglev::new(&candidates)),
        };
        Self {
            strategy,
            backends,
            candidates,
            table,
        }
    }

    /// An empty snapshot for `strategy`: every pick returns `None`.
    pub(super) fn empty(strategy: Strategy) -> Self {
        Self::build(strategy, Vec::new())
    }

    /// The backends in this snapshot, in publication order (draining ones included).
    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// The strategy this snapshot's tables were built for.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// How many backends may get new connections (healthy and weight > 0).
    pub fn pickable_count(&self) -> usize {
        self.candidates.len()
    }

    /// The chosen candidate, avoiding the backends whose address is in `exclude`.
    #[inline]
    pub(super) fn choose(
        &self,
        client: SocketAddr,
        next: &AtomicUsize,
        exclude: &[&Backend],
    ) -> Option<&Arc<Backend>> {
        let candidates = &self.candidates;
        let index = match &self.table {
            Table::Sequence(sequence) => round_robin::pick(sequence, candidates, next, exclude),
            Table::None => least_conn::pick(candidates, next, exclude),
            Table::Alias(alias) => alias.pick(candidates, exclude),
            Table::Maglev(maglev) => maglev.pick(client.ip(), candidates, exclude),
        }?;
        Some(&candidates[index].backend)
    }
}

/// Whether `backend` is one of `exclude` (same address: a failed endpoint is avoided even if
/// the control plane made a new `Backend` for it).
#[inline]
pub(super) fn is_excluded(exclude: &[&Backend], backend: &Backend) -> bool {
    exclude.iter().any(|excluded| excluded.addr == backend.addr)
}

/// The first candidate at or after `start` (circularly) that is neither excluded nor `skip`.
/// The fallback of every strategy's retry path: O(n), but only after its own draws failed.
pub(super) fn first_allowed(
    candidates: &[Candidate],
    start: usize,
    exclude: &[&Backend],
    skip: Option<usize>,
) -> Option<usize> {
    let n = candidates.len();
    let start = if n == 0 { 0 } else { start % n };
    (0..n)
        .map(|k| (start + k) % n)
        .find(|&i| Some(i) != skip && !is_excluded(exclude, &candidates[i].backend))
}
