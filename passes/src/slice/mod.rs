//! `slice`: Clio's progressive slicing at a cut point.
//!
//! Matches: graph `@main` (option `graph`) and a cut point `cut` (index `k` or node name, see
//! `clio::analysis::cut_points`).
//! Produces, replacing the graph:
//! * the cut tensor's channels reordered, most important first (option `order`: `l1` of the
//!   producing filters, `bn-gamma`, or `none`), as a permutation of every producer and consumer
//!   weight, so the full-width function is unchanged;
//! * `@device` (option `device`): as `partition` makes it, ending in `transmit` of the cut
//!   tensor (to the widest head);
//! * one cloud head per slice size `i` (options `sizes=4:8:16`, `step=N` or `pow2=true`; by
//!   default `step` as `plan-partitions` chooses it: 2 up to 64 channels, else 4), named
//!   `@cloud.s<i>` (option `cloud` gives the prefix). A head's input has the first `i` channels.
//!   Its first channel-mixing layers (and per-channel parameters before them) read per-slice
//!   weights `@<weight>.s<i>`, initialised from the first `i` input channels of the original;
//!   every later layer reads the original weight names: tied between heads, except the running
//!   statistics of batch norms, which each head has its own copy of (`@<mean>.s<i>`; option
//!   `bn-stats=tied` shares them too). One shared running estimate averages statistics that
//!   differ per head: after training, evaluation then loses up to 30 points on a head.
//! * If the cut tensor feeds a residual block's identity skip, that skip first becomes an
//!   identity 1x1 conv (`skip-to-conv` on that block only), so a sliced input can feed it.
//! * The training objective (see [`objective`]): for a bandwidth distribution (option
//!   `bandwidth`: `uniform:LO:HI` (default `uniform:50k:2M`), `loguniform:LO:HI`, `trace:PATH`
//!   with `trace-scale`, or `none` for equal weights) and the radio budget (from the compilation
//!   target: `latency-ms` minus device and cloud compute, or given as `radio-ms`), the weights
//!   `pi_i` of the per-slice losses. Written with the heads, their graphs and per-slice / tied
//!   weights as JSON to the module attribute `clio.slice` and, with `objective=PATH`, a file.
//!
//! Before training, head `i` computes exactly what the original cloud part computes on the
//! (reordered) cut tensor with channels `i..` set to zero, when the first layers read the cut
//! tensor directly; the widest head computes the original function.
//!
//! ```text
//! graph @main(%x) {                       graph @device(%x) { ... %c.tx = transmit(%c) {to = "cloud.s4"} }
//!   %c = relu(...)  : 1x4x8x8              graph @cloud.s2(%c: 1x2x8x8) { %y = conv2d(%c, @w.s2) ... %z = gemm(%y, @fc) }
//!   %y = conv2d(%c, @w)            =>      graph @cloud.s4(%c: 1x4x8x8) { %y = conv2d(%c, @w.s4) ... %z = gemm(%y, @fc) }
//!   %z = gemm(%y, @fc) ...
//! ```

pub mod heads;
pub mod objective;
pub mod order;

use crate::partition::split_taking;
use crate::plan::{plan, PlanSettings};
use clio::analysis::{cut_points, find_cut, Granularity};
use clio::ir::{Attr, Graph, Op, Weight, WeightMap};
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};
use clio::Module;
use heads::{build_head, sliced_region, BnStats, HeadWeights, RegionError};
use objective::{objective, BandwidthDist};
use order::{plan_reorder, ChannelOrder};
use rustc_hash::FxHashMap;

/// Declaration of `slice`.
pub static INFO: PassInfo = PassInfo {
    name: "slice",
    summary: "Progressive slicing: order the cut tensor's channels, split, and build one cloud head per slice size",
    options: &[
        OptionInfo {
            name: "cut",
            kind: OptionKind::Str,
            default: None,
            help: "cut point: index k or the name of the node producing the cut tensor",
        },
        OptionInfo {
            name: "sizes",
            kind: OptionKind::Str,
            default: Some(""),
            help: "explicit slice sizes in channels, increasing, `:`-separated (e.g. 4:8:16)",
        },
        OptionInfo {
            name: "step",
            kind: OptionKind::Int,
            default: Some("0"),
            help: "slice sizes are multiples of N (plus the full width); 0 = auto (2 up to 64 channels, else 4)",
        },
        OptionInfo {
            name: "pow2",
            kind: OptionKind::Bool,
            default: Some("false"),
            help: "slice sizes are powers of two (plus the full width)",
        },
        OptionInfo {
            name: "order",
            kind: OptionKind::Enum(&["l1", "bn-gamma", "none"]),
            default: Some("l1"),
            help: "channel importance criterion for the cut tensor's order",
        },
        OptionInfo {
            name: "bandwidth",
            kind: OptionKind::Str,
            default: Some("uniform:50k:2M"),
            help: "bandwidth distribution for pi: uniform:LO:HI, loguniform:LO:HI, trace:PATH or none",
        },
        OptionInfo {
            name: "trace-scale",
            kind: OptionKind::Float,
            default: Some("1"),
            help: "factor applied to a trace's bandwidths",
        },
        OptionInfo {
            name: "latency-ms",
            kind: OptionKind::Float,
            default: Some("300"),
            help: "end-to-end deadline (with a compilation target)",
        },
        OptionInfo {
            name: "radio-ms",
            kind: OptionKind::Float,
            default: Some("0"),
            help: "radio time budget; 0 = from the target's cost models and latency-ms",
        },
        OptionInfo {
            name: "granularity",
            kind: OptionKind::Enum(&["block", "layer"]),
            default: Some("block"),
            help: "which cut points are numbered",
        },
        OptionInfo {
            name: "bn-stats",
            kind: OptionKind::Enum(&["per-head", "tied"]),
            default: Some("per-head"),
            help: "running statistics of the batch norms after the first layers: a copy per head, or shared",
        },
        OptionInfo { name: "graph", kind: OptionKind::Str, default: Some("main"), help: "the graph to slice" },
        OptionInfo { name: "device", kind: OptionKind::Str, default: Some("device"), help: "name of the device graph" },
        OptionInfo {
            name: "cloud",
            kind: OptionKind::Str,
            default: Some("cloud"),
            help: "prefix of the head graphs (`<cloud>.s<size>`)",
        },
        OptionInfo {
            name: "objective",
            kind: OptionKind::Path,
            default: Some(""),
            help: "also write the slicing JSON (sizes, heads, pi) to this file",
        },
    ],
    statistics: &[
        StatInfo { name: "heads", help: "cloud heads built (one per slice size)" },
        StatInfo { name: "weights-permuted", help: "weights permuted to reorder the cut tensor's channels" },
        StatInfo { name: "skips-rewritten", help: "identity skips after the cut turned into 1x1 convs" },
        StatInfo { name: "per-slice-params", help: "parameters of the per-slice weights, all heads" },
    ],
};

/// How the slice sizes are chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum Sizes {
    /// Exactly these.
    List(Vec<usize>),
    /// Multiples of a step (`None`: auto) plus the full width.
    Step(Option<usize>),
    /// Powers of two plus the full width.
    Pow2,
}

impl Sizes {
    /// The sizes for a cut tensor of `channels` channels, or why they are invalid.
    pub fn resolve(&self, channels: usize) -> Result<Vec<usize>, String> {
        match self {
            Sizes::List(v) => {
                if v.is_empty() || v.windows(2).any(|w| w[0] >= w[1]) || v[0] == 0 {
                    return Err(format!("sizes {v:?} must be positive and strictly increasing"));
                }
                if v.last().is_some_and(|l| *l > channels) {
                    return Err(format!("sizes {v:?}: the cut tensor has only {channels} channels"));
                }
                Ok(v.clone())
            }
            Sizes::Step(step) => Ok(crate::plan::slice_sizes(channels, *step)),
            Sizes::Pow2 => {
                let mut v: Vec<usize> = (0..).map(|e| 1usize << e).take_while(|s| *s < channels).collect();
                v.push(channels);
                Ok(v)
            }
        }
    }
}

/// Where the bandwidth distribution comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum BandwidthSource {
    /// A parametric distribution.
    Dist(BandwidthDist),
    /// A trace file and its scale.
    Trace(String, f64),
    /// Equal weights, no distribution.
    None,
}

/// Registers `slice`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| {
        let fail = |m: String| PassError::Option { pass: "slice".into(), message: m };
        let given = [o.is_set("sizes"), o.usize("step")? > 0, o.bool("pow2")?].iter().filter(|b| **b).count();
        if given > 1 {
            return Err(fail("give at most one of sizes, step and pow2".into()));
        }
        let sizes = if o.is_set("sizes") {
            let v: Result<Vec<usize>, String> = o
                .str("sizes")?
                .split(':')
                .map(|p| p.trim().parse::<usize>().map_err(|_| format!("option `sizes`: `{p}` is not a channel count")))
                .collect();
            Sizes::List(v.map_err(fail)?)
        } else if o.bool("pow2")? {
            Sizes::Pow2
        } else {
            Sizes::Step(Some(o.usize("step")?).filter(|s| *s > 0))
        };
        let bw = o.str("bandwidth")?;
        let bandwidth = if bw == "none" {
            BandwidthSource::None
        } else if let Some(path) = bw.strip_prefix("trace:") {
            let scale = o.float("trace-scale")?;
            if !(scale.is_finite() && scale > 0.0) {
                return Err(fail(format!("option `trace-scale` must be positive, got {scale}")));
            }
            BandwidthSource::Trace(path.to_string(), scale)
        } else {
            BandwidthSource::Dist(BandwidthDist::parse_parametric(bw).map_err(fail)?)
        };
        let latency_ms = o.float("latency-ms")?;
        let radio_ms = o.float("radio-ms")?;
        if !(latency_ms > 0.0 && radio_ms >= 0.0 && radio_ms.is_finite()) {
            return Err(fail(format!(
                "latency-ms must be positive and radio-ms >= 0, got {latency_ms} and {radio_ms}"
            )));
        }
        Ok(Box::new(Slice {
            cut: o.str("cut")?.to_string(),
            sizes,
            order: ChannelOrder::parse(o.str("order")?).unwrap_or(ChannelOrder::Keep),
            bandwidth,
            latency_s: latency_ms / 1e3,
            radio_s: (radio_ms > 0.0).then_some(radio_ms / 1e3),
            granularity: Granularity::parse(o.str("granularity")?).unwrap_or_default(),
            bn_stats: if o.str("bn-stats")? == "tied" { BnStats::Tied } else { BnStats::PerHead },
            graph: o.str("graph")?.trim_start_matches('@').to_string(),
            device: o.str("device")?.trim_start_matches('@').to_string(),
            cloud: o.str("cloud")?.trim_start_matches('@').to_string(),
            objective: o.str("objective")?.to_string(),
        }))
    });
}

/// The `slice` pass.
pub struct Slice {
    /// Cut id (index or node name).
    pub cut: String,
    /// Slice sizes.
    pub sizes: Sizes,
    /// Channel order of the cut tensor.
    pub order: ChannelOrder,
    /// Bandwidth distribution for the objective.
    pub bandwidth: BandwidthSource,
    /// End-to-end deadline (with a target).
    pub latency_s: f64,
    /// Explicit radio budget.
    pub radio_s: Option<f64>,
    /// Cut numbering.
    pub granularity: Granularity,
    /// Running statistics of the heads' later batch norms.
    pub bn_stats: BnStats,
    /// Graph to slice.
    pub graph: String,
    /// Device graph name.
    pub device: String,
    /// Head graph prefix.
    pub cloud: String,
    /// Output file for the JSON ("" = none).
    pub objective: String,
}

/// One head in the slicing report.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HeadReport {
    /// Channels it receives.
    pub size: usize,
    /// Its graph.
    pub graph: String,
    /// Payload bytes at 8 bits per value.
    pub bytes_q8: u64,
    /// Bandwidth needed within the radio budget (`None`: never fits; absent without a budget).
    pub bandwidth_bps: Option<f64>,
    /// `P(B >= bandwidth_bps)`.
    pub p_fits: f64,
    /// Loss weight.
    pub pi: f64,
    /// Its own and shared weights.
    pub weights: HeadWeights,
}

/// What `slice` did: stored as the module attribute `clio.slice` (JSON).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SliceReport {
    /// Cut index.
    pub cut_k: usize,
    /// Node producing the cut tensor.
    pub cut_node: String,
    /// Cut tensor shape.
    pub cut_shape: Vec<usize>,
    /// Device graph.
    pub device: String,
    /// Channel order criterion.
    pub order: String,
    /// Original channel index at each position of the transmitted tensor.
    pub channel_order: Vec<usize>,
    /// Identity skips rewritten into 1x1 convs.
    pub skips_rewritten: Vec<String>,
    /// The bandwidth distribution.
    pub distribution: String,
    /// Radio time budget, if known.
    pub radio_budget_s: Option<f64>,
    /// `P(no slice fits)`.
    pub p_none: f64,
    /// The heads, smallest first.
    pub heads: Vec<HeadReport>,
}

/// What a failing `slice` needs to put the module back as it was, without a copy of the module:
/// the graph order and weight count, the weights it permuted in place, and the sliced graph
/// itself (taken back from the split; copied first only when it is edited before the split,
/// i.e. for an identity skip to rewrite or a permuted weight read more than once).
struct Undo {
    graph: String,
    names: Vec<String>,
    weights_len: usize,
    /// Weights rewritten in place, with their old value (new weights are only appended).
    replaced: Vec<(String, Weight)>,
    /// The whole weight table, when a step removes weights before the end.
    weights: Option<WeightMap>,
    /// The sliced graph as it was, when a step edits it before the split.
    saved: Option<Graph>,
    /// The sliced graph handed back by the split.
    taken: Option<Graph>,
}

impl Undo {
    fn new(m: &Module, graph: &str) -> Undo {
        Undo {
            graph: graph.to_string(),
            names: m.graph_names(),
            weights_len: m.weights().len(),
            replaced: vec![],
            weights: None,
            saved: None,
            taken: None,
        }
    }

    /// Copies the sliced graph before its first edit (before the split).
    fn save_graph(&mut self, m: &Module) {
        if self.saved.is_none() && self.taken.is_none() {
            self.saved = m.graph(&self.graph).cloned();
        }
    }

    /// Puts the module back as it was when `self` was made.
    fn restore(self, m: &mut Module) {
        match self.weights {
            Some(w) => *m.weights_mut() = w,
            None => {
                m.weights_mut().truncate(self.weights_len);
                for (name, w) in self.replaced.into_iter().rev() {
                    m.set_weight(&name, w);
                }
            }
        }
        let mut current: FxHashMap<String, Graph> =
            m.graph_names().into_iter().filter_map(|n| m.remove_graph(&n).map(|g| (n, g))).collect();
        let mut sliced = self.saved.or(self.taken).or_else(|| current.remove(&self.graph));
        for n in &self.names {
            let g = if *n == self.graph { sliced.take() } else { current.remove(n) };
            if let Some(g) = g {
                m.add_graph(g);
            }
        }
    }
}

/// The last edits of a successful `slice`, made once nothing can fail any more.
struct Finish {
    /// The cloud part the heads were built from.
    cloud: Graph,
    /// The device graph.
    device: String,
    /// The widest head, which the device transmits to.
    widest: String,
}

impl Finish {
    fn apply(self, m: &mut Module) {
        let cloud = self.cloud;
        // The original first-layer weights are read by no head now.
        let read = cloud.node_ids().filter_map(|n| match &cloud.node(n).op {
            Op::Weight { name } => Some(name.as_str()),
            _ => None,
        });
        m.remove_weights_if_unread(read);
        // The device transmits to the widest head.
        if let Some(dev) = m.graph_mut(&self.device) {
            for id in dev.node_ids().collect::<Vec<_>>() {
                if let Op::Transmit(t) = &mut dev.node_mut(id).op {
                    t.to = self.widest.clone();
                }
            }
        }
    }
}

impl Slice {
    fn run_inner(
        &self,
        m: &mut Module,
        cx: &mut PassContext,
        undo: &mut Undo,
    ) -> Result<(SliceReport, Finish), String> {
        let cuts = cut_points(m, &self.graph, self.granularity).map_err(|e| e.to_string())?;
        let cut = find_cut(&cuts, &self.graph, &self.cut).map_err(|e| e.to_string())?.clone();
        if cut.shape.len() < 2 {
            return Err(format!("cut tensor %{} has no channel axis", cut.node));
        }
        let sizes = self.sizes.resolve(cut.channels)?;
        let head_name = |s: usize| format!("{}.s{s}", self.cloud);
        for s in &sizes {
            if m.graph(&head_name(*s)).is_some() {
                return Err(format!("the module already has a graph @{}", head_name(*s)));
            }
        }
        // The radio budget: explicit, or from the target's cost models (before any rewrite).
        let budget = match (self.radio_s, cx.target().ok()) {
            (Some(r), _) => Some(r),
            (None, Some(t)) => {
                let settings = PlanSettings {
                    latency_s: self.latency_s,
                    energy_j: None,
                    band: (1.0, 2.0),
                    step: None,
                    granularity: self.granularity,
                };
                let p = plan(m, &self.graph, t, &settings)?;
                p.cut(cut.k).map(|c| c.radio_budget_s)
            }
            (None, None) => None,
        };
        let bytes: Vec<u64> = sizes.iter().map(|s| *s as u64 * cut.bytes_per_channel_q8).collect();
        let needed: Vec<Option<f64>> = match (budget, cx.target().ok()) {
            (Some(b), _) if b <= 0.0 => vec![None; sizes.len()],
            (Some(b), Some(t)) => bytes.iter().map(|x| t.link.bandwidth_needed_bps(*x, b)).collect(),
            (Some(b), None) => bytes.iter().map(|x| Some(*x as f64 * 8.0 / b)).collect(),
            (None, _) => vec![],
        };
        let dist = match &self.bandwidth {
            BandwidthSource::None => None,
            BandwidthSource::Dist(d) => Some(d.clone()),
            BandwidthSource::Trace(path, scale) => {
                let t =
                    clio::trace::BandwidthTrace::load(std::path::Path::new(path), *scale).map_err(|e| e.to_string())?;
                Some(BandwidthDist::from_trace(&t))
            }
        };
        let (obj, distribution) = match &dist {
            None => (None, "none (equal weights)".to_string()),
            Some(d) if needed.is_empty() => {
                return Err(format!(
                    "the objective for bandwidth {} needs the radio budget: give a compilation target \
                     (--target/--link) or radio-ms=..., or bandwidth=none",
                    d.describe()
                ))
            }
            Some(d) => {
                (Some(objective(&needed, d).map_err(|e| format!("cut {} (%{}): {e}", cut.k, cut.node))?), d.describe())
            }
        };
        // 1. Channel order.
        let (channel_order, permuted) = match self.order {
            ChannelOrder::Keep => ((0..cut.channels).collect(), 0),
            ChannelOrder::Importance(c) => {
                let plan = plan_reorder(m, &self.graph, cut.value, c)?;
                if plan.changes_graph(m) {
                    undo.save_graph(m);
                    undo.weights = Some(m.weights().clone());
                } else {
                    for name in plan.weight_names() {
                        if let Some(w) = m.weight(name) {
                            undo.replaced.push((name.to_string(), w.clone()));
                        }
                    }
                }
                let r = plan.apply(m)?;
                (r.order, r.weights_permuted)
            }
        };
        cx.stat("weights-permuted", permuted as i64);
        // 2. Identity skips fed by the sliced tensor become 1x1 convs.
        let mut skips = vec![];
        loop {
            let g = m.graph(&self.graph).ok_or("graph vanished")?;
            match sliced_region(m, g, cut.value) {
                Ok(_) => break,
                Err(RegionError::NeedsSkipConv { add, slot }) => {
                    skips.push(g.node(add).name().to_string());
                    undo.save_graph(m);
                    crate::skip_to_conv::rewrite_identity_skip(m, &self.graph, add, slot)?;
                }
                Err(RegionError::Unsupported(why)) => return Err(format!("cannot slice at cut {}: {why}", cut.k)),
            }
        }
        cx.stat("skips-rewritten", skips.len() as i64);
        // 3. Split, then one head per size from the cloud part.
        let widest = head_name(*sizes.last().ok_or("no slice sizes")?);
        let template = format!("{}.template", self.cloud);
        let (_, original) = split_taking(m, &self.graph, cut.value.node, &self.device, &template)?;
        undo.taken = Some(original);
        let cloud = m.remove_graph(&template).ok_or("cloud graph vanished")?;
        let input = *cloud.inputs().first().ok_or("cloud graph without input")?;
        let region = match sliced_region(m, &cloud, clio::ir::Value::of(input)) {
            Ok(r) => r,
            Err(RegionError::NeedsSkipConv { .. }) => return Err("a residual skip is left after the rewrite".into()),
            Err(RegionError::Unsupported(why)) => return Err(format!("cannot slice at cut {}: {why}", cut.k)),
        };
        let mut reports = vec![];
        let mut per_slice_params = 0u64;
        for (i, s) in sizes.iter().enumerate() {
            let w = build_head(m, &cloud, &region, &head_name(*s), *s, self.bn_stats)?;
            per_slice_params +=
                w.per_slice.iter().filter_map(|n| m.weight(n)).map(|w| w.data().len() as u64).sum::<u64>();
            reports.push(HeadReport {
                size: *s,
                graph: head_name(*s),
                bytes_q8: bytes[i],
                bandwidth_bps: needed.get(i).copied().flatten(),
                p_fits: obj.as_ref().map(|o| o.p_fits[i]).unwrap_or(1.0),
                pi: obj.as_ref().map(|o| o.pi[i]).unwrap_or(1.0 / sizes.len() as f64),
                weights: w,
            });
        }
        cx.stat("heads", sizes.len() as i64);
        cx.stat("per-slice-params", per_slice_params as i64);
        let report = SliceReport {
            cut_k: cut.k,
            cut_node: cut.node.clone(),
            cut_shape: cut.shape.clone(),
            device: self.device.clone(),
            order: match self.order {
                ChannelOrder::Keep => "none".into(),
                ChannelOrder::Importance(crate::prune::select::Criterion::L1) => "l1".into(),
                ChannelOrder::Importance(crate::prune::select::Criterion::BnGamma) => "bn-gamma".into(),
            },
            channel_order,
            skips_rewritten: skips,
            distribution,
            radio_budget_s: budget,
            p_none: obj.as_ref().map(|o| o.p_none).unwrap_or(0.0),
            heads: reports,
        };
        Ok((report, Finish { cloud, device: self.device.clone(), widest }))
    }

    /// Everything that can fail: the slicing, then the JSON and the objective file.
    fn run_checked(&self, m: &mut Module, cx: &mut PassContext, undo: &mut Undo) -> Result<(Finish, String), String> {
        let (report, finish) = self.run_inner(m, cx, undo)?;
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        if !self.objective.is_empty() {
            clio::io::write_atomic(std::path::Path::new(&self.objective), json.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        Ok((finish, serde_json::to_string(&report).unwrap_or_default()))
    }
}

impl Pass for Slice {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        // A failure leaves the module as it was: what was changed is put back from `undo`
        // (no copy of the module, which at 100k layers cost as much as the slicing).
        let mut undo = Undo::new(m, &self.graph);
        match self.run_checked(m, cx, &mut undo) {
            Ok((finish, json)) => {
                drop(undo);
                finish.apply(m);
                m.attrs.insert("clio.slice".into(), Attr::Str(json));
                Ok(())
            }
            Err(e) => {
                undo.restore(m);
                Err(PassError::failed("slice", e))
            }
        }
    }
}
