//! `clio stats`: per-layer table of shapes, parameters, MACs and activation bytes; with several
//! models (or `--compare`), the compression report: one row per model with params, MACs, weight
//! bytes, peak activation bytes and the sparsity of the conv/gemm weights, relative to the first.

use crate::load::{load_model, InputArgs};
use clap::Args;
use clio::analysis::{layer_table, ModelStats};
use clio::{Error, Module};
use std::collections::HashMap;
use std::path::PathBuf;

/// Arguments of `clio stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The model(s): .onnx, .tflite or .clio. Several models are compared side by side.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// Machine-readable JSON: top-level `params`, `macs`, `weight_bytes`,
    /// `peak_activation_bytes` and a `layers` array (with --compare: a `models` array).
    #[arg(long)]
    pub json: bool,
    /// The compression report: one row per model (original, pruned, width-multiplied ...) with
    /// params, MACs, weight bytes, peak activation bytes and sparsity, and their ratio to the
    /// first model. Implied by giving several models.
    #[arg(long)]
    pub compare: bool,
    /// With --compare: also the per-layer params and MACs of every model side by side (layers
    /// matched by name).
    #[arg(long)]
    pub layers: bool,
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

/// `(zeros, elements)` of the conv/gemm weight each layer reads, keyed by (graph, node).
type LayerZeros = HashMap<(String, String), (u64, u64)>;

/// Zero elements of the conv/gemm weights (those `sparsify` targets), per layer, and the
/// totals (zeros, elements).
fn zero_weights(m: &Module) -> (LayerZeros, u64, u64) {
    let mut per = HashMap::new();
    let (mut zeros, mut elements) = (0, 0);
    for z in clio_passes::sparsify::weight_zeros(m) {
        zeros += z.zeros;
        elements += z.elements;
        per.insert((z.graph, z.node), (z.zeros, z.elements));
    }
    (per, zeros, elements)
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Runs `clio stats`.
pub fn run(a: StatsArgs) -> Result<(), Error> {
    if a.compare || a.inputs.len() > 1 {
        return compare(&a);
    }
    if a.layers {
        return Err(Error::Format("--layers needs --compare (or several models)".into()));
    }
    let m = load_model(&a.inputs[0], &a.input_args)?;
    let s = layer_table(&m);
    let (per, zeros, elements) = zero_weights(&m);
    if a.json {
        let mut v = serde_json::to_value(&s).map_err(|e| Error::Format(e.to_string()))?;
        v["zero_weights"] = zeros.into();
        v["sparsity"] = (pct(zeros, elements) / 100.0).into();
        let text = serde_json::to_string_pretty(&v).map_err(|e| Error::Format(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    let sparse = zeros > 0;
    let multi = m.graphs().count() > 1;
    let name_w = s.layers.iter().map(|l| l.name.len()).max().unwrap_or(4).clamp(4, 48);
    let zeros_head = if sparse { format!(" {:>14}", "zero weights") } else { String::new() };
    println!(
        "{:<name_w$}  {:<16} {:<28} {:>9} {:>9} {:>10}{zeros_head}",
        "layer", "op", "output", "params", "MACs", "act bytes"
    );
    for l in &s.layers {
        let name = if multi { format!("{}/{}", l.graph, l.name) } else { l.name.clone() };
        let out = l.output.trim_start_matches("tensor<").trim_end_matches('>');
        let z = match per.get(&(l.graph.clone(), l.name.clone())) {
            Some((z, n)) if sparse => format!(" {:>14}", format!("{} ({:.1}%)", human(*z), pct(*z, *n))),
            _ if sparse => format!(" {:>14}", "-"),
            _ => String::new(),
        };
        println!(
            "{:<name_w$}  {:<16} {:<28} {:>9} {:>9} {:>10}{z}",
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
    if sparse {
        println!("sparsity: {zeros} of {elements} conv/gemm weights are zero ({:.2}%)", pct(zeros, elements));
    }
    Ok(())
}

/// One model of the compression report.
struct Row {
    label: String,
    stats: ModelStats,
    zeros: u64,
    elements: u64,
}

fn compare(a: &StatsArgs) -> Result<(), Error> {
    let mut rows = vec![];
    for path in &a.inputs {
        let m = load_model(path, &a.input_args)?;
        let (_, zeros, elements) = zero_weights(&m);
        rows.push(Row { label: path.display().to_string(), stats: layer_table(&m), zeros, elements });
    }
    let base = &rows[0].stats;
    if a.json {
        let models: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "model": r.label,
                    "params": r.stats.params,
                    "macs": r.stats.macs,
                    "weight_bytes": r.stats.weight_bytes,
                    "peak_activation_bytes": r.stats.peak_activation_bytes,
                    "zero_weights": r.zeros,
                    "sparsity": pct(r.zeros, r.elements) / 100.0,
                    "params_ratio": pct(r.stats.params, base.params) / 100.0,
                    "macs_ratio": pct(r.stats.macs, base.macs) / 100.0,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&serde_json::json!({ "models": models }))
            .map_err(|e| Error::Format(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    let label_w = rows.iter().map(|r| r.label.len()).max().unwrap_or(5).clamp(5, 60);
    println!(
        "{:<label_w$}  {:>12} {:>14} {:>14} {:>14} {:>9} {:>9} {:>9}",
        "model", "params", "MACs", "weight bytes", "peak act bytes", "sparsity", "params %", "MACs %"
    );
    for r in &rows {
        let s = &r.stats;
        let sparsity = if r.zeros > 0 { format!("{:.1}%", pct(r.zeros, r.elements)) } else { "-".into() };
        println!(
            "{:<label_w$}  {:>12} {:>14} {:>14} {:>14} {:>9} {:>8.1}% {:>8.1}%",
            r.label,
            s.params,
            s.macs,
            s.weight_bytes,
            s.peak_activation_bytes,
            sparsity,
            pct(s.params, base.params),
            pct(s.macs, base.macs)
        );
    }
    if a.layers {
        print_layers(&rows);
    }
    Ok(())
}

/// Per-layer params / MACs of every model, rows in the first model's order then the layers
/// only later models have; `-` where a model has no such layer.
fn print_layers(rows: &[Row]) {
    let key = |g: &str, n: &str| format!("{g}/{n}");
    let mut order: Vec<String> = vec![];
    let mut tables: Vec<HashMap<String, (u64, u64)>> = vec![];
    for r in rows {
        let mut t = HashMap::new();
        for l in &r.stats.layers {
            let k = key(&l.graph, &l.name);
            if l.params == 0 && l.macs == 0 {
                continue;
            }
            if !order.contains(&k) {
                order.push(k.clone());
            }
            t.insert(k, (l.params, l.macs));
        }
        tables.push(t);
    }
    let name_w = order.iter().map(|k| k.len()).max().unwrap_or(5).clamp(5, 56);
    println!();
    let mut head = format!("{:<name_w$}", "layer");
    for i in 0..rows.len() {
        head += &format!("  {:>10} {:>10}", format!("params#{}", i + 1), format!("MACs#{}", i + 1));
    }
    println!("{head}");
    for k in &order {
        let mut line = format!("{k:<name_w$}");
        for t in &tables {
            match t.get(k) {
                Some((p, mc)) => line += &format!("  {:>10} {:>10}", human(*p), human(*mc)),
                None => line += &format!("  {:>10} {:>10}", "-", "-"),
            }
        }
        println!("{line}");
    }
}
