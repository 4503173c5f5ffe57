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
use egg::{CostFunction, EGraph, Id, Language};
use rustc_hash::{FxHashMap, FxHashSet};
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
    pub memo: FxHashMap<ENode, f64>,
}

impl EggCost<'_> {
    fn op_cost(&mut self, enode: &ENode) -> f64 {
        if let Some(c) = self.memo.get(enode) {
            return *c;
        }
        let c = match enode {
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
        };
        self.memo.insert(enode.clone(), c);
        c
    }
}

impl CostFunction<ENode> for EggCost<'_> {
    type Cost = Cost;

    fn cost<C>(&mut self, enode: &ENode, mut costs: C) -> Cost
    where
        C: FnMut(Id) -> Cost,
    {
        let own = Cost {
            value: self.op_cost(enode),
            size: 1,
            fresh: u32::from(matches!(enode, ENode::Call(..)) && !self.originals.contains(enode)),
        };
        enode.fold(own, |acc, id| {
            let c = costs(id);
            Cost {
                value: acc.value + c.value,
                size: acc.size.saturating_add(c.size),
                fresh: acc.fresh.saturating_add(c.fresh),
            }
        })
    }
}
