//! The cost model's per-layer estimate of the generated code: cycles from the rates of
//! `targets/data/gap8.json` (the same as [`Gap8Cost`](super::Gap8Cost)'s), the HyperRAM reads of weights in L3
//! (overlapped with compute by the double-buffered staging), and the comment printed next to
//! each generated layer (MACs, unit, effective MAC/cycle, DMA bytes, L3 bytes).

use super::program::{self, Engine, StepKind};
use super::{Gap8Desc, Gap8Layer, Gap8Report};

/// The built-in GAP8 description (`targets/data/gap8.json`), parsed once.
pub(crate) fn builtin_desc() -> Option<&'static Gap8Desc> {
    static DESC: std::sync::OnceLock<Option<Gap8Desc>> = std::sync::OnceLock::new();
    DESC.get_or_init(|| serde_json::from_str(include_str!("../../data/gap8.json")).ok()).as_ref()
}

/// The cost model's cycles for one step (the same rates as [`Gap8Cost`](super::Gap8Cost); q16 steps run at the
/// 16-bit cluster rate, `cluster_i16_slowdown` times slower).
pub(crate) fn est_cycles(d: &Gap8Desc, s: &program::Step, width: program::Width) -> f64 {
    let work = match &s.kind {
        StepKind::Conv(c) => {
            let macs = c.macs() as f64;
            match &c.engine {
                // The HWCE's rate does not depend on the data width (16-bit in both schemes).
                Engine::Hwce(h) => {
                    return macs * h.passes() as f64 / d.hwce_conv_macs_per_cycle + d.layer_overhead_cycles
                }
                Engine::Dw { .. } => macs / d.cluster_depthwise_macs_per_cycle,
                _ if c.groups > 1 => macs / d.cluster_depthwise_macs_per_cycle,
                _ if c.h == 1 && c.w == 1 => macs / d.cluster_linear_macs_per_cycle,
                _ if c.kh == 1 && c.kw == 1 => macs / d.cluster_pointwise_macs_per_cycle,
                _ => macs / d.cluster_conv_macs_per_cycle,
            }
        }
        StepKind::Clamp { size, .. } | StepKind::Add { size, .. } => *size as f64 / d.cluster_elementwise_per_cycle,
        StepKind::MaxPool(p) | StepKind::AvgPool(p) => (p.c * p.ho * p.wo) as f64 / d.cluster_elementwise_per_cycle,
        StepKind::GlobalAvgPool(m) => (m.c * m.size) as f64 / d.cluster_elementwise_per_cycle,
        StepKind::Concat { parts } => {
            parts.iter().map(|p| p.iter().product::<usize>()).sum::<usize>() as f64 / d.cluster_elementwise_per_cycle
        }
    };
    let work = if width == program::Width::Q16 { work * d.cluster_i16_slowdown } else { work };
    work + d.layer_overhead_cycles
}

/// Adds the L3 weight reads to the estimate of every layer whose weights are in L3: the reads
/// (`l3_bytes` at `weight_load_bytes_per_s`) overlap the compute chunk by chunk, so the layer
/// takes the larger of the two, plus its overhead.
pub(crate) fn charge_l3(r: &mut Gap8Report) {
    let Some(d) = builtin_desc() else { return };
    for l in r.layers.iter_mut().filter(|l| l.l3_bytes > 0) {
        let read = (l.l3_bytes as f64 / d.weight_load_bytes_per_s * d.cluster_hz).round();
        let compute = l.est_cycles - d.layer_overhead_cycles;
        l.est_cycles = compute.max(read) + d.layer_overhead_cycles;
    }
    r.est_cycles = r.layers.iter().map(|l| l.est_cycles).sum();
}

/// The cost-model comment of every layer.
pub(crate) fn comments(layers: &[Gap8Layer]) -> Vec<String> {
    let Some(d) = builtin_desc() else { return vec![String::new(); layers.len()] };
    let hz = d.cluster_hz;
    layers
        .iter()
        .map(|l| {
            let work = (l.est_cycles - d.layer_overhead_cycles).max(0.0);
            let rate = if l.macs > 0 && work > 0.0 {
                let passes = if l.hwce_passes > 1 { format!(" x {} HWCE digit passes", l.hwce_passes) } else { String::new() };
                format!(
                    "{} MACs{passes} on the {} ({:.2} MAC/cycle effective)",
                    l.macs,
                    if l.unit == "hwce" { "HWCE" } else { "cluster" },
                    l.macs as f64 / work
                )
            } else {
                "no MACs, elementwise work on the cluster".to_string()
            };
            let l3 = if l.l3_bytes > 0 {
                format!(
                    "; L3 reads {} B ({:.0} cycles at {:.0} MB/s, overlapped)",
                    l.l3_bytes,
                    l.l3_bytes as f64 / d.weight_load_bytes_per_s * hz,
                    d.weight_load_bytes_per_s / 1e6
                )
            } else {
                String::new()
            };
            format!(
                "Cost model: {:.0} cycles = {:.1} us at {:.0} MHz: {rate}, {:.0} overhead; DMA {} B L2->L1, {} B L1->L2{l3}; constants {} B, output {} B.",
                l.est_cycles,
                l.est_cycles / hz * 1e6,
                hz / 1e6,
                d.layer_overhead_cycles,
                l.dma_in_bytes,
                l.dma_out_bytes,
                l.const_bytes,
                l.out_bytes
            )
        })
        .collect()
}
