//! Extraction costs: the caller's [`CostFn`] (default [`default_cost`]: MACs plus bytes read
//! and written) priced per clio op, and the egg cost function that sums it over a term.
//!
//! egg's extractor minimises *tree* cost: a subterm used twice is paid twice. Regions are trees
//! (every value read more than once is an anchor outside the region, a leaf of cost 0 whose
//! reads are paid by each reader as bytes read), so inside a region tree cost is the real
//! cost. Ties are broken by term size (the rule contract's measure) and then in favour of the
//! nodes the region already had, so extraction is deterministic and a second run changes
//! nothing.

use super::analysis::{compute, raise_op, ClioAnalysis, Data};
use super::lang::{ENode, Func};
use clio::ir::{Op, TensorType};
use egg::{EGraph, Id, Language};
use rustc_hash::FxHashSet;
use std::cmp::Ordering;
use std::sync::Arc;

/// A cost model for extraction: `(op, present operand types, result type) -> cost`. Lower is
/// better; negative values count as 0 and NaN as infinite.
pub type CostFn = Arc<dyn Fn(&Op, &[&TensorType], &TensorType) -> f64 + Send + Sync>;

/// Multiply-accumulates of one op (conv2d, gemm, matmul; 0 for the rest), as in
/// `clio::analysis`.
pub fn macs(op: &Op, operands: &[&TensorType], result: &TensorType) -> f64 {
    let elems = |s: &[usize]| s.iter().map(|d| *d as f64).product::<f64>();
    match op {
        Op::Conv2d(_) => match operands.get(1) {
            Some(w) if w.rank() == 4 => elems(&result.shape) * elems(&w.shape[1..]),
            _ => 0.0,
        },
        Op::Gemm(g) => match (operands.first(), operands.get(1)) {
            (Some(a), Some(b)) if a.rank() == 2 && b.rank() == 2 => {
                let (m, k, n) = g.dims(&a.shape, &b.shape);
                m as f64 * k as f64 * n as f64
            }
            _ => 0.0,
        },
        Op::MatMul => match operands.first() {
            Some(a) if a.rank() >= 1 => elems(&result.shape) * a.shape[a.rank() - 1] as f64,
            _ => 0.0,
        },
        _ => 0.0,
    }
}

/// The default cost: MACs + bytes read (every operand, weights included) + bytes written.
pub fn default_cost(op: &Op, operands: &[&TensorType], result: &TensorType) -> f64 {
    let bytes = |t: &TensorType| t.size_bytes().map(|b| b as f64).unwrap_or(f64::INFINITY);
    macs(op, operands, result) + operands.iter().map(|t| bytes(t)).sum::<f64>() + bytes(result)
}

/// The default cost as a [`CostFn`].
pub fn default_cost_fn() -> CostFn {
    Arc::new(default_cost)
}

/// Cost of a term: the caller's cost summed over clio ops, then the term size, then how many
/// nodes are not from the input (all compared in that order).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Cost {
    pub value: f64,
    pub size: u32,
    pub fresh: u32,
}

impl PartialOrd for Cost {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.value.total_cmp(&other.value).then(self.size.cmp(&other.size)).then(self.fresh.cmp(&other.fresh)))
    }
}

pub(crate) struct EggCost<'a> {
    pub egraph: &'a EGraph<ENode, ClioAnalysis>,
    pub cost: &'a CostFn,
    /// The region's own op e-nodes (canonical), preferred on ties.
    pub originals: &'a FxHashSet<ENode>,
}

impl EggCost<'_> {
    /// The caller's cost of `enode`'s op (0 for leaves and literals). [`Extraction`] asks once
    /// per e-node.
    fn op_cost(&self, enode: &ENode) -> f64 {
        match enode {
            ENode::Call(f @ Func::Op(_), ch) => {
                let args: Vec<&Data> = ch.iter().map(|c| &self.egraph[*c].data).collect();
                let result = compute(&self.egraph.analysis, *f, &args);
                match (f.spec().and_then(|s| raise_op(s, &args)), result.tensor()) {
                    (Some((op, ins)), Some(out)) => {
                        let v = (self.cost)(&op, &ins, &out.ty);
                        if v.is_nan() {
                            f64::INFINITY
                        } else {
                            v.max(0.0)
                        }
                    }
                    _ => f64::INFINITY,
                }
            }
            _ => 0.0,
        }
    }
}

impl EggCost<'_> {
    /// The cost of `enode` alone (its children's costs not added), as egg's `CostFunction`
    /// would start its fold: the op's cost, size 1, and whether it is fresh.
    fn own(&self, enode: &ENode) -> Cost {
        Cost {
            value: self.op_cost(enode),
            size: 1,
            fresh: u32::from(matches!(enode, ENode::Call(..)) && !self.originals.contains(enode)),
        }
    }
}

/// Adds a child's cost to an accumulated cost, as the term cost folds over the children.
fn add(acc: Cost, c: Cost) -> Cost {
    Cost { value: acc.value + c.value, size: acc.size.saturating_add(c.size), fresh: acc.fresh.saturating_add(c.fresh) }
}

/// Cheapest-term extraction: exactly egg 0.11's `Extractor::new` / `find_best_node` (same
/// fixpoint, same class order, same tie-breaking, so the same nodes are chosen), over index
/// tables instead of a hash map of cloned e-nodes.
///
/// egg's extractor re-scans every class until no cost changes, and on every scan it hashes
/// the e-node for the cost memo and clones the best e-node of every class (an allocation per
/// class per scan). Here the classes are numbered once in `EGraph::classes` order, each
/// e-node's own cost is computed once (the same [`EggCost`] function: its value depends only on
/// the e-node), and a class's best node is kept as its position in the class.
pub(crate) struct Extraction<'a> {
    egraph: &'a EGraph<ENode, ClioAnalysis>,
    classes: Vec<&'a egg::EClass<ENode, Data>>,
    /// Dense class number by canonical class id (`u32::MAX`: none).
    dense: Vec<u32>,
    /// Best (cost, position in the class) per dense class number.
    best: Vec<Option<(Cost, u32)>>,
}

impl<'a> Extraction<'a> {
    /// Runs egg's cost fixpoint with `cost` over every class of `egraph`.
    pub fn new(egraph: &'a EGraph<ENode, ClioAnalysis>, cost: EggCost<'_>) -> Extraction<'a> {
        let classes: Vec<&egg::EClass<ENode, Data>> = egraph.classes().collect();
        let bound = classes.iter().map(|c| usize::from(c.id) + 1).max().unwrap_or(0);
        let mut dense = vec![u32::MAX; bound];
        for (i, c) in classes.iter().enumerate() {
            dense[usize::from(c.id)] = i as u32;
        }
        // Every e-node in order: its class's first node, its children (dense), its own cost.
        let mut first_node: Vec<u32> = Vec::with_capacity(classes.len() + 1);
        let mut first_child: Vec<u32> = vec![];
        let mut children: Vec<u32> = vec![];
        let mut own: Vec<Option<Cost>> = vec![];
        for c in &classes {
            first_node.push(first_child.len() as u32);
            for n in c.iter() {
                first_child.push(children.len() as u32);
                children.extend(n.children().iter().map(|ch| {
                    let id = usize::from(egraph.find(*ch));
                    dense.get(id).copied().unwrap_or(u32::MAX)
                }));
                own.push(None);
            }
        }
        first_node.push(first_child.len() as u32);
        first_child.push(children.len() as u32);
        let mut best: Vec<Option<(Cost, u32)>> = vec![None; classes.len()];
        let mut did_something = true;
        while did_something {
            did_something = false;
            for (ci, class) in classes.iter().enumerate() {
                // egg's `make_pass`: the first node of minimal total cost (`None`, i.e. a child
                // without a cost yet, is highest).
                let mut pass: Option<(Option<Cost>, u32)> = None;
                let (lo, hi) = (first_node[ci] as usize, first_node[ci + 1] as usize);
                for (j, node) in (lo..hi).zip(class.iter()) {
                    let kids = &children[first_child[j] as usize..first_child[j + 1] as usize];
                    let total = if kids.iter().all(|k| best.get(*k as usize).is_some_and(|b| b.is_some())) {
                        let start = *own[j].get_or_insert_with(|| cost.own(node));
                        Some(kids.iter().fold(start, |acc, k| match best[*k as usize] {
                            Some((c, _)) => add(acc, c),
                            None => acc,
                        }))
                    } else {
                        None
                    };
                    let replace = match &pass {
                        None => true,
                        Some((cur, _)) => cmp(cur, &total) == Ordering::Greater,
                    };
                    if replace {
                        pass = Some((total, (j - lo) as u32));
                    }
                }
                let new = match pass {
                    Some((Some(c), j)) => (c, j),
                    _ => continue,
                };
                match &best[ci] {
                    None => {
                        best[ci] = Some(new);
                        did_something = true;
                    }
                    Some(old) if new.0 < old.0 => {
                        best[ci] = Some(new);
                        did_something = true;
                    }
                    _ => {}
                }
            }
        }
        Extraction { egraph, classes, dense, best }
    }

    /// The cheapest e-node of `class` (panics, as egg does, when the class got no cost).
    pub fn find_best_node(&self, class: Id) -> &'a ENode {
        let ci = self.dense[usize::from(self.egraph.find(class))] as usize;
        let (_, j) = self.best[ci].unwrap_or_else(|| panic!("no cost for e-class {class}"));
        &self.classes[ci].nodes[j as usize]
    }
}

/// egg's order of optional costs: `None` is highest.
fn cmp(a: &Option<Cost>, b: &Option<Cost>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}
