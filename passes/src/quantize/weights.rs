//! Quantizing the constant operands of `conv2d` and `gemm`: filters / weight matrices and
//! biases, per scheme (see the pass documentation for the formats).

use super::bias_correction::output_shift;
use super::{Config, Scheme};
use clio::ir::{DType, Graph, Module, NodeId, Op, QScheme, Quant, Tensor, TensorData, Weight};
use clio::quant::math::{pow2_frac, quantize_pow2, round_clamp, symmetric_scale};

/// The f32 data of the weight read by operand `slot` of `id`, scaled by `factor`.
fn weight_data(m: &Module, g: &Graph, id: NodeId, slot: usize, factor: f32) -> Option<(String, Tensor)> {
    let v = g.operand(id, slot)?;
    let name = g.weight_name(v)?.to_string();
    let w = m.weight(&name)?;
    let d = w.data().as_f32()?;
    let t = if factor == 1.0 {
        w.data().clone()
    } else {
        Tensor::from_f32(w.data().shape().to_vec(), d.iter().map(|x| x * factor).collect()).ok()?
    };
    Some((name, t))
}

/// `(axis, channels)` of the output-channel dimension of a conv filter or gemm weight.
fn out_axis(op: &Op, shape: &[usize]) -> (usize, usize) {
    match op {
        Op::Gemm(p) if !p.trans_b => (1, shape[1]),
        _ => (0, shape[0]),
    }
}

/// Largest magnitude per output channel.
fn channel_absmax(t: &Tensor, axis: usize) -> Vec<f64> {
    let shape = t.shape();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = vec![0f64; n];
    for (i, v) in t.as_f32().unwrap_or(&[]).iter().enumerate() {
        let c = (i / inner.max(1)) % n.max(1);
        out[c] = out[c].max((*v as f64).abs());
    }
    out
}

fn alpha_beta(op: &Op) -> (f32, f32) {
    match op {
        Op::Gemm(p) => (p.alpha, p.beta),
        _ => (1.0, 1.0),
    }
}

/// Whether the layer's weights are quantized per output channel.
fn per_channel(op: &Op, cfg: &Config) -> bool {
    // CMSIS-NN's s8 fully connected kernel takes per-tensor weights.
    cfg.per_channel && !(cfg.scheme == Scheme::Int8 && matches!(op, Op::Gemm(_)))
}

fn qmax(scheme: Scheme) -> i32 {
    match scheme {
        Scheme::Q16 => 32767,
        _ => 127,
    }
}

/// Per-channel fractional bits of the pow2 weights of conv/gemm `id` (all equal when
/// quantized per tensor). With `acc = Some((x_absmax, in_Q))`, the bits are also limited so that
/// the int32 accumulator cannot overflow for inputs within the calibrated range:
/// `(x_absmax * ||w[c]||_1 + |b[c]|) * 2^(in_Q + w_Q) < 2^30`.
pub(crate) fn pow2_weight_fracs(
    m: &Module,
    g: &Graph,
    id: NodeId,
    cfg: &Config,
    acc: Option<(f64, i32)>,
) -> Result<Vec<i32>, String> {
    let op = &g.node(id).op;
    let (alpha, beta) = alpha_beta(op);
    let (w_name, w) = weight_data(m, g, id, 1, alpha).ok_or("weights are not an f32 weight")?;
    let (axis, n) = out_axis(op, w.shape());
    let am = channel_absmax(&w, axis);
    let q = qmax(cfg.scheme);
    if am.is_empty() {
        return Err(format!("weight @{w_name} is empty"));
    }
    let mut f: Vec<i32> = am.iter().map(|a| pow2_frac(*a, q)).collect();
    if let Some((xmax, fx)) = acc {
        let inner: usize = w.shape()[axis + 1..].iter().product();
        let mut l1 = vec![0f64; n];
        for (i, v) in w.as_f32().unwrap_or(&[]).iter().enumerate() {
            l1[(i / inner.max(1)) % n.max(1)] += (*v as f64).abs();
        }
        let bias = if g.operands(id).len() > 2 { weight_data(m, g, id, 2, beta).map(|(_, b)| b) } else { None };
        let bvals: Vec<f64> =
            bias.and_then(|b| b.as_f32().map(|v| v.iter().map(|x| (*x as f64).abs()).collect())).unwrap_or_default();
        for c in 0..n {
            let bound = xmax * l1[c] + bvals.get(c).copied().unwrap_or(0.0);
            if bound > 0.0 && bound.is_finite() {
                let lim = 30 - fx - bound.log2().ceil() as i32;
                f[c] = f[c].min(lim);
            }
        }
    }
    Ok(if per_channel(op, cfg) {
        f
    } else {
        let m = f.iter().copied().min().unwrap_or(0);
        vec![m; f.len()]
    })
}

/// Quantized weights of one layer.
pub(crate) struct LayerWeights {
    /// Original weight name and quantized weight.
    pub w: (String, Weight),
    /// Original bias name and quantized bias.
    pub b: Option<(String, Weight)>,
    /// Bias values clamped to the bias type's range.
    pub bias_saturated: i64,
    /// 1 when the bias was corrected (bias correction on, the layer has a bias).
    pub bias_corrected: i64,
}

fn frac(q: &Quant) -> i32 {
    match &q.scheme {
        QScheme::Pow2 { frac_bits } => frac_bits[0],
        QScheme::Affine { .. } => 0,
    }
}

fn scale(q: &Quant) -> f32 {
    match &q.scheme {
        QScheme::Affine { scales, .. } => scales[0],
        QScheme::Pow2 { frac_bits } => 2f32.powi(-frac_bits[0]),
    }
}

/// Quantizes the weights (and bias) of conv/gemm `id`, whose input has format `xq`; with
/// `expectations` (bias correction: the mean input of every weight position, see
/// [`super::bias_correction`]), the float bias first loses the mean output shift of the weight
/// rounding.
pub(crate) fn quantize_layer(
    m: &Module,
    g: &Graph,
    id: NodeId,
    cfg: &Config,
    xq: &Quant,
    weight_frac: Option<&[i32]>,
    expectations: Option<&[f64]>,
) -> Result<LayerWeights, String> {
    let op = &g.node(id).op;
    let (alpha, beta) = alpha_beta(op);
    let (w_name, w) = weight_data(m, g, id, 1, alpha).ok_or("weights are not an f32 weight")?;
    let (axis, n) = out_axis(op, w.shape());
    let inner: usize = w.shape()[axis + 1..].iter().product();
    let chan_of = |i: usize| (i / inner.max(1)) % n.max(1);
    let wd = w.as_f32().ok_or("weights are not f32")?;
    let pc = per_channel(op, cfg);
    let bias = match g.operands(id).len() > 2 {
        true => Some(weight_data(m, g, id, 2, beta).ok_or("bias is not an f32 weight")?),
        false => None,
    };
    let mut bias_saturated = 0;
    let axis_opt = if pc { Some(axis) } else { None };
    match cfg.scheme {
        Scheme::Int8 => {
            let am = channel_absmax(&w, axis);
            let scales: Vec<f32> = if pc {
                am.iter().map(|a| symmetric_scale(*a, 127)).collect()
            } else {
                vec![symmetric_scale(am.iter().cloned().fold(0.0, f64::max), 127); n]
            };
            let q: Vec<i8> = wd
                .iter()
                .enumerate()
                .map(|(i, v)| round_clamp(*v as f64 / scales[chan_of(i)] as f64, -127, 127) as i8)
                .collect();
            let wq = Quant {
                scheme: QScheme::Affine {
                    scales: if pc { scales.clone() } else { vec![scales[0]] },
                    zero_points: vec![0; if pc { n } else { 1 }],
                },
                axis: axis_opt.map(|_| axis),
            };
            let shift = expectations.and_then(|e| {
                let err = |i: usize| q[i] as f64 * scales[chan_of(i)] as f64 - wd[i] as f64;
                output_shift(op, w.shape(), n, chan_of, err, e)
            });
            let wt = Tensor::new(w.shape().to_vec(), TensorData::I8(q)).map_err(|e| e.to_string())?;
            let s_in = scale(xq) as f64;
            let (bias, bias_corrected) = corrected_bias(bias, shift.as_deref());
            let b = match bias {
                None => None,
                Some((b_name, b)) => {
                    let bd = b.as_f32().ok_or("bias is not f32")?;
                    let bq: Vec<i32> = bd
                        .iter()
                        .enumerate()
                        .map(|(c, v)| {
                            let r = *v as f64 / (s_in * scales[c % n] as f64);
                            let q = round_clamp(r, i32::MIN as i64, i32::MAX as i64);
                            if (q as f64 - r).abs() > 1.0 {
                                bias_saturated += 1;
                            }
                            q as i32
                        })
                        .collect();
                    let bs: Vec<f32> = if pc {
                        scales.iter().map(|s| (s_in * *s as f64) as f32).collect()
                    } else {
                        vec![(s_in * scales[0] as f64) as f32]
                    };
                    let bquant = Quant {
                        scheme: QScheme::Affine { zero_points: vec![0; bs.len()], scales: bs },
                        axis: if pc { Some(0) } else { None },
                    };
                    let bt = Tensor::new(vec![n], TensorData::I32(bq)).map_err(|e| e.to_string())?;
                    Some((b_name, Weight::quantized(bt, bquant)))
                }
            };
            Ok(LayerWeights { w: (w_name, Weight::quantized(wt, wq)), b, bias_saturated, bias_corrected })
        }
        Scheme::Q8 | Scheme::Q16 => {
            let fw: Vec<i32> = match weight_frac {
                Some(f) => f.to_vec(),
                None => pow2_weight_fracs(m, g, id, cfg, None)?,
            };
            let qm = qmax(cfg.scheme) as i64;
            let vals: Vec<i64> =
                wd.iter().enumerate().map(|(i, v)| quantize_pow2(*v as f64, fw[chan_of(i)], -qm - 1, qm)).collect();
            let (wt, dtype) = match cfg.scheme {
                Scheme::Q16 => (TensorData::I16(vals.iter().map(|v| *v as i16).collect()), DType::I16),
                _ => (TensorData::I8(vals.iter().map(|v| *v as i8).collect()), DType::I8),
            };
            let wquant = Quant {
                scheme: QScheme::Pow2 { frac_bits: if pc { fw.clone() } else { vec![fw[0]] } },
                axis: axis_opt.map(|_| axis),
            };
            let shift = expectations.and_then(|e| {
                let err = |i: usize| vals[i] as f64 * 2f64.powi(-fw[chan_of(i)]) - wd[i] as f64;
                output_shift(op, w.shape(), n, chan_of, err, e)
            });
            let (bias, bias_corrected) = corrected_bias(bias, shift.as_deref());
            let wt = Tensor::new(w.shape().to_vec(), wt).map_err(|e| e.to_string())?;
            let fx = frac(xq);
            let b = match bias {
                None => None,
                Some((b_name, b)) => {
                    let bd = b.as_f32().ok_or("bias is not f32")?;
                    let bam: Vec<f64> = (0..n).map(|c| (bd[c] as f64).abs()).collect();
                    let mut fb: Vec<i32> =
                        (0..n).map(|c| pow2_frac(bam[c], qm as i32).min(fx + fw[c]).max(fx + fw[c] - 31)).collect();
                    if !pc {
                        let f = *fb.iter().min().unwrap_or(&0);
                        fb = vec![f.max(fx + fw[0] - 31); n];
                    }
                    let bq: Vec<i64> = (0..n)
                        .map(|c| {
                            let r = bd[c] as f64 * 2f64.powi(fb[c]);
                            let q = quantize_pow2(bd[c] as f64, fb[c], -qm - 1, qm);
                            if (q as f64 - r).abs() > 1.0 {
                                bias_saturated += 1;
                            }
                            q
                        })
                        .collect();
                    let data = match dtype {
                        DType::I16 => TensorData::I16(bq.iter().map(|v| *v as i16).collect()),
                        _ => TensorData::I8(bq.iter().map(|v| *v as i8).collect()),
                    };
                    let bquant = Quant {
                        scheme: QScheme::Pow2 { frac_bits: if pc { fb.clone() } else { vec![fb[0]] } },
                        axis: if pc { Some(0) } else { None },
                    };
                    let bt = Tensor::new(vec![n], data).map_err(|e| e.to_string())?;
                    Some((b_name, Weight::quantized(bt, bquant)))
                }
            };
            Ok(LayerWeights { w: (w_name, Weight::quantized(wt, wquant)), b, bias_saturated, bias_corrected })
        }
    }
}

/// The bias with `shift` subtracted (per output channel, f32 like the stored bias), and 1 when
/// a correction was applied. A layer without a bias is left as it is (0).
fn corrected_bias(bias: Option<(String, Tensor)>, shift: Option<&[f64]>) -> (Option<(String, Tensor)>, i64) {
    match (bias, shift) {
        (Some((name, b)), Some(shift)) => match b.as_f32() {
            Some(d) if d.len() == shift.len() => {
                let v: Vec<f32> = d.iter().zip(shift).map(|(b, s)| (*b as f64 - s) as f32).collect();
                match Tensor::from_f32(b.shape().to_vec(), v) {
                    Ok(t) => (Some((name, t)), 1),
                    Err(_) => (Some((name, b)), 0),
                }
            }
            _ => (Some((name, b)), 0),
        },
        (bias, _) => (bias, 0),
    }
}
