//! `--mode idle`: N idle connections held through each path in turn, and what they cost.
//!
//! Owns the procedure, one path at a time (never two at once, so the machine's memory figure
//! belongs to one path): read the path's processes (resident memory and threads, summed over
//! the process and its descendants) and the machine's memory and TCP sockets ([`procfs::machine`]);
//! open N connections from a
//! [`hold`] child; wait until the replicas hold N more connections (a proxy connects to its
//! backend on accept; the proxies' health checks make that count approximate by a few), then
//! [`SETTLE`]; read everything again; check that a request still goes
//! through; close and wait until the replicas, and the machine's TCP sockets, are back where
//! they were. The number of
//! connections comes from the [`budget`]. Never sends a byte on a held connection.

pub mod budget;
pub mod hold;

use std::{
    path::Path,
    thread,
    time::{Duration, Instant},
};

use tokio::runtime::Runtime;

use crate::{
    lab::{self, Endpoint, Lab},
    procfs,
    progress::Progress,
    report::idle::{IdlePath, IdleReport, Usage},
};

use budget::Budget;
use hold::Holder;

/// How long the connections stay open, all relayed, before the figures are read.
pub const SETTLE: Duration = Duration::from_secs(1);
/// How long the child gets to open every connection.
const OPEN_WITHIN: Duration = Duration::from_secs(120);
/// How long the proxy gets to connect every held connection to a backend.
const RELAY_WITHIN: Duration = Duration::from_secs(30);
/// How long the closing connections get to reach the backends.
const DRAIN_WITHIN: Duration = Duration::from_secs(15);
/// TCP sockets other programs may open meanwhile, when waiting for a path's to go away.
const SOCKET_SLACK: u64 = 200;
/// How long the request through a loaded path may take.
const PROBE_WITHIN: Duration = Duration::from_secs(5);

/// Holds `budget.connections` idle connections through every path of `lab`, one path at a
/// time; the child's output goes under `dir`.
pub fn run(
    budget: &Budget,
    lab: &Lab,
    load_runtime: &Runtime,
    progress: &Progress,
    dir: &Path,
) -> IdleReport {
    let paths = lab
        .endpoints
        .iter()
        .map(|endpoint| {
            progress.note(&format!(
                "idle {}: holding {} connections",
                endpoint.name, budget.connections
            ));
            let mut path = hold_through(endpoint, lab, budget.connections, load_runtime, dir);
            path.derive();
            path
        })
        .collect();
    IdleReport {
        asked: budget.asked,
        connections: budget.connections,
        open_files_limit: budget.limit,
        clamped: budget.clamped.clone(),
        settle_s: SETTLE.as_secs_f64(),
        paths,
    }
}

/// The whole procedure for one path.
fn hold_through(
    endpoint: &Endpoint,
    lab: &Lab,
    connections: usize,
    load_runtime: &Runtime,
    dir: &Path,
) -> IdlePath {
    let mut path = IdlePath {
        name: endpoint.name.clone(),
        ..IdlePath::default()
    };
    let baseline = backend_connections(lab);
    let machine_before = procfs::machine().ok();
    path.before = endpoint.pid.and_then(usage);
    let log = dir.join(format!("hold-{}.log", endpoint.name));
    let holder = match Holder::open(endpoint.addr, connections, &log, OPEN_WITHIN) {
        Ok(holder) => holder,
        Err(e) => {
            path.error = Some(format!("{e:#}"));
            return path;
        }
    };
    path.opened = holder.report.opened;
    path.error = holder
        .report
        .error
        .clone()
        .map(|e| format!("the client opened only {} connections: {e}", path.opened));
    // The proxies' health checks come and go on the replicas too: allow one per replica and
    // proxy in the counts.
    let slack = (lab.replicas.len() * lab.endpoints.len()) as u64;
    let wanted = path.opened as u64;
    if let Some(base) = baseline {
        wait_for_backends(lab, |n| n + slack >= base + wanted, RELAY_WITHIN);
    }
    thread::sleep(SETTLE);
    path.at_backends = baseline
        .zip(backend_connections(lab))
        .map(|(base, now)| now.saturating_sub(base).min(wanted));
    if let Some(reached) = path.at_backends.filter(|&n| n + slack < wanted) {
        path.error.get_or_insert(format!(
            "only {reached} of {wanted} connections reached a backend within {RELAY_WITHIN:?}"
        ));
    }
    path.after = endpoint.pid.and_then(usage);
    if let (Some(before), Ok(after)) = (machine_before, procfs::machine()) {
        let delta = |a: u64, b: u64| a as i64 - b as i64;
        path.mem_available_drop_bytes = Some(delta(before.mem_available, after.mem_available));
        path.slab_growth_bytes = Some(delta(after.slab, before.slab));
        path.tcp_sockets_added = Some(delta(after.tcp_sockets, before.tcp_sockets));
    }
    match load_runtime.block_on(lab::probe(endpoint.addr, PROBE_WITHIN)) {
        Ok(()) => path.request_after_ok = true,
        Err(e) => {
            path.error
                .get_or_insert(format!("with the connections held: {e}"));
        }
    }
    holder.close(DRAIN_WITHIN);
    if let Some(base) = baseline {
        wait_for_backends(lab, |n| n <= base, DRAIN_WITHIN);
    }
    if let Some(before) = machine_before {
        wait_for_sockets(before.tcp_sockets + SOCKET_SLACK, DRAIN_WITHIN);
    }
    path
}

/// Waits until the machine's TCP sockets (closing ones included) are back to `at_most`, so the
/// next path's figures do not shrink as this path's sockets go away.
fn wait_for_sockets(at_most: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match procfs::machine() {
            Ok(m) if m.tcp_sockets > at_most => thread::sleep(Duration::from_millis(50)),
            _ => return,
        }
    }
}

/// Resident memory and threads of `root` and its descendants; `None` when it cannot be read.
pub fn usage(root: u32) -> Option<Usage> {
    let tree = procfs::tree(root).ok()?;
    let mut usage = Usage::default();
    for pid in tree.keys() {
        if let Ok(status) = procfs::status(*pid) {
            usage.processes += 1;
            usage.rss_bytes += status.rss_bytes;
            usage.threads += status.threads;
        }
    }
    Some(usage)
}

/// Connections the local replicas hold now (`None` without replicas: targets).
fn backend_connections(lab: &Lab) -> Option<u64> {
    (!lab.replicas.is_empty()).then(|| lab.replicas.iter().map(|r| r.open_connections()).sum())
}

/// Polls the replicas' open connections until `done` says so or `within` passes; returns the
/// last count (0 without replicas).
fn wait_for_backends(lab: &Lab, done: impl Fn(u64) -> bool, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let now = backend_connections(lab).unwrap_or(0);
        if done(now) || Instant::now() >= deadline {
            return now;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
