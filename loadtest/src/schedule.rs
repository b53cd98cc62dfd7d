//! The open-loop send schedule of one connection: fixed intervals, fixed from the start.
//!
//! Owns *when* each request is meant to be sent. The schedule never moves because a response was
//! late: a request sent late is measured from its intended time (wrk2's rule), which is what
//! corrects coordinated omission. Pure arithmetic; never sleeps.

use std::time::{Duration, Instant};

/// When each of one connection's requests is meant to go out.
#[derive(Debug, Clone)]
pub struct Schedule {
    first: Instant,
    interval: Duration,
    end: Instant,
    next: u64,
}

impl Schedule {
    /// The schedule of connection `index` of `connections`, together sending `rate` requests per
    /// second during `[start, end)`. Connections are staggered evenly across one interval so the
    /// total load is smooth rather than arriving in bursts of `connections`.
    pub fn new(start: Instant, end: Instant, rate: f64, index: usize, connections: usize) -> Self {
        let per_connection = rate / connections.max(1) as f64;
        let interval = Duration::from_secs_f64(1.0 / per_connection.max(1e-9));
        let offset = interval.mul_f64(index as f64 / connections.max(1) as f64);
        Schedule {
            first: start + offset,
            interval,
            end,
            next: 0,
        }
    }

    /// The time between two requests of this connection.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The intended send time of request `k` (0-based).
    pub fn intended(&self, k: u64) -> Instant {
        self.first + self.interval.mul_f64(k as f64)
    }

    /// The next intended send time, or `None` once it falls at or after the end.
    pub fn next_send(&mut self) -> Option<Instant> {
        let at = self.intended(self.next);
        if at >= self.end {
            return None;
        }
        self.next += 1;
        Some(at)
    }

    /// How many sends the whole schedule holds.
    pub fn total(&self) -> u64 {
        if self.first >= self.end {
            return 0;
        }
        let span = (self.end - self.first).as_secs_f64();
        let n = (span / self.interval.as_secs_f64()).ceil() as u64;
        // Floating point may put the last one exactly on `end`; that one is not in the window.
        if self.intended(n.saturating_sub(1)) >= self.end {
            n - 1
        } else {
            n
        }
    }

    /// How many sends are still to come.
    pub fn remaining(&self) -> u64 {
        self.total().saturating_sub(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_connections_together_send_rate_times_duration() {
        let start = Instant::now();
        let end = start + Duration::from_secs(2);
        let total: u64 = (0..32)
            .map(|i| Schedule::new(start, end, 4000.0, i, 32).total())
            .sum();
        assert!((7990..=8010).contains(&total), "total {total}");
    }

    #[test]
    fn sends_are_evenly_spaced_and_stop_at_the_end() {
        let start = Instant::now();
        let end = start + Duration::from_millis(100);
        let mut schedule = Schedule::new(start, end, 100.0, 0, 1);
        assert_eq!(schedule.interval(), Duration::from_millis(10));
        let sends: Vec<Instant> = std::iter::from_fn(|| schedule.next_send()).collect();
        assert_eq!(
            sends.len() as u64,
            Schedule::new(start, end, 100.0, 0, 1).total()
        );
        assert_eq!(sends.len(), 10);
        assert_eq!(sends[3] - sends[2], Duration::from_millis(10));
        assert_eq!(schedule.remaining(), 0);
    }

    #[test]
    fn connections_are_staggered_within_one_interval() {
        let start = Instant::now();
        let end = start + Duration::from_secs(1);
        let a = Schedule::new(start, end, 1000.0, 0, 4).intended(0);
        let b = Schedule::new(start, end, 1000.0, 1, 4).intended(0);
        assert_eq!(b - a, Duration::from_millis(1));
    }
}
