//! Data movement: `flatten`, `reshape`, `squeeze`, `unsqueeze` (same elements, new shape),
//! `transpose` (any permutation), `concat`, `pad` (constant / reflect / edge, any rank) and
//! `channel_slice`. These work on every element type (constant padding of integer tensors
//! excepted: its fill value is a real number whose integer encoding is not defined here).

use crate::interp::shared::{self, dispatch, Fill};
use crate::ir::{DType, Tensor};
use crate::ops::{ChannelSlice, Concat, Pad, PadMode, Transpose};

/// The same elements under the declared result shape.
pub(crate) fn reshape(x: &Tensor, out_shape: &[usize]) -> Result<Tensor, String> {
    Tensor::new(out_shape.to_vec(), x.data().clone()).map_err(|e| format!("cannot reshape: {e}"))
}

/// Axis permutation.
pub(crate) fn transpose(p: &Transpose, x: &Tensor) -> Result<Tensor, String> {
    dispatch!(x.dtype(), transpose_t(x, &p.perm))
}

fn transpose_t<T: shared::Elem>(x: &Tensor, perm: &[usize]) -> Result<Tensor, String> {
    shared::transpose::<T>(x, perm)
}

/// Concatenation along `p.axis`.
pub(crate) fn concat(p: &Concat, ins: &[&Tensor], out_shape: &[usize]) -> Result<Tensor, String> {
    let first = ins.first().ok_or("concat needs at least one operand")?;
    if let Some(t) = ins.iter().find(|t| t.dtype() != first.dtype()) {
        return Err(format!("concat operands mix {} and {}", first.dtype(), t.dtype()));
    }
    dispatch!(first.dtype(), concat_t(ins, p.axis, out_shape))
}

fn concat_t<T: shared::Elem>(ins: &[&Tensor], axis: usize, out_shape: &[usize]) -> Result<Tensor, String> {
    shared::concat::<T>(ins, axis, out_shape)
}

/// Border padding.
pub(crate) fn pad(p: &Pad, x: &Tensor) -> Result<Tensor, String> {
    match (x.dtype(), p.mode) {
        (DType::F32, PadMode::Constant) => shared::pad::<f32>(x, &p.pads, Fill::Constant(p.value)),
        (d, PadMode::Constant) => {
            Err(format!("constant padding of {d} tensors is not supported by the float interpreter"))
        }
        (d, mode) => dispatch!(d, pad_t(x, &p.pads, mode)),
    }
}

fn pad_t<T: shared::Elem>(x: &Tensor, pads: &[usize], mode: PadMode) -> Result<Tensor, String> {
    let fill = match mode {
        PadMode::Reflect => Fill::Reflect,
        PadMode::Edge => Fill::Edge,
        PadMode::Constant => Fill::Constant(T::default()),
    };
    shared::pad::<T>(x, pads, fill)
}

/// Keeps indices `start..end` of one axis.
pub(crate) fn channel_slice(p: &ChannelSlice, x: &Tensor) -> Result<Tensor, String> {
    dispatch!(x.dtype(), slice_t(x, p.axis, p.start, p.end))
}

fn slice_t<T: shared::Elem>(x: &Tensor, axis: usize, start: usize, end: usize) -> Result<Tensor, String> {
    shared::slice_axis::<T>(x, axis, start, end)
}
