//! Cloud server cost model: MAC throughput, element-wise throughput, per-layer launch overhead
//! and a fixed per-inference latency.

use crate::classify::{classify, OpClass};
use crate::desc::check_positive;
use clio::analysis::node_cost;
use clio::cost::{CostModel, OpCost};
use clio::ir::{Graph, Module, NodeId};
use std::collections::HashSet;

/// A server description (targets/data/cloud-*.json).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDesc {
    /// Target name.
    pub name: String,
    /// Always `server`.
    pub kind: String,
    /// Free text.
    #[serde(default)]
    pub notes: String,
    /// Effective MACs per second at batch 1.
    pub macs_per_s: f64,
    /// Element-wise outputs per second.
    pub elementwise_per_s: f64,
    /// Launch overhead per layer.
    pub layer_overhead_s: f64,
    /// Overhead per inference.
    pub fixed_latency_s: f64,
    /// Power while computing.
    pub active_power_w: f64,
    /// Where each number comes from.
    #[serde(default)]
    pub sources: serde_json::Map<String, serde_json::Value>,
}

/// Server cost model.
pub struct ServerCost {
    /// The description.
    pub desc: ServerDesc,
}

impl ServerCost {
    /// Builds the model.
    pub fn new(desc: ServerDesc) -> Self {
        ServerCost { desc }
    }

    /// Validates the numbers.
    pub fn validate(&self) -> Result<(), String> {
        let d = &self.desc;
        check_positive(&[
            ("macs_per_s", d.macs_per_s),
            ("elementwise_per_s", d.elementwise_per_s),
            ("active_power_w", d.active_power_w),
        ])
    }
}

impl CostModel for ServerCost {
    fn name(&self) -> &str {
        &self.desc.name
    }

    fn fixed_latency_s(&self) -> f64 {
        self.desc.fixed_latency_s
    }

    fn op_cost(&self, m: &Module, g: &Graph, n: NodeId) -> OpCost {
        let d = &self.desc;
        let macs = node_cost(m, g, n, &mut HashSet::new()).macs as f64;
        let out_elems = g.node(n).results.iter().map(|t| t.num_elements().unwrap_or(0)).sum::<usize>() as f64;
        let work = match classify(g, n) {
            OpClass::Free | OpClass::FusedActivation => return OpCost { unit: "none".into(), ..Default::default() },
            OpClass::Elementwise => out_elems / d.elementwise_per_s,
            _ => macs / d.macs_per_s,
        };
        let latency = work + d.layer_overhead_s;
        OpCost { latency_s: latency, energy_j: latency * d.active_power_w, unit: d.name.clone() }
    }
}
