//! Parsing and printing quantities: durations, byte sizes, latencies, rates.
//!
//! Owns the human-facing spelling of numbers so every report prints them alike. Never rounds a
//! value that goes into a machine-readable file.

use std::time::Duration;

/// Parses a duration such as `10s`, `500ms` or `1m 30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

/// Parses a byte size such as `4096`, `64KiB`, `4MiB`, `1GiB` (also `K`, `M`, `G`, `KB`, `MB`,
/// `GB`, all powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a size"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use KiB, MiB or GiB)"
            ))
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?}: too large"))
}

/// A latency in microseconds, printed with a unit that keeps 3 or 4 significant digits.
pub fn latency(micros: u64) -> String {
    match micros {
        0..=9_999 => format!("{micros} µs"),
        10_000..=999_999 => format!("{:.2} ms", micros as f64 / 1e3),
        _ => format!("{:.2} s", micros as f64 / 1e6),
    }
}

/// A CPU time in (fractional) microseconds with 3 significant digits, e.g. `15.7 µs`,
/// `612 ms`, or `—` when there is none.
pub fn cpu_micros(micros: Option<f64>) -> String {
    match micros {
        Some(m) if m.is_finite() && m >= 0.0 => {
            let (value, unit) = match m {
                m if m >= 1e6 => (m / 1e6, "s"),
                m if m >= 1e3 => (m / 1e3, "ms"),
                m => (m, "µs"),
            };
            let decimals = match value {
                v if v < 9.995 => 2,
                v if v < 99.95 => 1,
                _ => 0,
            };
            format!("{value:.decimals$} {unit}")
        }
        _ => "—".into(),
    }
}

/// A byte count (negative for a drop) in B, KiB, MiB or GiB with 3 significant digits, e.g.
/// `385 B`, `-1.50 KiB`, `18.2 MiB`.
pub fn bytes(n: f64) -> String {
    let sign = if n < 0.0 { "-" } else { "" };
    let mut value = n.abs();
    let mut unit = "B";
    for next in ["KiB", "MiB", "GiB"] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    if unit == "B" {
        return format!("{sign}{value:.0} B");
    }
    let decimals = match value {
        v if v < 9.995 => 2,
        v if v < 99.95 => 1,
        _ => 0,
    };
    format!("{sign}{value:.decimals$} {unit}")
}

/// A rate with a thousands separator, e.g. `12,345`.
pub fn count(n: f64) -> String {
    let whole = n.round() as u64;
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio such as `1.23x`, or `-` when it is undefined.
pub fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{r:.2}x"),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_bytes("4M"), Ok(4 << 20));
        assert_eq!(parse_bytes("1gib"), Ok(1 << 30));
        assert!(parse_bytes("4 parsecs").is_err());
        assert!(parse_bytes("MiB").is_err());
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn prints_latencies_and_counts() {
        assert_eq!(latency(85), "85 µs");
        assert_eq!(latency(12_345), "12.35 ms");
        assert_eq!(latency(2_500_000), "2.50 s");
        assert_eq!(latency(25_000_000), "25.00 s");
        assert_eq!(count(1234567.4), "1,234,567");
        assert_eq!(count(999.0), "999");
        assert_eq!(ratio(Some(1.234)), "1.23x");
        assert_eq!(ratio(None), "-");
        assert_eq!(cpu_micros(Some(15.74)), "15.7 µs");
        assert_eq!(cpu_micros(Some(3.456)), "3.46 µs");
        assert_eq!(cpu_micros(Some(104.4)), "104 µs");
        assert_eq!(cpu_micros(Some(612_345.0)), "612 ms");
        assert_eq!(cpu_micros(Some(1_500.0)), "1.50 ms");
        assert_eq!(cpu_micros(None), "—");
        assert_eq!(bytes(385.4), "385 B");
        assert_eq!(bytes(-1536.0), "-1.50 KiB");
        assert_eq!(bytes(18.2 * 1024.0 * 1024.0), "18.2 MiB");
        assert_eq!(bytes(3.0 * (1u64 << 30) as f64), "3.00 GiB");
    }
}
