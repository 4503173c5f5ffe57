//! Dense (and grouped) convolution for training as im2col + matrix multiply.
//!
//! candle's CPU backend computes a convolution's input gradient with a direct transposed
//! convolution and its weight gradient with a convolution whose kernel is the whole output
//! plane; both walk the data one dot product at a time and were about 70 % of a ResNet step.
//! Here the only custom operation is [`Im2Col`] (its backward pass is col2im); the convolution
//! itself is a batched matrix multiply, so the forward pass and both gradients go through
//! candle's GEMM. `tests` checks values and gradients against candle's own `conv2d`.

use crate::cpu::{elements, with_elements};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

type CResult<T> = candle_core::Result<T>;

/// Strides, padding and dilation of a 2-D convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Strides (H, W).
    pub strides: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Dilations (H, W).
    pub dilations: [usize; 2],
}

impl ConvGeometry {
    /// Output height and width for an `h` x `w` input and a `kh` x `kw` kernel; an error when
    /// the (dilated) kernel does not fit the padded input or a stride is zero.
    pub fn output_hw(&self, h: usize, w: usize, kh: usize, kw: usize) -> CResult<(usize, usize)> {
        let ph = h + self.pads[0] + self.pads[2];
        let pw = w + self.pads[1] + self.pads[3];
        if kh == 0 || kw == 0 || self.strides.contains(&0) || self.dilations.contains(&0) {
            return Err(candle_core::Error::Msg(format!("conv: empty kernel, stride or dilation in {self:?}")));
        }
        let (eh, ew) = (self.dilations[0] * (kh - 1) + 1, self.dilations[1] * (kw - 1) + 1);
        if eh > ph || ew > pw {
            return Err(candle_core::Error::Msg(format!(
                "conv: {kh}x{kw} kernel (dilated {eh}x{ew}) larger than the padded {ph}x{pw} input"
            )));
        }
        Ok(((ph - eh) / self.strides[0] + 1, (pw - ew) / self.strides[1] + 1))
    }

    /// For kernel column `j` along an axis: the first and one-past-last output positions whose
    /// input position `o * stride + j * dilation - pad` lies inside `0..len`.
    fn valid_outputs(out: usize, len: usize, stride: usize, offset: isize) -> (usize, usize) {
        // input = o * stride + offset; need 0 <= input < len.
        let first = if offset >= 0 { 0 } else { ((-offset) as usize).div_ceil(stride) };
        let last = if (len as isize) <= offset { 0 } else { ((len as isize - offset) as usize).div_ceil(stride) };
        (first.min(out), last.min(out).max(first.min(out)))
    }
}

/// The shape facts of one im2col: input `[N, C, H, W]`, kernel `KH x KW`, output plane `OH x OW`.
#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
}

/// `[N, C, H, W]` -> `[C * KH * KW, N * OH * OW]`: row `(c * KH + i) * KW + j` holds input
/// channel `c` sampled at kernel tap `(i, j)` for every image and output position (zero in the
/// padding). The batch is in the columns so that the convolution is one matrix multiply per
/// group and the weight gradient one more, with no per-image partial sums to add up.
struct Im2Col {
    geometry: ConvGeometry,
    kh: usize,
    kw: usize,
}

impl Im2Col {
    fn dims(&self, shape: &Shape) -> CResult<Dims> {
        let (n, c, h, w) = shape.dims4()?;
        let (oh, ow) = self.geometry.output_hw(h, w, self.kh, self.kw)?;
        Ok(Dims { n, c, h, w, kh: self.kh, kw: self.kw, oh, ow })
    }

    /// Calls `f(col_row_slice_offset, input_row_offset, ox_range, ix_start)` for every valid run
    /// of one column row: output positions `ox_range` of output row `oy` read input columns
    /// `ix_start + k * stride_w` of one input row. Shared by im2col and col2im so that the two
    /// are exact transposes.
    fn for_runs(&self, d: &Dims, mut f: impl FnMut(usize, usize, std::ops::Range<usize>, usize)) {
        let g = &self.geometry;
        let rows = d.c * d.kh * d.kw;
        let plane = d.oh * d.ow;
        for b in 0..d.n {
            for row in 0..rows {
                let (c, i, j) = (row / (d.kh * d.kw), (row / d.kw) % d.kh, row % d.kw);
                let col_base = (row * d.n + b) * plane;
                let in_plane = (b * d.c + c) * d.h * d.w;
                let off_y = (i * g.dilations[0]) as isize - g.pads[0] as isize;
                let off_x = (j * g.dilations[1]) as isize - g.pads[1] as isize;
                let (y0, y1) = ConvGeometry::valid_outputs(d.oh, d.h, g.strides[0], off_y);
                let (x0, x1) = ConvGeometry::valid_outputs(d.ow, d.w, g.strides[1], off_x);
                if x0 >= x1 {
                    continue;
                }
                for oy in y0..y1 {
                    let iy = (oy * g.strides[0]) as isize + off_y;
                    let ix0 = (x0 * g.strides[1]) as isize + off_x;
                    f(col_base + oy * d.ow, in_plane + iy as usize * d.w, x0..x1, ix0 as usize);
                }
            }
        }
    }
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let x = elements(s, l, "im2col input")?;
        let d = self.dims(l.shape())?;
        let rows = d.c * d.kh * d.kw;
        let mut cols = vec![0f32; d.n * rows * d.oh * d.ow];
        let sx = self.geometry.strides[1];
        self.for_runs(&d, |col, input, xs, ix0| {
            let dst = &mut cols[col + xs.start..col + xs.end];
            if sx == 1 {
                dst.copy_from_slice(&x[input + ix0..input + ix0 + dst.len()]);
            } else {
                for (k, v) in dst.iter_mut().enumerate() {
                    *v = x[input + ix0 + k * sx];
                }
            }
        });
        Ok((CpuStorage::F32(cols), Shape::from((rows, d.n * d.oh * d.ow))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> CResult<Option<Tensor>> {
        let d = self.dims(x.shape())?;
        let sx = self.geometry.strides[1];
        let dx = with_elements(g, "im2col gradient", |gv| {
            let mut dx = vec![0f32; x.elem_count()];
            self.for_runs(&d, |col, input, xs, ix0| {
                let src = &gv[col + xs.start..col + xs.end];
                if sx == 1 {
                    let dst = &mut dx[input + ix0..input + ix0 + src.len()];
                    dst.iter_mut().zip(src).for_each(|(t, v)| *t += v);
                } else {
                    for (k, v) in src.iter().enumerate() {
                        dx[input + ix0 + k * sx] += v;
                    }
                }
            });
            Ok(dx)
        })?;
        Ok(Some(Tensor::from_vec(dx, x.dims(), x.device())?))
    }
}

/// Convolution of `x` (`[N, C, H, W]`) with `w` (`[O, C / groups, KH, KW]`), no bias:
/// im2col, then one batched matrix multiply per group.
pub fn conv2d(x: &Tensor, w: &Tensor, geometry: ConvGeometry, groups: usize) -> CResult<Tensor> {
    let (n, c, _, _) = x.dims4()?;
    let (o, cg, kh, kw) = w.dims4()?;
    if groups == 0 || c % groups != 0 || o % groups != 0 || c / groups != cg {
        return Err(candle_core::Error::Msg(format!(
            "conv: {c} input channels, {o} outputs and {groups} groups do not match a [{o}, {cg}, {kh}, {kw}] kernel"
        )));
    }
    let cols = x.contiguous()?.apply_op1(Im2Col { geometry, kh, kw })?;
    let (oh, ow) = geometry.output_hw(x.dim(2)?, x.dim(3)?, kh, kw)?;
    // [O, N * OH * OW], one group after the other (G * O/G = O rows).
    let y = if groups == 1 {
        w.reshape((o, cg * kh * kw))?.matmul(&cols)?
    } else {
        let cols = cols.reshape((groups, cg * kh * kw, n * oh * ow))?;
        w.reshape((groups, o / groups, cg * kh * kw))?.matmul(&cols)?
    };
    y.reshape((o, n, oh * ow))?.transpose(0, 1)?.contiguous()?.reshape((n, o, oh, ow))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{close, loss, ramp};

    /// candle's direct convolution of the explicitly zero-padded input: the reference. candle's
    /// backward pass fails when the last stride does not reach the padded input's end (its
    /// transposed convolution has no output padding), so the reference first drops the rows and
    /// columns no window reads; they get zero gradient either way.
    fn reference(x: &Tensor, w: &Tensor, geo: ConvGeometry, groups: usize) -> Tensor {
        let (_, _, h, wd) = x.dims4().unwrap();
        let (_, _, kh, kw) = w.dims4().unwrap();
        let (oh, ow) = geo.output_hw(h, wd, kh, kw).unwrap();
        let [t, l, mut b, mut r] = geo.pads;
        let mut x = x.clone();
        for (axis, out, k, before, after) in [(2, oh, kh, t, &mut b), (3, ow, kw, l, &mut r)] {
            let read = (out - 1) * geo.strides[axis - 2] + geo.dilations[axis - 2] * (k - 1) + 1;
            let mut extra = (before + x.dim(axis).unwrap() + *after) - read;
            let cut_pad = extra.min(*after);
            *after -= cut_pad;
            extra -= cut_pad;
            x = x.narrow(axis, 0, x.dim(axis).unwrap() - extra).unwrap();
        }
        let xp = x.pad_with_zeros(2, t, b).unwrap().pad_with_zeros(3, l, r).unwrap();
        assert_eq!(geo.strides[0], geo.strides[1], "candle's conv2d takes one stride");
        xp.conv2d(w, 0, geo.strides[0], geo.dilations[0], groups).unwrap()
    }

    /// Input `[N, C, H, W]`, output channels, kernel, stride, pads, dilation, groups.
    type Case = ([usize; 4], usize, [usize; 2], usize, [usize; 4], usize, usize);

    #[test]
    fn im2col_convolution_matches_candle_values_and_gradients() {
        let cases: [Case; 7] = [
            ([2, 3, 9, 9], 4, [3, 3], 1, [1, 1, 1, 1], 1, 1),
            ([2, 3, 9, 8], 5, [3, 3], 2, [1, 1, 1, 1], 1, 1),
            ([1, 4, 10, 7], 6, [3, 2], 2, [0, 1, 1, 0], 1, 1),
            ([2, 2, 11, 11], 3, [3, 3], 1, [2, 2, 2, 2], 2, 1),
            ([3, 5, 6, 6], 7, [1, 1], 1, [0, 0, 0, 0], 1, 1),
            ([2, 6, 8, 8], 4, [3, 3], 1, [1, 1, 1, 1], 1, 2),
            ([1, 2, 5, 5], 3, [7, 7], 1, [3, 3, 3, 3], 1, 1),
        ];
        for (k, (xs, o, [kh, kw], s, pads, dil, groups)) in cases.into_iter().enumerate() {
            let (x, w) = (ramp(&xs, 1), ramp(&[o, xs[1] / groups, kh, kw], 2));
            let geo = ConvGeometry { strides: [s, s], pads, dilations: [dil, dil] };
            let y = conv2d(x.as_tensor(), w.as_tensor(), geo, groups).unwrap();
            let r = reference(x.as_tensor(), w.as_tensor(), geo, groups);
            close(&y, &r, &format!("case {k}: value"));
            let (g1, g2) = (loss(&y).backward().unwrap(), loss(&r).backward().unwrap());
            close(g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap(), &format!("case {k}: dx"));
            close(g1.get(w.as_tensor()).unwrap(), g2.get(w.as_tensor()).unwrap(), &format!("case {k}: dw"));
        }
    }

    #[test]
    fn unequal_strides_match_a_subsampled_unit_stride_convolution() {
        // candle has no H/W-specific stride; stride (2, 1) is stride 1 keeping every other row.
        let (x, w) = (ramp(&[2, 3, 9, 7], 3), ramp(&[4, 3, 3, 3], 4));
        let pads = [1, 1, 1, 1];
        let y =
            conv2d(x.as_tensor(), w.as_tensor(), ConvGeometry { strides: [2, 1], pads, dilations: [1, 1] }, 1).unwrap();
        let full =
            conv2d(x.as_tensor(), w.as_tensor(), ConvGeometry { strides: [1, 1], pads, dilations: [1, 1] }, 1).unwrap();
        let rows = Tensor::new(&[0u32, 2, 4, 6, 8], x.device()).unwrap();
        close(&y, &full.index_select(&rows, 2).unwrap(), "stride (2, 1)");
    }

    #[test]
    fn mismatched_groups_and_oversized_kernels_are_errors() {
        let (x, w) = (ramp(&[1, 3, 4, 4], 1), ramp(&[4, 3, 3, 3], 2));
        let geo = ConvGeometry { strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
        assert!(conv2d(x.as_tensor(), w.as_tensor(), geo, 2).unwrap_err().to_string().contains("groups"));
        let big = ramp(&[4, 3, 5, 5], 2);
        assert!(conv2d(x.as_tensor(), big.as_tensor(), geo, 1).unwrap_err().to_string().contains("larger than"));
    }
}
