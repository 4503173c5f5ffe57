//! `quantize(x)` (real to integer; the declared result type carries the integer type and its
//! quantization parameters) and `dequantize(q)` (integer to f32).

// Shape rules run on unverified user input (parser, importer): no panicking indexing or
// slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{operands, Inferred, RuleResult};
use crate::ir::{DType, TensorType};

/// Shape rule of `quantize`: same shape; the element type comes from the declaration.
pub(crate) fn quantize_rule(ins: &[&TensorType]) -> RuleResult {
    let [x] = operands("quantize", ins)?;
    if x.dtype != DType::F32 {
        return Err(format!("quantize expects an f32 operand, got {}", x.dtype));
    }
    Ok(vec![Inferred { shape: x.shape.clone(), dtype: None }])
}

/// Shape rule of `dequantize`: same shape, f32.
pub(crate) fn dequantize_rule(ins: &[&TensorType]) -> RuleResult {
    let [q] = operands("dequantize", ins)?;
    if q.quant.is_none() {
        return Err(format!("dequantize expects a quantized operand, got {}", crate::text::type_string(q)));
    }
    Ok(vec![Inferred::new(q.shape.clone(), DType::F32)])
}
