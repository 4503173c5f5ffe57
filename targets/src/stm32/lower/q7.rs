//! Legacy CMSIS_5 q7 lowering of q8 (power-of-two) graphs: `arm_convolve_HWC_q7_basic` /
//! `_fast` / `_RGB` (chosen by their channel constraints), `arm_depthwise_separable_conv_HWC_q7`,
//! `arm_fully_connected_q7`, `arm_maxpool_q7_HWC`, `arm_relu_q7`; a Q-format add helper.
//!
//! The q7 API takes one `bias_shift` and one `out_shift` per layer, square images and kernels,
//! one padding and one stride: layers outside that (per-channel weight formats, rectangular
//! maps, dilation ...) are errors naming the node.

use super::{pow2, Act, Cx, Lay};
use crate::stm32::kernel::*;
use crate::stm32::LowerError;
use clio::ir::{DType, NodeId, QScheme, TensorType, Value};

impl Cx<'_> {
    fn frac(&self, id: NodeId, ty: &TensorType, what: &str) -> Result<i32, LowerError> {
        pow2(ty).ok_or_else(|| {
            self.node_err(id, format!("a per-tensor pow2 i8 {what}, found {}", clio::text::type_string(ty)))
        })
    }

    /// One fractional-bit count for a weight or bias (all channels equal).
    fn frac_uniform(&self, id: NodeId, ty: &TensorType, what: &str) -> Result<i32, LowerError> {
        let q = ty.quant.as_ref().ok_or_else(|| self.node_err(id, format!("a quantized {what}")))?;
        let QScheme::Pow2 { frac_bits } = &q.scheme else {
            return Err(self.node_err(id, format!("a pow2 {what}, found {}", clio::text::type_string(ty))));
        };
        let f = *frac_bits.first().ok_or_else(|| self.node_err(id, format!("a {what} format")))?;
        if frac_bits.iter().any(|x| *x != f) {
            return Err(self.unsupported(
                id,
                format!(
                    "a per-channel {what} format (the q7 API has one shift per layer: quantize{{weights=per-tensor}})"
                ),
            ));
        }
        Ok(f)
    }

    /// `(bias values, bias_shift, out_shift)` of a conv / fully connected layer.
    fn shifts(&self, id: NodeId, w_ty: &TensorType, n: usize) -> Result<(Vec<i8>, i32, i32), LowerError> {
        let fx = self.frac(id, self.operand_ty(id, 0)?, "input")?;
        let fy = self.frac(id, self.result_ty(id)?, "result")?;
        let fw = self.frac_uniform(id, w_ty, "weight")?;
        let out_shift = fx + fw - fy;
        let (bias, bias_shift) = if self.g.operand(id, 2).is_some() {
            let (b, b_ty) = self.weight(id, 2, DType::I8)?;
            if b.len() != n {
                return Err(self.node_err(id, format!("a bias of {n} elements, found {}", b.len())));
            }
            let fb = self.frac_uniform(id, b_ty, "bias")?;
            (b.iter().map(|v| *v as i8).collect(), fx + fw - fb)
        } else {
            (vec![0; n], 0)
        };
        for (name, v) in [("out_shift", out_shift), ("bias_shift", bias_shift)] {
            if !(0..=31).contains(&v) {
                return Err(self.node_err(id, format!("{name} in 0..=31, found {v}")));
            }
        }
        Ok((bias, bias_shift, out_shift))
    }

    pub(super) fn conv_q7(&mut self, id: NodeId, p: &clio::ops::Conv2d) -> Result<(), LowerError> {
        let (loc, din) = self.nhwc(id, 0)?;
        let (w, w_ty) = self.weight(id, 1, DType::I8)?;
        let [o, cg, kh, kw] =
            <[usize; 4]>::try_from(w_ty.shape.as_slice()).map_err(|_| self.node_err(id, "a rank-4 OIHW filter"))?;
        let dout = self.out_dims(id)?;
        if w.len() != o * cg * kh * kw || din.c == 0 {
            return Err(self.node_err(id, format!("a filter of {o}x{cg}x{kh}x{kw} values over a non-empty input")));
        }
        if din.n != 1 || din.h != din.w || dout.h != dout.w || kh != kw || p.strides[0] != p.strides[1] {
            return Err(self.unsupported(id, "a non-square image, kernel or stride, or a batch (the q7 API is square)"));
        }
        if p.pads[0] != p.pads[1] || p.dilations != [1, 1] {
            return Err(self.unsupported(id, "unequal top/left padding or dilation (the q7 API has one padding)"));
        }
        let (weights, depthwise) = self.filter_layout(id, p, din.c, &w, [o, cg, kh, kw])?;
        let f = if depthwise {
            if o != din.c || o % 2 != 0 {
                return Err(self.unsupported(
                    id,
                    format!(
                        "depthwise with {} -> {o} channels (arm_depthwise_separable_conv_HWC_q7: equal, even)",
                        din.c
                    ),
                ));
            }
            ConvQ7Fn::Depthwise
        } else if din.c == 3 {
            ConvQ7Fn::Rgb
        } else if din.c % 4 == 0 && o % 2 == 0 {
            ConvQ7Fn::Fast
        } else {
            ConvQ7Fn::Basic
        };
        let (bias, bias_shift, out_shift) = self.shifts(id, w_ty, o)?;
        if [din.h, din.c, o, kh, dout.h].iter().any(|v| *v > u16::MAX as usize) {
            return Err(self.unsupported(id, "a dimension above 65535 (the q7 API takes uint16)"));
        }
        let k = ConvQ7K {
            f,
            dim_in: din.h,
            ch_in: din.c,
            ch_out: o,
            kernel: kh,
            pad: p.pads[0],
            stride: p.strides[0],
            dim_out: dout.h,
            weights,
            bias,
            bias_shift,
            out_shift,
        };
        let st = self.step(id, Kernel::ConvQ7(k), vec![loc]);
        self.new_buf(id, Lay::Nhwc(dout), dout.len(), st)
    }

    pub(super) fn gemm_q7(&mut self, id: NodeId, p: &clio::ops::Gemm) -> Result<(), LowerError> {
        if p.trans_a || p.alpha != 1.0 || p.beta != 1.0 {
            return Err(self.node_err(id, "alpha = 1, beta = 1 and trans_a = false (the quantize pass folds them)"));
        }
        let a: Act = self.act(id, 0)?;
        let (w, w_ty) = self.weight(id, 1, DType::I8)?;
        let [r, cols] =
            <[usize; 2]>::try_from(w_ty.shape.as_slice()).map_err(|_| self.node_err(id, "a rank-2 weight matrix"))?;
        let (out, depth) = if p.trans_b { (r, cols) } else { (cols, r) };
        if out == 0 || depth == 0 || w.len() != out * depth {
            return Err(self.node_err(id, format!("a non-empty {out}x{depth} weight matrix")));
        }
        let (batch, weights) = self.fc_layout(id, a, &w, p.trans_b, out, depth)?;
        if batch != 1 || depth > u16::MAX as usize || out > u16::MAX as usize {
            return Err(self.unsupported(id, "a batch, or more than 65535 inputs or outputs (arm_fully_connected_q7)"));
        }
        let (bias, bias_shift, out_shift) = self.shifts(id, w_ty, out)?;
        let dout = self.out_dims(id)?;
        let k = FcQ7K { dim_vec: depth, rows: out, weights, bias, bias_shift, out_shift };
        let st = self.step(id, Kernel::FcQ7(k), vec![a.loc]);
        self.new_buf(id, Lay::Nhwc(dout), dout.len(), st)
    }

    pub(super) fn add_q7(&mut self, id: NodeId) -> Result<(), LowerError> {
        let a = self.act(id, 0)?;
        let b = self.act(id, 1)?;
        if a.lay != b.lay || self.operand_ty(id, 0)?.shape != self.operand_ty(id, 1)?.shape {
            return Err(self.unsupported(id, "broadcasting add (operands must have equal shapes)"));
        }
        let fa = self.frac(id, self.operand_ty(id, 0)?, "operand 0")?;
        let fb = self.frac(id, self.operand_ty(id, 1)?, "operand 1")?;
        let fy = self.frac(id, self.result_ty(id)?, "result")?;
        let f = fa.max(fb);
        let (la, lb) = (f - fa, f - fb);
        if la > 31 || lb > 31 || (fy - f).abs() > 31 {
            return Err(self.node_err(id, format!("fractional bits {fa}, {fb} -> {fy} within 31 of each other")));
        }
        let size = match a.lay {
            Lay::Nhwc(d) | Lay::Flat(d) => d.len(),
        };
        let k = AddQ7K { la, lb, shift: f - fy, size };
        let st = self.step(id, Kernel::AddQ7(k), vec![a.loc, b.loc]);
        self.new_buf(id, a.lay, size, st)
    }

    pub(super) fn maxpool_q7(&mut self, id: NodeId, win: &clio::ops::Window2d) -> Result<(), LowerError> {
        let (loc, din) = self.nhwc(id, 0)?;
        if self.operand_ty(id, 0)?.quant != self.result_ty(id)?.quant {
            return Err(self.node_err(id, "the same format for operand and result"));
        }
        let dout = self.out_dims(id)?;
        if din.n != 1 || din.h != din.w || dout.h != dout.w || win.kernel[0] != win.kernel[1] {
            return Err(self.unsupported(id, "a non-square image or window, or a batch (arm_maxpool_q7_HWC)"));
        }
        if win.strides[0] != win.strides[1] || win.pads[0] != win.pads[1] {
            return Err(self.unsupported(id, "unequal strides or top/left padding (arm_maxpool_q7_HWC)"));
        }
        // arm_maxpool_q7_HWC pools along x in place in its input: the input must die here.
        let x: Value = self.operand(id, 0)?;
        let Loc::Buf(bx) = loc else {
            return Err(self.unsupported(id, "max pooling of the module input (arm_maxpool_q7_HWC overwrites it)"));
        };
        let aliases = self.acts.values().filter(|a| a.loc == Loc::Buf(bx)).count();
        if self.g.use_count(x) != 1 || aliases != 1 {
            return Err(self.unsupported(id, "an operand read elsewhere too (arm_maxpool_q7_HWC overwrites it)"));
        }
        let k = MaxPoolQ7K {
            dim_in: din.h,
            ch: din.c,
            kernel: win.kernel[0],
            pad: win.pads[0],
            stride: win.strides[0],
            dim_out: dout.h,
        };
        let st = self.step(id, Kernel::MaxPoolQ7(k), vec![loc]);
        self.new_buf(id, Lay::Nhwc(dout), dout.len(), st)
    }
}
