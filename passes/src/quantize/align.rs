//! Power-of-two range alignment (`quantize{align=true}`, q8 and q16 only).
//!
//! A power-of-two format with `f` fractional bits represents `[-(qmax+1), qmax] * 2^-f`; a
//! tensor whose calibrated range is just above such a bound falls to the next coarser format
//! and uses barely half the integer grid (up to 6 dB lost, about 3 dB on average). Affine
//! int8 has no such loss because its scale is free. Alignment gives the pow2 schemes that
//! freedom back without changing what the graph computes: it multiplies whole groups of
//! activations by a positive factor `a` in `[1, 2)` chosen so that their ranges land just
//! under a format bound, and compensates in the weights:
//!
//! * a `conv2d` / `gemm` whose result has factor `a_y` and whose input has factor `a_x` gets
//!   its filter / weight matrix multiplied by `a_y / a_x` and its bias by `a_y`;
//! * ops that are positively homogeneous pass a factor through unchanged, so their operands and
//!   result form one group (`relu`, `clip` with both bounds scaled, `max_pool`, `avg_pool`,
//!   `global_avg_pool`, `add`, `concat`, `pad` with fill 0, and the layout ops);
//! * everything else pins its operands and result to factor 1: graph inputs, float nodes
//!   (`float-ops`), `transmit` (the receiving graph is not rewritten, so a cut tensor keeps its
//!   scale), ops with a constant operand other than conv/gemm weights, conv/gemm whose weights
//!   are read elsewhere;
//! * a rescaled graph output gets a float `mul` by `1 / a` in front of it (kept in float, after
//!   the output's `dequantize`), so the graph's outputs keep their values. The output layer is
//!   where alignment matters most: the last requantization to 8 bits bounds the output SQNR.
//!
//! A group is free when none of its members is pinned; its factor minimises the mean over its
//! members of `log(MSE / signal power)` of the members' calibrated histograms, each weighted by
//! `1 / (positions per channel)` (the rounding noise of an `H x W` map reaches a pooled output
//! divided by `H x W`, a pooled value's own does not: in a ResNet the pooled features share the
//! last residual stream's factor), scaled and
//! quantized in the format the range method would choose for them (32 candidates
//! `2^(k/32)`, `k = 0, ..., 31`; the factor stays 1 unless it strictly improves). The calibration's
//! histograms are rescaled with their values, so the formats chosen afterwards are exactly
//! those of a calibration of the aligned float graph.
//!
//! ```text
//! %c = conv2d(%x, @w, @b)            %c = conv2d(%x, @w, @b)      (@w, @b multiplied by 1.27)
//! %r = clip(%c) {max = 6.0}     =>   %r = clip(%c) {max = 7.62}   (range 6.0 -> 7.62 < 127/16)
//! %p = conv2d(%r, @w2, @b2)          %p = conv2d(%r, @w2, @b2)    (@w2 divided by 1.27)
//! ```

use super::plan::{is_data_movement, is_fusable_activation, Dsu};
use super::{Config, Scheme};
use clio::ir::{Graph, Module, NodeId, Op, Tensor, TensorType, Value, Weight};
use clio::ops::PadMode;
use clio::quant::calib::{Calibration, Histogram, RangeTarget};
use clio::quant::math::pow2_frac;
use std::collections::{HashMap, HashSet};

/// Candidate factors per octave.
const STEPS: i32 = 32;

/// What [`align_pow2`] did.
#[derive(Clone, Debug, Default)]
pub struct Alignment {
    /// The factor of every rescaled value (`!= 1`), by node name, in graph order.
    pub factors: Vec<(String, f64)>,
    /// Groups of values that could be rescaled.
    pub free_groups: usize,
    /// Free groups whose chosen factor is not 1.
    pub rescaled_groups: usize,
    /// `conv2d` / `gemm` nodes whose weights were rescaled.
    pub rescaled_layers: usize,
    /// The `mul` nodes added in front of rescaled graph outputs (by name): they undo the factor
    /// in float and must stay float (the pass adds them to `float-ops`).
    pub compensations: Vec<String>,
}

/// Rescales graph `graph` of `m` so that its activation ranges fill power-of-two formats, and
/// rescales the matching histograms of `calib` (see the module documentation). The float graph
/// computes the same outputs up to f32 rounding of the rescaled weights.
pub fn align_pow2(m: &mut Module, graph: &str, calib: &mut Calibration, cfg: &Config) -> Result<Alignment, String> {
    let qmax = match cfg.scheme {
        Scheme::Q8 => 127,
        Scheme::Q16 => 32767,
        Scheme::Int8 => {
            return Err("align applies to the power-of-two schemes q8 and q16 (int8 scales are free)".into())
        }
    };
    let g = m.graph(graph).ok_or_else(|| format!("the module has no graph @{graph}"))?;
    let order = g.topo_order().map_err(|c| format!("graph @{graph}: cycle at node {:?}", c.0))?;
    let (factor, free_groups, rescaled_groups) = choose_factors(m, g, &order, calib, cfg, qmax);
    let mut out = Alignment { free_groups, rescaled_groups, ..Alignment::default() };
    let of = |id: NodeId| factor.get(&id).copied().unwrap_or(1.0);
    // Weight edits first (reading the graph), then the graph's clip bounds.
    let mut weight_edits: Vec<(String, f64)> = Vec::new();
    let mut clip_edits: Vec<(NodeId, f64)> = Vec::new();
    for &id in &order {
        let n = g.node(id);
        let fy = of(id);
        if fy != 1.0 {
            out.factors.push((n.name().to_string(), fy));
        }
        match &n.op {
            Op::Conv2d(_) | Op::Gemm(_) => {
                let fx = g.operand(id, 0).map(|v| of(v.node)).unwrap_or(1.0);
                if fx == 1.0 && fy == 1.0 {
                    continue;
                }
                let names = layer_weights(m, g, id).ok_or_else(|| format!("node %{}: weights vanished", n.name()))?;
                weight_edits.push((names[0].clone(), fy / fx));
                if let Some(b) = names.get(1) {
                    weight_edits.push((b.clone(), fy));
                }
                out.rescaled_layers += 1;
            }
            Op::Clip(_) if fy != 1.0 => clip_edits.push((id, fy)),
            _ => {}
        }
    }
    for (name, f) in weight_edits {
        let w = m.weights_mut().get_mut(&name).ok_or_else(|| format!("weight @{name} vanished"))?;
        let data = w.data_mut().as_f32_mut().ok_or_else(|| format!("weight @{name} is not f32"))?;
        for x in data {
            *x = (*x as f64 * f) as f32;
        }
    }
    let no_graph = || format!("the module has no graph @{graph}");
    let g = m.graph_mut(graph).ok_or_else(no_graph)?;
    for (id, f) in clip_edits {
        if let Op::Clip(c) = &mut g.node_mut(id).op {
            c.min = (c.min as f64 * f) as f32;
            c.max = (c.max as f64 * f) as f32;
        }
    }
    // Rescaled graph outputs: `mul` by 1 / factor, in float, in front of the output.
    let mut outputs = g.outputs().to_vec();
    for o in outputs.iter_mut() {
        let f = factor.get(&o.node).copied().unwrap_or(1.0);
        if f == 1.0 || o.result != 0 {
            continue;
        }
        let base = format!("{}.unalign", m.graph(graph).ok_or_else(no_graph)?.node(o.node).name());
        let inv = Tensor::from_f32([1], vec![(1.0 / f) as f32]).map_err(|e| e.to_string())?;
        let w = m.add_weight(&base, Weight::new(inv));
        let g = m.graph_mut(graph).ok_or_else(no_graph)?;
        let wv = g.weight_value(&w, TensorType::f32([1]));
        let y = g.add_op(&base, Op::Mul, &[*o, wv]).map_err(|e| format!("node %{base}: {e}"))?;
        out.compensations.push(g.node(y.node).name().to_string());
        *o = y;
    }
    m.graph_mut(graph).ok_or_else(no_graph)?.set_outputs(outputs);
    for (name, f) in &out.factors {
        if let Some(h) = calib.histograms.get_mut(name) {
            *h = h.scaled(*f);
        }
        if let Some(c) = calib.mean_maps.get_mut(name) {
            *c = c.scaled(*f);
        }
    }
    Ok(out)
}

/// Runs [`align_pow2`] and returns, with its report, the configuration to quantize the aligned
/// graph with: `cfg` whose `float-ops` also keep the output compensations in float.
pub fn align_for_quantize(
    m: &mut Module,
    graph: &str,
    calib: &mut Calibration,
    cfg: &Config,
) -> Result<(Alignment, Config), String> {
    let a = align_pow2(m, graph, calib, cfg)?;
    let mut cfg = cfg.clone();
    cfg.float_ops.extend(a.compensations.iter().cloned());
    Ok((a, cfg))
}

/// The weight names of conv/gemm `id` (filter, then bias if any) when they are f32 weights
/// read by this node only.
fn layer_weights(m: &Module, g: &Graph, id: NodeId) -> Option<Vec<String>> {
    let ops = g.operands(id);
    let mut names = Vec::new();
    for v in ops.iter().skip(1) {
        let name = g.weight_name(*v)?;
        let w = m.weight(name)?;
        if w.quant.is_some() || w.data().as_f32().is_none() || m.weight_use_count(name) != 1 {
            return None;
        }
        names.push(name.to_string());
    }
    (!names.is_empty()).then_some(names)
}

/// Ops that commute with multiplication by a positive factor (given their attributes are
/// scaled too, for `clip`).
fn passes_factor(op: &Op) -> bool {
    match op {
        Op::Pad(p) => p.mode != PadMode::Constant || p.value == 0.0,
        // The receiving graph would have to be rescaled too.
        Op::Transmit(_) => false,
        op if is_data_movement(op) => true,
        _ => matches!(
            op,
            Op::Relu | Op::Clip(_) | Op::MaxPool(_) | Op::AvgPool(_) | Op::GlobalAvgPool | Op::Add | Op::Concat(_)
        ),
    }
}

/// The factor of every value of a free group (values absent keep 1), the number of free
/// groups and the number of those rescaled.
fn choose_factors(
    m: &Module,
    g: &Graph,
    order: &[NodeId],
    calib: &Calibration,
    cfg: &Config,
    qmax: i32,
) -> (HashMap<NodeId, f64>, usize, usize) {
    let is_weight = |v: &Value| matches!(g.node(v.node).op, Op::Weight { .. });
    let mut dsu = Dsu::default();
    let mut pinned: Vec<NodeId> = Vec::new();
    let mut members: Vec<NodeId> = Vec::new();
    for &id in order {
        let n = g.node(id);
        let ops = g.operands(id);
        let acts: Vec<NodeId> = ops.iter().filter(|v| !is_weight(v)).map(|v| v.node).collect();
        match &n.op {
            Op::Weight { .. } => continue,
            Op::Input => pinned.push(id),
            _ if cfg.is_float(n.name(), n.op.name()) => {
                pinned.push(id);
                pinned.extend(acts);
            }
            Op::Conv2d(_) | Op::Gemm(_) if acts.len() == 1 && layer_weights(m, g, id).is_some() => {
                dsu.find(id);
            }
            op if passes_factor(op) && acts.len() == ops.len() && ops.iter().all(|v| v.result == 0) => {
                for a in acts {
                    dsu.union(id, a);
                }
            }
            _ => {
                pinned.push(id);
                pinned.extend(acts);
            }
        }
        members.push(id);
    }
    let pinned: HashSet<NodeId> = pinned.into_iter().map(|p| dsu.find(p)).collect();
    let mut group_of: HashMap<NodeId, usize> = HashMap::new();
    let mut groups: Vec<Vec<NodeId>> = Vec::new();
    for id in members {
        let r = dsu.find(id);
        if !pinned.contains(&r) {
            let i = *group_of.entry(r).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[i].push(id);
        }
    }
    let target = RangeTarget::Pow2 { qmax };
    let mut factor = HashMap::new();
    let mut rescaled = 0;
    for ids in &groups {
        // Members whose range the plan uses: not the pre-activation result of a fused producer.
        let hists: Vec<Member> = ids
            .iter()
            .filter(|id| !feeds_fused_activation(g, **id))
            .filter_map(|id| {
                let positions: usize = g.node(*id).ty().shape.iter().skip(2).product();
                let h = calib.histograms.get(g.node(*id).name())?;
                Some(Member { hist: h, power: h.mean_square(), weight: 1.0 / positions.max(1) as f64 })
            })
            .filter(|m| m.hist.count() > 0 && m.power > 0.0)
            .collect();
        let a = best_factor(&hists, cfg, target, qmax);
        if a != 1.0 {
            rescaled += 1;
            for id in ids {
                factor.insert(*id, a);
            }
        }
    }
    (factor, groups.len(), rescaled)
}

/// A conv/gemm/add whose only reader is a relu or `clip {min = 0}`: the plan formats it with
/// the activation's range.
fn feeds_fused_activation(g: &Graph, id: NodeId) -> bool {
    if !matches!(g.node(id).op, Op::Conv2d(_) | Op::Gemm(_) | Op::Add) || g.use_count(Value::of(id)) != 1 {
        return false;
    }
    g.users(id).first().is_some_and(|u| is_fusable_activation(&g.node(*u).op))
}

/// A value of a group, as the factor search sees it.
struct Member<'a> {
    hist: &'a Histogram,
    /// Mean square of the calibrated values (the signal power).
    power: f64,
    /// `1 / (positions per channel)`: the rounding noise of a value with `H x W` positions per
    /// channel reaches a pooled or classified output averaged over them (noise power divided
    /// by `H x W`), while a pooled value's own rounding (one position) reaches it undivided.
    weight: f64,
}

/// The candidate factor with the lowest weighted mean log relative quantization error over the
/// group's members.
fn best_factor(hists: &[Member], cfg: &Config, target: RangeTarget, qmax: i32) -> f64 {
    if hists.is_empty() {
        return 1.0;
    }
    let cost = |a: f64| -> f64 {
        hists
            .iter()
            .map(|m| {
                let s = m.hist.scaled(a);
                let (lo, hi) = s.range(cfg.range, target);
                let f = pow2_frac(lo.abs().max(hi.abs()), qmax);
                m.weight * (s.pow2_mse(f, qmax) / (a * a * m.power)).max(1e-30).ln()
            })
            .sum()
    };
    let mut best = (cost(1.0), 1.0);
    for k in 1..STEPS {
        let a = 2f64.powf(k as f64 / STEPS as f64);
        let c = cost(a);
        if c < best.0 - 1e-9 {
            best = (c, a);
        }
    }
    best.1
}
