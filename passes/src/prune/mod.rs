//! `prune`: structured output-channel pruning of `conv2d`, `gemm` and `matmul` layers.
//!
//! Matches: every producer of channels with constant f32 weights: `conv2d` with `groups = 1`,
//! `gemm` (not `trans_a`) and 2-D `matmul` by a constant matrix. Their output channels are ranked
//! (`criterion=l1`: the mean |w| of the channel's filter; `criterion=bn-gamma`: |gamma| of the
//! batch norm that alone reads the producer, as in network slimming; producers without one are
//! not pruned under `bn-gamma`) and the lowest `ratio` are removed, per layer (`scope=layer`) or
//! over the whole graph (`scope=global`). Each layer keeps at least `min-channels` channels and
//! its kept count is rounded up to a multiple of `round-to`; `layers` restricts pruning to the
//! matching producers (`*` globs, separated by commas or spaces), and `channels` names the exact
//! channels to remove instead (`channels="conv1=0:3;fc1=2"`, for tests and external selectors).
//!
//! Dependencies are propagated exactly (see `channels.rs`): batch_norm / scale_shift parameters,
//! the consumers' input channels (conv2d filters, gemm/matmul input features, also through
//! `flatten` and `reshape` of NCHW into contiguous feature blocks), depthwise convs (they lose
//! the same channels and pass the pruning on to their consumers), per-channel constants of
//! elementwise ops, and channels coupled across residual `add`s and `concat`s (a union-find over
//! channels: every member of an add group is pruned identically, concat offsets channels). Graph
//! inputs and outputs keep their shapes: channels reaching a graph output, a custom op, a softmax
//! over channels, a transpose, a grouped conv, a quantized tensor or any op whose channel
//! semantics are unknown are frozen.
//!
//! Produces: sliced weights (in place when nothing else reads them, else a copy
//! `<name>.pruned`), depthwise `groups` and reshape targets updated, result types re-inferred
//! (`clio::analysis::refresh_types`). Removed channels are dropped, not folded: a removed channel
//! that is not identically zero after its batch norm / activation changes the output (use
//! `channels=` on channels known to be zero for an exact rewrite). Statistics give the params and
//! MACs before and after; a remark per changed layer gives its channels, params and MACs before
//! and after. At `ratio=0` the module is left untouched. Preconditions: none (run it before
//! `fuse-bn` so that `bn-gamma` sees the batch norms). Idempotent only at ratio 0.
//!
//! ```text
//! // prune{ratio=0.5}
//! %c1 = conv2d(%x, @c1.w) : tensor<1x4x8x8xf32>                   %c1 = conv2d(%x, @c1.w) : tensor<1x2x8x8xf32>
//! %bn = batch_norm(%c1, @g, @b, @m, @v) : tensor<1x4x8x8xf32>  =>  %bn = batch_norm(%c1, @g, @b, @m, @v) : tensor<1x2x8x8xf32>
//! %dw = conv2d(%bn, @dw.w) {groups = 4} : tensor<1x4x8x8xf32>     %dw = conv2d(%bn, @dw.w) {groups = 2} : tensor<1x2x8x8xf32>
//! %c2 = conv2d(%dw, @c2.w) : tensor<1x8x8x8xf32>                  %c2 = conv2d(%dw, @c2.w) : tensor<1x8x8x8xf32>
//! return %c2                                                      return %c2
//! ```
//! (`@c1.w` 4x3x3x3 -> 2x3x3x3, `@g @b @m @v` 4 -> 2, `@dw.w` 4x1x3x3 -> 2x1x3x3, `@c2.w` 8x4x1x1
//! -> 8x2x1x1; `%c2`'s channels reach the graph output and are frozen.)

pub mod apply;
pub mod channels;
pub mod select;

use clio::analysis::{graph_cost, NodeCost};
use clio::ir::{Module, NodeId};
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};
use rustc_hash::FxHashMap;
use select::{Criterion, Scope, Settings};

/// Declaration of `prune`.
pub static INFO: PassInfo = PassInfo {
    name: "prune",
    summary: "Structured output-channel pruning of conv2d/gemm with exact channel dependency propagation",
    options: &[
        OptionInfo {
            name: "ratio",
            kind: OptionKind::Float,
            default: Some("0.0"),
            help: "fraction of the prunable channels to remove, in [0, 1] (0 leaves the module untouched)",
        },
        OptionInfo {
            name: "criterion",
            kind: OptionKind::Enum(&["l1", "bn-gamma"]),
            default: Some("l1"),
            help: "ranking: mean |w| of the channel's filter, or |gamma| of the batch norm after the producer",
        },
        OptionInfo {
            name: "scope",
            kind: OptionKind::Enum(&["layer", "global"]),
            default: Some("layer"),
            help: "remove `ratio` of every layer, or of all channels ranked together",
        },
        OptionInfo {
            name: "min-channels",
            kind: OptionKind::Int,
            default: Some("1"),
            help: "channels every layer keeps at least",
        },
        OptionInfo {
            name: "round-to",
            kind: OptionKind::Int,
            default: Some("1"),
            help: "round every layer's kept channel count up to a multiple of this (e.g. 4 or 8 for the kernels)",
        },
        OptionInfo {
            name: "layers",
            kind: OptionKind::Str,
            default: Some(""),
            help: "only prune producers whose node name matches one of these globs (comma/space separated; quote it)",
        },
        OptionInfo {
            name: "channels",
            kind: OptionKind::Str,
            default: Some(""),
            help: "remove exactly these output channels instead: \"NODE=i:j;NODE2=k\" (ratio and criterion ignored)",
        },
    ],
    statistics: &[
        StatInfo { name: "channels-pruned", help: "output channels removed, summed over the producer layers" },
        StatInfo { name: "groups-pruned", help: "channel groups removed (coupled channels count once)" },
        StatInfo { name: "layers-pruned", help: "producer layers that lost channels" },
        StatInfo { name: "channels-frozen", help: "producer channels that cannot be pruned (outputs, custom ops ...)" },
        StatInfo { name: "params-before", help: "learnable parameters before" },
        StatInfo { name: "params-after", help: "learnable parameters after" },
        StatInfo { name: "macs-before", help: "multiply-accumulates before" },
        StatInfo { name: "macs-after", help: "multiply-accumulates after" },
        StatInfo { name: "weights-copied", help: "weights copied before slicing because other nodes also read them" },
    ],
};

/// Registers `prune`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| Ok(Box::new(Prune::from_options(o)?)));
}

/// The `prune` pass.
#[derive(Clone, Debug)]
pub struct Prune {
    /// Selection settings.
    pub settings: Settings,
    /// Explicit channel list (`NODE=i:j;NODE2=k`), overriding the ratio when non-empty.
    pub channels: String,
}

impl Prune {
    /// A pass removing `ratio` of every layer's channels by the l1 criterion.
    pub fn new(ratio: f64) -> Self {
        Prune {
            settings: Settings {
                ratio,
                criterion: Criterion::L1,
                scope: Scope::Layer,
                min_channels: 1,
                round_to: 1,
                layers: vec![],
            },
            channels: String::new(),
        }
    }

    /// Builds the pass from validated options.
    pub fn from_options(o: &PassOptions) -> Result<Self, PassError> {
        let bad = |message: String| PassError::Option { pass: "prune".into(), message };
        let ratio = o.float("ratio")?;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(bad(format!("option `ratio` must be in [0, 1], got {ratio}")));
        }
        let round_to = o.usize("round-to")?;
        if round_to == 0 {
            return Err(bad("option `round-to` must be >= 1".into()));
        }
        let layers = o
            .str("layers")?
            .split([',', ' '])
            .map(|p| p.trim().trim_start_matches('%').to_string())
            .filter(|p| !p.is_empty())
            .collect();
        Ok(Prune {
            settings: Settings {
                ratio,
                criterion: if o.str("criterion")? == "bn-gamma" { Criterion::BnGamma } else { Criterion::L1 },
                scope: if o.str("scope")? == "global" { Scope::Global } else { Scope::Layer },
                min_channels: o.usize("min-channels")?,
                round_to,
                layers,
            },
            channels: o.str("channels")?.to_string(),
        })
    }
}

fn costs(m: &Module, graph: &str) -> (FxHashMap<NodeId, NodeCost>, u64, u64) {
    let Some(g) = m.graph(graph) else { return (FxHashMap::default(), 0, 0) };
    let c = graph_cost(m, g);
    (c.nodes.into_iter().collect(), c.params, c.macs)
}

impl Pass for Prune {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        let fail = |msg: String| PassError::failed("prune", msg);
        let explicit = !self.channels.trim().is_empty();
        for graph in m.graph_names() {
            let g = m.graph(&graph).ok_or_else(|| fail(format!("graph @{graph} vanished")))?;
            let mut a = channels::Analysis::run(m, g).map_err(fail)?;
            let groups = select::groups(m, g, &mut a, self.settings.criterion);
            if !explicit
                && self.settings.ratio > 0.0
                && self.settings.criterion == Criterion::BnGamma
                && groups.iter().all(|gr| gr.score.is_none())
            {
                cx.note(format!(
                    "@{graph}: no conv2d/gemm is read by a batch_norm alone, so bn-gamma prunes nothing \
                     (run prune before fuse-bn, or use criterion=l1)"
                ));
            }
            let frozen: usize = a
                .spaces
                .iter()
                .filter(|s| s.source)
                .map(|s| (0..s.len).filter(|i| a.uf.frozen(s.first + *i as u32).is_some()).count())
                .sum();
            cx.stat("channels-frozen", frozen as i64);
            let pruned = if explicit {
                match select::explicit(g, &mut a, &self.channels) {
                    Ok(p) => p,
                    // A channel list names nodes of one graph; other graphs are left alone.
                    Err(e) if e.contains("no node %") && m.graphs().count() > 1 => continue,
                    Err(e) => return Err(fail(e)),
                }
            } else {
                select::select(g, &a, &groups, &self.settings)
            };
            let (before, params_before, macs_before) = costs(m, &graph);
            cx.stat("params-before", params_before as i64);
            cx.stat("macs-before", macs_before as i64);
            if pruned.is_empty() {
                cx.stat("params-after", params_before as i64);
                cx.stat("macs-after", macs_before as i64);
                continue;
            }
            // Channels removed per producer layer, before the rewrite changes the analysis' graph.
            let mut removed: Vec<(NodeId, usize, usize)> = vec![];
            for s in a.spaces.clone().iter().filter(|s| s.source) {
                let n = (0..s.len).filter(|i| pruned.contains(&a.uf.find(s.first + *i as u32))).count();
                if n > 0 {
                    removed.push((s.node, s.len, n));
                }
            }
            let applied = apply::apply(m, &graph, &mut a, &pruned).map_err(fail)?;
            let (after, params_after, macs_after) = costs(m, &graph);
            cx.stat("params-after", params_after as i64);
            cx.stat("macs-after", macs_after as i64);
            cx.stat("groups-pruned", pruned.len() as i64);
            cx.stat("layers-pruned", removed.len() as i64);
            cx.stat("channels-pruned", removed.iter().map(|r| r.2 as i64).sum());
            cx.stat("weights-copied", applied.weights_copied as i64);
            // One remark per changed layer, in topological order.
            let removed_at: FxHashMap<NodeId, (usize, usize)> = removed.iter().map(|r| (r.0, (r.1, r.2))).collect();
            let g = m.graph(&graph).ok_or_else(|| fail(format!("graph @{graph} vanished")))?;
            let order = g.topo_order().map_err(|c| fail(format!("cycle at {}", c.0)))?;
            for id in order {
                let (Some(b), Some(a2)) = (before.get(&id), after.get(&id)) else { continue };
                let chans = removed_at.get(&id).map(|(n, k)| format!("channels {n} -> {}, ", n - k));
                if chans.is_none() && b.params == a2.params && b.macs == a2.macs {
                    continue;
                }
                let n = g.node(id);
                cx.note(format!(
                    "@{graph} %{} ({}): {}params {} -> {}, MACs {} -> {}",
                    n.name(),
                    n.op.name(),
                    chans.unwrap_or_default(),
                    b.params,
                    a2.params,
                    b.macs,
                    a2.macs
                ));
            }
        }
        Ok(())
    }
}
