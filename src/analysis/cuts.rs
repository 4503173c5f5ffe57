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

use super::graph_cost;
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
    // Each cut node dominates the next one, so the device parts grow: the part of cut `k` is
    // the part of cut `k - 1` plus the new ancestors of its node, which all come after the
    // previous cut node in topological order and read nothing of the previous part but the
    // previous cut tensor. Costs and the liveness profile are therefore accumulated cut by
    // cut (linear overall instead of one traversal and one liveness per cut).
    let mut acc = DeviceAccumulator::default();
    let mut out = Vec::with_capacity(nodes.len());
    for (k, n) in nodes.into_iter().enumerate() {
        let mut new_nodes = vec![];
        let mut stack = vec![n];
        while let Some(x) = stack.pop() {
            if acc.device.insert(x) {
                new_nodes.push(x);
                stack.extend(g.producers(x));
            }
        }
        new_nodes.sort_by_key(|x| position[x]);
        for d in &new_nodes {
            if let Some(c) = cost_by_node.get(d) {
                acc.macs += c.macs;
            }
            for v in g.operands(*d) {
                if let Some(w) = g.weight_name(v) {
                    if acc.seen_weights.insert(w.to_string()) {
                        if let Some(w) = m.weight(w) {
                            let bytes = (w.data().len() * w.data().dtype().size_bytes()) as u64;
                            acc.weight_bytes += bytes;
                            let is_bn_stat = matches!(g.node(*d).op, Op::BatchNorm(_))
                                && g.operands(*d).iter().skip(3).any(|o| *o == v);
                            if !is_bn_stat {
                                acc.params += w.data().len() as u64;
                            }
                        }
                    }
                }
            }
        }
        let peak = acc.extend_peak(g, &new_nodes, n);
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
            device_macs: acc.macs,
            cloud_macs: total.macs - acc.macs,
            device_params: acc.params,
            device_weight_bytes: acc.weight_bytes,
            device_peak_activation_bytes: peak,
        });
    }
    Ok(out)
}

/// The device part of the cuts seen so far (see [`cut_points`]).
#[derive(Default)]
struct DeviceAccumulator {
    device: HashSet<NodeId>,
    seen_weights: HashSet<String>,
    macs: u64,
    params: u64,
    weight_bytes: u64,
    /// Activation steps (non-weight nodes) of the device part so far.
    steps: usize,
    /// The previous cut node and its step.
    prev_cut: Option<(NodeId, usize)>,
    /// Peak live bytes over the steps so far (the previous device part's peak).
    peak: u64,
}

impl DeviceAccumulator {
    /// Liveness peak of the device part after adding `new_nodes` (in topological order) for
    /// the cut at `cut`. On the device a value lives from its step (step 0 for graph inputs)
    /// to its last device reader; the cut tensor lives to the end (it is transmitted).
    fn extend_peak(&mut self, g: &Graph, new_nodes: &[NodeId], cut: NodeId) -> u64 {
        let acts: Vec<NodeId> =
            new_nodes.iter().copied().filter(|n| !matches!(g.node(*n).op, Op::Weight { .. })).collect();
        let first = self.steps;
        let step: HashMap<NodeId, usize> = acts.iter().enumerate().map(|(i, n)| (*n, first + i)).collect();
        let last = (first + acts.len()).saturating_sub(1);
        // Bytes live at the new steps (a difference array), plus bytes live at every old step.
        let mut diff = vec![0i128; acts.len() + 1];
        let mut add_to_old_steps = 0u64;
        let mut add = |from: usize, to: usize, bytes: u64| {
            if to < first || acts.is_empty() {
                return;
            }
            let (a, b) = (from.max(first) - first, to.min(last) - first);
            diff[a] += bytes as i128;
            diff[b + 1] -= bytes as i128;
        };
        let last_reader = |v: Value| g.uses(v).iter().filter_map(|(u, _)| step.get(u)).copied().max();
        // The previous cut tensor now lives on to its last reader in the new part.
        if let Some((p, p_step)) = self.prev_cut {
            if let Some(end) = last_reader(Value::of(p)) {
                add(p_step + 1, end, g.node(p).results[0].size_bytes().unwrap_or(usize::MAX) as u64);
            }
        }
        for x in &acts {
            let node = g.node(*x);
            let s = step[x];
            for (r, t) in node.results.iter().enumerate() {
                let v = Value { node: *x, result: r as u32 };
                let bytes = t.size_bytes().unwrap_or(usize::MAX) as u64;
                let end = if *x == cut { last } else { last_reader(v).unwrap_or(s).max(s) };
                if matches!(node.op, Op::Input) && first > 0 {
                    // Graph inputs are live from step 0: over every old step as well.
                    add_to_old_steps += bytes;
                }
                add(if matches!(node.op, Op::Input) { 0 } else { s }, end, bytes);
            }
        }
        let mut live = 0i128;
        let mut peak = self.peak.saturating_add(add_to_old_steps);
        for d in &diff[..acts.len()] {
            live += d;
            peak = peak.max(live.clamp(0, u64::MAX as i128) as u64);
        }
        self.steps += acts.len();
        self.peak = peak;
        if let Some(s) = step.get(&cut) {
            self.prev_cut = Some((cut, *s));
        }
        peak
    }
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
