//! What one load connection records, and how records are merged.
//!
//! Owns the histograms (microseconds, 3 significant digits) and counters of one connection.
//! Each connection has its own [`Recorder`]; they are merged after the phase, so no lock or
//! shared cache line is touched per sample. The only shared state is [`Live`], a few relaxed
//! atomics per connection that the progress bar reads.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use hdrhistogram::Histogram;

use crate::outcome::{ErrorCounts, ErrorKind};

/// Significant value digits of every histogram.
pub const SIGFIG: u8 = 3;
/// The largest recordable value, in microseconds (one hour; larger values saturate).
pub const MAX_MICROS: u64 = 3_600_000_000;

/// A new, empty latency histogram in microseconds.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, SIGFIG).expect("static histogram bounds are valid")
}

/// `d` in whole microseconds, saturated to the histogram's range.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .min(MAX_MICROS)
}

/// One connection's (or, once merged, one phase's) measurements.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Request latency: from the intended send time (rate mode) or the actual send time.
    pub latency: Histogram<u64>,
    /// TCP connect latency (connect mode only).
    pub connect: Histogram<u64>,
    /// How late the generator itself sent requests it was not held back on (rate mode only).
    pub lag: Histogram<u64>,
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// Successful (2xx) responses.
    pub ok: u64,
    /// Payload bytes echoed back (bulk mode).
    pub bytes: u64,
    /// Requests the schedule intended in the window (rate mode).
    pub intended: u64,
    /// Intended requests never sent because the window closed first (rate mode).
    pub missed: u64,
    /// When the last response of the phase arrived, measured from the phase start.
    pub last_done: Duration,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            latency: histogram(),
            connect: histogram(),
            lag: histogram(),
            errors: ErrorCounts::default(),
            ok: 0,
            bytes: 0,
            intended: 0,
            missed: 0,
            last_done: Duration::ZERO,
        }
    }
}

impl Recorder {
    /// Records one successful request that took `latency`.
    pub fn success(&mut self, latency: Duration, live: &Live) {
        self.latency.saturating_record(micros(latency));
        self.ok += 1;
        live.ok.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one failed request.
    pub fn failure(&mut self, kind: ErrorKind, live: &Live) {
        self.errors.add(kind);
        live.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds another recorder's measurements into this one.
    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds and precision everywhere, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.connect.add(&other.connect);
        let _ = self.lag.add(&other.lag);
        self.errors.merge(&other.errors);
        self.ok += other.ok;
        self.bytes += other.bytes;
        self.intended += other.intended;
        self.missed += other.missed;
        self.last_done = self.last_done.max(other.last_done);
    }
}

/// Counters one connection updates as it goes, for the live progress display.
#[derive(Debug, Default)]
pub struct Live {
    /// Successful responses so far.
    pub ok: AtomicU64,
    /// Errors so far.
    pub errors: AtomicU64,
    /// Payload bytes echoed so far (bulk mode).
    pub bytes: AtomicU64,
}

impl Live {
    /// Sums the counters of all connections: (ok, errors, bytes).
    pub fn sum(all: &[std::sync::Arc<Live>]) -> (u64, u64, u64) {
        all.iter().fold((0, 0, 0), |(ok, errors, bytes), live| {
            (
                ok + live.ok.load(Ordering::Relaxed),
                errors + live.errors.load(Ordering::Relaxed),
                bytes + live.bytes.load(Ordering::Relaxed),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_samples_and_counts() {
        let live = Live::default();
        let mut a = Recorder::default();
        a.success(Duration::from_micros(100), &live);
        let mut b = Recorder::default();
        b.success(Duration::from_micros(300), &live);
        b.failure(ErrorKind::Timeout, &live);
        b.last_done = Duration::from_secs(1);
        a.merge(&b);
        assert_eq!(a.ok, 2);
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.latency.max(), 300);
        assert_eq!(a.errors.total(), 1);
        assert_eq!(a.last_done, Duration::from_secs(1));
        assert_eq!(live.ok.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn huge_latencies_saturate() {
        assert_eq!(micros(Duration::from_secs(100_000)), MAX_MICROS);
    }
}
