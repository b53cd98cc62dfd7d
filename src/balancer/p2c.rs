//! Power of two choices: two distinct candidates drawn at random by weight, the less loaded
//! (active connections per unit of weight) wins.
//!
//! Owns the alias table that makes a weighted draw O(1) (one random number, one table entry),
//! built once per publish in O(n). A pick costs two draws and two counter loads whatever the
//! number of backends; it never locks, never allocates, never scans on the normal path.

use super::{
    rng,
    snapshot::{first_allowed, is_excluded, Candidate},
};
use crate::backend::Backend;

/// Draws tried for each of the two candidates before falling back to a scan (the second draw
/// can keep hitting the first candidate when it holds most of the weight).
const DRAWS: usize = 8;

/// A column is kept when the low 32 bits of the draw are below `keep_below` (out of 2^32),
/// otherwise the draw goes to `alias`.
#[derive(Debug, Clone, Copy)]
struct Column {
    keep_below: u64,
    alias: u32,
}

/// Walker's alias method: `n` columns of equal probability, each split between itself and one
/// other index, so that the columns add up to the weights exactly (to 2^-32).
#[derive(Debug, Default)]
pub(super) struct AliasTable {
    columns: Box<[Column]>,
}

const ONE: u64 = 1 << 32;

impl AliasTable {
    /// The table for `weights` (each > 0), in O(n).
    pub(super) fn new(weights: &[u32]) -> Self {
        let n = weights.len() as u64;
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        // Column i holds `scaled[i]` out of `total`: weight × n, so the average is `total`.
        let mut scaled: Vec<u64> = weights.iter().map(|&w| u64::from(w) * n).collect();
        let mut columns: Vec<Column> = (0..weights.len() as u32)
            .map(|i| Column {
                keep_below: ONE,
                alias: i,
            })
            .collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..weights.len()).partition(|&i| scaled[i] < total);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            let share = (u128::from(scaled[s]) << 32) / u128::from(total);
            columns[s] = Column {
                keep_below: share as u64,
                alias: l as u32,
            };
            // The large one gives the small column what it lacks.
            scaled[l] -= total - scaled[s];
            if scaled[l] < total {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is full up to rounding: `keep_below` stays at ONE.
        Self {
            columns: columns.into_boxed_slice(),
        }
    }

    /// One weighted draw from a 64-bit random value.
    #[inline]
    fn draw(&self, random: u64) -> usize {
        let column = ((random >> 32) * self.columns.len() as u64) >> 32;
        let Column { keep_below, alias } = self.columns[column as usize];
        if random & (ONE - 1) < keep_below {
            column as usize
        } else {
            alias as usize
        }
    }

    /// A weighted draw that is neither excluded nor `other`, in at most [`DRAWS`] tries.
    #[inline]
    fn draw_allowed(
        &self,
        candidates: &[Candidate],
        exclude: &[&Backend],
        other: Option<usize>,
    ) -> Option<usize> {
        (0..DRAWS)
            .map(|_| self.draw(rng::next_u64()))
            .find(|&i| Some(i) != other && !is_excluded(exclude, &candidates[i].backend))
    }

    /// The less loaded of two distinct weighted draws; the only allowed one if there is one.
    #[inline]
    pub(super) fn pick(&self, candidates: &[Candidate], exclude: &[&Backend]) -> Option<usize> {
        let n = candidates.len();
        if n <= 1 {
            return first_allowed(candidates, 0, exclude, None);
        }
        let first = self
            .draw_allowed(candidates, exclude, None)
            .or_else(|| first_allowed(candidates, rng::below(n), exclude, None))?;
        let second = self
            .draw_allowed(candidates, exclude, Some(first))
            .or_else(|| first_allowed(candidates, rng::below(n), exclude, Some(first)));
        match second {
            Some(second) if candidates[second].load() < candidates[first].load() => Some(second),
            _ => Some(first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frequencies(table: &AliasTable, draws: usize) -> Vec<f64> {
        let mut counts = vec![0usize; table.columns.len()];
        for _ in 0..draws {
            counts[table.draw(rng::next_u64())] += 1;
        }
        counts.iter().map(|&c| c as f64 / draws as f64).collect()
    }

    #[test]
    fn draws_follow_the_weights() {
        let weights = [5, 1, 3, 1];
        let table = AliasTable::new(&weights);
        let frequencies = frequencies(&table, 100_000);
        for (frequency, weight) in frequencies.iter().zip(weights) {
            let expected = f64::from(weight) / 10.0;
            assert!((frequency - expected).abs() < 0.01, "{frequencies:?}");
        }
    }

    #[test]
    fn columns_are_exact_for_equal_and_extreme_weights() {
        let equal = AliasTable::new(&[7, 7, 7]);
        assert!(equal.columns.iter().all(|c| c.keep_below == ONE));
        let extreme = AliasTable::new(&[u32::MAX, 1]);
        let frequencies = frequencies(&extreme, 10_000);
        assert!(frequencies[0] > 0.999, "{frequencies:?}");
    }
}
