//! The sweep's figures, as saved in `summary.json` (`sweep`) and printed: every step of every
//! path, and each path's saturation point.
//!
//! Owns the sweep's data and its console table; the rule that fills them in lives in
//! [`crate::sweep`]. Never leaves out a step, the saturating one included.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use crate::{
    cpu::{CpuFigures, CpuUnit},
    sweep::{Latency, Saturation, FACTOR, MIN_ACHIEVED, P50_FACTOR, P99_FACTOR, P99_FLOOR_US},
    units,
};

use super::{
    subtitle,
    summary::{PathSummary, Percentiles},
    table::{cpu_cells, cpu_footer, grid, notes},
    Summary,
};

/// One path at one offered rate.
#[derive(Debug, Clone, Serialize)]
pub struct SweepStep {
    /// Offered requests per second (all connections together).
    pub offered: f64,
    /// Successful requests per second achieved.
    pub achieved: f64,
    /// `achieved / offered` (against the rate the schedule actually intended).
    pub achieved_ratio: f64,
    /// Latency from the intended send time.
    pub latency_us: Percentiles,
    /// Errors.
    pub errors: u64,
    /// Errors by kind.
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    /// Requests the schedule could not send before the window closed.
    pub missed: u64,
    /// p99 of the load generator's own lateness (µs); large values mean it was the bottleneck.
    pub generator_lag_p99_us: Option<u64>,
    /// CPU of the path's processes, per request (`null` for `direct`).
    pub cpu: Option<CpuFigures>,
    /// Why this step saturated the path, if it did (the path's last step then).
    pub saturated: Option<Saturation>,
    /// Measured rounds of the step.
    pub rounds: usize,
    /// Rounds that, alone, met the saturation rule (the step saturates when most do).
    pub saturated_rounds: usize,
}

impl SweepStep {
    /// The step of one path at `offered`, from its figures.
    pub fn of(offered: f64, figures: &PathSummary, saturated: Option<Saturation>) -> SweepStep {
        SweepStep {
            offered,
            achieved: figures.throughput,
            achieved_ratio: figures.achieved_ratio.unwrap_or(0.0),
            latency_us: figures.latency_us,
            errors: figures.errors,
            errors_by_kind: figures.errors_by_kind.clone(),
            missed: figures.missed,
            generator_lag_p99_us: figures.generator_lag_us.map(|l| l.p99),
            cpu: figures.cpu.clone(),
            saturated,
            rounds: 1,
            saturated_rounds: usize::from(saturated.is_some()),
        }
    }
}

/// One path's sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPath {
    /// The path.
    pub name: String,
    /// Latency at the first step, the base of the latency rule (p50 and p99 in µs).
    pub first: Option<Latency>,
    /// The highest offered rate it kept (`null` if it saturated at the first step).
    pub max_kept: Option<f64>,
    /// The offered rate at which it saturated (`null` if it kept every rate to --sweep-max).
    pub saturated_at: Option<f64>,
    /// Why it saturated.
    pub saturation: Option<Saturation>,
    /// Every measured step, by increasing rate.
    pub steps: Vec<SweepStep>,
}

impl SweepPath {
    /// A path with no step yet.
    pub fn new(name: &str) -> SweepPath {
        SweepPath {
            name: name.to_owned(),
            first: None,
            max_kept: None,
            saturated_at: None,
            saturation: None,
            steps: Vec::new(),
        }
    }
}

/// The whole sweep, with its rule spelled out.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// First offered rate.
    pub start: f64,
    /// Highest rate allowed.
    pub max: f64,
    /// Each step's rate over the previous one.
    pub factor: f64,
    /// A path saturates below this share of the offered rate…
    pub min_achieved_ratio: f64,
    /// … or when its p99 exceeds this many times its first-step p99…
    pub p99_factor: f64,
    /// … and this many µs…
    pub p99_floor_us: u64,
    /// … while its median has grown this many times over the first step's.
    pub p50_factor: f64,
    /// Per path, in measuring order.
    pub paths: Vec<SweepPath>,
}

impl SweepReport {
    /// The report of `paths`, with the rule's constants.
    pub fn new(start: f64, max: f64, paths: Vec<SweepPath>) -> SweepReport {
        SweepReport {
            start,
            max,
            factor: FACTOR,
            min_achieved_ratio: MIN_ACHIEVED,
            p99_factor: P99_FACTOR,
            p99_floor_us: P99_FLOOR_US,
            p50_factor: P50_FACTOR,
            paths,
        }
    }
}

/// The console report of a sweep: every step, then each path's saturation point.
pub fn render(summary: &Summary, sweep: &SweepReport) -> String {
    let mut out = format!("\n{}\n\n", subtitle(summary));
    let head = [
        "path",
        "offered",
        "achieved",
        "of offered",
        "p50",
        "p99",
        "errors",
    ];
    let mut rows = vec![head
        .iter()
        .copied()
        .chain(["CPU/req", "user", "sys", "saturated"])
        .map(String::from)
        .collect::<Vec<_>>()];
    for path in &sweep.paths {
        for step in &path.steps {
            let mut row = vec![
                path.name.clone(),
                units::count(step.offered),
                units::count(step.achieved),
                format!("{:.1}%", step.achieved_ratio * 100.0),
                units::latency(step.latency_us.p50),
                units::latency(step.latency_us.p99),
                step.errors.to_string(),
            ];
            row.extend(cpu_cells(step.cpu.as_ref()));
            row.push(match (step.saturated, step.saturated_rounds) {
                (Some(why), _) => why.describe(),
                (None, 0) => String::new(),
                (None, n) => format!("kept ({n} of {} rounds did not)", step.rounds),
            });
            rows.push(row);
        }
    }
    out.push_str(&grid(&rows));
    out.push('\n');
    for path in &sweep.paths {
        let _ = writeln!(out, "{}", verdict(path, sweep));
    }
    let _ = writeln!(
        out,
        "(saturated: achieved < {:.0}% of the offered rate, or p99 above {}× the path's p99 at \
         the first step and above {} while its p50 grew ×{} or more, in most of the step's \
         rounds; rates step ×{}, so a saturation point is known within a factor of {})",
        MIN_ACHIEVED * 100.0,
        P99_FACTOR,
        units::latency(P99_FLOOR_US),
        P50_FACTOR,
        FACTOR,
        FACTOR
    );
    out.push_str(&cpu_footer(CpuUnit::Request, summary));
    out.push_str(&notes(summary));
    out
}

/// `ringlb: kept 16,000 req/s, saturated at 32,000 (achieved 84.4% < 95%)`.
fn verdict(path: &SweepPath, sweep: &SweepReport) -> String {
    let haproxy = sweep
        .paths
        .iter()
        .find(|p| p.name == "haproxy" && p.name != path.name)
        .and_then(|p| p.max_kept);
    let kept = match (path.max_kept, haproxy) {
        (Some(rate), Some(theirs)) => format!(
            "kept {} req/s ({} haproxy's)",
            units::count(rate),
            units::ratio(Some(rate / theirs))
        ),
        (Some(rate), None) => format!("kept {} req/s", units::count(rate)),
        (None, _) => "kept no rate".to_owned(),
    };
    match (path.saturated_at, path.saturation) {
        (Some(at), Some(why)) => format!(
            "{}: {kept}, saturated at {} ({})",
            path.name,
            units::count(at),
            why.describe()
        ),
        _ => format!(
            "{}: {kept}, never saturated (--sweep-max {})",
            path.name,
            units::count(sweep.max)
        ),
    }
}
