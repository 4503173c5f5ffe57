//! `clio quantize`: quantize a model (after a preparation pipeline, `fuse-bn` by default),
//! save it, and report the quality of the integer model against the float one: per-layer SQNR
//! of the dequantized integer activations vs the float activations, the output SQNR and the
//! top-1 agreement on the samples.

use crate::load::{load_model, InputArgs};
use clap::Args;
use clio::interp::{IntEvaluator, Interpreter};
use clio::ir::{Graph, Module, Op, Tensor};
use clio::pass::{Pass, PassContext, PassManager};
use clio::quant::calib::{calibrate, load_samples, CalibOptions, CalibSource, RangeMethod};
use clio::quant::math::{dequantize_values, SqnrAcc};
use clio::Error;
use clio_passes::quantize::align::align_for_quantize;
use clio_passes::quantize::{BiasCorrection, Config, Quantize, Scheme, INFO};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::PathBuf;

/// Arguments of `clio quantize`.
#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The model: .onnx, .tflite or .clio.
    pub input: PathBuf,
    /// Quantization scheme.
    #[arg(long, default_value = "int8", value_parser = ["int8", "q8", "q16"])]
    pub scheme: String,
    /// Calibration samples: an .npy file (split along its leading dimension) or a directory of
    /// .npy files; `random[:SEED]` calibrates on random inputs (smoke tests only).
    #[arg(long, value_name = "PATH")]
    pub calib: String,
    /// Write the quantized module to OUT.clio + OUT.safetensors (atomically).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Weight granularity.
    #[arg(long, default_value = "per-channel", value_parser = ["per-channel", "per-tensor"])]
    pub weights: String,
    /// Activation range choice.
    #[arg(long, default_value = "minmax", value_parser = ["minmax", "percentile", "mse"])]
    pub range: String,
    /// Percentile for --range percentile.
    #[arg(long, default_value_t = 99.99)]
    pub percentile: f64,
    /// Ops (or %nodes) kept in float, separated by ':' or ','.
    #[arg(long, default_value = "")]
    pub float_ops: String,
    /// Pipeline run before quantization.
    #[arg(long, default_value = "fuse-bn")]
    pub pre: String,
    /// Use at most N calibration samples (0: all).
    #[arg(long, default_value_t = 0)]
    pub samples: usize,
    /// Samples for the quality report (default: the calibration samples).
    #[arg(long, value_name = "PATH")]
    pub eval: Option<String>,
    /// Evaluate on at most N samples (0: all).
    #[arg(long, default_value_t = 0)]
    pub eval_samples: usize,
    /// q8/q16: rescale activation groups (weights compensate, outputs unchanged) so that their
    /// calibrated ranges fill power-of-two formats; the report compares against the rescaled
    /// float model.
    #[arg(long)]
    pub align: bool,
    /// Bias correction: `weights` subtracts from each conv/gemm bias the mean output shift that
    /// rounding its weights causes on the calibration samples; `measured` then moves each
    /// integer bias, layer by layer, by the mean error the integer interpreter shows on
    /// `--correction-samples` samples (one integer run per layer and sample).
    #[arg(long, default_value = "none", value_parser = ["none", "weights", "measured"])]
    pub bias_correction: String,
    /// Calibration samples run by `--bias-correction measured` (0: all).
    #[arg(long, default_value_t = 32)]
    pub correction_samples: usize,
    /// Seed for `random` calibration.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub input_args: InputArgs,
}

/// Quality of a quantized graph against its float original.
#[derive(Debug, Default)]
pub struct QualityReport {
    /// Per quantized value, in execution order: node name, op, type, SQNR accumulator.
    pub layers: Vec<(String, String, String, SqnrAcc)>,
    /// Per graph output.
    pub outputs: Vec<SqnrAcc>,
    /// Samples whose arg-max (last axis, every row) agrees, and samples compared.
    pub top1: (usize, usize),
}

/// The float node whose value a quantized node `name` of `q` approximates.
fn reference_name(float: &Graph, q: &Graph, name: &str) -> Option<String> {
    let qid = q.find(name)?;
    if matches!(q.node(qid).op, Op::Quantize) {
        let src = q.operand(qid, 0)?;
        return Some(q.node(src.node).name().to_string());
    }
    let fid = float.find(name)?;
    // An activation fused into this node: compare with the activation's float output.
    let users = float.users(fid);
    if let [u] = users.as_slice() {
        let un = float.node(*u);
        if matches!(un.op, Op::Relu | Op::Clip(_)) && q.find(un.name()).is_none() {
            return Some(un.name().to_string());
        }
    }
    Some(name.to_string())
}

fn argmax_rows(t: &Tensor) -> Vec<usize> {
    let Some(v) = t.as_f32() else { return vec![] };
    let last = *t.shape().last().unwrap_or(&1);
    if last == 0 {
        return vec![];
    }
    v.chunks(last)
        .map(|r| r.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, x)| if *x > b.1 { (i, *x) } else { b }).0)
        .collect()
}

/// Runs both graphs on `samples` and compares.
pub fn evaluate(float: &Module, quant: &Module, graph: &str, samples: &[Tensor]) -> Result<QualityReport, Error> {
    let fi = Interpreter::new(float, graph)?;
    let qi = Interpreter::with_evaluator(quant, graph, IntEvaluator::new())?;
    let (fg, qg) = (fi.graph(), qi.graph());
    let mut layers: IndexMap<String, (String, String, SqnrAcc)> = IndexMap::new();
    let mut outputs = vec![SqnrAcc::default(); qg.outputs().len()];
    let mut top1 = (0, 0);
    for s in samples {
        let mut fvals: HashMap<String, Tensor> = HashMap::new();
        let fout = fi.run_observed(std::slice::from_ref(s), &mut |id, t| {
            if t.as_f32().is_some() && !matches!(fg.node(id).op, Op::Weight { .. }) {
                fvals.insert(fg.node(id).name().to_string(), t.clone());
            }
        })?;
        let mut qvals: Vec<(String, String, String, Vec<f32>)> = Vec::new();
        let qout = qi.run_observed(std::slice::from_ref(s), &mut |id, t| {
            let n = qg.node(id);
            if matches!(n.op, Op::Weight { .. }) {
                return;
            }
            if let Some(q) = &n.ty().quant {
                qvals.push((
                    n.name().to_string(),
                    n.op.name().to_string(),
                    clio::text::type_string(n.ty()),
                    dequantize_values(t, q),
                ));
            }
        })?;
        for (name, op, ty, v) in qvals {
            let Some(r) = reference_name(fg, qg, &name).and_then(|r| fvals.get(&r)) else { continue };
            let Some(rv) = r.as_f32() else { continue };
            if rv.len() == v.len() {
                layers.entry(name).or_insert_with(|| (op, ty, SqnrAcc::default())).2.add(rv, &v);
            }
        }
        let mut agree = true;
        for (i, (f, q)) in fout.iter().zip(&qout).enumerate() {
            if let (Some(a), Some(b)) = (f.as_f32(), q.as_f32()) {
                outputs[i].add(a, b);
            }
            if argmax_rows(f) != argmax_rows(q) {
                agree = false;
            }
        }
        top1.0 += usize::from(agree);
        top1.1 += 1;
    }
    Ok(QualityReport { layers: layers.into_iter().map(|(n, (o, t, a))| (n, o, t, a)).collect(), outputs, top1 })
}

fn fmt_db(db: f64) -> String {
    if db.is_infinite() && db > 0.0 {
        "exact".into()
    } else {
        format!("{db:.2}")
    }
}

/// Runs `clio quantize`.
pub fn run(a: QuantizeArgs) -> Result<(), Error> {
    let mut m = load_model(&a.input, &a.input_args)?;
    if !a.pre.trim().is_empty() {
        let mut pm = PassManager::from_pipeline(&clio_passes::registry(), &a.pre)?;
        pm.run(&mut m)?;
    }
    let graph = m.graph_names().into_iter().next().ok_or_else(|| Error::Format("the module has no graph".into()))?;
    let range = match a.range.as_str() {
        "percentile" => RangeMethod::Percentile(a.percentile),
        "mse" => RangeMethod::Mse,
        _ => RangeMethod::MinMax,
    };
    let cfg = Config {
        scheme: Scheme::parse(&a.scheme).unwrap_or(Scheme::Int8),
        per_channel: a.weights == "per-channel",
        float_ops: a
            .float_ops
            .split([':', ','])
            .map(|s| s.trim().trim_start_matches('%').to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        calib: a.calib.clone(),
        range,
        samples: a.samples,
        seed: a.seed,
        graph: graph.clone(),
        bias_correction: BiasCorrection::parse(&a.bias_correction).unwrap_or_default(),
        correction_samples: a.correction_samples,
        ..Config::default()
    };
    let source = cfg.source().map_err(Error::Format)?;
    let calib_opts = CalibOptions {
        max_samples: (a.samples > 0).then_some(a.samples),
        mean_maps: cfg.bias_correction.is_on(),
        ..CalibOptions::default()
    };
    let mut calibration = calibrate(&m, &graph, &source, &calib_opts)?;
    // Aligned here rather than inside the pass, so that the report compares with the rescaled
    // float model.
    let (aligned, cfg) = if a.align {
        let with_align = Config { align: true, ..cfg };
        let (al, cfg) = align_for_quantize(&mut m, &graph, &mut calibration, &with_align)
            .map_err(|e| Error::Format(format!("quantize: {e}")))?;
        (Some(al), Config { align: false, ..cfg })
    } else {
        (None, cfg)
    };
    let float = m.clone();
    let mut pass = Quantize::new(cfg).with_calibration(calibration);
    let mut cx = PassContext::new(&INFO, clio::Limits::default());
    pass.run(&mut m, &mut cx)?;
    clio::verify::verify_module(&m)?;
    let (stats, _) = cx.finish();
    if let Some(out) = &a.output {
        clio::io::save_module(&m, out)?;
    }
    let eval_source = match &a.eval {
        Some(p) => CalibSource::parse(p, 8, a.seed)?,
        None => source,
    };
    let input_ty = {
        let g = float.graph(&graph).ok_or_else(|| Error::Format("graph vanished".into()))?;
        g.node(g.inputs()[0]).ty().clone()
    };
    let samples = load_samples(&eval_source, &input_ty, (a.eval_samples > 0).then_some(a.eval_samples))?;
    let report = evaluate(&float, &m, &graph, &samples)?;
    let stat_line: Vec<String> = stats.iter().filter(|(_, v)| **v != 0).map(|(k, v)| format!("{k}={v}")).collect();
    println!("quantize: scheme {}, weights {}, range {}: {}", a.scheme, a.weights, a.range, stat_line.join(", "));
    if let Some(al) = &aligned {
        println!(
            "align: {} of {} free activation groups rescaled ({} values, {} layers, {} outputs compensated by a float mul); \
             layers below compare with the rescaled float model",
            al.rescaled_groups,
            al.free_groups,
            al.factors.len(),
            al.rescaled_layers,
            al.compensations.len()
        );
    }
    println!("{:<40} {:<16} {:>10}  format", "layer", "op", "SQNR dB");
    for (name, op, ty, acc) in &report.layers {
        let fmt = ty.split_once(", ").map(|(_, q)| q.trim_end_matches('>')).unwrap_or(ty);
        let fmt: String = fmt.chars().take(48).collect();
        println!("{name:<40} {op:<16} {:>10}  {fmt}", fmt_db(acc.db()));
    }
    for (i, o) in report.outputs.iter().enumerate() {
        println!("output {i}: SQNR {} dB over {} samples", fmt_db(o.db()), report.top1.1);
    }
    let (ok, n) = report.top1;
    println!("top-1 agreement: {ok}/{n} ({:.1}%)", if n > 0 { 100.0 * ok as f64 / n as f64 } else { 0.0 });
    if let Some(out) = &a.output {
        println!("wrote {}", out.display());
    }
    Ok(())
}
