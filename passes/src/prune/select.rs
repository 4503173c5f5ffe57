//! Which channel groups to prune: scores (`l1`, `bn-gamma`), per-layer or global ratio,
//! minimum channel count, rounding multiple, layer filter, or an explicit channel list.

use super::channels::{Analysis, Ref};
use clio::ir::{Graph, Module, Op, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// How channels are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Mean absolute value of the channel's filter (conv) or weight row (gemm, matmul).
    L1,
    /// Absolute value of the batch-norm scale (gamma) applied right after the producer.
    BnGamma,
}

/// Where the ratio applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every layer (coupled set of layers) loses `ratio` of its channels.
    Layer,
    /// `ratio` of all prunable channels, lowest scores first, wherever they are.
    Global,
}

/// Selection settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Fraction of channels to remove.
    pub ratio: f64,
    /// Ranking.
    pub criterion: Criterion,
    /// Per layer or global.
    pub scope: Scope,
    /// Channels each layer keeps at least (of its prunable channels).
    pub min_channels: usize,
    /// The kept channel count of each layer is rounded up to a multiple of this.
    pub round_to: usize,
    /// Glob patterns (`*` wildcard) of the producer layers that may be pruned; empty = all.
    pub layers: Vec<String>,
}

/// One channel group (a union-find class holding at least one source reference).
#[derive(Clone, Debug)]
pub struct Group {
    /// Class representative.
    pub root: Ref,
    /// The source spaces it has channels in (sorted): its "layer".
    pub spaces: Vec<u32>,
    /// Why it cannot be pruned, if it cannot.
    pub frozen: Option<&'static str>,
    /// Ranking score (lower goes first), `None` when the criterion does not apply.
    pub score: Option<f64>,
}

/// Per-reference scores of every source space under `criterion`.
fn ref_scores(m: &Module, g: &Graph, a: &Analysis, criterion: Criterion) -> Vec<Option<f64>> {
    let mut scores = vec![None; a.uf.len()];
    for s in a.spaces.iter().filter(|s| s.source) {
        let per = match criterion {
            Criterion::L1 => filter_l1(m, g, s.node, s.len),
            Criterion::BnGamma => bn_gamma(m, g, s.node, s.len),
        };
        if let Some(per) = per {
            for (i, v) in per.into_iter().enumerate() {
                scores[s.first as usize + i] = Some(v);
            }
        }
    }
    scores
}

fn weight_f32<'m>(m: &'m Module, g: &Graph, v: Option<Value>) -> Option<(&'m [usize], &'m [f32])> {
    let t = m.weight(g.weight_name(v?)?)?.data();
    Some((t.shape(), t.as_f32()?))
}

/// Mean |w| per output channel of a conv (axis 0 of OIHW), gemm (a row of B or B^T) or matmul.
fn filter_l1(m: &Module, g: &Graph, node: clio::NodeId, len: usize) -> Option<Vec<f64>> {
    let (shape, w) = weight_f32(m, g, g.operand(node, 1))?;
    let mut sum = vec![0f64; len];
    let mut count = vec![0usize; len];
    let out_axis = match &g.node(node).op {
        Op::Conv2d(_) => 0,
        Op::Gemm(gm) if gm.trans_b => 0,
        _ => 1,
    };
    let inner: usize = shape[out_axis + 1..].iter().product();
    let d = shape[out_axis];
    if d != len {
        return None;
    }
    for (i, x) in w.iter().enumerate() {
        let ch = (i / inner) % d;
        sum[ch] += x.abs() as f64;
        count[ch] += 1;
    }
    Some(sum.iter().zip(&count).map(|(s, c)| s / (*c).max(1) as f64).collect())
}

/// |gamma| of the batch norm that is the only reader of `node`'s result.
fn bn_gamma(m: &Module, g: &Graph, node: clio::NodeId, len: usize) -> Option<Vec<f64>> {
    let v = Value::of(node);
    if g.use_count(v) != 1 {
        return None;
    }
    let (bn, slot) = *g.uses(v).first()?;
    if slot != 0 || !matches!(g.node(bn).op, Op::BatchNorm(_)) {
        return None;
    }
    let (_, gamma) = weight_f32(m, g, g.operand(bn, 1))?;
    (gamma.len() == len).then(|| gamma.iter().map(|x| x.abs() as f64).collect())
}

/// The channel groups of the analysed graph, in order of their first reference.
pub fn groups(m: &Module, g: &Graph, a: &mut Analysis, criterion: Criterion) -> Vec<Group> {
    let scores = ref_scores(m, g, a, criterion);
    let mut by_root: BTreeMap<Ref, (Vec<u32>, Vec<f64>, bool)> = BTreeMap::new();
    for r in 0..a.uf.len() as Ref {
        let root = a.uf.find(r);
        let space = a.space_of[r as usize];
        let e = by_root.entry(root).or_default();
        e.0.push(space);
        if let Some(s) = scores[r as usize] {
            e.1.push(s);
        }
        e.2 |= a.spaces[space as usize].source;
    }
    let mut out = vec![];
    for (root, (mut spaces, sc, has_source)) in by_root {
        if !has_source {
            continue;
        }
        spaces.sort_unstable();
        spaces.dedup();
        let frozen = a.uf.frozen(root);
        let score = (!sc.is_empty()).then(|| sc.iter().sum::<f64>() / sc.len() as f64);
        out.push(Group { root, spaces, frozen, score });
    }
    out
}

/// Matches `name` against a glob pattern with `*` wildcards.
pub fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.len() >= p.len() && rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(pos) => rest = &rest[pos + p.len()..],
                None => return false,
            }
        }
    }
    true
}

fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m.max(1)) * m.max(1)
}

/// Chooses the groups to prune (their roots).
pub fn select(g: &Graph, a: &Analysis, groups: &[Group], s: &Settings) -> HashSet<Ref> {
    let layer_ok = |spaces: &[u32]| {
        s.layers.is_empty()
            || spaces.iter().any(|sp| {
                let name = g.node(a.spaces[*sp as usize].node).name();
                s.layers.iter().any(|p| glob(p, name))
            })
    };
    // Clusters: eligible groups with the same set of producer spaces (one layer, or layers
    // coupled through residual adds).
    let mut clusters: BTreeMap<&[u32], Vec<usize>> = BTreeMap::new();
    for (i, gr) in groups.iter().enumerate() {
        if gr.frozen.is_none() && gr.score.is_some() && layer_ok(&gr.spaces) {
            clusters.entry(&gr.spaces).or_default().push(i);
        }
    }
    let key = |i: &usize| (groups[*i].score.unwrap_or(f64::INFINITY), groups[*i].root);
    let floor_of = |n: usize| s.min_channels.max(1).min(n);
    let mut pruned: HashSet<Ref> = HashSet::new();
    match s.scope {
        Scope::Layer => {
            for members in clusters.values() {
                let n = members.len();
                let remove = ((s.ratio * n as f64) + 1e-9).floor() as usize;
                let keep = round_up((n - remove.min(n)).max(floor_of(n)), s.round_to).min(n);
                let mut sorted = members.clone();
                sorted.sort_by(|x, y| key(x).partial_cmp(&key(y)).unwrap_or(std::cmp::Ordering::Equal));
                pruned.extend(sorted[..n - keep].iter().map(|i| groups[*i].root));
            }
        }
        Scope::Global => {
            let total: usize = clusters.values().map(|c| c.len()).sum();
            let target = ((s.ratio * total as f64) + 1e-9).floor() as usize;
            let mut cluster_of: HashMap<usize, usize> = HashMap::new();
            let mut kept: Vec<usize> = vec![];
            let mut all: Vec<usize> = vec![];
            for (ci, members) in clusters.values().enumerate() {
                kept.push(members.len());
                for m in members {
                    cluster_of.insert(*m, ci);
                    all.push(*m);
                }
            }
            let sizes: Vec<usize> = kept.clone();
            all.sort_by(|x, y| key(x).partial_cmp(&key(y)).unwrap_or(std::cmp::Ordering::Equal));
            let mut chosen: Vec<Vec<usize>> = vec![vec![]; kept.len()];
            let mut count = 0;
            for i in all {
                if count == target {
                    break;
                }
                let c = cluster_of[&i];
                if kept[c] > floor_of(sizes[c]) {
                    kept[c] -= 1;
                    chosen[c].push(i);
                    count += 1;
                }
            }
            for (c, mut picks) in chosen.into_iter().enumerate() {
                let want = round_up(kept[c], s.round_to).min(sizes[c]);
                // Give back the highest-scoring picks until the kept count is a multiple.
                for _ in kept[c]..want {
                    picks.pop();
                }
                pruned.extend(picks.iter().map(|i| groups[*i].root));
            }
        }
    }
    pruned
}

/// Parses an explicit channel list `NODE=i:j:k;NODE2=l` into the groups holding those output
/// channels of those producers. Errors name the node.
pub fn explicit(g: &Graph, a: &mut Analysis, spec: &str) -> Result<HashSet<Ref>, String> {
    let mut pruned = HashSet::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, list) =
            part.rsplit_once('=').ok_or_else(|| format!("option channels: `{part}` is not NODE=i:j:..."))?;
        let name = name.trim().trim_start_matches('%');
        let node = g.find(name).ok_or_else(|| format!("option channels: no node %{name} in @{}", g.name()))?;
        let space = a
            .spaces
            .iter()
            .find(|s| s.node == node && s.source)
            .cloned()
            .ok_or_else(|| format!("option channels: %{name} is not a prunable conv2d/gemm/matmul"))?;
        for idx in list.split(':').map(str::trim).filter(|p| !p.is_empty()) {
            let i: usize = idx.parse().map_err(|_| format!("option channels: `{idx}` is not a channel index"))?;
            if i >= space.len {
                return Err(format!("option channels: %{name} has {} output channels, no channel {i}", space.len));
            }
            let r = space.first + i as Ref;
            if let Some(why) = a.uf.frozen(r) {
                return Err(format!("option channels: channel {i} of %{name} cannot be pruned ({why})"));
            }
            pruned.insert(a.uf.find(r));
        }
    }
    // Never empty a space.
    for s in a.spaces.iter().filter(|s| s.source).cloned().collect::<Vec<_>>() {
        if (0..s.len).all(|i| pruned.contains(&a.uf.find(s.first + i as Ref))) {
            return Err(format!("option channels: would remove every channel of %{}", g.node(s.node).name()));
        }
    }
    Ok(pruned)
}
