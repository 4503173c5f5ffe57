//! `conv2d`: NCHW input, OIHW filter, optional bias; strides, dilations, asymmetric zero
//! padding and groups as in ONNX Conv / PyTorch Conv2d.
//!
//! Two kernels:
//! * depthwise-like convolutions (one input channel per group, several groups) run a direct
//!   loop that accumulates whole output rows per filter tap;
//! * everything else lowers each (image, group) to one matrix product
//!   `W_g [O/g, C/g*KH*KW] x cols [C/g*KH*KW, OH*OW]` through im2col and sgemm, with the column
//!   buffer built in blocks of output positions so that it never exceeds a fixed budget; 1x1
//!   stride-1 unpadded convolutions use the input directly as the column matrix.

use super::linear::{sgemm, Mat};
use super::{f32_tensor, f32s};
use crate::interp::shared::numel;
use crate::ir::Tensor;
use crate::ops::{conv_out_dim, Conv2d};

/// Largest stride, pad or dilation accepted (keeps index arithmetic far from overflow).
pub(crate) const MAX_ATTR: usize = 1 << 30;

/// Column-buffer budget in elements (16 MiB of f32).
const IM2COL_BUDGET: usize = 1 << 22;

/// Convolution geometry of one call.
#[derive(Clone, Copy, Debug)]
struct Geo {
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    cg: usize,
    og: usize,
    groups: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    pt: usize,
    pl: usize,
    oh: usize,
    ow: usize,
}

fn dims4(t: &Tensor, what: &str) -> Result<[usize; 4], String> {
    <[usize; 4]>::try_from(t.shape()).map_err(|_| format!("{what} must have rank 4, got {:?}", t.shape()))
}

/// Output positions `ox` with `0 <= ox * s + off < w`, clipped to `0..ow`.
fn valid_range(off: isize, s: usize, w: usize, ow: usize) -> (usize, usize) {
    let s = s as isize;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let room = w as isize - off;
    let hi = if room <= 0 { 0 } else { (room + s - 1) / s };
    let lo = (lo as usize).min(ow);
    let hi = (hi as usize).min(ow);
    (lo, hi.max(lo))
}

/// 2-D convolution (see the module docs).
pub(crate) fn conv2d(p: &Conv2d, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor, String> {
    conv2d_with_cap(p, x, w, b, IM2COL_BUDGET)
}

/// [`conv2d`] with an explicit column-buffer budget (tests use tiny ones to exercise blocking).
pub(crate) fn conv2d_with_cap(
    p: &Conv2d,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    budget: usize,
) -> Result<Tensor, String> {
    let xd = f32s(x, "conv2d input")?;
    let wd = f32s(w, "conv2d filter")?;
    let bd = match b {
        Some(b) => Some(f32s(b, "conv2d bias")?),
        None => None,
    };
    let [n, c, h, wi] = dims4(x, "conv2d input")?;
    let [o, cg, kh, kw] = dims4(w, "conv2d filter")?;
    if p.strides.iter().chain(&p.pads).chain(&p.dilations).any(|v| *v > MAX_ATTR) {
        return Err(format!(
            "strides {:?}, pads {:?} and dilations {:?} must be at most {MAX_ATTR}",
            p.strides, p.pads, p.dilations
        ));
    }
    let groups = p.groups;
    if groups == 0 || c % groups != 0 || o % groups != 0 || cg * groups != c {
        return Err(format!("groups = {groups} does not match input channels {c}, filter {:?}", w.shape()));
    }
    if let Some(bd) = bd {
        if bd.len() != o {
            return Err(format!("bias has {} entries, expected {o}", bd.len()));
        }
    }
    let misfit = || format!("kernel {kh}x{kw} does not fit input {:?}", x.shape());
    let oh = conv_out_dim(h, kh, p.strides[0], p.dilations[0], (p.pads[0], p.pads[2]), false).ok_or_else(misfit)?;
    let ow = conv_out_dim(wi, kw, p.strides[1], p.dilations[1], (p.pads[1], p.pads[3]), false).ok_or_else(misfit)?;
    let geo = Geo {
        c,
        h,
        w: wi,
        o,
        cg,
        og: o / groups,
        groups,
        kh,
        kw,
        sh: p.strides[0],
        sw: p.strides[1],
        dh: p.dilations[0],
        dw: p.dilations[1],
        pt: p.pads[0],
        pl: p.pads[1],
        oh,
        ow,
    };
    let out_shape = [n, o, oh, ow];
    let plane = oh * ow;
    let total = numel(&out_shape)?;
    if xd.len() != numel(x.shape())? || wd.len() != numel(w.shape())? {
        return Err("internal error: operand sizes".into());
    }
    let mut out = vec![0.0f32; total];
    if total == 0 {
        return f32_tensor(&out_shape, out);
    }
    if let Some(bd) = bd {
        for (i, chunk) in out.chunks_mut(plane).enumerate() {
            chunk.fill(bd[i % o]);
        }
    }
    if cg == 1 && groups > 1 {
        depthwise(&geo, n, xd, wd, &mut out);
    } else {
        im2col_gemm(&geo, n, xd, wd, &mut out, budget.max(1))?;
    }
    f32_tensor(&out_shape, out)
}

/// Direct convolution for one input channel per group (depthwise, with any multiplier).
fn depthwise(g: &Geo, n: usize, xd: &[f32], wd: &[f32], out: &mut [f32]) {
    let (hw_in, hw_out, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    for ni in 0..n {
        for gi in 0..g.groups {
            let xp = &xd[(ni * g.c + gi) * hw_in..][..hw_in];
            for m in 0..g.og {
                let oc = gi * g.og + m;
                let wk = &wd[oc * taps..][..taps];
                let op = &mut out[(ni * g.o + oc) * hw_out..][..hw_out];
                for oy in 0..g.oh {
                    let orow = &mut op[oy * g.ow..][..g.ow];
                    for ki in 0..g.kh {
                        let iy = (oy * g.sh + ki * g.dh) as isize - g.pt as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        let xrow = &xp[iy as usize * g.w..][..g.w];
                        for kj in 0..g.kw {
                            let wv = wk[ki * g.kw + kj];
                            let off = (kj * g.dw) as isize - g.pl as isize;
                            let (lo, hi) = valid_range(off, g.sw, g.w, g.ow);
                            if lo >= hi {
                                continue;
                            }
                            let start = (lo * g.sw) as isize + off;
                            let start = start as usize;
                            if g.sw == 1 {
                                for (o, xv) in orow[lo..hi].iter_mut().zip(&xrow[start..start + (hi - lo)]) {
                                    *o += wv * xv;
                                }
                            } else {
                                for (o, xv) in orow[lo..hi].iter_mut().zip(xrow[start..].iter().step_by(g.sw)) {
                                    *o += wv * xv;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Fills `col` (`K` rows of `j1 - j0` columns) with the im2col columns of output positions
/// `j0..j1` (flattened `oy * ow + ox`) of one group's input `xg` (`cg` planes).
fn fill_cols(g: &Geo, xg: &[f32], col: &mut [f32], j0: usize, j1: usize) {
    let nb = j1 - j0;
    let hw = g.h * g.w;
    let (first_row, last_row) = (j0 / g.ow, (j1 - 1) / g.ow);
    for ci in 0..g.cg {
        let plane = &xg[ci * hw..][..hw];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let r = (ci * g.kh + ki) * g.kw + kj;
                let dst = &mut col[r * nb..][..nb];
                let off = (kj * g.dw) as isize - g.pl as isize;
                let (lo, hi) = valid_range(off, g.sw, g.w, g.ow);
                for oy in first_row..=last_row {
                    let row0 = oy * g.ow;
                    let (a, bnd) = (j0.max(row0) - row0, j1.min(row0 + g.ow) - row0);
                    let seg = &mut dst[row0 + a - j0..row0 + bnd - j0];
                    let iy = (oy * g.sh + ki * g.dh) as isize - g.pt as isize;
                    if iy < 0 || iy >= g.h as isize {
                        seg.fill(0.0);
                        continue;
                    }
                    let xrow = &plane[iy as usize * g.w..][..g.w];
                    // Within a..bnd: zeros before lo, input lo..hi, zeros from hi.
                    let (vlo, vhi) = (lo.clamp(a, bnd), hi.clamp(a, bnd).max(lo.clamp(a, bnd)));
                    seg[..vlo - a].fill(0.0);
                    seg[vhi - a..].fill(0.0);
                    if vlo < vhi {
                        let start = ((vlo * g.sw) as isize + off) as usize;
                        let mid = &mut seg[vlo - a..vhi - a];
                        if g.sw == 1 {
                            mid.copy_from_slice(&xrow[start..start + (vhi - vlo)]);
                        } else {
                            for (d, xv) in mid.iter_mut().zip(xrow[start..].iter().step_by(g.sw)) {
                                *d = *xv;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// im2col + sgemm per (image, group), accumulating onto `out` (pre-filled with the bias).
fn im2col_gemm(g: &Geo, n: usize, xd: &[f32], wd: &[f32], out: &mut [f32], budget: usize) -> Result<(), String> {
    let k = g.cg * g.kh * g.kw;
    let cols = g.oh * g.ow;
    let hw = g.h * g.w;
    let direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && cols == hw;
    let block = if direct { cols } else { (budget / k.max(1)).clamp(1, cols) };
    let mut col = if direct { Vec::new() } else { vec![0.0f32; k * block] };
    for ni in 0..n {
        for gi in 0..g.groups {
            let xg = &xd[(ni * g.c + gi * g.cg) * hw..][..g.cg * hw];
            let wm = Mat { data: wd, off: gi * g.og * k, rs: k, cs: 1 };
            let out_off = (ni * g.o + gi * g.og) * cols;
            if direct {
                let xm = Mat { data: xg, off: 0, rs: cols, cs: 1 };
                sgemm(g.og, k, cols, 1.0, wm, xm, 1.0, out, out_off, cols)?;
                continue;
            }
            let mut j0 = 0;
            while j0 < cols {
                let j1 = (j0 + block).min(cols);
                let nb = j1 - j0;
                let buf = &mut col[..k * nb];
                fill_cols(g, xg, buf, j0, j1);
                let cm = Mat { data: buf, off: 0, rs: nb, cs: 1 };
                sgemm(g.og, k, nb, 1.0, wm, cm, 1.0, out, out_off + j0, cols)?;
                j0 = j1;
            }
        }
    }
    Ok(())
}
