//! `clio cuts`: the legal partition points of a model with their device/cloud costs.

use crate::load::{load_model, InputArgs};
use crate::target_args::TargetArgs;
use clap::Args;
use clio::analysis::{cut_points, Granularity};
use clio::ir::{NodeId, Op};
use clio::pass::PassManager;
use clio::Error;
use std::collections::HashSet;
use std::path::PathBuf;

/// Arguments of `clio cuts`.
#[derive(Args, Debug)]
pub struct CutsArgs {
    /// The model: .onnx, .tflite or .clio.
    pub input: PathBuf,
    /// Cut points at block boundaries (as Clio) or every single-tensor cut.
    #[arg(long, default_value = "block", value_parser = ["block", "layer"])]
    pub granularity: String,
    /// Pipeline applied before the analysis (devices run BN-folded graphs).
    #[arg(short = 'p', long = "pipeline", default_value = "fuse-bn")]
    pub pipeline: String,
    /// The graph to analyse.
    #[arg(long, default_value = "main")]
    pub graph: String,
    /// Machine-readable output: `{"cuts": [...]}`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub input_args: InputArgs,
}

/// One row of the table.
#[derive(serde::Serialize)]
struct Row {
    #[serde(flatten)]
    cut: clio::analysis::CutPoint,
    device_latency_ms: f64,
    device_energy_mj: f64,
    cloud_latency_ms: f64,
    full_transfer_ms_at_nominal: f64,
}

/// Loads a model and applies a pipeline (shared by `cuts` and `plan`).
pub fn prepared_model(input: &std::path::Path, input_args: &InputArgs, pipeline: &str) -> Result<clio::Module, Error> {
    let mut m = load_model(input, input_args)?;
    let mut pm = PassManager::from_pipeline(&clio_passes::registry(), pipeline)?;
    pm.run(&mut m)?;
    Ok(m)
}

/// Runs `clio cuts`.
pub fn run(a: CutsArgs) -> Result<(), Error> {
    let m = prepared_model(&a.input, &a.input_args, &a.pipeline)?;
    let t = a.target.load()?;
    let granularity = Granularity::parse(&a.granularity).unwrap_or_default();
    let cuts = cut_points(&m, &a.graph, granularity).map_err(|e| Error::Format(e.to_string()))?;
    let g = m.graph(&a.graph).ok_or_else(|| Error::Format(format!("no graph @{}", a.graph)))?;
    let order = g.topo_order().map_err(|c| Error::Format(format!("cycle at {}", c.0)))?;
    let mut rows = vec![];
    for c in cuts {
        let mut up = HashSet::new();
        let mut stack = vec![c.value.node];
        while let Some(x) = stack.pop() {
            if up.insert(x) {
                stack.extend(g.producers(x));
            }
        }
        let (dev, cloud): (Vec<NodeId>, Vec<NodeId>) =
            order.iter().copied().filter(|n| !matches!(g.node(*n).op, Op::Weight { .. })).partition(|n| up.contains(n));
        let d = t.device.nodes_cost(&m, g, &dev);
        let cl = t.cloud.nodes_cost(&m, g, &cloud);
        let nominal = t.link.transfer_time_s(c.bytes_q8, t.link.nominal_bandwidth_bps());
        rows.push(Row {
            cut: c,
            device_latency_ms: d.latency_s * 1e3,
            device_energy_mj: d.energy_j * 1e3,
            cloud_latency_ms: cl.latency_s * 1e3,
            full_transfer_ms_at_nominal: nominal * 1e3,
        });
    }
    if a.json {
        let v = serde_json::json!({ "model": m.name, "target": t.device.name(), "cloud": t.cloud.name(), "link": t.link.name(), "cuts": rows });
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| Error::Format(e.to_string()))?);
        return Ok(());
    }
    let w = rows.iter().map(|r| r.cut.node.len()).max().unwrap_or(4).clamp(4, 44);
    println!(
        "{:>3}  {:<w$}  {:<16} {:>10} {:>11} {:>9} {:>9} {:>8} {:>9} {:>11} {:>12}",
        "k",
        "cut tensor",
        "shape",
        "q8 bytes",
        "device MACs",
        "dev ms",
        "dev mJ",
        "cloud ms",
        "tx ms*",
        "dev weights",
        "dev peak act"
    );
    for r in &rows {
        let c = &r.cut;
        let shape = c.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        let name: String =
            if c.node.len() > w { format!("...{}", &c.node[c.node.len() - (w - 3)..]) } else { c.node.clone() };
        println!(
            "{:>3}  {:<w$}  {:<16} {:>10} {:>11} {:>9.1} {:>9.2} {:>8.2} {:>9.1} {:>11} {:>12}",
            c.k,
            name,
            shape,
            c.bytes_q8,
            c.device_macs,
            r.device_latency_ms,
            r.device_energy_mj,
            r.cloud_latency_ms,
            r.full_transfer_ms_at_nominal,
            c.device_weight_bytes,
            c.device_peak_activation_bytes
        );
    }
    println!(
        "* full cut tensor at 8 bits over {} at its nominal bandwidth; target {}, cloud {}",
        t.link.name(),
        t.device.name(),
        t.cloud.name()
    );
    Ok(())
}
