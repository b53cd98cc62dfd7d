//! Probes that could not run because this host ran short (descriptors, memory, local ports; see
//! [`crate::local_error`]), and the one warning about them.
//!
//! Owns the rate limit of that warning: at most one a second, naming the latest real cause and
//! how many probes and resolutions could not run since the previous warning. Never changes an
//! endpoint's state (the pool counts such outcomes for nothing) and never logs per probe: a host
//! out of descriptors would otherwise log every endpoint every round, the moment it can least
//! afford it.

use std::time::{Duration, Instant};

use tracing::warn;

use super::probe::ProbeFailure;

/// Shortest time between two warnings.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Local failures seen since the last warning.
#[derive(Debug, Default)]
pub(super) struct Inconclusive {
    last_warning: Option<Instant>,
    /// The latest cause, as the OS describes it.
    cause: Option<String>,
    /// Probes and resolutions that could not run since the last warning.
    count: u64,
}

impl Inconclusive {
    /// Notes `failure` if it is local; returns whether it was.
    pub(super) fn note(&mut self, failure: &ProbeFailure) -> bool {
        let ProbeFailure::Local(cause) = failure else {
            return false;
        };
        self.count = self.count.saturating_add(1);
        self.cause = Some(cause.clone());
        true
    }

    /// Warns about what was noted if the last warning is at least a second old at `now`;
    /// returns whether it warned. Called once per round, so failures noted in a quiet second
    /// are reported at the first round after it.
    pub(super) fn warn_if_due(&mut self, now: Instant) -> bool {
        let recent = self
            .last_warning
            .is_some_and(|at| now.saturating_duration_since(at) < WARN_EVERY);
        if self.count == 0 || recent {
            return false;
        }
        let cause = self.cause.take().unwrap_or_default();
        // The cause goes into the message itself: it is what an operator searches for.
        warn!(
            inconclusive = self.count,
            "health probe could not run: {cause}; target states unchanged"
        );
        self.count = 0;
        self.last_warning = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emfile() -> ProbeFailure {
        ProbeFailure::Local("Too many open files (os error 24)".into())
    }

    #[test]
    fn only_local_failures_are_noted() {
        let mut noted = Inconclusive::default();
        assert!(!noted.note(&ProbeFailure::Refused));
        assert!(!noted.note(&ProbeFailure::Timeout));
        assert!(!noted.warn_if_due(Instant::now()), "nothing to say");
        assert!(noted.note(&emfile()));
        assert!(noted.warn_if_due(Instant::now()));
    }

    #[test]
    fn warns_at_most_once_a_second_and_keeps_the_count_in_between() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut noted = Inconclusive::default();
        noted.note(&emfile());
        assert!(noted.warn_if_due(at(0)));
        for round in 1..=3 {
            noted.note(&emfile());
            noted.note(&emfile());
            assert!(!noted.warn_if_due(at(round * 300)), "round {round}");
        }
        assert_eq!(noted.count, 6, "kept for the next warning");
        // A round without local failures still reports what the quiet second saw.
        assert!(noted.warn_if_due(at(1200)));
        assert_eq!(noted.count, 0);
        assert!(!noted.warn_if_due(at(2500)), "nothing new");
    }
}
