//! `canonicalize`: rule-driven simplification with equality saturation (egg), one region at a
//! time; the petgraph graph stays the source of truth.
//!
//! Matches: *regions*, maximal trees of pure single-reader nodes. A node is modelled when its
//! op is one the e-graph language knows (every builtin op except `input`, `weight`,
//! `quantize`, `dequantize`, `transmit`; no custom ops) and it reads and produces unquantized
//! f32 tensors. A region is a modelled root (a value read several times, read by an unmodelled
//! op, or a graph output) plus every modelled node that feeds it and has no other reader, up to
//! `max-region-nodes` (a longer single-reader chain is split into several regions, because
//! egg's extraction is quadratic in a region's depth). Everything else the region reads is an anchor: a leaf of the e-graph (weights are leaves
//! whose data the analysis knows).
//!
//! Produces: each region is lowered to a small e-graph (ops with their operands and attributes
//! as children; shapes and element types in the e-class analysis, computed with the ops' own
//! shape rules), saturated with the rules under iteration/node/time limits (`max-iters`,
//! `max-nodes`, `timeout-ms`, per region), and the cheapest equivalent term under the cost
//! function is written back: nodes that compute exactly what they computed before are kept
//! as they are, a node whose e-class gets another op is rewritten in place (keeping its name
//! and position), new nodes are named after the node whose value they compute, and computed
//! constants become weights (named after the weight they transform, taking over its name when
//! nothing else reads it). Replaced nodes, and weights only they read, are removed. The pass
//! repeats region discovery until nothing changes (a rewrite can turn a shared value into a
//! single-reader one), so a second run changes nothing.
//!
//! Rules are data: [`rules::BUILTIN_RULES`] (the file `builtin.rules`, with the rule contract
//! written at its top) plus an optional user file (`rules=PATH`). A rule is
//! `name: LHS => RHS [if CONDITION ...]` in egg's pattern syntax; see [`rules`] for the format
//! and the rule file for the helper functions. Parse errors name the file, line and rule.
//!
//! The rule contract, checked when rules are loaded (violations are errors, for built-in and
//! user rules alike): (1) directional: a rule's right-hand side is strictly smaller than its
//! left-hand side, in clio ops and then pattern nodes, so there is no commutativity,
//! associativity or other non-simplifying rule and saturation cannot blow up; (2) conditions
//! are explicit (`if (is-zero ?z)`), and on top of them the applier evaluates the right-hand
//! side first and applies it only if it is computable and has exactly the matched value's
//! shape and element type; (3) the right-hand side and conditions use only variables the
//! left-hand side binds. Rules see unquantized f32 values only.
//!
//! Built-in rules: `relu-relu`, `clip-clip` (bounds intersected), `relu-clip`, `clip-relu`,
//! `clip-to-relu` (`clip {0, inf}`), `clip-unbounded`; `transpose-identity`,
//! `transpose-transpose` (composed permutation); `reshape-noop`, `reshape-reshape`,
//! `reshape-flatten`, `reshape-squeeze`, `reshape-unsqueeze`, `flatten-noop` (flatten of an
//! already matching 2-D tensor), `flatten-reshape`, `squeeze-noop`, `unsqueeze-noop`,
//! `pad-noop`; `add-zero`, `zero-add`, `sub-zero`, `mul-one`, `one-mul`, `div-one` (weights whose
//! elements are all 0.0 / 1.0, when no broadcast grows the other operand),
//! `scale-shift-identity`; `conv-identity` (only with `remove-identity-convs=true`: skip-to-conv
//! inserts identity 1x1 convs on purpose, for slicing), `pad-into-conv` (a constant-zero H/W pad
//! read by a conv becomes conv padding), `scale-shift-into-conv` (a scale_shift after a conv is
//! folded into new filter and bias weights, computed in f64 by constant functions of the
//! e-graph, like fuse-bn; a scale_shift *before* a conv is not folded: with zero padding the
//! shift would also reach the padded border). [`rule_language_help`] lists every op pattern and
//! helper function.
//!
//! Costs: extraction minimises a [`CostFn`] over `(op, operand types, result type)`; the default
//! ([`default_cost`]) is MACs plus bytes read and written. Embedders pass their own with
//! [`Canonicalize::with_cost`] (e.g. from a target's cost model). egg's extractor minimises tree
//! cost; since every value with several readers is an anchor outside the region, regions are
//! trees and tree cost is the real cost (a weight or shared value is paid as bytes read by each
//! reader). Ties go to the smaller term, then to the input's own nodes.
//!
//! Preconditions: none (unmodelled ops and quantized values are left alone). Idempotent, unless a
//! limit stopped saturation (the `*-limit` statistics say so).
//!
//! ```text
//! %p = pad(%x) {pads = [0, 0, 1, 1, 0, 0, 1, 1], mode = "constant", value = 0.0} : tensor<1x2x6x6xf32>
//! %c = conv2d(%p, @w) {strides = [1, 1], pads = [0, 0, 0, 0], ...} : tensor<1x2x4x4xf32>
//! %r = relu(%c) : tensor<1x2x4x4xf32>                         =>  %c = conv2d(%x, @w) {strides = [1, 1], pads = [1, 1, 1, 1], ...} : tensor<1x2x4x4xf32>
//! %r2 = clip(%r) {min = 0.0, max = 6.0} : tensor<1x2x4x4xf32>     %r2 = clip(%c) {min = 0.0, max = 6.0} : tensor<1x2x4x4xf32>
//! return %r2                                                      return %r2
//! ```

mod analysis;
mod clock;
mod cost;
mod lang;
mod region;
pub mod rules;

pub use cost::{default_cost, default_cost_fn, macs, CostFn};
pub use rules::{Rule, RuleError, RuleSet};

use analysis::ClioAnalysis;
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};
use clio::Module;
use clock::EggClock;
use egg::{Rewrite, Runner, SimpleScheduler, StopReason};
use lang::ENode;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Declaration of `canonicalize`.
pub static INFO: PassInfo = PassInfo {
    name: "canonicalize",
    summary: "Simplify regions of pure ops with rewrite rules (equality saturation with egg) and a cost function",
    options: &[
        OptionInfo {
            name: "rules",
            kind: OptionKind::Path,
            default: Some(""),
            help: "a file of extra rules (`name: lhs => rhs [if cond ...]`), added to the built-in ones",
        },
        OptionInfo {
            name: "builtin-rules",
            kind: OptionKind::Bool,
            default: Some("true"),
            help: "use the built-in rules (false: only the rules file's)",
        },
        OptionInfo {
            name: "disable-rules",
            kind: OptionKind::Str,
            default: Some(""),
            help: "rule names to leave out, separated by `:` (e.g. clip-to-relu:pad-into-conv)",
        },
        OptionInfo {
            name: "remove-identity-convs",
            kind: OptionKind::Bool,
            default: Some("false"),
            help: "remove identity 1x1 convs (keep false while slicing is planned: skip-to-conv adds them)",
        },
        OptionInfo {
            name: "max-iters",
            kind: OptionKind::Int,
            default: Some("16"),
            help: "saturation iterations per region",
        },
        OptionInfo {
            name: "max-nodes",
            kind: OptionKind::Int,
            default: Some("10000"),
            help: "e-nodes per region's e-graph before saturation stops",
        },
        OptionInfo {
            name: "timeout-ms",
            kind: OptionKind::Int,
            default: Some("2000"),
            help: "wall time per region's saturation, in milliseconds",
        },
        OptionInfo {
            name: "max-region-nodes",
            kind: OptionKind::Int,
            default: Some("64"),
            help: "graph nodes per region (per root operand) before a region is split; bounds extraction time on long chains",
        },
    ],
    statistics: &[
        StatInfo { name: "regions", help: "regions lowered to an e-graph (all rounds)" },
        StatInfo { name: "rounds", help: "rounds of region discovery until nothing changed (per graph, summed)" },
        StatInfo { name: "egraph-nodes", help: "e-nodes in all e-graphs after saturation" },
        StatInfo { name: "rewrites", help: "rule applications that changed an e-graph (per rule: the pass's remarks)" },
        StatInfo { name: "regions-changed", help: "regions whose extracted term differs from the input" },
        StatInfo { name: "nodes-removed", help: "graph nodes removed (replaced or no longer read)" },
        StatInfo { name: "nodes-created", help: "graph nodes added (ops that did not exist before)" },
        StatInfo { name: "weights-created", help: "weights computed by constant functions (scale-shift-into-conv)" },
        StatInfo { name: "type-rejections", help: "rule matches not applied: the result would have had another type" },
        StatInfo { name: "iter-limit", help: "regions whose saturation stopped at max-iters" },
        StatInfo { name: "node-limit", help: "regions whose saturation stopped at max-nodes" },
        StatInfo { name: "time-limit", help: "regions whose saturation stopped at timeout-ms" },
        StatInfo {
            name: "regions-skipped",
            help: "regions left alone because lowering or write-back failed (see remarks)",
        },
    ],
};

/// Registers `canonicalize`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| Ok(Box::new(Canonicalize::from_options(o)?)));
}

/// Rounds of region discovery per graph before giving up on a fixpoint.
const MAX_ROUNDS: usize = 8;

/// The `canonicalize` pass.
pub struct Canonicalize {
    rules: RuleSet,
    rewrites: Vec<Rewrite<ENode, ClioAnalysis>>,
    remove_identity_convs: bool,
    max_iters: usize,
    max_nodes: usize,
    timeout: Duration,
    max_region_nodes: usize,
    cost: CostFn,
}

impl Default for Canonicalize {
    fn default() -> Self {
        Canonicalize::new()
    }
}

impl Canonicalize {
    /// The pass with the built-in rules, default limits and the default cost.
    pub fn new() -> Self {
        Canonicalize::with_rules(RuleSet::builtin())
    }

    /// The pass with exactly these rules.
    pub fn with_rules(rules: RuleSet) -> Self {
        let rewrites = rules.rewrites();
        Canonicalize {
            rules,
            rewrites,
            remove_identity_convs: false,
            max_iters: 16,
            max_nodes: 10_000,
            timeout: Duration::from_millis(2000),
            max_region_nodes: 64,
            cost: default_cost_fn(),
        }
    }

    /// The pass configured from pipeline options (loads the rules file, if any).
    pub fn from_options(o: &PassOptions) -> Result<Self, PassError> {
        let opt_err = |message: String| PassError::Option { pass: INFO.name.into(), message };
        let mut rules = if o.bool("builtin-rules")? { RuleSet::builtin() } else { RuleSet::new() };
        if o.is_set("rules") {
            let extra = RuleSet::load(Path::new(o.str("rules")?)).map_err(|e| opt_err(format!("rules: {e}")))?;
            rules.extend(extra).map_err(|e| opt_err(format!("rules: {e}")))?;
        }
        for name in o.str("disable-rules")?.split(':').filter(|s| !s.is_empty()) {
            if !rules.remove(name) {
                return Err(opt_err(format!("disable-rules: no rule `{name}` (rules: {})", rules.names().join(", "))));
            }
        }
        let mut pass = Canonicalize::with_rules(rules);
        pass.remove_identity_convs = o.bool("remove-identity-convs")?;
        pass.max_iters = o.usize("max-iters")?;
        pass.max_nodes = o.usize("max-nodes")?;
        pass.timeout = Duration::from_millis(o.usize("timeout-ms")? as u64);
        pass.max_region_nodes = o.usize("max-region-nodes")?;
        if pass.max_region_nodes == 0 {
            return Err(opt_err("max-region-nodes must be at least 1".into()));
        }
        Ok(pass)
    }

    /// Uses `cost` for extraction instead of [`default_cost`].
    pub fn with_cost(mut self, cost: CostFn) -> Self {
        self.cost = cost;
        self
    }

    /// Sets the per-region saturation limits.
    pub fn with_limits(mut self, max_iters: usize, max_nodes: usize, timeout: Duration) -> Self {
        self.max_iters = max_iters;
        self.max_nodes = max_nodes;
        self.timeout = timeout;
        self
    }

    /// Splits regions at `nodes` graph nodes per root operand (default 64).
    pub fn with_max_region_nodes(mut self, nodes: usize) -> Self {
        self.max_region_nodes = nodes.max(1);
        self
    }

    /// Enables or disables `conv-identity` (off by default).
    pub fn remove_identity_convs(mut self, on: bool) -> Self {
        self.remove_identity_convs = on;
        self
    }

    /// The rules this instance uses.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    fn analysis(&self) -> ClioAnalysis {
        let mut options = BTreeMap::new();
        options.insert("remove-identity-convs", self.remove_identity_convs);
        ClioAnalysis { options, ..Default::default() }
    }

    /// Runs one graph to a fixpoint.
    fn run_graph(
        &self,
        m: &mut Module,
        graph: &str,
        clock: &EggClock,
        cx: &mut PassContext,
        applied: &mut BTreeMap<String, usize>,
    ) -> Result<(), PassError> {
        let fail = |message: String| PassError::failed(INFO.name, message);
        for _ in 0..MAX_ROUNDS {
            cx.stat("rounds", 1);
            let g = m.graph(graph).ok_or_else(|| fail(format!("graph @{graph} vanished")))?;
            let regions = region::find_regions(g, self.max_region_nodes).map_err(fail)?;
            let mut changed = false;
            for r in &regions {
                let g = m.graph(graph).ok_or_else(|| fail(format!("graph @{graph} vanished")))?;
                let root_name = g.node(r.root).name().to_string();
                let mut runner: Runner<ENode, ClioAnalysis> = Runner::new(self.analysis())
                    .with_iter_limit(self.max_iters)
                    .with_node_limit(self.max_nodes)
                    .with_time_limit(self.timeout)
                    .with_scheduler(SimpleScheduler)
                    .with_hook(clock.sync_hook());
                let low = match region::lower(m, g, r, &mut runner.egraph) {
                    Ok(l) => l,
                    Err(e) => {
                        cx.stat("regions-skipped", 1);
                        cx.note(format!("@{graph} region %{root_name}: not lowered: {e}"));
                        continue;
                    }
                };
                cx.stat("regions", 1);
                clock.sync();
                let runner = runner.run(&self.rewrites);
                match &runner.stop_reason {
                    Some(StopReason::IterationLimit(_)) => cx.stat("iter-limit", 1),
                    Some(StopReason::NodeLimit(_)) => cx.stat("node-limit", 1),
                    Some(StopReason::TimeLimit(_)) => cx.stat("time-limit", 1),
                    _ => {}
                }
                cx.stat("egraph-nodes", runner.egraph.total_number_of_nodes() as i64);
                cx.stat("type-rejections", runner.egraph.analysis.type_rejections.len() as i64);
                for it in &runner.iterations {
                    for (rule, n) in &it.applied {
                        cx.stat("rewrites", *n as i64);
                        *applied.entry(rule.to_string()).or_default() += n;
                    }
                }
                match region::write_back(m, graph, r, &low, &runner.egraph, &self.cost) {
                    Ok(wb) => {
                        if wb.changed {
                            changed = true;
                            cx.stat("regions-changed", 1);
                        }
                        cx.stat("nodes-removed", wb.nodes_removed as i64);
                        cx.stat("nodes-created", wb.nodes_created as i64);
                        cx.stat("weights-created", wb.weights_created as i64);
                    }
                    Err(e) => {
                        cx.stat("regions-skipped", 1);
                        cx.note(format!("@{graph} region %{root_name}: not rewritten: {e}"));
                    }
                }
            }
            if !changed {
                return Ok(());
            }
        }
        cx.note(format!("@{graph}: no fixpoint after {MAX_ROUNDS} rounds"));
        Ok(())
    }
}

impl Pass for Canonicalize {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        let mut applied: BTreeMap<String, usize> = BTreeMap::new();
        let clock = EggClock::new();
        clock
            .run(|| m.graph_names().iter().try_for_each(|graph| self.run_graph(m, graph, &clock, cx, &mut applied)))?;
        for (rule, n) in applied {
            cx.note(format!("rule `{rule}` applied {n} time(s)"));
        }
        Ok(())
    }
}

/// The rule language in brief: every op pattern (children in order) and every helper function,
/// one per line (for `clio passes`-style help and the docs).
pub fn rule_language_help() -> String {
    let mut out = String::from("ops (operands, then attributes):\n");
    for s in lang::OPS {
        out += &format!("  ({} {})\n", s.name, s.signature().replace(", ", " "));
    }
    out += "functions:\n";
    for h in lang::Helper::ALL {
        let arity = h.arity().map(|n| n.to_string()).unwrap_or_else(|| "1+".into());
        let kind = match h.kind() {
            lang::FnKind::Attr => "attribute",
            lang::FnKind::Pred => "condition",
            lang::FnKind::Const => "constant",
        };
        out += &format!("  {:<16} {arity} arg(s), {kind}: {}\n", h.name(), h.doc());
    }
    out
}
