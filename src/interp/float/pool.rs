//! Pooling over NCHW: `max_pool`, `avg_pool` and `global_avg_pool`.
//!
//! Windows follow ONNX / PyTorch: window `oy` starts at `oy * stride - pad_top` and covers
//! `kernel` rows, clipped to the input. The output size (including ceil mode, whose last
//! window must start inside the input or the leading padding) is [`conv_out_dim`]'s.
//!
//! * `max_pool`: padding cells count as `-inf`; NaN propagates (as in PyTorch).
//! * `avg_pool`: the sum of the real cells divided by
//!   - `count_include_pad = false`: the number of real cells in the window;
//!   - `count_include_pad = true`: the number of window cells inside the *padded* input,
//!     i.e. the window clipped to `[-pad_begin, size + pad_end)`. This is the full kernel
//!     except where a ceil-mode window runs past the end padding (PyTorch, ONNX Runtime and
//!     tract all divide by the clipped window there).
//! * `global_avg_pool`: the mean over all axes from 2 on (accumulated in f64).

use super::{f32_tensor, f32s};
use crate::interp::shared::numel;
use crate::ir::Tensor;
use crate::ops::{conv_out_dim, AvgPool, MaxPool, Window2d};

/// One axis of a pooling window: real cells `lo..hi` and the count inside the padded input.
#[derive(Clone, Copy)]
struct Span {
    lo: usize,
    hi: usize,
    padded: usize,
}

/// Windows along one axis.
fn spans(size: usize, kernel: usize, stride: usize, pads: (usize, usize), ceil: bool) -> Result<Vec<Span>, String> {
    let out = conv_out_dim(size, kernel, stride, 1, pads, ceil)
        .ok_or_else(|| format!("window {kernel} stride {stride} does not fit size {size}"))?;
    Ok((0..out)
        .map(|o| {
            let start = (o * stride) as isize - pads.0 as isize;
            let end = start + kernel as isize;
            let padded_end = end.min((size + pads.1) as isize);
            Span {
                lo: start.clamp(0, size as isize) as usize,
                hi: end.clamp(0, size as isize) as usize,
                padded: (padded_end - start).max(0) as usize,
            }
        })
        .collect())
}

/// Shared driver: calls `f(plane, y_span, x_span)` for every output cell.
fn pool2d(
    x: &Tensor,
    win: &Window2d,
    op: &str,
    f: impl Fn(&[f32], usize, Span, Span) -> f32,
) -> Result<Tensor, String> {
    let xd = f32s(x, op)?;
    let [n, c, h, w] =
        <[usize; 4]>::try_from(x.shape()).map_err(|_| format!("{op} input must have rank 4, got {:?}", x.shape()))?;
    if xd.len() != numel(x.shape())? {
        return Err("internal error: operand size".into());
    }
    let max = super::conv::MAX_ATTR;
    if win.kernel.iter().chain(&win.strides).chain(&win.pads).any(|v| *v > max) {
        return Err(format!(
            "{op}: window {:?}, strides {:?} and pads {:?} must be at most {max}",
            win.kernel, win.strides, win.pads
        ));
    }
    let ys = spans(h, win.kernel[0], win.strides[0], (win.pads[0], win.pads[2]), win.ceil_mode)?;
    let xs = spans(w, win.kernel[1], win.strides[1], (win.pads[1], win.pads[3]), win.ceil_mode)?;
    let out_shape = [n, c, ys.len(), xs.len()];
    let mut out = Vec::with_capacity(numel(&out_shape)?);
    if h * w == 0 {
        // Windows over an empty plane hold padding only.
        out.resize(numel(&out_shape)?, f(&[], w, Span { lo: 0, hi: 0, padded: 0 }, Span { lo: 0, hi: 0, padded: 0 }));
        return f32_tensor(&out_shape, out);
    }
    for plane in xd.chunks_exact(h * w) {
        for ysp in &ys {
            for xsp in &xs {
                out.push(f(plane, w, *ysp, *xsp));
            }
        }
    }
    f32_tensor(&out_shape, out)
}

/// 2-D max pooling.
pub(crate) fn max_pool(p: &MaxPool, x: &Tensor) -> Result<Tensor, String> {
    pool2d(x, &p.window, "max_pool", |plane, w, ys, xs| {
        let mut m = f32::NEG_INFINITY;
        for y in ys.lo..ys.hi {
            for v in &plane[y * w + xs.lo..y * w + xs.hi] {
                if *v > m || v.is_nan() {
                    m = *v;
                }
            }
        }
        m
    })
}

/// 2-D average pooling.
pub(crate) fn avg_pool(p: &AvgPool, x: &Tensor) -> Result<Tensor, String> {
    let include = p.count_include_pad;
    pool2d(x, &p.window, "avg_pool", |plane, w, ys, xs| {
        let mut s = 0.0f32;
        for y in ys.lo..ys.hi {
            s += plane[y * w + xs.lo..y * w + xs.hi].iter().sum::<f32>();
        }
        let count = if include { ys.padded * xs.padded } else { (ys.hi - ys.lo) * (xs.hi - xs.lo) };
        s / count as f32
    })
}

/// Mean over every axis from 2 on: `[N, C, ...] -> [N, C, 1, ...]`.
pub(crate) fn global_avg_pool(x: &Tensor) -> Result<Tensor, String> {
    let xd = f32s(x, "global_avg_pool")?;
    let s = x.shape();
    if s.len() < 3 {
        return Err(format!("global_avg_pool input must have rank >= 3, got {s:?}"));
    }
    let inner = numel(&s[2..])?;
    if inner == 0 {
        return Err(format!("global_avg_pool over an empty window {s:?}"));
    }
    let mut out_shape = s.to_vec();
    out_shape[2..].iter_mut().for_each(|d| *d = 1);
    let out =
        xd.chunks_exact(inner).map(|p| (p.iter().map(|v| *v as f64).sum::<f64>() / inner as f64) as f32).collect();
    f32_tensor(&out_shape, out)
}
