//! Everything a run leaves behind: the console table and the files in the output directory.
//!
//! Owns the per-path measurements ([`PathRun`]) and writing them out: `<path>.hgrm`,
//! `<path>.hlog`, `summary.json` and `latency.svg` (plus `<path>.connect.hgrm` in connect mode;
//! `<path>-<rate>.hgrm` and `sweep.svg` in a sweep; `summary.json` alone for idle).
//! Never measures, and never leaves a path out of a file because its numbers look bad.

pub mod hgrm;
pub mod hlog;
pub mod idle;
pub mod summary;
pub mod svg;
pub mod sweep;
pub mod sweep_svg;
pub mod table;

use std::{
    fs,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use anyhow::Context;
use hdrhistogram::Histogram;

use crate::{
    cli::RunMode,
    cpu::{CpuFigures, CpuUnit, RoundCpu},
    phase::PhaseResult,
    recorder::Recorder,
    workload::Mode,
};

pub use hgrm::{Distribution, REPORTED};
pub use summary::{Note, Summary};

/// One path's measured rounds (warm-ups excluded).
#[derive(Debug, Clone)]
pub struct PathRun {
    /// The path.
    pub name: String,
    /// One result per round, in time order.
    pub rounds: Vec<PhaseResult>,
    /// Requests each replica answered during those rounds.
    pub replica_requests: Vec<u64>,
}

impl PathRun {
    /// A path with nothing measured yet.
    pub fn new(name: &str) -> PathRun {
        PathRun {
            name: name.to_owned(),
            rounds: Vec::new(),
            replica_requests: Vec::new(),
        }
    }

    /// Adds a round and what each replica served during it.
    pub fn add(&mut self, round: PhaseResult, served: &[u64]) {
        self.rounds.push(round);
        self.replica_requests.resize(served.len(), 0);
        for (total, n) in self.replica_requests.iter_mut().zip(served) {
            *total += n;
        }
    }

    /// All rounds merged.
    pub fn merged(&self) -> Recorder {
        let mut merged = Recorder::default();
        for round in &self.rounds {
            merged.merge(&round.recorder);
        }
        merged
    }

    /// Measured time actually taken, over all rounds.
    pub fn elapsed(&self) -> Duration {
        self.rounds.iter().map(|r| r.elapsed).sum()
    }

    /// Intended measured time, over all rounds.
    pub fn duration(&self) -> Duration {
        self.rounds.iter().map(|r| r.duration).sum()
    }

    /// The path's CPU figures per `unit` over its rounds: `Ok(None)` when it has no process to
    /// read, an error when some round could not be read (partial figures would mislead).
    pub fn cpu(&self, unit: CpuUnit) -> Result<Option<CpuFigures>, String> {
        let mut rounds = Vec::new();
        let mut pids = Vec::new();
        for round in &self.rounds {
            match &round.cpu {
                None => return Ok(None),
                Some(Err(e)) => return Err(e.clone()),
                Some(Ok(spent)) => {
                    pids.clone_from(&spent.pids);
                    rounds.push(RoundCpu {
                        time: spent.time,
                        units: unit.count(round.recorder.ok, round.recorder.bytes),
                        seconds: round.elapsed.as_secs_f64(),
                    });
                }
            }
        }
        Ok(CpuFigures::of(unit, pids, &rounds))
    }
}

/// Writes a sweep's files into `dir`: `summary.json`, `sweep.svg` and one `<path>-<rate>.hgrm`
/// per step; returns their paths.
pub fn write_sweep_files(
    dir: &Path,
    summary: &Summary,
    histograms: &[(String, Histogram<u64>)],
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, latency) in histograms {
        written.push(write_hgrm(dir, &format!("{name}.hgrm"), latency)?);
    }
    written.push(write_json(dir, summary)?);
    if let Some(sweep) = &summary.sweep {
        let picture = dir.join("sweep.svg");
        let svg = sweep_svg::render(&subtitle(summary), sweep);
        create(&picture, |out| Ok(out.write_all(svg.as_bytes())?))?;
        written.push(picture);
    }
    Ok(written)
}

/// Writes `summary.json` into `dir`.
pub fn write_json(dir: &Path, summary: &Summary) -> anyhow::Result<PathBuf> {
    let json = dir.join("summary.json");
    create(&json, |out| {
        Ok(serde_json::to_writer_pretty(&mut *out, summary)?)
    })?;
    Ok(json)
}

/// Writes every output file into `dir`; returns their paths.
pub fn write_files(
    dir: &Path,
    summary: &Summary,
    runs: &[PathRun],
    base: SystemTime,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for run in runs {
        let merged = run.merged();
        written.push(write_hgrm(
            dir,
            &format!("{}.hgrm", run.name),
            &merged.latency,
        )?);
        if summary.settings.mode.load() == Mode::Connect {
            written.push(write_hgrm(
                dir,
                &format!("{}.connect.hgrm", run.name),
                &merged.connect,
            )?);
        }
        let hlog = dir.join(format!("{}.hlog", run.name));
        create(&hlog, |out| hlog::write(&run.name, &run.rounds, base, out))?;
        written.push(hlog);
    }
    written.push(write_json(dir, summary)?);
    let picture = dir.join("latency.svg");
    let svg = svg::render(&title(summary), &subtitle(summary), &curves(runs));
    create(&picture, |out| Ok(out.write_all(svg.as_bytes())?))?;
    written.push(picture);
    Ok(written)
}

fn write_hgrm(dir: &Path, name: &str, h: &Histogram<u64>) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    let (buckets, sub_buckets) = hgrm::layout(h);
    create(&path, |out| {
        Ok(Distribution::of(h).write(buckets, sub_buckets, out)?)
    })?;
    Ok(path)
}

fn create(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<fs::File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file =
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    fill(&mut out).with_context(|| format!("cannot write {}", path.display()))?;
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

fn curves(runs: &[PathRun]) -> Vec<svg::Curve> {
    runs.iter()
        .map(|run| {
            let latency = run.merged().latency;
            let dist = Distribution::of(&latency);
            svg::Curve {
                name: run.name.clone(),
                points: dist.lines.iter().map(|l| (l.quantile, l.value)).collect(),
                max: dist.max,
                p99: dist.value_at(0.99),
            }
        })
        .collect()
}

fn title(summary: &Summary) -> String {
    let what = match summary.settings.mode {
        RunMode::Rate => "Latency by percentile (from intended send time)",
        RunMode::Max => "Latency by percentile, closed loop",
        RunMode::Bulk => "Time per echo transfer by percentile",
        RunMode::Connect => "Connect + request latency by percentile",
        RunMode::Sweep => "Latency against offered rate (from intended send time)",
        RunMode::Idle => "Idle connections",
    };
    what.to_owned()
}

/// One line describing the run's settings (also the table's heading).
pub fn subtitle(summary: &Summary) -> String {
    let s = &summary.settings;
    let load = match (s.mode, s.rate, s.bytes) {
        (RunMode::Rate, Some(rate), _) => format!("{} req/s", crate::units::count(rate)),
        (RunMode::Bulk, _, Some(bytes)) => format!("bulk, {} KiB per transfer", bytes / 1024),
        (RunMode::Connect, ..) => "new connection per request".to_owned(),
        (RunMode::Sweep, ..) => "sweep, offered rate doubling".to_owned(),
        (RunMode::Idle, ..) => "idle".to_owned(),
        _ => "closed loop".to_owned(),
    };
    let timing = match s.mode {
        RunMode::Idle => String::new(),
        RunMode::Sweep => format!(
            " {} s per path per step in {} rounds,",
            s.duration_s, s.rounds
        ),
        _ => format!(" {} s per path in {} rounds,", s.duration_s, s.rounds),
    };
    format!(
        "{load}, {} connections,{timing} {} worker(s), {} replicas, {} CPUs, Linux {}",
        crate::units::count(s.connections as f64),
        s.workers,
        s.replicas,
        summary.machine.cpus,
        summary.machine.kernel
    )
}
