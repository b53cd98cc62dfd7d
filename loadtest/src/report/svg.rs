//! `latency.svg`: every path on one latency-by-percentile plot, HdrHistogram style.
//!
//! Owns the picture: x is 1/(1-p) on a log axis labelled 0%, 50%, 90%, 99%, 99.9%, …; y is
//! latency, linear, or logarithmic when the tail is far above the median (labelled so); one
//! coloured line per path and a legend. Hand-written SVG, no plotting crate. Never plots the
//! 100% point (it sits at infinity on this axis; the max is in the legend and the table).

use std::fmt::Write as _;

use crate::units;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 100.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 70.0;
/// Switch to a log y axis when the highest plotted value exceeds the lowest median this often.
const LOG_Y_ABOVE: f64 = 30.0;

/// One path's line.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Legend label.
    pub name: String,
    /// (quantile, microseconds), by increasing quantile.
    pub points: Vec<(f64, u64)>,
    /// Maximum in microseconds (legend only).
    pub max: u64,
    /// p99 in microseconds (legend only).
    pub p99: u64,
}

/// A y axis: maps microseconds to a 0..1 height and lists its ticks.
struct YAxis {
    log: bool,
    low: f64,
    high: f64,
}

impl YAxis {
    fn fit(curves: &[Curve]) -> YAxis {
        let values = curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1 as f64));
        let top = values.fold(1.0_f64, f64::max);
        let lowest_median = curves
            .iter()
            .filter_map(|c| c.points.iter().find(|p| p.0 >= 0.5).map(|p| p.1 as f64))
            .fold(f64::INFINITY, f64::min)
            .max(1.0);
        if top / lowest_median > LOG_Y_ABOVE {
            let floor = curves
                .iter()
                .filter_map(|c| c.points.first())
                .map(|p| p.1 as f64)
                .fold(top, f64::min)
                .max(1.0);
            YAxis {
                log: true,
                low: 10f64.powf(floor.log10().floor()),
                high: 10f64.powf(top.log10().ceil()),
            }
        } else {
            YAxis {
                log: false,
                low: 0.0,
                high: nice_ceiling(top * 1.05),
            }
        }
    }

    /// 0 at the bottom, 1 at the top.
    fn fraction(&self, micros: f64) -> f64 {
        let f = if self.log {
            (micros.max(self.low).log10() - self.low.log10())
                / (self.high.log10() - self.low.log10())
        } else {
            micros / self.high
        };
        f.clamp(0.0, 1.0)
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = (
                self.low.log10().round() as i32,
                self.high.log10().round() as i32,
            );
            (a..=b).map(|e| 10f64.powi(e)).collect()
        } else {
            (0..=5).map(|i| self.high * f64::from(i) / 5.0).collect()
        }
    }
}

/// A short axis label: `100 µs`, `2.5 ms`, `1 s`.
pub(super) fn tick_label(micros: f64) -> String {
    let (value, unit) = match micros {
        m if m >= 1e6 => (m / 1e6, "s"),
        m if m >= 1e3 => (m / 1e3, "ms"),
        m => (m, "µs"),
    };
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

/// 1, 2 or 5 times a power of ten, at or above `x`.
fn nice_ceiling(x: f64) -> f64 {
    let magnitude = 10f64.powf(x.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * magnitude)
}

/// Colour of the `i`-th path, fixed for the well-known paths so pictures compare.
pub(super) fn colour(name: &str, i: usize) -> &'static str {
    const OTHERS: [&str; 5] = ["#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
    match name {
        "direct" => "#555555",
        "ringlb" => "#d62728",
        "haproxy" => "#1f77b4",
        "nginx" => "#2ca02c",
        _ => OTHERS[i % OTHERS.len()],
    }
}

/// Renders the plot; `title` and `subtitle` go on top.
pub fn render(title: &str, subtitle: &str, curves: &[Curve]) -> String {
    let decades = x_decades(curves);
    let y = YAxis::fit(curves);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |q: f64| LEFT + plot_w * ((1.0 / (1.0 - q)).log10() / decades).clamp(0.0, 1.0);
    let py = |micros: f64| TOP + plot_h * (1.0 - y.fraction(micros));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"30\" font-size=\"18\" font-weight=\"bold\">{}</text>\n\
         <text x=\"{LEFT}\" y=\"50\" fill=\"#555\">{}</text>\n",
        escape(title),
        escape(subtitle)
    );
    for (label, q) in x_ticks(decades) {
        let x = px(q);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>\n",
            TOP + plot_h,
            TOP + plot_h + 20.0
        );
    }
    for tick in y.ticks() {
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
    let y_label = if y.log {
        "Latency (log scale)"
    } else {
        "Latency"
    };
    let _ = write!(
        svg,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#333\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">Percentile</text>\n\
         <text transform=\"translate(20 {:.1}) rotate(-90)\" text-anchor=\"middle\">{y_label}</text>\n",
        LEFT + plot_w / 2.0,
        HEIGHT - 20.0,
        TOP + plot_h / 2.0
    );
    for (i, curve) in curves.iter().enumerate() {
        draw_curve(&mut svg, curve, colour(&curve.name, i), &px, &py);
        draw_legend_entry(
            &mut svg,
            curve,
            colour(&curve.name, i),
            i,
            LEFT + plot_w + 20.0,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn draw_curve(
    svg: &mut String,
    curve: &Curve,
    colour: &str,
    px: &dyn Fn(f64) -> f64,
    py: &dyn Fn(f64) -> f64,
) {
    let points: Vec<String> = curve
        .points
        .iter()
        .filter(|(q, _)| *q < 1.0)
        .map(|&(q, v)| format!("{:.1},{:.1}", px(q), py(v as f64)))
        .collect();
    let _ = writeln!(
        svg,
        "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
}

fn draw_legend_entry(svg: &mut String, curve: &Curve, colour: &str, i: usize, x: f64) {
    let y = TOP + 10.0 + 44.0 * i as f64;
    let _ = write!(
        svg,
        "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"bold\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#555\" font-size=\"11\">p99 {}, max {}</text>\n",
        x + 24.0,
        x + 30.0,
        y + 4.0,
        escape(&curve.name),
        x + 4.0,
        y + 20.0,
        escape(&units::latency(curve.p99)),
        escape(&units::latency(curve.max))
    );
}

/// Decades of 1/(1-p) to show: enough for the deepest plotted percentile, between 2 and 6.
fn x_decades(curves: &[Curve]) -> f64 {
    let deepest = curves
        .iter()
        .flat_map(|c| c.points.iter())
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, _)| (1.0 / (1.0 - q)).log10())
        .fold(2.0_f64, f64::max);
    deepest.ceil().clamp(2.0, 6.0)
}

/// The labelled x positions: 0%, 50%, then 90%, 99%, 99.9%, … one per decade.
fn x_ticks(decades: f64) -> Vec<(String, f64)> {
    let mut ticks = vec![("0%".to_owned(), 0.0), ("50%".to_owned(), 0.5)];
    for d in 1..=decades as i32 {
        let q = 1.0 - 10f64.powi(-d);
        let label = format!("{:.*}%", (d - 2).max(0) as usize, q * 100.0);
        ticks.push((label, q));
    }
    ticks
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(name: &str, scale: u64) -> Curve {
        let points = [(0.0, 50), (0.5, 80), (0.9, 120), (0.99, 300), (0.999, 900)]
            .iter()
            .map(|&(q, v)| (q, v * scale))
            .collect();
        Curve {
            name: name.into(),
            points,
            max: 1500 * scale,
            p99: 300 * scale,
        }
    }

    #[test]
    fn draws_one_line_and_legend_entry_per_path() {
        let svg = render(
            "Latency by percentile",
            "rate 4000 req/s",
            &[curve("direct", 1), curve("haproxy", 2)],
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">haproxy</text>"));
        assert!(svg.contains(">99.9%</text>"));
        assert!(svg.contains(">50%</text>"));
    }

    #[test]
    fn x_ticks_are_labelled_like_hdrhistogram_plots() {
        let labels: Vec<String> = x_ticks(4.0).into_iter().map(|t| t.0).collect();
        assert_eq!(labels, ["0%", "50%", "90%", "99%", "99.9%", "99.99%"]);
    }

    #[test]
    fn a_long_tail_switches_to_a_log_axis() {
        let mut stalled = curve("ringlb", 1);
        stalled.points.push((0.9999, 500_000));
        assert!(YAxis::fit(&[stalled]).log);
        assert!(!YAxis::fit(&[curve("direct", 1)]).log);
        assert_eq!(nice_ceiling(730.0), 1000.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(100.0), "100 µs");
        assert_eq!(tick_label(2500.0), "2.5 ms");
        assert_eq!(tick_label(1_000_000.0), "1 s");
        assert_eq!(tick_label(0.0), "0 µs");
    }

    #[test]
    fn names_are_escaped() {
        let svg = render("a<b", "", &[curve("x&y", 1)]);
        assert!(svg.contains("a&lt;b"));
        assert!(svg.contains("x&amp;y"));
    }
}
