//! Quantization arithmetic shared by the `quantize` pass, the integer interpreter and the
//! backends:
//!
//! * the fixed-point primitives of TensorFlow Lite / gemmlowp / CMSIS-NN (`srdhm`,
//!   [`rounding_divide_by_pot`], [`multiply_by_quantized_multiplier`], [`quantize_multiplier`]),
//!   written exactly as TFLite's reference code (TFLite's default double rounding, not the
//!   `TFLITE_SINGLE_ROUNDING` build);
//! * parameter choice: [`choose_affine`] (TFLite's nudged asymmetric parameters),
//!   [`symmetric_scale`] (symmetric weights), [`pow2_frac`] (Q formats);
//! * value quantizers used for weights and biases;
//! * [`sqnr_db`] and a tiny deterministic PRNG ([`SplitMix64`]) for random calibration data.

/// `(int32)(((int64)a * b + nudge) / 2^31)` with saturation of `a == b == INT32_MIN`: gemmlowp's
/// `SaturatingRoundingDoublingHighMul`. Equal to CMSIS-NN's `arm_nn_doubling_high_mult_no_sat`
/// (`(a * b + 2^30) >> 31`) except for that one saturating input pair.
#[inline]
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // i64 division truncates toward zero, like C++.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// Division by `2^exponent` rounding half away from zero (gemmlowp `RoundingDivideByPOT`,
/// CMSIS-NN `arm_nn_divide_by_power_of_two`). `exponent` in `0..=31`.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let e = exponent.clamp(0, 31) as u32;
    let mask: i32 = ((1i64 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> e) + i32::from(remainder > threshold)
}

/// gemmlowp `SaturatingRoundingMultiplyByPOT<exponent>`: a saturating left shift for positive
/// exponents, [`rounding_divide_by_pot`] for negative ones.
#[inline]
pub fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent > 0 {
        let threshold: i32 = ((1i64 << (31 - exponent)) - 1) as i32;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x.wrapping_shl(exponent as u32)
        }
    } else if exponent < 0 {
        rounding_divide_by_pot(x, -exponent)
    } else {
        x
    }
}

/// TFLite `MultiplyByQuantizedMultiplier` (double rounding): `x * m * 2^shift` with `m` a Q31
/// multiplier; `shift > 0` shifts left first. This is CMSIS-NN's `arm_nn_requantize`.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.max(0);
    let right = (-shift).max(0);
    rounding_divide_by_pot(srdhm(x.wrapping_mul(1i32.wrapping_shl(left as u32)), multiplier), right)
}

/// TFLite `MultiplyByQuantizedMultiplierGreaterThanOne`: `srdhm(x * 2^left_shift, m)`.
#[inline]
pub fn multiply_by_quantized_multiplier_greater_than_one(x: i32, multiplier: i32, left_shift: i32) -> i32 {
    srdhm(x.wrapping_mul(1i32.wrapping_shl(left_shift.max(0) as u32)), multiplier)
}

/// TFLite `QuantizeMultiplier`: a real multiplier as a Q31 significand in `[2^30, 2^31)` and a
/// power-of-two exponent (`real ~= m * 2^(shift - 31)`), from `frexp` in double precision,
/// rounding half away from zero; shifts below -31 flush to zero and above 30 saturate, as in
/// current TFLite / TFLM.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real == 0.0 || !real.is_finite() {
        return (0, 0);
    }
    let (q, mut shift) = frexp(real);
    let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
    if q_fixed == (1i64 << 31) {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    if shift > 30 {
        shift = 30;
        q_fixed = (1i64 << 31) - 1;
    }
    (q_fixed as i32, shift)
}

/// `frexp`: `x = m * 2^e` with `0.5 <= |m| < 1` (for finite non-zero `x`).
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale up first.
        let (m, e) = frexp(x * 2f64.powi(64));
        return (m, e - 64);
    }
    let e = exp - 1022;
    let m = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (m, e)
}

/// The Q31 multiplier and shift that requantize an accumulator of scale `s_in * s_w` to an
/// output of scale `s_out`, computed exactly as TFLite (`f32` scales widened to `f64`).
pub fn requant_params(s_in: f32, s_w: f32, s_out: f32) -> (i32, i32) {
    quantize_multiplier(s_in as f64 * s_w as f64 / s_out as f64)
}

/// TFLite's `ChooseQuantizationParams`: the affine scale and nudged zero point of real range
/// `[lo, hi]` (widened to include 0) over integers `qmin..=qmax`. A degenerate range gets the
/// scale of `[0, 1]`-ish so that the result is always valid.
pub fn choose_affine(lo: f64, hi: f64, qmin: i32, qmax: i32) -> (f32, i32) {
    let lo = if lo.is_finite() { lo.min(0.0) } else { 0.0 };
    let hi = if hi.is_finite() { hi.max(0.0) } else { 0.0 };
    let (qmin_d, qmax_d) = (qmin as f64, qmax as f64);
    let mut scale = (hi - lo) / (qmax_d - qmin_d);
    if scale.is_nan() || scale <= 0.0 || (scale as f32) <= f32::MIN_POSITIVE {
        scale = 1.0 / (qmax_d - qmin_d);
        return (scale as f32, qmin);
    }
    // Use the f32 scale that will be stored, so the zero point matches it.
    let scale_f = scale as f32;
    let scale = scale_f as f64;
    let zp_from_min = qmin_d - lo / scale;
    let zp_from_max = qmax_d - hi / scale;
    let err_min = qmin_d.abs() + (lo / scale).abs();
    let err_max = qmax_d.abs() + (hi / scale).abs();
    let zp = if err_min < err_max { zp_from_min } else { zp_from_max };
    let zp = if zp < qmin_d {
        qmin
    } else if zp > qmax_d {
        qmax
    } else {
        zp.round() as i32
    };
    (scale_f, zp)
}

/// Symmetric scale of values with largest magnitude `absmax` over `-qmax..=qmax`. An all-zero
/// tensor (or channel) gets the scale of `[-1, 1]`.
pub fn symmetric_scale(absmax: f64, qmax: i32) -> f32 {
    let s = absmax / qmax as f64;
    if s > 0.0 && s.is_finite() && (s as f32) > f32::MIN_POSITIVE {
        s as f32
    } else {
        1.0 / qmax as f32
    }
}

/// The number of fractional bits of the finest power-of-two format whose range holds `absmax`
/// (`round(absmax * 2^frac) <= qmax`), clamped to `[-31, 31]`. An all-zero tensor gets the
/// format of `[-1, 1]`.
pub fn pow2_frac(absmax: f64, qmax: i32) -> i32 {
    if absmax.is_nan() || absmax <= 0.0 || !absmax.is_finite() {
        return (qmax as f64).log2().floor() as i32;
    }
    let mut f = ((qmax as f64) / absmax).log2().floor() as i32;
    f = f.clamp(-31, 31);
    // Rounding may push absmax * 2^f to qmax + 1: back off one bit then.
    while f > -31 && (absmax * 2f64.powi(f)).round() > qmax as f64 {
        f -= 1;
    }
    f
}

/// Rounds half away from zero and clamps to `[lo, hi]` (NaN gives 0 clamped).
#[inline]
pub fn round_clamp(x: f64, lo: i64, hi: i64) -> i64 {
    if x.is_nan() {
        return 0i64.clamp(lo, hi);
    }
    let r = x.round();
    if r < lo as f64 {
        lo
    } else if r > hi as f64 {
        hi
    } else {
        r as i64
    }
}

/// Affine quantization of one value: `clamp(round(x / scale) + zp)`, as TFLite's reference
/// `AffineQuantize` (the same formula as the `quantize` op of the float interpreter).
#[inline]
pub fn quantize_affine(x: f64, scale: f32, zp: i32, lo: i64, hi: i64) -> i64 {
    let r = (x / scale as f64).round();
    if r.is_nan() {
        return (zp as i64).clamp(lo, hi);
    }
    (r + zp as f64).clamp(lo as f64, hi as f64) as i64
}

/// Power-of-two quantization of one value: `clamp(round(x * 2^frac))`.
#[inline]
pub fn quantize_pow2(x: f64, frac: i32, lo: i64, hi: i64) -> i64 {
    round_clamp(x * 2f64.powi(frac), lo, hi)
}

/// Signal-to-quantization-noise ratio in dB: `10 log10(sum x^2 / sum (x - y)^2)`. Infinite when
/// the two agree exactly; `-inf` for an all-zero reference with non-zero error.
pub fn sqnr_db(signal_power: f64, noise_power: f64) -> f64 {
    if noise_power == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (signal_power / noise_power).log10()
}

/// Accumulates signal and noise power for [`sqnr_db`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SqnrAcc {
    /// Sum of squared reference values.
    pub signal: f64,
    /// Sum of squared differences.
    pub noise: f64,
    /// Number of compared elements.
    pub count: u64,
}

impl SqnrAcc {
    /// Adds one pair of equally long slices (reference, approximation).
    pub fn add(&mut self, reference: &[f32], approx: &[f32]) {
        for (x, y) in reference.iter().zip(approx) {
            let (x, y) = (*x as f64, *y as f64);
            self.signal += x * x;
            self.noise += (x - y) * (x - y);
        }
        self.count += reference.len().min(approx.len()) as u64;
    }

    /// The SQNR in dB so far.
    pub fn db(&self) -> f64 {
        sqnr_db(self.signal, self.noise)
    }
}

/// Real values of an integer tensor under `quant` (per tensor or per channel): the same
/// arithmetic as the `dequantize` op. Non-integer tensors are returned as they are.
pub fn dequantize_values(t: &crate::ir::Tensor, quant: &crate::ir::Quant) -> Vec<f32> {
    use crate::ir::QScheme;
    let shape = t.shape();
    let (dim, inner) = match quant.axis {
        Some(a) if a < shape.len() => (shape[a].max(1), shape[a + 1..].iter().product::<usize>().max(1)),
        _ => (1, 1),
    };
    let entry = |i: usize| if quant.axis.is_some() { (i / inner) % dim } else { 0 };
    let v = t.to_f64_vec();
    match &quant.scheme {
        QScheme::Affine { scales, zero_points } => v
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let e = entry(i).min(scales.len().saturating_sub(1));
                (scales[e] as f64 * (x - zero_points[e] as f64)) as f32
            })
            .collect(),
        QScheme::Pow2 { frac_bits } => v
            .iter()
            .enumerate()
            .map(|(i, x)| (x * 2f64.powi(-frac_bits[entry(i).min(frac_bits.len().saturating_sub(1))])) as f32)
            .collect(),
    }
}

/// SplitMix64: a tiny, fast, deterministic PRNG (for random calibration inputs and tests;
/// not cryptographic).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `lo..=hi`.
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srdhm_matches_cmsis_form() {
        let mut r = SplitMix64::new(1);
        for _ in 0..100_000 {
            let a = r.next_u64() as i32;
            let b = r.next_u64() as i32;
            if a == i32::MIN && b == i32::MIN {
                continue;
            }
            let cmsis = ((a as i64 * b as i64 + (1 << 30)) >> 31) as i32;
            assert_eq!(srdhm(a, b), cmsis, "{a} {b}");
        }
    }

    #[test]
    fn rounding_divide_rounds_half_away() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(-5, 2), -1);
    }

    #[test]
    fn quantize_multiplier_frexp() {
        let (m, s) = quantize_multiplier(0.5);
        assert_eq!((m, s), (1 << 30, 0));
        let (m, s) = quantize_multiplier(0.003);
        assert!(m >= 1 << 30);
        let back = m as f64 * 2f64.powi(s - 31);
        assert!((back - 0.003).abs() < 1e-11);
        assert_eq!(frexp(8.0), (0.5, 4));
        assert_eq!(frexp(-0.75), (-0.75, 0));
    }

    #[test]
    fn affine_params_include_zero() {
        let (s, z) = choose_affine(0.0, 6.0, -128, 127);
        assert_eq!(z, -128);
        assert!((s - 6.0 / 255.0).abs() < 1e-7);
        let (_, z) = choose_affine(-1.0, 1.0, -128, 127);
        assert!(z == 0 || z == -1);
    }

    #[test]
    fn pow2_frac_fits() {
        assert_eq!(pow2_frac(1.0, 127), 6);
        assert_eq!(pow2_frac(0.99, 127), 7);
        assert_eq!(pow2_frac(127.0, 127), 0);
        assert_eq!(pow2_frac(300.0, 127), -2);
    }
}
