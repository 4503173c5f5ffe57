//! `clio simulate`: replay a bandwidth trace against a partition plan and accuracy profiles,
//! comparing fixed-cut slicing, adaptive partitioning and an oracle.

use crate::target_args::TargetArgs;
use clap::Args;
use clio::trace::BandwidthTrace;
use clio::Error;
use clio_passes::plan::policy::Framing;
use clio_passes::plan::simulate::{accuracy_curves, simulate_span, Estimator, SimSettings, Span};
use clio_passes::plan::svg;
use std::path::PathBuf;

/// Arguments of `clio simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The plan (JSON) written by `clio plan -o`.
    #[arg(long)]
    pub plan: PathBuf,
    /// Accuracy per <cut, channels> (JSON `{"entries": [...]}` or CSV `cut,channels,accuracy`).
    #[arg(long)]
    pub profile: PathBuf,
    /// Bandwidth trace(s): `time_s throughput_Mbit_per_s` per line (repeatable).
    #[arg(long, required = true)]
    pub trace: Vec<PathBuf>,
    /// Multiply trace bandwidths by this (e.g. 0.125 to map 3G traces into the BLE band).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Seconds between frames.
    #[arg(long, default_value_t = 1.0)]
    pub period_s: f64,
    /// The device's bandwidth estimate: mean of the last N seconds.
    #[arg(long, default_value_t = 60.0)]
    pub window_s: f64,
    /// How adaptive partitioning reads the window's bandwidth: `mean` (Clio's rule: the best cut
    /// at the mean) or `distribution` (the best mean accuracy over the window's per-second
    /// bandwidths).
    #[arg(long, default_value = "mean")]
    pub estimator: String,
    /// Partition-switch cost in milliseconds (about 20 ms on GAP8).
    #[arg(long, default_value_t = 20.0)]
    pub switch_ms: f64,
    /// Cut of the fixed-cut baseline (default: the best fixed cut in hindsight).
    #[arg(long)]
    pub fixed_cut: Option<usize>,
    /// The cuts adaptive partitioning switches between, comma-separated (default: the plan's
    /// chosen cuts that have a profile). Each must be a cut of the plan with a profile.
    #[arg(long, value_delimiter = ',', value_name = "K,K,...")]
    pub deploy: Vec<usize>,
    /// Write accuracy-vs-bandwidth curves and per-trace timelines (SVG) into this directory.
    #[arg(long)]
    pub svg_dir: Option<PathBuf>,
    /// Machine-readable results.
    #[arg(long)]
    pub json: bool,
    /// The link the plan was made for (for delivered bytes).
    #[arg(long, default_value = "ble")]
    pub link: String,
    /// Replay only this many frames (default: until the trace ends).
    #[arg(long)]
    pub frames: Option<usize>,
    /// Start the first frame this many seconds after the trace's first sample.
    #[arg(long, default_value_t = 0.0)]
    pub start_s: f64,
    /// Count transport framing against the radio budget: BEGIN:GROUP bytes per request and per
    /// channel group (what `clio device` sends: `Begin` with the wire header, a frame head per
    /// group; it prints them). Default: payload only, as the plan.
    #[arg(long, value_name = "BEGIN:GROUP")]
    pub framing: Option<String>,
    /// With --json: include every frame (time, estimate, cut, channels, accuracy, latency ...).
    #[arg(long)]
    pub per_frame: bool,
}

/// Runs `clio simulate`.
pub fn run(a: SimulateArgs) -> Result<(), Error> {
    let (mut plan, profile) = crate::load::load_plan_and_profile(&a.plan, &a.profile)?;
    if !a.deploy.is_empty() {
        for k in &a.deploy {
            if plan.cut(*k).is_none() {
                return Err(Error::Format(format!("--deploy {k}: {} has no cut {k}", a.plan.display())));
            }
            if !profile.entries.iter().any(|e| e.cut == *k) {
                return Err(Error::Format(format!(
                    "--deploy {k}: {} has no accuracy for cut {k}",
                    a.profile.display()
                )));
            }
        }
        plan.chosen = a.deploy.clone();
    }
    let link = TargetArgs { target: "gap8".into(), cloud: "cloud-gpu".into(), link: a.link.clone() }.load()?.link;
    let settings = SimSettings {
        period_s: a.period_s,
        window_s: a.window_s,
        switch_s: a.switch_ms / 1e3,
        fixed_cut: a.fixed_cut,
        estimator: Estimator::parse(&a.estimator)
            .ok_or_else(|| Error::Format(format!("--estimator `{}`: expected mean or distribution", a.estimator)))?,
    };
    let framing = match &a.framing {
        None => Framing::default(),
        Some(f) => {
            let bad = || Error::Format(format!("--framing `{f}`: expected BEGIN:GROUP byte counts"));
            let (b, g) = f.split_once(':').ok_or_else(bad)?;
            Framing {
                begin_bytes: b.trim().parse().map_err(|_| bad())?,
                group_bytes: g.trim().parse().map_err(|_| bad())?,
            }
        }
    };
    // Every trace is read and replayed before anything is written: a bad trace leaves no output.
    let mut all = vec![];
    let mut traces = vec![];
    for path in &a.trace {
        let trace = BandwidthTrace::load(path, a.scale)?;
        let span = Span { offset_s: a.start_s, frames: a.frames, framing };
        let results = simulate_span(&plan, &profile, &trace, link.as_ref(), &settings, span).map_err(Error::Format)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        traces.push(trace);
        all.push((name, results));
    }
    if let Some(dir) = &a.svg_dir {
        // The SVG directory appears complete or not at all.
        let out = clio::io::AtomicDir::new(dir)?;
        let curves = accuracy_curves(&plan, &profile, link.as_ref(), 120);
        let title = format!(
            "{}: accuracy vs bandwidth per cut ({} ms, {})",
            plan.module,
            plan.settings.latency_s * 1e3,
            plan.link
        );
        let write = |name: &str, text: String| {
            std::fs::write(out.path().join(name), text)
                .map_err(|e| Error::from(clio::error::IoError::new(out.path().join(name), "cannot write", e)))
        };
        write("accuracy_vs_bandwidth.svg", svg::accuracy_vs_bandwidth(&title, &curves))?;
        for ((name, results), trace) in all.iter().zip(&traces) {
            let title = format!("{name} (x{}): bandwidth and per-frame accuracy", a.scale);
            write(&format!("{name}.svg"), svg::trace_timeline(&title, trace, results))?;
        }
        out.commit()?;
    }
    let cuts_used = |r: &clio_passes::plan::simulate::StrategyResult| {
        let mut c: Vec<usize> = r.frames.iter().map(|f| f.cut).collect();
        c.sort();
        c.dedup();
        c
    };
    if a.json {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|(n, r)| {
                let rows: Vec<serde_json::Value> = r
                    .iter()
                    .map(|s| {
                        let mut v = serde_json::json!({
                            "strategy": s.strategy, "mean_accuracy": s.mean_accuracy, "deadline_misses": s.deadline_misses,
                            "switches": s.switches, "frames": s.frames.len(), "cuts_used": cuts_used(s)
                        });
                        if a.per_frame {
                            v["frame_log"] = serde_json::to_value(&s.frames).unwrap_or_default();
                        }
                        v
                    })
                    .collect();
                serde_json::json!({ "trace": n, "results": rows })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| Error::Format(e.to_string()))?);
        return Ok(());
    }
    println!(
        "{:<20} {:<9} {:>9} {:>8} {:>9} {:>7}  cuts used",
        "trace", "strategy", "accuracy", "misses", "switches", "frames"
    );
    for (name, results) in &all {
        for r in results {
            let cuts = cuts_used(r);
            println!(
                "{:<20} {:<9} {:>9.4} {:>8} {:>9} {:>7}  {:?}",
                name,
                r.strategy,
                r.mean_accuracy,
                r.deadline_misses,
                r.switches,
                r.frames.len(),
                cuts
            );
        }
    }
    Ok(())
}
