//! Parameter and MAC counts.
//!
//! Conventions (those of torchvision / the papers' tables): MACs count the multiply-accumulates
//! of `conv2d`, `gemm` and `matmul` only; parameters count the elements of weights a node reads,
//! except batch-norm running statistics (mean and variance are buffers, not parameters, and are
//! reported separately). A weight read by several nodes is counted once per graph.

use crate::ir::{checked_product, Graph, Module, NodeId, Op, Weight};
use std::collections::HashSet;

/// Costs of one node.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct NodeCost {
    /// Multiply-accumulates.
    pub macs: u64,
    /// Learnable parameters read (elements).
    pub params: u64,
    /// Non-learnable weight elements read (batch-norm running statistics).
    pub buffers: u64,
    /// Bytes of weight data read.
    pub weight_bytes: u64,
    /// Bytes of the node's results.
    pub output_bytes: u64,
}

/// Costs of every node of a graph and their totals.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GraphCost {
    /// Per node, in topological order (inputs and weight reads excluded).
    #[serde(skip)]
    pub nodes: Vec<(NodeId, NodeCost)>,
    /// Total MACs.
    pub macs: u64,
    /// Total learnable parameters (shared weights once).
    pub params: u64,
    /// Total buffer elements.
    pub buffers: u64,
    /// Total weight bytes (shared weights once).
    pub weight_bytes: u64,
}

fn elems(shape: &[usize]) -> u64 {
    checked_product(shape).unwrap_or(usize::MAX) as u64
}

/// MACs of one node from its types.
fn macs(g: &Graph, id: NodeId) -> u64 {
    let n = g.node(id);
    let ty = |slot: usize| g.operand(id, slot).and_then(|v| g.value_type(v));
    match &n.op {
        Op::Conv2d(_) => match ty(1) {
            // Each output element accumulates (C_in / groups) * KH * KW products.
            Some(w) if w.shape.len() == 4 => elems(&n.ty().shape).saturating_mul(elems(&w.shape[1..])),
            _ => 0,
        },
        Op::Gemm(gm) => match (ty(0), ty(1)) {
            (Some(a), Some(b)) if a.rank() == 2 && b.rank() == 2 => {
                let (m, k, nn) = gm.dims(&a.shape, &b.shape);
                (m as u64).saturating_mul(k as u64).saturating_mul(nn as u64)
            }
            _ => 0,
        },
        Op::MatMul => match ty(0) {
            Some(a) if a.rank() >= 1 => elems(&n.ty().shape).saturating_mul(*a.shape.last().unwrap_or(&0) as u64),
            _ => 0,
        },
        _ => 0,
    }
}

/// Costs of one node; `seen` de-duplicates weights across a graph (pass a fresh set to count a
/// node on its own).
pub fn node_cost(m: &Module, g: &Graph, id: NodeId, seen: &mut HashSet<String>) -> NodeCost {
    node_cost_by(g, id, |name| {
        if seen.contains(name) {
            return None;
        }
        seen.insert(name.to_string());
        m.weight(name)
    })
}

/// [`node_cost`] with the de-duplication left to `first_read`: it returns the weight called
/// `name` when this is the first read to count, `None` otherwise (or when it does not exist).
fn node_cost_by<'m>(g: &Graph, id: NodeId, mut first_read: impl FnMut(&str) -> Option<&'m Weight>) -> NodeCost {
    let n = g.node(id);
    let mut c = NodeCost {
        macs: macs(g, id),
        output_bytes: n.results.iter().map(|t| t.size_bytes().unwrap_or(usize::MAX) as u64).sum(),
        ..Default::default()
    };
    for (slot, &v) in g.operand_list(id).iter().enumerate() {
        let Op::Weight { name } = &g.node(v.node).op else { continue };
        let Some(w) = first_read(name) else { continue };
        let count = w.data().len() as u64;
        c.weight_bytes += (w.data().len() * w.data().dtype().size_bytes()) as u64;
        if matches!(n.op, Op::BatchNorm(_)) && slot >= 3 {
            c.buffers += count;
        } else {
            c.params += count;
        }
    }
    c
}

/// Costs of a graph, node by node in topological order.
pub fn graph_cost(m: &Module, g: &Graph) -> GraphCost {
    // Weights counted so far, by index in the weight table (no set of names to hash).
    let mut seen = vec![false; m.weights().len()];
    graph_cost_by(g, |name| {
        let (i, _, w) = m.weights().get_full(name)?;
        let first = seen.get_mut(i).is_some_and(|s| !std::mem::replace(s, true));
        first.then_some(w)
    })
}

/// Like [`graph_cost`], but weights already in `seen` (counted in another graph) are not
/// counted again: used for module totals where graphs share weights.
pub fn graph_cost_sharing(m: &Module, g: &Graph, seen: &mut HashSet<String>) -> GraphCost {
    graph_cost_by(g, |name| {
        if seen.contains(name) {
            return None;
        }
        seen.insert(name.to_string());
        m.weight(name)
    })
}

fn graph_cost_by<'m>(g: &Graph, mut first_read: impl FnMut(&str) -> Option<&'m Weight>) -> GraphCost {
    let order = g.topo_order().unwrap_or_else(|_| g.node_ids().collect());
    let mut total = GraphCost::default();
    for id in order {
        if matches!(g.node(id).op, Op::Input | Op::Weight { .. }) {
            continue;
        }
        let c = node_cost_by(g, id, &mut first_read);
        total.macs += c.macs;
        total.params += c.params;
        total.buffers += c.buffers;
        total.weight_bytes += c.weight_bytes;
        total.nodes.push((id, c));
    }
    total
}
