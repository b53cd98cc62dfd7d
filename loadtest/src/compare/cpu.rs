//! The CPU side of `loadtest compare`: each `.hgrm`'s CPU figures, read from the
//! `summary.json` beside it, and their ratio.
//!
//! Owns finding a path's figures (the `.hgrm` file's name is the path's name, so
//! `run/ringlb.hgrm` is the `ringlb` path of `run/summary.json`) and the optional CPU gate
//! (`--cpu-tolerance`). Never guesses: a gate asked for without figures on both sides is an
//! error, not a pass.

use std::path::Path;

use serde_json::Value;

use crate::units;

/// One side's CPU figures, in µs per unit of work.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuSide {
    /// The unit (`request`, `connection`, `GiB`).
    pub per: String,
    /// User + system.
    pub total: f64,
    /// User.
    pub user: f64,
    /// System.
    pub system: f64,
}

/// One compared CPU figure.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuRow {
    /// `CPU/req`, `user`, `system`.
    pub label: String,
    /// A's µs per unit.
    pub a: f64,
    /// B's µs per unit.
    pub b: f64,
    /// B / A (`None` when A is zero).
    pub ratio: Option<f64>,
    /// Whether this row takes part in the verdict (user + system, with `--cpu-tolerance`).
    pub gated: bool,
    /// Gated and above the tolerance.
    pub regressed: bool,
}

/// The path name of a `.hgrm` file: `ringlb.hgrm` and `ringlb.connect.hgrm` are `ringlb`.
pub fn path_name(hgrm: &Path) -> Option<String> {
    let stem = hgrm.file_stem()?.to_str()?;
    Some(stem.strip_suffix(".connect").unwrap_or(stem).to_owned())
}

/// The CPU figures of `hgrm`'s path in the `summary.json` beside it; `Ok(None)` when there is
/// no summary or the path has no CPU figures, an error when the summary cannot be read.
pub fn beside(hgrm: &Path) -> Result<Option<CpuSide>, String> {
    let json = hgrm.with_file_name("summary.json");
    let Ok(text) = std::fs::read_to_string(&json) else {
        return Ok(None);
    };
    let summary: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    let name = path_name(hgrm).unwrap_or_default();
    Ok(find(&summary, &name))
}

/// The figures of path `name` in a parsed `summary.json`.
pub fn find(summary: &Value, name: &str) -> Option<CpuSide> {
    let path = summary["paths"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?;
    let cpu = &path["cpu"];
    Some(CpuSide {
        per: cpu["per"].as_str()?.to_owned(),
        total: cpu["total_us_per"].as_f64()?,
        user: cpu["user_us_per"].as_f64()?,
        system: cpu["system_us_per"].as_f64()?,
    })
}

/// The CPU rows of B against A; user + system is gated when `tolerance` is given.
pub fn compare(a: &CpuSide, b: &CpuSide, tolerance: Option<f64>) -> Vec<CpuRow> {
    let heading = match a.per.as_str() {
        "connection" => "CPU/conn",
        "GiB" => "CPU/GiB",
        _ => "CPU/req",
    };
    [
        (heading, a.total, b.total, true),
        ("  user", a.user, b.user, false),
        ("  system", a.system, b.system, false),
    ]
    .into_iter()
    .map(|(label, va, vb, total)| {
        let ratio = (va > 0.0).then(|| vb / va);
        let gated = total && tolerance.is_some();
        CpuRow {
            label: label.to_owned(),
            a: va,
            b: vb,
            ratio,
            gated,
            regressed: gated && ratio.is_some_and(|r| r > 1.0 + tolerance.unwrap_or(0.0)),
        }
    })
    .collect()
}

/// The rows as table lines, aligned like the latency rows.
pub fn render(rows: &[CpuRow]) -> String {
    let mut out = String::new();
    for row in rows {
        let verdict = match (row.gated, row.regressed) {
            (true, true) => "  REGRESSION",
            (true, false) => "  ok",
            (false, _) => "",
        };
        out.push_str(&format!(
            "{:<8} {:>12} {:>12} {:>8}{verdict}\n",
            row.label,
            units::cpu_micros(Some(row.a)),
            units::cpu_micros(Some(row.b)),
            units::ratio(row.ratio)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(total: f64) -> CpuSide {
        CpuSide {
            per: "request".into(),
            total,
            user: total / 3.0,
            system: total * 2.0 / 3.0,
        }
    }

    #[test]
    fn names_come_from_the_file() {
        assert_eq!(path_name(Path::new("run/ringlb.hgrm")).unwrap(), "ringlb");
        assert_eq!(
            path_name(Path::new("haproxy.connect.hgrm")).unwrap(),
            "haproxy"
        );
    }

    #[test]
    fn figures_are_found_by_path_name() {
        let summary: Value = serde_json::json!({"paths": [
            {"name": "direct", "cpu": null},
            {"name": "ringlb", "cpu": {"per": "request", "total_us_per": 15.0,
                                       "user_us_per": 5.0, "system_us_per": 10.0}}
        ]});
        assert_eq!(find(&summary, "ringlb").unwrap().total, 15.0);
        assert!(find(&summary, "direct").is_none());
        assert!(find(&summary, "nginx").is_none());
    }

    #[test]
    fn only_user_plus_system_is_gated_and_only_when_asked() {
        let rows = compare(&side(15.0), &side(18.0), Some(0.1));
        assert!(rows[0].gated && rows[0].regressed);
        assert!(!rows[1].gated && !rows[2].gated);
        assert!((rows[0].ratio.unwrap() - 1.2).abs() < 1e-9);
        assert!(!compare(&side(15.0), &side(16.0), Some(0.1))[0].regressed);
        assert!(compare(&side(15.0), &side(30.0), None)
            .iter()
            .all(|r| !r.gated && !r.regressed));
        assert!(render(&rows).contains("REGRESSION"));
    }
}
