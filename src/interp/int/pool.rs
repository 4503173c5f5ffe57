//! Integer pooling over NCHW. `max_pool` and `avg_pool` keep the operand's format (TFLite int8
//! pooling and CMSIS-NN `arm_max_pool_s8` / `arm_avgpool_s8` require it).
//!
//! * `max_pool`: the largest value of the window's cells inside the input (padding ignored).
//! * `avg_pool`: TFLite's `reference_integer_ops::AveragePool`: the int32 sum of the cells
//!   inside the input divided by their count, rounding half away from zero
//!   (`acc > 0 ? (acc + n/2) / n : (acc - n/2) / n`, C division). `count_include_pad = true`
//!   is supported only without padding (where it changes nothing).
//! * `global_avg_pool`: for affine types TFLite's int8 `MEAN` over H and W, which rescales to
//!   the result's format; for power-of-two formats one rounded division (see [`global_avg_pool`]).

use super::params::{act, act_range, int_tensor, ints, require_same, QAct};
use crate::ir::{Tensor, TensorType};
use crate::ops::{conv_out_dim, Window2d};
use crate::quant::math::{multiply_by_quantized_multiplier, quantize_multiplier};

#[derive(Clone, Copy)]
struct Span {
    lo: usize,
    hi: usize,
}

fn spans(size: usize, kernel: usize, stride: usize, pads: (usize, usize), ceil: bool) -> Result<Vec<Span>, String> {
    let out = conv_out_dim(size, kernel, stride, 1, pads, ceil)
        .ok_or_else(|| format!("window {kernel} stride {stride} does not fit size {size}"))?;
    Ok((0..out)
        .map(|o| {
            let start = (o * stride) as isize - pads.0 as isize;
            let end = start + kernel as isize;
            Span { lo: start.clamp(0, size as isize) as usize, hi: end.clamp(0, size as isize) as usize }
        })
        .collect())
}

fn pool(
    x: &Tensor,
    win: &Window2d,
    x_ty: &TensorType,
    y_ty: &TensorType,
    op: &str,
    f: impl Fn(&[i32], usize, Span, Span) -> i32,
) -> Result<Tensor, String> {
    require_same(op, x_ty, y_ty)?;
    let range = act_range(y_ty.dtype)?;
    let [n, c, h, w] = <[usize; 4]>::try_from(x.shape()).map_err(|_| format!("{op} input must have rank 4"))?;
    let ys = spans(h, win.kernel[0], win.strides[0], (win.pads[0], win.pads[2]), win.ceil_mode)?;
    let xs = spans(w, win.kernel[1], win.strides[1], (win.pads[1], win.pads[3]), win.ceil_mode)?;
    if h * w == 0 {
        return Err(format!("{op} over an empty plane"));
    }
    let xd = ints(x)?;
    let mut out = Vec::with_capacity(n * c * ys.len() * xs.len());
    for plane in xd.chunks_exact(h * w) {
        for ysp in &ys {
            for xsp in &xs {
                out.push(f(plane, w, *ysp, *xsp).clamp(range.0, range.1));
            }
        }
    }
    int_tensor(&y_ty.shape, y_ty.dtype, out)
}

/// TFLite's rounded integer average.
fn rounded_div(acc: i32, count: i32) -> i32 {
    if acc > 0 {
        (acc + count / 2) / count
    } else {
        (acc - count / 2) / count
    }
}

/// Integer max pooling.
pub(crate) fn max_pool(x: &Tensor, win: &Window2d, x_ty: &TensorType, y_ty: &TensorType) -> Result<Tensor, String> {
    pool(x, win, x_ty, y_ty, "max_pool", |plane, w, ys, xs| {
        let mut m = i32::MIN;
        for y in ys.lo..ys.hi {
            for v in &plane[y * w + xs.lo..y * w + xs.hi] {
                m = m.max(*v);
            }
        }
        m
    })
}

/// Integer average pooling.
pub(crate) fn avg_pool(
    x: &Tensor,
    win: &Window2d,
    count_include_pad: bool,
    x_ty: &TensorType,
    y_ty: &TensorType,
) -> Result<Tensor, String> {
    if count_include_pad && win.pads.iter().any(|p| *p > 0) {
        return Err("integer avg_pool divides by the cells inside the input (TFLite); \
                    count_include_pad = true with padding is not supported"
            .into());
    }
    pool(x, win, x_ty, y_ty, "avg_pool", |plane, w, ys, xs| {
        let mut acc = 0i32;
        for y in ys.lo..ys.hi {
            for v in &plane[y * w + xs.lo..y * w + xs.hi] {
                acc = acc.wrapping_add(*v);
            }
        }
        let count = ((ys.hi - ys.lo) * (xs.hi - xs.lo)) as i32;
        if count == 0 {
            0
        } else {
            rounded_div(acc, count)
        }
    })
}

/// Integer global average pooling (`[N, C, H, W] -> [N, C, 1, 1]`).
///
/// * Affine types: TFLite's int8 `MEAN` over H and W (`reference_ops::QuantizedMeanOrSum`),
///   which may change the scale: with `(m, s) = QuantizeMultiplier(s_x / s_y)` and
///   `k = min(floor(log2 n), 32, 31 + s)` for `n` cells, `m' = (m << k) / n`, `s' = s - k`, and
///   `y = saturate(MBQM(sum x - zp_x * n, m', s') + zp_y)`.
/// * Power-of-two formats (`q8`, `q16`): the sum is divided by `n` and moved from `Q_x` to `Q_y`
///   with one rounding, half away from zero:
///   `y = saturate(round(sum x * 2^(Q_y - Q_x) / n))`, computed as
///   `rounded_div(sum << max(Q_y - Q_x, 0), n << max(Q_x - Q_y, 0))` in 64 bits. (TFLite's formula
///   on a power-of-two scale rounds twice, once in the multiplier and once in the shift, which
///   biases every channel by up to half an LSB in the same direction.)
pub(crate) fn global_avg_pool(x: &Tensor, x_ty: &TensorType, y_ty: &TensorType) -> Result<Tensor, String> {
    let s = x.shape();
    if s.len() < 3 {
        return Err("global_avg_pool input must have rank >= 3".into());
    }
    let inner: usize = s[2..].iter().product();
    if inner == 0 || inner > i32::MAX as usize {
        return Err(format!("global_avg_pool over a window of {inner} cells"));
    }
    if x_ty.dtype != y_ty.dtype {
        return Err(format!("global_avg_pool: operand is {} but the result is {}", x_ty.dtype, y_ty.dtype));
    }
    let range = act_range(y_ty.dtype)?;
    let xd = ints(x)?;
    let out: Vec<i32> = match (act(x_ty, "input")?, act(y_ty, "result")?) {
        (QAct::Affine { scale: sx, zp: zx }, QAct::Affine { scale: sy, zp: zy }) => {
            let (mult, shift) = mean_multiplier(sx as f64 / sy as f64, inner);
            xd.chunks_exact(inner)
                .map(|p| {
                    let sum = p.iter().fold(0i32, |a, v| a.wrapping_add(*v));
                    let shifted = sum.wrapping_sub(zx.wrapping_mul(inner as i32));
                    multiply_by_quantized_multiplier(shifted, mult, shift).wrapping_add(zy).clamp(range.0, range.1)
                })
                .collect()
        }
        (QAct::Pow2 { frac: fx }, QAct::Pow2 { frac: fy }) => {
            let (left, divisor) = pow2_mean_params(fx, fy, inner)?;
            xd.chunks_exact(inner)
                .map(|p| {
                    let sum: i64 = p.iter().map(|v| *v as i64).sum();
                    pow2_mean(sum, left, divisor).clamp(range.0 as i64, range.1 as i64) as i32
                })
                .collect()
        }
        _ => return Err("global_avg_pool operand and result must both be affine or both pow2".into()),
    };
    int_tensor(&y_ty.shape, y_ty.dtype, out)
}

/// TFLite's `QuantizedMeanOrSum`: the Q31 multiplier and shift of `real` (the operand scale
/// over the result scale) with `1 / count` folded in, as the affine int8 `global_avg_pool` uses
/// them; backends call it so their C matches.
pub fn mean_multiplier(real: f64, count: usize) -> (i32, i32) {
    let (mult, shift) = quantize_multiplier(real);
    let count = count as i64;
    let sh = (63 - (count as u64).leading_zeros() as i32).min(32).min(31 + shift);
    ((((mult as i64) << sh) / count) as i32, shift - sh)
}

/// The power-of-two mean's left shift of the sum and its divisor `n << max(Q_x - Q_y, 0)`, for
/// formats `Q_x` (operand) and `Q_y` (result). Errors when the formats are more than 31 bits
/// apart (no 8- or 16-bit calibration produces that).
pub fn pow2_mean_params(frac_in: i32, frac_out: i32, count: usize) -> Result<(u32, i64), String> {
    let d = frac_out - frac_in;
    if d.abs() > 31 {
        return Err(format!("global_avg_pool from Q{frac_in} to Q{frac_out}: formats more than 31 bits apart"));
    }
    let (left, right) = (d.max(0) as u32, (-d).max(0) as u32);
    Ok((left, (count as i64) << right))
}

/// `round(sum << left / divisor)`, half away from zero (C division on 64 bits).
pub fn pow2_mean(sum: i64, left: u32, divisor: i64) -> i64 {
    let num = sum << left;
    if num >= 0 {
        (num + divisor / 2) / divisor
    } else {
        (num - divisor / 2) / divisor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Q7 in, Q7 out: the mean of [1, 1, 1, 2] is 1.25, which rounds to 1 (TFLite's formula on a
    /// pow2 scale rounded twice and gave 2).
    #[test]
    fn pow2_mean_rounds_once() {
        let (left, div) = pow2_mean_params(7, 7, 4).unwrap();
        assert_eq!(pow2_mean(5, left, div), 1);
        assert_eq!(pow2_mean(6, left, div), 2); // 1.5 rounds away from zero
        assert_eq!(pow2_mean(-6, left, div), -2);
        assert_eq!(pow2_mean(-5, left, div), -1);
        // Q7 -> Q5: 1.25 * 2^-2 = 0.3125 -> 0; 10 / 4 * 2^-2 = 0.625 -> 1.
        let (left, div) = pow2_mean_params(7, 5, 4).unwrap();
        assert_eq!((left, div), (0, 16));
        assert_eq!(pow2_mean(5, left, div), 0);
        assert_eq!(pow2_mean(10, left, div), 1);
        // Q5 -> Q7: 5 / 4 * 4 = 5.
        let (left, div) = pow2_mean_params(5, 7, 4).unwrap();
        assert_eq!(pow2_mean(5, left, div), 5);
        assert!(pow2_mean_params(0, 40, 4).is_err());
    }
}
