//! Integer `conv2d` (plain, grouped, depthwise) and `gemm` (fully connected).
//!
//! Affine (int8, CMSIS-NN s8 / TFLite reference `ConvPerChannel`, `DepthwiseConvPerChannel`,
//! `FullyConnected`), per output channel `c`:
//! ```text
//! acc = sum (x + input_offset) * (w - w_zp)  (+ bias[c])          int32, wrapping like C
//! y   = clamp(MultiplyByQuantizedMultiplier(acc, m[c], shift[c]) + output_offset, -128, 127)
//! ```
//! with `input_offset = -x_zp`, `output_offset = y_zp` and `(m[c], shift[c]) =
//! QuantizeMultiplier(s_x * s_w[c] / s_y)` computed in double from the f32 scales of the
//! declared types (so requantisation parameters are derived from the IR, never stored).
//! Padding cells contribute nothing (they hold the input zero point).
//!
//! Q format (q8 / q16, legacy CMSIS q7 `arm_convolve_HWC_q7_basic` and GAP8 `_fp`/`_fps`
//! arithmetic), per output channel with `out_shift = fx + fw[c] - fy >= 0` and
//! `bias_shift = fx + fw[c] - fb[c] >= 0`:
//! ```text
//! acc = (bias[c] << bias_shift) + (out_shift > 0 ? 1 << (out_shift - 1) : 0) + sum x * w   int32
//! y   = saturate(acc >> out_shift)                                  (arithmetic shift)
//! ```
//! i.e. GAP8's `round_norm(acc, Norm)` with `Norm = out_shift`, the rounding constant added
//! up front as in the q7 API.

use super::params::{act, act_range, chan, int_tensor, ints, QAct, QChan};
use crate::interp::shared::numel;
use crate::ir::{Tensor, TensorType};
use crate::ops::{Conv2d, Gemm};
use crate::quant::math::{multiply_by_quantized_multiplier, requant_params};

/// How each output channel's accumulator becomes an output value.
enum Requant {
    Affine { in_off: i32, w_zp: Vec<i32>, mult: Vec<(i32, i32)>, out_off: i32 },
    Pow2 { out_shift: Vec<i32>, bias_shift: Vec<i32> },
}

impl Requant {
    fn new(
        x_ty: &TensorType,
        w_ty: &TensorType,
        w_axis: usize,
        b_ty: Option<&TensorType>,
        y_ty: &TensorType,
        o: usize,
    ) -> Result<Requant, String> {
        let xa = act(x_ty, "input")?;
        let ya = act(y_ty, "result")?;
        if x_ty.dtype != y_ty.dtype {
            return Err(format!("input is {} but the result is {}", x_ty.dtype, y_ty.dtype));
        }
        match (xa, ya, chan(w_ty, w_axis, o, "weights")?) {
            (QAct::Affine { scale: sx, zp: zx }, QAct::Affine { scale: sy, zp: zy }, QChan::Affine(sw, zw)) => {
                if w_ty.dtype != crate::ir::DType::I8 {
                    return Err(format!("int8 weights must be i8, got {}", w_ty.dtype));
                }
                if let Some(b) = b_ty {
                    if b.dtype != crate::ir::DType::I32 {
                        return Err(format!("int8 biases must be i32, got {}", b.dtype));
                    }
                }
                let mult = sw.iter().map(|s| requant_params(sx, *s, sy)).collect();
                Ok(Requant::Affine { in_off: -zx, w_zp: zw, mult, out_off: zy })
            }
            (QAct::Pow2 { frac: fx }, QAct::Pow2 { frac: fy }, QChan::Pow2(fw)) => {
                let fb = match b_ty {
                    Some(b) => match chan(b, 0, o, "bias")? {
                        QChan::Pow2(f) => f,
                        QChan::Affine(..) => return Err("a Q-format layer needs a pow2 bias".into()),
                    },
                    None => fw.iter().map(|f| fx + f).collect(),
                };
                let mut out_shift = Vec::with_capacity(o);
                let mut bias_shift = Vec::with_capacity(o);
                for c in 0..o {
                    let os = fx + fw[c] - fy;
                    let bs = fx + fw[c] - fb[c];
                    if !(0..=31).contains(&os) {
                        return Err(format!(
                            "channel {c}: out_shift = in_Q {fx} + w_Q {} - out_Q {fy} = {os} is outside 0..=31",
                            fw[c]
                        ));
                    }
                    if !(0..=31).contains(&bs) {
                        return Err(format!(
                            "channel {c}: bias_shift = in_Q {fx} + w_Q {} - bias_Q {} = {bs} is outside 0..=31",
                            fw[c], fb[c]
                        ));
                    }
                    out_shift.push(os);
                    bias_shift.push(bs);
                }
                Ok(Requant::Pow2 { out_shift, bias_shift })
            }
            _ => Err("input, weights and result must all be affine (int8) or all pow2 (Q format)".into()),
        }
    }

    /// Offset added to every input value before the multiply.
    fn in_off(&self) -> i32 {
        match self {
            Requant::Affine { in_off, .. } => *in_off,
            Requant::Pow2 { .. } => 0,
        }
    }

    fn w_off(&self, c: usize) -> i32 {
        match self {
            Requant::Affine { w_zp, .. } => -w_zp[c],
            Requant::Pow2 { .. } => 0,
        }
    }

    /// The accumulator's start value for channel `c` (bias and, for Q formats, rounding).
    fn init(&self, c: usize, bias: Option<&[i32]>) -> i32 {
        let b = bias.map(|b| b[c]).unwrap_or(0);
        match self {
            Requant::Affine { .. } => b,
            Requant::Pow2 { out_shift, bias_shift } => {
                let round = if out_shift[c] > 0 { 1i32 << (out_shift[c] - 1) } else { 0 };
                b.wrapping_shl(bias_shift[c] as u32).wrapping_add(round)
            }
        }
    }

    fn finish(&self, c: usize, acc: i32, range: (i32, i32)) -> i32 {
        match self {
            Requant::Affine { mult, out_off, .. } => {
                let (m, s) = mult[c];
                multiply_by_quantized_multiplier(acc, m, s).wrapping_add(*out_off).clamp(range.0, range.1)
            }
            Requant::Pow2 { out_shift, .. } => (acc >> out_shift[c]).clamp(range.0, range.1),
        }
    }
}

/// Output positions `o` with `0 <= o * s + off < w`, clipped to `0..ow`.
fn valid_range(off: isize, s: usize, w: usize, ow: usize) -> (usize, usize) {
    let s = s as isize;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let room = w as isize - off;
    let hi = if room <= 0 { 0 } else { (room + s - 1) / s };
    let lo = (lo as usize).min(ow);
    let hi = (hi as usize).min(ow);
    (lo, hi.max(lo))
}

/// Integer convolution (see the module docs). Types are the declared operand/result types.
pub(crate) fn conv2d(
    p: &Conv2d,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    tys: &[&TensorType],
    y_ty: &TensorType,
) -> Result<Tensor, String> {
    let [n, c, h, wi] = <[usize; 4]>::try_from(x.shape()).map_err(|_| "conv2d input must have rank 4")?;
    let [o, cg, kh, kw] = <[usize; 4]>::try_from(w.shape()).map_err(|_| "conv2d filter must have rank 4")?;
    let [_, _, oh, ow] = <[usize; 4]>::try_from(y_ty.shape.as_slice()).map_err(|_| "conv2d result must have rank 4")?;
    let g = p.groups.max(1);
    let og = o / g;
    let rq = Requant::new(tys[0], tys[1], 0, tys.get(2).copied(), y_ty, o)?;
    let range = act_range(y_ty.dtype)?;
    let xd = ints(x)?;
    let wd = ints(w)?;
    let bd = b.map(ints).transpose()?;
    if xd.len() != numel(x.shape())? || wd.len() != o * cg * kh * kw || cg * g != c {
        return Err("internal error: conv2d operand sizes".into());
    }
    let [sh, sw] = p.strides;
    let [dh, dw] = p.dilations;
    let (pt, pl) = (p.pads[0], p.pads[1]);
    let in_off = rq.in_off();
    let mut out = vec![0i32; n * o * oh * ow];
    let mut acc = vec![0i32; oh * ow];
    // Input planes with the offset already added (x + input_offset), one image at a time.
    let mut xo = vec![0i32; c * h * wi];
    for img in 0..n {
        for (dst, src) in xo.iter_mut().zip(&xd[img * c * h * wi..(img + 1) * c * h * wi]) {
            *dst = src.wrapping_add(in_off);
        }
        for oc in 0..o {
            let grp = oc / og;
            let w_off = rq.w_off(oc);
            acc.iter_mut().for_each(|a| *a = 0);
            for ci in 0..cg {
                let plane = &xo[(grp * cg + ci) * h * wi..(grp * cg + ci + 1) * h * wi];
                for ky in 0..kh {
                    let offy = (ky * dh) as isize - pt as isize;
                    let (y0, y1) = valid_range(offy, sh, h, oh);
                    for kx in 0..kw {
                        let wv = wd[((oc * cg + ci) * kh + ky) * kw + kx].wrapping_add(w_off);
                        if wv == 0 {
                            continue;
                        }
                        let offx = (kx * dw) as isize - pl as isize;
                        let (x0, x1) = valid_range(offx, sw, wi, ow);
                        for oy in y0..y1 {
                            let iy = (oy as isize * sh as isize + offy) as usize;
                            let row = &plane[iy * wi..(iy + 1) * wi];
                            let arow = &mut acc[oy * ow..(oy + 1) * ow];
                            for (ox, a) in arow.iter_mut().enumerate().take(x1).skip(x0) {
                                let ix = (ox as isize * sw as isize + offx) as usize;
                                *a = a.wrapping_add(wv.wrapping_mul(row[ix]));
                            }
                        }
                    }
                }
            }
            let init = rq.init(oc, bd.as_deref());
            let dst = &mut out[(img * o + oc) * oh * ow..(img * o + oc + 1) * oh * ow];
            for (d, a) in dst.iter_mut().zip(&acc) {
                *d = rq.finish(oc, a.wrapping_add(init), range);
            }
        }
    }
    int_tensor(&y_ty.shape, y_ty.dtype, out)
}

/// Integer fully connected layer: `gemm(a, b[, c])` with `a` activations `[M, K]`, `b` constant
/// weights (`[N, K]` with `trans_b`, else `[K, N]`), quantized per tensor or per output
/// feature, and an optional bias of `N` elements. `alpha`, `beta` must be 1 and `trans_a` false.
pub(crate) fn gemm(
    p: &Gemm,
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    tys: &[&TensorType],
    y_ty: &TensorType,
) -> Result<Tensor, String> {
    if p.trans_a || p.alpha != 1.0 || p.beta != 1.0 {
        return Err(format!(
            "integer gemm needs alpha = 1, beta = 1 and trans_a = false (got alpha {}, beta {}, trans_a {})",
            p.alpha, p.beta, p.trans_a
        ));
    }
    let (m, k, nn) = p.dims(a.shape(), b.shape());
    let rq = Requant::new(tys[0], tys[1], if p.trans_b { 0 } else { 1 }, tys.get(2).copied(), y_ty, nn)?;
    let range = act_range(y_ty.dtype)?;
    let ad = ints(a)?;
    let bd = ints(b)?;
    let cd = c.map(ints).transpose()?;
    if let Some(cd) = &cd {
        if cd.len() != nn {
            return Err(format!("integer gemm bias must have {nn} elements, got {}", cd.len()));
        }
    }
    if ad.len() != m * k || bd.len() != k * nn {
        return Err("internal error: gemm operand sizes".into());
    }
    let in_off = rq.in_off();
    let mut out = vec![0i32; m * nn];
    for i in 0..m {
        let row = &ad[i * k..(i + 1) * k];
        for j in 0..nn {
            let w_off = rq.w_off(j);
            let mut acc = 0i32;
            for (kk, xv) in row.iter().enumerate() {
                let wv = if p.trans_b { bd[j * k + kk] } else { bd[kk * nn + j] };
                acc = acc.wrapping_add(xv.wrapping_add(in_off).wrapping_mul(wv.wrapping_add(w_off)));
            }
            out[i * nn + j] = rq.finish(j, acc.wrapping_add(rq.init(j, cd.as_deref())), range);
        }
    }
    int_tensor(&y_ty.shape, y_ty.dtype, out)
}
