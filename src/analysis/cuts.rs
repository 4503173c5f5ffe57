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
///
/// The flow graph has a virtual source (feeding the graph inputs and every node reading only
/// weights), one vertex per activation node (edges between activation nodes only) and a
/// virtual sink (fed by the outputs). It is acyclic and the activation nodes come in
/// topological order, so both dominator trees are built in one pass each with the
/// Cooper-Harvey-Kennedy intersection, numbering vertices in that order (forward) or in the
/// reverse order (backward, for post-dominators): a vertex's dominators are found among the
/// vertices processed before it.
fn single_tensor_cut_nodes(g: &Graph) -> Result<Vec<NodeId>, CutError> {
    let order = g.topo_order().map_err(|c| CutError::Graph(format!("graph @{} has a cycle at {}", g.name(), c.0)))?;
    let is_weight = |n: NodeId| matches!(g.node(n).op, Op::Weight { .. });
    let acts: Vec<NodeId> = order.iter().copied().filter(|n| !is_weight(*n)).collect();
    let len = acts.len();
    // Position of each activation node in `acts`, by node index.
    let mut pos = vec![usize::MAX; g.node_bound()];
    for (i, n) in acts.iter().enumerate() {
        pos[n.index()] = i;
    }
    let act_pos = |n: NodeId| pos.get(n.index()).copied().filter(|p| *p != usize::MAX);
    let from_source: Vec<bool> = acts
        .iter()
        .map(|n| matches!(g.node(*n).op, Op::Input) || g.operand_edges(*n).all(|(_, p)| is_weight(p.node)))
        .collect();
    let mut is_output = vec![false; len];
    for o in g.outputs() {
        if let Some(i) = act_pos(o.node) {
            is_output[i] = true;
        }
    }
    const NONE: usize = usize::MAX;
    // Nearest common dominator of `a` and `b` (numbers of reachable vertices).
    let intersect = |idom: &[usize], mut a: usize, mut b: usize| {
        while a != b {
            while a > b {
                a = idom[a];
            }
            while b > a {
                b = idom[b];
            }
        }
        a
    };
    let join = |idom: &[usize], d: usize, p: usize| match (d, idom[p]) {
        (_, NONE) => d,
        (NONE, _) => p,
        _ => intersect(idom, d, p),
    };
    // The vertices on the dominator-tree path from `v` to the root.
    let chain = |idom: &[usize], mut v: usize| {
        let mut on = vec![false; idom.len()];
        if idom[v] == NONE {
            return on;
        }
        loop {
            on[v] = true;
            if idom[v] == v {
                return on;
            }
            v = idom[v];
        }
    };
    // Forward: source 0, activation node i is i + 1, sink len + 1.
    let mut idom = vec![NONE; len + 2];
    idom[0] = 0;
    for (i, n) in acts.iter().enumerate() {
        let mut d = if from_source[i] { 0 } else { NONE };
        for (_, v) in g.operand_edges(*n) {
            if let Some(p) = act_pos(v.node) {
                d = join(&idom, d, p + 1);
            }
        }
        idom[i + 1] = d;
    }
    let mut d = NONE;
    for (i, _) in is_output.iter().enumerate().filter(|(_, o)| **o) {
        d = join(&idom, d, i + 1);
    }
    idom[len + 1] = d;
    let dominates_sink = chain(&idom, len + 1);
    // Backward: sink 0, activation node i is len - i, source len + 1.
    let mut ridom = vec![NONE; len + 2];
    ridom[0] = 0;
    for (i, n) in acts.iter().enumerate().rev() {
        let mut d = if is_output[i] { 0 } else { NONE };
        for u in g.petgraph().neighbors_directed(n.0, petgraph::Direction::Outgoing) {
            if let Some(p) = act_pos(NodeId(u)) {
                d = join(&ridom, d, len - p);
            }
        }
        ridom[len - i] = d;
    }
    let mut d = NONE;
    for (i, _) in from_source.iter().enumerate().filter(|(_, s)| **s) {
        d = join(&ridom, d, len - i);
    }
    ridom[len + 1] = d;
    let post_dominates_source = chain(&ridom, len + 1);
    Ok(acts
        .into_iter()
        .enumerate()
        .filter(|(i, n)| dominates_sink[i + 1] && post_dominates_source[len - i] && g.node(*n).results.len() == 1)
        .map(|(_, n)| n)
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
    // Side tables by node index.
    let mut position = vec![usize::MAX; g.node_bound()];
    for (i, n) in order.iter().enumerate() {
        position[n.index()] = i;
    }
    let mut cost_by_node: Vec<Option<&super::NodeCost>> = vec![None; g.node_bound()];
    for (n, c) in &total.nodes {
        cost_by_node[n.index()] = Some(c);
    }
    // Each cut node dominates the next one, so the device parts grow: the part of cut `k` is
    // the part of cut `k - 1` plus the new ancestors of its node, which all come after the
    // previous cut node in topological order and read nothing of the previous part but the
    // previous cut tensor. Costs and the liveness profile are therefore accumulated cut by
    // cut (linear overall instead of one traversal and one liveness per cut).
    let mut acc = DeviceAccumulator {
        device: vec![false; g.node_bound()],
        seen_weights: vec![false; m.weights().len()],
        step: vec![usize::MAX; g.node_bound()],
        ..Default::default()
    };
    let mut out = Vec::with_capacity(nodes.len());
    for (k, n) in nodes.into_iter().enumerate() {
        let mut new_nodes = vec![];
        let mut stack = vec![n];
        while let Some(x) = stack.pop() {
            if !std::mem::replace(&mut acc.device[x.index()], true) {
                new_nodes.push(x);
                stack.extend(g.producers(x));
            }
        }
        new_nodes.sort_by_key(|x| position[x.index()]);
        for d in &new_nodes {
            if let Some(c) = cost_by_node[d.index()] {
                acc.macs += c.macs;
            }
            for &v in g.operand_list(*d).iter() {
                if let Some(w) = g.weight_name(v) {
                    let Some((wi, _, w)) = m.weights().get_full(w) else { continue };
                    if !std::mem::replace(&mut acc.seen_weights[wi], true) {
                        let bytes = (w.data().len() * w.data().dtype().size_bytes()) as u64;
                        acc.weight_bytes += bytes;
                        let is_bn_stat = matches!(g.node(*d).op, Op::BatchNorm(_))
                            && g.operand_list(*d).iter().skip(3).any(|o| *o == v);
                        if !is_bn_stat {
                            acc.params += w.data().len() as u64;
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
    /// Nodes in the device part, by node index.
    device: Vec<bool>,
    /// Weights counted, by index in the module's weight table.
    seen_weights: Vec<bool>,
    /// Step of every activation node of the device part, by node index (`usize::MAX`: none).
    step: Vec<usize>,
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
        for (i, n) in acts.iter().enumerate() {
            self.step[n.index()] = first + i;
        }
        // Steps of the new part only (older steps are `< first`).
        let step_table = &self.step;
        let new_step = |n: NodeId| step_table.get(n.index()).copied().filter(|s| *s != usize::MAX && *s >= first);
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
        let last_reader = |v: Value| g.uses(v).iter().filter_map(|(u, _)| new_step(*u)).max();
        // The previous cut tensor now lives on to its last reader in the new part.
        if let Some((p, p_step)) = self.prev_cut {
            if let Some(end) = last_reader(Value::of(p)) {
                add(p_step + 1, end, g.node(p).results[0].size_bytes().unwrap_or(usize::MAX) as u64);
            }
        }
        for x in &acts {
            let node = g.node(*x);
            let s = new_step(*x).unwrap_or(first);
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
        if let Some(s) = new_step(cut) {
            self.prev_cut = Some((cut, s));
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
