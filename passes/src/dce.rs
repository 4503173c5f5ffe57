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
    let mut live: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = g.outputs().iter().map(|v| v.node).chain(g.inputs().iter().copied()).collect();
    while let Some(n) = stack.pop() {
        if live.insert(n) {
            stack.extend(g.producers(n));
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
            let live = live_nodes(g);
            let dead: Vec<NodeId> = g.node_ids().filter(|n| !live.contains(n)).collect();
            cx.stat("nodes-removed", dead.len() as i64);
            for n in dead {
                g.remove_node(n);
            }
        }
        if !self.keep_weights {
            let used: HashSet<String> = m
                .graphs()
                .flat_map(|g| {
                    g.node_ids().filter_map(move |n| match &g.node(n).op {
                        Op::Weight { name } => Some(name.clone()),
                        _ => None,
                    })
                })
                .collect();
            let unused: Vec<String> = m.weights().keys().filter(|k| !used.contains(*k)).cloned().collect();
            cx.stat("weights-removed", unused.len() as i64);
            let unused: HashSet<String> = unused.into_iter().collect();
            m.weights_mut().retain(|k, _| !unused.contains(k));
        }
        Ok(())
    }
}
