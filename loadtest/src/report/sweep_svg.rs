//! `sweep.svg`: p50 and p99 latency against offered rate, one pair of lines per path, each
//! path's saturation point marked.
//!
//! Owns the picture: both axes logarithmic (rates double each step; latency spans microseconds
//! to seconds once a path queues); p99 solid, p50 dashed, in the path's colour of
//! `latency.svg`; a ring on the p99 point of the step where the path saturated (the legend
//! names the rate). Hand-written
//! SVG, no plotting crate. Never draws a step that was not measured.

use std::fmt::Write as _;

use crate::sweep::short_rate;

use super::{
    svg::{colour, escape, tick_label},
    sweep::{SweepPath, SweepReport},
};

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 100.0;
const RIGHT: f64 = 260.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 70.0;

/// A log axis over `[low, high]` mapped onto `[0, 1]`.
#[derive(Debug, Clone, Copy)]
struct LogAxis {
    low: f64,
    high: f64,
}

impl LogAxis {
    /// Decades enclosing every value (at least a factor of 10 wide).
    fn decades(values: impl Iterator<Item = f64>) -> LogAxis {
        let (lo, hi) = values
            .filter(|v| *v > 0.0)
            .fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if !lo.is_finite() {
            return LogAxis {
                low: 1.0,
                high: 10.0,
            };
        }
        let low = 10f64.powf(lo.log10().floor());
        let high = 10f64.powf(hi.log10().ceil()).max(low * 10.0);
        LogAxis { low, high }
    }

    /// Just around the values, a little padded (the rate axis: steps, not decades).
    fn around(values: impl Iterator<Item = f64>) -> LogAxis {
        let (lo, hi) = values
            .filter(|v| *v > 0.0)
            .fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if !lo.is_finite() {
            return LogAxis {
                low: 1.0,
                high: 10.0,
            };
        }
        LogAxis {
            low: lo / 1.25,
            high: hi * 1.25,
        }
    }

    fn fraction(&self, v: f64) -> f64 {
        let f =
            (v.max(self.low).log10() - self.low.log10()) / (self.high.log10() - self.low.log10());
        f.clamp(0.0, 1.0)
    }

    fn decade_ticks(&self) -> Vec<f64> {
        let (a, b) = (
            self.low.log10().round() as i32,
            self.high.log10().round() as i32,
        );
        (a..=b).map(|e| 10f64.powi(e)).collect()
    }
}

/// Renders the sweep; `subtitle` goes under the title.
pub fn render(subtitle: &str, sweep: &SweepReport) -> String {
    let steps = || sweep.paths.iter().flat_map(|p| p.steps.iter());
    let x = LogAxis::around(steps().map(|s| s.offered));
    let y = LogAxis::decades(
        steps().flat_map(|s| [s.latency_us.p50, s.latency_us.p99].map(|v| v.max(1) as f64)),
    );
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |rate: f64| LEFT + plot_w * x.fraction(rate);
    let py = |micros: f64| TOP + plot_h * (1.0 - y.fraction(micros));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"30\" font-size=\"18\" font-weight=\"bold\">Latency against offered rate</text>\n\
         <text x=\"{LEFT}\" y=\"50\" fill=\"#555\">{}</text>\n",
        escape(subtitle)
    );
    let mut rates: Vec<f64> = steps().map(|s| s.offered).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    for rate in rates {
        let xx = px(rate);
        let _ = write!(
            svg,
            "<line x1=\"{xx:.1}\" y1=\"{TOP}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            TOP + plot_h,
            TOP + plot_h + 20.0,
            short_rate(rate)
        );
    }
    for tick in y.decade_ticks() {
        let yy = py(tick);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            LEFT + plot_w,
            LEFT - 8.0,
            yy + 4.0,
            tick_label(tick)
        );
    }
    let _ = write!(
        svg,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#333\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">Offered rate, requests/s (log scale)</text>\n\
         <text transform=\"translate(20 {:.1}) rotate(-90)\" text-anchor=\"middle\">Latency (log scale)</text>\n",
        LEFT + plot_w / 2.0,
        HEIGHT - 20.0,
        TOP + plot_h / 2.0
    );
    for (i, path) in sweep.paths.iter().enumerate() {
        let colour = colour(&path.name, i);
        draw_path(&mut svg, path, colour, &px, &py);
        draw_legend_entry(&mut svg, path, colour, i, LEFT + plot_w + 20.0);
    }
    draw_key(&mut svg, LEFT + plot_w + 20.0, sweep.paths.len());
    svg.push_str("</svg>\n");
    svg
}

fn draw_path(
    svg: &mut String,
    path: &SweepPath,
    colour: &str,
    px: &dyn Fn(f64) -> f64,
    py: &dyn Fn(f64) -> f64,
) {
    for (class, dash, pick) in [
        (
            "p99",
            "",
            (|s| s.latency_us.p99) as fn(&super::sweep::SweepStep) -> u64,
        ),
        ("p50", " stroke-dasharray=\"6 4\"", |s| s.latency_us.p50),
    ] {
        let points: Vec<String> = path
            .steps
            .iter()
            .map(|s| format!("{:.1},{:.1}", px(s.offered), py(pick(s).max(1) as f64)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline class=\"{class}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            points.join(" ")
        );
        for point in &points {
            let (cx, cy) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                svg,
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2.5\" fill=\"{colour}\"/>"
            );
        }
    }
    if let Some(step) = path.steps.iter().find(|s| s.saturated.is_some()) {
        let (cx, cy) = (px(step.offered), py(step.latency_us.p99.max(1) as f64));
        let _ = writeln!(
            svg,
            "<circle class=\"saturation\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"8\" fill=\"none\" \
             stroke=\"{colour}\" stroke-width=\"2.5\"><title>{} saturated at {} req/s</title></circle>",
            escape(&path.name),
            crate::units::count(step.offered)
        );
    }
}

fn draw_legend_entry(svg: &mut String, path: &SweepPath, colour: &str, i: usize, x: f64) {
    let y = TOP + 10.0 + 44.0 * i as f64;
    let status = match (path.saturated_at, path.max_kept) {
        (Some(at), _) => format!("saturated at {}/s", short_rate(at)),
        (None, Some(kept)) => format!("kept every rate to {}/s", short_rate(kept)),
        (None, None) => "no step measured".to_owned(),
    };
    let _ = write!(
        svg,
        "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"bold\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#555\" font-size=\"11\">{status}</text>\n",
        x + 24.0,
        x + 30.0,
        y + 4.0,
        escape(&path.name),
        x + 4.0,
        y + 20.0,
    );
}

/// What the line styles and the ring mean.
fn draw_key(svg: &mut String, x: f64, entries: usize) {
    let y = TOP + 20.0 + 44.0 * entries as f64;
    let _ = write!(
        svg,
        "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#333\" stroke-width=\"2\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">p99</text>\n\
         <line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">p50</text>\n\
         <circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"7\" fill=\"none\" stroke=\"#333\" stroke-width=\"2\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">saturation point</text>\n",
        x + 24.0,
        x + 30.0,
        y + 4.0,
        y + 18.0,
        x + 24.0,
        y + 18.0,
        x + 30.0,
        y + 22.0,
        x + 12.0,
        y + 38.0,
        x + 30.0,
        y + 42.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{report::summary::Percentiles, report::sweep::SweepStep, sweep::Saturation};

    fn step(offered: f64, p50: u64, p99: u64, saturated: bool) -> SweepStep {
        let latency_us = Percentiles {
            count: 100,
            mean: p50 as f64,
            p50,
            p90: p99,
            p99,
            p99_9: p99,
            p99_99: p99,
            max: p99,
        };
        SweepStep {
            offered,
            achieved: offered,
            achieved_ratio: 1.0,
            latency_us,
            errors: 0,
            errors_by_kind: Default::default(),
            missed: 0,
            generator_lag_p99_us: None,
            cpu: None,
            saturated: saturated.then_some(Saturation::Rate {
                achieved_ratio: 0.5,
            }),
            rounds: 1,
            saturated_rounds: usize::from(saturated),
        }
    }

    fn path(name: &str, saturate_at: Option<usize>) -> SweepPath {
        let mut p = SweepPath::new(name);
        for (i, rate) in [1000.0, 2000.0, 4000.0].into_iter().enumerate() {
            p.steps.push(step(
                rate,
                80 * (i as u64 + 1),
                300 << i,
                Some(i) == saturate_at,
            ));
        }
        p.saturated_at = saturate_at.map(|i| 1000.0 * f64::from(1 << i));
        p
    }

    #[test]
    fn one_line_per_path_and_percentile_and_a_ring_per_saturation() {
        let report = SweepReport::new(
            1000.0,
            4000.0,
            vec![
                path("ringlb", Some(2)),
                path("haproxy", Some(1)),
                path("direct", None),
            ],
        );
        let svg = render("sweep, 32 connections", &report);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline class=\"p99\"").count(), 3);
        assert_eq!(svg.matches("<polyline class=\"p50\"").count(), 3);
        assert_eq!(svg.matches("class=\"saturation\"").count(), 2);
        assert!(svg.contains("saturated at 2k/s"));
        assert!(svg.contains("kept every rate") || svg.contains("no step measured"));
        for label in [">1k</text>", ">2k</text>", ">4k</text>", ">100 µs</text>"] {
            assert!(svg.contains(label), "{label} missing");
        }
        // A dashed p50 line for every path.
        assert_eq!(svg.matches("stroke-dasharray").count(), 3 + 1);
    }

    #[test]
    fn axes_are_logarithmic() {
        let y = LogAxis::decades([80.0, 2_500.0].into_iter());
        assert_eq!((y.low, y.high), (10.0, 10_000.0));
        assert!((y.fraction(100.0) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(y.decade_ticks(), [10.0, 100.0, 1000.0, 10_000.0]);
        let x = LogAxis::around([1000.0, 4000.0].into_iter());
        assert!(x.fraction(2000.0) > 0.49 && x.fraction(2000.0) < 0.51);
    }
}
