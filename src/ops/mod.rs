//! The builtin operations: one file per family, each owning its attributes (as a typed struct),
//! its attribute (de)serialisation for the text format and its shape rule.
//!
//! [`crate::ir::Op`] is the enum over them; passes match on it.

// Shape rules run on unverified user input (parser, importer): no panicking indexing or
// slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

mod activation;
mod binary;
mod conv;
mod custom;
mod layout;
mod linear;
mod norm;
mod pool;
mod quant;
mod transmit;

pub use activation::{Clip, HardSigmoid, Softmax};
pub use binary::broadcast_shapes;
pub use conv::{conv_out_dim, Conv2d};
pub use custom::CustomOp;
pub use layout::{ChannelSlice, Concat, Flatten, Pad, PadMode, Reshape, Squeeze, Transpose, Unsqueeze};
pub use linear::Gemm;
pub use norm::BatchNorm;
pub use pool::{AvgPool, MaxPool, Window2d};
pub use transmit::Transmit;

pub(crate) use activation::unary_rule;
pub(crate) use binary::binary_rule;
pub(crate) use linear::matmul_rule;
pub(crate) use norm::scale_shift_rule;
pub(crate) use pool::global_avg_pool_rule;
pub(crate) use quant::{dequantize_rule, quantize_rule};

use crate::ir::{DType, Shape, TensorType};

/// A result type as far as an op's rule determines it: the shape always, the element type
/// unless the op leaves it to the declared result (e.g. `quantize`).
#[derive(Clone, Debug, PartialEq)]
pub struct Inferred {
    /// Result shape.
    pub shape: Shape,
    /// Result element type, or `None` when the declaration decides.
    pub dtype: Option<DType>,
}

impl Inferred {
    /// A result with the given shape and element type.
    pub fn new(shape: Shape, dtype: DType) -> Self {
        Inferred { shape, dtype: Some(dtype) }
    }
}

/// Shape-rule result: inferred results, or a message describing the violated constraint.
pub type RuleResult = Result<Vec<Inferred>, String>;

/// The first `N` operands. [`crate::ir::Op::infer`] checks the operand count against the op's
/// arity before any rule runs, so the error only reaches a caller that skips it.
pub(crate) fn operands<'a, const N: usize>(op: &str, ins: &[&'a TensorType]) -> Result<[&'a TensorType; N], String> {
    ins.first_chunk::<N>().copied().ok_or_else(|| format!("`{op}` takes at least {N} operands, got {}", ins.len()))
}

/// The dimensions of `t`, which must have rank `N`.
pub(crate) fn dims_of<const N: usize>(what: &str, t: &TensorType) -> Result<[usize; N], String> {
    <[usize; N]>::try_from(t.shape.as_slice())
        .map_err(|_| format!("{what} must have rank {N}, got {}", crate::text::type_string(t)))
}

/// Requires operands `a` and `b` to share an element type.
pub(crate) fn same_dtype(what: &str, a: &TensorType, b: &TensorType) -> Result<(), String> {
    if a.dtype != b.dtype {
        return Err(format!("{what}: element types differ ({} vs {})", a.dtype, b.dtype));
    }
    Ok(())
}

/// Normalises a possibly negative axis for rank `rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}
