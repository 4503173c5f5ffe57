//! Element-wise activations and `softmax`.
//!
//! NaN inputs propagate through every activation (`relu(NaN) = NaN`, as in PyTorch).
//! `hard_swish` is `x * relu6(x + 3) / 6` (PyTorch's formula; ONNX HardSwish
//! `x * max(0, min(1, x / 6 + 0.5))` agrees up to rounding). `softmax` is the numerically
//! stable form `exp(x - max) / sum(exp(x - max))` along one axis (ONNX opset 13 semantics),
//! with the sum accumulated in f64.

use super::{f32_tensor, f32s};
use crate::interp::shared::numel;
use crate::ir::Tensor;
use crate::ops::{Clip, HardSigmoid, Softmax};

fn map(x: &Tensor, what: &str, f: impl Fn(f32) -> f32) -> Result<Tensor, String> {
    let xd = f32s(x, what)?;
    f32_tensor(x.shape(), xd.iter().map(|v| f(*v)).collect())
}

/// `min(max(v, lo), hi)` (ONNX Clip's order: `hi` wins if `lo > hi`), keeping NaN.
fn clamp(v: f32, lo: f32, hi: f32) -> f32 {
    let v = if v < lo { lo } else { v };
    if v > hi {
        hi
    } else {
        v
    }
}

/// `max(x, 0)`.
pub(crate) fn relu(x: &Tensor) -> Result<Tensor, String> {
    map(x, "relu input", |v| if v < 0.0 { 0.0 } else { v })
}

/// `min(max(x, min), max)`.
pub(crate) fn clip(p: &Clip, x: &Tensor) -> Result<Tensor, String> {
    let (lo, hi) = (p.min, p.max);
    map(x, "clip input", |v| clamp(v, lo, hi))
}

/// `1 / (1 + exp(-x))`.
pub(crate) fn sigmoid(x: &Tensor) -> Result<Tensor, String> {
    map(x, "sigmoid input", |v| 1.0 / (1.0 + (-v).exp()))
}

/// `max(0, min(1, alpha * x + beta))`.
pub(crate) fn hard_sigmoid(p: &HardSigmoid, x: &Tensor) -> Result<Tensor, String> {
    let (a, b) = (p.alpha, p.beta);
    map(x, "hard_sigmoid input", |v| clamp(a * v + b, 0.0, 1.0))
}

/// `x * relu6(x + 3) / 6`.
pub(crate) fn hard_swish(x: &Tensor) -> Result<Tensor, String> {
    map(x, "hard_swish input", |v| v * clamp(v + 3.0, 0.0, 6.0) / 6.0)
}

/// Softmax along `p.axis`.
pub(crate) fn softmax(p: &Softmax, x: &Tensor) -> Result<Tensor, String> {
    let xd = f32s(x, "softmax input")?;
    let s = x.shape();
    let axis = p.axis;
    let d = *s.get(axis).ok_or_else(|| format!("softmax axis {axis} is out of range for rank {}", s.len()))?;
    let inner = numel(&s[axis + 1..])?;
    let mut out = vec![0.0f32; xd.len()];
    let block = d * inner;
    if block == 0 {
        return f32_tensor(s, out);
    }
    for (xb, ob) in xd.chunks_exact(block).zip(out.chunks_exact_mut(block)) {
        for i in 0..inner {
            let m = (0..d)
                .map(|k| xb[k * inner + i])
                .fold(f32::NEG_INFINITY, |m, v| if v > m || v.is_nan() { v } else { m });
            let mut sum = 0.0f64;
            for k in 0..d {
                let e = (xb[k * inner + i] - m).exp();
                ob[k * inner + i] = e;
                sum += e as f64;
            }
            let inv = sum as f32;
            for k in 0..d {
                ob[k * inner + i] /= inv;
            }
        }
    }
    f32_tensor(s, out)
}
