//! IR -> [`Program`]: walks the device graph in topological order and turns every node into a
//! CMSIS-NN call with its parameters computed (or an alias, for ops that only relabel memory).
//!
//! Layout: the IR is NCHW, CMSIS-NN is NHWC. Every activation is stored NHWC; a rank-2 value
//! `[N, K]` is NHWC with `H = W = 1`. `flatten` of an `[N, C, H, W]` value with `H * W > 1`
//! changes nothing in memory: the value is marked *flattened NHWC*, and the `gemm` that reads
//! it gets its weight columns permuted at compile time (TFLite's converter does the same), so
//! no transpose runs on the device. Filters become OHWI, depthwise filters `[1, H, W, C_OUT]`.
//!
//! With [`CmsisApi::LegacyQ7`] the same walk handles q8 (power-of-two) graphs and the
//! convolution, fully connected, add and max pool nodes go to `q7.rs`.

mod q7;

use super::kernel::*;
use super::LowerError;
use clio::interp::int::{pow2_mean_params, softmax_params};
use clio::ir::{DType, Graph, NodeId, Op, QScheme, TensorData, TensorType, Value};
use clio::quant::math::{quantize_affine, quantize_multiplier, requant_params};
use clio::Module;
use std::collections::HashMap;

/// The physical layout of an activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lay {
    /// NHWC storage of an IR `[N, C, H, W]` (or `[N, C]` with `H = W = 1`).
    Nhwc(Dims),
    /// An IR `[N, C * H * W]` (from `flatten`) whose memory is still NHWC of `[N, C, H, W]`.
    Flat(Dims),
}

#[derive(Clone, Copy, Debug)]
struct Act {
    loc: Loc,
    lay: Lay,
}

struct Cx<'a> {
    api: CmsisApi,
    m: &'a Module,
    g: &'a Graph,
    acts: HashMap<Value, Act>,
    steps: Vec<Step>,
    buffers: Vec<usize>,
    /// The step that writes each buffer.
    producer: HashMap<usize, usize>,
    input: Option<InputInfo>,
}

/// Per-tensor affine parameters of an i8 type.
fn affine(ty: &TensorType) -> Option<(f32, i32)> {
    if ty.dtype != DType::I8 {
        return None;
    }
    let q = ty.quant.as_ref()?;
    match (&q.scheme, q.axis) {
        (QScheme::Affine { scales, zero_points }, None) => Some((*scales.first()?, *zero_points.first()?)),
        _ => None,
    }
}

/// Fractional bits of a per-tensor pow2 i8 type.
fn pow2(ty: &TensorType) -> Option<i32> {
    if ty.dtype != DType::I8 {
        return None;
    }
    let q = ty.quant.as_ref()?;
    match (&q.scheme, q.axis) {
        (QScheme::Pow2 { frac_bits }, None) => frac_bits.first().copied(),
        _ => None,
    }
}

/// `Dims` of an IR activation shape (rank 4 NCHW or rank 2).
fn dims_of(shape: &[usize]) -> Option<Dims> {
    match shape {
        [n, c, h, w] => Some(Dims::new(*n, *h, *w, *c)),
        [n, k] => Some(Dims::new(*n, 1, 1, *k)),
        _ => None,
    }
}

fn sanitize_types(ty: &TensorType) -> String {
    clio::text::type_string(ty)
}

impl<'a> Cx<'a> {
    fn node_err(&self, id: NodeId, message: impl Into<String>) -> LowerError {
        let n = self.g.node(id);
        LowerError::Invalid {
            graph: self.g.name().to_string(),
            node: n.name().to_string(),
            op: n.op.name().to_string(),
            message: message.into(),
        }
    }

    fn unsupported(&self, id: NodeId, message: impl Into<String>) -> LowerError {
        let n = self.g.node(id);
        LowerError::Unsupported {
            graph: self.g.name().to_string(),
            node: n.name().to_string(),
            op: n.op.name().to_string(),
            message: message.into(),
        }
    }

    fn result_ty(&self, id: NodeId) -> Result<&'a TensorType, LowerError> {
        self.g.node(id).results.first().ok_or_else(|| self.node_err(id, "a node with one result"))
    }

    /// Per-tensor parameters of an activation type in the API's scheme: affine `(scale, zero
    /// point)` for s8, `(2^-frac, 0)` for legacy q7 (exact: powers of two).
    fn params(&self, ty: &TensorType) -> Option<(f32, i32)> {
        match self.api {
            CmsisApi::S8 => affine(ty),
            CmsisApi::LegacyQ7 => pow2(ty).map(|f| (2f32.powi(-f), 0)),
        }
    }

    fn scheme_hint(&self) -> &'static str {
        match self.api {
            CmsisApi::S8 => "i8 per-tensor affine (run quantize{scheme=int8})",
            CmsisApi::LegacyQ7 => "i8 per-tensor pow2 (run quantize{scheme=q8}, legacy q7 API)",
        }
    }

    /// The activation parameters of the node's result.
    fn result_q(&self, id: NodeId) -> Result<(f32, i32), LowerError> {
        let ty = self.result_ty(id)?;
        self.params(ty)
            .ok_or_else(|| self.node_err(id, format!("an {} result, found {}", self.scheme_hint(), sanitize_types(ty))))
    }

    fn operand(&self, id: NodeId, slot: usize) -> Result<Value, LowerError> {
        self.g.operand(id, slot).ok_or_else(|| self.node_err(id, format!("operand {slot}")))
    }

    fn operand_ty(&self, id: NodeId, slot: usize) -> Result<&'a TensorType, LowerError> {
        let v = self.operand(id, slot)?;
        self.g.value_type(v).ok_or_else(|| self.node_err(id, format!("a typed operand {slot}")))
    }

    fn operand_q(&self, id: NodeId, slot: usize) -> Result<(f32, i32), LowerError> {
        let ty = self.operand_ty(id, slot)?;
        self.params(ty).ok_or_else(|| {
            self.node_err(id, format!("an {} operand {slot}, found {}", self.scheme_hint(), sanitize_types(ty)))
        })
    }

    fn act(&self, id: NodeId, slot: usize) -> Result<Act, LowerError> {
        let v = self.operand(id, slot)?;
        self.acts.get(&v).copied().ok_or_else(|| {
            let ty = self.g.value_type(v).map(sanitize_types).unwrap_or_default();
            self.node_err(id, format!("operand {slot} to be an int8 activation computed on the device, found {ty}"))
        })
    }

    /// The operand as NHWC dims (not flattened).
    fn nhwc(&self, id: NodeId, slot: usize) -> Result<(Loc, Dims), LowerError> {
        match self.act(id, slot)? {
            Act { loc, lay: Lay::Nhwc(d) } => Ok((loc, d)),
            Act { lay: Lay::Flat(_), .. } => {
                Err(self.unsupported(id, "a flattened [N, C*H*W] operand (only gemm reads flattened values)"))
            }
        }
    }

    /// Constant data of a weight operand, as i32 values, with its type.
    fn weight(&self, id: NodeId, slot: usize, dtype: DType) -> Result<(Vec<i32>, &'a TensorType), LowerError> {
        let v = self.operand(id, slot)?;
        let name = self
            .g
            .weight_name(v)
            .ok_or_else(|| self.unsupported(id, format!("operand {slot} must be a constant weight")))?;
        let w = self.m.weight(name).ok_or_else(|| self.node_err(id, format!("weight @{name} to exist")))?;
        let ty = self.g.value_type(v).ok_or_else(|| self.node_err(id, format!("a typed weight @{name}")))?;
        if ty.dtype != dtype {
            return Err(self.node_err(id, format!("weight @{name} to be {dtype}, found {}", sanitize_types(ty))));
        }
        let data = match w.data().data() {
            TensorData::I8(v) => v.iter().map(|x| *x as i32).collect(),
            TensorData::I32(v) => v.clone(),
            _ => return Err(self.node_err(id, format!("weight @{name} to hold {dtype} data"))),
        };
        Ok((data, ty))
    }

    /// Per-output-channel weight scales (`n` entries), requiring zero points of 0.
    fn weight_scales(&self, id: NodeId, ty: &TensorType, axis: usize, n: usize) -> Result<Vec<f32>, LowerError> {
        let q = ty.quant.as_ref().ok_or_else(|| self.node_err(id, "quantized weights"))?;
        let QScheme::Affine { scales, zero_points } = &q.scheme else {
            return Err(self.node_err(id, format!("affine (int8) weights, found {}", sanitize_types(ty))));
        };
        if zero_points.iter().any(|z| *z != 0) {
            return Err(self.node_err(id, "symmetric weights (zero point 0), as CMSIS-NN s8 kernels require"));
        }
        let first = *scales.first().ok_or_else(|| self.node_err(id, "at least one weight scale"))?;
        match q.axis {
            None => Ok(vec![first; n]),
            Some(a) if a == axis && scales.len() == n => Ok(scales.clone()),
            Some(a) => {
                Err(self.node_err(id, format!("weights quantized per tensor or along axis {axis}, found axis {a}")))
            }
        }
    }

    fn new_buf(&mut self, id: NodeId, lay: Lay, bytes: usize, step: Step) -> Result<(), LowerError> {
        let b = self.buffers.len();
        self.buffers.push(bytes);
        let mut step = step;
        step.output = Loc::Buf(b);
        self.producer.insert(b, self.steps.len());
        self.steps.push(step);
        self.acts.insert(Value::of(id), Act { loc: Loc::Buf(b), lay });
        Ok(())
    }

    fn step(&self, id: NodeId, kernel: Kernel, inputs: Vec<Loc>) -> Step {
        let n = self.g.node(id);
        Step { node: n.name().to_string(), op: n.op.name().to_string(), kernel, inputs, output: Loc::Input }
    }

    fn out_dims(&self, id: NodeId) -> Result<Dims, LowerError> {
        let ty = self.result_ty(id)?;
        dims_of(&ty.shape).ok_or_else(|| self.unsupported(id, format!("a result of rank {} (only 2 or 4)", ty.rank())))
    }

    fn conv(&mut self, id: NodeId, p: &clio::ops::Conv2d) -> Result<(), LowerError> {
        let (loc, din) = self.nhwc(id, 0)?;
        let (sx, zx) = self.operand_q(id, 0)?;
        let (sy, zy) = self.result_q(id)?;
        let (w, w_ty) = self.weight(id, 1, DType::I8)?;
        let [o, cg, kh, kw] =
            <[usize; 4]>::try_from(w_ty.shape.as_slice()).map_err(|_| self.node_err(id, "a rank-4 OIHW filter"))?;
        let dout = self.out_dims(id)?;
        if w.len() != o * cg * kh * kw || din.c == 0 {
            return Err(self.node_err(id, format!("a filter of {o}x{cg}x{kh}x{kw} values over a non-empty input")));
        }
        let scales = self.weight_scales(id, w_ty, 0, o)?;
        let bias = if self.g.operand(id, 2).is_some() {
            let (b, _) = self.weight(id, 2, DType::I32)?;
            if b.len() != o {
                return Err(self.node_err(id, format!("a bias of {o} elements, found {}", b.len())));
            }
            b
        } else {
            vec![0; o]
        };
        let (mult, shift): (Vec<i32>, Vec<i32>) = scales.iter().map(|s| requant_params(sx, *s, sy)).unzip();
        let c = din.c;
        let (kernel_weights, depthwise) = self.filter_layout(id, p, c, &w, [o, cg, kh, kw])?;
        if dout.c != o || dout.n != din.n {
            return Err(self.node_err(id, format!("a result with {o} channels, found {}", dout.c)));
        }
        let k = ConvK {
            input: din,
            filter: Dims::new(if depthwise { 1 } else { o }, kh, kw, if depthwise { o } else { c }),
            output: dout,
            stride: p.strides,
            pad: [p.pads[0], p.pads[1]],
            dilation: p.dilations,
            input_offset: -zx,
            output_offset: zy,
            act: (-128, 127),
            ch_mult: if depthwise { o / c } else { 1 },
            weights: kernel_weights,
            bias,
            mult,
            shift,
        };
        let kernel = if depthwise { Kernel::DwConv(k) } else { Kernel::Conv(k) };
        let st = self.step(id, kernel, vec![loc]);
        self.new_buf(id, Lay::Nhwc(dout), dout.len(), st)
    }

    /// Conv filters in CMSIS-NN's layout: OIHW -> OHWI (groups 1), or `[C_OUT, 1, H, W]` ->
    /// `[1, H, W, C_OUT]` (depthwise; the flag is true).
    fn filter_layout(
        &self,
        id: NodeId,
        p: &clio::ops::Conv2d,
        c: usize,
        w: &[i32],
        [o, cg, kh, kw]: [usize; 4],
    ) -> Result<(Vec<i8>, bool), LowerError> {
        let groups = p.groups.max(1);
        Ok(if groups == 1 && cg == c {
            // OIHW -> OHWI.
            let mut t = vec![0i8; w.len()];
            for oc in 0..o {
                for ci in 0..cg {
                    for y in 0..kh {
                        for x in 0..kw {
                            t[((oc * kh + y) * kw + x) * cg + ci] = w[((oc * cg + ci) * kh + y) * kw + x] as i8;
                        }
                    }
                }
            }
            (t, false)
        } else if groups == c && cg == 1 && o % c == 0 {
            // [C_OUT, 1, H, W] -> [1, H, W, C_OUT].
            let mut t = vec![0i8; w.len()];
            for oc in 0..o {
                for y in 0..kh {
                    for x in 0..kw {
                        t[(y * kw + x) * o + oc] = w[(oc * kh + y) * kw + x] as i8;
                    }
                }
            }
            (t, true)
        } else {
            return Err(self.unsupported(
                id,
                format!("grouped convolution with groups = {groups} over {c} channels (CMSIS-NN has groups = 1 and depthwise)"),
            ));
        })
    }

    fn gemm(&mut self, id: NodeId, p: &clio::ops::Gemm) -> Result<(), LowerError> {
        if p.trans_a || p.alpha != 1.0 || p.beta != 1.0 {
            return Err(self.node_err(id, "alpha = 1, beta = 1 and trans_a = false (the quantize pass folds them)"));
        }
        let a = self.act(id, 0)?;
        let (sx, zx) = self.operand_q(id, 0)?;
        let (sy, zy) = self.result_q(id)?;
        let (w, w_ty) = self.weight(id, 1, DType::I8)?;
        let [r, cols] =
            <[usize; 2]>::try_from(w_ty.shape.as_slice()).map_err(|_| self.node_err(id, "a rank-2 weight matrix"))?;
        let (out, depth) = if p.trans_b { (r, cols) } else { (cols, r) };
        let scales = self.weight_scales(id, w_ty, if p.trans_b { 0 } else { 1 }, out)?;
        if out == 0 || depth == 0 || w.len() != out * depth {
            return Err(self.node_err(id, format!("a non-empty {out}x{depth} weight matrix")));
        }
        let (mult, shift) = requant_params(sx, scales[0], sy);
        if scales.iter().any(|s| requant_params(sx, *s, sy) != (mult, shift)) {
            return Err(self.node_err(id, "fully connected weights quantized per tensor (arm_fully_connected_s8)"));
        }
        let bias = if self.g.operand(id, 2).is_some() {
            let (b, _) = self.weight(id, 2, DType::I32)?;
            if b.len() != out {
                return Err(self.node_err(id, format!("a bias of {out} elements, found {}", b.len())));
            }
            b
        } else {
            vec![0; out]
        };
        let (batch, weights) = self.fc_layout(id, a, &w, p.trans_b, out, depth)?;
        let dout = self.out_dims(id)?;
        let k = FcK {
            batch,
            depth,
            out,
            input_offset: -zx,
            output_offset: zy,
            act: (-128, 127),
            weights,
            bias,
            mult,
            shift,
        };
        let st = self.step(id, Kernel::Fc(k), vec![a.loc]);
        self.new_buf(id, Lay::Nhwc(dout), dout.len(), st)
    }

    /// A fully connected weight matrix as `[out][depth]` with its columns in the physical
    /// order of the operand (permuted when it is a flattened NHWC map), and the batch size.
    fn fc_layout(
        &self,
        id: NodeId,
        a: Act,
        w: &[i32],
        trans_b: bool,
        out: usize,
        depth: usize,
    ) -> Result<(usize, Vec<i8>), LowerError> {
        // Logical weight [out][depth] (row-major), then columns in the input's physical order.
        let logical = |j: usize, k: usize| if trans_b { w[j * depth + k] } else { w[k * out + j] };
        let (batch, phys): (usize, Box<dyn Fn(usize) -> usize>) = match a.lay {
            Lay::Nhwc(d) if d.h == 1 && d.w == 1 => (d.n, Box::new(|k| k)),
            Lay::Flat(d) => {
                let (c, hw) = (d.c, d.h * d.w);
                // Physical column q = (y * W + x) * C + ch reads logical column ch * H * W + y * W + x.
                (d.n, Box::new(move |q: usize| (q % c) * hw + q / c))
            }
            Lay::Nhwc(_) => return Err(self.unsupported(id, "a gemm over an unflattened [N, C, H, W] operand")),
        };
        let in_len = match a.lay {
            Lay::Nhwc(d) | Lay::Flat(d) => d.h * d.w * d.c,
        };
        if in_len != depth {
            return Err(self.node_err(id, format!("an operand of depth {depth}, found {in_len}")));
        }
        let mut weights = vec![0i8; out * depth];
        for j in 0..out {
            for q in 0..depth {
                weights[j * depth + q] = logical(j, phys(q)) as i8;
            }
        }
        Ok((batch, weights))
    }

    fn add(&mut self, id: NodeId) -> Result<(), LowerError> {
        let a = self.act(id, 0)?;
        let b = self.act(id, 1)?;
        if a.lay != b.lay || self.operand_ty(id, 0)?.shape != self.operand_ty(id, 1)?.shape {
            return Err(self.unsupported(id, "broadcasting add (arm_elementwise_add_s8 needs equal shapes)"));
        }
        let (sa, za) = self.operand_q(id, 0)?;
        let (sb, zb) = self.operand_q(id, 1)?;
        let (sy, zy) = self.result_q(id)?;
        let left_shift = 20;
        let twice_max = 2.0 * (sa.max(sb) as f64);
        let (ma, sha) = quantize_multiplier(sa as f64 / twice_max);
        let (mb, shb) = quantize_multiplier(sb as f64 / twice_max);
        let (my, shy) = quantize_multiplier(twice_max / ((1i64 << left_shift) as f64 * sy as f64));
        let size = match a.lay {
            Lay::Nhwc(d) | Lay::Flat(d) => d.len(),
        };
        let k =
            AddK { in1: (-za, ma, sha), in2: (-zb, mb, shb), left_shift, out: (zy, my, shy), act: (-128, 127), size };
        let st = self.step(id, Kernel::Add(k), vec![a.loc, b.loc]);
        self.new_buf(id, a.lay, size, st)
    }

    fn pool(&mut self, id: NodeId, win: &clio::ops::Window2d, max: bool, include_pad: bool) -> Result<(), LowerError> {
        let (loc, din) = self.nhwc(id, 0)?;
        if self.operand_ty(id, 0)?.quant != self.result_ty(id)?.quant {
            return Err(
                self.node_err(id, "the same quantization for operand and result (CMSIS-NN pooling does not rescale)")
            );
        }
        self.result_q(id)?;
        if include_pad && win.pads.iter().any(|p| *p > 0) {
            return Err(self.unsupported(
                id,
                "count_include_pad = true with padding (arm_avgpool_s8 counts cells inside the input)",
            ));
        }
        let dout = self.out_dims(id)?;
        let k = PoolK {
            input: din,
            kernel: win.kernel,
            output: dout,
            stride: win.strides,
            pad: [win.pads[0], win.pads[1]],
            act: (-128, 127),
        };
        let kernel = if max { Kernel::MaxPool(k) } else { Kernel::AvgPool(k) };
        let st = self.step(id, kernel, vec![loc]);
        self.new_buf(id, Lay::Nhwc(dout), dout.len(), st)
    }

    fn mean(&mut self, id: NodeId) -> Result<(), LowerError> {
        let (loc, din) = self.nhwc(id, 0)?;
        let hw = din.h * din.w;
        if hw == 0 || hw > i32::MAX as usize {
            return Err(self.node_err(id, "a non-empty spatial window"));
        }
        let arith = match self.api {
            CmsisApi::S8 => {
                let (sx, zx) = self.operand_q(id, 0)?;
                let (sy, zy) = self.result_q(id)?;
                // TFLite's QuantizedMeanOrSum: 1 / count folded into the multiplier, as the interpreter.
                let (mult, shift) = clio::interp::int::mean_multiplier(sx as f64 / sy as f64, hw);
                MeanArith::Affine { in_zp: zx, out_zp: zy, mult, shift }
            }
            CmsisApi::LegacyQ7 => {
                let fx = self.operand_ty(id, 0).ok().and_then(pow2);
                let fy = self.result_ty(id).ok().and_then(pow2);
                let (Some(fx), Some(fy)) = (fx, fy) else {
                    return Err(self.node_err(id, format!("an operand and a result of {}", self.scheme_hint())));
                };
                let (left, divisor) = pow2_mean_params(fx, fy, hw).map_err(|e| self.unsupported(id, e))?;
                MeanArith::Pow2 { left, divisor }
            }
        };
        let k = MeanK { n: din.n, hw, c: din.c, arith };
        let dout = Dims::new(din.n, 1, 1, din.c);
        let st = self.step(id, Kernel::Mean(k), vec![loc]);
        self.new_buf(id, Lay::Nhwc(dout), dout.len(), st)
    }

    fn softmax(&mut self, id: NodeId, axis: usize) -> Result<(), LowerError> {
        let (loc, d) = self.nhwc(id, 0)?;
        let (sx, _) = self.operand_q(id, 0)?;
        match self.result_q(id)? {
            (s, -128) if (s - 1.0 / 256.0).abs() <= 1e-3 / 256.0 => {}
            _ => return Err(self.node_err(id, "a result of affine<0.00390625:-128> (int8 softmax)")),
        }
        if axis != 1 {
            return Err(self.unsupported(id, format!("softmax over axis {axis} (only the channel axis 1)")));
        }
        let (mult, shift, diff_min) = softmax_params(sx);
        let k = SoftmaxK { rows: d.n * d.h * d.w, row_size: d.c, mult, shift, diff_min };
        let st = self.step(id, Kernel::Softmax(k), vec![loc]);
        self.new_buf(id, Lay::Nhwc(d), d.len(), st)
    }

    fn concat(&mut self, id: NodeId, axis: usize) -> Result<(), LowerError> {
        let n_ops = self.g.operands(id).len();
        let dout = self.out_dims(id)?;
        if axis != 1 {
            return Err(self.unsupported(id, format!("concat along axis {axis} (only channels, axis 1)")));
        }
        let y_q = self.result_ty(id)?.quant.clone();
        let mut locs = vec![];
        let mut parts = vec![];
        for i in 0..n_ops {
            let (loc, d) = self.nhwc(id, i)?;
            if self.operand_ty(id, i)?.quant != y_q {
                return Err(self.node_err(id, "operands with the result's quantization (the quantize pass ties them)"));
            }
            locs.push(loc);
            parts.push(d.c);
        }
        let pixels = dout.n * dout.h * dout.w;
        if pixels > u16::MAX as usize || dout.c > u16::MAX as usize {
            return Err(
                self.unsupported(id, "more than 65535 pixels or channels (arm_concatenation_s8_z takes uint16)")
            );
        }
        let k = ConcatK { pixels, parts, c_out: dout.c };
        let st = self.step(id, Kernel::Concat(k), locs);
        self.new_buf(id, Lay::Nhwc(dout), dout.len(), st)
    }

    fn clamp(&mut self, id: NodeId, lo: f32, hi: f32) -> Result<(), LowerError> {
        let a = self.act(id, 0)?;
        let x_v = self.operand(id, 0)?;
        if self.operand_ty(id, 0)?.quant != self.result_ty(id)?.quant {
            return Err(self.node_err(id, "the same quantization for operand and result"));
        }
        let (s, z) = self.result_q(id)?;
        let q = |v: f32| quantize_affine(v as f64, s, z, -128, 127) as i32;
        let qlo = if lo.is_finite() { q(lo) } else { -128 };
        let qhi = if hi.is_finite() { q(hi) } else { 127 };
        // Fuse into the producer's activation bounds when this node is the value's only reader.
        if let Loc::Buf(b) = a.loc {
            let single = self.g.use_count(x_v) == 1 && !self.g.outputs().contains(&x_v);
            let aliased = self.acts.iter().filter(|(_, other)| other.loc == Loc::Buf(b)).count() > 1;
            if let (true, false, Some(&s_idx)) = (single, aliased, self.producer.get(&b)) {
                if let Some(act) = self.steps[s_idx].kernel.act_mut() {
                    act.0 = act.0.max(qlo);
                    act.1 = act.1.min(qhi);
                    self.acts.insert(Value::of(id), a);
                    return Ok(());
                }
            }
        }
        let size = match a.lay {
            Lay::Nhwc(d) | Lay::Flat(d) => d.len(),
        };
        let kernel = if self.api == CmsisApi::LegacyQ7 && (qlo, qhi) == (0, 127) {
            Kernel::ReluQ7(size)
        } else {
            Kernel::Clamp(ClampK { size, lo: qlo, hi: qhi })
        };
        let st = self.step(id, kernel, vec![a.loc]);
        self.new_buf(id, a.lay, size, st)
    }

    /// Ops that only relabel memory: the result shares the operand's buffer.
    fn alias(&mut self, id: NodeId) -> Result<(), LowerError> {
        let a = self.act(id, 0)?;
        if self.operand_ty(id, 0)?.quant != self.result_ty(id)?.quant {
            return Err(self.node_err(id, "the same quantization for operand and result"));
        }
        let shape = self.result_ty(id)?.shape.clone();
        let lay = match (a.lay, shape.as_slice()) {
            (Lay::Nhwc(d) | Lay::Flat(d), [n, k]) if *n == d.n && *k == d.h * d.w * d.c => {
                if d.h * d.w == 1 {
                    Lay::Nhwc(d)
                } else {
                    Lay::Flat(d)
                }
            }
            (Lay::Nhwc(d) | Lay::Flat(d), [n, c, h, w]) if (*n, *c, *h, *w) == (d.n, d.c, d.h, d.w) => Lay::Nhwc(d),
            (Lay::Nhwc(d) | Lay::Flat(d), [n, c, 1, 1]) if d.h * d.w == 1 && (*n, *c) == (d.n, d.c) => Lay::Nhwc(d),
            _ => {
                return Err(self.unsupported(
                    id,
                    format!("a reshape to {shape:?} that moves data in NHWC (only flattening and unit dimensions)"),
                ))
            }
        };
        self.acts.insert(Value::of(id), Act { loc: a.loc, lay });
        Ok(())
    }

    fn input(&mut self, id: NodeId, ty: &TensorType) -> Result<(), LowerError> {
        if self.input.is_some() {
            return Err(self.unsupported(id, "a second device input (the generated module takes one input)"));
        }
        let (scale, zero_point) = self.params(ty).ok_or_else(|| {
            self.node_err(id, format!("an {} input, found {}", self.scheme_hint(), sanitize_types(ty)))
        })?;
        let dims = dims_of(&ty.shape)
            .ok_or_else(|| self.unsupported(id, format!("an input of rank {} (only 2 or 4)", ty.rank())))?;
        let name = self.g.node(id).name().to_string();
        self.input = Some(InputInfo { dims, shape: ty.shape.clone(), scale, zero_point, name });
        self.acts.insert(Value::of(id), Act { loc: Loc::Input, lay: Lay::Nhwc(dims) });
        Ok(())
    }

    fn node(&mut self, id: NodeId) -> Result<(), LowerError> {
        let g = self.g;
        let n = g.node(id);
        match &n.op {
            Op::Weight { .. } => Ok(()),
            Op::Input => {
                let ty = n.ty();
                if ty.dtype == DType::F32 {
                    // Read by the graph's `quantize`: the C input is already int8.
                    if let Some(u) = g.users(id).into_iter().find(|u| !matches!(g.node(*u).op, Op::Quantize)) {
                        return Err(self.node_err(
                            u,
                            format!(
                                "an int8 operand, found the float graph input %{} (run quantize{{scheme=int8}} before partition)",
                                n.name()
                            ),
                        ));
                    }
                    Ok(())
                } else {
                    self.input(id, ty)
                }
            }
            Op::Quantize => {
                let v = self.operand(id, 0)?;
                if !matches!(g.node(v.node).op, Op::Input) {
                    return Err(self.unsupported(id, "quantize inside the graph (only of the graph input)"));
                }
                let ty = self.result_ty(id)?;
                self.input(id, ty)
            }
            Op::Conv2d(p) if self.api == CmsisApi::LegacyQ7 => self.conv_q7(id, p),
            Op::Gemm(p) if self.api == CmsisApi::LegacyQ7 => self.gemm_q7(id, p),
            Op::Add if self.api == CmsisApi::LegacyQ7 => self.add_q7(id),
            Op::MaxPool(p) if self.api == CmsisApi::LegacyQ7 => self.maxpool_q7(id, &p.window),
            Op::AvgPool(_) | Op::Softmax(_) | Op::Concat(_) if self.api == CmsisApi::LegacyQ7 => {
                Err(self.unsupported(id, "no kernel in the legacy q7 API subset (use the s8 API: --cmsis s8)"))
            }
            Op::Conv2d(p) => self.conv(id, p),
            Op::Gemm(p) => self.gemm(id, p),
            Op::Add => self.add(id),
            Op::MaxPool(p) => self.pool(id, &p.window, true, false),
            Op::AvgPool(p) => self.pool(id, &p.window, false, p.count_include_pad),
            Op::GlobalAvgPool => self.mean(id),
            Op::Softmax(p) => self.softmax(id, p.axis),
            Op::Concat(p) => self.concat(id, p.axis),
            Op::Relu => self.clamp(id, 0.0, f32::INFINITY),
            Op::Clip(c) => self.clamp(id, c.min, c.max),
            Op::Flatten(_) | Op::Reshape(_) | Op::Squeeze(_) | Op::Unsqueeze(_) | Op::Transmit(_) => self.alias(id),
            Op::Dequantize => Err(self.unsupported(
                id,
                "dequantize on the device (the device sends the int8 cut tensor; cut before the float part)",
            )),
            Op::BatchNorm(_) => Err(self.unsupported(id, "batch_norm (run fuse-bn, then quantize{scheme=int8})")),
            op => Err(self.unsupported(
                id,
                format!("`{}` has no CMSIS-NN s8 kernel in this backend (keep it on the cloud side)", op.name()),
            )),
        }
    }
}

/// Lowers graph `graph` of `m` to a [`Program`].
pub(crate) fn lower(m: &Module, graph: &str, api: CmsisApi) -> Result<Program, LowerError> {
    let g = m.graph(graph).ok_or_else(|| LowerError::NoGraph(graph.to_string()))?;
    let gerr = |message: String| LowerError::Graph { graph: graph.to_string(), message };
    let order = g.topo_order().map_err(|c| gerr(format!("cycle at {}", c.0)))?;
    let mut cx =
        Cx { api, m, g, acts: HashMap::new(), steps: vec![], buffers: vec![], producer: HashMap::new(), input: None };
    for id in &order {
        let n = g.node(*id);
        if let Some(t) = n.results.iter().find(|t| t.shape.contains(&0)) {
            return Err(LowerError::Invalid {
                graph: graph.to_string(),
                node: n.name().to_string(),
                op: n.op.name().to_string(),
                message: format!("non-empty tensors, found {}", sanitize_types(t)),
            });
        }
    }
    for id in order {
        cx.node(id)?;
    }
    let input = cx.input.clone().ok_or_else(|| gerr("no input".into()))?;
    let [out] = g.outputs() else {
        return Err(gerr(format!("expected one output (the cut tensor), found {}", g.outputs().len())));
    };
    let out_ty = g.value_type(*out).ok_or_else(|| gerr("untyped output".into()))?;
    let act = cx.acts.get(out).copied().ok_or_else(|| {
        gerr(format!("the output {} is not an int8 value computed on the device", sanitize_types(out_ty)))
    })?;
    let (scale, zero_point) =
        cx.params(out_ty).ok_or_else(|| gerr(format!("the output must be {}", cx.scheme_hint())))?;
    let dims = match act.lay {
        Lay::Nhwc(d) => d,
        Lay::Flat(_) => return Err(gerr("the cut tensor is a flattened [N, C*H*W] value (cut before flatten)".into())),
    };
    let header = wire_header(&out_ty.shape, out_ty).map_err(gerr)?;
    let output = OutputInfo {
        src: act.loc,
        dims,
        header,
        scale,
        zero_point,
        shape: out_ty.shape.clone(),
        name: g.node(out.node).name().to_string(),
    };
    Ok(Program { graph: graph.to_string(), api, input, steps: cx.steps, buffers: cx.buffers, output })
}

/// The wire-format header of the full cut tensor (channel axis 1), produced by the same encoder
/// the cloud side decodes with.
fn wire_header(shape: &[usize], ty: &TensorType) -> Result<Vec<u8>, String> {
    if shape.len() < 2 {
        return Err(format!("the cut tensor has rank {} (the wire format's channel axis is 1)", shape.len()));
    }
    let t = clio::ir::Tensor::zeros(shape.to_vec(), DType::I8);
    let bytes = clio::quant::wire::encode(&t, ty.quant.as_ref(), 1, shape[1]).map_err(|e| e.to_string())?;
    Ok(bytes[..bytes.len() - t.len()].to_vec())
}
