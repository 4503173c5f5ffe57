//! The per-layer statistics table of `clio stats`: shapes, parameters, MACs and activation
//! bytes per node, with graph totals and the liveness peak. Serialises to JSON with top-level
//! `params` and `macs` and a `layers` array.

use super::cost::graph_cost_sharing;
use super::liveness;
use crate::ir::{Module, Op};
use crate::text::type_string;

/// One row of the table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerRow {
    /// Graph name.
    pub graph: String,
    /// Node name.
    pub name: String,
    /// Op name.
    pub op: String,
    /// Operand types (activations only; weights are summarised by `params`).
    pub inputs: Vec<String>,
    /// Result shape(s).
    pub output: String,
    /// Learnable parameters read.
    pub params: u64,
    /// Multiply-accumulates.
    pub macs: u64,
    /// Bytes of the result(s).
    pub activation_bytes: u64,
}

/// Whole-module statistics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelStats {
    /// Module name.
    pub module: String,
    /// Total learnable parameters over all graphs (shared weights once).
    pub params: u64,
    /// Total MACs over all graphs.
    pub macs: u64,
    /// Bytes of all weight data in the module.
    pub weight_bytes: u64,
    /// Largest liveness peak (bytes of simultaneously live activations) over the graphs.
    pub peak_activation_bytes: u64,
    /// The rows.
    pub layers: Vec<LayerRow>,
}

/// Builds the table for every graph of `m`.
pub fn layer_table(m: &Module) -> ModelStats {
    let mut layers = vec![];
    let (mut macs, mut peak) = (0u64, 0u64);
    let mut seen = std::collections::HashSet::new();
    let mut params = 0u64;
    for g in m.graphs() {
        let cost = graph_cost_sharing(m, g, &mut seen);
        macs += cost.macs;
        for (id, c) in &cost.nodes {
            let n = g.node(*id);
            layers.push(LayerRow {
                graph: g.name().to_string(),
                name: n.name().to_string(),
                op: n.op.name().to_string(),
                inputs: g
                    .operands(*id)
                    .iter()
                    .filter(|v| !matches!(g.node(v.node).op, Op::Weight { .. }))
                    .filter_map(|v| g.value_type(*v).map(type_string))
                    .collect(),
                output: n.results.iter().map(type_string).collect::<Vec<_>>().join(", "),
                params: c.params,
                macs: c.macs,
                activation_bytes: c.output_bytes,
            });
        }
        params += cost.params;
        if let Ok(order) = g.topo_order() {
            peak = peak.max(liveness(g, &order).peak_bytes as u64);
        }
    }
    let weight_bytes = m.weights().values().map(|w| (w.data().len() * w.data().dtype().size_bytes()) as u64).sum();
    ModelStats { module: m.name.clone(), params, macs, weight_bytes, peak_activation_bytes: peak, layers }
}
