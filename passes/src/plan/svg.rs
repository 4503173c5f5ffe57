//! Small, dependency-free SVG plots for plans and simulations.

use super::simulate::StrategyResult;
use clio::trace::BandwidthTrace;
use std::collections::BTreeMap;
use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 360.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;
const COLORS: &[&str] = &["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

fn header(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" font-size=\"13\" text-anchor=\"middle\">{}</text>\n",
        (LEFT + W - RIGHT) / 2.0,
        escape(title)
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn axes(out: &mut String, xlabel: &str, ylabel: &str) {
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
    let _ = writeln!(out, "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"black\"/>");
    let _ = writeln!(out, "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"black\"/>");
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        (x0 + x1) / 2.0,
        H - 12.0,
        escape(xlabel)
    );
    let _ = writeln!(
        out,
        "<text x=\"14\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\">{}</text>",
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        escape(ylabel)
    );
}

fn rate(bps: f64) -> String {
    if bps >= 1e6 {
        format!("{:.1}M", bps / 1e6)
    } else {
        format!("{:.0}k", bps / 1e3)
    }
}

/// Accuracy versus bandwidth, one line per cut, log-scaled bandwidth axis.
pub fn accuracy_vs_bandwidth(title: &str, curves: &BTreeMap<usize, Vec<(f64, f64)>>) -> String {
    let mut out = header(title);
    axes(&mut out, "bandwidth (bit/s, log scale)", "accuracy");
    let all: Vec<f64> = curves.values().flatten().map(|(b, _)| *b).collect();
    let (lo, hi) = all.iter().fold((f64::INFINITY, 0.0f64), |(l, h), b| (l.min(*b), h.max(*b)));
    if !(lo.is_finite() && hi > lo) {
        out.push_str("</svg>\n");
        return out;
    }
    let x = |b: f64| LEFT + (b.ln() - lo.ln()) / (hi.ln() - lo.ln()) * (W - RIGHT - LEFT);
    let y = |a: f64| H - BOTTOM - a * (H - BOTTOM - TOP);
    for i in 0..=4 {
        let a = i as f64 / 4.0;
        let _ = writeln!(out, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{a:.2}</text>", LEFT - 5.0, y(a) + 4.0);
        let b = lo * (hi / lo).powf(i as f64 / 4.0);
        let _ =
            writeln!(out, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", x(b), H - BOTTOM + 15.0, rate(b));
    }
    for (i, (k, pts)) in curves.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts.iter().map(|(b, a)| format!("{:.1},{:.1}", x(*b), y(*a))).collect();
        let _ =
            writeln!(out, "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>", path.join(" "));
        let ly = TOP + 15.0 * i as f64 + 10.0;
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"2\"/>",
            W - RIGHT + 10.0,
            W - RIGHT + 30.0
        );
        let _ = writeln!(out, "<text x=\"{}\" y=\"{}\">cut {k}</text>", W - RIGHT + 35.0, ly + 4.0);
    }
    out.push_str("</svg>\n");
    out
}

/// The trace over time (bandwidth, left axis) with each strategy's per-frame accuracy.
pub fn trace_timeline(title: &str, trace: &BandwidthTrace, results: &[StrategyResult]) -> String {
    let mut out = header(title);
    axes(&mut out, "time (s)", "bandwidth (bit/s) / accuracy");
    let (t0, t1) = (trace.start(), trace.end());
    let bmax = trace.samples.iter().map(|(_, b)| *b).fold(1.0, f64::max);
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0).max(1e-9) * (W - RIGHT - LEFT);
    let yb = |b: f64| H - BOTTOM - b / bmax * (H - BOTTOM - TOP);
    let ya = |a: f64| H - BOTTOM - a * (H - BOTTOM - TOP);
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LEFT - 5.0,
            yb(f * bmax) + 4.0,
            rate(f * bmax)
        );
        let t = t0 + f * (t1 - t0);
        let _ = writeln!(out, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{t:.0}</text>", x(t), H - BOTTOM + 15.0);
    }
    let mut steps = vec![];
    for w in trace.samples.windows(2) {
        steps.push(format!("{:.1},{:.1} {:.1},{:.1}", x(w[0].0), yb(w[0].1), x(w[1].0), yb(w[0].1)));
    }
    let _ = writeln!(
        out,
        "<polyline fill=\"none\" stroke=\"#bbbbbb\" stroke-width=\"1.5\" points=\"{}\"/>",
        steps.join(" ")
    );
    let _ = writeln!(out, "<text x=\"{}\" y=\"{}\" fill=\"#888888\">bandwidth</text>", W - RIGHT + 35.0, TOP + 10.0);
    for (i, r) in results.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts: Vec<String> = r.frames.iter().map(|f| format!("{:.1},{:.1}", x(f.t), ya(f.accuracy))).collect();
        let _ =
            writeln!(out, "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"1.2\" points=\"{}\"/>", pts.join(" "));
        let ly = TOP + 15.0 * (i + 1) as f64 + 10.0;
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"2\"/>",
            W - RIGHT + 10.0,
            W - RIGHT + 30.0
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\">{} ({:.3})</text>",
            W - RIGHT + 35.0,
            ly + 4.0,
            escape(&r.strategy),
            r.mean_accuracy
        );
    }
    out.push_str("</svg>\n");
    out
}
