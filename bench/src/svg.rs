//! The plot of cumulative grants against the ideal line (`BENCHMARKS-100k.svg`), as SVG.

use std::fmt::Write as _;

/// One run on the plot.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// Its line in the legend.
    pub label: &'a str,
    /// Grant times as the callers observed them, in seconds after the first, sorted.
    pub grants: &'a [f64],
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * power)
}

/// The plot of `runs` of `requests` requests to limiters of `rate` per second with a burst
/// of `capacity`: cumulative grants over time against the ideal line (at most three runs),
/// and below, the first run's grants minus the ideal count at each grant.
pub fn cumulative_grants(rate: f64, capacity: f64, requests: usize, runs: &[Series<'_>]) -> String {
    const W: f64 = 900.0;
    const H1: f64 = 420.0;
    const H2: f64 = 220.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 40.0;
    const GAP: f64 = 70.0;
    let colors = ["#1f77b4", "#d62728", "#2ca02c"];
    let bucket = runs[0];
    let total = requests as f64;
    let t_max = runs
        .iter()
        .filter_map(|run| run.grants.last().copied())
        .fold(1.0_f64, f64::max)
        .min(3.0);
    let pw = W - LEFT - RIGHT;
    let x = |t: f64| LEFT + pw * t / t_max;
    let y1 = |n: f64| TOP + H1 - H1 * n / total;
    let mut out = String::new();
    let height = TOP + H1 + GAP + H2 + 50.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="22" font-size="15">Cumulative grants, {} per second with a burst of {}: {} requests, one task each</text>"#,
        rate, capacity, requests
    );
    // Axes and grid of the top panel.
    let step = nice_step(total / 5.0);
    for i in 0..=(total / step).floor() as usize {
        let n = step * i as f64;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{:.0}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y1(n) + 4.0,
            n,
            y = y1(n)
        );
    }
    let ticks = (t_max / 0.25).floor() as usize;
    for i in 0..=ticks {
        let t = i as f64 * 0.25;
        let _ = writeln!(
            out,
            r##"<line x1="{xt:.1}" x2="{xt:.1}" y1="{TOP}" y2="{}" stroke="#ddd"/><text x="{xt:.1}" y="{}" text-anchor="middle">{t:.2} s</text>"##,
            TOP + H1,
            TOP + H1 + 16.0,
            xt = x(t)
        );
    }
    // The ideal line: the burst at once, then the rate.
    let t_ideal = (total - capacity) / rate;
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#000" stroke-dasharray="6 4" stroke-width="1.5" points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}"/>"##,
        x(0.0),
        y1(0.0),
        x(0.0),
        y1(capacity),
        x(t_ideal.min(t_max)),
        y1(capacity + rate * t_ideal.min(t_max))
    );
    for (run, color) in runs.iter().zip(colors) {
        let step = (run.grants.len() / 2000).max(1);
        let mut points = format!("{:.1},{:.1}", x(0.0), y1(0.0));
        for (i, &t) in run.grants.iter().enumerate() {
            if i % step == 0 || i + 1 == run.grants.len() {
                let _ = write!(points, " {:.1},{:.1}", x(t.min(t_max)), y1((i + 1) as f64));
            }
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>"#
        );
    }
    // Legend.
    let legend: Vec<(&str, &str)> = std::iter::once(("ideal", "#000"))
        .chain(
            runs.iter()
                .zip(colors)
                .map(|(run, color)| (run.label, color)),
        )
        .collect();
    for (i, (label, color)) in legend.iter().enumerate() {
        let ly = TOP + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{label}</text>"#,
            LEFT + 14.0,
            LEFT + 40.0,
            LEFT + 46.0,
            ly + 4.0
        );
    }
    // Bottom panel: the bucket's grants minus the ideal count at each grant.
    let top2 = TOP + H1 + GAP;
    let deviation: Vec<(f64, f64)> = bucket
        .grants
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, (i + 1) as f64 - (capacity + rate * t).min(total)))
        .collect();
    let (lo, hi) = deviation
        .iter()
        .fold((-1.0_f64, 1.0_f64), |(lo, hi), &(_, d)| {
            (lo.min(d), hi.max(d))
        });
    let y2 = |d: f64| top2 + H2 - H2 * (d - lo) / (hi - lo);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-size="13">actix-leaky-bucket: grants minus the ideal count at each grant (above 0: ahead; below: behind)</text>"#,
        top2 - 10.0
    );
    for i in 0..=4 {
        let d = lo + (hi - lo) * i as f64 / 4.0;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{d:.1}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y2(d) + 4.0,
            y = y2(d)
        );
    }
    for i in 0..=ticks {
        let t = i as f64 * 0.25;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{t:.2} s</text>"#,
            x(t),
            top2 + H2 + 16.0
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#000" stroke-dasharray="6 4"/>"##,
        W - RIGHT,
        y = y2(0.0)
    );
    let step = (deviation.len() / 3000).max(1);
    let points: Vec<String> = deviation
        .iter()
        .step_by(step)
        .map(|&(t, d)| format!("{:.1},{:.1}", x(t.min(t_max)), y2(d)))
        .collect();
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{}" stroke-width="1" points="{}"/>"#,
        colors[0],
        points.join(" ")
    );
    out.push_str("</svg>\n");
    out
}
