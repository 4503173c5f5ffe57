//! `partition`: split a graph at a cut point into a device graph and a cloud graph.
//!
//! Matches: graph `@main` (option `graph`) and the cut point `cut` (an index `k` or the name of
//! the node producing the cut tensor, see `clio::analysis::cut_points`; `granularity`
//! chooses which cut points are numbered).
//! Produces: two graphs sharing the module's weights, replacing the original:
//! * `@device` (option `device`): the original inputs, every node upstream of the cut
//!   (inclusive), and `transmit(%cut) {to = "cloud"}` as its only output;
//! * `@cloud` (option `cloud`): one input carrying the cut tensor (same type, so a quantized cut
//!   tensor arrives quantized and the cloud dequantizes exactly the values the device sent),
//!   every remaining node that reaches an output (dead code is dropped), and the original
//!   outputs.
//!
//! Running `@device` then feeding its output to `@cloud` computes exactly the original graph.
//! Preconditions: the module has the graph; the cut exists. Not idempotent by nature (a second
//! run finds no `@main`): running it on a module without the graph is an error.
//!
//! ```text
//! graph @main(%x) {                  graph @device(%x) -> (...) {          graph @cloud(%c) -> (...) {
//!   %c = conv2d(%x, @w)       =>       %c = conv2d(%x, @w)                   %y = relu(%c)
//!   %y = relu(%c)                      %c.tx = transmit(%c) {to = "cloud"}   return %y
//!   return %y                          return %c.tx                        }
//! }                                  }
//! ```

use clio::analysis::{cut_points, find_cut, Granularity};
use clio::ir::{Graph, NodeId, Op, Value};
use clio::ops::Transmit;
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};
use clio::Module;
use rustc_hash::{FxHashMap, FxHashSet};

/// Declaration of `partition`.
pub static INFO: PassInfo = PassInfo {
    name: "partition",
    summary: "Split a graph at a cut point into a device graph and a cloud graph joined by transmit",
    options: &[
        OptionInfo {
            name: "cut",
            kind: OptionKind::Str,
            default: None,
            help: "cut point: index k or the name of the node producing the cut tensor",
        },
        OptionInfo {
            name: "granularity",
            kind: OptionKind::Enum(&["block", "layer"]),
            default: Some("block"),
            help: "which cut points are numbered",
        },
        OptionInfo { name: "graph", kind: OptionKind::Str, default: Some("main"), help: "the graph to split" },
        OptionInfo { name: "device", kind: OptionKind::Str, default: Some("device"), help: "name of the device graph" },
        OptionInfo { name: "cloud", kind: OptionKind::Str, default: Some("cloud"), help: "name of the cloud graph" },
    ],
    statistics: &[
        StatInfo { name: "device-nodes", help: "nodes in the device graph (weight reads excluded)" },
        StatInfo { name: "cloud-nodes", help: "nodes in the cloud graph (weight reads excluded)" },
        StatInfo { name: "cut-bytes-q8", help: "bytes of the cut tensor at 8 bits per value" },
    ],
};

/// Registers `partition`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| {
        Ok(Box::new(Partition {
            cut: o.str("cut")?.to_string(),
            granularity: Granularity::parse(o.str("granularity")?).unwrap_or_default(),
            graph: o.str("graph")?.trim_start_matches('@').to_string(),
            device: o.str("device")?.trim_start_matches('@').to_string(),
            cloud: o.str("cloud")?.trim_start_matches('@').to_string(),
        }))
    });
}

/// The `partition` pass.
pub struct Partition {
    /// Cut id (index or node name).
    pub cut: String,
    /// Numbering of cut points.
    pub granularity: Granularity,
    /// Graph to split.
    pub graph: String,
    /// Device graph name.
    pub device: String,
    /// Cloud graph name.
    pub cloud: String,
}

/// Copies `nodes` (in order) of `src` into `dst`, mapping operands through `map`.
fn copy_nodes(src: &Graph, dst: &mut Graph, nodes: &[NodeId], map: &mut FxHashMap<NodeId, NodeId>) {
    for n in nodes {
        let node = src.node(*n);
        let operands: Vec<Value> =
            src.operand_list(*n).iter().map(|v| Value { node: map[&v.node], result: v.result }).collect();
        let new = match &node.op {
            Op::Weight { name } => dst.weight_value(name, node.results[0].clone()).node,
            _ => dst.add_node(node.name(), node.op.clone(), &operands, node.results.clone()),
        };
        map.insert(*n, new);
    }
}

/// Splits graph `graph` of `m` at the node `cut` into `device` and `cloud` graphs.
pub fn split(
    m: &mut Module,
    graph: &str,
    cut: NodeId,
    device_name: &str,
    cloud_name: &str,
) -> Result<(usize, usize), String> {
    split_taking(m, graph, cut, device_name, cloud_name).map(|(counts, _)| counts)
}

/// [`split`], also handing back the graph it replaced (for callers that may have to undo the
/// split). Fails without changing the module.
pub fn split_taking(
    m: &mut Module,
    graph: &str,
    cut: NodeId,
    device_name: &str,
    cloud_name: &str,
) -> Result<((usize, usize), Graph), String> {
    let g = m.graph(graph).ok_or_else(|| format!("no graph @{graph}"))?;
    for name in [device_name, cloud_name] {
        if name != graph && m.graph(name).is_some() {
            return Err(format!("the module already has a graph @{name}"));
        }
    }
    let order = g.topo_order().map_err(|c| format!("cycle at {}", c.0))?;
    let mut upstream: FxHashSet<NodeId> = FxHashSet::default();
    let mut stack = vec![cut];
    while let Some(x) = stack.pop() {
        if upstream.insert(x) {
            stack.extend(g.producers(x));
        }
    }
    let cut_value = Value::of(cut);
    let cut_ty = g.node(cut).ty().clone();
    // Device: every upstream node, inputs first (kept in the original input order).
    let mut device = Graph::new(device_name);
    let mut dmap = FxHashMap::default();
    for i in g.inputs() {
        let v = device.add_input(g.node(*i).name(), g.node(*i).ty().clone());
        dmap.insert(*i, v.node);
    }
    let device_nodes: Vec<NodeId> =
        order.iter().copied().filter(|n| upstream.contains(n) && !matches!(g.node(*n).op, Op::Input)).collect();
    copy_nodes(g, &mut device, &device_nodes, &mut dmap);
    let tx_name = format!("{}.tx", g.node(cut).name());
    let tx = device.add_node(
        &tx_name,
        Op::Transmit(Transmit { to: cloud_name.to_string() }),
        &[Value::of(dmap[&cut])],
        vec![cut_ty.clone()],
    );
    device.set_outputs(vec![Value::of(tx)]);
    // Cloud: the cut tensor as input, then every other live node (weights read where needed).
    // Dead nodes (reaching no output) are dropped: they would read values left on the device.
    let mut live: FxHashSet<NodeId> = FxHashSet::default();
    let mut stack: Vec<NodeId> = g.outputs().iter().map(|v| v.node).collect();
    while let Some(x) = stack.pop() {
        if live.insert(x) {
            stack.extend(g.producers(x));
        }
    }
    let mut cloud = Graph::new(cloud_name);
    let mut cmap = FxHashMap::default();
    let cin = cloud.add_input(g.node(cut).name(), cut_ty);
    cmap.insert(cut, cin.node);
    let cloud_nodes: Vec<NodeId> = order
        .iter()
        .copied()
        .filter(|n| live.contains(n))
        .filter(|n| {
            !upstream.contains(n)
                || (matches!(g.node(*n).op, Op::Weight { .. })
                    && g.users(*n).iter().any(|u| !upstream.contains(u) && live.contains(u)))
        })
        .collect();
    for n in &cloud_nodes {
        if matches!(g.node(*n).op, Op::Input) {
            return Err(format!(
                "graph input %{} is not upstream of the cut: the cut does not separate the graph",
                g.node(*n).name()
            ));
        }
        for &v in g.operand_list(*n).iter() {
            if upstream.contains(&v.node) && !matches!(g.node(v.node).op, Op::Weight { .. }) && v != cut_value {
                return Err(format!(
                    "%{} reads %{}, which is upstream of the cut: more than one tensor crosses it",
                    g.node(*n).name(),
                    g.node(v.node).name()
                ));
            }
        }
    }
    copy_nodes(g, &mut cloud, &cloud_nodes, &mut cmap);
    let mut outs = vec![];
    for o in g.outputs() {
        let node =
            cmap.get(&o.node).ok_or_else(|| format!("output %{} is upstream of the cut", g.node(o.node).name()))?;
        outs.push(Value { node: *node, result: o.result });
    }
    cloud.set_outputs(outs);
    let count = |x: &Graph| x.node_ids().filter(|n| !matches!(x.node(*n).op, Op::Weight { .. } | Op::Input)).count();
    let counts = (count(&device), count(&cloud));
    let position = m.graph_names().iter().position(|n| n == graph).unwrap_or(0);
    let original = m.remove_graph(graph).ok_or("graph vanished")?;
    let mut rest: Vec<Graph> = m.graph_names().into_iter().filter_map(|n| m.remove_graph(&n)).collect();
    rest.insert(position.min(rest.len()), cloud);
    rest.insert(position.min(rest.len()), device);
    for gr in rest {
        m.add_graph(gr);
    }
    Ok((counts, original))
}

impl Pass for Partition {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        let fail = |e: String| PassError::failed("partition", e);
        let cuts = cut_points(m, &self.graph, self.granularity).map_err(|e| fail(e.to_string()))?;
        let cut = find_cut(&cuts, &self.graph, &self.cut).map_err(|e| fail(e.to_string()))?.clone();
        let (d, c) = split(m, &self.graph, cut.value.node, &self.device, &self.cloud).map_err(fail)?;
        cx.stat("device-nodes", d as i64);
        cx.stat("cloud-nodes", c as i64);
        cx.stat("cut-bytes-q8", cut.bytes_q8 as i64);
        Ok(())
    }
}
