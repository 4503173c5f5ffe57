//! Bias correction (`quantize{bias-correction=weights|measured}`, `clio quantize
//! --bias-correction weights|measured`): removing the systematic part of the quantization
//! error, which, unlike rounding noise, a later `global_avg_pool` does not average away.
//!
//! `weights` (the empirical form of Nagel et al. 2019, "Data-Free Quantization Through Weight
//! Equalization and Bias Correction"): rounding a layer's weights to `w + dw`
//! moves the mean of output channel `c`, over the calibration samples and every output
//! position, by `sum_i dw[c, i] * E[x_i]`, where `E[x_i]` is the mean input the weight element
//! `i` multiplies. That shift is subtracted from the float bias before the bias is quantized.
//! `E[x_i]` comes from the element-wise mean of the layer's input over the calibration samples
//! ([`MeanMap`]). For a conv it is taken per filter tap, averaged over the output positions
//! that tap reads, with zero padding counted as 0: near the border a 3x3 tap reads padding for
//! part of the positions, which a per-channel mean would ignore (on 2x2 or 4x4 maps that is
//! most of them). A gemm multiplies input feature `k` by column `k`.
//!
//! `measured` (`weights` first, then [`measured_correction`]): layer by layer, the quantized
//! graph runs on calibration samples in the integer interpreter and each integer bias moves by
//! the measured difference between the dequantized and the float per-channel means of the
//! layer's value. This also removes what the weights cannot explain: the systematic error of
//! activation and bias rounding and saturation upstream (8-bit Q-format biases especially).
//!
//! Layers without a bias are left as they are (statistics `bias-corrected`: layers corrected
//! from their weights; `bias-measured`: integer bias values moved by the measurement).

use super::plan::{is_fusable_activation, Kind, Plan};
use clio::interp::{IntEvaluator, Interpreter};
use clio::ir::{Graph, Module, NodeId, Op, Tensor, TensorData, Value, Weight};
use clio::quant::calib::MeanMap;
use clio::quant::math::dequantize_values;
use std::collections::HashMap;

/// The mean input each weight position of `op` multiplies: for a conv `[C_in, KH, KW]` (input
/// channel, tap), averaged over the `out_hw` output positions; for a gemm one value per input
/// feature. `None` when the mean map does not match the layer's input.
pub fn input_expectations(op: &Op, w_shape: &[usize], input: &MeanMap, out_hw: (usize, usize)) -> Option<Vec<f64>> {
    let means = input.means();
    match (op, w_shape, input.shape()) {
        (Op::Conv2d(p), [_, cig, kh, kw], [c, h, w]) if cig * p.groups == *c => {
            let (ho, wo) = out_hw;
            let positions = (ho * wo).max(1) as f64;
            let mut out = Vec::with_capacity(c * kh * kw);
            for ci in 0..*c {
                let plane = &means[ci * h * w..(ci + 1) * h * w];
                for ky in 0..*kh {
                    for kx in 0..*kw {
                        let mut sum = 0.0;
                        for oy in 0..ho {
                            let Some(y) = (oy * p.strides[0] + ky * p.dilations[0]).checked_sub(p.pads[0]) else {
                                continue;
                            };
                            if y >= *h {
                                continue;
                            }
                            for ox in 0..wo {
                                let Some(x) = (ox * p.strides[1] + kx * p.dilations[1]).checked_sub(p.pads[1]) else {
                                    continue;
                                };
                                if x < *w {
                                    sum += plane[y * w + x];
                                }
                            }
                        }
                        out.push(sum / positions);
                    }
                }
            }
            Some(out)
        }
        (Op::Gemm(p), [rows, cols], [k]) if (if p.trans_b { cols } else { rows }) == k => Some(means),
        _ => None,
    }
}

/// The index into [`input_expectations`]' table of weight element `i` (row-major) of `op`.
fn expectation_index(op: &Op, w_shape: &[usize], i: usize) -> Option<usize> {
    match (op, w_shape) {
        (Op::Conv2d(p), [co, cig, kh, kw]) => {
            let taps = kh * kw;
            let inner = cig * taps;
            let c = i / inner.max(1);
            let group = c / (co / p.groups.max(1)).max(1);
            let ci = group * cig + (i % inner.max(1)) / taps.max(1);
            Some(ci * taps + i % taps.max(1))
        }
        (Op::Gemm(p), [_, k]) if p.trans_b => Some(i % (*k).max(1)),
        (Op::Gemm(_), [_, n]) => Some(i / (*n).max(1)),
        _ => None,
    }
}

/// The mean output shift of every output channel: `sum_i weight_error(i) * E[x_i]` over the
/// weight elements `i` of the channel (`channel_of(i)`), `E` from [`input_expectations`].
pub fn output_shift(
    op: &Op,
    w_shape: &[usize],
    channels: usize,
    channel_of: impl Fn(usize) -> usize,
    weight_error: impl Fn(usize) -> f64,
    expectations: &[f64],
) -> Option<Vec<f64>> {
    let numel: usize = w_shape.iter().product();
    let mut shift = vec![0f64; channels];
    for i in 0..numel {
        let e = expectations.get(expectation_index(op, w_shape, i)?)?;
        *shift.get_mut(channel_of(i))? += weight_error(i) * e;
    }
    Some(shift)
}

/// One layer [`measured_correction`] corrects.
#[derive(Clone, Debug)]
pub struct MeasuredLayer {
    /// The bias weight's name in the module.
    pub bias: String,
    /// The node of the quantized graph whose (dequantized) value is measured: the layer itself,
    /// or the activation it feeds when that stays a node (q8/q16).
    pub measured: String,
    /// The node of the float graph holding the same value (the layer, or its activation).
    pub reference: String,
    /// Channels of the value (dimension 1).
    pub channels: usize,
}

/// What [`measured_correction`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measured {
    /// Integer bias values moved.
    pub moved: i64,
    /// Bias values that would have left the bias type's range (clamped).
    pub saturated: i64,
}

/// The layers of quantized graph `graph` of `m` that [`measured_correction`] corrects, in the
/// float graph's topological order: every quantized conv2d / gemm with a bias.
pub(crate) fn measured_layers(
    m: &Module,
    graph: &str,
    float: &Graph,
    order: &[NodeId],
    plan: &Plan,
) -> Vec<MeasuredLayer> {
    let Some(q) = m.graph(graph) else { return vec![] };
    let mut out = vec![];
    for &id in order {
        let n = float.node(id);
        if plan.kind.get(&id) != Some(&Kind::Quant) || !matches!(n.op, Op::Conv2d(_) | Op::Gemm(_)) {
            continue;
        }
        let act = float
            .users(id)
            .first()
            .copied()
            .filter(|u| float.use_count(Value::of(id)) == 1 && is_fusable_activation(&float.node(*u).op));
        // int8 fuses the activation into the layer's result; q8/q16 keep it as a node.
        let (measured, reference) = match act {
            Some(a) if plan.fused_into.get(&a) == Some(&id) => (n.name(), float.node(a).name()),
            Some(a) if plan.kind.get(&a) == Some(&Kind::Quant) => (float.node(a).name(), float.node(a).name()),
            _ => (n.name(), n.name()),
        };
        let Some(qid) = q.find(n.name()) else { continue };
        let Some(bias) = q.operand(qid, 2).and_then(|v| q.weight_name(v)) else { continue };
        out.push(MeasuredLayer {
            bias: bias.to_string(),
            measured: measured.to_string(),
            reference: reference.to_string(),
            channels: n.ty().shape.get(1).copied().unwrap_or(1),
        });
    }
    out
}

/// Measured bias correction (`bias-correction=measured`; after Finkelstein et al. 2019, "Fighting
/// Quantization Bias With Bias", here in the integer domain): layer by layer in
/// topological order, runs the quantized graph `graph` of `m` on `samples` with the bit-exact
/// integer interpreter and moves the layer's integer bias by the rounded difference between
/// the dequantized mean of its value and the float module's mean of the same value on the same
/// samples, per channel. Each layer is measured after every layer before it was corrected, so
/// it also absorbs the systematic error its inputs still carry (activation and bias rounding,
/// saturation), which the weight-based correction cannot see. Costs one integer run of the
/// graph per layer and sample.
pub fn measured_correction(
    m: &mut Module,
    float: &Module,
    graph: &str,
    layers: &[MeasuredLayer],
    samples: &[Tensor],
    progress: bool,
) -> Result<Measured, String> {
    let float_means = reference_means(float, graph, layers, samples)?;
    let bar =
        if progress { indicatif::ProgressBar::new(layers.len() as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("bias correction {bar:30} {pos}/{len} layers [{elapsed}<{eta}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut out = Measured::default();
    for (l, want) in layers.iter().zip(&float_means) {
        let got = quantized_means(m, graph, l, samples)?;
        correct_bias(m, &l.bias, &got, want, &mut out)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Per-channel means of every layer's reference value in the float module over `samples`.
fn reference_means(
    float: &Module,
    graph: &str,
    layers: &[MeasuredLayer],
    samples: &[Tensor],
) -> Result<Vec<Vec<f64>>, String> {
    let fi = Interpreter::new(float, graph).map_err(|e| e.to_string())?;
    let values: Vec<(&str, usize)> = layers.iter().map(|l| (l.reference.as_str(), l.channels)).collect();
    observed_channel_means(&fi, samples, &values, |_, t| t.as_f32().map(|v| v.iter().map(|x| *x as f64).collect()))
}

/// Per-channel means of the dequantized value of `l.measured` in the quantized module.
fn quantized_means(m: &Module, graph: &str, l: &MeasuredLayer, samples: &[Tensor]) -> Result<Vec<f64>, String> {
    let qi = Interpreter::with_evaluator(m, graph, IntEvaluator::new()).map_err(|e| e.to_string())?;
    let values = [(l.measured.as_str(), l.channels)];
    let mut means = observed_channel_means(&qi, samples, &values, |n, t| {
        n.ty().quant.as_ref().map(|q| dequantize_values(t, q).into_iter().map(f64::from).collect())
    })?;
    Ok(means.pop().unwrap_or_default())
}

/// Runs `interp` on every sample and returns, for each `(node name, channels)` of `values`,
/// the per-channel mean of what `read` makes of that node's result.
fn observed_channel_means<E: clio::interp::OpEvaluator>(
    interp: &Interpreter<'_, E>,
    samples: &[Tensor],
    values: &[(&str, usize)],
    read: impl Fn(&clio::ir::Node, &Tensor) -> Option<Vec<f64>>,
) -> Result<Vec<Vec<f64>>, String> {
    let g = interp.graph();
    let by_name: HashMap<&str, usize> = values.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect();
    let mut acc: Vec<ChannelAcc> = values.iter().map(|(_, c)| ChannelAcc::new(*c)).collect();
    for s in samples {
        interp
            .run_observed(std::slice::from_ref(s), &mut |id, t| {
                let n = g.node(id);
                if let Some((&i, v)) = by_name.get(n.name()).and_then(|i| Some((i, read(n, t)?))) {
                    acc[i].add(t.shape(), v.into_iter());
                }
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(acc.iter().map(ChannelAcc::means).collect())
}

/// Moves the integer bias `name` by `round((got - want) / step)` per channel (the bias step of
/// the channel: `s_in * s_w` for int8, `2^-bias_Q` for Q formats), clamped to its type.
fn correct_bias(m: &mut Module, name: &str, got: &[f64], want: &[f64], out: &mut Measured) -> Result<(), String> {
    let w = m.weight(name).ok_or_else(|| format!("bias @{name} vanished"))?;
    let q = w.quant.clone().ok_or_else(|| format!("bias @{name} is not quantized"))?;
    // Per channel, or the one per-tensor entry.
    let step = |c: usize| q.step(c).or_else(|| q.step(0)).unwrap_or(1.0);
    let delta: Vec<i64> =
        got.iter().zip(want).enumerate().map(|(c, (g, f))| ((g - f) / step(c)).round() as i64).collect();
    if delta.iter().all(|d| *d == 0) {
        return Ok(());
    }
    let (lo, hi) = w.data().dtype().int_range().ok_or_else(|| format!("bias @{name} is not an integer tensor"))?;
    let mut data = w.data().clone();
    let mut apply = |v: i64, d: i64| -> i64 {
        out.moved += i64::from(d != 0);
        let x = v.saturating_sub(d);
        if x < lo || x > hi {
            out.saturated += 1;
        }
        x.clamp(lo, hi)
    };
    match data.data_mut() {
        TensorData::I32(b) => b.iter_mut().zip(&delta).for_each(|(v, d)| *v = apply(*v as i64, *d) as i32),
        TensorData::I16(b) => b.iter_mut().zip(&delta).for_each(|(v, d)| *v = apply(*v as i64, *d) as i16),
        TensorData::I8(b) => b.iter_mut().zip(&delta).for_each(|(v, d)| *v = apply(*v as i64, *d) as i8),
        _ => return Err(format!("bias @{name} is not an integer tensor")),
    }
    m.set_weight(name, Weight::quantized(data, q));
    Ok(())
}

/// Per-channel sums of an NC... value (channel axis 1; a rank-2 value has one position).
struct ChannelAcc {
    sums: Vec<f64>,
    count: u64,
}

impl ChannelAcc {
    fn new(channels: usize) -> ChannelAcc {
        ChannelAcc { sums: vec![0.0; channels], count: 0 }
    }

    fn add(&mut self, shape: &[usize], values: impl ExactSizeIterator<Item = f64>) {
        let c = self.sums.len().max(1);
        let batch = shape.first().copied().unwrap_or(1).max(1);
        let inner = (values.len() / (batch * c).max(1)).max(1);
        for (j, x) in values.enumerate() {
            if let Some(s) = self.sums.get_mut((j / inner) % c) {
                *s += x;
            }
        }
        self.count += (batch * inner) as u64;
    }

    fn means(&self) -> Vec<f64> {
        let n = self.count.max(1) as f64;
        self.sums.iter().map(|s| s / n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clio::ops::Conv2d;

    fn map(shape: &[usize], values: &[f32]) -> MeanMap {
        let mut m = MeanMap::default();
        let mut full = vec![1];
        full.extend_from_slice(shape);
        m.add(&full, values);
        m
    }

    #[test]
    fn padded_taps_count_the_zeros() {
        // One 2x2 channel of ones, 3x3 conv with padding 1: output 2x2. The centre tap reads an
        // input pixel at all 4 positions; a corner tap (0,0) only at output (1,1).
        let op = Op::Conv2d(Conv2d { pads: [1, 1, 1, 1], ..Conv2d::default() });
        let e = input_expectations(&op, &[1, 1, 3, 3], &map(&[1, 2, 2], &[1.0; 4]), (2, 2)).unwrap();
        assert_eq!(e.len(), 9);
        assert_eq!(e[4], 1.0);
        assert_eq!(e[0], 0.25);
        assert_eq!(e[1], 0.5);
    }

    #[test]
    fn grouped_conv_reads_its_group_s_channels() {
        // Depthwise over 2 channels with means 1 and 3: channel 1's filter reads channel 1.
        let op = Op::Conv2d(Conv2d { groups: 2, ..Conv2d::default() });
        let e = input_expectations(&op, &[2, 1, 1, 1], &map(&[2, 1, 1], &[1.0, 3.0]), (1, 1)).unwrap();
        let shift = output_shift(&op, &[2, 1, 1, 1], 2, |i| i, |_| 0.5, &e).unwrap();
        assert_eq!(shift, vec![0.5, 1.5]);
    }

    #[test]
    fn gemm_columns_follow_trans_b() {
        let means = map(&[3], &[1.0, 2.0, 4.0]);
        // trans_b: weight [N=2, K=3]; element i multiplies feature i % 3.
        let op = Op::Gemm(clio::ops::Gemm { trans_b: true, ..Default::default() });
        let e = input_expectations(&op, &[2, 3], &means, (1, 1)).unwrap();
        let shift = output_shift(&op, &[2, 3], 2, |i| i / 3, |i| if i == 5 { 1.0 } else { 0.0 }, &e).unwrap();
        assert_eq!(shift, vec![0.0, 4.0]);
        // Not trans_b: weight [K=3, N=2]; element i multiplies feature i / 2.
        let op = Op::Gemm(clio::ops::Gemm { trans_b: false, ..Default::default() });
        let e = input_expectations(&op, &[3, 2], &means, (1, 1)).unwrap();
        let shift = output_shift(&op, &[3, 2], 2, |i| i % 2, |i| if i == 5 { 1.0 } else { 0.0 }, &e).unwrap();
        assert_eq!(shift, vec![0.0, 4.0]);
        // A mean map of the wrong width does not match.
        assert!(input_expectations(&op, &[4, 2], &means, (1, 1)).is_none());
    }
}
