//! Planning: which nodes are quantized, which activations fuse, which values must share one
//! format, and the format of every quantized value.

use super::{Config, Scheme};
use clio::ir::{Graph, Module, NodeId, Op, QScheme, Quant, Value};
use clio::quant::calib::{Calibration, RangeTarget};
use clio::quant::math::{choose_affine, pow2_frac};
use std::collections::{HashMap, HashSet};

/// How a node is rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A graph input (stays f32).
    Input,
    /// A weight read (rewritten where it is used).
    Weight,
    /// Kept in float.
    Float,
    /// Executed in the integer domain.
    Quant,
    /// A relu/clip fused into its producer's output range and removed (int8).
    Fused,
}

/// The plan of one graph.
pub(crate) struct Plan {
    pub kind: HashMap<NodeId, Kind>,
    /// For fused activations: the producer whose result replaces them.
    pub fused_into: HashMap<NodeId, NodeId>,
    /// Quantization of every value that is quantized somewhere, by producing node (result 0).
    pub quant: HashMap<NodeId, Quant>,
    /// Per-channel fractional bits of pow2 weights of conv/gemm nodes (needed for shifts).
    pub weight_frac: HashMap<NodeId, Vec<i32>>,
    /// Output formats lowered to keep Q-format shifts in range.
    pub shift_adjusted: i64,
    /// With `bias-correction`: the mean input of every weight position of every quantized
    /// conv2d / gemm ([`super::bias_correction::input_expectations`]).
    pub expectations: HashMap<NodeId, Vec<f64>>,
}

pub(super) fn is_data_movement(op: &Op) -> bool {
    matches!(
        op,
        Op::Flatten(_)
            | Op::Reshape(_)
            | Op::Squeeze(_)
            | Op::Unsqueeze(_)
            | Op::Transpose(_)
            | Op::Pad(_)
            | Op::ChannelSlice(_)
            | Op::Transmit(_)
    )
}

/// Ops whose result must have the operand's format (values are moved or selected, or clamped).
fn ties_operands(op: &Op) -> bool {
    is_data_movement(op) || matches!(op, Op::Relu | Op::Clip(_) | Op::MaxPool(_) | Op::AvgPool(_) | Op::Concat(_))
}

pub(crate) fn is_fusable_activation(op: &Op) -> bool {
    match op {
        Op::Relu => true,
        Op::Clip(c) => c.min == 0.0 && c.max > 0.0,
        _ => false,
    }
}

/// `%node (op)` for messages.
pub(crate) fn at(g: &Graph, id: NodeId) -> String {
    let n = g.node(id);
    format!("graph @{}, node %{} ({})", g.name(), n.name(), n.op.name())
}

/// Why `id` cannot be quantized under `scheme`, if it cannot.
fn unsupported(m: &Module, g: &Graph, id: NodeId, scheme: Scheme) -> Option<String> {
    let n = g.node(id);
    let ops = g.operands(id);
    let is_weight = |i: usize| ops.get(i).and_then(|v| g.weight_name(*v)).and_then(|w| m.weight(w)).is_some();
    let f32_weight = |i: usize| {
        ops.get(i)
            .and_then(|v| g.weight_name(*v))
            .and_then(|w| m.weight(w))
            .is_some_and(|w| w.quant.is_none() && w.data().as_f32().is_some())
    };
    let hint = format!("keep it in float with float-ops={}", n.op.name());
    match &n.op {
        Op::Conv2d(_) => {
            if !f32_weight(1) || (ops.len() > 2 && !f32_weight(2)) {
                return Some(format!("conv2d needs constant f32 filter and bias weights; {hint}"));
            }
            None
        }
        Op::Gemm(p) => {
            if p.trans_a {
                return Some(format!("gemm with trans_a = true is not supported; {hint}"));
            }
            if !f32_weight(1) || (ops.len() > 2 && !f32_weight(2)) {
                return Some(format!("gemm needs a constant f32 B (weights) and C (bias); {hint}"));
            }
            if ops.len() > 2 {
                let (bt, ct) = (g.value_type(ops[1])?, g.value_type(ops[2])?);
                let nn = if p.trans_b { bt.shape[0] } else { bt.shape[1] };
                if ct.shape.iter().product::<usize>() != nn {
                    return Some(format!("gemm bias must have one value per output feature ({nn}); {hint}"));
                }
            }
            None
        }
        Op::Add => {
            if is_weight(0) || is_weight(1) {
                return Some(format!("add with a constant operand is not supported; {hint}"));
            }
            None
        }
        Op::AvgPool(p) if p.count_include_pad && p.window.pads.iter().any(|x| *x > 0) => Some(format!(
            "avg_pool with count_include_pad = true and padding has no integer form (TFLite divides by the cells \
             inside the input); {hint}"
        )),
        Op::Softmax(_) if scheme != Scheme::Int8 => {
            Some(format!("softmax has no {} integer kernel; {hint}", scheme.name()))
        }
        Op::Pad(_) | Op::Concat(_) if ops.iter().enumerate().any(|(i, _)| is_weight(i)) => {
            Some(format!("{} of a constant is not supported; {hint}", n.op.name()))
        }
        Op::Relu
        | Op::Clip(_)
        | Op::MaxPool(_)
        | Op::AvgPool(_)
        | Op::GlobalAvgPool
        | Op::Softmax(_)
        | Op::Concat(_)
        | Op::Pad(_) => None,
        op if is_data_movement(op) => None,
        Op::BatchNorm(_) => Some(format!("batch_norm must be folded first (run fuse-bn before quantize), or {hint}")),
        Op::Quantize | Op::Dequantize => Some("the graph is already quantized".into()),
        op => Some(format!("`{}` has no integer kernel in scheme {}; {hint}", op.name(), scheme.name())),
    }
}

/// Union-find over node ids.
#[derive(Default)]
pub(super) struct Dsu(HashMap<NodeId, NodeId>);

impl Dsu {
    pub(super) fn find(&mut self, x: NodeId) -> NodeId {
        let p = *self.0.entry(x).or_insert(x);
        if p == x {
            return x;
        }
        let r = self.find(p);
        self.0.insert(x, r);
        r
    }
    pub(super) fn union(&mut self, a: NodeId, b: NodeId) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0.insert(ra.max(rb), ra.min(rb));
        }
    }
}

/// Builds the plan. `calib` holds the float graph's histograms by node name.
pub(crate) fn plan(m: &Module, g: &Graph, cfg: &Config, calib: &Calibration) -> Result<Plan, String> {
    let order = g.topo_order().map_err(|c| format!("{}: the graph has a cycle", at(g, c.0)))?;
    if let Some(id) = clio::quant::first_quantized_node(g) {
        return Err(format!("{}: the graph is already quantized (result type is not f32)", at(g, id)));
    }
    let mut kind: HashMap<NodeId, Kind> = HashMap::new();
    for &id in &order {
        let n = g.node(id);
        let k = match &n.op {
            Op::Input => Kind::Input,
            Op::Weight { .. } => Kind::Weight,
            _ if cfg.is_float(n.name(), n.op.name()) => Kind::Float,
            _ => {
                if let Some(why) = unsupported(m, g, id, cfg.scheme) {
                    return Err(format!("{}: not supported by scheme {}: {why}", at(g, id), cfg.scheme.name()));
                }
                Kind::Quant
            }
        };
        kind.insert(id, k);
    }
    let outputs: HashSet<NodeId> = g.outputs().iter().map(|v| v.node).collect();
    // Activation fusion: conv/gemm/add -> relu/clip(0, hi), the producer's only use.
    let mut fused_into = HashMap::new();
    let mut pre_activation: HashSet<NodeId> = HashSet::new();
    for &id in &order {
        if kind[&id] != Kind::Quant || !is_fusable_activation(&g.node(id).op) {
            continue;
        }
        let Some(src) = g.operand(id, 0) else { continue };
        let p = src.node;
        if kind.get(&p) != Some(&Kind::Quant)
            || !matches!(g.node(p).op, Op::Conv2d(_) | Op::Gemm(_) | Op::Add)
            || g.use_count(Value::of(p)) != 1
            || outputs.contains(&p)
        {
            continue;
        }
        pre_activation.insert(p);
        if cfg.scheme == Scheme::Int8 {
            kind.insert(id, Kind::Fused);
            fused_into.insert(id, p);
        }
    }
    // Values that need a format: results of quantized nodes and activation operands they read.
    let mut dsu = Dsu(HashMap::new());
    let mut needs: Vec<NodeId> = Vec::new();
    for &id in &order {
        match kind[&id] {
            Kind::Quant => {
                needs.push(id);
                for v in g.operands(id) {
                    if kind.get(&v.node) != Some(&Kind::Weight) {
                        needs.push(v.node);
                    }
                }
                if ties_operands(&g.node(id).op) {
                    for v in g.operands(id) {
                        if kind.get(&v.node) != Some(&Kind::Weight) {
                            dsu.union(id, v.node);
                        }
                    }
                }
            }
            Kind::Fused => {
                let p = fused_into[&id];
                dsu.union(id, p);
            }
            _ => {}
        }
    }
    // Pow2 schemes keep relu as a node but give the producer the activation's range.
    for p in &pre_activation {
        if cfg.scheme != Scheme::Int8 {
            if let Some((u, _)) = g.uses(Value::of(*p)).first() {
                dsu.union(*u, *p);
            }
        }
    }
    needs.sort();
    needs.dedup();
    let target = match cfg.scheme {
        Scheme::Int8 => RangeTarget::Affine { qmin: -128, qmax: 127 },
        Scheme::Q8 => RangeTarget::Pow2 { qmax: 127 },
        Scheme::Q16 => RangeTarget::Pow2 { qmax: 32767 },
    };
    // Class ranges: union of member ranges (pre-activation producers excluded).
    let mut class_range: HashMap<NodeId, (f64, f64)> = HashMap::new();
    let mut fixed: HashMap<NodeId, Quant> = HashMap::new();
    for &v in &needs {
        let r = dsu.find(v);
        if cfg.scheme == Scheme::Int8 && matches!(g.node(v).op, Op::Softmax(_)) && kind[&v] == Kind::Quant {
            fixed.insert(r, Quant::affine(1.0 / 256.0, -128));
            continue;
        }
        if pre_activation.contains(&v) {
            class_range.entry(r).or_insert((0.0, 0.0));
            continue;
        }
        let range = calib.histograms.get(g.node(v).name()).map(|h| h.range(cfg.range, target)).unwrap_or((0.0, 0.0));
        let e = class_range.entry(r).or_insert((0.0, 0.0));
        *e = (e.0.min(range.0), e.1.max(range.1));
    }
    let mut class_quant: HashMap<NodeId, Quant> = HashMap::new();
    for (r, (lo, hi)) in &class_range {
        let q = match cfg.scheme {
            Scheme::Int8 => {
                let (s, z) = choose_affine(*lo, *hi, -128, 127);
                Quant::affine(s, z)
            }
            Scheme::Q8 => Quant::pow2(pow2_frac(lo.abs().max(hi.abs()), 127)),
            Scheme::Q16 => Quant::pow2(pow2_frac(lo.abs().max(hi.abs()), 32767)),
        };
        class_quant.insert(*r, q);
    }
    for (r, q) in fixed {
        class_quant.insert(r, q);
    }
    let mut weight_frac = HashMap::new();
    let mut shift_adjusted = 0;
    if cfg.scheme != Scheme::Int8 {
        // Weight formats, then lower output formats until every out_shift is in 0..=31.
        let frac_of = |q: &Quant| match &q.scheme {
            QScheme::Pow2 { frac_bits } => frac_bits[0],
            QScheme::Affine { .. } => 0,
        };
        for &id in &order {
            if kind[&id] == Kind::Quant && matches!(g.node(id).op, Op::Conv2d(_) | Op::Gemm(_)) {
                let x = g.operand(id, 0).map(|v| v.node).ok_or("conv/gemm without input")?;
                let rx = dsu.find(x);
                let (lo, hi) = class_range.get(&rx).copied().unwrap_or((0.0, 0.0));
                let acc = Some((lo.abs().max(hi.abs()), frac_of(&class_quant[&rx])));
                let fw =
                    super::weights::pow2_weight_fracs(m, g, id, cfg, acc).map_err(|e| format!("{}: {e}", at(g, id)))?;
                weight_frac.insert(id, fw);
            }
        }
        for _ in 0..64 {
            let mut changed = false;
            for (&id, fw) in &weight_frac {
                let x = g.operand(id, 0).map(|v| v.node).ok_or("conv/gemm without input")?;
                let (rx, ry) = (dsu.find(x), dsu.find(id));
                let fx = frac_of(&class_quant[&rx]);
                let fy = frac_of(&class_quant[&ry]);
                let min_w = fw.iter().copied().min().unwrap_or(0);
                let max_w = fw.iter().copied().max().unwrap_or(0);
                let hi_limit = fx + min_w; // out_shift >= 0
                let lo_limit = fx + max_w - 31; // out_shift <= 31
                let new = fy.min(hi_limit).max(lo_limit);
                if new != fy {
                    class_quant.insert(ry, Quant::pow2(new));
                    shift_adjusted += 1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }
    let mut quant = HashMap::new();
    for &v in &needs {
        let r = dsu.find(v);
        let q = class_quant.get(&r).cloned().ok_or_else(|| format!("{}: no format was chosen", at(g, v)))?;
        quant.insert(v, q);
    }
    let mut expectations = HashMap::new();
    // The refusal check before calibration runs on an empty calibration (no samples).
    if cfg.bias_correction.is_on() && calib.samples > 0 {
        for &id in &order {
            let n = g.node(id);
            if kind[&id] != Kind::Quant || !matches!(n.op, Op::Conv2d(_) | Op::Gemm(_)) {
                continue;
            }
            let x = g.operand(id, 0).ok_or("conv/gemm without input")?;
            let map = calib.mean_maps.get(g.node(x.node).name()).ok_or_else(|| {
                format!(
                    "{}: bias-correction needs the calibration's mean of %{} (calibrate with mean maps)",
                    at(g, id),
                    g.node(x.node).name()
                )
            })?;
            let w_shape = g.operand(id, 1).and_then(|v| g.value_type(v)).map(|t| t.shape.clone()).unwrap_or_default();
            let out_hw = match n.ty().shape.as_slice() {
                [_, _, h, w] => (*h, *w),
                _ => (1, 1),
            };
            let e = super::bias_correction::input_expectations(&n.op, &w_shape, map, out_hw).ok_or_else(|| {
                format!("{}: the calibrated mean of its input does not match the layer's weights", at(g, id))
            })?;
            expectations.insert(id, e);
        }
    }
    Ok(Plan { kind, fused_into, quant, weight_frac, shift_adjusted, expectations })
}
