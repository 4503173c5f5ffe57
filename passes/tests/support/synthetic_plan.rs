//! Hand-made partition plans for tests of the run-time choice (the policy, the simulator and the
//! device program): cuts with given tensor shapes, bytes per channel and radio budgets, whose
//! outcome the tests know. Included with `#[path]` by the tests that need it.

use clio_passes::plan::{CutPlan, Plan, PlanSettings, SliceOption};

/// A cut after layer `k` with cut tensor `shape`, `bytes_per_channel` bytes per channel on the
/// wire, `radio_budget_s` for the radio and `device_latency_s` of device compute; its slices send
/// `step`, `2 step`, ... up to all channels.
pub fn cut_plan(
    k: usize,
    shape: Vec<usize>,
    bytes_per_channel: u64,
    radio_budget_s: f64,
    device_latency_s: f64,
    step: usize,
) -> CutPlan {
    let channels = shape.get(1).copied().unwrap_or(0);
    CutPlan {
        k,
        node: format!("c{k}"),
        shape,
        bytes_per_channel,
        device_latency_s,
        device_energy_j: 0.0,
        cloud_latency_s: 0.0,
        radio_budget_s,
        slices: (1..=channels / step)
            .map(|i| SliceOption {
                channels: step * i,
                bytes: (step * i) as u64 * bytes_per_channel,
                bandwidth_bps: Some(1.0),
                energy_j: 0.0,
            })
            .collect(),
        range_bps: Some((1.0, 2.0)),
        device_macs: 0,
        device_weight_bytes: 0,
    }
}

/// A plan of model `m` for deadline `latency_s` over `band` (bit/s), slicing every `step`
/// channels, choosing every cut given.
pub fn plan(latency_s: f64, band: (f64, f64), step: usize, cuts: Vec<CutPlan>) -> Plan {
    Plan {
        module: "m".into(),
        graph: "main".into(),
        device: "d".into(),
        cloud: "c".into(),
        link: "ble".into(),
        settings: PlanSettings { latency_s, energy_j: None, band, step: Some(step), granularity: Default::default() },
        chosen: cuts.iter().map(|c| c.k).collect(),
        cuts,
        uncovered: vec![],
    }
}
