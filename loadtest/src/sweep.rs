//! `--mode sweep`: open-loop rates doubling from `--sweep-start` until every path saturates.
//!
//! Owns the steps and the saturation rule. A path **saturates** at the first step where it
//! achieves less than [`MIN_ACHIEVED`] of the offered rate, or where its p99 (from the
//! intended send time, so queueing shows) exceeds [`P99_FACTOR`] times its p99 at the first,
//! lowest step (and [`P99_FLOOR_US`]) while its median has grown [`P50_FACTOR`] times too: the
//! rate is still served, but only by letting requests queue. The median guard is there because
//! on a shared machine one scheduling stall can lift a p99 tenfold; queueing lifts the median
//! as well. With several rounds per step the rule is applied to each round, and the step
//! saturates the path only when most of its rounds do: a stall of the machine in one round (a
//! second-long one times every request out) does not end a path's sweep. A saturated path is
//! not measured at higher rates; the sweep ends when every
//! path has saturated or the next rate would pass `--sweep-max`. Each step is one
//! [`measure`] pass over the paths still running, interleaved in rounds like the other modes.
//! Never reads a saturation into a path that was not measured at that rate.

use std::{sync::Arc, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::{
    cli::RunArgs,
    lab::Lab,
    measure::{self, Pass},
    progress::Progress,
    report::{
        summary::{path_summary, PathSummary, LAG_WARNING_US},
        sweep::{SweepPath, SweepReport, SweepStep},
        PathRun,
    },
    workload::{Mode, Workload},
};

/// Each step offers this many times the previous step's rate.
pub const FACTOR: f64 = 2.0;
/// A path keeps a rate when it achieves at least this share of it.
pub const MIN_ACHIEVED: f64 = 0.95;
/// A path's p99 may grow this many times over its first-step p99 before it counts as queueing.
pub const P99_FACTOR: f64 = 10.0;
/// ... but a p99 below this never counts as saturation (microseconds): on a shared machine a
/// first-step p99 of 100 µs can become 1 ms from scheduling alone.
pub const P99_FLOOR_US: u64 = 1000;
/// ... and the median must have grown this many times over the first step's too.
pub const P50_FACTOR: f64 = 2.0;

/// Why a step saturated a path.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Saturation {
    /// It achieved less than [`MIN_ACHIEVED`] of the offered rate.
    Rate {
        /// Achieved ÷ offered.
        achieved_ratio: f64,
    },
    /// Its p99 went past the limit, and its median grew with it.
    Latency {
        /// The step's p99 in µs.
        p99_us: u64,
        /// The limit in µs: [`P99_FACTOR`] × the first step's p99, at least [`P99_FLOOR_US`].
        limit_us: u64,
        /// The step's median over the first step's.
        p50_growth: f64,
    },
}

impl Saturation {
    /// A short description for the table.
    pub fn describe(&self) -> String {
        match *self {
            Saturation::Rate { achieved_ratio } => format!(
                "achieved {:.1}% < {:.0}%",
                achieved_ratio * 100.0,
                MIN_ACHIEVED * 100.0
            ),
            Saturation::Latency {
                p99_us,
                limit_us,
                p50_growth,
            } => format!(
                "p99 {} > {}, p50 ×{p50_growth:.1}",
                crate::units::latency(p99_us),
                crate::units::latency(limit_us)
            ),
        }
    }
}

/// The offered rates: `start`, doubling, never above `max` (at least `start` itself).
pub fn rates(start: f64, max: f64) -> Vec<f64> {
    let mut rates = vec![start];
    while let Some(next) = rates
        .last()
        .map(|r| r * FACTOR)
        .filter(|r| *r <= max * 1.000_001)
    {
        rates.push(next);
    }
    rates
}

/// A step's latency (or the first step's), in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Median.
    #[serde(rename = "p50_us")]
    pub p50: u64,
    /// 99th percentile.
    #[serde(rename = "p99_us")]
    pub p99: u64,
}

/// Whether a step with this achieved share and latency saturates a path whose first step had
/// latency `base`; the rate rule is checked first.
pub fn saturation(achieved_ratio: f64, step: Latency, base: Latency) -> Option<Saturation> {
    let limit_us = ((base.p99 as f64 * P99_FACTOR) as u64).max(P99_FLOOR_US);
    let p50_growth = step.p50 as f64 / base.p50.max(1) as f64;
    if achieved_ratio < MIN_ACHIEVED {
        Some(Saturation::Rate { achieved_ratio })
    } else if step.p99 > limit_us && p50_growth >= P50_FACTOR {
        Some(Saturation::Latency {
            p99_us: step.p99,
            limit_us,
            p50_growth,
        })
    } else {
        None
    }
}

/// One round of a step as the rule sees it: achieved ÷ offered, and latency.
pub type RoundFigures = (f64, Latency);

/// The verdict on a step from its merged figures and its rounds: saturated (with the merged
/// figures' reason, or else the first saturated round's) when more than half of the rounds
/// are; and how many were.
pub fn verdict(
    merged: RoundFigures,
    rounds: &[RoundFigures],
    base: Latency,
) -> (Option<Saturation>, usize) {
    let reasons: Vec<Saturation> = rounds
        .iter()
        .filter_map(|&(ratio, latency)| saturation(ratio, latency, base))
        .collect();
    let most = reasons.len() * 2 > rounds.len();
    let why = saturation(merged.0, merged.1, base).or(reasons.first().copied());
    (why.filter(|_| most), reasons.len())
}

/// Each round's figures of `run`.
pub fn rounds_of(run: &PathRun) -> Vec<RoundFigures> {
    run.rounds
        .iter()
        .map(|round| {
            let r = &round.recorder;
            let intended = r.intended as f64 / round.duration.as_secs_f64().max(1e-9);
            let achieved = round.throughput();
            let ratio = if intended > 0.0 {
                achieved / intended
            } else {
                0.0
            };
            let at = |q| {
                if r.latency.is_empty() {
                    0
                } else {
                    r.latency.value_at_quantile(q)
                }
            };
            (
                ratio,
                Latency {
                    p50: at(0.5),
                    p99: at(0.99),
                },
            )
        })
        .collect()
}

/// Adds a measured step to `path`, judging it (and its rounds) against the path's first step.
pub fn record(path: &mut SweepPath, offered: f64, figures: &PathSummary, rounds: &[RoundFigures]) {
    let step = Latency {
        p50: figures.latency_us.p50,
        p99: figures.latency_us.p99,
    };
    let base = *path.first.get_or_insert(step);
    let merged = (figures.achieved_ratio.unwrap_or(0.0), step);
    let rounds = if rounds.is_empty() {
        std::slice::from_ref(&merged)
    } else {
        rounds
    };
    let (saturated, saturated_rounds) = verdict(merged, rounds, base);
    let mut entry = SweepStep::of(offered, figures, saturated);
    entry.rounds = rounds.len();
    entry.saturated_rounds = saturated_rounds;
    path.steps.push(entry);
    match saturated {
        Some(why) => {
            path.saturated_at = Some(offered);
            path.saturation = Some(why);
        }
        None => path.max_kept = Some(offered),
    }
}

/// A finished sweep: the report, and each step's latency histogram by `<path>-<rate>` name.
#[derive(Debug)]
pub struct Sweep {
    /// What `summary.json`, the table and `sweep.svg` show.
    pub report: SweepReport,
    /// One histogram per path and step, named `<path>-<rate>` (for `<path>-<rate>.hgrm`).
    pub histograms: Vec<(String, Histogram<u64>)>,
    /// Things that make the numbers less trustworthy.
    pub warnings: Vec<String>,
}

/// Runs the sweep over every path of `lab`.
pub fn run(args: &RunArgs, lab: &Lab, load_runtime: &Runtime, progress: &Progress) -> Sweep {
    let mut paths: Vec<SweepPath> = lab
        .endpoints
        .iter()
        .map(|e| SweepPath::new(&e.name))
        .collect();
    let (mut histograms, mut warnings) = (Vec::new(), Vec::new());
    for (step, rate) in rates(args.sweep_start, args.sweep_max)
        .into_iter()
        .enumerate()
    {
        let active: Vec<usize> = (0..paths.len())
            .filter(|&i| paths[i].saturated_at.is_none())
            .collect();
        if active.is_empty() {
            break;
        }
        let pass = Pass {
            workload: Arc::new(Workload {
                mode: Mode::Rate,
                rate,
                connections: args.connections(),
                bytes: args.bytes,
                timeout: args.timeout,
            }),
            paths: active.clone(),
            rounds: args.rounds,
            duration: args.duration,
            warmup: if step == 0 {
                args.warmup
            } else {
                Duration::ZERO
            },
            label: format!("{}/s ", short_rate(rate)),
        };
        for (&i, run) in active
            .iter()
            .zip(measure::run(&pass, lab, load_runtime, progress))
        {
            let figures = path_summary(Mode::Rate, &run, &mut warnings);
            record(&mut paths[i], rate, &figures, &rounds_of(&run));
            histograms.push((
                format!("{}-{}", run.name, rate.round()),
                run.merged().latency,
            ));
        }
    }
    warnings.extend(paths.iter().filter_map(late_generator));
    if let Some(at) = paths
        .iter()
        .find(|p| p.name == "direct")
        .and_then(|p| p.saturated_at)
    {
        warnings.push(format!(
            "direct saturated at {} req/s: from that rate on the load generator and the replicas \
             (sharing the machine), not only the proxies, set the limit",
            crate::units::count(at)
        ));
    }
    Sweep {
        report: SweepReport::new(args.sweep_start, args.sweep_max, paths),
        histograms,
        warnings,
    }
}

/// A warning when the load generator woke late at some of `path`'s steps.
fn late_generator(path: &SweepPath) -> Option<String> {
    let late: Vec<(f64, u64)> = path
        .steps
        .iter()
        .filter_map(|s| Some((s.offered, s.generator_lag_p99_us?)))
        .filter(|(_, lag)| *lag > LAG_WARNING_US)
        .collect();
    let worst = late.iter().map(|(_, lag)| *lag).max()?;
    let rates: Vec<String> = late.iter().map(|(r, _)| short_rate(*r)).collect();
    Some(format!(
        "the load generator woke late while measuring {} at {} req/s (p99 up to {} after the \
         intended time; those latencies include it): the machine was busy",
        path.name,
        rates.join(", "),
        crate::units::latency(worst)
    ))
}

/// `1k`, `16k`, `1.5M`: a rate for labels.
pub fn short_rate(rate: f64) -> String {
    let (value, unit) = match rate {
        r if r >= 1e6 => (r / 1e6, "M"),
        r if r >= 1e3 => (r / 1e3, "k"),
        r => (r, ""),
    };
    let text = format!("{value:.1}");
    format!("{}{unit}", text.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_double_up_to_the_maximum() {
        assert_eq!(rates(1000.0, 8000.0), [1000.0, 2000.0, 4000.0, 8000.0]);
        assert_eq!(rates(1000.0, 7999.0), [1000.0, 2000.0, 4000.0]);
        assert_eq!(rates(500.0, 500.0), [500.0]);
        assert_eq!(rates(1000.0, 1_000_000.0).len(), 10);
    }

    fn at(p50: u64, p99: u64) -> Latency {
        Latency { p50, p99 }
    }

    #[test]
    fn saturation_is_a_missed_rate_or_queueing() {
        let base = at(100, 200);
        assert_eq!(saturation(0.99, at(120, 300), base), None);
        assert_eq!(
            saturation(0.90, at(120, 300), base),
            Some(Saturation::Rate {
                achieved_ratio: 0.90
            })
        );
        // 10 × 200 µs = 2 ms is the p99 limit, with a median at least doubled.
        assert_eq!(saturation(0.99, at(400, 2000), base), None);
        assert_eq!(
            saturation(0.99, at(400, 2001), base),
            Some(Saturation::Latency {
                p99_us: 2001,
                limit_us: 2000,
                p50_growth: 4.0
            })
        );
        // One stall lifts the p99 but not the median: not saturation.
        assert_eq!(saturation(0.99, at(110, 16_000), base), None);
        // A tiny first p99 still allows 1 ms.
        assert_eq!(saturation(1.0, at(500, 900), at(40, 40)), None);
        assert!(saturation(1.0, at(500, 1100), at(40, 40)).is_some());
        // The rate rule wins when both hold.
        assert!(matches!(
            saturation(0.5, at(9000, 50_000), base),
            Some(Saturation::Rate { .. })
        ));
    }

    /// A step's figures: `achieved` of 1,000 intended requests, 98% of them at `p50` µs.
    fn figures(achieved: f64, p50: u64, p99: u64) -> PathSummary {
        let mut recorder = crate::recorder::Recorder::default();
        for i in 0..100 {
            recorder
                .latency
                .record(if i < 98 { p50 } else { p99 })
                .unwrap();
        }
        recorder.intended = 1000;
        recorder.ok = (achieved * 1000.0) as u64;
        let round = crate::phase::PhaseResult {
            recorder,
            started: std::time::SystemTime::now(),
            duration: Duration::from_secs(1),
            elapsed: Duration::from_secs(1),
            cpu: None,
        };
        let mut run = crate::report::PathRun::new("ringlb");
        run.add(round, &[]);
        path_summary(Mode::Rate, &run, &mut Vec::new())
    }

    #[test]
    fn a_path_keeps_rates_until_its_first_saturated_step() {
        let mut path = SweepPath::new("ringlb");
        record(&mut path, 1000.0, &figures(1.0, 100, 200), &[]);
        record(&mut path, 2000.0, &figures(1.0, 110, 1500), &[]);
        assert_eq!((path.max_kept, path.saturated_at), (Some(2000.0), None));
        assert_eq!(path.first, Some(at(100, 200)));
        record(&mut path, 4000.0, &figures(1.0, 900, 5000), &[]);
        assert_eq!(
            (path.max_kept, path.saturated_at),
            (Some(2000.0), Some(4000.0))
        );
        assert!(matches!(path.saturation, Some(Saturation::Latency { .. })));
        assert_eq!(path.steps.len(), 3);
        assert!(path.steps[2].saturated.is_some() && path.steps[1].saturated.is_none());
        let mut slow = SweepPath::new("nginx");
        record(&mut slow, 1000.0, &figures(0.5, 100, 200), &[]);
        assert_eq!((slow.max_kept, slow.saturated_at), (None, Some(1000.0)));
    }

    #[test]
    fn a_step_saturates_when_most_of_its_rounds_do() {
        let base = at(100, 200);
        let (ok, stalled) = ((1.0, at(100, 250)), (0.8, at(300, 1_100_000)));
        // One stalled round of three: the merged figures look saturated, the step is kept.
        let (why, count) = verdict((0.93, at(110, 900_000)), &[ok, stalled, ok], base);
        assert_eq!((why, count), (None, 1));
        // Two of three: saturated, for the merged figures' reason.
        let (why, count) = verdict((0.87, at(250, 1_000_000)), &[stalled, ok, stalled], base);
        assert_eq!(count, 2);
        assert!(matches!(why, Some(Saturation::Rate { achieved_ratio }) if achieved_ratio == 0.87));
        // A merged figure that passes still saturates when most rounds do, for theirs.
        let queueing = (1.0, at(400, 3000));
        let (why, _) = verdict((0.99, at(150, 1500)), &[queueing, queueing], base);
        assert!(matches!(why, Some(Saturation::Latency { .. })));
        // One round: the plain rule.
        assert_eq!(verdict(ok, &[ok], base), (None, 0));
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(short_rate(1000.0), "1k");
        assert_eq!(short_rate(16_000.0), "16k");
        assert_eq!(short_rate(1_500_000.0), "1.5M");
        assert_eq!(short_rate(750.0), "750");
        assert!(Saturation::Rate {
            achieved_ratio: 0.844
        }
        .describe()
        .contains("84.4%"));
    }
}
