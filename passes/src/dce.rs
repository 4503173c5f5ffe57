//! `dce`: dead-code elimination.
//!
//! Matches: nodes none of whose results reach a graph output (graph inputs are part of the
//! signature and always stay), and module weights no graph reads any more.
//! Produces: the same graphs without those nodes and weights.
//! Preconditions: none.
//!
//! ```text
//! graph @main(%x: tensor<4xf32>) -> (tensor<4xf32>) {      graph @main(%x: tensor<4xf32>) -> (tensor<4xf32>) {
//!   %a = relu(%x) : tensor<4xf32>                    =>      %a = relu(%x) : tensor<4xf32>
//!   %dead = sigmoid(%x) : tensor<4xf32>                      return %a
//!   return %a                                              }
//! }
//! ```

use clio::ir::{Graph, NodeId, Op};
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};
use clio::Module;
use std::collections::HashSet;

/// Declaration of `dce`.
pub static INFO: PassInfo = PassInfo {
    name: "dce",
    summary: "Remove nodes that do not contribute to any graph output, and unused weights",
    options: &[OptionInfo {
        name: "keep-weights",
        kind: OptionKind::Bool,
        default: Some("false"),
        help: "keep module weights even when no graph reads them",
    }],
    statistics: &[
        StatInfo { name: "nodes-removed", help: "dead nodes removed (weight reads included)" },
        StatInfo { name: "weights-removed", help: "module weights no graph reads any more" },
    ],
};

/// The `dce` pass.
pub struct Dce {
    keep_weights: bool,
}

/// Registers `dce`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| Ok(Box::new(Dce { keep_weights: o.bool("keep-weights")? })));
}

/// Nodes of `g` from which an output is reachable.
pub fn live_nodes(g: &Graph) -> HashSet<NodeId> {
    let live = live_mask(g);
    g.node_ids().filter(|n| live.get(n.index()).copied().unwrap_or(false)).collect()
}

/// [`live_nodes`] as a mask indexed by node index.
fn live_mask(g: &Graph) -> Vec<bool> {
    let mut live = vec![false; g.node_bound()];
    let mut stack: Vec<NodeId> = g.outputs().iter().map(|v| v.node).chain(g.inputs().iter().copied()).collect();
    while let Some(n) = stack.pop() {
        if let Some(l) = live.get_mut(n.index()) {
            if !*l {
                *l = true;
                stack.extend(g.operand_edges(n).map(|(_, v)| v.node));
            }
        }
    }
    live
}

impl Pass for Dce {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        for g in m.graphs_mut() {
            let live = live_mask(g);
            let dead: Vec<NodeId> = g.node_ids().filter(|n| !live.get(n.index()).copied().unwrap_or(false)).collect();
            cx.stat("nodes-removed", dead.len() as i64);
            for n in dead {
                g.remove_node(n);
            }
        }
        if !self.keep_weights {
            // Weights read by some graph, by index in the weight table.
            let mut used = vec![false; m.weights().len()];
            for g in m.graphs() {
                for n in g.node_ids() {
                    if let Op::Weight { name } = &g.node(n).op {
                        if let Some(u) = m.weights().get_index_of(name.as_str()).and_then(|i| used.get_mut(i)) {
                            *u = true;
                        }
                    }
                }
            }
            let unused = used.iter().filter(|u| !**u).count();
            cx.stat("weights-removed", unused as i64);
            if unused > 0 {
                // `retain` visits the entries in order.
                let mut i = 0;
                m.weights_mut().retain(|_, _| {
                    let keep = used.get(i).copied().unwrap_or(true);
                    i += 1;
                    keep
                });
            }
        }
        Ok(())
    }
}
