//! The default run, end to end: start the lab, measure every path in interleaved rounds, report.
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
    cli::RunArgs,
    lab::Lab,
    measure::{self, Pass},
    pacer, plan,
    progress::Progress,
    report::{self, PathRun, Summary},
    workload::Workload,
};

/// Runs the benchmark described by `args`. Returns `false` when a requested path failed (its
/// reason is in the report), `true` when every path that could run did.
pub fn run(args: RunArgs) -> anyhow::Result<bool> {
    let args = args.validated().map_err(anyhow::Error::msg)?;
    let started = SystemTime::now();
    let out = args.out.clone().unwrap_or_else(|| default_out_dir(started));
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let progress = Progress::detect();
    raise_fd_limit();
    let replica_runtime = runtime("replica", args.replica_threads, false)?;
    let load_runtime = runtime("load", args.client_threads, true)?;

    let mut lab = Lab::start(&args, &replica_runtime, &out, &progress)?;
    lab.verify(&load_runtime, &progress);
    if lab.endpoints.is_empty() {
        bail!("no path could be measured (see the errors above)");
    }
    let rounds = plan::effective_rounds(args.rounds, args.duration);
    let runs = measure(&args, &lab, &load_runtime, &progress);
    lab.check_processes(&progress);

    let stamp = humantime::format_rfc3339_seconds(started).to_string();
    let summary = Summary::build(
        &args,
        rounds,
        &runs,
        stamp,
        lab.skipped.clone(),
        lab.failed.clone(),
    );
    report::write_files(&out, &summary, &runs, started)?;
    print!("{}", report::table::render(&summary));
    println!(
        "\nfiles: {}/ (*.hgrm, *.hlog, summary.json, latency.svg, configs and logs)",
        out.display()
    );
    Ok(lab.failed.is_empty())
}

/// The load modes' one pass: every path, the run's workload, warm-up and rounds.
fn measure(args: &RunArgs, lab: &Lab, load_runtime: &Runtime, progress: &Progress) -> Vec<PathRun> {
    let pass = Pass {
        workload: Arc::new(Workload {
            mode: args.mode,
            rate: args.rate,
            connections: args.connections,
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

/// Raises the soft open-file limit to the hard one (inherited by the proxies too): thousands of
/// connections need twice as many descriptors. Best effort.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
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
