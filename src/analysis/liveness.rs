//! Tensor liveness over a schedule: for every activation value, the step that defines it and
//! the last step that reads it; the bytes live at each step and the peak. Weights are not
//! activations (they live in flash / L3) and are excluded. Graph inputs are live from step 0,
//! graph outputs until the end.

use crate::ir::{Graph, NodeId, Op, Value};
use std::collections::HashMap;

/// The live range of one value (inclusive step indices into the schedule).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Interval {
    /// The value.
    #[serde(skip)]
    pub value: Value,
    /// Its producer's name.
    pub name: String,
    /// Step that defines it.
    pub start: usize,
    /// Last step that needs it.
    pub end: usize,
    /// Size in bytes.
    pub bytes: usize,
}

/// The liveness of a schedule.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Liveness {
    /// One interval per activation value.
    pub intervals: Vec<Interval>,
    /// Bytes live at each step (the result of the step included).
    pub live_bytes: Vec<usize>,
    /// Largest entry of `live_bytes`: the lower bound for any activation arena without
    /// in-place reuse.
    pub peak_bytes: usize,
    /// A step where the peak occurs.
    pub peak_step: usize,
}

/// Liveness of `g` executed in `schedule` order (a topological order of the non-weight nodes;
/// [`Graph::topo_order`] filtered is the default). Nodes missing from the schedule are ignored.
pub fn liveness(g: &Graph, schedule: &[NodeId]) -> Liveness {
    let steps: Vec<NodeId> =
        schedule.iter().copied().filter(|id| !matches!(g.node(*id).op, Op::Weight { .. })).collect();
    let pos: HashMap<NodeId, usize> = steps.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let last = steps.len().saturating_sub(1);
    let mut intervals = vec![];
    for (i, id) in steps.iter().enumerate() {
        let n = g.node(*id);
        let start = if matches!(n.op, Op::Input) { 0 } else { i };
        for (r, t) in n.results.iter().enumerate() {
            let v = Value { node: *id, result: r as u32 };
            let mut end = g.uses(v).iter().filter_map(|(u, _)| pos.get(u)).copied().max().unwrap_or(start);
            if g.outputs().contains(&v) {
                end = last;
            }
            intervals.push(Interval {
                value: v,
                name: n.name().to_string(),
                start,
                end: end.max(start),
                bytes: t.size_bytes().unwrap_or(usize::MAX),
            });
        }
    }
    let mut live_bytes = vec![0usize; steps.len()];
    for iv in &intervals {
        for b in &mut live_bytes[iv.start..=iv.end.min(last)] {
            *b = b.saturating_add(iv.bytes);
        }
    }
    let (peak_step, peak_bytes) =
        live_bytes.iter().copied().enumerate().max_by_key(|(i, b)| (*b, std::cmp::Reverse(*i))).unwrap_or((0, 0));
    Liveness { intervals, live_bytes, peak_bytes, peak_step }
}
