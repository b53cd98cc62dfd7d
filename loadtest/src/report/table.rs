//! The console report: one row per path, then the ratios to `direct` and to `haproxy`.
//!
//! Owns the text layout only; every number comes from the [`Summary`]. Never hides a path, an
//! error or a warning to make the table shorter.

use std::fmt::Write as _;

use crate::{
    cpu::{self, CpuUnit},
    units,
    workload::Mode,
};

use super::{
    subtitle,
    summary::{PathSummary, Percentiles, Ratios},
    Summary,
};

const PERCENTILES: [&str; 5] = ["p50", "p90", "p99", "p99.9", "max"];

/// The whole console report.
pub fn render(summary: &Summary) -> String {
    if let Some(sweep) = &summary.sweep {
        return super::sweep::render(summary, sweep);
    }
    if let Some(idle) = &summary.idle {
        return super::idle::render(summary, idle);
    }
    let mut out = String::new();
    let _ = writeln!(out, "\n{}\n", subtitle(summary));
    out.push_str(&main_table(summary));
    for (label, pick) in [
        (
            "ratio to direct",
            (|p: &PathSummary| p.ratio_to_direct) as fn(&PathSummary) -> Option<Ratios>,
        ),
        ("ratio to haproxy", |p: &PathSummary| p.ratio_to_haproxy),
    ] {
        if summary.paths.len() > 1 && summary.paths.iter().any(|p| pick(p).is_some()) {
            out.push('\n');
            out.push_str(&ratio_table(label, summary, pick));
        }
    }
    if summary.settings.mode.load() == Mode::Connect {
        out.push('\n');
        out.push_str(&percentile_table("connect latency", summary, |p| {
            p.connect_latency_us
        }));
    }
    out.push_str(&cpu_footer(
        CpuUnit::of(summary.settings.mode.load()),
        summary,
    ));
    out.push_str(&notes(summary));
    out
}

/// What the CPU columns are, and why they matter: printed under every table that has them.
pub fn cpu_footer(unit: CpuUnit, summary: &Summary) -> String {
    let per = match unit {
        CpuUnit::Request => "successful requests",
        CpuUnit::Connection => "successful connections",
        CpuUnit::Gib => "GiB echoed",
    };
    format!(
        "\n{}: user + system time of every process of the path (/proc/PID/stat, {} ticks/s) ÷ {per}, \
         over the measured rounds; — when there is no process to read (direct has no proxy; a \
         --target needs --target-pid).\n{}\n",
        unit.heading(),
        summary.machine.clock_ticks_per_s,
        cpu::NOTE
    )
}

/// The three CPU cells of a row: user + system, user, system (per unit of work).
pub fn cpu_cells(cpu: Option<&crate::cpu::CpuFigures>) -> [String; 3] {
    match cpu {
        Some(c) => [c.total_us_per, c.user_us_per, c.system_us_per].map(units::cpu_micros),
        None => std::array::from_fn(|_| units::cpu_micros(None)),
    }
}

fn main_table(summary: &Summary) -> String {
    let mode = summary.settings.mode.load();
    let mut head = vec!["path".to_owned(), throughput_heading(mode).to_owned()];
    if mode == Mode::Rate {
        head.push("of intended".into());
    }
    head.extend(PERCENTILES.iter().map(|s| s.to_string()));
    head.push("errors".into());
    head.extend([CpuUnit::of(mode).heading(), "user", "sys"].map(String::from));
    let mut rows = vec![head];
    for path in &summary.paths {
        let mut row = vec![path.name.clone(), throughput(mode, path)];
        if let Some(ratio) = path.achieved_ratio {
            let flag = if path.kept_rate == Some(false) {
                " !"
            } else {
                ""
            };
            row.push(format!("{:.1}%{flag}", ratio * 100.0));
        }
        row.extend(path.latency_us.shown().iter().map(|v| units::latency(*v)));
        row.push(path.errors.to_string());
        row.extend(cpu_cells(path.cpu.as_ref()));
        rows.push(row);
    }
    grid(&rows)
}

fn throughput_heading(mode: Mode) -> &'static str {
    match mode {
        Mode::Rate | Mode::Max => "req/s",
        Mode::Bulk => "Gbit/s each way",
        Mode::Connect => "conn/s",
    }
}

fn throughput(mode: Mode, path: &PathSummary) -> String {
    match (mode, path.gbit_per_s) {
        (Mode::Bulk, Some(gbit)) => format!("{gbit:.2}"),
        _ => units::count(path.throughput),
    }
}

fn ratio_table(label: &str, summary: &Summary, pick: fn(&PathSummary) -> Option<Ratios>) -> String {
    let cpu_heading = CpuUnit::of(summary.settings.mode.load())
        .heading()
        .to_owned();
    let mut rows = vec![std::iter::once(label.to_owned())
        .chain(PERCENTILES.iter().map(|s| s.to_string()))
        .chain([cpu_heading])
        .collect::<Vec<_>>()];
    for path in &summary.paths {
        if let Some(ratios) = pick(path) {
            let cells = ratios.shown().into_iter().chain([ratios.cpu]);
            let cells = cells.map(units::ratio);
            rows.push(std::iter::once(path.name.clone()).chain(cells).collect());
        }
    }
    grid(&rows)
}

fn percentile_table(
    label: &str,
    summary: &Summary,
    pick: fn(&PathSummary) -> Option<Percentiles>,
) -> String {
    let mut rows = vec![std::iter::once(label.to_owned())
        .chain(PERCENTILES.iter().map(|s| s.to_string()))
        .collect::<Vec<_>>()];
    for path in &summary.paths {
        if let Some(p) = pick(path) {
            let cells = p.shown().into_iter().map(units::latency);
            rows.push(std::iter::once(path.name.clone()).chain(cells).collect());
        }
    }
    grid(&rows)
}

/// Errors by kind, warnings, skipped and failed paths.
pub fn notes(summary: &Summary) -> String {
    let mut out = String::new();
    for path in summary
        .paths
        .iter()
        .filter(|p| p.errors > 0 || p.missed > 0)
    {
        let kinds: Vec<String> = path
            .errors_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = write!(out, "\nerrors on {}: {}", path.name, kinds.join(", "));
        if path.missed > 0 {
            let _ = write!(out, "; {} scheduled requests never sent", path.missed);
        }
    }
    for warning in &summary.warnings {
        let _ = write!(out, "\n! {warning}");
    }
    for note in &summary.skipped {
        let _ = write!(out, "\nskipped {}: {}", note.path, note.reason);
    }
    for note in &summary.failed {
        let first = note.reason.lines().next().unwrap_or("");
        let _ = write!(out, "\nFAILED {}: {first}", note.path);
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Aligns rows into columns (for the other reports too): the first left-aligned, the rest right-aligned.
pub fn grid(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_aligns_columns() {
        let rows = vec![
            vec!["path".to_owned(), "p50".to_owned()],
            vec!["direct".to_owned(), "85 µs".to_owned()],
        ];
        assert_eq!(grid(&rows), "path      p50\ndirect  85 µs\n");
    }
}
