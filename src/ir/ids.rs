//! Typed handles: [`NodeId`] names a node of one graph, [`Value`] one result of a node.

use petgraph::stable_graph::NodeIndex;
use std::fmt;

/// A node of a [`crate::ir::Graph`]. Stable across removals of other nodes; meaningless in
/// another graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) NodeIndex<u32>);

impl NodeId {
    /// The underlying index (for dense side tables; not stable across graphs).
    pub fn index(self) -> usize {
        self.0.index()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0.index())
    }
}

/// One result of a node: what an operand refers to. Nearly every op has one result
/// (`result == 0`); custom ops may have more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value {
    /// The producing node.
    pub node: NodeId,
    /// Which of its results.
    pub result: u32,
}

impl Value {
    /// Result 0 of `node`.
    pub fn of(node: NodeId) -> Value {
        Value { node, result: 0 }
    }
}
