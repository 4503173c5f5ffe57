//! GAP8 cost model: convolutions the HWCE supports (3x3, 5x5, 7x7, dense, dilation 1) run on
//! the HWCE; depthwise, 1x1, linear and element-wise work run on the 8 cluster cores; ReLU /
//! ReLU6 after a conv are fused (they run on the tile in L1). Each layer pays a launch overhead
//! and, when its weights live in L3, the HyperFlash/HyperRAM transfer of its weights.

use crate::classify::{classify, OpClass};
use crate::desc::check_positive;
use clio::analysis::node_cost;
use clio::cost::{CostModel, OpCost};
use clio::ir::{DType, Graph, Module, NodeId, Op};
use std::collections::HashSet;

/// The GAP8 description (targets/data/gap8.json).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gap8Desc {
    /// Target name.
    pub name: String,
    /// Always `gap8`.
    pub kind: String,
    /// Free text.
    #[serde(default)]
    pub notes: String,
    /// Cluster clock.
    pub cluster_hz: f64,
    /// Fabric controller clock.
    pub fabric_hz: f64,
    /// Effective HWCE MACs per cluster cycle.
    pub hwce_conv_macs_per_cycle: f64,
    /// Effective MACs per cycle of KxK convs on the cluster cores.
    pub cluster_conv_macs_per_cycle: f64,
    /// Effective MACs per cycle of 1x1 convs on the cluster cores.
    pub cluster_pointwise_macs_per_cycle: f64,
    /// Effective MACs per cycle of depthwise convs on the cluster cores.
    pub cluster_depthwise_macs_per_cycle: f64,
    /// Effective MACs per cycle of fully connected layers.
    pub cluster_linear_macs_per_cycle: f64,
    /// Output elements per cycle of element-wise work.
    pub cluster_elementwise_per_cycle: f64,
    /// How many times slower the cluster cores run 16-bit (q16) data than 8-bit: their SIMD dot
    /// products take 4 int8 or 2 int16 pairs per instruction. q16 convolutions never use the
    /// HWCE (see docs/gap8.md), so they are charged at the cluster rate divided by this.
    #[serde(default = "default_i16_slowdown")]
    pub cluster_i16_slowdown: f64,
    /// Cycles of overhead per layer.
    pub layer_overhead_cycles: f64,
    /// Bytes per second moving weights from L3 to L2.
    pub weight_load_bytes_per_s: f64,
    /// Power while computing.
    pub active_power_w: f64,
    /// Wake-up / set-up latency per inference.
    #[serde(default)]
    pub fixed_latency_s: f64,
    /// Where each number comes from.
    #[serde(default)]
    pub sources: serde_json::Map<String, serde_json::Value>,
}

fn default_i16_slowdown() -> f64 {
    2.0
}

/// GAP8 cost model.
pub struct Gap8Cost {
    /// The description.
    pub desc: Gap8Desc,
}

impl Gap8Cost {
    /// Builds the model (fields validated by [`crate::load_target`]).
    pub fn new(desc: Gap8Desc) -> Self {
        Gap8Cost { desc }
    }

    /// Whether the HWCE runs this conv (dense KxK with K in {3, 5, 7}, dilation 1).
    pub fn hwce_eligible(g: &Graph, n: NodeId) -> bool {
        match (classify(g, n), &g.node(n).op) {
            (OpClass::Conv { kh, kw }, Op::Conv2d(c)) => {
                kh == kw && matches!(kh, 3 | 5 | 7) && c.dilations == [1, 1] && c.groups == 1
            }
            _ => false,
        }
    }

    /// Validates the numbers.
    pub fn validate(&self) -> Result<(), String> {
        let d = &self.desc;
        check_positive(&[
            ("cluster_hz", d.cluster_hz),
            ("fabric_hz", d.fabric_hz),
            ("hwce_conv_macs_per_cycle", d.hwce_conv_macs_per_cycle),
            ("cluster_conv_macs_per_cycle", d.cluster_conv_macs_per_cycle),
            ("cluster_pointwise_macs_per_cycle", d.cluster_pointwise_macs_per_cycle),
            ("cluster_depthwise_macs_per_cycle", d.cluster_depthwise_macs_per_cycle),
            ("cluster_linear_macs_per_cycle", d.cluster_linear_macs_per_cycle),
            ("cluster_elementwise_per_cycle", d.cluster_elementwise_per_cycle),
            ("cluster_i16_slowdown", d.cluster_i16_slowdown),
            ("weight_load_bytes_per_s", d.weight_load_bytes_per_s),
            ("active_power_w", d.active_power_w),
        ])
    }
}

impl CostModel for Gap8Cost {
    fn name(&self) -> &str {
        &self.desc.name
    }

    fn fixed_latency_s(&self) -> f64 {
        self.desc.fixed_latency_s
    }

    fn op_cost(&self, m: &Module, g: &Graph, n: NodeId) -> OpCost {
        let d = &self.desc;
        let c = node_cost(m, g, n, &mut HashSet::new());
        let out_elems = g.node(n).results.iter().map(|t| t.num_elements().unwrap_or(0)).sum::<usize>() as f64;
        // q16 data: 16-bit results run on the cluster only, at the 16-bit SIMD rate.
        let wide = g.node(n).results.iter().any(|t| t.dtype == DType::I16);
        let (cycles, unit) = match classify(g, n) {
            OpClass::Free => return OpCost { unit: "none".into(), ..Default::default() },
            OpClass::FusedActivation => return OpCost { unit: "fused".into(), ..Default::default() },
            OpClass::Conv { .. } if !wide && Self::hwce_eligible(g, n) => {
                (c.macs as f64 / d.hwce_conv_macs_per_cycle, "hwce")
            }
            OpClass::Conv { .. } => (c.macs as f64 / d.cluster_conv_macs_per_cycle, "cluster-conv"),
            OpClass::Pointwise => (c.macs as f64 / d.cluster_pointwise_macs_per_cycle, "cluster-pointwise"),
            OpClass::Depthwise => (c.macs as f64 / d.cluster_depthwise_macs_per_cycle, "cluster-depthwise"),
            OpClass::Linear => (c.macs as f64 / d.cluster_linear_macs_per_cycle, "cluster-linear"),
            OpClass::Elementwise => (out_elems / d.cluster_elementwise_per_cycle, "cluster-elementwise"),
        };
        let cycles = if wide { cycles * d.cluster_i16_slowdown } else { cycles };
        let latency =
            (cycles + d.layer_overhead_cycles) / d.cluster_hz + c.weight_bytes as f64 / d.weight_load_bytes_per_s;
        OpCost { latency_s: latency, energy_j: latency * d.active_power_w, unit: unit.into() }
    }
}
