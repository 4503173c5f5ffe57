//! Integer softmax: TFLite's reference int8 `Softmax` (what TFLM runs and what CMSIS-NN's
//! `arm_softmax_s8` reproduces), with gemmlowp's fixed-point `exp_on_negative_values` and
//! `one_over_one_plus_x_for_x_in_0_1`, bit for bit.
//!
//! Parameters (TFLite `CalculateSoftmaxParams` for int8 with beta = 1):
//! `(input_multiplier, input_left_shift) = QuantizeMultiplierGreaterThanOne(min(beta * s_x *
//! 2^(31 - 5), 2^31 - 1))`, `diff_min = -floor((2^5 - 1) * 2^(31 - 5) / 2^input_left_shift)`.
//! The result must be `affine<0.00390625:-128>` (scale 1/256, zero point -128), as TFLite
//! requires for int8 softmax.

use super::params::{act, int_tensor, ints, QAct};
use crate::ir::{Tensor, TensorType};
use crate::quant::math::{
    multiply_by_quantized_multiplier_greater_than_one, quantize_multiplier, rounding_divide_by_pot,
    saturating_rounding_multiply_by_pot, srdhm,
};

const SCALED_DIFF_INTEGER_BITS: i32 = 5;
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// gemmlowp `exp_on_interval_between_negative_one_quarter_and_0_excl` (Q0.31 in and out).
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1895147668;
    const CONSTANT_1_OVER_3: i32 = 715827883;
    let x = a.wrapping_add(1 << 28);
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    let inner = srdhm(x4_over_4.wrapping_add(x3), CONSTANT_1_OVER_3).wrapping_add(x2);
    let x4_over_24_plus_x3_over_6_plus_x2_over_2 = saturating_rounding_multiply_by_pot(inner, -1);
    CONSTANT_TERM.wrapping_add(srdhm(CONSTANT_TERM, x.wrapping_add(x4_over_24_plus_x3_over_6_plus_x2_over_2)))
}

/// gemmlowp `exp_on_negative_values` for an input with 5 integer bits (Q5.26), result Q0.31.
fn exp_on_negative_values(a: i32) -> i32 {
    const INTEGER_BITS: i32 = SCALED_DIFF_INTEGER_BITS;
    const FRACTIONAL_BITS: i32 = 31 - INTEGER_BITS;
    let one_quarter: i32 = 1 << (FRACTIONAL_BITS - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    // Rescale<0>: from 5 integer bits to 0.
    let rescaled = saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, INTEGER_BITS);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescaled);
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    const BARREL: [(i32, i32); 7] =
        [(-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242)];
    for (exponent, multiplier) in BARREL {
        if INTEGER_BITS > exponent {
            let shift = FRACTIONAL_BITS + exponent;
            if remainder & (1i32 << shift) != 0 {
                result = srdhm(result, multiplier);
            }
        }
    }
    // (The clamp below -32 applies only to inputs with more than 5 integer bits.)
    if a == 0 {
        result = i32::MAX;
    }
    result
}

/// gemmlowp `one_over_one_plus_x_for_x_in_0_1` (Q0.31 in and out).
fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    // RoundingHalfSum(a, One) with One = INT32_MAX in Q0.31.
    let sum = a as i64 + i32::MAX as i64;
    let sign: i64 = if sum >= 0 { 1 } else { -1 };
    let half_denominator = ((sum + sign) / 2) as i32;
    const CONSTANT_48_OVER_17: i32 = 1515870810;
    const CONSTANT_NEG_32_OVER_17: i32 = -1010580540;
    // Q2.29 arithmetic.
    let mut x = CONSTANT_48_OVER_17.wrapping_add(srdhm(half_denominator, CONSTANT_NEG_32_OVER_17));
    let one_q2: i32 = 1 << 29;
    for _ in 0..3 {
        let half_denominator_times_x = srdhm(half_denominator, x);
        let one_minus = one_q2.wrapping_sub(half_denominator_times_x);
        // x * one_minus is Q4.27; Rescale<2> shifts left by 2, saturating.
        x = x.wrapping_add(saturating_rounding_multiply_by_pot(srdhm(x, one_minus), 2));
    }
    // ExactMulByPot<-1> (Q2 -> Q1, same raw) then Rescale<0> (Q1 -> Q0: saturating << 1).
    saturating_rounding_multiply_by_pot(x, 1)
}

/// TFLite `GetReciprocal`: `1 / x` for a Q(x_integer_digits) `x`, and the extra shift.
fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let num_bits_over_unit = x_integer_digits - headroom_plus_one;
    let shifted_sum_minus_one = ((x as u32).wrapping_shl(headroom_plus_one as u32)).wrapping_sub(1u32 << 31) as i32;
    (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit)
}

/// TFLite's softmax parameters for an int8 input of scale `s_x` and beta 1:
/// `(input_multiplier, input_left_shift, diff_min)`.
pub fn softmax_params(s_x: f32) -> (i32, i32, i32) {
    let beta = 1.0f64;
    let real = (beta * s_x as f64 * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64).min((1i64 << 31) as f64 - 1.0);
    let (mult, shift) = quantize_multiplier(real);
    let max_input_rescaled = ((1i64 << SCALED_DIFF_INTEGER_BITS) - 1) as f64
        * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
        / (1i64 << shift.clamp(0, 62)) as f64;
    let diff_min = -(max_input_rescaled.floor() as i64);
    (mult, shift, diff_min.clamp(i32::MIN as i64, 0) as i32)
}

/// One softmax row of int8 values (strided by `stride`) into `out`.
fn row(x: &[i32], out: &mut [i32], depth: usize, stride: usize, mult: i32, shift: i32, diff_min: i32) {
    let at = |k: usize| k * stride;
    let max_in_row = (0..depth).map(|k| x[at(k)]).fold(-128, i32::max);
    let mut sum_of_exps: i32 = 0;
    for k in 0..depth {
        let diff = x[at(k)] - max_in_row;
        if diff >= diff_min {
            let rescaled = multiply_by_quantized_multiplier_greater_than_one(diff, mult, shift);
            let e = exp_on_negative_values(rescaled);
            sum_of_exps = sum_of_exps.wrapping_add(rounding_divide_by_pot(e, ACCUMULATION_INTEGER_BITS));
        }
    }
    let (shifted_scale, num_bits_over_unit) = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS);
    for k in 0..depth {
        let diff = x[at(k)] - max_in_row;
        out[at(k)] = if diff >= diff_min {
            let rescaled = multiply_by_quantized_multiplier_greater_than_one(diff, mult, shift);
            let e = exp_on_negative_values(rescaled);
            let unsat = rounding_divide_by_pot(srdhm(shifted_scale, e), (num_bits_over_unit + 31 - 8).clamp(0, 31));
            (unsat - 128).clamp(-128, 127)
        } else {
            -128
        };
    }
}

/// Integer softmax along `axis`.
pub(crate) fn softmax(x: &Tensor, axis: usize, x_ty: &TensorType, y_ty: &TensorType) -> Result<Tensor, String> {
    let QAct::Affine { scale: sx, .. } = act(x_ty, "input")? else {
        return Err("integer softmax exists for affine int8 only (Q formats keep softmax in float)".into());
    };
    match act(y_ty, "result")? {
        QAct::Affine { scale, zp: -128 } if (scale - 1.0 / 256.0).abs() <= 1e-3 * (1.0 / 256.0) => {}
        _ => return Err("int8 softmax must produce affine<0.00390625:-128> (scale 1/256, zero point -128)".into()),
    }
    let s = x.shape();
    let depth = *s.get(axis).ok_or("softmax axis out of range")?;
    let inner: usize = s[axis + 1..].iter().product();
    let xd = ints(x)?;
    let mut out = vec![0i32; xd.len()];
    let (mult, shift, diff_min) = softmax_params(sx);
    let block = depth * inner;
    if block > 0 {
        for (xb, ob) in xd.chunks_exact(block).zip(out.chunks_exact_mut(block)) {
            for i in 0..inner {
                row(&xb[i..], &mut ob[i..], depth, inner, mult, shift, diff_min);
            }
        }
    }
    int_tensor(s, y_ty.dtype, out)
}
