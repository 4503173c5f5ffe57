//! Channel order of the cut tensor: a permutation of its channels, applied to every weight that
//! writes or reads them, so the graph computes the same function with the most important
//! channels first.
//!
//! The cut tensor's channels are channel groups of the pruning analysis
//! ([`crate::prune::channels`]): a group is a set of channel positions that must move together
//! (a conv's output channel, the matching input channel of its readers, the same channel on
//! both sides of a residual `add`, the channel of a depthwise conv, the block of features a
//! `flatten` makes of it ...). Reordering the groups of the cut tensor permutes, in every weight
//! site of the analysis, the positions that hold one of those groups among themselves.

use crate::prune::apply::slice_axis;
use crate::prune::channels::{Analysis, Map, Ref, Site};
use crate::prune::select::{groups, Criterion};
use clio::ir::{Module, NodeId, Value, Weight};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// A weight axis and the new order of its positions.
type AxisOrder = (usize, Vec<usize>);

/// How the cut tensor's channels are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Most important first, by a pruning criterion (L1 of the producing filters or |gamma|).
    Importance(Criterion),
    /// Keep the current order.
    Keep,
}

impl ChannelOrder {
    /// Parses `l1`, `bn-gamma` or `none`.
    pub fn parse(s: &str) -> Option<ChannelOrder> {
        match s {
            "l1" => Some(ChannelOrder::Importance(Criterion::L1)),
            "bn-gamma" => Some(ChannelOrder::Importance(Criterion::BnGamma)),
            "none" => Some(ChannelOrder::Keep),
            _ => None,
        }
    }
}

/// The permutation applied: `order[i]` is the original channel now at position `i`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reordered {
    /// Original channel index of each new position.
    pub order: Vec<usize>,
    /// Importance score of each new position (same criterion), most important first (the
    /// features of one flattened channel share its score).
    pub scores: Vec<f64>,
    /// Weights whose data was permuted.
    pub weights_permuted: usize,
}

/// The new position order of one site's axis, or `None` if nothing moves.
///
/// The axis is cut into *units*: maximal runs of positions holding the same root (a channel
/// flattened into a block of features, or repeated by a depthwise multiplier, is one run). The
/// units of ranked roots are sorted by (how many earlier runs the same root has, rank), so each
/// copy of the cut tensor's channels in the axis (a concat of two tensors derived from it) is
/// reordered on its own, and the sorted units fill the ranked positions in increasing order.
fn site_order(map: &Map, rank: &FxHashMap<Ref, usize>, root: &dyn Fn(Ref) -> Ref) -> Result<Option<Vec<usize>>, ()> {
    let mut units: Vec<(usize, usize, std::ops::Range<usize>)> = vec![];
    let mut runs_of: FxHashMap<Ref, usize> = FxHashMap::default();
    let mut i = 0;
    while i < map.len() {
        let r = root(map[i]);
        let mut j = i + 1;
        while j < map.len() && root(map[j]) == r {
            j += 1;
        }
        if let Some(rk) = rank.get(&r) {
            let occurrence = runs_of.entry(r).or_insert(0);
            units.push((*occurrence, *rk, i..j));
            *occurrence += 1;
        }
        i = j;
    }
    if units.is_empty() {
        return Ok(None);
    }
    if units.iter().any(|u| u.2.len() != units[0].2.len()) {
        return Err(());
    }
    let slots: Vec<usize> = units.iter().flat_map(|u| u.2.clone()).collect();
    units.sort_by_key(|u| (u.0, u.1));
    let sorted: Vec<usize> = units.iter().flat_map(|u| u.2.clone()).collect();
    if sorted == slots {
        return Ok(None);
    }
    let mut order: Vec<usize> = (0..map.len()).collect();
    for (slot, from) in slots.iter().zip(&sorted) {
        order[*slot] = *from;
    }
    Ok(Some(order))
}

/// Reorders the channels of `cut` (a value of graph `graph`) by `criterion`, most important
/// first, permuting every weight that produces or reads them. Errors name the reason a
/// channel cannot move (e.g. it is a graph input, quantized, or read by a custom op).
pub fn reorder_cut_channels(
    m: &mut Module,
    graph: &str,
    cut: Value,
    criterion: Criterion,
) -> Result<Reordered, String> {
    plan_reorder(m, graph, cut, criterion)?.apply(m)
}

/// A channel reordering computed but not applied yet: [`plan_reorder`] does every check and
/// computes every permuted tensor without changing the module, [`ReorderPlan::apply`] stores
/// them (and cannot fail on the module it was planned on).
#[derive(Clone, Debug)]
pub struct ReorderPlan {
    graph: String,
    /// Per permuted operand, in site order: its node, slot, the weight it reads and the new data.
    writes: Vec<(NodeId, usize, String, clio::ir::Tensor)>,
    result: Reordered,
}

impl ReorderPlan {
    /// The weights the plan rewrites.
    pub fn weight_names(&self) -> impl Iterator<Item = &str> {
        self.writes.iter().map(|(_, _, name, _)| name.as_str())
    }

    /// Whether applying the plan edits the graph as well as weight data: a permuted weight read
    /// more than once gets a permuted copy `<name>.perm` (then the old weight may be removed).
    pub fn changes_graph(&self, m: &Module) -> bool {
        self.writes.iter().any(|(_, _, name, _)| m.weight_use_count(name) != 1)
    }

    /// Stores the permuted weights.
    pub fn apply(self, m: &mut Module) -> Result<Reordered, String> {
        for (node, slot, name, t) in self.writes {
            write_weight(m, &self.graph, node, slot, &name, t)?;
        }
        Ok(self.result)
    }
}

/// Plans [`reorder_cut_channels`] without changing the module (same checks, same errors).
pub fn plan_reorder(m: &Module, graph: &str, cut: Value, criterion: Criterion) -> Result<ReorderPlan, String> {
    let g = m.graph(graph).ok_or_else(|| format!("no graph @{graph}"))?;
    let cut_name = g.node(cut.node).name().to_string();
    let mut a = Analysis::run(m, g)?;
    let map = a.maps.get(&cut).cloned().ok_or_else(|| format!("%{cut_name} has no channel axis to order"))?;
    let roots: Vec<Ref> = map.iter().map(|r| a.uf.find(*r)).collect();
    // Runs of one channel group (after a flatten, a channel is a block of features).
    let mut runs: Vec<(Ref, std::ops::Range<usize>)> = vec![];
    for (i, r) in roots.iter().enumerate() {
        if let Some(why) = a.uf.frozen(*r) {
            return Err(format!(
                "channel {i} of %{cut_name} cannot be reordered ({why}); use order=none to keep the channel order"
            ));
        }
        match runs.last_mut() {
            Some((last, range)) if last == r => range.end = i + 1,
            _ => {
                if runs.iter().any(|(x, _)| x == r) {
                    return Err(format!(
                        "channels of %{cut_name} are coupled to each other (channel {i} repeats an earlier one); \
                         use order=none"
                    ));
                }
                runs.push((*r, i..i + 1));
            }
        }
    }
    let g = m.graph(graph).ok_or("graph vanished")?;
    let score_of: FxHashMap<Ref, Option<f64>> =
        groups(m, g, &mut a, criterion).into_iter().map(|gr| (gr.root, gr.score)).collect();
    let mut ranked: Vec<(usize, f64)> = vec![];
    for (i, (r, range)) in runs.iter().enumerate() {
        let s = score_of.get(r).copied().flatten().ok_or_else(|| {
            format!(
                "the criterion gives no score for channel {} of %{cut_name} (no filter or batch_norm to rank it)",
                range.start
            )
        })?;
        ranked.push((i, s));
    }
    // Most important first; ties keep their position.
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    let rank: FxHashMap<Ref, usize> = ranked.iter().enumerate().map(|(new, (old, _))| (runs[*old].0, new)).collect();
    let mut parents: FxHashMap<Ref, Ref> = FxHashMap::default();
    for r in 0..a.uf.len() as Ref {
        parents.insert(r, a.uf.find(r));
    }
    let root = |r: Ref| parents[&r];
    // Permutations per (node, slot), in site order.
    let mut per_operand: BTreeMap<(NodeId, usize), Vec<AxisOrder>> = BTreeMap::new();
    for site in &a.sites {
        let Site::Weight { node, slot, axis, map } = site else { continue };
        let order = site_order(map, &rank, &root).map_err(|_| {
            let name = m.graph(graph).map(|g| g.node(*node).name().to_string()).unwrap_or_default();
            format!("%{name} reads the channels of %{cut_name} in blocks of different sizes; use order=none")
        })?;
        if let Some(order) = order {
            per_operand.entry((*node, *slot)).or_default().push((*axis, order));
        }
    }
    // Every permuted tensor is computed before any is stored: the keys are distinct operands,
    // and storing one changes neither another operand nor the data of a weight another reads
    // (in place only for a weight with a single reader, else as a copy).
    let mut writes = Vec::with_capacity(per_operand.len());
    for ((node, slot), perms) in per_operand {
        let g = m.graph(graph).ok_or("graph vanished")?;
        let v = g.operand(node, slot).ok_or("operand vanished")?;
        let name = g.weight_name(v).ok_or("permuted operand is not a weight")?.to_string();
        let mut t = m.weight(&name).ok_or_else(|| format!("weight @{name} missing"))?.data().clone();
        for (axis, order) in perms {
            t = slice_axis(&t, axis, &order).ok_or_else(|| format!("weight @{name} is not f32"))?;
        }
        writes.push((node, slot, name, t));
    }
    let order: Vec<usize> = ranked.iter().flat_map(|(i, _)| runs[*i].1.clone()).collect();
    let scores = ranked.iter().flat_map(|(i, s)| std::iter::repeat_n(*s, runs[*i].1.len())).collect();
    let result = Reordered { order, scores, weights_permuted: writes.len() };
    Ok(ReorderPlan { graph: graph.to_string(), writes, result })
}

/// Stores the permuted tensor in place when this operand is the weight's only reader, else as a
/// copy `<name>.perm` read by this operand only.
fn write_weight(
    m: &mut Module,
    graph: &str,
    node: NodeId,
    slot: usize,
    name: &str,
    t: clio::ir::Tensor,
) -> Result<(), String> {
    if m.weight_use_count(name) == 1 {
        m.set_weight(name, Weight::new(t));
        return Ok(());
    }
    let new = m.add_weight(&format!("{name}.perm"), Weight::new(t));
    let ty = m.weight(&new).ok_or("weight vanished")?.ty();
    let g = m.graph_mut(graph).ok_or("graph vanished")?;
    let nv = g.weight_value(&new, ty);
    g.set_operand(node, slot, nv);
    if let Some(old) = g.weight_node(name) {
        g.remove_if_unused_weight(old);
    }
    m.remove_weight_if_unread(name);
    Ok(())
}
