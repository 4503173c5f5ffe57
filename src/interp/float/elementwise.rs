//! Broadcasting element-wise arithmetic: `add`, `sub`, `mul`, `div` (full NumPy broadcasting,
//! IEEE semantics: division by zero gives infinities or NaN) and `prelu`
//! (`x >= 0 ? x : slope * x`, the slope broadcast to the input).

use super::{f32_tensor, f32s};
use crate::interp::shared::broadcast_map2;
use crate::ir::Tensor;

/// The four arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// `a op b` with NumPy broadcasting.
pub(crate) fn binary(op: BinOp, a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    let (ad, bd) = (f32s(a, "operand 0")?, f32s(b, "operand 1")?);
    let (shape, out) = match op {
        BinOp::Add => broadcast_map2(ad, a.shape(), bd, b.shape(), |x, y| x + y)?,
        BinOp::Sub => broadcast_map2(ad, a.shape(), bd, b.shape(), |x, y| x - y)?,
        BinOp::Mul => broadcast_map2(ad, a.shape(), bd, b.shape(), |x, y| x * y)?,
        BinOp::Div => broadcast_map2(ad, a.shape(), bd, b.shape(), |x, y| x / y)?,
    };
    f32_tensor(&shape, out)
}

/// `x >= 0 ? x : slope * x` (NaN stays NaN).
pub(crate) fn prelu(x: &Tensor, slope: &Tensor) -> Result<Tensor, String> {
    let (xd, sd) = (f32s(x, "prelu input")?, f32s(slope, "prelu slope")?);
    let (shape, out) = broadcast_map2(xd, x.shape(), sd, slope.shape(), |v, s| if v < 0.0 { s * v } else { v })?;
    if shape != x.shape() {
        return Err(format!("prelu slope {:?} does not broadcast to the input {:?}", slope.shape(), x.shape()));
    }
    f32_tensor(&shape, out)
}
