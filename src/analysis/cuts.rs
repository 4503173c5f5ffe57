//! Cut points: where a graph can be split into a device part and a cloud part so that exactly
//! one tensor crosses the link (Clio's partition points).
//!
//! A node `n` is a *single-tensor cut* when every path from the graph inputs to the graph
//! outputs goes through it: `n` dominates a virtual sink (fed by every output) and
//! post-dominates a virtual source (feeding every input), computed on the activation graph
//! (weight reads excluded) with petgraph's dominator algorithm. Its one result is the cut
//! tensor; everything upstream of it (inclusive) is the device part, the rest the cloud part.
//! Cuts never fall inside a residual block: a block's inside is bypassed by its skip path.
//!
//! With [`Granularity::Block`] (the default, as in Clio) the single-tensor cuts are further
//! restricted to layer and block boundaries:
//! * not between an op and its trailing normalisation / activation (`batch_norm`,
//!   `scale_shift`, `relu`, `clip`, `sigmoid`, `hard_sigmoid`, `hard_swish`, `prelu`): the cut
//!   goes after the activation;
//! * not inside a depthwise-separable bottleneck (MobileNet's inverted residual): not after a
//!   depthwise conv's layer (its 1x1 projection follows), and not after a channel-expanding
//!   1x1 conv's layer that feeds a depthwise conv.
//!
//! [`Granularity::Layer`] keeps every single-tensor cut.
//!
//! Each cut has a stable id: its index `k` in order (`k` = number of blocks, i.e. cut
//! points, before it; `k = 0` is the graph input itself: nothing runs on the device), and the
//! name of the node producing the cut tensor. Both are accepted wherever a cut is named.

use super::{graph_cost, liveness};
use crate::ir::{Graph, Module, NodeId, Op, Value};
use petgraph::algo::dominators::simple_fast;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{HashMap, HashSet};

/// Which single-tensor cuts to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// Block (and layer) boundaries only, as Clio does.
    #[default]
    Block,
    /// Every single-tensor cut.
    Layer,
}

impl Granularity {
    /// Parses `block` / `layer`.
    pub fn parse(s: &str) -> Option<Granularity> {
        match s {
            "block" => Some(Granularity::Block),
            "layer" => Some(Granularity::Layer),
            _ => None,
        }
    }
}

/// One cut point and the cost of the split it defines.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CutPoint {
    /// Index in cut order (0 = graph input).
    pub k: usize,
    /// Name of the node producing the cut tensor.
    pub node: String,
    /// Op of that node.
    pub op: String,
    /// The cut tensor's value.
    #[serde(skip)]
    pub value: Value,
    /// Shape of the cut tensor.
    pub shape: Vec<usize>,
    /// Channels of the cut tensor (dimension 1; 1 for rank < 2).
    pub channels: usize,
    /// Bytes of the cut tensor as f32.
    pub bytes_f32: u64,
    /// Bytes of the cut tensor as 8-bit values.
    pub bytes_q8: u64,
    /// Bytes of one channel as 8-bit values (a slice of `i` channels costs `i` times this).
    pub bytes_per_channel_q8: u64,
    /// MACs on the device (nodes up to and including the cut node).
    pub device_macs: u64,
    /// MACs in the cloud.
    pub cloud_macs: u64,
    /// Learnable parameters on the device.
    pub device_params: u64,
    /// Bytes of weights the device reads.
    pub device_weight_bytes: u64,
    /// Peak bytes of simultaneously live device activations (f32, default schedule).
    pub device_peak_activation_bytes: u64,
}

/// Errors of the cut analysis.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CutError {
    /// The graph does not exist or has a cycle.
    #[error("cut points: {0}")]
    Graph(String),
    /// `--cut` named nothing known.
    #[error("no cut point `{name}` in graph @{graph} (cut points: {known})")]
    Unknown {
        /// What was asked for.
        name: String,
        /// The graph.
        graph: String,
        /// Valid ids and names.
        known: String,
    },
}

fn is_trailing(op: &Op) -> bool {
    matches!(
        op,
        Op::BatchNorm(_)
            | Op::ScaleShift
            | Op::Relu
            | Op::Clip(_)
            | Op::Sigmoid
            | Op::HardSigmoid(_)
            | Op::HardSwish
            | Op::PRelu
    )
}

/// The op heading the layer that produced `n`: walks back over trailing ops.
fn layer_head(g: &Graph, mut n: NodeId) -> NodeId {
    while is_trailing(&g.node(n).op) {
        match g.operand(n, 0) {
            Some(v) => n = v.node,
            None => break,
        }
    }
    n
}

fn is_depthwise(g: &Graph, n: NodeId) -> bool {
    match &g.node(n).op {
        Op::Conv2d(c) => {
            g.operand(n, 0).and_then(|v| g.value_type(v)).is_some_and(|t| t.rank() == 4 && c.is_depthwise(t.shape[1]))
        }
        _ => false,
    }
}

fn is_expanding_pointwise(g: &Graph, n: NodeId) -> bool {
    let Op::Conv2d(c) = &g.node(n).op else { return false };
    let (Some(x), Some(w)) =
        (g.operand(n, 0).and_then(|v| g.value_type(v)), g.operand(n, 1).and_then(|v| g.value_type(v)))
    else {
        return false;
    };
    c.groups == 1 && w.rank() == 4 && w.shape[2] == 1 && w.shape[3] == 1 && x.rank() == 4 && w.shape[0] > x.shape[1]
}

/// True if the single-tensor cut after `n` is a block boundary.
fn is_block_boundary(g: &Graph, n: NodeId) -> bool {
    let v = Value::of(n);
    let users = g.uses(v);
    if users.len() == 1 && !g.outputs().contains(&v) && is_trailing(&g.node(users[0].0).op) {
        return false;
    }
    let head = layer_head(g, n);
    if is_depthwise(g, head) {
        return false;
    }
    if is_expanding_pointwise(g, head) && users.iter().any(|(u, _)| is_depthwise(g, *u)) {
        return false;
    }
    true
}

/// Nodes (excluding weight reads) through which every input-to-output path passes, in
/// topological order.
fn single_tensor_cut_nodes(g: &Graph) -> Result<Vec<NodeId>, CutError> {
    let order = g.topo_order().map_err(|c| CutError::Graph(format!("graph @{} has a cycle at {}", g.name(), c.0)))?;
    let acts: Vec<NodeId> = order.iter().copied().filter(|n| !matches!(g.node(*n).op, Op::Weight { .. })).collect();
    let mut dg: DiGraph<Option<NodeId>, ()> = DiGraph::new();
    let source = dg.add_node(None);
    let sink = dg.add_node(None);
    let idx: HashMap<NodeId, NodeIndex> = acts.iter().map(|n| (*n, dg.add_node(Some(*n)))).collect();
    for n in &acts {
        for u in g.users(*n) {
            if let Some(t) = idx.get(&u) {
                dg.add_edge(idx[n], *t, ());
            }
        }
        if matches!(g.node(*n).op, Op::Input)
            || g.producers(*n).iter().all(|p| matches!(g.node(*p).op, Op::Weight { .. }))
        {
            dg.add_edge(source, idx[n], ());
        }
    }
    for o in g.outputs() {
        if let Some(i) = idx.get(&o.node) {
            dg.add_edge(*i, sink, ());
        }
    }
    let dom = simple_fast(&dg, source);
    let dominators_of_sink: HashSet<NodeIndex> = dom.dominators(sink).map(|it| it.collect()).unwrap_or_default();
    let mut rev = dg.clone();
    rev.reverse();
    let pdom = simple_fast(&rev, sink);
    let post_dominators_of_source: HashSet<NodeIndex> =
        pdom.dominators(source).map(|it| it.collect()).unwrap_or_default();
    Ok(acts
        .into_iter()
        .filter(|n| {
            let i = idx[n];
            dominators_of_sink.contains(&i) && post_dominators_of_source.contains(&i) && g.node(*n).results.len() == 1
        })
        .collect())
}

/// The cut points of graph `graph` of `m`, with their costs.
pub fn cut_points(m: &Module, graph: &str, granularity: Granularity) -> Result<Vec<CutPoint>, CutError> {
    let g = m.graph(graph).ok_or_else(|| CutError::Graph(format!("no graph @{graph}")))?;
    let nodes = single_tensor_cut_nodes(g)?;
    let nodes: Vec<NodeId> = match granularity {
        Granularity::Layer => nodes,
        Granularity::Block => {
            nodes.into_iter().filter(|n| matches!(g.node(*n).op, Op::Input) || is_block_boundary(g, *n)).collect()
        }
    };
    let total = graph_cost(m, g);
    let order = g.topo_order().map_err(|c| CutError::Graph(format!("cycle at {}", c.0)))?;
    let position: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let cost_by_node: HashMap<NodeId, &super::NodeCost> = total.nodes.iter().map(|(n, c)| (*n, c)).collect();
    let mut out = Vec::with_capacity(nodes.len());
    for (k, n) in nodes.into_iter().enumerate() {
        // The device part: n and its ancestors.
        let mut device: HashSet<NodeId> = HashSet::new();
        let mut stack = vec![n];
        while let Some(x) = stack.pop() {
            if device.insert(x) {
                stack.extend(g.producers(x));
            }
        }
        let (mut macs, mut params, mut wbytes) = (0u64, 0u64, 0u64);
        let mut seen_weights = HashSet::new();
        for d in &device {
            if let Some(c) = cost_by_node.get(d) {
                macs += c.macs;
            }
            for v in g.operands(*d) {
                if let Some(w) = g.weight_name(v) {
                    if seen_weights.insert(w.to_string()) {
                        if let Some(w) = m.weight(w) {
                            let bytes = (w.data().len() * w.data().dtype().size_bytes()) as u64;
                            wbytes += bytes;
                            let is_bn_stat = matches!(g.node(*d).op, Op::BatchNorm(_))
                                && g.operands(*d).iter().skip(3).any(|o| *o == v);
                            if !is_bn_stat {
                                params += w.data().len() as u64;
                            }
                        }
                    }
                }
            }
        }
        let mut schedule: Vec<NodeId> = device.iter().copied().collect();
        schedule.sort_by_key(|x| position[x]);
        let peak = device_peak(g, &schedule, n);
        let ty = g.node(n).ty();
        let elems = ty.num_elements().unwrap_or(0) as u64;
        let channels = if ty.rank() >= 2 { ty.shape[1] } else { 1 };
        out.push(CutPoint {
            k,
            node: g.node(n).name().to_string(),
            op: g.node(n).op.name().to_string(),
            value: Value::of(n),
            shape: ty.shape.clone(),
            channels,
            bytes_f32: elems * 4,
            bytes_q8: elems,
            bytes_per_channel_q8: elems / channels.max(1) as u64,
            device_macs: macs,
            cloud_macs: total.macs - macs,
            device_params: params,
            device_weight_bytes: wbytes,
            device_peak_activation_bytes: peak,
        });
    }
    Ok(out)
}

/// Liveness peak of the device part, whose only output is the cut node's result.
fn device_peak(g: &Graph, schedule: &[NodeId], cut: NodeId) -> u64 {
    let live = liveness(g, schedule);
    let pos: HashMap<NodeId, usize> = schedule.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    // `liveness` extends graph outputs and values read by cloud nodes to the end of the
    // schedule; on the device, a value dies at its last device reader (the cut tensor lives to
    // the end: it is transmitted).
    let last = schedule.len().saturating_sub(1);
    let mut bytes = vec![0u64; schedule.len()];
    for iv in &live.intervals {
        let end = if iv.value.node == cut {
            last
        } else {
            g.uses(iv.value).iter().filter_map(|(u, _)| pos.get(u)).copied().max().unwrap_or(iv.start)
        };
        for b in &mut bytes[iv.start..=end.max(iv.start).min(last)] {
            *b += iv.bytes as u64;
        }
    }
    bytes.into_iter().max().unwrap_or(0)
}

/// Finds a cut by id (`k`, e.g. `3`) or by the name of the node producing the cut tensor.
pub fn find_cut<'a>(cuts: &'a [CutPoint], graph: &str, id: &str) -> Result<&'a CutPoint, CutError> {
    let by_k = id.parse::<usize>().ok().and_then(|k| cuts.iter().find(|c| c.k == k));
    let by_name = cuts.iter().find(|c| c.node == id.trim_start_matches('%'));
    by_k.or(by_name).ok_or_else(|| CutError::Unknown {
        name: id.to_string(),
        graph: graph.to_string(),
        known: cuts.iter().map(|c| format!("{} (%{})", c.k, c.node)).collect::<Vec<_>>().join(", "),
    })
}
