//! `loadtest compare A.hgrm B.hgrm`: two saved runs side by side, and a regression gate.
//!
//! Owns the verdict: B regresses when it is slower than A by more than the tolerance at p50,
//! p99 or p99.9 (the other rows are shown, not gated: p90 adds little, and p99.99 and max rest
//! on a handful of samples), or, with `--cpu-tolerance`, when its CPU per request (per
//! connection, per GiB) is above A's by more than that ([`cpu`]: the figures come from the
//! `summary.json` beside each file). Never judges on anything but those files.

pub mod cpu;

use std::{fmt::Write as _, path::Path};

use anyhow::{bail, Context};

use crate::{report::Distribution, units};

/// The compared rows: (label, quantile, gated).
const ROWS: [(&str, f64, bool); 6] = [
    ("p50", 0.5, true),
    ("p90", 0.9, false),
    ("p99", 0.99, true),
    ("p99.9", 0.999, true),
    ("p99.99", 0.9999, false),
    ("max", 1.0, false),
];

/// One compared percentile.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `p50`, `p99`, …
    pub label: &'static str,
    /// A's value in microseconds.
    pub a: u64,
    /// B's value in microseconds.
    pub b: u64,
    /// B / A.
    pub ratio: f64,
    /// Whether this row takes part in the verdict.
    pub gated: bool,
    /// Gated and slower than allowed.
    pub regressed: bool,
}

/// The comparison of two distributions.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Row by row.
    pub rows: Vec<Row>,
    /// True when any gated row regressed.
    pub regressed: bool,
}

/// Compares B against the baseline A with `tolerance` (0.1 = 10% slower allowed).
pub fn compare(a: &Distribution, b: &Distribution, tolerance: f64) -> Comparison {
    let rows: Vec<Row> = ROWS
        .iter()
        .map(|&(label, q, gated)| {
            let (va, vb) = (a.value_at(q), b.value_at(q));
            // A baseline of 0 µs is read as 1 µs, so the ratio stays finite.
            let ratio = vb as f64 / va.max(1) as f64;
            Row {
                label,
                a: va,
                b: vb,
                ratio,
                gated,
                regressed: gated && ratio > 1.0 + tolerance,
            }
        })
        .collect();
    let regressed = rows.iter().any(|r| r.regressed);
    Comparison { rows, regressed }
}

/// Reads both files (and the CPU figures beside them), prints the comparison; `Ok(true)` when
/// B passes. With `cpu_tolerance`, missing CPU figures are an error.
pub fn run(a: &Path, b: &Path, tolerance: f64, cpu_tolerance: Option<f64>) -> anyhow::Result<bool> {
    let comparison = compare(&read(a)?, &read(b)?, tolerance);
    let cpu_rows = cpu_rows(a, b, cpu_tolerance)?;
    print!("{}", render(&comparison, a, b, tolerance));
    if !cpu_rows.is_empty() {
        print!("\n{}", cpu::render(&cpu_rows));
    }
    let cpu_regressed = cpu_rows.iter().any(|r| r.regressed);
    match (cpu_tolerance, cpu_regressed) {
        (Some(t), true) => println!(
            "FAIL: B's CPU per unit of work is more than {:.1}% above A's",
            t * 100.0
        ),
        (Some(t), false) => println!(
            "PASS: B's CPU per unit of work is at most {:.1}% above A's",
            t * 100.0
        ),
        (None, _) => {}
    }
    Ok(!comparison.regressed && !cpu_regressed)
}

/// The CPU rows of B against A, when both have figures; an error when a gate was asked for and
/// a side has none, or when they count different units.
fn cpu_rows(a: &Path, b: &Path, tolerance: Option<f64>) -> anyhow::Result<Vec<cpu::CpuRow>> {
    let (ca, cb) = (
        cpu::beside(a).map_err(anyhow::Error::msg)?,
        cpu::beside(b).map_err(anyhow::Error::msg)?,
    );
    match (ca, cb) {
        (Some(ca), Some(cb)) if ca.per != cb.per => bail!(
            "A's CPU figures are per {} and B's per {}: not comparable",
            ca.per,
            cb.per
        ),
        (Some(ca), Some(cb)) => Ok(cpu::compare(&ca, &cb, tolerance)),
        (ca, _) if tolerance.is_some() => {
            let missing = if ca.is_none() { a } else { b };
            bail!(
                "--cpu-tolerance: no CPU figures for {} (a summary.json beside it, from a run \
                 that read the path's processes, holds them)",
                missing.display()
            )
        }
        _ => Ok(Vec::new()),
    }
}

fn read(path: &Path) -> anyhow::Result<Distribution> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Distribution::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The comparison as a table and a verdict line.
pub fn render(comparison: &Comparison, a: &Path, b: &Path, tolerance: f64) -> String {
    let mut out = format!("A = {}\nB = {}\n\n", a.display(), b.display());
    let _ = writeln!(out, "{:<8} {:>12} {:>12} {:>8}", "", "A", "B", "B/A");
    for row in &comparison.rows {
        let verdict = match (row.gated, row.regressed) {
            (true, true) => "  REGRESSION",
            (true, false) => "  ok",
            (false, _) => "",
        };
        let _ = writeln!(
            out,
            "{:<8} {:>12} {:>12} {:>8}{verdict}",
            row.label,
            units::latency(row.a),
            units::latency(row.b),
            units::ratio(Some(row.ratio))
        );
    }
    let tolerance = tolerance * 100.0;
    let _ = match comparison.regressed {
        true => writeln!(out, "\nFAIL: B is more than {tolerance:.1}% slower than A at a gated percentile (p50, p99, p99.9)"),
        false => writeln!(
            out,
            "\nPASS: B is at most {tolerance:.1}% slower than A at p50, p99 and p99.9"
        ),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::histogram;

    fn dist(scale: f64) -> Distribution {
        let mut h = histogram();
        for i in 1..=10_000u64 {
            h.record((100.0 * scale) as u64 + (i % 100) * (1 + i / 9990) * 10)
                .unwrap();
        }
        Distribution::of(&h)
    }

    #[test]
    fn an_equal_run_passes() {
        let c = compare(&dist(1.0), &dist(1.0), 0.1);
        assert!(!c.regressed);
        assert!(c.rows.iter().all(|r| (r.ratio - 1.0).abs() < 1e-9));
    }

    #[test]
    fn a_slower_run_is_flagged_and_a_faster_one_is_not() {
        let c = compare(&dist(1.0), &dist(3.0), 0.1);
        assert!(c.regressed);
        assert!(c.rows.iter().find(|r| r.label == "p50").unwrap().regressed);
        assert!(!compare(&dist(3.0), &dist(1.0), 0.1).regressed);
    }

    #[test]
    fn ungated_rows_never_fail_the_gate() {
        let a = dist(1.0);
        let mut b = a.clone();
        b.max *= 10;
        assert!(!compare(&a, &b, 0.1).regressed);
    }
}
