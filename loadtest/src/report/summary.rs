//! The run's figures per path, as printed in the table and saved in `summary.json`.
//!
//! Owns every derived number: throughput, achieved against intended rate, percentiles, errors,
//! ratios to `direct` and `haproxy`, and the warnings (a path that could not keep the rate, a
//! load generator that woke late). The table and the JSON are both rendered from this one
//! structure, so they cannot disagree. Never measures anything itself.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{
    cli::{RunArgs, RunMode},
    cpu::{self, CpuFigures, CpuUnit},
    procfs,
    workload::Mode,
};

use super::{idle::IdleReport, sweep::SweepReport, PathRun, REPORTED};

/// A path must achieve this share of the intended rate to count as keeping it.
pub const KEEP_RATE: f64 = 0.97;
/// Generator lateness (p99) above which the numbers are suspect.
pub const LAG_WARNING_US: u64 = 1000;

/// A path left out of the run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The path.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl Note {
    /// A note about `path`.
    pub fn new(path: &str, reason: String) -> Note {
        Note {
            path: path.to_owned(),
            reason,
        }
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    /// 99.99th percentile.
    #[serde(rename = "p99.99")]
    pub p99_99: u64,
    /// Maximum.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let at = |q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        Percentiles {
            count: h.len(),
            mean: if h.is_empty() { 0.0 } else { h.mean() },
            p50: at(REPORTED[0]),
            p90: at(REPORTED[1]),
            p99: at(REPORTED[2]),
            p99_9: at(REPORTED[3]),
            p99_99: at(REPORTED[4]),
            max: h.max(),
        }
    }

    /// The values shown in the table and ratios: p50, p90, p99, p99.9, max.
    pub fn shown(&self) -> [u64; 5] {
        [self.p50, self.p90, self.p99, self.p99_9, self.max]
    }
}

/// Percentiles of one path divided by another's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratios {
    /// p50 ratio.
    pub p50: Option<f64>,
    /// p90 ratio.
    pub p90: Option<f64>,
    /// p99 ratio.
    pub p99: Option<f64>,
    /// p99.9 ratio.
    #[serde(rename = "p99.9")]
    pub p99_9: Option<f64>,
    /// max ratio.
    pub max: Option<f64>,
    /// CPU per unit of work (user + system), when both paths have it.
    pub cpu: Option<f64>,
}

impl Ratios {
    fn of(mine: &PathSummary, base: &PathSummary) -> Ratios {
        let (m, b) = (&mine.latency_us, &base.latency_us);
        let r = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let cpu = |p: &PathSummary| p.cpu.as_ref().and_then(|c| c.total_us_per);
        Ratios {
            p50: r(m.p50, b.p50),
            p90: r(m.p90, b.p90),
            p99: r(m.p99, b.p99),
            p99_9: r(m.p99_9, b.p99_9),
            max: r(m.max, b.max),
            cpu: cpu(mine)
                .zip(cpu(base))
                .and_then(|(a, b)| (b > 0.0).then(|| a / b)),
        }
    }

    /// In table order: p50, p90, p99, p99.9, max.
    pub fn shown(&self) -> [Option<f64>; 5] {
        [self.p50, self.p90, self.p99, self.p99_9, self.max]
    }
}

/// One path's results.
#[derive(Debug, Clone, Serialize)]
pub struct PathSummary {
    /// The path.
    pub name: String,
    /// Successful requests (transfers, connections).
    pub requests: u64,
    /// Successes per second over the measured time.
    pub throughput: f64,
    /// Unit of `throughput` (req/s, conn/s; transfers/s in bulk mode).
    pub throughput_unit: &'static str,
    /// Intended requests per second (rate mode).
    pub intended_rate: Option<f64>,
    /// `throughput / intended_rate` (rate mode).
    pub achieved_ratio: Option<f64>,
    /// Whether the path kept the intended rate (rate mode).
    pub kept_rate: Option<bool>,
    /// Echoed payload per second, each way (bulk mode).
    pub gbit_per_s: Option<f64>,
    /// Latency (rate mode: from the intended send time).
    pub latency_us: Percentiles,
    /// Connect latency (connect mode).
    pub connect_latency_us: Option<Percentiles>,
    /// How late the generator itself sent (rate mode); large values mean it was the bottleneck.
    pub generator_lag_us: Option<Percentiles>,
    /// All errors.
    pub errors: u64,
    /// Errors by kind.
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    /// Requests the schedule could not send before the window closed (rate mode).
    pub missed: u64,
    /// Percentiles divided by `direct`'s.
    pub ratio_to_direct: Option<Ratios>,
    /// Percentiles divided by `haproxy`'s.
    pub ratio_to_haproxy: Option<Ratios>,
    /// Requests each replica answered during this path's measured phases.
    pub replica_requests: Vec<u64>,
    /// CPU time of the path's processes over the measured rounds and per unit of work; `null`
    /// for `direct` (no proxy) and for a target without `--target-pid`.
    pub cpu: Option<CpuFigures>,
}

/// The settings that shaped the numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// What the run did: `rate`, `max`, `bulk`, `connect`, `sweep` or `idle`.
    pub mode: RunMode,
    /// Intended total rate (rate mode).
    pub rate: Option<f64>,
    /// Connections.
    pub connections: usize,
    /// Measured seconds per path.
    pub duration_s: f64,
    /// Warm-up seconds per path.
    pub warmup_s: f64,
    /// Interleaved rounds.
    pub rounds: usize,
    /// Bytes per transfer (bulk mode).
    pub bytes: Option<u64>,
    /// Request timeout in seconds.
    pub timeout_s: f64,
    /// Replicas started (0 with targets).
    pub replicas: usize,
    /// Proxy workers.
    pub workers: usize,
    /// Load generator threads.
    pub client_threads: usize,
    /// Replica runtime threads.
    pub replica_threads: usize,
}

/// The machine the run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// Clock ticks per second of `/proc/<pid>/stat` times (the CPU figures' resolution).
    pub clock_ticks_per_s: u64,
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// The settings.
    pub settings: Settings,
    /// The machine.
    pub machine: Machine,
    /// Per path, in measuring order.
    pub paths: Vec<PathSummary>,
    /// Paths skipped because their software is missing.
    pub skipped: Vec<Note>,
    /// Paths that failed.
    pub failed: Vec<Note>,
    /// Things that make the numbers less trustworthy.
    pub warnings: Vec<String>,
    /// How to read the CPU figures.
    pub cpu_note: &'static str,
    /// `--mode sweep`: every step of every path (`paths` is then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepReport>,
    /// `--mode idle`: what the idle connections cost each path (`paths` is then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdleReport>,
}

impl Summary {
    /// Derives all figures from the measured `runs`.
    pub fn build(
        args: &RunArgs,
        rounds: usize,
        runs: &[PathRun],
        started: String,
        skipped: Vec<Note>,
        failed: Vec<Note>,
    ) -> Summary {
        let mode = args.mode.load();
        let mut warnings = Vec::new();
        let mut paths: Vec<PathSummary> = runs
            .iter()
            .map(|run| path_summary(mode, run, &mut warnings))
            .collect();
        add_ratios(&mut paths);
        warnings.extend(rate_warnings(&paths));
        Summary {
            started,
            settings: settings(args, rounds),
            machine: machine(),
            paths,
            skipped,
            failed,
            warnings,
            cpu_note: cpu::NOTE,
            sweep: None,
            idle: None,
        }
    }
}

/// Fills in every path's ratios to `direct` and to `haproxy` (when they were measured).
pub fn add_ratios(paths: &mut [PathSummary]) {
    let base = |name: &str| paths.iter().find(|p| p.name == name).cloned();
    let (direct, haproxy) = (base("direct"), base("haproxy"));
    for path in paths.iter_mut() {
        path.ratio_to_direct = direct.as_ref().map(|d| Ratios::of(path, d));
        path.ratio_to_haproxy = haproxy.as_ref().map(|h| Ratios::of(path, h));
    }
}

/// The figures of one path measured with workload `mode`; a CPU figure that could not be read
/// adds a line to `warnings`.
pub fn path_summary(mode: Mode, run: &PathRun, warnings: &mut Vec<String>) -> PathSummary {
    let merged = run.merged();
    let secs = run.elapsed().as_secs_f64().max(1e-9);
    let throughput = merged.ok as f64 / secs;
    let rate_mode = mode == Mode::Rate;
    let cpu = run.cpu(CpuUnit::of(mode)).unwrap_or_else(|e| {
        warnings.push(format!("no CPU figures for {}: {e}", run.name));
        None
    });
    let intended_rate =
        rate_mode.then(|| merged.intended as f64 / run.duration().as_secs_f64().max(1e-9));
    let achieved_ratio = intended_rate.map(|r| if r > 0.0 { throughput / r } else { 0.0 });
    PathSummary {
        name: run.name.clone(),
        requests: merged.ok,
        throughput,
        throughput_unit: match mode {
            Mode::Bulk => "transfers/s",
            mode => mode.throughput_unit(),
        },
        intended_rate,
        achieved_ratio,
        kept_rate: achieved_ratio.map(|r| r >= KEEP_RATE),
        gbit_per_s: (mode == Mode::Bulk).then(|| merged.bytes as f64 * 8.0 / secs / 1e9),
        latency_us: Percentiles::of(&merged.latency),
        connect_latency_us: (mode == Mode::Connect).then(|| Percentiles::of(&merged.connect)),
        generator_lag_us: rate_mode.then(|| Percentiles::of(&merged.lag)),
        errors: merged.errors.total(),
        errors_by_kind: merged.errors.by_name(),
        missed: merged.missed,
        ratio_to_direct: None,
        ratio_to_haproxy: None,
        replica_requests: run.replica_requests.clone(),
        cpu,
    }
}

fn rate_warnings(paths: &[PathSummary]) -> Vec<String> {
    let mut out = Vec::new();
    for path in paths {
        if path.kept_rate == Some(false) {
            out.push(format!(
                "{} could not keep the intended rate: {:.0} of {:.0} req/s ({:.1}%); its latencies include the queueing",
                path.name,
                path.throughput,
                path.intended_rate.unwrap_or(0.0),
                path.achieved_ratio.unwrap_or(0.0) * 100.0
            ));
        }
        if let Some(lag) = path.generator_lag_us.filter(|lag| lag.p99 > LAG_WARNING_US) {
            out.push(format!(
                "the load generator woke late while measuring {} (p99 {} µs after the intended \
                 time; the latencies include it): the machine is busy or the generator short of CPU \
                 (other processes? try --client-threads 2 or a lower --rate)",
                path.name, lag.p99
            ));
        }
    }
    out
}

fn settings(args: &RunArgs, rounds: usize) -> Settings {
    Settings {
        mode: args.mode,
        rate: (args.mode == RunMode::Rate).then_some(args.rate),
        connections: args.connections(),
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        rounds,
        bytes: (args.mode == RunMode::Bulk).then_some(args.bytes),
        timeout_s: args.timeout.as_secs_f64(),
        replicas: if args.targets.is_empty() {
            args.replicas
        } else {
            0
        },
        workers: args.workers,
        client_threads: args.client_threads,
        replica_threads: args.replica_threads,
    }
}

fn machine() -> Machine {
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        clock_ticks_per_s: procfs::clock_ticks_per_second(),
    }
}
