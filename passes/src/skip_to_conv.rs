//! `skip-to-conv`: Clio's rewrite of additive skip connections.
//!
//! Matches: a residual `add(a, b)` on NCHW activations where one operand (`x`, the identity
//! branch) is also an ancestor of the other (`F(x)`), i.e. `y = x + F(x)`.
//! Produces: `y = conv1x1(x) + F(x)` where the new 1x1 `conv2d` (`<add>.skip`, weight
//! `@<add>.skip.w`) is initialised to the identity, so the output is unchanged; once the block's
//! input is sliced (progressive slicing), this conv maps the sliced input to the block's width.
//! A block whose shortcut is already a computation (a projection shortcut: neither operand is an
//! ancestor of the other) keeps its conv and is counted as `projection-kept`.
//! Options: `after=NODE` restricts the rewrite to blocks whose identity input is `NODE` or comes
//! after it in topological order, and `limit=N` rewrites at most `N` blocks (in order), so
//! `skip-to-conv{after=%cut,limit=1}` rewrites only the first block after a cut.
//! Statistics report the MACs and parameters the new convs add.
//! Preconditions: none. Idempotent (a rewritten block's skip is no longer an identity).
//!
//! ```text
//! %f = conv2d(%x, @w) {...} : tensor<1x8x4x4xf32>        %f = conv2d(%x, @w) {...} : tensor<1x8x4x4xf32>
//! %y = add(%x, %f) : tensor<1x8x4x4xf32>           =>    %y.skip = conv2d(%x, @y.skip.w) {...} : tensor<1x8x4x4xf32>
//!                                                         %y = add(%y.skip, %f) : tensor<1x8x4x4xf32>
//! ```

use clio::ir::{DType, Graph, NodeId, Op, Tensor, TensorType, Value, Weight};
use clio::ops::Conv2d;
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};
use clio::Module;
use rustc_hash::{FxHashMap, FxHashSet};

/// Declaration of `skip-to-conv`.
pub static INFO: PassInfo = PassInfo {
    name: "skip-to-conv",
    summary: "Replace identity skip connections of residual adds by identity-initialised 1x1 convs",
    options: &[
        OptionInfo {
            name: "after",
            kind: OptionKind::Str,
            default: Some(""),
            help: "only blocks whose identity input is this node or comes after it (default: all blocks)",
        },
        OptionInfo {
            name: "limit",
            kind: OptionKind::Int,
            default: Some("0"),
            help: "rewrite at most N blocks; 0 = no limit",
        },
        OptionInfo { name: "graph", kind: OptionKind::Str, default: Some(""), help: "only this graph (default: all)" },
    ],
    statistics: &[
        StatInfo { name: "rewritten", help: "identity skips replaced by 1x1 convs" },
        StatInfo { name: "projection-kept", help: "residual adds whose shortcut already computes (kept)" },
        StatInfo { name: "macs-added", help: "multiply-accumulates added by the new convs" },
        StatInfo { name: "params-added", help: "parameters added by the new convs" },
    ],
};

/// Registers `skip-to-conv`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| {
        Ok(Box::new(SkipToConv {
            after: o.str("after")?.trim_start_matches('%').to_string(),
            limit: o.usize("limit")?,
            graph: o.str("graph")?.trim_start_matches('@').to_string(),
        }))
    });
}

/// The `skip-to-conv` pass.
pub struct SkipToConv {
    after: String,
    limit: usize,
    graph: String,
}

/// True if `target`'s node is reachable backwards from `from` (strictly upstream of it).
fn is_ancestor(g: &Graph, target: NodeId, from: NodeId) -> bool {
    let mut stack = g.producers(from);
    let mut seen: FxHashSet<NodeId> = FxHashSet::default();
    while let Some(n) = stack.pop() {
        if n == target {
            return true;
        }
        if seen.insert(n) {
            stack.extend(g.producers(n));
        }
    }
    false
}

/// Which operand of `add` is the identity skip, if it is a residual add.
pub enum Residual {
    /// Operand slot of the identity branch.
    Identity(usize),
    /// Both branches compute (projection shortcut).
    Projection,
}

/// Classifies a binary `add` as a residual block, or `None` if it is not one (different
/// shapes, not 4-D, operands unrelated to a common block input).
pub fn classify_residual(g: &Graph, add: NodeId) -> Option<Residual> {
    if !matches!(g.node(add).op, Op::Add) {
        return None;
    }
    let ops = g.operands(add);
    let (a, b) = (*ops.first()?, *ops.get(1)?);
    let (ta, tb) = (g.value_type(a)?, g.value_type(b)?);
    if ta.shape != tb.shape || ta.rank() != 4 || ta.dtype != DType::F32 || a == b {
        return None;
    }
    if matches!(g.node(a.node).op, Op::Weight { .. }) || matches!(g.node(b.node).op, Op::Weight { .. }) {
        return None;
    }
    if is_ancestor(g, a.node, b.node) {
        return Some(Residual::Identity(0));
    }
    if is_ancestor(g, b.node, a.node) {
        return Some(Residual::Identity(1));
    }
    // A projection shortcut: both branches start from a common value.
    let mut up_a: FxHashSet<NodeId> = FxHashSet::default();
    let mut stack = vec![a.node];
    while let Some(n) = stack.pop() {
        if up_a.insert(n) {
            stack.extend(g.producers(n));
        }
    }
    let mut stack = vec![b.node];
    let mut seen = FxHashSet::default();
    while let Some(n) = stack.pop() {
        if up_a.contains(&n) && !matches!(g.node(n).op, Op::Weight { .. }) {
            return Some(Residual::Projection);
        }
        if seen.insert(n) {
            stack.extend(g.producers(n));
        }
    }
    None
}

/// Replaces the identity operand `slot` of the residual `add` in graph `graph` by a 1x1
/// `conv2d` initialised to the identity (`<add>.skip`, weight `@<add>.skip.w`); returns the MACs
/// and parameters it adds.
pub fn rewrite_identity_skip(m: &mut Module, graph: &str, add: NodeId, slot: usize) -> Result<(u64, u64), String> {
    let g = m.graph(graph).ok_or_else(|| format!("no graph @{graph}"))?;
    let x = g.operand(add, slot).ok_or_else(|| format!("%{} has no operand {slot}", g.node(add).name()))?;
    let ty: TensorType = g.value_type(x).cloned().ok_or("missing type")?;
    if ty.rank() != 4 {
        return Err(format!("skip of %{} is not a 4-D activation", g.node(add).name()));
    }
    let c = ty.shape[1];
    let mut eye = vec![0.0f32; c * c];
    for i in 0..c {
        eye[i * c + i] = 1.0;
    }
    let add_name = g.node(add).name().to_string();
    let w = Tensor::from_f32([c, c, 1, 1], eye).map_err(|e| e.to_string())?;
    let wname = m.add_weight(&format!("{add_name}.skip.w"), Weight::new(w));
    let wty = m.weight(&wname).map(|w| w.ty()).ok_or("weight vanished")?;
    let g = m.graph_mut(graph).ok_or("graph vanished")?;
    let wv = g.weight_value(&wname, wty);
    let conv = g.add_node(&format!("{add_name}.skip"), Op::Conv2d(Conv2d::default()), &[x, wv], vec![ty.clone()]);
    g.set_operand(add, slot, Value::of(conv));
    let spatial: usize = ty.shape.iter().product::<usize>() / c;
    Ok(((spatial * c * c) as u64, (c * c) as u64))
}

impl Pass for SkipToConv {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        if !self.graph.is_empty() && m.graph(&self.graph).is_none() {
            return Err(PassError::failed("skip-to-conv", format!("option graph: no graph @{}", self.graph)));
        }
        let mut budget = if self.limit == 0 { usize::MAX } else { self.limit };
        for graph in m.graph_names() {
            if !self.graph.is_empty() && graph != self.graph {
                continue;
            }
            let g = m.graph(&graph).ok_or_else(|| PassError::failed("skip-to-conv", "graph vanished"))?;
            let order =
                g.topo_order().map_err(|c| PassError::failed("skip-to-conv", format!("@{graph}: cycle at {}", c.0)))?;
            let position: FxHashMap<NodeId, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
            let start = if self.after.is_empty() {
                0
            } else {
                match g.find(&self.after) {
                    Some(n) => position[&n],
                    None if self.graph.is_empty() && m.graphs().count() > 1 => continue,
                    None => {
                        return Err(PassError::failed(
                            "skip-to-conv",
                            format!("option after: no node %{} in @{graph}", self.after),
                        ))
                    }
                }
            };
            let adds: Vec<NodeId> = order.iter().copied().filter(|n| matches!(g.node(*n).op, Op::Add)).collect();
            for add in adds {
                if budget == 0 {
                    return Ok(());
                }
                let g = m.graph(&graph).ok_or_else(|| PassError::failed("skip-to-conv", "graph vanished"))?;
                let slot = match classify_residual(g, add) {
                    Some(Residual::Identity(s)) => s,
                    Some(Residual::Projection) => {
                        cx.stat("projection-kept", 1);
                        continue;
                    }
                    None => continue,
                };
                let x = g.operands(add)[slot];
                if position.get(&x.node).copied().unwrap_or(0) < start {
                    continue;
                }
                let (macs, params) =
                    rewrite_identity_skip(m, &graph, add, slot).map_err(|e| PassError::failed("skip-to-conv", e))?;
                cx.stat("rewritten", 1);
                cx.stat("macs-added", macs as i64);
                cx.stat("params-added", params as i64);
                budget -= 1;
            }
        }
        Ok(())
    }
}
