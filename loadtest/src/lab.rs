//! The system under test: replicas and proxies started locally, or external targets, each
//! reachable as a named [`Endpoint`].
//!
//! Owns bringing the paths up in `--paths` order, checking each with a real request before it
//! is measured, and sorting out the ones that are skipped (not installed) or failed (installed
//! but broken). Never lets one broken path stop the others from being measured, and never starts
//! anything on a non-loopback address.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::runtime::Runtime;

use crate::{
    cli::RunArgs,
    client::{Conn, GET_SPELLS},
    outcome::ErrorKind,
    path::PathKind,
    ports,
    process::Supervised,
    progress::Progress,
    proxy::{self, haproxy::Haproxy, nginx::Nginx, ringlb::Ringlb, Proxy, Setup, Unavailable},
    replica::Replica,
    report::Note,
};

/// How long a path gets to answer its first request after it started.
const PROBE_WITHIN: Duration = Duration::from_secs(5);

/// One path, ready to be measured.
#[derive(Debug)]
pub struct Endpoint {
    /// Its name in the report.
    pub name: String,
    /// Where the load goes.
    pub addr: SocketAddr,
    /// The proxy process behind it, if one was started.
    pub process: Option<Supervised>,
    /// The process whose tree is the path's CPU and memory: the proxy started, or the
    /// `--target-pid` of a target; `None` for `direct` and for a target without one.
    pub pid: Option<u32>,
}

/// Everything started for a run; dropping it stops the proxies and the replicas.
#[derive(Debug, Default)]
pub struct Lab {
    /// The local replicas (none with `--target`).
    pub replicas: Vec<Replica>,
    /// The paths to measure, in order.
    pub endpoints: Vec<Endpoint>,
    /// Paths left out because their software is not installed.
    pub skipped: Vec<Note>,
    /// Paths that should have run but could not.
    pub failed: Vec<Note>,
}

impl Lab {
    /// Starts what `args` asks for; replicas run on `replica_runtime`, files go to `dir`.
    pub fn start(
        args: &RunArgs,
        replica_runtime: &Runtime,
        dir: &std::path::Path,
        progress: &Progress,
    ) -> anyhow::Result<Lab> {
        let mut lab = Lab::default();
        if !args.targets.is_empty() {
            for target in &args.targets {
                let pid = args
                    .target_pids
                    .iter()
                    .find(|p| p.name == target.name)
                    .map(|p| p.pid);
                match target.resolve() {
                    Ok(addr) => lab.add(&target.name, addr, None, pid),
                    Err(reason) => lab.fail(&target.name, reason, progress),
                }
            }
            return Ok(lab);
        }
        for i in 0..args.replicas {
            let listener = ports::bind_loopback().context("cannot bind a replica")?;
            let replica = Replica::start(listener, &format!("r{i}"), replica_runtime.handle())
                .context("cannot start a replica")?;
            lab.replicas.push(replica);
        }
        let setup = Setup {
            backends: lab.replicas.iter().map(Replica::local_addr).collect(),
            workers: args.workers,
            connections: args.connections(),
            dir: dir.to_owned(),
            relay: args.relay.clone(),
            ringlb_extra: args.ringlb_extra.clone(),
            open_files_limit: nix::sys::resource::getrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
            )
            .map_or(1024, |(soft, _)| soft),
        };
        let mut seen = Vec::new();
        for &kind in &args.paths {
            if seen.contains(&kind) {
                continue;
            }
            seen.push(kind);
            match kind {
                PathKind::Direct => lab.add("direct", setup.backends[0], None, None),
                _ => lab.start_proxy(kind, args, &setup, progress),
            }
        }
        Ok(lab)
    }

    fn start_proxy(&mut self, kind: PathKind, args: &RunArgs, setup: &Setup, progress: &Progress) {
        let found: Result<Box<dyn Proxy>, Unavailable> = match kind {
            PathKind::Ringlb => Ringlb::discover(args.ringlb.as_deref(), !args.no_build)
                .map(|p| Box::new(p.with_io_backend(args.ringlb_io_backend.clone())) as _),
            PathKind::Haproxy => Haproxy::discover().map(|p| Box::new(p) as _),
            PathKind::Nginx => Nginx::discover().map(|p| Box::new(p) as _),
            PathKind::Direct => unreachable!("direct is not a proxy"),
        };
        match found {
            Err(Unavailable::Skipped(reason)) => {
                progress.note(&format!("skipping {kind}: {reason}"));
                self.skipped.push(Note::new(kind.name(), reason));
            }
            Err(Unavailable::Broken(reason)) => self.fail(kind.name(), reason, progress),
            Ok(proxy) => match proxy::launch(proxy.as_ref(), setup) {
                Ok(running) => {
                    progress.note(&format!(
                        "started {kind} on {} (pid {})",
                        running.addr,
                        running.process.id()
                    ));
                    let pid = running.process.id();
                    self.add(kind.name(), running.addr, Some(running.process), Some(pid));
                }
                Err(e) => self.fail(kind.name(), format!("{e:#}"), progress),
            },
        }
    }

    fn add(&mut self, name: &str, addr: SocketAddr, process: Option<Supervised>, pid: Option<u32>) {
        self.endpoints.push(Endpoint {
            name: name.to_owned(),
            addr,
            process,
            pid,
        });
    }

    fn fail(&mut self, name: &str, reason: String, progress: &Progress) {
        progress.note(&format!("error: {name}: {reason}"));
        self.failed.push(Note::new(name, reason));
    }

    /// Sends a real `GET /spells` through every path; paths that do not answer 2xx within 5 s
    /// move to `failed`.
    pub fn verify(&mut self, load_runtime: &Runtime, progress: &Progress) {
        let endpoints = std::mem::take(&mut self.endpoints);
        for endpoint in endpoints {
            match load_runtime.block_on(probe(endpoint.addr, PROBE_WITHIN)) {
                Ok(()) => self.endpoints.push(endpoint),
                Err(reason) => {
                    let reason = match &endpoint.process {
                        Some(p) => format!(
                            "{reason}; its output ({}):\n{}",
                            p.log().display(),
                            p.log_tail(12)
                        ),
                        None => reason,
                    };
                    self.fail(&endpoint.name, reason, progress);
                }
            }
        }
    }

    /// Requests served so far by each replica.
    pub fn served(&self) -> Vec<u64> {
        self.replicas.iter().map(Replica::served).collect()
    }

    /// Moves paths whose process died during the run to `failed` (their numbers still show).
    pub fn check_processes(&mut self, progress: &Progress) {
        let mut died = Vec::new();
        for endpoint in &mut self.endpoints {
            if let Some(process) = endpoint.process.as_mut() {
                if !process.is_running() {
                    let reason = format!(
                        "exited during the run; its output:\n{}",
                        process.log_tail(12)
                    );
                    died.push((endpoint.name.clone(), reason));
                }
            }
        }
        for (name, reason) in died {
            self.fail(&name, reason, progress);
        }
    }
}

/// Retries `GET /spells` on `addr` until one answers 2xx or `within` has passed.
pub async fn probe(addr: SocketAddr, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let per_try = Duration::from_secs(1);
    loop {
        let attempt = async {
            let mut conn = Conn::connect(addr, per_try).await?;
            tokio::time::timeout(per_try, conn.request(GET_SPELLS))
                .await
                .unwrap_or(Err(ErrorKind::Timeout))
        };
        let last = match attempt.await {
            Ok(_) => return Ok(()),
            Err(kind) => kind,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "no successful GET /spells through {addr} within {within:?} (last error: {})",
                last.name()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
