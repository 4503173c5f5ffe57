//! Fused per-channel kernels with hand-written backward passes: batch norm in training mode,
//! per-channel bias / affine, and depthwise convolution.
//!
//! Expressed with candle's broadcasting ops, each of these needs reductions over the batch and
//! spatial axes in the backward pass, which candle's CPU backend does element by element through
//! strided indexing; on the small CNNs trained here that was most of the step time. These
//! kernels walk contiguous NCHW planes instead. `tests` checks each against the composite candle
//! formulation, values and gradients.

use crate::conv::ConvGeometry;
use crate::cpu::elements;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Device, Layout, Shape, Tensor};

type CResult<T> = candle_core::Result<T>;

fn nchw(l: &Layout) -> CResult<(usize, usize, usize)> {
    let (n, c, h, w) = l.shape().dims4()?;
    Ok((n, c, h * w))
}

fn tensor(v: Vec<f32>, shape: &[usize]) -> CResult<Tensor> {
    Tensor::from_vec(v, shape, &Device::Cpu)
}

/// `y[n, c] = x[n, c] + bias[c]` over NCHW planes.
struct ChannelBias;

impl CustomOp2 for ChannelBias {
    fn name(&self) -> &'static str {
        "channel-bias"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> CResult<(CpuStorage, Shape)> {
        let (x, b) = (elements(s1, l1, "x")?, elements(s2, l2, "bias")?);
        let (n, c, hw) = nchw(l1)?;
        let mut y = x.to_vec();
        for (i, plane) in y.chunks_mut(hw.max(1)).enumerate().take(n * c) {
            let v = b[i % c];
            plane.iter_mut().for_each(|p| *p += v);
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, b: &Tensor, _res: &Tensor, g: &Tensor) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let c = b.elem_count();
        let gv = g.flatten_all()?.to_vec1::<f32>()?;
        let hw = gv.len() / (g.dim(0)? * c).max(1);
        let mut db = vec![0f32; c];
        for (i, plane) in gv.chunks(hw.max(1)).enumerate() {
            db[i % c] += plane.iter().sum::<f32>();
        }
        Ok((Some(g.clone()), Some(tensor(db, b.dims())?)))
    }
}

/// `x + bias` per channel of an NCHW tensor (`bias`: `[C]`).
pub fn channel_bias(x: &Tensor, bias: &Tensor) -> CResult<Tensor> {
    x.contiguous()?.apply_op2(&bias.contiguous()?, ChannelBias)
}

/// Batch norm with the batch's statistics: `y = gamma * (x - mean) * inv_std + beta`.
struct BatchNormTrain {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl CustomOp3 for BatchNormTrain {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (x, gamma, beta) = (elements(s1, l1, "x")?, elements(s2, l2, "gamma")?, elements(s3, l3, "beta")?);
        let (_, c, hw) = nchw(l1)?;
        let mut y = Vec::with_capacity(x.len());
        for (i, plane) in x.chunks(hw.max(1)).enumerate() {
            let ch = i % c;
            let (m, s) = (self.mean[ch], self.inv_std[ch] * gamma[ch]);
            y.extend(plane.iter().map(|v| (v - m) * s + beta[ch]));
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c, h, w) = x.dims4()?;
        let hw = h * w;
        let count = (n * hw).max(1) as f32;
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let gv = g.flatten_all()?.to_vec1::<f32>()?;
        let gm = gamma.to_vec1::<f32>()?;
        // Per channel: sum of g (dbeta) and of g * xhat (dgamma).
        let (mut dbeta, mut dgamma) = (vec![0f32; c], vec![0f32; c]);
        for i in 0..n * c {
            let ch = i % c;
            let (m, s) = (self.mean[ch], self.inv_std[ch]);
            let (xs, gs) = (&xv[i * hw..(i + 1) * hw], &gv[i * hw..(i + 1) * hw]);
            dbeta[ch] += gs.iter().sum::<f32>();
            dgamma[ch] += xs.iter().zip(gs).map(|(x, g)| (x - m) * s * g).sum::<f32>();
        }
        // dx = gamma * inv_std * (g - mean(g) - xhat * mean(g * xhat)).
        let mut dx = Vec::with_capacity(xv.len());
        for i in 0..n * c {
            let ch = i % c;
            let (m, s) = (self.mean[ch], self.inv_std[ch]);
            let (mg, mgx) = (dbeta[ch] / count, dgamma[ch] / count);
            let k = gm[ch] * s;
            let (xs, gs) = (&xv[i * hw..(i + 1) * hw], &gv[i * hw..(i + 1) * hw]);
            dx.extend(xs.iter().zip(gs).map(|(x, g)| k * (g - mg - (x - m) * s * mgx)));
        }
        Ok((Some(tensor(dx, x.dims())?), Some(tensor(dgamma, &[c])?), Some(tensor(dbeta, &[c])?)))
    }
}

/// Batch norm over the batch of `x` (NCHW) with `gamma`, `beta` (`[C]`). Returns the result
/// and the batch mean and biased variance per channel (for the running statistics).
pub fn batch_norm_train(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> CResult<(Tensor, Vec<f32>, Vec<f32>)> {
    let x = x.contiguous()?;
    let (n, c, h, w) = x.dims4()?;
    let hw = h * w;
    let xv = x.flatten_all()?.to_vec1::<f32>()?;
    let count = (n * hw).max(1) as f64;
    let (mut sum, mut sq) = (vec![0f64; c], vec![0f64; c]);
    for (i, plane) in xv.chunks(hw.max(1)).enumerate().take(n * c) {
        sum[i % c] += plane.iter().map(|v| *v as f64).sum::<f64>();
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
    for (i, plane) in xv.chunks(hw.max(1)).enumerate().take(n * c) {
        let m = mean[i % c];
        sq[i % c] += plane.iter().map(|v| (*v as f64 - m).powi(2)).sum::<f64>();
    }
    let var: Vec<f32> = sq.iter().map(|s| (s / count) as f32).collect();
    let mean: Vec<f32> = mean.iter().map(|m| *m as f32).collect();
    let inv_std = var.iter().map(|v| 1.0 / (*v as f64 + eps).sqrt() as f32).collect();
    let op = BatchNormTrain { mean: mean.clone(), inv_std };
    let y = x.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    Ok((y, mean, var))
}

struct Depthwise(ConvGeometry);

/// Calls `f(out_index, in_index, tap)` for every valid (output, kernel tap) pair of one plane.
fn for_taps(d: &ConvGeometry, h: usize, w: usize, kh: usize, kw: usize, mut f: impl FnMut(usize, usize, usize)) {
    let Ok((oh, ow)) = d.output_hw(h, w, kh, kw) else { return };
    for oy in 0..oh {
        for i in 0..kh {
            let iy = (oy * d.strides[0] + i * d.dilations[0]) as isize - d.pads[0] as isize;
            if iy < 0 || iy >= h as isize {
                continue;
            }
            for ox in 0..ow {
                for j in 0..kw {
                    let ix = (ox * d.strides[1] + j * d.dilations[1]) as isize - d.pads[1] as isize;
                    if ix < 0 || ix >= w as isize {
                        continue;
                    }
                    f(oy * ow + ox, iy as usize * w + ix as usize, i * kw + j);
                }
            }
        }
    }
}

impl CustomOp2 for Depthwise {
    fn name(&self) -> &'static str {
        "depthwise-conv"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> CResult<(CpuStorage, Shape)> {
        let (x, wt) = (elements(s1, l1, "x")?, elements(s2, l2, "w")?);
        let (n, c, h, w) = l1.shape().dims4()?;
        let (_, _, kh, kw) = l2.shape().dims4()?;
        let (oh, ow) = self.0.output_hw(h, w, kh, kw)?;
        let mut y = vec![0f32; n * c * oh * ow];
        for p in 0..n * c {
            let k = &wt[(p % c) * kh * kw..(p % c + 1) * kh * kw];
            let (xi, yo) = (&x[p * h * w..(p + 1) * h * w], &mut y[p * oh * ow..(p + 1) * oh * ow]);
            for_taps(&self.0, h, w, kh, kw, |o, i, t| yo[o] += xi[i] * k[t]);
        }
        Ok((CpuStorage::F32(y), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, x: &Tensor, wt: &Tensor, _res: &Tensor, g: &Tensor) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let (n, c, h, w) = x.dims4()?;
        let (_, _, kh, kw) = wt.dims4()?;
        let (oh, ow) = self.0.output_hw(h, w, kh, kw)?;
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let wv = wt.flatten_all()?.to_vec1::<f32>()?;
        let gv = g.flatten_all()?.to_vec1::<f32>()?;
        let mut dx = vec![0f32; xv.len()];
        let mut dw = vec![0f32; wv.len()];
        for p in 0..n * c {
            let ch = p % c;
            let k = &wv[ch * kh * kw..(ch + 1) * kh * kw];
            let dk = &mut dw[ch * kh * kw..(ch + 1) * kh * kw];
            let (xi, gi) = (&xv[p * h * w..(p + 1) * h * w], &gv[p * oh * ow..(p + 1) * oh * ow]);
            let dxi = &mut dx[p * h * w..(p + 1) * h * w];
            for_taps(&self.0, h, w, kh, kw, |o, i, t| {
                dxi[i] += gi[o] * k[t];
                dk[t] += gi[o] * xi[i];
            });
        }
        Ok((Some(tensor(dx, x.dims())?), Some(tensor(dw, wt.dims())?)))
    }
}

/// Depthwise convolution of `x` (NCHW) with `w` (`[C, 1, KH, KW]`).
pub fn depthwise_conv(x: &Tensor, w: &Tensor, geometry: ConvGeometry) -> CResult<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, Depthwise(geometry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{close, loss, ramp};

    #[test]
    fn batch_norm_matches_the_composite_formulation() {
        let (x, gm, bt) = (ramp(&[3, 4, 5, 5], 1), ramp(&[4], 2), ramp(&[4], 3));
        let (y, mean, var) = batch_norm_train(x.as_tensor(), gm.as_tensor(), bt.as_tensor(), 1e-5).unwrap();
        let xs = x.as_tensor();
        let m = xs.mean_keepdim(3).unwrap().mean_keepdim(2).unwrap().mean_keepdim(0).unwrap();
        let c = xs.broadcast_sub(&m).unwrap();
        let v = c.sqr().unwrap().mean_keepdim(3).unwrap().mean_keepdim(2).unwrap().mean_keepdim(0).unwrap();
        let r = c.broadcast_div(&v.affine(1.0, 1e-5).unwrap().sqrt().unwrap()).unwrap();
        let r = r
            .broadcast_mul(&gm.as_tensor().reshape((1, 4, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&bt.as_tensor().reshape((1, 4, 1, 1)).unwrap())
            .unwrap();
        close(&y, &r, "bn value");
        close(&tensor(mean, &[4]).unwrap(), &m.flatten_all().unwrap(), "bn mean");
        close(&tensor(var, &[4]).unwrap(), &v.flatten_all().unwrap(), "bn var");
        let (g1, g2) = (loss(&y).backward().unwrap(), loss(&r).backward().unwrap());
        for (v, what) in [(&x, "dx"), (&gm, "dgamma"), (&bt, "dbeta")] {
            close(g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap(), what);
        }
    }

    #[test]
    fn channel_bias_matches_broadcast_add() {
        let (x, b) = (ramp(&[2, 3, 4, 4], 1), ramp(&[3], 2));
        let y = channel_bias(x.as_tensor(), b.as_tensor()).unwrap();
        let r = x.as_tensor().broadcast_add(&b.as_tensor().reshape((1, 3, 1, 1)).unwrap()).unwrap();
        close(&y, &r, "bias value");
        let (g1, g2) = (loss(&y).backward().unwrap(), loss(&r).backward().unwrap());
        close(g1.get(b.as_tensor()).unwrap(), g2.get(b.as_tensor()).unwrap(), "dbias");
        close(g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap(), "dx");
    }

    #[test]
    fn depthwise_matches_grouped_convolution() {
        for (s, pads, dil) in [(1, [1, 1, 1, 1], 1), (2, [1, 1, 1, 1], 1), (2, [0, 1, 1, 0], 1), (1, [2, 2, 2, 2], 2)] {
            let (x, w) = (ramp(&[2, 5, 9, 9], 1), ramp(&[5, 1, 3, 3], 2));
            let geo = ConvGeometry { strides: [s, s], pads, dilations: [dil, dil] };
            let y = depthwise_conv(x.as_tensor(), w.as_tensor(), geo).unwrap();
            let [t, l, b, r] = pads;
            let xp = x.as_tensor().pad_with_zeros(2, t, b).unwrap().pad_with_zeros(3, l, r).unwrap();
            let reference = xp.conv2d(w.as_tensor(), 0, s, dil, 5).unwrap();
            assert_eq!(y.dims(), reference.dims());
            close(&y, &reference, "depthwise value");
            let (g1, g2) = (loss(&y).backward().unwrap(), loss(&reference).backward().unwrap());
            close(g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap(), "depthwise dx");
            close(g1.get(w.as_tensor()).unwrap(), g2.get(w.as_tensor()).unwrap(), "depthwise dw");
        }
    }
}
