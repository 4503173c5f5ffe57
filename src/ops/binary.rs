//! Broadcasting binary ops: `add`, `sub`, `mul`, `div` and `prelu` (NumPy broadcasting).

use super::{same_dtype, Inferred, RuleResult};
use crate::ir::{Shape, TensorType};

/// NumPy broadcast of two shapes, or `None` if they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Shape rule of the broadcasting binary ops.
pub(crate) fn binary_rule(op: &str, ins: &[&TensorType]) -> RuleResult {
    let (a, b) = (ins[0], ins[1]);
    same_dtype(op, a, b)?;
    let shape = broadcast_shapes(&a.shape, &b.shape)
        .ok_or_else(|| format!("{op}: shapes {:?} and {:?} do not broadcast", a.shape, b.shape))?;
    Ok(vec![Inferred::new(shape, a.dtype)])
}
