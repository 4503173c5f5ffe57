//! Pooling: `max_pool`, `avg_pool` (2-D windows over NCHW) and `global_avg_pool`.

use super::conv::{array_or, ints};
use super::{conv_out_dim, expect_rank, Inferred, RuleResult};
use crate::ir::{Attr, AttrReader, TensorType};

/// A 2-D pooling window.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Window2d {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Vertical and horizontal stride.
    pub strides: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Ceil-mode output size (PyTorch / ONNX `ceil_mode`).
    pub ceil_mode: bool,
}

impl Window2d {
    fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![
            ("kernel", ints(&self.kernel)),
            ("strides", ints(&self.strides)),
            ("pads", ints(&self.pads)),
            ("ceil_mode", Attr::Bool(self.ceil_mode)),
        ]
    }
    fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        let kernel = r.usize_array::<2>("kernel")?;
        Ok(Window2d {
            kernel,
            strides: array_or(r, "strides", [1, 1])?,
            pads: array_or(r, "pads", [0; 4])?,
            ceil_mode: r.bool_or("ceil_mode", false)?,
        })
    }
    /// Shape rule shared by both pools.
    pub fn infer(&self, op: &str, ins: &[&TensorType]) -> RuleResult {
        let x = ins[0];
        expect_rank(op, x, 4)?;
        let mut out = x.shape.clone();
        for i in 0..2 {
            if self.pads[i] >= self.kernel[i] || self.pads[i + 2] >= self.kernel[i] {
                return Err(format!("{op}: padding {:?} must be smaller than the window {:?}", self.pads, self.kernel));
            }
            out[2 + i] = conv_out_dim(
                x.shape[2 + i],
                self.kernel[i],
                self.strides[i],
                1,
                (self.pads[i], self.pads[i + 2]),
                self.ceil_mode,
            )
            .ok_or_else(|| {
                format!("{op}: window {:?} stride {:?} does not fit input {:?}", self.kernel, self.strides, x.shape)
            })?;
        }
        Ok(vec![Inferred::new(out, x.dtype)])
    }
}

/// Attributes of `max_pool`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MaxPool {
    /// The window.
    pub window: Window2d,
}

impl MaxPool {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        self.window.attrs()
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(MaxPool { window: Window2d::from_attrs(r)? })
    }
}

/// Attributes of `avg_pool`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AvgPool {
    /// The window.
    pub window: Window2d,
    /// Count padding cells in the divisor.
    pub count_include_pad: bool,
}

impl AvgPool {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        let mut a = self.window.attrs();
        a.push(("count_include_pad", Attr::Bool(self.count_include_pad)));
        a
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(AvgPool { window: Window2d::from_attrs(r)?, count_include_pad: r.bool_or("count_include_pad", false)? })
    }
}

/// Shape rule of `global_avg_pool`: `[N, C, H, W] -> [N, C, 1, 1]`.
pub(crate) fn global_avg_pool_rule(ins: &[&TensorType]) -> RuleResult {
    let x = ins[0];
    if x.rank() < 3 {
        return Err(format!("global_avg_pool input must have rank >= 3, got {:?}", x.shape));
    }
    if x.shape[2..].contains(&0) {
        return Err(format!("global_avg_pool over an empty window {:?}", x.shape));
    }
    let mut out = x.shape.clone();
    out[2..].iter_mut().for_each(|d| *d = 1);
    Ok(vec![Inferred::new(out, x.dtype)])
}
