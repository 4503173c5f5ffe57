//! `clio plan`: choose partition points covering a bandwidth band (Clio's heuristic).

use super::cuts::prepared_model;
use crate::load::InputArgs;
use crate::target_args::TargetArgs;
use clap::Args;
use clio::Error;
use clio_passes::plan::{parse_band, plan, PlanSettings};
use std::path::PathBuf;

/// Arguments of `clio plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The model: .onnx, .tflite or .clio.
    pub input: PathBuf,
    /// End-to-end deadline in milliseconds.
    #[arg(long, default_value_t = 300.0)]
    pub latency_ms: f64,
    /// Optional device energy budget per inference in millijoules.
    #[arg(long)]
    pub energy_mj: Option<f64>,
    /// Band to cover: LO:HI in bit/s with k/M suffixes.
    #[arg(long, default_value = "50k:2M")]
    pub bandwidth: String,
    /// Slice step in channels (default: 2 up to 64 channels, else 4).
    #[arg(long)]
    pub step: Option<usize>,
    /// Cut granularity.
    #[arg(long, default_value = "block", value_parser = ["block", "layer"])]
    pub granularity: String,
    /// Pipeline applied before planning (devices run BN-folded graphs).
    #[arg(short = 'p', long = "pipeline", default_value = "fuse-bn")]
    pub pipeline: String,
    /// The graph to plan.
    #[arg(long, default_value = "main")]
    pub graph: String,
    /// Write the plan (JSON) here, atomically.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub input_args: InputArgs,
}

fn rate(bps: f64) -> String {
    if bps >= 1e6 {
        format!("{:.2}M", bps / 1e6)
    } else {
        format!("{:.0}k", bps / 1e3)
    }
}

/// Runs `clio plan`.
pub fn run(a: PlanArgs) -> Result<(), Error> {
    if !(a.latency_ms > 0.0 && a.latency_ms.is_finite()) {
        return Err(Error::Format(format!("--latency-ms must be positive, got {}", a.latency_ms)));
    }
    if a.step == Some(0) {
        return Err(Error::Format("--step must be positive".into()));
    }
    let band = parse_band(&a.bandwidth).map_err(|e| Error::Format(format!("--bandwidth: {e}")))?;
    let m = prepared_model(&a.input, &a.input_args, &a.pipeline)?;
    let t = a.target.load()?;
    let settings = PlanSettings {
        latency_s: a.latency_ms / 1e3,
        energy_j: a.energy_mj.map(|e| e / 1e3),
        band,
        step: a.step,
        granularity: clio::analysis::Granularity::parse(&a.granularity).unwrap_or_default(),
    };
    let p = plan(&m, &a.graph, &t, &settings).map_err(Error::Format)?;
    let w = p.cuts.iter().map(|c| c.node.len()).max().unwrap_or(4).clamp(4, 44);
    println!(
        "plan for {} on {} + {} over {}: deadline {} ms, band {}..{} bit/s",
        p.module,
        p.device,
        p.cloud,
        p.link,
        a.latency_ms,
        rate(band.0),
        rate(band.1)
    );
    println!(
        "{:>3}  {:<w$} {:>8} {:>9} {:>9} {:>9}  {:<17}",
        "k", "cut tensor", "ch", "dev ms", "cloud ms", "radio ms", "range (bit/s)"
    );
    for c in &p.cuts {
        let chars = c.node.chars().count();
        let name: String = if chars > w {
            format!("...{}", c.node.chars().skip(chars - (w - 3)).collect::<String>())
        } else {
            c.node.clone()
        };
        let range =
            c.range_bps.map(|(lo, hi)| format!("{}..{}", rate(lo), rate(hi))).unwrap_or_else(|| "infeasible".into());
        let mark = if p.chosen.contains(&c.k) { "<- chosen" } else { "" };
        println!(
            "{:>3}  {:<w$} {:>8} {:>9.1} {:>9.2} {:>9.1}  {:<17} {mark}",
            c.k,
            name,
            c.shape.get(1).copied().unwrap_or(1),
            c.device_latency_s * 1e3,
            c.cloud_latency_s * 1e3,
            c.radio_budget_s * 1e3,
            range
        );
    }
    if p.uncovered.is_empty() {
        println!("chosen cuts {:?} cover the whole band", p.chosen);
    } else {
        let gaps: Vec<String> = p.uncovered.iter().map(|(lo, hi)| format!("{}..{}", rate(*lo), rate(*hi))).collect();
        println!("chosen cuts {:?}; uncovered: {}", p.chosen, gaps.join(", "));
    }
    if let Some(out) = &a.output {
        let json = serde_json::to_string_pretty(&p).map_err(|e| Error::Format(e.to_string()))?;
        clio::io::write_atomic(out, json.as_bytes())?;
    }
    Ok(())
}
