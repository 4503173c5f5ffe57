//! Per-channel normalisation over axis 1 of `[N, C, ...]`:
//! `batch_norm` (inference form `(x - mean) / sqrt(var + eps) * gamma + beta`) and
//! `scale_shift` (`x * scale[c] + shift[c]`).

use super::{f32_tensor, f32s};
use crate::interp::shared::numel;
use crate::ir::Tensor;
use crate::ops::BatchNorm;

/// Applies `f(channel, v)` to every element of `x`, `[N, C, ...]`.
fn per_channel(x: &Tensor, what: &str, params: &[&[f32]], f: impl Fn(usize, f32) -> f32) -> Result<Tensor, String> {
    let xd = f32s(x, what)?;
    let s = x.shape();
    if s.len() < 2 {
        return Err(format!("{what} must have rank >= 2 (N, C, ...), got {s:?}"));
    }
    let c = s[1];
    if params.iter().any(|p| p.len() != c) {
        return Err(format!("{what}: every parameter must have {c} entries"));
    }
    let inner = numel(&s[2..])?;
    let mut out = Vec::with_capacity(xd.len());
    if inner == 0 || c == 0 {
        return f32_tensor(s, xd.to_vec());
    }
    for (i, chunk) in xd.chunks_exact(inner).enumerate() {
        let ch = i % c;
        out.extend(chunk.iter().map(|v| f(ch, *v)));
    }
    f32_tensor(s, out)
}

/// Inference batch normalisation.
pub(crate) fn batch_norm(
    p: &BatchNorm,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
) -> Result<Tensor, String> {
    let g = f32s(gamma, "batch_norm gamma")?;
    let b = f32s(beta, "batch_norm beta")?;
    let m = f32s(mean, "batch_norm mean")?;
    let v = f32s(var, "batch_norm var")?;
    let scale: Vec<f32> = g.iter().zip(v).map(|(g, v)| g / (v + p.epsilon).sqrt()).collect();
    per_channel(x, "batch_norm input", &[g, b, m, v], |c, x| (x - m[c]) * scale[c] + b[c])
}

/// `x * scale[c] + shift[c]`.
pub(crate) fn scale_shift(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<Tensor, String> {
    let s = f32s(scale, "scale_shift scale")?;
    let t = f32s(shift, "scale_shift shift")?;
    per_channel(x, "scale_shift input", &[s, t], |c, x| x * s[c] + t[c])
}
