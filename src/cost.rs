//! Cost-model traits. The core defines them; `clio-targets` implements them for GAP8,
//! STM32F7, cloud servers and radio links. Passes that need costs (partition planning,
//! canonicalisation) take a `&dyn CostModel` / `&dyn LinkModel` and never name a target.

use crate::ir::{Graph, Module, NodeId, Op};

/// The estimated cost of one node on one executor.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct OpCost {
    /// Wall time in seconds.
    pub latency_s: f64,
    /// Energy in joules.
    pub energy_j: f64,
    /// Which execution resource the estimate assumes (e.g. `hwce-3x3`, `cluster`,
    /// `arm_convolve_wrapper_s8`), for reports and generated comments.
    pub unit: String,
}

/// Latency and energy of ops on one executor (a device or a cloud server).
pub trait CostModel: Send + Sync {
    /// Executor name (`gap8`, `stm32f7`, `cloud-gpu` ...).
    fn name(&self) -> &str;

    /// Cost of one node of `g`. Inputs and weight reads cost nothing.
    fn op_cost(&self, m: &Module, g: &Graph, node: NodeId) -> OpCost;

    /// A fixed cost per inference (wake-up, launch, framework overhead), in seconds.
    fn fixed_latency_s(&self) -> f64 {
        0.0
    }

    /// Total cost of the given nodes (plus the fixed latency once).
    fn nodes_cost(&self, m: &Module, g: &Graph, nodes: &[NodeId]) -> OpCost {
        let mut total =
            OpCost { latency_s: self.fixed_latency_s(), unit: self.name().to_string(), ..Default::default() };
        for n in nodes {
            if matches!(g.node(*n).op, Op::Input | Op::Weight { .. }) {
                continue;
            }
            let c = self.op_cost(m, g, *n);
            total.latency_s += c.latency_s;
            total.energy_j += c.energy_j;
        }
        total
    }
}

/// A communication link from the device to the cloud.
pub trait LinkModel: Send + Sync {
    /// Link name (`ble`, `wifi` ...).
    fn name(&self) -> &str;

    /// The link's usual application throughput in bit/s (used when no bandwidth is given).
    fn nominal_bandwidth_bps(&self) -> f64;

    /// Seconds to deliver `bytes` of payload when the link's application throughput is
    /// `bandwidth_bps` bits per second (including per-message overheads and set-up latency).
    fn transfer_time_s(&self, bytes: u64, bandwidth_bps: f64) -> f64;

    /// Device-side energy in joules to send `bytes` of payload.
    fn transfer_energy_j(&self, bytes: u64) -> f64;

    /// Largest payload (bytes) deliverable within `seconds` at `bandwidth_bps`: the inverse of
    /// [`LinkModel::transfer_time_s`].
    fn bytes_within(&self, seconds: f64, bandwidth_bps: f64) -> u64;

    /// Bandwidth (bits per second) needed to deliver `bytes` within `seconds`, or `None` if the
    /// fixed overheads alone exceed `seconds`.
    fn bandwidth_needed_bps(&self, bytes: u64, seconds: f64) -> Option<f64>;
}

/// The executors and link a compilation targets, handed to passes through
/// [`crate::pass::PassContext::target`] (like a target machine in LLVM's pass manager). The
/// driver fills it from `--target`, `--cloud` and `--link`.
#[derive(Clone)]
pub struct TargetContext {
    /// The device (GAP8, STM32F7 ...).
    pub device: std::sync::Arc<dyn CostModel>,
    /// The cloud executor.
    pub cloud: std::sync::Arc<dyn CostModel>,
    /// The device-to-cloud link.
    pub link: std::sync::Arc<dyn LinkModel>,
}

impl std::fmt::Debug for TargetContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TargetContext {{ device: {}, cloud: {}, link: {} }}",
            self.device.name(),
            self.cloud.name(),
            self.link.name()
        )
    }
}
