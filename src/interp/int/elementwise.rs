//! Integer `add` (NumPy broadcasting), `relu` and `clip`.
//!
//! Affine `add` is TFLite's / CMSIS-NN's (`arm_elementwise_add_s8`) with `left_shift = 20`:
//! ```text
//! twice_max = 2 * max(s_a, s_b)
//! (m_a, sh_a) = QuantizeMultiplier(s_a / twice_max), (m_b, sh_b) likewise,
//! (m_y, sh_y) = QuantizeMultiplier(twice_max / (2^20 * s_y))
//! a' = MBQM((a - a_zp) << 20, m_a, sh_a), b' = MBQM((b - b_zp) << 20, m_b, sh_b)
//! y  = clamp(MBQM(a' + b', m_y, sh_y) + y_zp, -128, 127)
//! ```
//! Q-format `add` aligns both operands to `F = max(fa, fb)` fractional bits
//! (`a << (F - fa) + b << (F - fb)`, int32), then `round_norm` by `F - fy` (or shifts left when
//! `fy > F`) and saturates.
//!
//! `relu` / `clip` keep the operand's quantization and clamp in the integer domain to TFLite's
//! `CalculateActivationRangeQuantized` bounds: `max(qmin, quantize(min))`,
//! `min(qmax, quantize(max))` (`relu`: lower bound = the zero point, or 0 for Q formats).

use super::params::{act, act_range, int_tensor, ints, require_same, QAct};
use crate::interp::shared::broadcast_map2;
use crate::ir::{Tensor, TensorType};
use crate::quant::math::{multiply_by_quantized_multiplier, quantize_multiplier};

/// Integer addition.
pub(crate) fn add(a: &Tensor, b: &Tensor, tys: &[&TensorType], y_ty: &TensorType) -> Result<Tensor, String> {
    let qa = act(tys[0], "operand 0")?;
    let qb = act(tys[1], "operand 1")?;
    let qy = act(y_ty, "result")?;
    let range = act_range(y_ty.dtype)?;
    let ad = ints(a)?;
    let bd = ints(b)?;
    let (shape, out) = match (qa, qb, qy) {
        (
            QAct::Affine { scale: sa, zp: za },
            QAct::Affine { scale: sb, zp: zb },
            QAct::Affine { scale: sy, zp: zy },
        ) => {
            let left_shift = 20;
            let twice_max = 2.0 * (sa.max(sb) as f64);
            let (ma, sha) = quantize_multiplier(sa as f64 / twice_max);
            let (mb, shb) = quantize_multiplier(sb as f64 / twice_max);
            let (my, shy) = quantize_multiplier(twice_max / ((1i64 << left_shift) as f64 * sy as f64));
            broadcast_map2(&ad, a.shape(), &bd, b.shape(), |x, y| {
                let xs = multiply_by_quantized_multiplier((x - za).wrapping_shl(left_shift), ma, sha);
                let ys = multiply_by_quantized_multiplier((y - zb).wrapping_shl(left_shift), mb, shb);
                let raw = multiply_by_quantized_multiplier(xs.wrapping_add(ys), my, shy).wrapping_add(zy);
                raw.clamp(range.0, range.1)
            })?
        }
        (QAct::Pow2 { frac: fa }, QAct::Pow2 { frac: fb }, QAct::Pow2 { frac: fy }) => {
            let f = fa.max(fb);
            let (la, lb) = (f - fa, f - fb);
            if la > 31 || lb > 31 || (fy - f).abs() > 31 {
                return Err(format!("add: fractional bits {fa}, {fb} -> {fy} are too far apart"));
            }
            broadcast_map2(&ad, a.shape(), &bd, b.shape(), |x, y| {
                let acc = x.wrapping_shl(la as u32).wrapping_add(y.wrapping_shl(lb as u32));
                let v = if f >= fy {
                    let n = f - fy;
                    let round = if n > 0 { 1i32 << (n - 1) } else { 0 };
                    acc.wrapping_add(round) >> n
                } else {
                    // Saturating left shift.
                    ((acc as i64) << (fy - f)).clamp(i32::MIN as i64, i32::MAX as i64) as i32
                };
                v.clamp(range.0, range.1)
            })?
        }
        _ => return Err("add operands and result must all be affine (int8) or all pow2 (Q format)".into()),
    };
    if shape != y_ty.shape {
        return Err("internal error: add result shape".into());
    }
    int_tensor(&y_ty.shape, y_ty.dtype, out)
}

/// Integer clamp to the real interval `[lo, hi]` (relu: `[0, inf)`), same format in and out.
pub(crate) fn clamp(x: &Tensor, lo: f32, hi: f32, x_ty: &TensorType, y_ty: &TensorType) -> Result<Tensor, String> {
    require_same("relu/clip", x_ty, y_ty)?;
    let q = act(y_ty, "result")?;
    let range = act_range(y_ty.dtype)?;
    let qlo = if lo.is_finite() { q.quantize(lo as f64, range) } else { range.0 };
    let qhi = if hi.is_finite() { q.quantize(hi as f64, range) } else { range.1 };
    let qlo = qlo.max(range.0);
    let qhi = qhi.min(range.1);
    let xd = ints(x)?;
    int_tensor(x.shape(), y_ty.dtype, xd.into_iter().map(|v| v.max(qlo).min(qhi)).collect())
}
