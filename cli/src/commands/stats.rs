//! `clio stats`: per-layer table of shapes, parameters, MACs and activation bytes.

use crate::load::{load_model, InputArgs};
use clap::Args;
use clio::analysis::layer_table;
use clio::Error;
use std::path::PathBuf;

/// Arguments of `clio stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The model: .onnx, .tflite or .clio.
    pub input: PathBuf,
    /// Machine-readable JSON: top-level `params`, `macs`, `weight_bytes`,
    /// `peak_activation_bytes` and a `layers` array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub input_args: InputArgs,
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}G", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// Runs `clio stats`.
pub fn run(a: StatsArgs) -> Result<(), Error> {
    let m = load_model(&a.input, &a.input_args)?;
    let s = layer_table(&m);
    if a.json {
        let text = serde_json::to_string_pretty(&s).map_err(|e| Error::Format(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    let multi = m.graphs().count() > 1;
    let name_w = s.layers.iter().map(|l| l.name.len()).max().unwrap_or(4).clamp(4, 48);
    println!("{:<name_w$}  {:<16} {:<28} {:>9} {:>9} {:>10}", "layer", "op", "output", "params", "MACs", "act bytes");
    for l in &s.layers {
        let name = if multi { format!("{}/{}", l.graph, l.name) } else { l.name.clone() };
        let out = l.output.trim_start_matches("tensor<").trim_end_matches('>');
        println!(
            "{:<name_w$}  {:<16} {:<28} {:>9} {:>9} {:>10}",
            name,
            l.op,
            out,
            human(l.params),
            human(l.macs),
            human(l.activation_bytes)
        );
    }
    println!(
        "total: {} params ({}), {} MACs ({}), {} weight bytes, peak activations {} bytes",
        s.params,
        human(s.params),
        s.macs,
        human(s.macs),
        s.weight_bytes,
        s.peak_activation_bytes
    );
    Ok(())
}
