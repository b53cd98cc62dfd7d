//! The idle run's figures, as saved in `summary.json` (`idle`) and printed: what N idle
//! connections cost each path in resident memory, threads and the machine's available memory.
//!
//! Owns the idle data and its console table; [`crate::idle`] fills them in. Never divides a
//! figure by connections that were not held.

use std::fmt::Write as _;

use serde::Serialize;

use crate::units;

use super::{
    subtitle,
    table::{grid, notes},
    Summary,
};

/// Resident memory and threads of every process of a path, at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Processes counted (the proxy and its descendants).
    pub processes: usize,
    /// Their resident set sizes added up, in bytes.
    pub rss_bytes: u64,
    /// Their threads added up.
    pub threads: u64,
}

/// One path holding the idle connections.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdlePath {
    /// The path.
    pub name: String,
    /// Connections the client held open.
    pub opened: usize,
    /// Of those, connections that reached a backend (`null` for targets: no replica to ask).
    pub at_backends: Option<u64>,
    /// The path's processes before opening (`null` for `direct` and targets without a pid).
    pub before: Option<Usage>,
    /// … and with every connection open.
    pub after: Option<Usage>,
    /// RSS growth ÷ connections held, in bytes: user memory per idle connection.
    pub rss_per_connection_bytes: Option<f64>,
    /// Thread growth ÷ connections held.
    pub threads_per_connection: Option<f64>,
    /// The machine's `MemAvailable` before minus with every connection open, in bytes (the
    /// sockets of every side, the client's and the backends' memory, and whatever else ran).
    pub mem_available_drop_bytes: Option<i64>,
    /// That drop ÷ connections held.
    pub mem_available_drop_per_connection_bytes: Option<f64>,
    /// The kernel's slab memory (`Slab` of /proc/meminfo) with every connection open minus
    /// before, in bytes: machine-wide too, but mostly the sockets (steadier than MemAvailable).
    pub slab_growth_bytes: Option<i64>,
    /// That growth ÷ connections held.
    pub slab_growth_per_connection_bytes: Option<f64>,
    /// TCP sockets allocated on the machine with every connection open minus before (2 per
    /// connection straight to a backend, 4 through a proxy).
    pub tcp_sockets_added: Option<i64>,
    /// Whether a `GET /spells` through the path answered while the connections were held.
    pub request_after_ok: bool,
    /// What went wrong (opening, relaying, the request after), if anything.
    pub error: Option<String>,
}

impl IdlePath {
    /// Fills the per-connection figures from the raw ones.
    pub fn derive(&mut self) {
        let held = self.opened as f64;
        let per = |delta: f64| (held > 0.0).then(|| delta / held);
        if let (Some(before), Some(after)) = (self.before, self.after) {
            self.rss_per_connection_bytes = per(after.rss_bytes as f64 - before.rss_bytes as f64);
            self.threads_per_connection = per(after.threads as f64 - before.threads as f64);
        }
        self.mem_available_drop_per_connection_bytes =
            self.mem_available_drop_bytes.and_then(|d| per(d as f64));
        self.slab_growth_per_connection_bytes = self.slab_growth_bytes.and_then(|d| per(d as f64));
    }
}

/// The whole idle run.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// `--connections` as given (or its default, 10,000).
    pub asked: usize,
    /// Connections each path was given to hold.
    pub connections: usize,
    /// The open-files limit of every process.
    pub open_files_limit: u64,
    /// Why `connections` is below `asked`, if it is.
    pub clamped: Option<String>,
    /// Seconds waited with every connection open before reading the figures.
    pub settle_s: f64,
    /// Per path, in measuring order.
    pub paths: Vec<IdlePath>,
}

/// The console report of an idle run.
pub fn render(summary: &Summary, idle: &IdleReport) -> String {
    let mut out = format!("\n{}\n\n", subtitle(summary));
    if let Some(why) = &idle.clamped {
        let _ = writeln!(out, "! {why}\n");
    }
    out.push_str(&grid(&process_rows(idle)));
    out.push_str(&haproxy_ratios(idle));
    out.push('\n');
    out.push_str(&grid(&machine_rows(idle)));
    let _ = write!(
        out,
        "\nRSS/conn: growth of the resident memory of every process of the path ÷ connections held \
         (user memory per idle connection); threads: before → with every connection open. The \
         second table is machine-wide: TCP sockets added (2 per connection straight to a backend, \
         4 through a proxy), the kernel's slab growth (mostly those sockets), and MemAvailable's \
         drop, which also moves with whatever else runs on the machine (the backends' buffers \
         are in every path's figure; direct's is the client's and the backend's alone).\n"
    );
    for path in idle.paths.iter().filter(|p| p.error.is_some()) {
        let _ = writeln!(
            out,
            "! {}: {}",
            path.name,
            path.error.as_deref().unwrap_or("")
        );
    }
    out.push_str(&notes(summary));
    out
}

fn dash() -> String {
    "—".to_owned()
}

/// The path's processes: held connections, RSS, threads, the request after.
fn process_rows(idle: &IdleReport) -> Vec<Vec<String>> {
    let head = [
        "path",
        "held",
        "at backends",
        "RSS before",
        "RSS after",
        "RSS/conn",
        "threads",
        "request after",
    ];
    let mut rows = vec![head.map(String::from).to_vec()];
    for path in &idle.paths {
        let rss = |u: Option<Usage>| u.map_or_else(dash, |u| units::bytes(u.rss_bytes as f64));
        let threads = match (path.before, path.after) {
            (Some(b), Some(a)) => format!("{} → {}", b.threads, a.threads),
            _ => dash(),
        };
        let request = if path.request_after_ok {
            "ok"
        } else {
            "FAILED"
        };
        rows.push(vec![
            path.name.clone(),
            units::count(path.opened as f64),
            path.at_backends
                .map_or_else(dash, |n| units::count(n as f64)),
            rss(path.before),
            rss(path.after),
            path.rss_per_connection_bytes
                .map_or_else(dash, units::bytes),
            threads,
            request.to_owned(),
        ]);
    }
    rows
}

/// The machine while each path held its connections: sockets, slab, MemAvailable.
fn machine_rows(idle: &IdleReport) -> Vec<Vec<String>> {
    let head = [
        "machine",
        "TCP sockets +",
        "slab +",
        "slab/conn",
        "MemAvailable −",
        "MemAvailable/conn",
    ];
    let mut rows = vec![head.map(String::from).to_vec()];
    let signed = |v: Option<i64>| v.map_or_else(dash, |v| units::bytes(v as f64));
    for path in &idle.paths {
        rows.push(vec![
            path.name.clone(),
            path.tcp_sockets_added
                .map_or_else(dash, |n| units::count(n.max(0) as f64)),
            signed(path.slab_growth_bytes),
            path.slab_growth_per_connection_bytes
                .map_or_else(dash, units::bytes),
            signed(path.mem_available_drop_bytes),
            path.mem_available_drop_per_connection_bytes
                .map_or_else(dash, units::bytes),
        ]);
    }
    rows
}

/// `RSS/conn vs haproxy: ringlb 0.05x, nginx 0.91x`, when haproxy was measured.
fn haproxy_ratios(idle: &IdleReport) -> String {
    let rss = |p: &IdlePath| p.rss_per_connection_bytes;
    let Some(base) = idle
        .paths
        .iter()
        .find(|p| p.name == "haproxy")
        .and_then(rss)
    else {
        return String::new();
    };
    let others: Vec<String> = idle
        .paths
        .iter()
        .filter(|p| p.name != "haproxy")
        .filter_map(|p| {
            let r = rss(p)?;
            Some(format!(
                "{} {}",
                p.name,
                units::ratio((base > 0.0).then(|| r / base))
            ))
        })
        .collect();
    if others.is_empty() {
        return String::new();
    }
    format!("\nRSS/conn vs haproxy: {}\n", others.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_connection_figures_divide_by_what_was_held() {
        let mut path = IdlePath {
            name: "ringlb".into(),
            opened: 10_000,
            before: Some(Usage {
                processes: 1,
                rss_bytes: 18 << 20,
                threads: 4,
            }),
            after: Some(Usage {
                processes: 1,
                rss_bytes: (18 << 20) + 3_850_000,
                threads: 4,
            }),
            mem_available_drop_bytes: Some(80_000_000),
            ..IdlePath::default()
        };
        path.derive();
        assert_eq!(path.rss_per_connection_bytes, Some(385.0));
        assert_eq!(path.threads_per_connection, Some(0.0));
        assert_eq!(path.mem_available_drop_per_connection_bytes, Some(8000.0));
        let mut none = IdlePath::default();
        none.derive();
        assert_eq!(none.rss_per_connection_bytes, None);
        assert_eq!(none.mem_available_drop_per_connection_bytes, None);
    }
}
