//! The default run, end to end: start the lab, measure every path in interleaved rounds (one
//! pass for the load modes, a pass per rate for the sweep, one path at a time for idle), report.
//!
//! Owns the two runtimes (the load generator's and the replicas', kept apart so the generator is
//! never starved by the servers it measures), the output directory and the order of the steps.
//! Never measures a path that did not answer a real request first, and always stops what it
//! started (the lab's processes stop when it drops).

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use anyhow::{bail, Context};
use tokio::runtime::{Builder, Runtime};

use crate::{
    cli::{RunArgs, RunMode},
    idle::{
        self,
        budget::{self, Budget},
    },
    lab::Lab,
    measure::{self, Pass},
    pacer,
    path::PathKind,
    plan,
    progress::Progress,
    report::{self, PathRun, Summary},
    sweep,
    workload::Workload,
};

/// Runs the benchmark described by `args`. Returns `false` when a requested path failed (its
/// reason is in the report), `true` when every path that could run did.
pub fn run(args: RunArgs) -> anyhow::Result<bool> {
    let mut args = args.validated().map_err(anyhow::Error::msg)?;
    let started = SystemTime::now();
    let out = args.out.clone().unwrap_or_else(|| default_out_dir(started));
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let progress = Progress::detect();
    let limit = budget::raise_open_files();
    let budget = (args.mode == RunMode::Idle).then(|| idle_budget(&mut args, limit, &progress));
    if budget.as_ref().is_some_and(|b| b.connections == 0) {
        bail!("the open-files limit ({limit}) is too low to hold any idle connection");
    }
    let replica_runtime = runtime("replica", args.replica_threads, false)?;
    let load_runtime = runtime("load", args.client_threads, true)?;

    let mut lab = Lab::start(&args, &replica_runtime, &out, &progress)?;
    lab.verify(&load_runtime, &progress);
    if lab.endpoints.is_empty() {
        bail!("no path could be measured (see the errors above)");
    }
    let run = Run {
        args: &args,
        out: &out,
        started,
        load_runtime: &load_runtime,
        progress: &progress,
    };
    match (args.mode, budget) {
        (RunMode::Sweep, _) => run.sweep(&mut lab)?,
        (RunMode::Idle, Some(budget)) => run.idle(&mut lab, &budget)?,
        _ => run.load(&mut lab)?,
    }
    Ok(lab.failed.is_empty())
}

/// What every mode's run needs besides the lab.
struct Run<'a> {
    args: &'a RunArgs,
    out: &'a Path,
    started: SystemTime,
    load_runtime: &'a Runtime,
    progress: &'a Progress,
}

impl Run<'_> {
    /// The summary's common part, once the lab has run (skipped and failed paths known).
    fn summary(&self, lab: &mut Lab, runs: &[PathRun]) -> Summary {
        lab.check_processes(self.progress);
        let rounds = plan::effective_rounds(self.args.rounds, self.args.duration);
        let stamp = humantime::format_rfc3339_seconds(self.started).to_string();
        Summary::build(
            self.args,
            rounds,
            runs,
            stamp,
            lab.skipped.clone(),
            lab.failed.clone(),
        )
    }

    /// rate, max, bulk, connect: one pass over every path.
    fn load(&self, lab: &mut Lab) -> anyhow::Result<()> {
        let runs = measure(self.args, lab, self.load_runtime, self.progress);
        let summary = self.summary(lab, &runs);
        report::write_files(self.out, &summary, &runs, self.started)?;
        print!("{}", report::table::render(&summary));
        println!(
            "\nfiles: {}/ (*.hgrm, *.hlog, summary.json, latency.svg, configs and logs)",
            self.out.display()
        );
        Ok(())
    }

    /// idle: N connections held through each path in turn.
    fn idle(&self, lab: &mut Lab, budget: &Budget) -> anyhow::Result<()> {
        let report = idle::run(budget, lab, self.load_runtime, self.progress, self.out);
        let mut summary = self.summary(lab, &[]);
        summary.idle = Some(report);
        report::write_json(self.out, &summary)?;
        print!("{}", report::table::render(&summary));
        println!(
            "\nfiles: {}/ (summary.json, configs and logs)",
            self.out.display()
        );
        Ok(())
    }

    /// sweep: a pass per offered rate, until every path saturates.
    fn sweep(&self, lab: &mut Lab) -> anyhow::Result<()> {
        let sweep = sweep::run(self.args, lab, self.load_runtime, self.progress);
        let mut summary = self.summary(lab, &[]);
        summary.warnings.extend(sweep.warnings);
        summary.sweep = Some(sweep.report);
        report::write_sweep_files(self.out, &summary, &sweep.histograms)?;
        print!("{}", report::table::render(&summary));
        println!(
            "\nfiles: {}/ (<path>-<rate>.hgrm, summary.json, sweep.svg, configs and logs)",
            self.out.display()
        );
        Ok(())
    }
}

/// The load modes' one pass: every path, the run's workload, warm-up and rounds.
fn measure(args: &RunArgs, lab: &Lab, load_runtime: &Runtime, progress: &Progress) -> Vec<PathRun> {
    let pass = Pass {
        workload: Arc::new(Workload {
            mode: args.mode.load(),
            rate: args.rate,
            connections: args.connections(),
            bytes: args.bytes,
            timeout: args.timeout,
        }),
        paths: (0..lab.endpoints.len()).collect(),
        rounds: args.rounds,
        duration: args.duration,
        warmup: args.warmup,
        label: String::new(),
    };
    measure::run(&pass, lab, load_runtime, progress)
}

/// A multi-thread runtime of `threads` workers named `name`; load threads get a tight timer
/// slack so the pacer wakes on time.
fn runtime(name: &str, threads: usize, tight_timers: bool) -> anyhow::Result<Runtime> {
    let mut builder = Builder::new_multi_thread();
    builder
        .worker_threads(threads)
        .thread_name(name)
        .enable_all();
    if tight_timers {
        builder.on_thread_start(pacer::tighten_timer_slack);
    }
    builder
        .build()
        .with_context(|| format!("cannot start the {name} runtime"))
}

/// The idle budget under `limit`; clamps `--connections` to it (the proxies are then
/// configured for that many) and says so.
fn idle_budget(args: &mut RunArgs, limit: u64, progress: &Progress) -> Budget {
    let proxied = args.targets.is_empty() && args.paths.iter().any(|p| *p != PathKind::Direct);
    let budget = budget::budget(args.connections(), limit, proxied);
    if let Some(why) = &budget.clamped {
        progress.note(&format!("note: {why}"));
    }
    args.connections_flag = Some(budget.connections);
    budget
}

/// `target/loadtest/<timestamp>/`, in the cargo target directory this binary was built into
/// (or `./target` when it was not run from one).
fn default_out_dir(started: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(started)
        .to_string()
        .replace(':', "-");
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf))
        .filter(|dir| dir.join("CACHEDIR.TAG").is_file())
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("loadtest").join(stamp)
}
