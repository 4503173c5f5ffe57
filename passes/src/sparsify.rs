//! `sparsify`: unstructured magnitude sparsification of conv and fully-connected weights.
//!
//! Matches: the filter of every `conv2d` (operand 1, depthwise included) and the `B` matrix of
//! every `gemm` and `matmul` (operand 1) that is a constant f32 weight with at least `min-size`
//! elements and whose reader's name matches `layers` (globs, when given). A weight read by
//! several nodes is sparsified once.
//! Produces: the same weights with their smallest-magnitude elements set to exactly 0.0: with
//! `scope=layer` every weight gets `floor(sparsity * n)` zeros (already-zero elements count);
//! with `scope=global` the `floor(sparsity * N)` smallest magnitudes over all matched weights are
//! zeroed, so layers end up with different sparsities. Ties are broken by position, so the result
//! is deterministic. The achieved sparsity (zeros / matched elements, over all matched weights) is
//! recorded in the module attribute `sparsity` and in the statistics; a remark per weight gives
//! its zero count. Biases, batch-norm parameters and other weights are untouched. Shapes do not
//! change (backends may ignore the zeros; `clio stats` shows them). At `sparsity=0` the module is
//! left untouched. Preconditions: none. Idempotent.
//!
//! ```text
//! // sparsify{sparsity=0.5}
//! weight @w : tensor<2x2x1x1xf32> = dense<[0.1, -2.0, 0.3, -0.05]>   =>   weight @w : tensor<2x2x1x1xf32> = dense<[0.0, -2.0, 0.3, 0.0]>
//! module @m {                                                              module @m attributes {sparsity = 0.5} {
//! ```

use clio::ir::{Attr, Graph, Module, Op};
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};

/// Declaration of `sparsify`.
pub static INFO: PassInfo = PassInfo {
    name: "sparsify",
    summary: "Unstructured magnitude sparsification of conv2d / gemm / matmul weights",
    options: &[
        OptionInfo {
            name: "sparsity",
            kind: OptionKind::Float,
            default: None,
            help: "fraction of the matched weight elements set to zero, in [0, 1]",
        },
        OptionInfo {
            name: "scope",
            kind: OptionKind::Enum(&["layer", "global"]),
            default: Some("layer"),
            help: "the fraction applies to every weight, or to all matched weights ranked together",
        },
        OptionInfo {
            name: "min-size",
            kind: OptionKind::Int,
            default: Some("0"),
            help: "leave weights with fewer elements alone (e.g. the first conv, depthwise filters)",
        },
        OptionInfo {
            name: "layers",
            kind: OptionKind::Str,
            default: Some(""),
            help: "only weights read by nodes matching one of these globs (comma/space separated; quote it)",
        },
    ],
    statistics: &[
        StatInfo { name: "weights", help: "weight tensors matched" },
        StatInfo { name: "elements", help: "elements of the matched weights" },
        StatInfo { name: "zeros-before", help: "zero elements before" },
        StatInfo { name: "zeros-after", help: "zero elements after" },
        StatInfo { name: "sparsity-permille", help: "achieved sparsity of the matched weights, in 1/1000" },
    ],
};

/// Registers `sparsify`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| {
        let sparsity = o.float("sparsity")?;
        if !(0.0..=1.0).contains(&sparsity) {
            return Err(PassError::Option {
                pass: "sparsify".into(),
                message: format!("option `sparsity` must be in [0, 1], got {sparsity}"),
            });
        }
        let layers = o
            .str("layers")?
            .split([',', ' '])
            .map(|p| p.trim().trim_start_matches('%').to_string())
            .filter(|p| !p.is_empty())
            .collect();
        Ok(Box::new(Sparsify { sparsity, global: o.str("scope")? == "global", min_size: o.usize("min-size")?, layers }))
    });
}

/// The `sparsify` pass.
#[derive(Clone, Debug)]
pub struct Sparsify {
    /// Target fraction of zeros.
    pub sparsity: f64,
    /// Rank all matched weights together instead of per weight.
    pub global: bool,
    /// Weights with fewer elements are left alone.
    pub min_size: usize,
    /// Reader-name globs; empty = all.
    pub layers: Vec<String>,
}

impl Sparsify {
    /// Per-weight sparsification to `sparsity`.
    pub fn new(sparsity: f64) -> Self {
        Sparsify { sparsity, global: false, min_size: 0, layers: vec![] }
    }
}

/// The zero count of one weight that `sparsify` targets (a conv2d filter or a gemm / matmul `B`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightZeros {
    /// Graph of the (first) reader.
    pub graph: String,
    /// The (first) reading node.
    pub node: String,
    /// Its op.
    pub op: String,
    /// The weight.
    pub weight: String,
    /// Elements.
    pub elements: u64,
    /// Elements equal to zero.
    pub zeros: u64,
}

/// The conv2d filters and gemm / matmul `B` weights of a graph (f32, unquantized), with their
/// first reader, in topological order.
fn targets(m: &Module, g: &Graph) -> Vec<(String, String, String)> {
    let order = g.topo_order().unwrap_or_else(|_| g.node_ids().collect());
    let mut out = vec![];
    for id in order {
        let n = g.node(id);
        if !matches!(n.op, Op::Conv2d(_) | Op::Gemm(_) | Op::MatMul) {
            continue;
        }
        let Some(name) = g.operand(id, 1).and_then(|v| g.weight_name(v)) else { continue };
        let Some(w) = m.weight(name) else { continue };
        if w.quant.is_some() || w.data().as_f32().is_none() {
            continue;
        }
        out.push((name.to_string(), n.name().to_string(), n.op.name().to_string()));
    }
    out
}

/// Zero counts of every weight `sparsify` would target, over all graphs (each weight once, under
/// its first reader). `clio stats` uses it to show sparsity.
pub fn weight_zeros(m: &Module) -> Vec<WeightZeros> {
    let mut seen = std::collections::HashSet::new();
    let mut out = vec![];
    for g in m.graphs() {
        for (weight, node, op) in targets(m, g) {
            if !seen.insert(weight.clone()) {
                continue;
            }
            let Some(data) = m.weight(&weight).and_then(|w| w.data().as_f32()) else { continue };
            out.push(WeightZeros {
                graph: g.name().to_string(),
                node,
                op,
                weight,
                elements: data.len() as u64,
                zeros: data.iter().filter(|x| **x == 0.0).count() as u64,
            });
        }
    }
    out
}

/// The `k`-th smallest value (0-based) of `v` (reorders `v`).
fn kth(v: &mut [f32], k: usize) -> f32 {
    *v.select_nth_unstable_by(k, |a, b| a.total_cmp(b)).1
}

/// Zeroes elements with |x| < t, then elements with |x| == t in order until `budget` of those
/// are used; returns the budget left.
fn zero_below(data: &mut [f32], t: f32, mut ties: usize) -> usize {
    for x in data.iter_mut() {
        let a = x.abs();
        if a < t {
            *x = 0.0;
        } else if a == t && ties > 0 {
            *x = 0.0;
            ties -= 1;
        }
    }
    ties
}

impl Pass for Sparsify {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        let glob =
            |name: &str| self.layers.is_empty() || self.layers.iter().any(|p| crate::prune::select::glob(p, name));
        // Matched weights, each once: name -> (graph, reader, op).
        let mut matched: Vec<(String, String, String, String)> = vec![];
        // Weights matched so far, by index in the weight table.
        let mut seen = vec![false; m.weights().len()];
        for g in m.graphs() {
            for (weight, node, op) in targets(m, g) {
                let Some((i, _, w)) = m.weights().get_full(weight.as_str()) else { continue };
                if w.data().len() >= self.min_size.max(1)
                    && glob(&node)
                    && seen.get_mut(i).is_some_and(|s| !std::mem::replace(s, true))
                {
                    matched.push((weight, g.name().to_string(), node, op));
                }
            }
        }
        let data = |m: &Module, w: &str| m.weight(w).and_then(|w| w.data().as_f32()).map(|d| d.to_vec());
        let zeros = |d: &[f32]| d.iter().filter(|x| **x == 0.0).count();
        let mut elements = 0usize;
        let mut before = 0usize;
        let mut per_weight: Vec<(String, Vec<f32>)> = vec![];
        for (w, ..) in &matched {
            let d = data(m, w).unwrap_or_default();
            elements += d.len();
            before += zeros(&d);
            per_weight.push((w.clone(), d));
        }
        cx.stat("weights", matched.len() as i64);
        cx.stat("elements", elements as i64);
        cx.stat("zeros-before", before as i64);
        // The wanted zero count per weight (layer) or in total (global), then the cut.
        if self.global {
            let k = ((self.sparsity * elements as f64) + 1e-9).floor() as usize;
            if k > 0 {
                let mut all: Vec<f32> = per_weight.iter().flat_map(|(_, d)| d.iter().map(|x| x.abs())).collect();
                let t = kth(&mut all, k - 1);
                let below = all.iter().filter(|x| **x < t).count();
                let mut ties = k - below;
                for (_, d) in per_weight.iter_mut() {
                    ties = zero_below(d, t, ties);
                }
            }
        } else {
            for (_, d) in per_weight.iter_mut() {
                let k = ((self.sparsity * d.len() as f64) + 1e-9).floor() as usize;
                if k == 0 {
                    continue;
                }
                let mut abs: Vec<f32> = d.iter().map(|x| x.abs()).collect();
                let t = kth(&mut abs, k - 1);
                let below = abs.iter().filter(|x| **x < t).count();
                zero_below(d, t, k - below);
            }
        }
        let mut after = 0usize;
        let mut changed = false;
        for ((w, d), (_, graph, node, op)) in per_weight.into_iter().zip(&matched) {
            let z = zeros(&d);
            after += z;
            let pct = if d.is_empty() { 0.0 } else { 100.0 * z as f64 / d.len() as f64 };
            cx.note(format!("@{graph} %{node} ({op}) @{w}: {z} of {} weights zero ({pct:.1}%)", d.len()));
            let weight = m.weights_mut().get_mut(&w).ok_or_else(|| PassError::failed("sparsify", "weight vanished"))?;
            if weight.data().as_f32() != Some(&d[..]) {
                if let Some(dst) = weight.data_mut().as_f32_mut() {
                    dst.copy_from_slice(&d);
                    changed = true;
                }
            }
        }
        cx.stat("zeros-after", after as i64);
        let achieved = if elements == 0 { 0.0 } else { after as f64 / elements as f64 };
        cx.stat("sparsity-permille", (achieved * 1000.0).round() as i64);
        if changed {
            m.attrs.insert("sparsity".into(), Attr::Float(achieved as f32));
        }
        Ok(())
    }
}
