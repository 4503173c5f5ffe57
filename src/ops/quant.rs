//! `quantize(x)` (real to integer; the declared result type carries the integer type and its
//! quantization parameters) and `dequantize(q)` (integer to f32).

use super::{Inferred, RuleResult};
use crate::ir::{DType, TensorType};

/// Shape rule of `quantize`: same shape; the element type comes from the declaration.
pub(crate) fn quantize_rule(ins: &[&TensorType]) -> RuleResult {
    if ins[0].dtype != DType::F32 {
        return Err(format!("quantize expects an f32 operand, got {}", ins[0].dtype));
    }
    Ok(vec![Inferred { shape: ins[0].shape.clone(), dtype: None }])
}

/// Shape rule of `dequantize`: same shape, f32.
pub(crate) fn dequantize_rule(ins: &[&TensorType]) -> RuleResult {
    if ins[0].quant.is_none() {
        return Err(format!("dequantize expects a quantized operand, got {}", crate::text::type_string(ins[0])));
    }
    Ok(vec![Inferred::new(ins[0].shape.clone(), DType::F32)])
}
