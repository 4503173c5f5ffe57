//! `conv2d`: 2-D convolution over NCHW activations with OIHW filters, grouped (depthwise when
//! `groups` equals the channel count), with an optional bias.

// Shape rules run on unverified user input (parser, importer): no panicking indexing or
// slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{dims_of, operands, same_dtype, Inferred, RuleResult};
use crate::ir::{Attr, AttrReader, TensorType};

/// Attributes of `conv2d(x, w[, b])`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conv2d {
    /// Vertical and horizontal stride.
    pub strides: [usize; 2],
    /// Zero padding `[top, left, bottom, right]` (ONNX order).
    pub pads: [usize; 4],
    /// Vertical and horizontal dilation.
    pub dilations: [usize; 2],
    /// Number of groups: input and output channels must both be multiples of it.
    pub groups: usize,
}

impl Default for Conv2d {
    fn default() -> Self {
        Conv2d { strides: [1, 1], pads: [0; 4], dilations: [1, 1], groups: 1 }
    }
}

/// Output size of one spatial dimension of a window operation, or `None` if the window
/// does not fit. `ceil` selects ceil-mode rounding (pooling only).
pub fn conv_out_dim(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pads: (usize, usize),
    ceil: bool,
) -> Option<usize> {
    if stride == 0 || dilation == 0 || kernel == 0 {
        return None;
    }
    let span = dilation.checked_mul(kernel - 1)?.checked_add(1)?;
    let padded = input.checked_add(pads.0)?.checked_add(pads.1)?;
    if padded < span {
        return None;
    }
    let room = padded - span;
    let mut out = room / stride + 1;
    if ceil && room % stride != 0 {
        out += 1;
        // ONNX/PyTorch: the last window must start inside the input or left padding.
        if (out - 1) * stride >= input + pads.0 {
            out -= 1;
        }
    }
    Some(out)
}

impl Conv2d {
    /// Kernel-independent attribute list, in printing order.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![
            ("strides", ints(&self.strides)),
            ("pads", ints(&self.pads)),
            ("dilations", ints(&self.dilations)),
            ("groups", Attr::Int(self.groups as i64)),
        ]
    }

    /// Builds the op from its attributes; missing ones take their defaults.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        let d = Conv2d::default();
        Ok(Conv2d {
            strides: array_or(r, "strides", d.strides)?,
            pads: array_or(r, "pads", d.pads)?,
            dilations: array_or(r, "dilations", d.dilations)?,
            groups: r.usize_or("groups", 1)?,
        })
    }

    /// True for a depthwise convolution (one input channel per group, groups == channels).
    pub fn is_depthwise(&self, in_channels: usize) -> bool {
        self.groups > 1 && self.groups == in_channels
    }

    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [x, w] = operands("conv2d", ins)?;
        let [n, c, ih, iw] = dims_of("conv2d input", x)?;
        let [o, cg, kh, kw] = dims_of("conv2d filter", w)?;
        same_dtype("conv2d input and filter", x, w)?;
        if self.groups == 0 || c % self.groups != 0 || o % self.groups != 0 {
            return Err(format!("groups = {} must divide input channels {c} and output channels {o}", self.groups));
        }
        if cg.checked_mul(self.groups) != Some(c) {
            return Err(format!(
                "filter {:?} expects {cg} input channels per group, input has {c} channels in {} groups",
                w.shape, self.groups
            ));
        }
        if let Some(b) = ins.get(2) {
            if b.shape != [o] {
                return Err(format!("bias must have shape [{o}], got {:?}", b.shape));
            }
        }
        let ([sh, sw], [dh, dw], [pt, pl, pb, pr]) = (self.strides, self.dilations, self.pads);
        let fit = |input, kernel, stride, dilation, pads| {
            conv_out_dim(input, kernel, stride, dilation, pads, false).ok_or_else(|| {
                format!(
                    "kernel {kh}x{kw} (stride {:?}, dilation {:?}, pads {:?}) does not fit input {:?}",
                    self.strides, self.dilations, self.pads, x.shape
                )
            })
        };
        let oh = fit(ih, kh, sh, dh, (pt, pb))?;
        let ow = fit(iw, kw, sw, dw, (pl, pr))?;
        Ok(vec![Inferred::new(vec![n, o, oh, ow], x.dtype)])
    }
}

/// An int-list attribute from unsigned values.
pub(crate) fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|x| *x as i64).collect())
}

/// Reads a fixed-size list attribute, or returns `default` when absent.
pub(crate) fn array_or<const N: usize>(
    r: &mut AttrReader,
    key: &str,
    default: [usize; N],
) -> Result<[usize; N], String> {
    match r.usize_array::<N>(key) {
        Ok(v) => Ok(v),
        Err(e) if e.contains("missing attribute") => Ok(default),
        Err(e) => Err(e),
    }
}
