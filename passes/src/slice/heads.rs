//! Per-slice cloud heads: copies of the cloud graph whose input has only the first `i` channels
//! of the cut tensor.
//!
//! The *sliced region* is what the narrower input reaches before the first channel-mixing layer:
//! channel-wise ops (activations, pooling, padding, `batch_norm` / `scale_shift`, depthwise
//! convs, `flatten`, elementwise ops between sliced values) run on `i` channels, and the
//! *first layers* (`conv2d` with `groups = 1`, `gemm`, `matmul` reading a sliced value) read
//! only the first `i` input channels of their weights. Those first layers, and the per-channel
//! parameters inside the region, get per-slice weights `@<weight>.s<i>` initialised from the
//! original's first channels; every later layer keeps reading the original weight names, so the
//! heads share (tie) them, visibly in the IR. Batch norms after the region keep tied scale and
//! shift but read per-head running statistics (see [`BnStats`]).

use crate::prune::apply::slice_axis;
use clio::ir::{Graph, Module, NodeId, Op, Value, Weight};
use rustc_hash::{FxHashMap, FxHashSet};

/// What slicing does to one node of the region.
#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    /// Channel-wise without parameters: runs unchanged on fewer channels.
    ChannelWise,
    /// Channel-wise with per-channel constants: slice operand `slot` along `axis`.
    Params(Vec<(usize, usize)>),
    /// Depthwise conv with channel multiplier `mult`: `groups` follows the slice.
    Depthwise {
        /// Output channels per input channel.
        mult: usize,
    },
    /// `flatten` from axis 1: each channel becomes `block` consecutive features.
    Flatten {
        /// Features per channel.
        block: usize,
    },
    /// First channel-mixing layer: its weight operand 1 keeps the first `i * block` positions
    /// of `axis`; its bias (if any) becomes per-slice too.
    First {
        /// The weight axis that reads the sliced value.
        axis: usize,
        /// Features per channel of the value it reads.
        block: usize,
    },
}

/// The sliced region of a graph below a value.
#[derive(Clone, Debug, Default)]
pub struct Region {
    /// Role of every node in the region (channel-wise ops and first layers).
    pub roles: FxHashMap<NodeId, Role>,
    /// Features per channel of every sliced value (1 for NCHW activations).
    pub block: FxHashMap<Value, usize>,
}

/// Why the region cannot be sliced.
#[derive(Clone, Debug, PartialEq)]
pub enum RegionError {
    /// A residual `add` of the sliced value with a full-width branch: its identity skip (operand
    /// `slot`) must become a 1x1 conv first (skip-to-conv).
    NeedsSkipConv {
        /// The add.
        add: NodeId,
        /// Operand slot of the identity skip.
        slot: usize,
    },
    /// Anything else, with the reason.
    Unsupported(String),
}

/// A constant operand of `node`, with its channel axis facing axis 1 of an `out_rank` result,
/// or `None` when it broadcasts over channels.
fn param_axis(g: &Graph, v: Value, out_rank: usize, channels: usize) -> Result<Option<usize>, String> {
    let ty = g.value_type(v).ok_or("operand without type")?;
    if ty.rank() == 1 && out_rank >= 2 && ty.shape[0] == channels {
        // batch_norm / scale_shift / prelu parameters are [C].
        return Ok(Some(0));
    }
    let shift = out_rank.saturating_sub(ty.rank());
    if ty.rank() + shift != out_rank || shift > 1 {
        return Ok(None);
    }
    let axis = 1 - shift;
    match ty.shape[axis] {
        1 => Ok(None),
        d if d == channels => Ok(Some(axis)),
        d => Err(format!("constant with {d} positions on the channel axis of a {channels}-channel value")),
    }
}

/// Finds the sliced region of graph `g` below `start`.
pub fn sliced_region(m: &Module, g: &Graph, start: Value) -> Result<Region, RegionError> {
    let unsupported = |id: NodeId, why: &str| {
        RegionError::Unsupported(format!("%{} ({}) {why}", g.node(id).name(), g.node(id).op.name()))
    };
    let mut region = Region::default();
    region.block.insert(start, 1);
    let order = g.topo_order().map_err(|c| RegionError::Unsupported(format!("cycle at {}", c.0)))?;
    for id in order {
        let ops = g.operand_list(id);
        let sliced: Vec<usize> = (0..ops.len()).filter(|s| region.block.contains_key(&ops[*s])).collect();
        if sliced.is_empty() || id == start.node {
            continue;
        }
        let node = g.node(id);
        let x = ops[sliced[0]];
        let block = region.block[&x];
        let out_rank = node.results.first().map(|t| t.rank()).unwrap_or(0);
        let channels = g.value_type(x).map(|t| t.shape.get(1).copied().unwrap_or(1)).unwrap_or(1);
        let weight_operands: Vec<usize> =
            (0..ops.len()).filter(|s| !sliced.contains(s) && g.weight_name(ops[*s]).is_some()).collect();
        let activations: Vec<usize> =
            (0..ops.len()).filter(|s| !sliced.contains(s) && g.weight_name(ops[*s]).is_none()).collect();
        let role = match &node.op {
            Op::Relu | Op::Clip(_) | Op::Sigmoid | Op::HardSigmoid(_) | Op::HardSwish => Role::ChannelWise,
            Op::MaxPool(_) | Op::AvgPool(_) | Op::GlobalAvgPool if block == 1 => Role::ChannelWise,
            Op::Pad(p) if block == 1 && p.pads.len() >= 4 => {
                let r = p.pads.len() / 2;
                if p.pads[1] != 0 || p.pads[r + 1] != 0 {
                    return Err(unsupported(id, "pads the channel axis of the sliced tensor"));
                }
                Role::ChannelWise
            }
            Op::BatchNorm(_) | Op::ScaleShift | Op::PRelu | Op::Add | Op::Sub | Op::Mul | Op::Div => {
                if !activations.is_empty() {
                    if let (Op::Add, Some(crate::skip_to_conv::Residual::Identity(slot))) =
                        (&node.op, crate::skip_to_conv::classify_residual(g, id))
                    {
                        if sliced.contains(&slot) {
                            return Err(RegionError::NeedsSkipConv { add: id, slot });
                        }
                    }
                    return Err(unsupported(id, "combines the sliced tensor with a full-width tensor"));
                }
                if block != 1 && !weight_operands.is_empty() {
                    return Err(unsupported(id, "has per-feature constants after a flatten of the sliced tensor"));
                }
                let mut params = vec![];
                for s in weight_operands {
                    match param_axis(g, ops[s], out_rank, channels) {
                        Ok(Some(axis)) => params.push((s, axis)),
                        Ok(None) => {}
                        Err(e) => return Err(unsupported(id, &e)),
                    }
                }
                if params.is_empty() {
                    Role::ChannelWise
                } else {
                    Role::Params(params)
                }
            }
            Op::Conv2d(c) if sliced == [0] && block == 1 => {
                let w = ops.get(1).and_then(|v| g.weight_name(*v)).and_then(|n| m.weight(n));
                let Some(w) = w else { return Err(unsupported(id, "has a filter that is not a weight")) };
                let ws = w.data().shape().to_vec();
                if c.groups == 1 {
                    Role::First { axis: 1, block: 1 }
                } else if c.is_depthwise(channels) && ws.len() == 4 && ws[1] == 1 && ws[0] % channels == 0 {
                    Role::Depthwise { mult: ws[0] / channels }
                } else {
                    return Err(unsupported(id, "is a grouped conv (neither depthwise nor dense)"));
                }
            }
            Op::Gemm(gm) if sliced == [0] && !gm.trans_a && out_rank == 2 => {
                Role::First { axis: if gm.trans_b { 1 } else { 0 }, block }
            }
            Op::MatMul if sliced == [0] && out_rank == 2 => Role::First { axis: 0, block },
            Op::Flatten(f) if f.axis == 1 => {
                let shape = g.value_type(x).map(|t| t.shape.clone()).unwrap_or_default();
                Role::Flatten { block: block * shape.iter().skip(2).product::<usize>() }
            }
            Op::Squeeze(s) if !s.axes.contains(&0) && !s.axes.contains(&1) => Role::ChannelWise,
            _ => return Err(unsupported(id, "reads the sliced tensor but is neither channel-wise nor a dense layer")),
        };
        if let Role::First { .. } = role {
            if ops.get(1).and_then(|v| g.weight_name(*v)).is_none() {
                return Err(unsupported(id, "has a weight operand that is not a constant"));
            }
        } else {
            let out_block = match role {
                Role::Flatten { block } => block,
                _ => block,
            };
            for r in 0..node.results.len() {
                region.block.insert(Value { node: id, result: r as u32 }, out_block);
            }
        }
        region.roles.insert(id, role);
    }
    for o in g.outputs() {
        if region.block.contains_key(o) {
            return Err(RegionError::Unsupported(format!(
                "output %{} is reached by the sliced tensor without a channel-mixing layer",
                g.node(o.node).name()
            )));
        }
    }
    Ok(region)
}

/// The first `n` positions of `axis` of a module weight, as a new weight `<name>.s<size>`.
fn per_slice_weight(m: &mut Module, name: &str, axis: Option<usize>, n: usize, size: usize) -> Result<String, String> {
    let t = m.weight(name).ok_or_else(|| format!("weight @{name} missing"))?.data().clone();
    let t = match axis {
        Some(axis) => {
            let keep: Vec<usize> = (0..n).collect();
            if t.shape().get(axis).is_none_or(|d| *d < n) {
                return Err(format!("weight @{name} has fewer than {n} positions on axis {axis}"));
            }
            slice_axis(&t, axis, &keep).ok_or_else(|| format!("weight @{name} is not f32"))?
        }
        None => t,
    };
    Ok(m.add_weight(&format!("{name}.s{size}"), Weight::new(t)))
}

/// Weights of one head, split by ownership.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct HeadWeights {
    /// Weights only this head reads (its first layers and sliced per-channel parameters).
    pub per_slice: Vec<String>,
    /// Weights every head reads (tied).
    pub tied: Vec<String>,
}

/// Whose running statistics a head's batch norms after the sliced region read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BnStats {
    /// Per-head copies `@<mean>.s<i>` / `@<var>.s<i>` (scale and shift stay tied): each head's
    /// activations have their own statistics, which one shared running estimate averages away
    /// (the heads' evaluation accuracy suffers; slimmable networks' "switchable" statistics).
    #[default]
    PerHead,
    /// Shared by all heads, like every other later weight.
    Tied,
}

/// Builds head graph `name` from `cloud` (whose only input is the cut tensor) for a slice of
/// `size` channels, adding its per-slice weights to `m`.
pub fn build_head(
    m: &mut Module,
    cloud: &Graph,
    region: &Region,
    name: &str,
    size: usize,
    bn_stats: BnStats,
) -> Result<HeadWeights, String> {
    let order = cloud.topo_order().map_err(|c| format!("cycle at {}", c.0))?;
    let mut head = Graph::new(name);
    let mut map: FxHashMap<NodeId, NodeId> = FxHashMap::default();
    // Tied weights listed so far (names borrowed from `cloud`).
    let mut tied: FxHashSet<&str> = FxHashSet::default();
    let mut weights = HeadWeights::default();
    for id in order {
        let node = cloud.node(id);
        match &node.op {
            Op::Input => {
                let mut ty = node.ty().clone();
                if ty.rank() < 2 {
                    return Err(format!("cut tensor %{} has no channel axis", node.name()));
                }
                ty.shape[1] = size;
                map.insert(id, head.add_input(node.name(), ty).node);
                continue;
            }
            Op::Weight { .. } => continue,
            _ => {}
        }
        // Which weight operands become per-slice, and how.
        let mut sliced_slots: FxHashMap<usize, (Option<usize>, usize)> = FxHashMap::default();
        let mut op = node.op.clone();
        match region.roles.get(&id) {
            Some(Role::Params(params)) => {
                for (slot, axis) in params {
                    sliced_slots.insert(*slot, (Some(*axis), size));
                }
            }
            Some(Role::Depthwise { mult }) => {
                sliced_slots.insert(1, (Some(0), size * mult));
                sliced_slots.insert(2, (Some(0), size * mult));
                if let Op::Conv2d(c) = &mut op {
                    c.groups = size;
                }
            }
            Some(Role::First { axis, block }) => {
                sliced_slots.insert(1, (Some(*axis), size * block));
                sliced_slots.insert(2, (None, 0));
            }
            None if bn_stats == BnStats::PerHead && matches!(op, Op::BatchNorm(_)) => {
                // Operands: x, scale, shift, mean, var.
                sliced_slots.insert(3, (None, 0));
                sliced_slots.insert(4, (None, 0));
            }
            _ => {}
        }
        let mut operands = vec![];
        for (slot, &v) in cloud.operand_list(id).iter().enumerate() {
            let Some(wname) = cloud.weight_name(v) else {
                let new = map.get(&v.node).ok_or_else(|| format!("%{} read before defined", node.name()))?;
                operands.push(Value { node: *new, result: v.result });
                continue;
            };
            let per_slice;
            let use_name = match sliced_slots.get(&slot) {
                Some((axis, n)) => {
                    per_slice = per_slice_weight(m, wname, *axis, *n, size)?;
                    weights.per_slice.push(per_slice.clone());
                    per_slice.as_str()
                }
                None => {
                    if tied.insert(wname) {
                        weights.tied.push(wname.to_string());
                    }
                    wname
                }
            };
            let ty = m.weight(use_name).ok_or_else(|| format!("weight @{use_name} missing"))?.ty();
            operands.push(head.weight_value(use_name, ty));
        }
        let new = head.add_node(node.name(), op, &operands, node.results.clone());
        map.insert(id, new);
    }
    let outs = cloud
        .outputs()
        .iter()
        .map(|o| map.get(&o.node).map(|n| Value { node: *n, result: o.result }))
        .collect::<Option<Vec<_>>>()
        .ok_or("an output is not computed by the cloud graph")?;
    head.set_outputs(outs);
    clio::analysis::refresh_types(&mut head).map_err(|e| e.to_string())?;
    m.add_graph(head);
    Ok(weights)
}
