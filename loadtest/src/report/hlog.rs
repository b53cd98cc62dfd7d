//! The `.hlog` HdrHistogram V2 interval log: one compressed histogram per measured round.
//!
//! Owns writing a path's rounds so a run can be re-analysed later (HdrHistogram's
//! `HistogramLogProcessor`, or `hdrhistogram`'s `IntervalLogIterator`). Values are microseconds;
//! the interval max column is in milliseconds. Never writes warm-up phases.

use std::{io::Write, time::SystemTime};

use hdrhistogram::serialization::{
    interval_log::{IntervalLogWriterBuilder, IntervalLogWriterError},
    V2DeflateSerializeError, V2DeflateSerializer,
};

use crate::phase::PhaseResult;

/// Writes `rounds` of path `name` as an interval log, timestamps relative to `base`.
pub fn write(
    name: &str,
    rounds: &[PhaseResult],
    base: SystemTime,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    let mut header = IntervalLogWriterBuilder::new();
    header
        .add_comment(&format!(
            "loadtest: path {name}, latency in microseconds, one interval per round"
        ))
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(base)
        .with_base_time(base);
    header.begin_log_with(out, &mut serializer)?;
    writeln!(
        out,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )?;
    let mut body = IntervalLogWriterBuilder::new();
    body.with_max_value_divisor(1000.0);
    let mut log = body.begin_log_with(out, &mut serializer)?;
    for round in rounds {
        let since_base = round.started.duration_since(base).unwrap_or_default();
        log.write_histogram(&round.recorder.latency, since_base, round.elapsed, None)
            .map_err(describe)?;
    }
    Ok(())
}

fn describe(e: IntervalLogWriterError<V2DeflateSerializeError>) -> anyhow::Error {
    anyhow::anyhow!("cannot write interval log: {e}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hdrhistogram::serialization::{
        interval_log::IntervalLogIterator, interval_log::LogEntry, Deserializer,
    };

    use super::*;
    use crate::recorder::Recorder;

    fn round(started: SystemTime, micros: &[u64]) -> PhaseResult {
        let mut recorder = Recorder::default();
        for &m in micros {
            recorder.latency.record(m).unwrap();
        }
        PhaseResult {
            recorder,
            started,
            duration: Duration::from_secs(1),
            elapsed: Duration::from_secs(1),
            cpu: None,
        }
    }

    #[test]
    fn rounds_read_back_as_intervals() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let rounds = [
            round(base + Duration::from_secs(1), &[100, 200, 300]),
            round(base + Duration::from_secs(3), &[150, 5000]),
        ];
        let mut out = Vec::new();
        write("direct", &rounds, base, &mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("#[BaseTime: 1700000000.000"));
        assert!(text.contains("\"StartTimestamp\""));
        let intervals: Vec<_> = IntervalLogIterator::new(&out)
            .filter_map(|entry| match entry.unwrap() {
                LogEntry::Interval(interval) => Some(interval),
                _ => None,
            })
            .collect();
        assert_eq!(intervals.len(), 2);
        assert_eq!(intervals[1].start_timestamp(), Duration::from_secs(3));
        assert!(
            (intervals[1].max() - 5.0).abs() < 0.01,
            "max in ms: {}",
            intervals[1].max()
        );
        let bytes = base64_decode(intervals[1].encoded_histogram());
        let h: hdrhistogram::Histogram<u64> =
            Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h.value_at_quantile(1.0), h.highest_equivalent(5000));
    }

    /// Standard base64 (the log's encoding), decoded without another dependency.
    fn base64_decode(text: &str) -> Vec<u8> {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut count = 0;
        let mut out = Vec::new();
        for c in text.bytes().filter(|&c| c != b'=') {
            let v = alphabet.iter().position(|&a| a == c).unwrap() as u32;
            bits = (bits << 6) | v;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
                bits &= (1 << count) - 1;
            }
        }
        out
    }
}
