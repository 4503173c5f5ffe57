//! Normalisation: `batch_norm(x, gamma, beta, mean, var) {epsilon}` (inference form, channel
//! axis 1) and `scale_shift(x, scale, shift)`, the per-channel affine `x * scale[c] + shift[c]`
//! that BN fusion leaves where no producer can absorb a batch norm.

// Shape rules run on unverified user input (parser, importer): no panicking indexing or
// slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{same_dtype, Inferred, RuleResult};
use crate::ir::{Attr, AttrReader, TensorType};

/// Attributes of `batch_norm`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// Added to the variance before the square root.
    pub epsilon: f32,
}

impl BatchNorm {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("epsilon", Attr::Float(self.epsilon))]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        let epsilon = r.float_or("epsilon", 1e-5)?;
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(format!("batch_norm epsilon {epsilon:?} must be finite and >= 0"));
        }
        Ok(BatchNorm { epsilon })
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        per_channel_rule("batch_norm", ins)
    }
}

/// Shape rule of `scale_shift`.
pub(crate) fn scale_shift_rule(ins: &[&TensorType]) -> RuleResult {
    per_channel_rule("scale_shift", ins)
}

fn per_channel_rule(op: &str, ins: &[&TensorType]) -> RuleResult {
    let Some((x, params)) = ins.split_first() else {
        return Err(format!("`{op}` takes at least 1 operands, got 0"));
    };
    let &[_, c, ..] = x.shape.as_slice() else {
        return Err(format!("{op} input must have rank >= 2 (N, C, ...), got {:?}", x.shape));
    };
    for (i, p) in params.iter().enumerate() {
        same_dtype(op, x, p)?;
        if p.shape != [c] {
            return Err(format!("{op} parameter {} must have shape [{c}], got {:?}", i + 1, p.shape));
        }
    }
    Ok(vec![Inferred::new(x.shape.clone(), x.dtype)])
}
