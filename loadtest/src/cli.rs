//! Command-line flags and their validation.
//!
//! Owns the user-facing surface: the default run, `loadtest replica` and `loadtest compare`, with
//! every default and the reason for it in `--help`. Never does any work beyond parsing.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::{
    path::{PathKind, Target, TargetPid},
    units::{parse_bytes, parse_duration},
    workload::Mode,
};

/// Default total request rate of `--mode rate`.
///
/// On a 2-core machine the load generator, the replicas and the proxy share two cores; with
/// 32 connections and one worker, haproxy and nginx each did 16,000 to 28,000 req/s there in
/// `--mode max` (depending on what else ran). 4,000 req/s, a quarter of the lowest, keeps every
/// path far from saturation, so the run measures latency under steady load, not queueing.
pub const DEFAULT_RATE: f64 = 4000.0;

/// Default `--connections` of every mode but idle.
pub const DEFAULT_CONNECTIONS: usize = 32;
/// Default `--connections` of `--mode idle`.
pub const DEFAULT_IDLE_CONNECTIONS: usize = 10_000;

/// What a run does: one of the four load workloads, a sweep of rates, or idle connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Open loop at --rate; latency from the intended send time.
    Rate,
    /// Closed loop, as fast as possible: throughput.
    Max,
    /// Each connection echoes --bytes through the path, over and over: Gbit/s.
    Bulk,
    /// A new TCP connection per request: connections/s and connect latency.
    Connect,
    /// Open-loop rates doubling from --sweep-start until every path saturates: latency against
    /// offered rate, and each path's saturation point.
    Sweep,
    /// --connections idle connections held through each path: memory and threads per
    /// connection.
    Idle,
}

impl RunMode {
    /// The load loop behind the mode's phases: a sweep step is a rate phase; idle sends only
    /// its probe requests, keep-alive requests like rate mode's.
    pub fn load(self) -> Mode {
        match self {
            RunMode::Rate | RunMode::Sweep | RunMode::Idle => Mode::Rate,
            RunMode::Max => Mode::Max,
            RunMode::Bulk => Mode::Bulk,
            RunMode::Connect => Mode::Connect,
        }
    }
}

/// Load-test ringlb against haproxy and nginx, with the direct path as the floor.
#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Something other than the default run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The default run's flags.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one replica alone (for compose, Docker and manual tests) until SIGINT or SIGTERM.
    Replica(ReplicaArgs),
    /// Hold idle connections for `--mode idle` (run by the harness in a child process).
    #[command(hide = true)]
    Hold(HoldArgs),
    /// Compare two saved runs percentile by percentile, and their CPU per request when a
    /// summary.json lies beside each file; exit 1 when B is worse than A by more than
    /// --tolerance at p50, p99 or p99.9 (or than --cpu-tolerance in CPU per request).
    Compare(CompareArgs),
}

/// Flags of the default run.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Workload: open loop at --rate (latency, coordinated omission corrected), closed loop as
    /// fast as possible (throughput), bulk echo transfers (Gbit/s), a connection per request,
    /// a sweep of doubling rates (latency against offered rate, saturation points), or idle
    /// connections (memory and threads per connection).
    #[arg(long, value_enum, default_value_t = RunMode::Rate)]
    pub mode: RunMode,
    /// Total requests per second over all connections (--mode rate). The default, 4000, is a
    /// quarter of what the slowest path (haproxy or nginx, one worker) did in --mode max on a
    /// 2-core machine, so latency is measured under steady load, not at saturation.
    #[arg(long, default_value_t = DEFAULT_RATE)]
    pub rate: f64,
    /// Concurrent connections [default: 32; 10000 in --mode idle, clamped to what the
    /// open-files limit allows].
    #[arg(long = "connections", value_name = "N")]
    pub connections_flag: Option<usize>,
    /// First offered rate of --mode sweep, in requests per second; each step doubles it.
    #[arg(long, default_value_t = 1000.0, value_name = "RATE")]
    pub sweep_start: f64,
    /// Highest offered rate of --mode sweep: the sweep stops before passing it even if a path
    /// has not saturated yet.
    #[arg(long, default_value_t = 1_000_000.0, value_name = "RATE")]
    pub sweep_max: f64,
    /// Measured time per path, split into --rounds interleaved slices (--mode sweep: per path
    /// and step; --mode idle holds its connections for a fixed 1 s and ignores it).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured warm-up per path before the first round (0s for none).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Interleaved rounds (each path runs duration/rounds per round, order rotating).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Bytes per echo transfer (--mode bulk), e.g. 4MiB.
    #[arg(long, default_value = "4MiB", value_parser = parse_bytes)]
    pub bytes: u64,
    /// Deadline of one request or connect; later is counted as a timeout error.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Backend replicas to start.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Workers of every proxy (ringlb workers, haproxy nbthread, nginx worker_processes).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Paths to measure, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "direct,ringlb,haproxy,nginx"
    )]
    pub paths: Vec<PathKind>,
    /// Load-test an existing deployment instead ([NAME=]HOST:PORT, repeatable): no replicas or
    /// proxies are started. Name targets `direct` / `haproxy` to get ratios against them.
    #[arg(long = "target", value_name = "[NAME=]HOST:PORT")]
    pub targets: Vec<Target>,
    /// The process behind a --target, for its CPU figures (NAME=PID, repeatable): that process
    /// and its descendants are counted. Without it a target's CPU columns stay empty.
    #[arg(long = "target-pid", value_name = "NAME=PID")]
    pub target_pids: Vec<TargetPid>,
    /// Output directory [default: target/loadtest/<timestamp>/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The ringlb binary [default: `ringlb` next to this executable, rebuilt first when run by
    /// cargo].
    #[arg(long, value_name = "PATH")]
    pub ringlb: Option<PathBuf>,
    /// Do not run `cargo build -p ringlb` before using the binary next to this executable.
    #[arg(long)]
    pub no_build: bool,
    /// Force ringlb's relay strategy.
    #[arg(long, value_parser = ["splice", "splice-inline", "copy"])]
    pub relay: Option<String>,
    /// Force ringlb's I/O backend (its `io_backend` key; ringlb's own default is auto).
    #[arg(long, value_parser = ["auto", "io_uring", "epoll"])]
    pub ringlb_io_backend: Option<String>,
    /// Extra top-level lines for ringlb's config, e.g. 'send_proxy = "v2"' (replicas skip a
    /// PROXY header at the start of a connection, so any send_proxy works).
    #[arg(long, value_name = "TOML")]
    pub ringlb_extra: Option<String>,
    /// Threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Threads of the replicas' runtime.
    #[arg(long, default_value_t = 1)]
    pub replica_threads: usize,
    /// A few-seconds run for CI: --duration 1s --warmup 0s --rounds 1.
    #[arg(long)]
    pub smoke: bool,
}

impl RunArgs {
    /// Concurrent connections: as given, or the mode's default.
    pub fn connections(&self) -> usize {
        self.connections_flag.unwrap_or(match self.mode {
            RunMode::Idle => DEFAULT_IDLE_CONNECTIONS,
            _ => DEFAULT_CONNECTIONS,
        })
    }

    /// Applies `--smoke` and checks the numbers; the message names the flag.
    pub fn validated(mut self) -> Result<RunArgs, String> {
        if self.smoke {
            self.duration = Duration::from_secs(1);
            self.warmup = Duration::ZERO;
            self.rounds = 1;
        }
        let most = match self.mode {
            RunMode::Idle => 1_000_000,
            _ => 10_000,
        };
        let checks = [
            (
                (1..=most).contains(&self.connections()),
                "--connections must be 1..=10000 (1..=1000000 in --mode idle)",
            ),
            (
                self.sweep_start.is_finite() && self.sweep_start > 0.0,
                "--sweep-start must be positive",
            ),
            (
                self.sweep_max.is_finite() && self.sweep_max >= self.sweep_start,
                "--sweep-max must be at least --sweep-start",
            ),
            (
                self.rate.is_finite() && self.rate > 0.0,
                "--rate must be positive",
            ),
            (
                self.replicas >= 1 && self.replicas <= 64,
                "--replicas must be 1..=64",
            ),
            (
                self.workers >= 1 && self.workers <= 256,
                "--workers must be 1..=256",
            ),
            (!self.duration.is_zero(), "--duration must not be zero"),
            (!self.timeout.is_zero(), "--timeout must not be zero"),
            (self.bytes >= 1, "--bytes must be at least 1"),
            (
                self.client_threads >= 1,
                "--client-threads must be at least 1",
            ),
            (
                self.replica_threads >= 1,
                "--replica-threads must be at least 1",
            ),
            (
                !self.paths.is_empty() || !self.targets.is_empty(),
                "--paths must name a path",
            ),
        ];
        if let Some((_, message)) = checks.iter().find(|(ok, _)| !ok) {
            return Err((*message).to_owned());
        }
        if let Some(orphan) = self
            .target_pids
            .iter()
            .find(|p| !self.targets.iter().any(|t| t.name == p.name))
        {
            return Err(format!(
                "--target-pid {}={}: no --target is named {}",
                orphan.name, orphan.pid, orphan.name
            ));
        }
        Ok(self)
    }
}

/// Flags of `loadtest replica`.
#[derive(Debug, Clone, Args)]
pub struct ReplicaArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Name sent in the `X-Replica` header.
    #[arg(long, default_value = "replica")]
    pub name: String,
    /// Runtime threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// Flags of `loadtest hold`.
#[derive(Debug, Clone, Args)]
pub struct HoldArgs {
    /// Where to connect.
    #[arg(long)]
    pub connect: SocketAddr,
    /// Connections to open and hold until stdin closes.
    #[arg(long)]
    pub connections: usize,
}

/// Flags of `loadtest compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The baseline `.hgrm`.
    pub a: PathBuf,
    /// The candidate `.hgrm`.
    pub b: PathBuf,
    /// Allowed slowdown of B against A at p50, p99 and p99.9, as a fraction (0.1) or a
    /// percentage (10%).
    #[arg(long, default_value = "10%", value_parser = parse_tolerance)]
    pub tolerance: f64,
    /// Also gate on CPU per request (per connection, per GiB): B fails when its user + system
    /// time per unit is above A's by more than this (e.g. 5%). Needs the summary.json of each
    /// run beside its .hgrm. Without it the CPU rows are shown, not gated.
    #[arg(long, value_parser = parse_tolerance)]
    pub cpu_tolerance: Option<f64>,
}

/// Parses `0.1` or `10%` into 0.1.
pub fn parse_tolerance(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.trim().strip_suffix('%') {
        Some(number) => (number, 100.0),
        None => (text.trim(), 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: not a number"))?;
    let value = value / scale;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("{text:?}: must be zero or more"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn no_arguments_is_the_default_run() {
        let cli = parse(&[]);
        assert!(cli.command.is_none());
        let run = cli.run.validated().unwrap();
        assert_eq!(run.mode, RunMode::Rate);
        assert_eq!(run.connections(), 32);
        assert_eq!(run.duration, Duration::from_secs(10));
        assert_eq!(run.paths.len(), 4);
    }

    #[test]
    fn subcommands_and_flags_parse() {
        let cli = parse(&["compare", "a.hgrm", "b.hgrm", "--tolerance", "5%"]);
        let Some(Command::Compare(compare)) = cli.command else {
            panic!("not compare");
        };
        assert!((compare.tolerance - 0.05).abs() < 1e-12);
        let cli = parse(&[
            "--paths",
            "direct,haproxy",
            "--mode",
            "bulk",
            "--bytes",
            "1MiB",
        ]);
        assert_eq!(cli.run.paths, vec![PathKind::Direct, PathKind::Haproxy]);
        assert_eq!(cli.run.bytes, 1 << 20);
        let cli = parse(&["replica", "--listen", "127.0.0.1:9000"]);
        assert!(matches!(cli.command, Some(Command::Replica(_))));
    }

    #[test]
    fn smoke_is_short_and_bad_numbers_are_refused() {
        let run = parse(&["--smoke"]).run.validated().unwrap();
        assert_eq!(run.duration, Duration::from_secs(1));
        assert!(parse(&["--connections", "0"]).run.validated().is_err());
        assert!(parse(&["--rate=-1"]).run.validated().is_err());
    }

    #[test]
    fn a_target_pid_must_name_a_target() {
        let run = parse(&["--target", "lb=127.0.0.1:80", "--target-pid", "lb=42"]);
        assert_eq!(run.run.validated().unwrap().target_pids[0].pid, 42);
        let orphan = parse(&["--target", "lb=127.0.0.1:80", "--target-pid", "other=42"]);
        assert!(orphan
            .run
            .validated()
            .unwrap_err()
            .contains("no --target is named other"));
    }

    #[test]
    fn sweep_and_idle_have_their_own_defaults_and_checks() {
        let sweep = parse(&["--mode", "sweep"]).run.validated().unwrap();
        assert_eq!(sweep.mode.load(), Mode::Rate);
        assert_eq!((sweep.sweep_start, sweep.sweep_max), (1000.0, 1_000_000.0));
        assert!(parse(&[
            "--mode",
            "sweep",
            "--sweep-start",
            "5000",
            "--sweep-max",
            "4000"
        ])
        .run
        .validated()
        .is_err());
        let idle = parse(&["--mode", "idle"]).run.validated().unwrap();
        assert_eq!(idle.connections(), 10_000);
        let many = parse(&["--mode", "idle", "--connections", "50000"]).run;
        assert_eq!(many.validated().unwrap().connections(), 50_000);
        assert!(parse(&["--connections", "50000"]).run.validated().is_err());
    }

    #[test]
    fn tolerances_parse_as_fractions_or_percentages() {
        assert_eq!(parse_tolerance("0.1"), Ok(0.1));
        assert_eq!(parse_tolerance("10%"), Ok(0.1));
        assert!(parse_tolerance("-1").is_err());
        assert!(parse_tolerance("lots").is_err());
    }
}
