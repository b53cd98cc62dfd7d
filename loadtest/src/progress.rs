//! Progress display: an indicatif bar per phase on a terminal, one plain line per phase elsewhere.
//!
//! Owns everything written to stderr while a run is going on. Never writes to stdout (that is
//! the final report's) and never slows the load: it reads counters every 100 ms.

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};

use crate::{units, workload::Mode};

/// How progress is shown for the whole run.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    fancy: bool,
}

impl Progress {
    /// Bars when both stdout and stderr are terminals, plain lines otherwise (CI, pipes).
    pub fn detect() -> Progress {
        Progress {
            fancy: std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    /// Plain lines only.
    pub fn plain() -> Progress {
        Progress { fancy: false }
    }

    /// Starts showing one phase called `label` that lasts `duration`.
    pub fn phase(&self, label: &str, duration: Duration, mode: Mode) -> PhaseBar {
        let bar = self.fancy.then(|| {
            let bar = ProgressBar::new(duration.as_millis().max(1) as u64);
            let style = ProgressStyle::with_template("{prefix:<24} [{bar:30.cyan/blue}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            bar
        });
        PhaseBar {
            bar,
            label: label.to_owned(),
            mode,
            started: Instant::now(),
        }
    }

    /// A line of information between phases.
    pub fn note(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// The display of one running phase.
#[derive(Debug)]
pub struct PhaseBar {
    bar: Option<ProgressBar>,
    label: String,
    mode: Mode,
    started: Instant,
}

/// Totals so far in a phase: (successes, errors, echoed bytes), and the measured time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// Successful requests, transfers or connections.
    pub ok: u64,
    /// Errors.
    pub errors: u64,
    /// Echoed bytes (bulk mode).
    pub bytes: u64,
    /// Time since the measurement started.
    pub elapsed: Duration,
}

impl PhaseBar {
    /// Updates the bar (no-op in plain mode).
    pub fn update(&self, tally: Tally) {
        if let Some(bar) = &self.bar {
            bar.set_position(tally.elapsed.as_millis() as u64);
            bar.set_message(describe(self.mode, tally));
        }
    }

    /// Ends the phase: the bar stays on screen with its final figures, or one line is printed.
    pub fn finish(&self, tally: Tally) {
        let text = describe(self.mode, tally);
        match &self.bar {
            Some(bar) => bar.finish_with_message(text),
            None => eprintln!(
                "{:<24} {:>6.1} s  {text}",
                self.label,
                self.started.elapsed().as_secs_f64()
            ),
        }
    }
}

/// The live figures of a phase, e.g. `4,001 req/s  0 errors`.
fn describe(mode: Mode, tally: Tally) -> String {
    let secs = tally.elapsed.as_secs_f64().max(1e-3);
    let throughput = match mode {
        Mode::Bulk => format!("{:.2} Gbit/s", tally.bytes as f64 * 8.0 / secs / 1e9),
        _ => format!(
            "{} {}",
            units::count(tally.ok as f64 / secs),
            mode.throughput_unit()
        ),
    };
    format!("{throughput:>16}  {} errors", tally.errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_rates_and_bandwidth() {
        let tally = Tally {
            ok: 4000,
            errors: 2,
            bytes: 1_250_000_000,
            elapsed: Duration::from_secs(1),
        };
        assert_eq!(describe(Mode::Rate, tally).trim(), "4,000 req/s  2 errors");
        assert!(describe(Mode::Bulk, tally).contains("10.00 Gbit/s"));
        assert!(describe(Mode::Connect, tally).contains("conn/s"));
    }
}
