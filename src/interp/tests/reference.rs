//! Naive reference implementations in f64, written from the ONNX / PyTorch definitions and
//! independently of the interpreter's kernels: every output element is computed by its own
//! loop over index tuples.

/// Row-major unravel of flat index `i`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

/// Row-major flat index.
pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (i, d)| acc * d + i)
}

pub fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// Output size, written from PyTorch's pooling_output_shape.
pub fn out_size(input: usize, k: usize, s: usize, d: usize, pb: usize, pe: usize, ceil: bool) -> usize {
    let eff = (d * (k - 1) + 1) as i64;
    let num = (input + pb + pe) as i64 - eff;
    let s = s as i64;
    let mut out = if ceil { (num + s - 1).div_euclid(s) + 1 } else { num.div_euclid(s) + 1 };
    if ceil && (out - 1) * s >= (input + pb) as i64 {
        out -= 1;
    }
    out as usize
}

/// Conv2d, NCHW / OIHW.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    ws: [usize; 4],
    b: Option<&[f32]>,
    strides: [usize; 2],
    pads: [usize; 4],
    dil: [usize; 2],
    groups: usize,
) -> (Vec<usize>, Vec<f64>) {
    let [n, _, h, wd] = xs;
    let [o, cg, kh, kw] = ws;
    let oh = out_size(h, kh, strides[0], dil[0], pads[0], pads[2], false);
    let ow = out_size(wd, kw, strides[1], dil[1], pads[1], pads[3], false);
    let og = o / groups;
    let shape = vec![n, o, oh, ow];
    let mut out = vec![0.0; numel(&shape)];
    for ni in 0..n {
        for oc in 0..o {
            let g = oc / og;
            for y in 0..oh {
                for xx in 0..ow {
                    let mut acc = b.map(|b| b[oc] as f64).unwrap_or(0.0);
                    for ci in 0..cg {
                        let ic = g * cg + ci;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * strides[0] + ky * dil[0]) as i64 - pads[0] as i64;
                                let ix = (xx * strides[1] + kx * dil[1]) as i64 - pads[1] as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wd as i64 {
                                    continue;
                                }
                                let xv = x[ravel(&[ni, ic, iy as usize, ix as usize], &xs)] as f64;
                                let wv = w[ravel(&[oc, ci, ky, kx], &ws)] as f64;
                                acc += xv * wv;
                            }
                        }
                    }
                    out[ravel(&[ni, oc, y, xx], &shape)] = acc;
                }
            }
        }
    }
    (shape, out)
}

/// Max or average pooling, transcribed from PyTorch's CPU kernels (avg_pool2d's
/// `hend = min(hstart + kH, iH + padH)` divisor rule generalised to asymmetric pads).
#[allow(clippy::too_many_arguments)]
pub fn pool(
    x: &[f32],
    xs: [usize; 4],
    k: [usize; 2],
    s: [usize; 2],
    pads: [usize; 4],
    ceil: bool,
    avg: Option<bool>,
) -> (Vec<usize>, Vec<f64>) {
    let [n, c, h, w] = xs;
    let oh = out_size(h, k[0], s[0], 1, pads[0], pads[2], ceil);
    let ow = out_size(w, k[1], s[1], 1, pads[1], pads[3], ceil);
    let shape = vec![n, c, oh, ow];
    let mut out = vec![0.0; numel(&shape)];
    for ni in 0..n {
        for ci in 0..c {
            for y in 0..oh {
                for xx in 0..ow {
                    let hstart = (y * s[0]) as i64 - pads[0] as i64;
                    let wstart = (xx * s[1]) as i64 - pads[1] as i64;
                    let hend = (hstart + k[0] as i64).min((h + pads[2]) as i64);
                    let wend = (wstart + k[1] as i64).min((w + pads[3]) as i64);
                    let pool_size = (hend - hstart) * (wend - wstart);
                    let (hs, ws) = (hstart.max(0), wstart.max(0));
                    let (he, we) = (hend.min(h as i64), wend.min(w as i64));
                    let mut m = f64::NEG_INFINITY;
                    let mut sum = 0.0;
                    for iy in hs..he {
                        for ix in ws..we {
                            let v = x[ravel(&[ni, ci, iy as usize, ix as usize], &xs)] as f64;
                            m = m.max(v);
                            sum += v;
                        }
                    }
                    out[ravel(&[ni, ci, y, xx], &shape)] = match avg {
                        None => m,
                        Some(true) => sum / pool_size as f64,
                        Some(false) => sum / ((he - hs) * (we - ws)) as f64,
                    };
                }
            }
        }
    }
    (shape, out)
}

/// NumPy broadcast of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
            let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
            if da == 1 {
                db
            } else {
                assert!(db == 1 || db == da);
                da
            }
        })
        .collect()
}

/// Index into an operand of shape `s` for output index `idx` under broadcasting.
pub fn bidx(idx: &[usize], s: &[usize]) -> usize {
    let lead = idx.len() - s.len();
    let own: Vec<usize> = s.iter().enumerate().map(|(d, n)| if *n == 1 { 0 } else { idx[lead + d] }).collect();
    ravel(&own, s)
}

/// Element-wise binary op with broadcasting.
pub fn binary(
    a: &[f32],
    ash: &[usize],
    b: &[f32],
    bsh: &[usize],
    f: impl Fn(f64, f64) -> f64,
) -> (Vec<usize>, Vec<f64>) {
    let shape = broadcast(ash, bsh);
    let out = (0..numel(&shape))
        .map(|i| {
            let idx = unravel(i, &shape);
            f(a[bidx(&idx, ash)] as f64, b[bidx(&idx, bsh)] as f64)
        })
        .collect();
    (shape, out)
}

/// NumPy matmul.
pub fn matmul(a: &[f32], ash: &[usize], b: &[f32], bsh: &[usize]) -> (Vec<usize>, Vec<f64>) {
    let a2: Vec<usize> = if ash.len() == 1 { vec![1, ash[0]] } else { ash.to_vec() };
    let b2: Vec<usize> = if bsh.len() == 1 { vec![bsh[0], 1] } else { bsh.to_vec() };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let n = b2[b2.len() - 1];
    let batch = broadcast(&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let mut full = batch.clone();
    full.extend([m, n]);
    let mut out = vec![0.0; numel(&full)];
    for (i, o) in out.iter_mut().enumerate() {
        let idx = unravel(i, &full);
        let (bi, r, cidx) = (&idx[..batch.len()], idx[batch.len()], idx[batch.len() + 1]);
        let mut acc = 0.0;
        for l in 0..k {
            let mut ia = bi.to_vec();
            ia.extend([r, l]);
            let mut ib = bi.to_vec();
            ib.extend([l, cidx]);
            acc += a[bidx(&ia, &a2)] as f64 * b[bidx(&ib, &b2)] as f64;
        }
        *o = acc;
    }
    let mut shape = batch;
    if ash.len() > 1 {
        shape.push(m);
    }
    if bsh.len() > 1 {
        shape.push(n);
    }
    (shape, out)
}

/// Transpose: output axis i is input axis perm[i].
pub fn transpose(x: &[f32], s: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<f64>) {
    let shape: Vec<usize> = perm.iter().map(|p| s[*p]).collect();
    let out = (0..numel(&shape))
        .map(|i| {
            let oi = unravel(i, &shape);
            let mut ii = vec![0; s.len()];
            for (d, p) in perm.iter().enumerate() {
                ii[*p] = oi[d];
            }
            x[ravel(&ii, s)] as f64
        })
        .collect();
    (shape, out)
}

/// NumPy `np.pad` with mode constant / reflect / edge.
pub fn pad(x: &[f32], s: &[usize], pads: &[usize], mode: &str, value: f32) -> (Vec<usize>, Vec<f64>) {
    let r = s.len();
    let shape: Vec<usize> = (0..r).map(|d| s[d] + pads[d] + pads[d + r]).collect();
    let out = (0..numel(&shape))
        .map(|i| {
            let oi = unravel(i, &shape);
            let mut ii = Vec::with_capacity(r);
            for d in 0..r {
                let mut p = oi[d] as i64 - pads[d] as i64;
                let n = s[d] as i64;
                match mode {
                    "edge" => p = p.clamp(0, n - 1),
                    "reflect" => {
                        while p < 0 || p >= n {
                            if p < 0 {
                                p = -p;
                            }
                            if p >= n {
                                p = 2 * (n - 1) - p;
                            }
                        }
                    }
                    _ => {
                        if p < 0 || p >= n {
                            return value as f64;
                        }
                    }
                }
                ii.push(p as usize);
            }
            x[ravel(&ii, s)] as f64
        })
        .collect();
    (shape, out)
}

/// Softmax along `axis`.
pub fn softmax(x: &[f32], s: &[usize], axis: usize) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let idx = unravel(i, s);
            let mut j = idx.clone();
            let vals: Vec<f64> = (0..s[axis])
                .map(|k| {
                    j[axis] = k;
                    x[ravel(&j, s)] as f64
                })
                .collect();
            let m = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = vals.iter().map(|v| (v - m).exp()).sum();
            (x[i] as f64 - m).exp() / sum
        })
        .collect()
}
