//! `plan-partitions`: choose few partition points that together cover a bandwidth band
//! (Clio's bandwidth coverage heuristic).
//!
//! For every cut point `k` (see `clio::analysis::cut_points`) with the compilation target's
//! cost models (`PassContext::target`):
//! * compute latency `eps_k = device(L_1..k) + cloud(L_k+1..K)`;
//! * the radio gets `T_k = latency - eps_k`;
//! * with the cut tensor's slice sizes (multiples of `step` channels, 8-bit values) and the
//!   link's `R(bytes, T)` = bandwidth needed to deliver `bytes` within `T`, the cut supports
//!   `B_k = [R(smallest slice), R(full tensor)]` (only slices that fit the deadline at some
//!   bandwidth count; with `energy-mj`, only slices whose device compute + radio energy fits);
//! * the smallest set of cuts whose ranges cover the band (`band=50k:2M` by default) is chosen
//!   with the greedy interval cover; what no cut covers is reported.
//!
//! Produces: no IR change; the plan is stored as JSON in the module attribute `clio.plan` and,
//! with `out=PATH`, written to a file (atomically). Preconditions: a compilation target.
//!
//! ```text
//! module @m { graph @main ... }   =>   module @m attributes {clio.plan = "{\"cuts\": [...], \"chosen\": [4, 6, 9], ...}"} { ... }
//! ```

mod cover;
pub mod policy;
pub mod simulate;
pub mod svg;

pub use cover::{exhaustive_min_cover, greedy_cover, Cover};

use clio::analysis::{cut_points, CutPoint, Granularity};
use clio::cost::TargetContext;
use clio::ir::{Attr, Graph, NodeId, Op};
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};
use clio::Module;
use std::collections::HashSet;

/// Declaration of `plan-partitions`.
pub static INFO: PassInfo = PassInfo {
    name: "plan-partitions",
    summary: "Choose the fewest cut points whose supported bandwidth ranges cover a band",
    options: &[
        OptionInfo {
            name: "latency-ms",
            kind: OptionKind::Float,
            default: Some("300"),
            help: "end-to-end deadline per inference",
        },
        OptionInfo {
            name: "energy-mj",
            kind: OptionKind::Float,
            default: Some("0"),
            help: "device energy budget per inference (0 = none)",
        },
        OptionInfo {
            name: "band",
            kind: OptionKind::Str,
            default: Some("50k:2M"),
            help: "bandwidth band to cover, LO:HI in bit/s (k, M suffixes)",
        },
        OptionInfo {
            name: "step",
            kind: OptionKind::Str,
            default: Some("auto"),
            help: "slice granularity in channels; auto = 2 up to 64 channels, else 4",
        },
        OptionInfo {
            name: "granularity",
            kind: OptionKind::Enum(&["block", "layer"]),
            default: Some("block"),
            help: "which cut points to consider",
        },
        OptionInfo { name: "graph", kind: OptionKind::Str, default: Some("main"), help: "the graph to plan" },
        OptionInfo {
            name: "out",
            kind: OptionKind::Path,
            default: Some(""),
            help: "also write the plan (JSON) to this file",
        },
    ],
    statistics: &[
        StatInfo { name: "cuts", help: "cut points considered" },
        StatInfo { name: "feasible", help: "cut points that meet the deadline at some bandwidth" },
        StatInfo { name: "chosen", help: "cut points chosen" },
        StatInfo { name: "uncovered-ranges", help: "parts of the band no cut point covers" },
    ],
};

/// Registers `plan-partitions`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| {
        let fail = |m: String| PassError::Option { pass: "plan-partitions".into(), message: m };
        let band = parse_band(o.str("band")?).map_err(fail)?;
        let step = match o.str("step")? {
            "auto" => None,
            s => Some(
                s.parse::<usize>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| fail(format!("option `step`: expected auto or a positive int, got `{s}`")))?,
            ),
        };
        let latency_ms = o.float("latency-ms")?;
        if latency_ms <= 0.0 {
            return Err(fail(format!("option `latency-ms` must be positive, got {latency_ms}")));
        }
        Ok(Box::new(PlanPartitions {
            settings: PlanSettings {
                latency_s: latency_ms / 1e3,
                energy_j: (o.float("energy-mj")? > 0.0).then(|| o.float("energy-mj").unwrap_or(0.0) / 1e3),
                band,
                step,
                granularity: Granularity::parse(o.str("granularity")?).unwrap_or_default(),
            },
            graph: o.str("graph")?.trim_start_matches('@').to_string(),
            out: o.str("out")?.to_string(),
        }))
    });
}

/// Parses `LO:HI` with optional `k`/`M`/`G` suffixes (bits per second).
pub fn parse_band(s: &str) -> Result<(f64, f64), String> {
    let (lo, hi) = s.split_once(':').ok_or_else(|| format!("band `{s}` must be LO:HI, e.g. 50k:2M"))?;
    let (lo, hi) = (parse_rate(lo)?, parse_rate(hi)?);
    if !(lo > 0.0 && hi > lo) {
        return Err(format!("band `{s}`: need 0 < LO < HI"));
    }
    Ok((lo, hi))
}

/// Parses a rate like `250k`, `2M`, `1.5e6`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v * mul)
        .ok_or_else(|| format!("`{s}` is not a rate (e.g. 250k, 2M)"))
}

/// Planning settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanSettings {
    /// End-to-end deadline.
    pub latency_s: f64,
    /// Optional device energy budget.
    pub energy_j: Option<f64>,
    /// The band to cover (bit/s).
    pub band: (f64, f64),
    /// Slice step in channels (`None`: 2 up to 64 channels, else 4).
    pub step: Option<usize>,
    /// Cut granularity.
    pub granularity: Granularity,
}

/// One slice size at a cut.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SliceOption {
    /// Channels sent.
    pub channels: usize,
    /// Payload bytes (8-bit values).
    pub bytes: u64,
    /// Bandwidth needed to deliver it within the radio budget (`None`: never fits).
    pub bandwidth_bps: Option<f64>,
    /// Device energy: compute plus radio.
    pub energy_j: f64,
}

/// The planning data of one cut point.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CutPlan {
    /// Cut index.
    pub k: usize,
    /// Node producing the cut tensor.
    pub node: String,
    /// Cut tensor shape.
    pub shape: Vec<usize>,
    /// Bytes per channel at 8 bits.
    pub bytes_per_channel: u64,
    /// Device compute latency.
    pub device_latency_s: f64,
    /// Device compute energy.
    pub device_energy_j: f64,
    /// Cloud compute latency.
    pub cloud_latency_s: f64,
    /// Time left for the radio (`latency - device - cloud`).
    pub radio_budget_s: f64,
    /// Slice sizes that fit the energy budget, smallest first.
    pub slices: Vec<SliceOption>,
    /// Supported range `[R(smallest), R(full)]`, or `None` when infeasible.
    pub range_bps: Option<(f64, f64)>,
    /// Device MACs.
    pub device_macs: u64,
    /// Device weight bytes.
    pub device_weight_bytes: u64,
}

/// A partition plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Module name.
    pub module: String,
    /// Planned graph.
    pub graph: String,
    /// Device cost model name.
    pub device: String,
    /// Cloud cost model name.
    pub cloud: String,
    /// Link name.
    pub link: String,
    /// Settings used.
    pub settings: PlanSettings,
    /// Every cut point.
    pub cuts: Vec<CutPlan>,
    /// Chosen cut indices `k`, by increasing lower bandwidth.
    pub chosen: Vec<usize>,
    /// Parts of the band no cut covers.
    pub uncovered: Vec<(f64, f64)>,
}

impl Plan {
    /// The plan of cut `k`.
    pub fn cut(&self, k: usize) -> Option<&CutPlan> {
        self.cuts.iter().find(|c| c.k == k)
    }
}

/// Slice sizes of a cut tensor with `channels` channels.
pub fn slice_sizes(channels: usize, step: Option<usize>) -> Vec<usize> {
    let step = step.unwrap_or(if channels <= 64 { 2 } else { 4 }).max(1);
    let mut v: Vec<usize> = (1..).map(|i| i * step).take_while(|s| *s < channels).collect();
    v.push(channels);
    v
}

fn upstream(g: &Graph, n: NodeId) -> HashSet<NodeId> {
    let mut seen = HashSet::new();
    let mut stack = vec![n];
    while let Some(x) = stack.pop() {
        if seen.insert(x) {
            stack.extend(g.producers(x));
        }
    }
    seen
}

/// Plans graph `graph` of `m` for `target`.
pub fn plan(m: &Module, graph: &str, target: &TargetContext, s: &PlanSettings) -> Result<Plan, String> {
    let g = m.graph(graph).ok_or_else(|| format!("no graph @{graph}"))?;
    let cuts: Vec<CutPoint> = cut_points(m, graph, s.granularity).map_err(|e| e.to_string())?;
    let order = g.topo_order().map_err(|c| format!("cycle at {}", c.0))?;
    let mut plans = vec![];
    for c in &cuts {
        let up = upstream(g, c.value.node);
        let (dev_nodes, cloud_nodes): (Vec<NodeId>, Vec<NodeId>) =
            order.iter().copied().filter(|n| !matches!(g.node(*n).op, Op::Weight { .. })).partition(|n| up.contains(n));
        let dev = target.device.nodes_cost(m, g, &dev_nodes);
        let cloud = target.cloud.nodes_cost(m, g, &cloud_nodes);
        let budget = s.latency_s - dev.latency_s - cloud.latency_s;
        let slices: Vec<SliceOption> = slice_sizes(c.channels, s.step)
            .into_iter()
            .map(|ch| {
                let bytes = ch as u64 * c.bytes_per_channel_q8;
                SliceOption {
                    channels: ch,
                    bytes,
                    bandwidth_bps: if budget > 0.0 { target.link.bandwidth_needed_bps(bytes, budget) } else { None },
                    energy_j: dev.energy_j + target.link.transfer_energy_j(bytes),
                }
            })
            .filter(|sl| s.energy_j.is_none_or(|e| sl.energy_j <= e))
            .collect();
        let fitting: Vec<f64> = slices.iter().filter_map(|sl| sl.bandwidth_bps).collect();
        let range = match (fitting.first(), fitting.last()) {
            (Some(lo), Some(hi)) => Some((*lo, *hi)),
            _ => None,
        };
        plans.push(CutPlan {
            k: c.k,
            node: c.node.clone(),
            shape: c.shape.clone(),
            bytes_per_channel: c.bytes_per_channel_q8,
            device_latency_s: dev.latency_s,
            device_energy_j: dev.energy_j,
            cloud_latency_s: cloud.latency_s,
            radio_budget_s: budget,
            slices,
            range_bps: range,
            device_macs: c.device_macs,
            device_weight_bytes: c.device_weight_bytes,
        });
    }
    // The cut points that support some bandwidth, with their ranges (same order).
    let (candidates, intervals): (Vec<usize>, Vec<(f64, f64)>) =
        plans.iter().filter_map(|p| p.range_bps.map(|r| (p.k, r))).unzip();
    let cover = greedy_cover(&intervals, s.band);
    let chosen = cover.chosen.iter().filter_map(|i| candidates.get(*i).copied()).collect();
    Ok(Plan {
        module: m.name.clone(),
        graph: graph.to_string(),
        device: target.device.name().to_string(),
        cloud: target.cloud.name().to_string(),
        link: target.link.name().to_string(),
        settings: s.clone(),
        cuts: plans,
        chosen,
        uncovered: cover.uncovered,
    })
}

/// The `plan-partitions` pass.
pub struct PlanPartitions {
    /// Settings.
    pub settings: PlanSettings,
    /// Graph to plan.
    pub graph: String,
    /// Output file ("" = none).
    pub out: String,
}

impl Pass for PlanPartitions {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        let target = cx.target()?.clone();
        let p = plan(m, &self.graph, &target, &self.settings).map_err(|e| PassError::failed("plan-partitions", e))?;
        cx.stat("cuts", p.cuts.len() as i64);
        cx.stat("feasible", p.cuts.iter().filter(|c| c.range_bps.is_some()).count() as i64);
        cx.stat("chosen", p.chosen.len() as i64);
        cx.stat("uncovered-ranges", p.uncovered.len() as i64);
        let json = serde_json::to_string_pretty(&p).map_err(|e| PassError::failed("plan-partitions", e.to_string()))?;
        if !self.out.is_empty() {
            clio::io::write_atomic(std::path::Path::new(&self.out), json.as_bytes())
                .map_err(|e| PassError::failed("plan-partitions", e.to_string()))?;
        }
        m.attrs.insert("clio.plan".into(), Attr::Str(serde_json::to_string(&p).unwrap_or_default()));
        Ok(())
    }
}
