//! The `.hgrm` percentile-distribution text format, written and read back.
//!
//! Owns the format of HdrHistogram's `outputPercentileDistribution` with 5 ticks per half
//! distance and a value scaling ratio of 1000 (microseconds in, milliseconds out): the
//! `Value Percentile TotalCount 1/(1-Percentile)` table, then the `#[Mean …]`, `#[Max …]` and
//! `#[Buckets …]` footer, which HdrHistogram's plotter reads. One addition: besides the standard
//! ticks, a line at exactly each reported percentile (p50, p90, p99, p99.9, p99.99), so that a
//! saved file parses back to exactly the numbers in the report. Never rounds a value: with 3
//! decimals in milliseconds every microsecond survives.

use std::io::{self, Write};

use hdrhistogram::Histogram;

/// The percentiles every report shows, as quantiles.
pub const REPORTED: [f64; 5] = [0.5, 0.9, 0.99, 0.999, 0.9999];
/// Ticks per half distance to 100%, as in HdrHistogram's own output.
const TICKS: u32 = 5;
/// Output values are divided by this (µs to ms).
const SCALE: f64 = 1000.0;
/// Quantiles closer than this are the same line.
const SAME: f64 = 1e-12;

/// One line of the distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// The value in microseconds.
    pub value: u64,
    /// The quantile (0 to 1) this line reports.
    pub quantile: f64,
    /// Samples at or below the value.
    pub total_count: u64,
}

/// A distribution as read from (or written to) a `.hgrm` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// The table, by increasing quantile.
    pub lines: Vec<Line>,
    /// Mean in microseconds.
    pub mean: f64,
    /// Standard deviation in microseconds.
    pub stddev: f64,
    /// Largest value in microseconds.
    pub max: u64,
    /// Number of samples.
    pub total_count: u64,
}

impl Distribution {
    /// The lines of `h`: the standard quantile ticks plus exact lines at [`REPORTED`].
    pub fn of(h: &Histogram<u64>) -> Distribution {
        let mut lines = Vec::new();
        let mut total = 0;
        for step in h.iter_quantiles(TICKS) {
            total += step.count_since_last_iteration();
            lines.push(Line {
                value: step.value_iterated_to(),
                quantile: step.quantile_iterated_to(),
                total_count: total,
            });
        }
        if !h.is_empty() {
            for q in REPORTED {
                let value = h.value_at_quantile(q);
                let exact = Line {
                    value,
                    quantile: q,
                    total_count: h.count_between(0, value),
                };
                match lines.iter().position(|l| l.quantile >= q - SAME) {
                    Some(i) if (lines[i].quantile - q).abs() < SAME => lines[i] = exact,
                    Some(i) => lines.insert(i, exact),
                    None => lines.push(exact),
                }
            }
        }
        Distribution {
            lines,
            mean: if h.is_empty() { 0.0 } else { h.mean() },
            stddev: if h.is_empty() { 0.0 } else { h.stdev() },
            max: h.max(),
            total_count: h.len(),
        }
    }

    /// The value at quantile `q`: the first line at or above it (the max for `q >= 1`).
    pub fn value_at(&self, q: f64) -> u64 {
        if q >= 1.0 {
            return self.max;
        }
        self.lines
            .iter()
            .find(|l| l.quantile >= q - SAME)
            .map_or(self.max, |l| l.value)
    }

    /// Writes the distribution in HdrHistogram's text format; `buckets` and `sub_buckets`
    /// describe the histogram's layout for the footer.
    pub fn write(&self, buckets: u32, sub_buckets: u32, out: &mut impl Write) -> io::Result<()> {
        writeln!(
            out,
            "{:>12} {:>14} {:>10} {:>14}\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        )?;
        for line in &self.lines {
            let value = line.value as f64 / SCALE;
            if line.quantile < 1.0 {
                let inverse = 1.0 / (1.0 - line.quantile);
                writeln!(
                    out,
                    "{value:12.3} {:2.12} {:10} {inverse:14.2}",
                    line.quantile, line.total_count
                )?;
            } else {
                writeln!(
                    out,
                    "{value:12.3} {:2.12} {:10}",
                    line.quantile, line.total_count
                )?;
            }
        }
        let (mean, stddev, max) = (
            self.mean / SCALE,
            self.stddev / SCALE,
            self.max as f64 / SCALE,
        );
        writeln!(
            out,
            "#[Mean    = {mean:12.3}, StdDeviation   = {stddev:12.3}]"
        )?;
        writeln!(
            out,
            "#[Max     = {max:12.3}, Total count    = {:12}]",
            self.total_count
        )?;
        writeln!(
            out,
            "#[Buckets = {buckets:12}, SubBuckets     = {sub_buckets:12}]"
        )
    }

    /// Reads a `.hgrm` file's text (values in milliseconds, as written by [`Distribution::write`]
    /// or by HdrHistogram itself).
    pub fn parse(text: &str) -> Result<Distribution, String> {
        let mut dist = Distribution {
            lines: Vec::new(),
            mean: 0.0,
            stddev: 0.0,
            max: 0,
            total_count: 0,
        };
        for (number, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with("Value") {
                continue;
            }
            if let Some(footer) = line.strip_prefix("#[") {
                read_footer(footer, &mut dist).map_err(|e| format!("line {}: {e}", number + 1))?;
                continue;
            }
            let parsed =
                read_line(line).map_err(|e| format!("line {}: {e}: {raw:?}", number + 1))?;
            dist.lines.push(parsed);
        }
        if dist.lines.is_empty() && dist.total_count > 0 {
            return Err("no distribution lines".into());
        }
        if dist.max == 0 {
            dist.max = dist.lines.last().map_or(0, |l| l.value);
        }
        Ok(dist)
    }
}

/// The footer layout of `h`: (buckets, sub-buckets), as HdrHistogram reports them.
pub fn layout(h: &Histogram<u64>) -> (u32, u32) {
    // Sub-buckets: the smallest power of two covering 2 * 10^sigfig (2048 for 3 digits).
    let sub_buckets = (2 * 10_u32.pow(u32::from(h.sigfig()))).next_power_of_two();
    (u32::from(h.buckets()), sub_buckets)
}

fn read_line(line: &str) -> Result<Line, String> {
    let mut fields = line.split_whitespace();
    let mut next = |what: &str| fields.next().ok_or_else(|| format!("missing {what}"));
    let value: f64 = next("value")?.parse().map_err(|_| "bad value".to_owned())?;
    let quantile: f64 = next("percentile")?
        .parse()
        .map_err(|_| "bad percentile".to_owned())?;
    let total_count: u64 = next("count")?.parse().map_err(|_| "bad count".to_owned())?;
    Ok(Line {
        value: (value * SCALE).round() as u64,
        quantile,
        total_count,
    })
}

fn read_footer(footer: &str, dist: &mut Distribution) -> Result<(), String> {
    for pair in footer.trim_end_matches(']').split(',') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("bad {}", key.trim()))?;
        match key.trim() {
            "Mean" => dist.mean = value * SCALE,
            "StdDeviation" => dist.stddev = value * SCALE,
            "Max" => dist.max = (value * SCALE).round() as u64,
            "Total count" => dist.total_count = value as u64,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::histogram;

    /// A skewed, deterministic sample set (a long tail like real latencies).
    fn sample() -> Histogram<u64> {
        let mut h = histogram();
        let mut x: u64 = 12345;
        for _ in 0..50_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let micros = 40.0 + 60.0 / (1.0 - u).powf(0.7);
            h.record(micros as u64).unwrap();
        }
        h
    }

    fn written(h: &Histogram<u64>) -> String {
        let (buckets, sub_buckets) = layout(h);
        let mut out = Vec::new();
        Distribution::of(h)
            .write(buckets, sub_buckets, &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_back_to_the_same_percentiles() {
        let h = sample();
        let parsed = Distribution::parse(&written(&h)).unwrap();
        for q in REPORTED {
            assert_eq!(parsed.value_at(q), h.value_at_quantile(q), "quantile {q}");
        }
        assert_eq!(parsed.max, h.max());
        assert_eq!(parsed.total_count, h.len());
        assert!((parsed.mean - h.mean()).abs() < 1.0);
    }

    #[test]
    fn looks_like_hdrhistogram_output() {
        let text = written(&sample());
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        let first: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(first[1], "0.000000000000");
        assert_eq!(first[3], "1.00");
        assert!(text.contains("0.500000000000"));
        assert!(text.contains("0.990000000000"));
        let tail: Vec<&str> = text.lines().rev().take(4).collect();
        assert!(tail[0].starts_with("#[Buckets = "));
        assert!(tail[0].ends_with("SubBuckets     =         2048]"));
        assert!(tail[1].starts_with("#[Max     = "));
        assert!(tail[2].starts_with("#[Mean    = "));
        // The 100% line has no 1/(1-Percentile) column.
        assert_eq!(tail[3].split_whitespace().nth(1), Some("1.000000000000"));
        assert_eq!(tail[3].split_whitespace().count(), 3);
    }

    #[test]
    fn quantiles_increase_and_an_empty_histogram_still_writes() {
        let dist = Distribution::of(&sample());
        assert!(dist
            .lines
            .windows(2)
            .all(|w| w[0].quantile <= w[1].quantile));
        assert!(dist.lines.windows(2).all(|w| w[0].value <= w[1].value));
        let empty = Distribution::parse(&written(&histogram())).unwrap();
        assert_eq!(empty.total_count, 0);
        assert_eq!(empty.value_at(0.99), 0);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Distribution::parse("1.0 banana 3").is_err());
        assert!(Distribution::parse("#[Max     =  abc, Total count = 1]").is_err());
    }
}
