//! Element-wise activations: `relu`, `clip` (ReLU6 is `clip {min = 0.0, max = 6.0}`),
//! `sigmoid`, `hard_sigmoid`, `hard_swish`, and `softmax` along one axis.

// Shape rules run on unverified user input (parser, importer): no panicking indexing or
// slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{normalize_axis, operands, Inferred, RuleResult};
use crate::ir::{Attr, AttrReader, TensorType};

/// Shape rule of every unary element-wise op: the result has the operand's type.
pub(crate) fn unary_rule(ins: &[&TensorType]) -> RuleResult {
    let [x] = operands("element-wise op", ins)?;
    Ok(vec![Inferred::new(x.shape.clone(), x.dtype)])
}

/// Attributes of `clip(x)`: `min(max(x, min), max)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    /// Lower bound (may be `-inf`).
    pub min: f32,
    /// Upper bound (may be `inf`).
    pub max: f32,
}

impl Clip {
    /// ReLU6.
    pub const RELU6: Clip = Clip { min: 0.0, max: 6.0 };

    /// True for `clip {min = 0, max = 6}`.
    pub fn is_relu6(&self) -> bool {
        self.min == 0.0 && self.max == 6.0
    }

    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("min", Attr::Float(self.min)), ("max", Attr::Float(self.max))]
    }

    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        let c = Clip { min: r.float_or("min", f32::NEG_INFINITY)?, max: r.float_or("max", f32::INFINITY)? };
        if c.min.is_nan() || c.max.is_nan() || c.min > c.max {
            return Err(format!("clip bounds [{:?}, {:?}] are not an interval", c.min, c.max));
        }
        Ok(c)
    }
}

/// Attributes of `hard_sigmoid(x) = max(0, min(1, alpha * x + beta))`.
#[derive(Clone, Debug, PartialEq)]
pub struct HardSigmoid {
    /// Slope (ONNX default 0.2; PyTorch exports 1/6).
    pub alpha: f32,
    /// Offset (ONNX default 0.5).
    pub beta: f32,
}

impl HardSigmoid {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("alpha", Attr::Float(self.alpha)), ("beta", Attr::Float(self.beta))]
    }

    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(HardSigmoid { alpha: r.float_or("alpha", 0.2)?, beta: r.float_or("beta", 0.5)? })
    }
}

/// Attributes of `softmax(x)` along `axis`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Softmax {
    /// The normalised axis (non-negative).
    pub axis: usize,
}

impl Softmax {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("axis", Attr::Int(self.axis as i64))]
    }

    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(Softmax { axis: r.usize("axis")? })
    }

    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [x] = operands("softmax", ins)?;
        normalize_axis(self.axis as i64, x.rank())?;
        unary_rule(ins)
    }
}
