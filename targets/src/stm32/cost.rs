//! Cortex-M cost model (STM32F7 with CMSIS-NN): cycles per MAC per kernel family, cycles per
//! element for element-wise kernels, a per-call overhead; energy = time x run power.

use crate::classify::{classify, OpClass};
use crate::desc::check_positive;
use clio::analysis::node_cost;
use clio::cost::{CostModel, OpCost};
use clio::ir::{Graph, Module, NodeId};
use std::collections::HashSet;

/// A Cortex-M description (targets/data/stm32f7.json).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CortexMDesc {
    /// Target name.
    pub name: String,
    /// Always `cortex-m`.
    pub kind: String,
    /// Free text.
    #[serde(default)]
    pub notes: String,
    /// Core clock.
    pub clock_hz: f64,
    /// Cycles per MAC of KxK convolutions.
    pub conv_cycles_per_mac: f64,
    /// Cycles per MAC of 1x1 convolutions.
    pub pointwise_cycles_per_mac: f64,
    /// Cycles per MAC of depthwise convolutions.
    pub depthwise_cycles_per_mac: f64,
    /// Cycles per MAC of fully connected layers.
    pub linear_cycles_per_mac: f64,
    /// Cycles per output element of element-wise kernels.
    pub elementwise_cycles_per_element: f64,
    /// Cycles of overhead per kernel call.
    pub layer_overhead_cycles: f64,
    /// Run-mode power.
    pub active_power_w: f64,
    /// Wake-up latency per inference.
    #[serde(default)]
    pub fixed_latency_s: f64,
    /// Where each number comes from.
    #[serde(default)]
    pub sources: serde_json::Map<String, serde_json::Value>,
}

/// Cortex-M cost model.
pub struct CortexMCost {
    /// The description.
    pub desc: CortexMDesc,
}

impl CortexMCost {
    /// Builds the model.
    pub fn new(desc: CortexMDesc) -> Self {
        CortexMCost { desc }
    }

    /// Validates the numbers.
    pub fn validate(&self) -> Result<(), String> {
        let d = &self.desc;
        check_positive(&[
            ("clock_hz", d.clock_hz),
            ("conv_cycles_per_mac", d.conv_cycles_per_mac),
            ("pointwise_cycles_per_mac", d.pointwise_cycles_per_mac),
            ("depthwise_cycles_per_mac", d.depthwise_cycles_per_mac),
            ("linear_cycles_per_mac", d.linear_cycles_per_mac),
            ("elementwise_cycles_per_element", d.elementwise_cycles_per_element),
            ("active_power_w", d.active_power_w),
        ])
    }
}

impl CostModel for CortexMCost {
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
        let (cycles, unit) = match classify(g, n) {
            OpClass::Free => return OpCost { unit: "none".into(), ..Default::default() },
            OpClass::FusedActivation => return OpCost { unit: "fused".into(), ..Default::default() },
            OpClass::Conv { .. } => (macs * d.conv_cycles_per_mac, "arm_convolve_wrapper_s8"),
            OpClass::Pointwise => (macs * d.pointwise_cycles_per_mac, "arm_convolve_wrapper_s8 (1x1)"),
            OpClass::Depthwise => (macs * d.depthwise_cycles_per_mac, "arm_depthwise_conv_wrapper_s8"),
            OpClass::Linear => (macs * d.linear_cycles_per_mac, "arm_fully_connected_s8"),
            OpClass::Elementwise => (out_elems * d.elementwise_cycles_per_element, "element-wise"),
        };
        let latency = (cycles + d.layer_overhead_cycles) / d.clock_hz;
        OpCost { latency_s: latency, energy_j: latency * d.active_power_w, unit: unit.into() }
    }
}
