//! Integer data movement: `flatten`, `reshape`, `squeeze`, `unsqueeze`, `transpose`,
//! `concat`, `pad`, `channel_slice`, `transmit`. The values move unchanged, so operands and
//! result must share one quantization (the `quantize` pass ties them). Constant padding fills
//! with the pad value quantized in the result's format (the zero point for 0.0).

use super::params::{act, act_range, require_same};
use crate::interp::shared::{self, dispatch, Fill};
use crate::ir::{DType, Tensor, TensorType};
use crate::ops::{Pad, PadMode};

/// The same elements under the declared result shape.
pub(crate) fn reshape(x: &Tensor, x_ty: &TensorType, y_ty: &TensorType, op: &str) -> Result<Tensor, String> {
    require_same(op, x_ty, y_ty)?;
    Tensor::new(y_ty.shape.clone(), x.data().clone()).map_err(|e| format!("cannot reshape: {e}"))
}

/// Axis permutation.
pub(crate) fn transpose(x: &Tensor, perm: &[usize], x_ty: &TensorType, y_ty: &TensorType) -> Result<Tensor, String> {
    require_same("transpose", x_ty, y_ty)?;
    dispatch!(x.dtype(), transpose_t(x, perm))
}

fn transpose_t<T: shared::Elem>(x: &Tensor, perm: &[usize]) -> Result<Tensor, String> {
    shared::transpose::<T>(x, perm)
}

/// Concatenation: every operand must have the result's quantization.
pub(crate) fn concat(ins: &[&Tensor], axis: usize, tys: &[&TensorType], y_ty: &TensorType) -> Result<Tensor, String> {
    for t in tys {
        require_same("concat", t, y_ty)?;
    }
    dispatch!(y_ty.dtype, concat_t(ins, axis, &y_ty.shape))
}

fn concat_t<T: shared::Elem>(ins: &[&Tensor], axis: usize, out_shape: &[usize]) -> Result<Tensor, String> {
    shared::concat::<T>(ins, axis, out_shape)
}

/// Keeps indices `start..end` of one axis.
pub(crate) fn slice(
    x: &Tensor,
    axis: usize,
    start: usize,
    end: usize,
    x_ty: &TensorType,
    y_ty: &TensorType,
) -> Result<Tensor, String> {
    require_same("channel_slice", x_ty, y_ty)?;
    dispatch!(x.dtype(), slice_t(x, axis, start, end))
}

fn slice_t<T: shared::Elem>(x: &Tensor, axis: usize, start: usize, end: usize) -> Result<Tensor, String> {
    shared::slice_axis::<T>(x, axis, start, end)
}

/// Border padding; constant padding uses the quantized pad value.
pub(crate) fn pad(p: &Pad, x: &Tensor, x_ty: &TensorType, y_ty: &TensorType) -> Result<Tensor, String> {
    require_same("pad", x_ty, y_ty)?;
    let fill = match p.mode {
        PadMode::Constant => {
            let q = act(y_ty, "result")?;
            Some(q.quantize(p.value as f64, act_range(y_ty.dtype)?))
        }
        _ => None,
    };
    match x.dtype() {
        DType::I8 => shared::pad::<i8>(x, &p.pads, fill_of(p.mode, fill.map(|v| v as i8))),
        DType::I16 => shared::pad::<i16>(x, &p.pads, fill_of(p.mode, fill.map(|v| v as i16))),
        d => Err(format!("integer pad of {d} tensors is not supported")),
    }
}

fn fill_of<T: Copy + Default>(mode: PadMode, v: Option<T>) -> Fill<T> {
    match mode {
        PadMode::Constant => Fill::Constant(v.unwrap_or_default()),
        PadMode::Reflect => Fill::Reflect,
        PadMode::Edge => Fill::Edge,
    }
}
