//! Least connections: the candidate with the fewest active connections per unit of weight.
//!
//! Owns the scan over the backends' shared `active` counters (one cache-padded atomic per
//! backend, written by every worker, so the view is global rather than per worker). Ties rotate:
//! the scan starts one candidate further on each pick, so equally loaded backends alternate.
//! Never scans more than [`SCAN_LIMIT`] candidates, never locks, never allocates.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::{
    rng,
    snapshot::{first_allowed, is_excluded, Candidate},
};
use crate::backend::Backend;

/// Most candidates read per pick. Up to this many backends the scan is exact; above it, a pick
/// compares a window of this many consecutive candidates starting at a random one (each backend
/// is in the window with the same probability), a "best of 32" sample. Every counter read can
/// be a cache miss under load (other workers write them), so the bound keeps a pick at a few
/// dozen misses at most, whatever the number of backends.
pub(super) const SCAN_LIMIT: usize = 32;

/// The least loaded candidate that is not excluded.
#[inline]
pub(super) fn pick(
    candidates: &[Candidate],
    next: &AtomicUsize,
    exclude: &[&Backend],
) -> Option<usize> {
    let n = candidates.len();
    if n == 0 {
        return None;
    }
    let (start, span) = if n <= SCAN_LIMIT {
        (next.fetch_add(1, Relaxed) % n, n)
    } else {
        (rng::below(n), SCAN_LIMIT)
    };
    // (index, load) of the least loaded so far; ties keep the earliest in scan order.
    let mut best: Option<(usize, u64)> = None;
    for k in 0..span {
        let mut i = start + k;
        if i >= n {
            i -= n;
        }
        let candidate = &candidates[i];
        if !exclude.is_empty() && is_excluded(exclude, &candidate.backend) {
            continue;
        }
        let load = candidate.load();
        if best.is_none_or(|(_, least)| load < least) {
            best = Some((i, load));
        }
    }
    best.map(|(i, _)| i)
        .or_else(|| first_allowed(candidates, start + span, exclude, None))
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, sync::Arc};

    use super::*;

    fn candidates(n: usize) -> Vec<Candidate> {
        let backends: Vec<_> = (0..n)
            .map(|i| {
                Arc::new(Backend::new(
                    i,
                    "b",
                    SocketAddr::from(([127, 0, 3, 1], i as u16)),
                ))
            })
            .collect();
        super::super::snapshot::candidates(&backends)
    }

    #[test]
    fn large_pools_scan_a_bounded_window_that_still_finds_light_backends() {
        let candidates = candidates(1_000);
        for c in &candidates {
            (0..10).for_each(|_| c.backend.connection_opened());
        }
        // Ten idle backends, one every hundred: a window of 32 holds one in 32 % of picks.
        for i in (0..1_000).step_by(100) {
            (0..10).for_each(|_| candidates[i].backend.connection_closed());
        }
        let next = AtomicUsize::new(0);
        let idle = (0..1_000)
            .filter(|_| {
                let i = pick(&candidates, &next, &[]).unwrap();
                candidates[i].backend.active() == 0
            })
            .count();
        assert!(
            (250..400).contains(&idle),
            "{idle} of 1000 picks found an idle backend"
        );
    }
}
