//! Pooling: `max_pool`, `avg_pool` (2-D windows over NCHW) and `global_avg_pool`.

// Shape rules run on unverified user input (parser, importer): no panicking indexing or
// slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::conv::{array_or, ints};
use super::{conv_out_dim, dims_of, operands, Inferred, RuleResult};
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
        let [x] = operands(op, ins)?;
        let [n, c, ih, iw] = dims_of(op, x)?;
        let ([kh, kw], [sh, sw], [pt, pl, pb, pr]) = (self.kernel, self.strides, self.pads);
        // Height, then width: the padding check of each comes before its fit check.
        let fit = |input, kernel, stride, (begin, end): (usize, usize)| {
            if begin >= kernel || end >= kernel {
                return Err(format!("{op}: padding {:?} must be smaller than the window {:?}", self.pads, self.kernel));
            }
            conv_out_dim(input, kernel, stride, 1, (begin, end), self.ceil_mode).ok_or_else(|| {
                format!("{op}: window {:?} stride {:?} does not fit input {:?}", self.kernel, self.strides, x.shape)
            })
        };
        let oh = fit(ih, kh, sh, (pt, pb))?;
        let ow = fit(iw, kw, sw, (pl, pr))?;
        Ok(vec![Inferred::new(vec![n, c, oh, ow], x.dtype)])
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
    let [x] = operands("global_avg_pool", ins)?;
    let (lead, spatial) = match x.shape.split_first_chunk::<2>() {
        Some((lead, spatial)) if !spatial.is_empty() => (lead, spatial),
        _ => return Err(format!("global_avg_pool input must have rank >= 3, got {:?}", x.shape)),
    };
    if spatial.contains(&0) {
        return Err(format!("global_avg_pool over an empty window {:?}", x.shape));
    }
    let out = lead.iter().copied().chain(spatial.iter().map(|_| 1)).collect();
    Ok(vec![Inferred::new(out, x.dtype)])
}
