//! Broadcasting binary ops: `add`, `sub`, `mul`, `div` and `prelu` (NumPy broadcasting).

// Shape rules run on unverified user input (parser, importer): no panicking indexing or
// slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{operands, same_dtype, Inferred, RuleResult};
use crate::ir::{Shape, TensorType};

/// NumPy broadcast of two shapes, or `None` if they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    // Left-pads a shape with 1s to `rank` dimensions.
    let padded = |s: &[usize]| std::iter::repeat_n(1, rank - s.len()).chain(s.iter().copied()).collect::<Vec<_>>();
    padded(a)
        .into_iter()
        .zip(padded(b))
        .map(|dims| match dims {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Shape rule of the broadcasting binary ops.
pub(crate) fn binary_rule(op: &str, ins: &[&TensorType]) -> RuleResult {
    let [a, b] = operands(op, ins)?;
    same_dtype(op, a, b)?;
    let shape = broadcast_shapes(&a.shape, &b.shape)
        .ok_or_else(|| format!("{op}: shapes {:?} and {:?} do not broadcast", a.shape, b.shape))?;
    Ok(vec![Inferred::new(shape, a.dtype)])
}
