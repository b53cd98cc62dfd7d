//! The order of phases: a warm-up per path, then interleaved rounds in rotating order.
//!
//! Owns the run's timetable. Interleaving makes machine drift (thermal, noisy neighbours, page
//! cache) hit every path alike instead of whichever ran last; rotating the order each round
//! keeps any path from always following the same one. Pure; never runs anything.

use std::time::Duration;

/// The shortest measured slice worth running; shorter slices lose too much to set-up.
pub const MIN_SLICE: Duration = Duration::from_millis(200);

/// One phase of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Index into the list of paths.
    pub path: usize,
    /// The measured round (0-based), or `None` for a warm-up.
    pub round: Option<usize>,
    /// How long the phase lasts.
    pub duration: Duration,
}

/// The rounds actually used: as asked, but never slices shorter than [`MIN_SLICE`].
pub fn effective_rounds(asked: usize, duration: Duration) -> usize {
    let fit = (duration.as_nanos() / MIN_SLICE.as_nanos()).max(1) as usize;
    asked.clamp(1, fit)
}

/// The timetable for `paths` paths: warm-ups first (if `warmup` is not zero), then `rounds`
/// rounds of `duration / rounds` each, path order rotated by one every round.
pub fn plan(paths: usize, rounds: usize, duration: Duration, warmup: Duration) -> Vec<Slot> {
    let rounds = effective_rounds(rounds, duration);
    let slice = duration / rounds as u32;
    let warmups = (0..paths).filter(|_| !warmup.is_zero()).map(|path| Slot {
        path,
        round: None,
        duration: warmup,
    });
    let measured = (0..rounds).flat_map(move |round| {
        (0..paths).map(move |i| Slot {
            path: (i + round) % paths,
            round: Some(round),
            duration: slice,
        })
    });
    warmups.chain(measured).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmups_then_rotating_rounds() {
        let slots = plan(3, 2, Duration::from_secs(4), Duration::from_secs(1));
        let order: Vec<(usize, Option<usize>)> = slots.iter().map(|s| (s.path, s.round)).collect();
        assert_eq!(
            order,
            vec![
                (0, None),
                (1, None),
                (2, None),
                (0, Some(0)),
                (1, Some(0)),
                (2, Some(0)),
                (1, Some(1)),
                (2, Some(1)),
                (0, Some(1)),
            ]
        );
        assert_eq!(slots[3].duration, Duration::from_secs(2));
    }

    #[test]
    fn every_path_gets_the_full_duration() {
        let slots = plan(4, 5, Duration::from_secs(10), Duration::ZERO);
        for path in 0..4 {
            let total: Duration = slots
                .iter()
                .filter(|s| s.path == path)
                .map(|s| s.duration)
                .sum();
            assert_eq!(total, Duration::from_secs(10));
        }
        assert!(slots.iter().all(|s| s.round.is_some()));
    }

    #[test]
    fn short_runs_use_fewer_rounds() {
        assert_eq!(effective_rounds(5, Duration::from_millis(500)), 2);
        assert_eq!(effective_rounds(5, Duration::from_millis(100)), 1);
        assert_eq!(effective_rounds(5, Duration::from_secs(10)), 5);
        assert_eq!(effective_rounds(0, Duration::from_secs(10)), 1);
    }
}
