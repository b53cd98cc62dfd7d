//! CPU time of a path's processes around each measured phase, and what it costs per request.
//!
//! Owns the efficiency figure: user and system time (`/proc/<pid>/stat`, fields 14 and 15) of
//! every process of a path, sampled right before and right after each measured phase, summed
//! over the rounds and divided by the work done: requests (rate, max, sweep), connections
//! (connect) or GiB echoed (bulk). On a shared machine throughput and latency move with
//! whatever else runs; the CPU a proxy spends per request moves much less, which makes it the
//! honest figure to compare. Never attributes to a path the time of a process outside its tree.

use std::{collections::BTreeMap, io};

use serde::Serialize;

use crate::{procfs, workload::Mode};

/// The line printed under every table that shows CPU figures.
pub const NOTE: &str = "On a shared 2-core machine CPU per request is the honest efficiency \
figure: throughput and latency move with whatever else runs, the CPU a path's processes spend \
per request much less (most of it is the kernel's TCP stack; see docs/benchmarks.md).";

/// CPU time, user and system apart, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuTime {
    /// Time in user mode.
    pub user_s: f64,
    /// Time in the kernel on the processes' behalf.
    pub system_s: f64,
}

impl CpuTime {
    /// User plus system.
    pub fn total_s(&self) -> f64 {
        self.user_s + self.system_s
    }

    /// The sum of two times.
    pub fn plus(self, other: CpuTime) -> CpuTime {
        CpuTime {
            user_s: self.user_s + other.user_s,
            system_s: self.system_s + other.system_s,
        }
    }
}

/// The CPU clock of a path's processes at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuSample {
    /// (user, system) clock ticks by pid, for the root and its descendants.
    ticks: BTreeMap<u32, (u64, u64)>,
}

impl CpuSample {
    /// Reads `root` and its descendants now.
    pub fn take(root: u32) -> io::Result<CpuSample> {
        let ticks = procfs::tree(root)?
            .into_iter()
            .map(|(pid, s)| (pid, (s.user_ticks, s.system_ticks)))
            .collect();
        Ok(CpuSample { ticks })
    }

    /// The processes sampled.
    pub fn pids(&self) -> Vec<u32> {
        self.ticks.keys().copied().collect()
    }

    /// Time spent between `before` and this sample, at `hz` ticks per second. A process that
    /// appeared in between counts whole (all its time falls in the interval); one that
    /// disappeared cannot be read any more and is lost (its time went to its parent's
    /// `cutime`, which is not counted).
    pub fn since(&self, before: &CpuSample, hz: u64) -> CpuTime {
        let (mut user, mut system) = (0, 0);
        for (pid, &(u, s)) in &self.ticks {
            let (u0, s0) = before.ticks.get(pid).copied().unwrap_or((0, 0));
            user += u.saturating_sub(u0);
            system += s.saturating_sub(s0);
        }
        let hz = hz.max(1) as f64;
        CpuTime {
            user_s: user as f64 / hz,
            system_s: system as f64 / hz,
        }
    }

    #[cfg(test)]
    fn of(ticks: &[(u32, u64, u64)]) -> CpuSample {
        CpuSample {
            ticks: ticks.iter().map(|&(p, u, s)| (p, (u, s))).collect(),
        }
    }
}

/// What a path's processes spent over one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuSpent {
    /// CPU time between the samples.
    pub time: CpuTime,
    /// The processes read (at the second sample).
    pub pids: Vec<u32>,
}

/// Samples the tree of `root` around `phase`; the error says which sample failed and why.
pub fn around<T>(
    root: Option<u32>,
    phase: impl FnOnce() -> T,
) -> (T, Option<Result<CpuSpent, String>>) {
    let Some(root) = root else {
        return (phase(), None);
    };
    let before = CpuSample::take(root);
    let result = phase();
    let after = CpuSample::take(root);
    let spent = match (before, after) {
        (Ok(before), Ok(after)) => Ok(CpuSpent {
            time: after.since(&before, procfs::clock_ticks_per_second()),
            pids: after.pids(),
        }),
        (Err(e), _) => Err(format!(
            "cannot read /proc/{root}/stat before the phase: {e}"
        )),
        (_, Err(e)) => Err(format!(
            "cannot read /proc/{root}/stat after the phase: {e}"
        )),
    };
    (result, Some(spent))
}

/// What CPU time is divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CpuUnit {
    /// A successful request (rate, max and sweep modes).
    #[serde(rename = "request")]
    Request,
    /// A successful connection with its one request (connect mode).
    #[serde(rename = "connection")]
    Connection,
    /// A GiB (2^30 bytes) of payload echoed back (bulk mode; each byte crossed the path once
    /// in each direction).
    #[serde(rename = "GiB")]
    Gib,
}

impl CpuUnit {
    /// The unit of a workload mode.
    pub fn of(mode: Mode) -> CpuUnit {
        match mode {
            Mode::Rate | Mode::Max => CpuUnit::Request,
            Mode::Connect => CpuUnit::Connection,
            Mode::Bulk => CpuUnit::Gib,
        }
    }

    /// The table's column heading.
    pub fn heading(self) -> &'static str {
        match self {
            CpuUnit::Request => "CPU/req",
            CpuUnit::Connection => "CPU/conn",
            CpuUnit::Gib => "CPU/GiB",
        }
    }

    /// How many units a phase did: successes, or echoed bytes in GiB.
    pub fn count(self, ok: u64, bytes: u64) -> f64 {
        match self {
            CpuUnit::Request | CpuUnit::Connection => ok as f64,
            CpuUnit::Gib => bytes as f64 / f64::from(1u32 << 30),
        }
    }
}

/// Microseconds of CPU per unit of work, or `None` when no work was done.
pub fn micros_per(seconds: f64, units: f64) -> Option<f64> {
    (units > 0.0).then(|| seconds * 1e6 / units)
}

/// One path's CPU figures, as in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuFigures {
    /// What the `_per` figures are per: `request`, `connection` or `GiB`.
    pub per: CpuUnit,
    /// The processes counted (at the last sample).
    pub pids: Vec<u32>,
    /// User time over the measured rounds, in seconds.
    pub user_s: f64,
    /// System time over the measured rounds, in seconds.
    pub system_s: f64,
    /// User µs per unit.
    pub user_us_per: Option<f64>,
    /// System µs per unit.
    pub system_us_per: Option<f64>,
    /// User + system µs per unit: the efficiency figure.
    pub total_us_per: Option<f64>,
    /// Average cores busy: CPU time ÷ measured time.
    pub cores: f64,
    /// User + system µs per unit of each round, in time order (their spread is the noise).
    pub rounds_total_us_per: Vec<Option<f64>>,
}

/// One measured round as the CPU figures see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundCpu {
    /// CPU time over the phase.
    pub time: CpuTime,
    /// Units of work done in it.
    pub units: f64,
    /// Seconds the phase was measured.
    pub seconds: f64,
}

impl CpuFigures {
    /// Sums `rounds` and divides by the work; `None` when no round was sampled.
    pub fn of(per: CpuUnit, pids: Vec<u32>, rounds: &[RoundCpu]) -> Option<CpuFigures> {
        if rounds.is_empty() {
            return None;
        }
        let time = rounds
            .iter()
            .fold(CpuTime::default(), |sum, r| sum.plus(r.time));
        let units: f64 = rounds.iter().map(|r| r.units).sum();
        let seconds: f64 = rounds.iter().map(|r| r.seconds).sum();
        Some(CpuFigures {
            per,
            pids,
            user_s: time.user_s,
            system_s: time.system_s,
            user_us_per: micros_per(time.user_s, units),
            system_us_per: micros_per(time.system_s, units),
            total_us_per: micros_per(time.total_s(), units),
            cores: if seconds > 0.0 {
                time.total_s() / seconds
            } else {
                0.0
            },
            rounds_total_us_per: rounds
                .iter()
                .map(|r| micros_per(r.time.total_s(), r.units))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_difference_counts_every_process_of_the_tree() {
        let before = CpuSample::of(&[(10, 100, 200), (11, 50, 70)]);
        // 11 used 1 s user + 0.5 s system; 12 is a new worker; 10 did nothing.
        let after = CpuSample::of(&[(10, 100, 200), (11, 150, 120), (12, 10, 0)]);
        let spent = after.since(&before, 100);
        assert!((spent.user_s - 1.1).abs() < 1e-9, "{spent:?}");
        assert!((spent.system_s - 0.5).abs() < 1e-9, "{spent:?}");
        assert_eq!(after.pids(), [10, 11, 12]);
    }

    #[test]
    fn per_request_arithmetic() {
        // 0.3 s user + 0.45 s system over 50,000 requests = 6 + 9 = 15 µs per request.
        let round = |user_s, system_s, units| RoundCpu {
            time: CpuTime { user_s, system_s },
            units,
            seconds: 1.0,
        };
        let rounds = [round(0.1, 0.15, 20_000.0), round(0.2, 0.3, 30_000.0)];
        let f = CpuFigures::of(CpuUnit::Request, vec![7], &rounds).unwrap();
        assert!((f.user_us_per.unwrap() - 6.0).abs() < 1e-9);
        assert!((f.system_us_per.unwrap() - 9.0).abs() < 1e-9);
        assert!((f.total_us_per.unwrap() - 15.0).abs() < 1e-9);
        assert!((f.cores - 0.375).abs() < 1e-9);
        let per_round: Vec<f64> = f.rounds_total_us_per.iter().map(|r| r.unwrap()).collect();
        assert!((per_round[0] - 12.5).abs() < 1e-9 && (per_round[1] - 16.666_666).abs() < 1e-3);
        assert_eq!(micros_per(1.0, 0.0), None);
        assert!(CpuFigures::of(CpuUnit::Request, vec![], &[]).is_none());
    }

    #[test]
    fn units_follow_the_mode() {
        assert_eq!(CpuUnit::of(Mode::Max), CpuUnit::Request);
        assert_eq!(CpuUnit::of(Mode::Connect).heading(), "CPU/conn");
        assert_eq!(CpuUnit::of(Mode::Bulk).count(7, 3 << 29), 1.5);
        assert_eq!(CpuUnit::Request.count(7, 3 << 29), 7.0);
        assert_eq!(serde_json::to_string(&CpuUnit::Gib).unwrap(), "\"GiB\"");
    }

    #[test]
    fn this_process_burns_measurable_cpu() {
        let me = std::process::id();
        let before = CpuSample::take(me).unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(100) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = CpuSample::take(me).unwrap();
        let spent = after.since(&before, procfs::clock_ticks_per_second());
        assert!(spent.total_s() > 0.0, "{spent:?}");
    }
}
