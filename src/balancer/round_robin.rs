//! Smooth weighted round robin: the sequence is computed once per publish, a pick is one
//! `fetch_add` and one index.
//!
//! Owns building the sequence and reading it. The sequence is the "smooth" one (at every step
//! each backend's credit grows by its weight, the richest is chosen and pays the total weight;
//! ties go to the earliest published), so 3:1 gives `a a b a` and a light backend is never
//! starved by a burst of a heavy one. Never builds anything on a pick.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::snapshot::{first_allowed, gcd, is_excluded, Candidate};
use crate::backend::Backend;

/// Longest sequence built. Weights are first divided by their greatest common divisor; if they
/// still sum to more than this, they are scaled down proportionally (each keeps at least 1), so
/// ratios finer than about 1 / 65,536 of the total are rounded.
pub(super) const MAX_SEQUENCE: usize = 65_536;

/// On a retry, how far along the sequence to look for a backend that is not excluded before
/// falling back to the next allowed candidate in publication order.
const RETRY_SCAN: usize = 64;

/// The smooth weighted sequence of candidate indices for `weights` (each > 0).
///
/// Costs O(n × length) once per publish, on the control plane: with equal weights it is `0..n`
/// directly; 1,000 backends weighted 1 to 4 take about 2 ms; the worst case, 1,000 backends
/// whose weights fill the 65,536 entries, about 100 ms (picks keep using the previous snapshot
/// meanwhile).
pub(super) fn sequence(weights: &[u32]) -> Box<[u32]> {
    let weights = normalize(weights, MAX_SEQUENCE as u64);
    if weights.iter().all(|&w| w == 1) {
        return (0..weights.len() as u32).collect();
    }
    let total: u64 = weights.iter().sum();
    let total_credit = total as i64;
    let weights: Vec<i64> = weights.iter().map(|&w| w as i64).collect();
    let mut credit = vec![0i64; weights.len()];
    let mut sequence = Vec::with_capacity(total as usize);
    for _ in 0..total {
        // (index, credit) of the richest so far; `>` keeps the earliest on a tie.
        let mut richest = (0, i64::MIN);
        for (i, (credit_i, &weight)) in credit.iter_mut().zip(&weights).enumerate() {
            *credit_i += weight;
            if *credit_i > richest.1 {
                richest = (i, *credit_i);
            }
        }
        credit[richest.0] -= total_credit;
        sequence.push(richest.0 as u32);
    }
    sequence.into_boxed_slice()
}

/// `weights` divided by their gcd, then scaled down so that they sum to at most about `cap`.
fn normalize(weights: &[u32], cap: u64) -> Vec<u64> {
    let divisor = weights.iter().fold(0, |g, &w| gcd(g, u64::from(w))).max(1);
    let reduced: Vec<u64> = weights.iter().map(|&w| u64::from(w) / divisor).collect();
    let sum: u64 = reduced.iter().sum();
    if sum <= cap {
        return reduced;
    }
    let scaled: Vec<u64> = reduced.iter().map(|&w| (w * cap / sum).max(1)).collect();
    let divisor = scaled.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    scaled.iter().map(|&w| w / divisor).collect()
}

/// The next candidate of the sequence; on a retry, the next one along it that is not excluded.
#[inline]
pub(super) fn pick(
    sequence: &[u32],
    candidates: &[Candidate],
    next: &AtomicUsize,
    exclude: &[&Backend],
) -> Option<usize> {
    let len = sequence.len();
    if len == 0 {
        return None;
    }
    let at = next.fetch_add(1, Relaxed) % len;
    let chosen = sequence[at] as usize;
    if exclude.is_empty() || !is_excluded(exclude, &candidates[chosen].backend) {
        return Some(chosen);
    }
    (1..len.min(RETRY_SCAN))
        .map(|k| sequence[(at + k) % len] as usize)
        .find(|&i| !is_excluded(exclude, &candidates[i].backend))
        .or_else(|| first_allowed(candidates, chosen + 1, exclude, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_sequence_spreads_the_light_backends() {
        assert_eq!(&*sequence(&[3, 1]), [0, 0, 1, 0]);
        assert_eq!(&*sequence(&[5, 1, 1]), [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(&*sequence(&[6, 2]), [0, 0, 1, 0], "divided by the gcd");
        assert_eq!(
            &*sequence(&[4, 4, 4]),
            [0, 1, 2],
            "equal weights: plain rotation"
        );
        assert!(sequence(&[]).is_empty());
    }

    #[test]
    fn huge_weights_are_scaled_to_the_bound() {
        let weights = [1_000_000, 999_999, 1];
        let sequence = sequence(&weights);
        assert!(sequence.len() <= MAX_SEQUENCE + weights.len());
        let mut counts = [0usize; 3];
        sequence.iter().for_each(|&i| counts[i as usize] += 1);
        assert!(counts[0].abs_diff(counts[1]) <= 1, "{counts:?}");
        assert_eq!(counts[2], 1, "every weight keeps at least one turn");
    }

    #[test]
    fn retry_walks_the_sequence_past_the_excluded_backend() {
        use std::{net::SocketAddr, sync::Arc};
        let backends: Vec<_> = (0..3)
            .map(|i| {
                Arc::new(Backend::new(
                    i,
                    "b",
                    SocketAddr::from(([127, 0, 0, 1], i as u16)),
                ))
            })
            .collect();
        let candidates = super::super::snapshot::candidates(&backends);
        let sequence = sequence(&[1, 1, 1]);
        let next = AtomicUsize::new(0);
        let exclude = [&*candidates[0].backend];
        let picks: Vec<_> = (0..6)
            .map(|_| pick(&sequence, &candidates, &next, &exclude).unwrap())
            .collect();
        assert_eq!(picks, [1, 1, 2, 1, 1, 2]);
    }
}
