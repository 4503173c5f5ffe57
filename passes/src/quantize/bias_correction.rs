//! Bias correction (`quantize{bias-correction=true}`, `clio quantize --bias-correction`): the
//! empirical form of Nagel et al. 2019 ("Data-Free Quantization Through Weight Equalization and
//! Bias Correction", section 4.2).
//!
//! Rounding a layer's weights to `w + dw` moves the mean of output channel `c`, over the
//! calibration samples and every output position, by `sum_i dw[c, i] * E[x_i]`, where `E[x_i]`
//! is the mean input the weight element `i` multiplies. That shift is subtracted from the float
//! bias before the bias is quantized, so the quantized layer's outputs are unbiased on the
//! calibration data. The error is systematic (the same at every position), so unlike rounding
//! noise it is not averaged away by a later `global_avg_pool`.
//!
//! `E[x_i]` comes from the element-wise mean of the layer's input over the calibration samples
//! ([`MeanMap`]). For a conv it is taken per filter tap, averaged over the output positions
//! that tap reads, with zero padding counted as 0: near the border a 3x3 tap reads padding for
//! part of the positions, which a per-channel mean would ignore (on 2x2 or 4x4 maps that is
//! most of them). A gemm multiplies input feature `k` by column `k`.
//!
//! Layers without a bias are left as they are (the statistic `bias-corrected` counts the
//! corrected ones).

use clio::ir::Op;
use clio::quant::calib::MeanMap;

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
