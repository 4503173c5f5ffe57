//! `clio compile`: model -> device C module + cloud part + manifest.
//!
//! `clio compile MODEL --target stm32f7 --cut K --calib PATH [--pipeline P] [--cmsis API] -o DIR`
//! runs the pipeline (default `fuse-bn,partition{cut=K},quantize{scheme=int8,calib=PATH,graph=device}`,
//! with `bias-correction=MODE` added by `--bias-correction MODE`,
//! or `scheme=q8,weights=per-tensor` with `--cmsis legacy-q7`; a module that already has a
//! `@device` graph is used as is), lowers `@device` to C calling CMSIS-NN's s8 kernels (or
//! CMSIS_5's q7 ones), and writes, atomically, into DIR:
//! * `<prefix>.c`, `<prefix>.h`: the device module (init / invoke / truncate);
//! * `cmsis_nn/`: the CMSIS-NN header shims and clio's host kernels (for host builds and
//!   tests; link the real CMSIS-NN on the device);
//! * `cloud.clio` + `cloud.safetensors`: the cloud part (its graph and the weights it reads);
//! * `<graph>.onnx` and `<graph>.nnef.tar` for every cloud graph (each slice head): the cloud
//!   part as standard ONNX and as NNEF through tract (`clio_targets::cloud`); a graph that does
//!   not export is listed in the manifest with the reason;
//! * `manifest.json`: cut, pipeline, input/output quantization, arena / scratch / flash sizes,
//!   per-layer kernels, and the target cost model's latency and energy estimate.

use crate::load::{load_model, InputArgs};
use clap::Args;
use clio::analysis::{cut_points, find_cut, Granularity};
use clio::io::{save_module, AtomicDir};
use clio::ir::{Module, Op};
use clio::pass::PassManager;
use clio::Error;
use clio_targets::stm32::{lower, write_shims, CmsisApi, Stm32Options};
use std::path::PathBuf;

/// Arguments of `clio compile`.
#[derive(Args, Clone, Debug)]
pub struct CompileArgs {
    /// The model: .onnx, .tflite or .clio (float, or already quantized and partitioned).
    pub input: PathBuf,
    /// Device target: `stm32f7` (CMSIS-NN s8 / legacy q7) or `gap8` (HWCE + cluster kernels,
    /// q8 power-of-two quantization).
    #[arg(long, default_value = "stm32f7", value_parser = ["stm32f7", "gap8"])]
    pub target: String,
    /// Cut point: an index k as `clio cuts MODEL` numbers them (block cut points after
    /// `fuse-bn`) or the name of the node producing the cut tensor. For `--target gap8`, a
    /// comma-separated list of indices (e.g. a plan's `chosen` cuts) builds one program with a
    /// variant per cut behind `<prefix>_select(cut)` (partition switching).
    #[arg(long)]
    pub cut: Option<String>,
    /// Calibration samples for the default pipeline: an .npy file or a directory of them;
    /// `random[:SEED]` for smoke tests only.
    #[arg(long, value_name = "PATH")]
    pub calib: Option<String>,
    /// Calibration samples to use (0: all).
    #[arg(long, default_value_t = 0)]
    pub samples: usize,
    /// Pipeline replacing the default one (it must produce a `@device` graph).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// CMSIS-NN API: `s8` (int8 graphs, CMSIS-NN >= 4.1) or `legacy-q7` (q8 power-of-two
    /// graphs, CMSIS_5's q7 functions; the default pipeline then quantizes with
    /// `scheme=q8,weights=per-tensor`).
    #[arg(long, default_value = "s8", value_parser = ["s8", "legacy-q7"])]
    pub cmsis: String,
    /// GAP8 only: the Q format of the default pipeline's device part, `q8` (8-bit, HWCE and
    /// cluster) or `q16` (16-bit: cluster cores, and the HWCE in digit passes where faster).
    /// Default q8.
    #[arg(long, value_parser = ["q8", "q16"])]
    pub scheme: Option<String>,
    /// GAP8 only: L1 bytes one layer's tiles may use (at most 65536; default 40960, the rest
    /// left to the cluster stacks and the application).
    #[arg(long, value_name = "BYTES")]
    pub l1_budget: Option<usize>,
    /// GAP8 only: L2 bytes the generated code may use (at most 524288, the default); constants
    /// over it move to L3 (HyperRAM), buffers over it are an error.
    #[arg(long, value_name = "BYTES")]
    pub l2_budget: Option<usize>,
    /// Bias correction of the default pipeline's `quantize` (`none`, `weights` or `measured`:
    /// see `clio quantize --help`).
    #[arg(long, default_value = "none", value_parser = ["none", "weights", "measured"])]
    pub bias_correction: String,
    /// C symbol and file prefix.
    #[arg(long, default_value = "clio_device")]
    pub prefix: String,
    /// Output directory (replaced atomically).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    #[command(flatten)]
    pub input_args: InputArgs,
}

fn quoted(s: &str, what: &str) -> Result<String, Error> {
    if s.contains('"') || s.contains('\\') {
        return Err(Error::Format(format!("{what} `{s}` may not contain quotes or backslashes")));
    }
    Ok(format!("\"{s}\""))
}

/// Runs the pipeline: `--pipeline` verbatim; nothing for a module that already has `@device`;
/// otherwise `fuse-bn`, then the cut is resolved among the float graph's block cut points (the
/// numbering `clio cuts MODEL` prints), `partition` there, and `quantize{graph=device}`: the
/// device part becomes integer, the cloud part stays float. Returns the pipeline run.
fn prepare(a: &CompileArgs, m: &mut Module) -> Result<Option<String>, Error> {
    let run = |m: &mut Module, p: &str| -> Result<(), Error> {
        let mut pm = PassManager::from_pipeline(&clio_passes::registry(), p)?;
        pm.run(m)?;
        Ok(())
    };
    let no_default = |why: &str| {
        Error::Format(format!(
            "--bias-correction applies to the default pipeline, and {why}; give `quantize{{...,bias-correction=...}}` there"
        ))
    };
    if let Some(p) = &a.pipeline {
        if a.bias_correction != "none" {
            return Err(no_default("--pipeline replaces it"));
        }
        run(m, p)?;
        return Ok(Some(p.clone()));
    }
    if m.graph("device").is_some() {
        if a.bias_correction != "none" {
            return Err(no_default("the model is already partitioned and quantized"));
        }
        return Ok(None);
    }
    let cut = a.cut.as_deref().ok_or_else(|| Error::Format("--cut is required (see `clio cuts MODEL`)".into()))?;
    let calib = a.calib.as_deref().ok_or_else(|| {
        Error::Format("--calib PATH is required to quantize (an .npy file or a directory of .npy files)".into())
    })?;
    run(m, "fuse-bn")?;
    let graph = m.graph_names().into_iter().next().ok_or_else(|| Error::Format("the module has no graph".into()))?;
    let cuts = cut_points(m, &graph, Granularity::Block).map_err(|e| Error::Format(e.to_string()))?;
    let point = find_cut(&cuts, &graph, cut).map_err(|e| Error::Format(e.to_string()))?;
    let samples = if a.samples > 0 { format!(",samples={}", a.samples) } else { String::new() };
    let scheme = if a.target == "gap8" {
        if a.scheme.as_deref() == Some("q16") {
            "scheme=q16"
        } else {
            "scheme=q8"
        }
    } else if a.scheme.is_some() {
        return Err(Error::Format(format!(
            "--scheme is for --target gap8; {} takes --cmsis s8 (int8) or legacy-q7 (q8)",
            a.target
        )));
    } else if a.cmsis == "legacy-q7" {
        "scheme=q8,weights=per-tensor"
    } else {
        "scheme=int8"
    };
    // Partition the float graph, then quantize the device part only: the cloud part stays float
    // (it reads the integer cut tensor through a dequantize) and exports to ONNX / NNEF.
    let partition = format!("partition{{cut={},granularity=layer,graph={graph}}}", quoted(&point.node, "cut node")?);
    run(m, &partition)?;
    let correction = match a.bias_correction.as_str() {
        "none" => String::new(),
        mode => format!(",bias-correction={mode}"),
    };
    let quantize =
        format!("quantize{{{scheme},calib={}{samples}{correction},graph=device}}", quoted(calib, "--calib")?);
    run(m, &quantize)?;
    Ok(Some(format!("fuse-bn,{partition},{quantize}")))
}

/// The cloud part alone: every graph but `@device`, and the weights they read.
fn cloud_part(m: &Module) -> Module {
    let mut c = m.clone();
    c.remove_graph("device");
    let names: Vec<String> = c.weights().keys().cloned().collect();
    for n in names {
        c.remove_weight_if_unread(&n);
    }
    c
}

/// Writes every cloud graph as `<graph>.onnx` and `<graph>.nnef.tar` (NNEF through tract) into
/// `dir`; returns the manifest's `exports` entry: per graph, the files or why it was not exported.
fn write_cloud_exports(dir: &std::path::Path, cloud: &Module) -> Result<serde_json::Value, Error> {
    use clio_targets::cloud::{export_nnef, export_onnx};
    let mut out = serde_json::Map::new();
    for g in cloud.graph_names() {
        let entry = match export_onnx(cloud, &g).and_then(|onnx| Ok((onnx, export_nnef(cloud, &g)?))) {
            Ok((onnx, nnef)) => {
                let (o, n) = (format!("{g}.onnx"), format!("{g}.nnef.tar"));
                clio::io::write_atomic(&dir.join(&o), &onnx)?;
                clio::io::write_atomic(&dir.join(&n), &nnef)?;
                serde_json::json!({ "onnx": o, "nnef": n })
            }
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        out.insert(g, entry);
    }
    Ok(serde_json::Value::Object(out))
}

/// Runs `clio compile`.
pub fn run(a: CompileArgs) -> Result<(), Error> {
    if a.target != "gap8" && (a.l1_budget.is_some() || a.l2_budget.is_some()) {
        return Err(Error::Format(format!("--l1-budget and --l2-budget are for --target gap8, not {}", a.target)));
    }
    let mut m = load_model(&a.input, &a.input_args)?;
    if a.target == "gap8" && a.cut.as_deref().is_some_and(|c| c.contains(',')) {
        return run_gap8_variants(&a, &m);
    }
    let pipe = prepare(&a, &mut m)?;
    if a.target == "gap8" {
        return run_gap8(&a, &m, pipe);
    }
    let api = if a.cmsis == "legacy-q7" { CmsisApi::LegacyQ7 } else { CmsisApi::S8 };
    let opts = Stm32Options { graph: "device".into(), prefix: a.prefix.clone(), api };
    let c = lower(&m, &opts).map_err(|e| Error::Format(e.to_string()))?;
    // Estimated device cost from the target's cost model.
    let cost = clio_targets::load_target(&a.target).map_err(|e| Error::Format(e.to_string()))?;
    let g = m.graph("device").ok_or_else(|| Error::Format("no @device graph".into()))?;
    let nodes: Vec<_> = g.topo_order().map_err(|e| Error::Format(format!("cycle at {}", e.0)))?;
    let est = cost.nodes_cost(&m, g, &nodes);
    // Per kernel: the report's sizes plus the cost model's estimate for that node.
    let layers: Vec<serde_json::Value> = c
        .report
        .layers
        .iter()
        .map(|l| {
            let mut v = serde_json::to_value(l).unwrap_or_default();
            if let (Some(id), Some(obj)) = (g.find(&l.node), v.as_object_mut()) {
                let oc = cost.op_cost(&m, g, id);
                obj.insert("estimated_latency_s".into(), oc.latency_s.into());
                obj.insert("estimated_energy_j".into(), oc.energy_j.into());
            }
            v
        })
        .collect();
    let cloud = cloud_part(&m);
    let dir = AtomicDir::new(&a.output)?;
    c.write_to(dir.path())?;
    write_shims(&dir.path().join("cmsis_nn"), c.api)?;
    save_module(&cloud, &dir.path().join("cloud.clio"))?;
    let exports = write_cloud_exports(dir.path(), &cloud)?;
    let cut_node = g.outputs().first().and_then(|v| match &g.node(v.node).op {
        Op::Transmit(_) => g.operand(v.node, 0).map(|x| g.node(x.node).name().to_string()),
        _ => Some(g.node(v.node).name().to_string()),
    });
    let manifest = serde_json::json!({
        "model": a.input.display().to_string(),
        "target": a.target,
        "cut": a.cut,
        "cut_node": cut_node,
        "pipeline": pipe,
        "cmsis": a.cmsis,
        "quantization": if api == CmsisApi::LegacyQ7 { "q8 (power-of-two Q formats, per tensor)" } else { "int8 (TFLite / CMSIS-NN s8, per-channel conv weights)" },
        "device": {
            "graph": "device",
            "source": c.source_name(),
            "header": c.header_name(),
            "shims": "cmsis_nn/",
            "input": c.report.input,
            "output": c.report.output,
            "arena_bytes": c.report.arena_bytes,
            "arena_lower_bound_bytes": c.report.arena_lower_bound_bytes,
            "arena_tflm_greedy_bytes": c.report.arena_tflm_greedy_bytes,
            "scratch_bytes": c.report.scratch_bytes,
            "flash_const_bytes": c.report.const_bytes,
            "macs": c.report.macs,
            "layers": layers,
            "estimate": { "cost_model": cost.name(), "latency_s": est.latency_s, "energy_j": est.energy_j },
        },
        "cloud": {
            "graphs": cloud.graph_names(),
            "module": "cloud.clio",
            "weights": if cloud.weights().is_empty() { None } else { Some("cloud.safetensors") },
            "exports": exports,
        },
    });
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Format(e.to_string()))?;
    clio::io::write_atomic(&dir.path().join("manifest.json"), text.as_bytes())?;
    dir.commit()?;
    println!(
        "compiled @device for {}: {} kernels, {} MACs; arena {} B (lower bound {}, TFLM greedy {}), scratch {} B, \
         flash data {} B; estimated {:.2} ms, {:.3} mJ; cut tensor {} B on the wire -> {}",
        a.target,
        c.report.layers.len(),
        c.report.macs,
        c.report.arena_bytes,
        c.report.arena_lower_bound_bytes,
        c.report.arena_tflm_greedy_bytes,
        c.report.scratch_bytes,
        c.report.const_bytes,
        est.latency_s * 1e3,
        est.energy_j * 1e3,
        c.report.output.bytes,
        a.output.display()
    );
    Ok(())
}

/// The GAP8 backend options of `clio compile`'s arguments (the backend checks the budgets).
fn gap8_options(a: &CompileArgs) -> clio_targets::gap8::Gap8Options {
    let d = clio_targets::gap8::Gap8Options::default();
    clio_targets::gap8::Gap8Options {
        graph: "device".into(),
        prefix: a.prefix.clone(),
        l1_budget_bytes: a.l1_budget.unwrap_or(d.l1_budget_bytes),
        l2_budget_bytes: a.l2_budget.unwrap_or(d.l2_budget_bytes),
        ..d
    }
}

/// The GAP8 path: `@device` lowered by `clio_targets::gap8` (its C, header, per-layer manifest
/// and clio's cluster kernels), the host shims under `gap8_shims/`, the cloud part and a
/// top-level manifest, written atomically into the output directory.
fn run_gap8(a: &CompileArgs, m: &Module, pipe: Option<String>) -> Result<(), Error> {
    use clio_targets::gap8;
    let opts = gap8_options(a);
    let c = gap8::lower(m, &opts).map_err(|e| Error::Format(e.to_string()))?;
    let cost = clio_targets::load_target("gap8").map_err(|e| Error::Format(e.to_string()))?;
    let g = m.graph("device").ok_or_else(|| Error::Format("no @device graph".into()))?;
    let nodes: Vec<_> = g.topo_order().map_err(|e| Error::Format(format!("cycle at {}", e.0)))?;
    let est = cost.nodes_cost(m, g, &nodes);
    let cloud = cloud_part(m);
    let dir = AtomicDir::new(&a.output)?;
    c.write_to(dir.path())?;
    gap8::write_shims(&dir.path().join("gap8_shims"))?;
    save_module(&cloud, &dir.path().join("cloud.clio"))?;
    let exports = write_cloud_exports(dir.path(), &cloud)?;
    let manifest = serde_json::json!({
        "model": a.input.display().to_string(),
        "target": "gap8",
        "cut": a.cut,
        "pipeline": pipe,
        "quantization": format!("{} (power-of-two Q formats)", c.report.scheme),
        "device": {
            "graph": "device",
            "source": c.source_name(),
            "header": c.header_name(),
            "layers_manifest": format!("{}.manifest.json", c.prefix),
            "shims": "gap8_shims/",
            "l3_image": if c.l3_image.is_empty() { None } else { Some(c.l3_image_name()) },
            "report": c.report,
            "estimate": { "cost_model": cost.name(), "latency_s": est.latency_s, "energy_j": est.energy_j },
        },
        "cloud": {
            "graphs": cloud.graph_names(),
            "module": "cloud.clio",
            "weights": if cloud.weights().is_empty() { None } else { Some("cloud.safetensors") },
            "exports": exports,
        },
    });
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Format(e.to_string()))?;
    clio::io::write_atomic(&dir.path().join("manifest.json"), text.as_bytes())?;
    dir.commit()?;
    println!(
        "compiled @device for gap8: {} layers, {} MACs ({} on the HWCE); L2 {} B, L1 {} B, weights {} B{}; \
         estimated {:.2} ms, {:.3} mJ -> {}",
        c.report.layers.len(),
        c.report.macs,
        c.report.hwce_macs,
        c.report.l2_bytes,
        c.report.l1_bytes,
        c.report.const_bytes,
        if c.l3_image.is_empty() {
            String::new()
        } else {
            format!(" ({} B of them in L3: {})", c.l3_image.len(), c.l3_image_name())
        },
        est.latency_s * 1e3,
        est.energy_j * 1e3,
        a.output.display()
    );
    Ok(())
}

/// `--target gap8 --cut K1,K2,...`: each cut through the default pipeline, lowered as one
/// variant of a single program (`clio_targets::gap8::lower_variants`); the cloud part of cut
/// `k` goes to `cloud_k<k>/` (its `cloud.clio` and exports).
fn run_gap8_variants(a: &CompileArgs, m: &Module) -> Result<(), Error> {
    use clio_targets::gap8;
    if a.pipeline.is_some() || m.graph("device").is_some() {
        return Err(Error::Format(
            "several cuts need a float model and the default pipeline (no --pipeline, no @device graph)".into(),
        ));
    }
    let mut parts = vec![];
    let mut pipelines = vec![];
    for k in a.cut.as_deref().unwrap_or_default().split(',') {
        let cut: u32 = k.trim().parse().map_err(|_| Error::Format(format!("--cut: `{k}` is not a cut index")))?;
        let mut one = m.clone();
        let args = CompileArgs { cut: Some(cut.to_string()), ..a.clone() };
        pipelines.push(prepare(&args, &mut one)?);
        parts.push((cut, one));
    }
    let refs: Vec<(u32, &Module)> = parts.iter().map(|(k, m)| (*k, m)).collect();
    let opts = gap8_options(a);
    let v = gap8::lower_variants(&refs, &opts).map_err(|e| Error::Format(e.to_string()))?;
    let dir = AtomicDir::new(&a.output)?;
    v.write_to(dir.path())?;
    gap8::write_shims(&dir.path().join("gap8_shims"))?;
    let mut clouds = serde_json::Map::new();
    for (k, part) in &parts {
        let cloud = cloud_part(part);
        let sub = dir.path().join(format!("cloud_k{k}"));
        std::fs::create_dir_all(&sub).map_err(|e| clio::error::IoError::new(&sub, "cannot create the directory", e))?;
        save_module(&cloud, &sub.join("cloud.clio"))?;
        let exports = write_cloud_exports(&sub, &cloud)?;
        clouds.insert(k.to_string(), serde_json::json!({ "dir": format!("cloud_k{k}"), "exports": exports }));
    }
    let manifest = serde_json::json!({
        "model": a.input.display().to_string(),
        "target": "gap8",
        "cuts": parts.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        "pipelines": pipelines,
        "quantization": format!("{} (power-of-two Q formats)", a.scheme.as_deref().unwrap_or("q8")),
        "device": {
            "header": v.header_name(),
            "sources": v.sources(),
            "shims": "gap8_shims/",
            "variants": v.report,
        },
        "cloud": clouds,
    });
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Format(e.to_string()))?;
    clio::io::write_atomic(&dir.path().join("manifest.json"), text.as_bytes())?;
    dir.commit()?;
    let r = &v.report;
    println!(
        "compiled {} variants for gap8 (cuts {}): shared L2 buffers {} B (separately {} B), L1 {} B, flash {} B -> {}",
        r.variants.len(),
        parts.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>().join(", "),
        r.shared_l2_bytes,
        r.unshared_l2_bytes,
        r.shared_l1_bytes,
        r.flash_bytes,
        a.output.display()
    );
    Ok(())
}
