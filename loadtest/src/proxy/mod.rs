//! The proxies under test, behind one small interface: find the binary, write the config, start.
//!
//! Owns the common launch procedure (pick a port, write the config, start the process, wait until
//! it accepts, retry when the port was taken meanwhile). Each proxy's file owns only its own
//! config text and command line, and they are kept equivalent: TCP mode, round robin over the
//! same replicas, the same number of workers. Never starts a proxy on anything but loopback.

pub mod haproxy;
pub mod nginx;
pub mod ringlb;

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context};

use crate::{
    ports,
    process::{NotReady, Supervised},
};

/// How long a proxy gets to accept its first connection.
pub const READY_WITHIN: Duration = Duration::from_secs(5);
/// Launch attempts when the chosen port turns out to be taken.
const ATTEMPTS: usize = 3;

/// What every proxy is started with.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The replicas to balance over.
    pub backends: Vec<SocketAddr>,
    /// Worker threads or processes.
    pub workers: usize,
    /// Concurrent client connections the load will open (sizes connection limits).
    pub connections: usize,
    /// Where configs and logs go.
    pub dir: PathBuf,
    /// ringlb's relay strategy, when forced.
    pub relay: Option<String>,
    /// Extra top-level lines for ringlb's config (`--ringlb-extra`).
    pub ringlb_extra: Option<String>,
    /// The open-files limit the proxies inherit (some size their own limits from their config).
    pub open_files_limit: u64,
}

#[cfg(test)]
impl Setup {
    /// The proxies' unit-test setup: replicas on 127.0.0.1:9001 and :9002, `workers` workers,
    /// 32 connections, files under /tmp, no ringlb overrides.
    pub(crate) fn example(workers: usize) -> Setup {
        Setup {
            backends: vec![
                "127.0.0.1:9001".parse().unwrap(),
                "127.0.0.1:9002".parse().unwrap(),
            ],
            workers,
            connections: 32,
            dir: PathBuf::from("/tmp"),
            relay: None,
            ringlb_extra: None,
            open_files_limit: 20_000,
        }
    }
}

/// A proxy we know how to configure and start.
pub trait Proxy {
    /// The path name (`ringlb`, `haproxy`, `nginx`).
    fn name(&self) -> &'static str;
    /// The config file's name inside the run directory.
    fn config_file(&self) -> &'static str;
    /// The config text for listening on `listen`.
    fn config(&self, listen: SocketAddr, setup: &Setup) -> String;
    /// The command that runs the proxy with the config at `config`.
    fn command(&self, config: &Path, setup: &Setup) -> Command;
}

/// A started proxy.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The process (stopped on drop).
    pub process: Supervised,
}

/// Starts `proxy` and waits until it accepts connections.
pub fn launch(proxy: &dyn Proxy, setup: &Setup) -> anyhow::Result<Running> {
    let name = proxy.name();
    let config_path = setup.dir.join(proxy.config_file());
    let log = setup.dir.join(format!("{name}.log"));
    for attempt in 1..=ATTEMPTS {
        let listen = ports::free_loopback_addr().context("no free loopback port")?;
        fs::write(&config_path, proxy.config(listen, setup))
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        let command = proxy.command(&config_path, setup);
        let mut process = Supervised::spawn(name, command, &log)
            .with_context(|| format!("cannot start {name}"))?;
        match process.wait_ready(listen, READY_WITHIN) {
            Ok(()) => {
                return Ok(Running {
                    addr: listen,
                    process,
                })
            }
            Err(NotReady::Exited(_)) if attempt < ATTEMPTS && port_was_taken(&process) => continue,
            Err(why) => bail!(
                "{name} {why}.\n  config: {}\n  output ({}):\n{}",
                config_path.display(),
                log.display(),
                process.log_tail(12)
            ),
        }
    }
    unreachable!("the last attempt always returns")
}

/// True when the process's output says its listen address was in use.
fn port_was_taken(process: &Supervised) -> bool {
    let tail = process.log_tail(20).to_ascii_lowercase();
    tail.contains("address already in use") || tail.contains("os error 98")
}

/// A connection limit comfortably above what the load opens (each client connection also
/// needs one to a replica).
pub fn connection_limit(setup: &Setup) -> usize {
    (setup.connections * 4).max(4096)
}

/// The replicas as `127.0.0.1:PORT` strings.
pub fn backend_list(setup: &Setup) -> impl Iterator<Item = String> + '_ {
    setup.backends.iter().map(|b| b.to_string())
}

/// Why a proxy cannot be part of this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// Not installed: the run goes on without it, saying how to install it.
    Skipped(String),
    /// Should be there but is not usable: an error for this path.
    Broken(String),
}
