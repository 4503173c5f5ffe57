//! IR -> [`Program`]: walks a q8 (power-of-two `i8`) or q16 (power-of-two `i16`) device graph in topological order and
//! chooses, per node, the engine and kernel (HWCE, AutoTiler cluster kernel, or clio's own
//! cluster kernel) with the reason, computing every parameter from the operand and result
//! types exactly as the integer interpreter does.

use super::hwce;
use super::program::*;
use super::Gap8Error;
use clio::ir::{DType, Graph, NodeId, Op, QScheme, TensorData, TensorType, Value};
use clio::quant::math::quantize_pow2;
use clio::Module;
use std::collections::HashMap;

/// An activation: where it is and its `[C, H, W]` (rank-2 values are `[K, 1, 1]`).
#[derive(Clone, Copy, Debug)]
struct Act {
    loc: Loc,
    chw: [usize; 3],
}

struct Cx<'a> {
    m: &'a Module,
    g: &'a Graph,
    acts: HashMap<Value, Act>,
    steps: Vec<Step>,
    buffers: Vec<usize>,
    producer: HashMap<usize, usize>,
    input: Option<Io>,
    width: Width,
    /// L1 bytes one layer's tiles may use (`Gap8Options::l1_budget_bytes`).
    l1_budget: usize,
}

/// The element type of a width's activations and weights.
fn dtype(width: Width) -> DType {
    match width {
        Width::Q8 => DType::I8,
        Width::Q16 => DType::I16,
    }
}

/// Fractional bits of a per-tensor pow2 type of the width's element type.
fn frac(ty: &TensorType, width: Width) -> Option<i32> {
    let q = ty.quant.as_ref()?;
    match (&q.scheme, q.axis) {
        (QScheme::Pow2 { frac_bits }, None) if ty.dtype == dtype(width) => frac_bits.first().copied(),
        _ => None,
    }
}

/// q16 when the graph's input `quantize` (or integer input) is i16 pow2, else q8 (every
/// activation is then checked against that width).
fn width_of(g: &Graph) -> Width {
    let wide = g.inputs().iter().any(|i| {
        let n = g.node(*i);
        let users = g.users(*i);
        std::iter::once(n.ty())
            .chain(users.iter().filter(|u| matches!(g.node(**u).op, Op::Quantize)).map(|u| g.node(*u).ty()))
            .any(|t| t.dtype == DType::I16 && matches!(t.quant.as_ref().map(|q| &q.scheme), Some(QScheme::Pow2 { .. })))
    });
    if wide {
        Width::Q16
    } else {
        Width::Q8
    }
}

fn chw(shape: &[usize]) -> Option<[usize; 3]> {
    match shape {
        [1, c, h, w] => Some([*c, *h, *w]),
        [1, k] => Some([*k, 1, 1]),
        _ => None,
    }
}

impl<'a> Cx<'a> {
    fn err(&self, id: NodeId, unsupported: bool, message: impl Into<String>) -> Gap8Error {
        let n = self.g.node(id);
        let (graph, node, op, message) =
            (self.g.name().to_string(), n.name().to_string(), n.op.name().to_string(), message.into());
        if unsupported {
            Gap8Error::Unsupported { graph, node, op, message }
        } else {
            Gap8Error::Invalid { graph, node, op, message }
        }
    }

    fn operand(&self, id: NodeId, slot: usize) -> Result<Value, Gap8Error> {
        self.g.operand(id, slot).ok_or_else(|| self.err(id, false, format!("operand {slot}")))
    }

    fn operand_ty(&self, id: NodeId, slot: usize) -> Result<&'a TensorType, Gap8Error> {
        let v = self.operand(id, slot)?;
        self.g.value_type(v).ok_or_else(|| self.err(id, false, format!("a typed operand {slot}")))
    }

    fn result_ty(&self, id: NodeId) -> Result<&'a TensorType, Gap8Error> {
        self.g.node(id).results.first().ok_or_else(|| self.err(id, false, "a node with one result"))
    }

    fn frac_of(&self, id: NodeId, ty: &TensorType, what: &str) -> Result<i32, Gap8Error> {
        frac(ty, self.width).ok_or_else(|| {
            self.err(
                id,
                false,
                format!(
                    "an {} per-tensor pow2 {what} (run quantize{{scheme={}}}), found {}",
                    dtype(self.width),
                    self.width.scheme(),
                    clio::text::type_string(ty)
                ),
            )
        })
    }

    /// A kernel name with the width's suffix (`ClioKerParClamp` -> `ClioKerParClamp_fps` / `_fp`).
    fn kn(&self, base: &str) -> String {
        format!("{base}{}", self.width.suffix())
    }

    fn act(&self, id: NodeId, slot: usize) -> Result<Act, Gap8Error> {
        let v = self.operand(id, slot)?;
        self.acts.get(&v).copied().ok_or_else(|| {
            let ty = self.g.value_type(v).map(clio::text::type_string).unwrap_or_default();
            self.err(
                id,
                false,
                format!("operand {slot} to be a {} activation computed on the device, found {ty}", self.width.scheme()),
            )
        })
    }

    /// Data of a constant i8 (q8) or i16 (q16) weight operand with its per-channel fractional
    /// bits (`n` channels along `axis`).
    fn weight(&self, id: NodeId, slot: usize, n: usize, axis: usize) -> Result<(Vec<i16>, Vec<i32>), Gap8Error> {
        let v = self.operand(id, slot)?;
        let name =
            self.g.weight_name(v).ok_or_else(|| self.err(id, true, format!("operand {slot} must be a constant")))?;
        let w = self.m.weight(name).ok_or_else(|| self.err(id, false, format!("weight @{name} to exist")))?;
        let ty = self.g.value_type(v).ok_or_else(|| self.err(id, false, format!("a typed weight @{name}")))?;
        let data: Vec<i16> = match (w.data().data(), self.width) {
            (TensorData::I8(d), Width::Q8) => d.iter().map(|v| *v as i16).collect(),
            (TensorData::I16(d), Width::Q16) => d.clone(),
            _ => {
                return Err(self.err(
                    id,
                    false,
                    format!(
                        "weight @{name} to be {} ({} pow2), found {}",
                        self.width.scheme(),
                        dtype(self.width),
                        clio::text::type_string(ty)
                    ),
                ))
            }
        };
        let fr = match ty.quant.as_ref().map(|q| (&q.scheme, q.axis)) {
            Some((QScheme::Pow2 { frac_bits }, None)) if !frac_bits.is_empty() => vec![frac_bits[0]; n],
            Some((QScheme::Pow2 { frac_bits }, Some(a))) if a == axis && frac_bits.len() == n => frac_bits.clone(),
            _ => {
                return Err(self.err(
                    id,
                    false,
                    format!(
                        "weight @{name} in pow2 per tensor or along axis {axis}, found {}",
                        clio::text::type_string(ty)
                    ),
                ))
            }
        };
        Ok((data, fr))
    }

    fn push(&mut self, id: NodeId, kind: StepKind, inputs: Vec<Loc>, bytes: usize, chw: [usize; 3], reason: String) {
        let b = self.buffers.len();
        self.buffers.push(bytes * self.width.bytes());
        self.producer.insert(b, self.steps.len());
        let n = self.g.node(id);
        self.steps.push(Step {
            node: n.name().to_string(),
            op: n.op.name().to_string(),
            kind,
            inputs,
            output: Loc::Buf(b),
            reason,
            tiles: None,
        });
        self.acts.insert(Value::of(id), Act { loc: Loc::Buf(b), chw });
    }

    /// Requantisation of a conv / gemm: `(init, norm)` per channel as the interpreter derives them.
    fn requant(&self, id: NodeId, fw: &[i32], n: usize, bias_axis: usize) -> Result<(Vec<i32>, Vec<u8>), Gap8Error> {
        let fx = self.frac_of(id, self.operand_ty(id, 0)?, "input")?;
        let fy = self.frac_of(id, self.result_ty(id)?, "result")?;
        let bias = match self.g.operand(id, 2) {
            Some(_) => {
                let (b, fb) = self.weight(id, 2, n, bias_axis)?;
                if b.len() != n {
                    return Err(self.err(id, false, format!("a bias of {n} elements, found {}", b.len())));
                }
                Some((b, fb))
            }
            None => None,
        };
        let mut init = Vec::with_capacity(n);
        let mut norm = Vec::with_capacity(n);
        for c in 0..n {
            let os = fx + fw[c] - fy;
            if !(0..=31).contains(&os) {
                return Err(self.err(id, false, format!("channel {c}: out_shift {os} in 0..=31")));
            }
            let round = if os > 0 { 1i32 << (os - 1) } else { 0 };
            let b = match &bias {
                Some((b, fb)) => {
                    let bs = fx + fw[c] - fb[c];
                    if !(0..=31).contains(&bs) {
                        return Err(self.err(id, false, format!("channel {c}: bias_shift {bs} in 0..=31")));
                    }
                    (b[c] as i32).wrapping_shl(bs as u32)
                }
                None => 0,
            };
            init.push(b.wrapping_add(round));
            norm.push(os as u8);
        }
        Ok((init, norm))
    }

    fn conv(&mut self, id: NodeId, p: &clio::ops::Conv2d) -> Result<(), Gap8Error> {
        let x = self.act(id, 0)?;
        let [c, h, w] = x.chw;
        let wty = self.operand_ty(id, 1)?;
        let [o, cg, kh, kw] =
            <[usize; 4]>::try_from(wty.shape.as_slice()).map_err(|_| self.err(id, false, "a rank-4 OIHW filter"))?;
        let (weights, fw) = self.weight(id, 1, o, 0)?;
        let (init, norm) = self.requant(id, &fw, o, 0)?;
        let [oc, ho, wo] = chw(&self.result_ty(id)?.shape).ok_or_else(|| self.err(id, true, "a batch of 1"))?;
        let groups = p.groups.max(1);
        if oc != o || cg * groups != c || weights.len() != o * cg * kh * kw {
            return Err(self.err(id, false, format!("a {o}x{cg}x{kh}x{kw} filter over {c} channels")));
        }
        let pads = [p.pads[0], p.pads[1], p.pads[2], p.pads[3]];
        let small = [kh, kw, p.strides[0], p.strides[1], p.dilations[0], p.dilations[1], pads[0], pads[1]];
        if small.iter().any(|v| *v > 255) || [c, h, w, o, ho, wo].iter().any(|v| *v > 65535) {
            return Err(self.err(
                id,
                true,
                "kernel, stride, dilation or padding above 255, or a dimension above 65535",
            ));
        }
        let mut step = ConvStep {
            cin: c,
            h,
            w,
            cout: o,
            ho,
            wo,
            kh,
            kw,
            stride: p.strides,
            dil: p.dilations,
            pads,
            groups,
            weights,
            init,
            norm,
            lo: self.width.range().0,
            hi: self.width.range().1,
            es: self.width.bytes(),
            engine: Engine::Cluster,
            chunk: o,
            rows: ho,
        };
        let dense_k = groups == 1 && kh == kw && matches!(kh, 3 | 5 | 7);
        let hwce_shape = dense_k && p.strides == [1, 1] && p.dilations == [1, 1];
        let q16 = self.width == Width::Q16;
        let reason = if hwce_shape {
            match hwce::plan(kh, c, o, ho, wo, &step.weights, q16) {
                Some(plan) if q16 && !q16_hwce_is_faster(&plan) => q16_conv_reason(&step, Some(&plan)),
                Some(plan) => {
                    let digits = if q16 {
                        format!(
                            "q16 on the HWCE: 2 balanced 8-bit input digits x {} weight digit(s) of {} bits = {} passes, faster than the cores at 16 bits ({})",
                            plan.digits,
                            plan.bits,
                            plan.passes(),
                            q16_rates(&plan)
                        )
                    } else {
                        format!("{} digit pass(es) of {} bits", plan.digits, plan.bits)
                    };
                    let r = format!(
                        "HWCE {kh}x{kh}: dense, stride 1, dilation 1; padding on the cores; {} output plane(s) per call; {digits} (partial sums proven within 16 bits: max {}); int32 accumulation and one rounding on the cores",
                        plan.outs_per_call(), plan.max_bound
                    );
                    step.engine = Engine::Hwce(plan);
                    if step.try_hwce_tiles(self.l1_budget) {
                        r
                    } else {
                        step.engine = Engine::Cluster;
                        format!(
                            "cluster (ClioKerParConvAcc32{}): HWCE-eligible but not even one output row of {} channel(s) fits {} B of L1",
                            self.width.suffix(),
                            step.chunk_unit(),
                            self.l1_budget
                        )
                    }
                }
                None if q16 => q16_conv_reason(&step, None),
                None => "cluster (ClioKerParConvAcc32_fps): no HWCE digit split fits 16 bits".into(),
            }
        } else if q16 {
            q16_conv_reason(&step, None)
        } else if dense_k {
            format!(
                "cluster (ClioKerParConvAcc32_fps): the HWCE computes stride-1, dilation-1 convolutions only (stride {:?}, dilation {:?})",
                p.strides, p.dilations
            )
        } else if groups == c && cg == 1 && o == c {
            match self.dw_vendor(&step) {
                Ok(e) => {
                    let s = step.stride[0];
                    step.engine = e;
                    format!("cluster (KerParConvDW3x3Stride{s}_fps): depthwise 3x3, one input plane per output, bias pre-shifted to the output format (exact)")
                }
                Err(why) => {
                    format!("cluster (ClioKerParConvAcc32_fps): depthwise, not the AutoTiler 3x3 kernel: {why}")
                }
            }
        } else if kh == 1 && kw == 1 {
            "cluster (ClioKerParConvAcc32_fps): 1x1 convolution (the HWCE has no 1x1 mode); int32 accumulation over all input planes, one rounding".into()
        } else {
            format!("cluster (ClioKerParConvAcc32_fps): {kh}x{kw}, groups {groups}: not an HWCE shape")
        };
        let mut reason = reason;
        if step.hwce().is_some() {
            reason.push_str(&step.hwce_note());
        } else {
            step.choose_chunk(super::ACC_BUDGET);
        }
        if step.try_stream(self.l1_budget) {
            reason.push_str(&step.stream_note());
        } else if step.try_whole(self.l1_budget) {
            reason.push_str(&step.whole_note());
        }
        let bytes = o * ho * wo;
        self.push(id, StepKind::Conv(Box::new(step)), vec![x.loc], bytes, [o, ho, wo], reason);
        Ok(())
    }

    /// Whether the depthwise layer runs exactly on `KerParConvDW3x3Stride{1,2}_fps`.
    fn dw_vendor(&self, s: &ConvStep) -> Result<Engine, String> {
        if s.kh != 3 || s.kw != 3 || s.dil != [1, 1] || s.stride[0] != s.stride[1] || !matches!(s.stride[0], 1 | 2) {
            return Err("only 3x3, dilation 1, stride 1 or 2".into());
        }
        let st = s.stride[0];
        let [t, l, b, r] = s.pads;
        if (s.w + l + r - 3) / st + 1 != s.wo || (s.h + t + b - 3) / st + 1 != s.ho || s.pads.iter().any(|p| *p > 127) {
            return Err("padding the kernel cannot express".into());
        }
        let norm = s.norm[0];
        if s.norm.iter().any(|n| *n != norm) {
            return Err("per-channel output shifts (the kernel has one Norm)".into());
        }
        let round = if norm > 0 { 1i32 << (norm - 1) } else { 0 };
        let mut bias = Vec::with_capacity(s.cout);
        for init in &s.init {
            let v = init.wrapping_sub(round);
            let bb = v >> norm;
            if !(-128..=127).contains(&bb) || bb.wrapping_shl(norm as u32) != v {
                return Err("the bias is not exactly representable in the output format".into());
            }
            bias.push(bb as i8);
        }
        Ok(Engine::Dw { bias, norm })
    }

    fn gemm(&mut self, id: NodeId, p: &clio::ops::Gemm) -> Result<(), Gap8Error> {
        if p.trans_a || p.alpha != 1.0 || p.beta != 1.0 {
            return Err(self.err(id, false, "alpha = 1, beta = 1 and trans_a = false"));
        }
        let x = self.act(id, 0)?;
        let wty = self.operand_ty(id, 1)?;
        let [r, cols] =
            <[usize; 2]>::try_from(wty.shape.as_slice()).map_err(|_| self.err(id, false, "a rank-2 weight"))?;
        let (out, depth) = if p.trans_b { (r, cols) } else { (cols, r) };
        let (w, fw) = self.weight(id, 1, out, if p.trans_b { 0 } else { 1 })?;
        let [xc, xh, xw] = x.chw;
        if xc * xh * xw != depth || w.len() != out * depth {
            return Err(self.err(id, false, format!("an operand of depth {depth}")));
        }
        let weights: Vec<i16> =
            (0..out * depth).map(|i| if p.trans_b { w[i] } else { w[(i % depth) * out + i / depth] }).collect();
        let (init, norm) = self.requant(id, &fw, out, 0)?;
        let step = ConvStep {
            cin: depth,
            h: 1,
            w: 1,
            cout: out,
            ho: 1,
            wo: 1,
            kh: 1,
            kw: 1,
            stride: [1, 1],
            dil: [1, 1],
            pads: [0; 4],
            groups: 1,
            weights,
            init,
            norm,
            lo: self.width.range().0,
            hi: self.width.range().1,
            es: self.width.bytes(),
            engine: Engine::Cluster,
            chunk: out,
            rows: 1,
        };
        let mut step = step;
        step.choose_chunk(super::ACC_BUDGET);
        let mut reason = format!("cluster ({}): linear layer as a 1x1 convolution over the planar [C*H*W] vector (the NCHW flatten order, no permutation)", self.kn("ClioKerParConvAcc32"));
        if step.try_whole(self.l1_budget) {
            reason.push_str(&step.whole_note());
        }
        self.push(id, StepKind::Conv(Box::new(step)), vec![x.loc], out, [out, 1, 1], reason);
        Ok(())
    }

    fn clamp(&mut self, id: NodeId, lo: f32, hi: f32) -> Result<(), Gap8Error> {
        let x = self.act(id, 0)?;
        let xv = self.operand(id, 0)?;
        if self.operand_ty(id, 0)?.quant != self.result_ty(id)?.quant {
            return Err(self.err(id, false, "the same format for operand and result"));
        }
        let f = self.frac_of(id, self.result_ty(id)?, "result")?;
        let (rlo, rhi) = self.width.range();
        let q = |v: f32| quantize_pow2(v as f64, f, rlo as i64, rhi as i64) as i32;
        let qlo = if lo.is_finite() { q(lo) } else { rlo };
        let qhi = if hi.is_finite() { q(hi) } else { rhi };
        if let Loc::Buf(b) = x.loc {
            let single = self.g.use_count(xv) == 1 && !self.g.outputs().contains(&xv);
            let aliased = self.acts.values().filter(|a| a.loc == x.loc).count() > 1;
            if let (true, false, Some(&si)) = (single, aliased, self.producer.get(&b)) {
                if let StepKind::Conv(c) = &mut self.steps[si].kind {
                    if !matches!(c.engine, Engine::Dw { .. }) {
                        c.lo = c.lo.max(qlo);
                        c.hi = c.hi.min(qhi);
                        let n = self.g.node(id);
                        self.steps[si].reason.push_str(&format!(
                            "; %{} ({}) fused into the reduction",
                            n.name(),
                            n.op.name()
                        ));
                        self.acts.insert(Value::of(id), x);
                        return Ok(());
                    }
                }
            }
        }
        let size = x.chw.iter().product();
        let reason = format!(
            "cluster ({}): standalone ReLU/ReLU6 clamp in the Q format (producer not fusable)",
            self.kn("ClioKerParClamp")
        );
        self.push(id, StepKind::Clamp { size, lo: qlo, hi: qhi }, vec![x.loc], size, x.chw, reason);
        Ok(())
    }

    fn add(&mut self, id: NodeId) -> Result<(), Gap8Error> {
        let a = self.act(id, 0)?;
        let b = self.act(id, 1)?;
        if a.chw != b.chw {
            return Err(self.err(id, true, "broadcasting add (operands must have equal shapes)"));
        }
        let fa = self.frac_of(id, self.operand_ty(id, 0)?, "operand 0")?;
        let fb = self.frac_of(id, self.operand_ty(id, 1)?, "operand 1")?;
        let fy = self.frac_of(id, self.result_ty(id)?, "result")?;
        let f = fa.max(fb);
        let (la, lb) = (f - fa, f - fb);
        if la > 31 || lb > 31 || (fy - f).abs() > 31 {
            return Err(self.err(id, false, format!("fractional bits {fa}, {fb} -> {fy} within 31 of each other")));
        }
        let (norm, left) = if f >= fy { ((f - fy) as u8, 0) } else { (0, (fy - f) as u8) };
        let size = a.chw.iter().product();
        let kind = StepKind::Add { size, shift_a: la as u8, shift_b: lb as u8, norm, left };
        let reason = format!(
            "cluster ({}): Q-format add, operands aligned to Q{f}, one rounding to Q{fy}",
            self.kn("ClioKerParAdd")
        );
        self.push(id, kind, vec![a.loc, b.loc], size, a.chw, reason);
        Ok(())
    }

    /// The window of a max / average pooling node, checked against the kernels' fields
    /// (`uint16_t` dimensions, `uint8_t` kernel, stride and padding) and the same-format rule.
    fn pool_step(&self, id: NodeId, win: &clio::ops::Window2d) -> Result<(Act, PoolStep), Gap8Error> {
        let x = self.act(id, 0)?;
        if self.operand_ty(id, 0)?.quant != self.result_ty(id)?.quant {
            return Err(self.err(id, false, "the same format for operand and result"));
        }
        self.frac_of(id, self.result_ty(id)?, "result")?;
        let [c, h, w] = x.chw;
        let [_, ho, wo] = chw(&self.result_ty(id)?.shape).ok_or_else(|| self.err(id, true, "a batch of 1"))?;
        let small = [win.kernel[0], win.kernel[1], win.strides[0], win.strides[1], win.pads[0], win.pads[1]];
        if small.iter().any(|v| *v > 255) || [c, h, w, ho, wo].iter().any(|v| *v > 65535) {
            return Err(self.err(id, true, "a window, stride or padding above 255, or a dimension above 65535"));
        }
        let p = PoolStep { c, h, w, ho, wo, k: win.kernel, stride: win.strides, pad: [win.pads[0], win.pads[1]] };
        Ok((x, p))
    }

    fn maxpool(&mut self, id: NodeId, win: &clio::ops::Window2d) -> Result<(), Gap8Error> {
        let (x, p) = self.pool_step(id, win)?;
        let (c, ho, wo) = (p.c, p.ho, p.wo);
        let reason =
            format!("cluster ({}): max pooling, cells outside the input ignored", self.kn("ClioKerParMaxPool"));
        self.push(id, StepKind::MaxPool(p), vec![x.loc], c * ho * wo, [c, ho, wo], reason);
        Ok(())
    }

    fn avgpool(&mut self, id: NodeId, p: &clio::ops::AvgPool) -> Result<(), Gap8Error> {
        if p.count_include_pad && p.window.pads.iter().any(|v| *v > 0) {
            return Err(self.err(
                id,
                true,
                "count_include_pad = true with padding (the integer average divides by the cells inside the input)",
            ));
        }
        let (x, p) = self.pool_step(id, &p.window)?;
        let (c, ho, wo) = (p.c, p.ho, p.wo);
        let reason = format!("cluster ({}): TFLite rounded average (half away from zero) over the window's cells inside the input, same Q format in and out", self.kn("ClioKerParAvgPool"));
        self.push(id, StepKind::AvgPool(p), vec![x.loc], c * ho * wo, [c, ho, wo], reason);
        Ok(())
    }

    fn global_avg_pool(&mut self, id: NodeId) -> Result<(), Gap8Error> {
        let x = self.act(id, 0)?;
        if self.operand_ty(id, 0)?.shape.len() != 4 {
            return Err(self.err(id, false, "a rank-4 [1, C, H, W] operand"));
        }
        let fx = self.frac_of(id, self.operand_ty(id, 0)?, "operand")?;
        let fy = self.frac_of(id, self.result_ty(id)?, "result")?;
        let [c, h, w] = x.chw;
        if chw(&self.result_ty(id)?.shape) != Some([c, 1, 1]) || self.result_ty(id)?.shape.len() != 4 {
            return Err(self.err(id, false, format!("a [1, {c}, 1, 1] result")));
        }
        if c > 65535 || h * w == 0 || h * w > i32::MAX as usize {
            return Err(self.err(id, true, "more than 65535 channels, or an empty or huge plane"));
        }
        let (left, divisor) = clio::interp::int::pow2_mean_params(fx, fy, h * w).map_err(|e| self.err(id, false, e))?;
        let reason = format!(
            "cluster ({}): Q{fx} -> Q{fy} mean of {} cells as the interpreter computes it: (sum << {left}) / {divisor} in 64 bits, one rounding half away from zero",
            self.kn("ClioKerParGlobalAvgPool"),
            h * w
        );
        let step = MeanStep { c, size: h * w, left, divisor };
        self.push(id, StepKind::GlobalAvgPool(step), vec![x.loc], c, [c, 1, 1], reason);
        Ok(())
    }

    fn concat(&mut self, id: NodeId, axis: usize) -> Result<(), Gap8Error> {
        let y_ty = self.result_ty(id)?;
        let rank = y_ty.shape.len();
        if axis != 1 || !matches!(rank, 2 | 4) {
            return Err(self.err(
                id,
                true,
                format!("concat along axis {axis} of a rank-{rank} tensor (only channels, axis 1)"),
            ));
        }
        self.frac_of(id, y_ty, "result")?;
        let [c, h, w] = chw(&y_ty.shape).ok_or_else(|| self.err(id, true, "a batch of 1"))?;
        let n = self.g.operands(id).len();
        let (mut locs, mut parts) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let a = self.act(id, i)?;
            if self.operand_ty(id, i)?.quant != y_ty.quant {
                return Err(self.err(
                    id,
                    false,
                    "operands with the result's quantization (the quantize pass ties them)",
                ));
            }
            if a.chw[1..] != [h, w] {
                return Err(self.err(id, false, format!("operand {i} with the result's {h}x{w} planes")));
            }
            locs.push(a.loc);
            parts.push(a.chw);
        }
        if parts.iter().map(|p| p[0]).sum::<usize>() != c || c > 65535 {
            return Err(self.err(id, false, format!("operands whose channels add up to {c} (at most 65535)")));
        }
        let reason = format!(
            "cluster ({}): concatenation of {n} operands along channels, planar CHW: one copy per operand, no rescaling (same Q format)",
            self.kn("ClioKerParConcat")
        );
        self.push(id, StepKind::Concat { parts }, locs, c * h * w, [c, h, w], reason);
        Ok(())
    }

    fn alias(&mut self, id: NodeId) -> Result<(), Gap8Error> {
        let x = self.act(id, 0)?;
        if self.operand_ty(id, 0)?.quant != self.result_ty(id)?.quant {
            return Err(self.err(id, false, "the same format for operand and result"));
        }
        let shape = &self.result_ty(id)?.shape;
        let dims = chw(shape).ok_or_else(|| self.err(id, true, format!("a result of shape {shape:?} with batch 1")))?;
        if dims.iter().product::<usize>() != x.chw.iter().product::<usize>() {
            return Err(self.err(id, false, "as many elements as the operand"));
        }
        // Planar CHW is the NCHW row-major order: reshapes move no data.
        self.acts.insert(Value::of(id), Act { loc: x.loc, chw: dims });
        Ok(())
    }

    fn input(&mut self, id: NodeId, ty: &TensorType) -> Result<(), Gap8Error> {
        if self.input.is_some() {
            return Err(self.err(id, true, "a second device input"));
        }
        let f = self.frac_of(id, ty, "input")?;
        let dims = chw(&ty.shape).ok_or_else(|| self.err(id, true, "an input [1, C, H, W] or [1, K]"))?;
        let bytes = dims.iter().product::<usize>() * self.width.bytes();
        let name = self.g.node(id).name().to_string();
        self.input = Some(Io { name, shape: ty.shape.clone(), frac: f, bytes });
        self.acts.insert(Value::of(id), Act { loc: Loc::Input, chw: dims });
        Ok(())
    }

    fn node(&mut self, id: NodeId) -> Result<(), Gap8Error> {
        let g = self.g;
        let n = g.node(id);
        match &n.op {
            Op::Weight { .. } => Ok(()),
            Op::Input if n.ty().dtype == DType::F32 => {
                match g.users(id).into_iter().find(|u| !matches!(g.node(*u).op, Op::Quantize)) {
                    Some(u) => Err(self.err(
                        u,
                        false,
                        format!(
                            "a {} operand, found the float graph input (run quantize before partition)",
                            self.width.scheme()
                        ),
                    )),
                    None => Ok(()),
                }
            }
            Op::Input => self.input(id, n.ty()),
            Op::Quantize => {
                let v = self.operand(id, 0)?;
                if !matches!(g.node(v.node).op, Op::Input) {
                    return Err(self.err(id, true, "quantize inside the graph (only of the graph input)"));
                }
                let ty = self.result_ty(id)?;
                self.input(id, ty)
            }
            Op::Conv2d(p) => self.conv(id, p),
            Op::Gemm(p) => self.gemm(id, p),
            Op::Add => self.add(id),
            Op::MaxPool(p) => self.maxpool(id, &p.window),
            Op::AvgPool(p) => self.avgpool(id, p),
            Op::GlobalAvgPool => self.global_avg_pool(id),
            Op::Concat(p) => self.concat(id, p.axis),
            Op::Softmax(_) => Err(self.err(
                id,
                true,
                "clio's integer interpreter defines softmax for affine int8 only, q8 and q16 keep it in float (keep it in the cloud part)",
            )),
            Op::Relu => self.clamp(id, 0.0, f32::INFINITY),
            Op::Clip(c) => self.clamp(id, c.min, c.max),
            Op::Flatten(_) | Op::Reshape(_) | Op::Squeeze(_) | Op::Unsqueeze(_) | Op::Transmit(_) => self.alias(id),
            Op::BatchNorm(_) => Err(self.err(id, true, "batch_norm (run fuse-bn before quantize)")),
            op => Err(self.err(
                id,
                true,
                format!("`{}` has no GAP8 kernel in this backend (keep it in the cloud part)", op.name()),
            )),
        }
    }
}

/// Lowers graph `graph` of `m` to a [`Program`].
pub(crate) fn lower(m: &Module, graph: &str, l1_budget: usize) -> Result<Program, Gap8Error> {
    let g = m.graph(graph).ok_or_else(|| Gap8Error::NoGraph(graph.to_string()))?;
    let gerr = |message: String| Gap8Error::Graph { graph: graph.to_string(), message };
    let order = g.topo_order().map_err(|c| gerr(format!("cycle at {}", c.0)))?;
    let width = width_of(g);
    let mut cx = Cx {
        m,
        g,
        acts: HashMap::new(),
        steps: vec![],
        buffers: vec![],
        producer: HashMap::new(),
        input: None,
        width,
        l1_budget,
    };
    for id in order {
        cx.node(id)?;
    }
    let input = cx.input.clone().ok_or_else(|| gerr(format!("no {} input", width.scheme())))?;
    let [out] = g.outputs() else {
        return Err(gerr(format!("expected one output (the cut tensor), found {}", g.outputs().len())));
    };
    let ty = g.value_type(*out).ok_or_else(|| gerr("untyped output".into()))?;
    let act = cx
        .acts
        .get(out)
        .copied()
        .ok_or_else(|| gerr(format!("the output is not a {} value computed on the device", width.scheme())))?;
    let f = frac(ty, width).ok_or_else(|| gerr(format!("the output must be {} per-tensor pow2", dtype(width))))?;
    if ty.shape.len() < 2 {
        return Err(gerr("the cut tensor must have a channel axis 1".into()));
    }
    let t = clio::ir::Tensor::zeros(ty.shape.clone(), dtype(width));
    let msg = clio::quant::wire::encode(&t, ty.quant.as_ref(), 1, ty.shape[1]).map_err(|e| gerr(e.to_string()))?;
    // The payload is the cut tensor's elements, channel-major (= planar CHW), little endian.
    let payload = t.len() * width.bytes();
    let header = msg[..msg.len() - payload].to_vec();
    let output = Io { name: g.node(out.node).name().to_string(), shape: ty.shape.clone(), frac: f, bytes: payload };
    let mut steps = cx.steps;
    super::elem_tiles::assign(&mut steps, width.bytes(), l1_budget);
    Ok(Program {
        graph: graph.to_string(),
        width,
        input,
        output,
        output_loc: act.loc,
        header,
        steps,
        buffers: cx.buffers,
    })
}

/// Cycles per MAC of an exact q16 HWCE plan and of the cluster cores at 16 bits, from the
/// built-in cost model (`passes / hwce_conv_macs_per_cycle` against
/// `cluster_i16_slowdown / cluster_conv_macs_per_cycle`).
fn q16_cycles_per_mac(plan: &hwce::HwcePlan) -> (f64, f64) {
    match super::estimate::builtin_desc() {
        Some(d) => {
            (plan.passes() as f64 / d.hwce_conv_macs_per_cycle, d.cluster_i16_slowdown / d.cluster_conv_macs_per_cycle)
        }
        None => (f64::INFINITY, 0.0),
    }
}

/// Whether an exact q16 HWCE plan beats the cluster cores at 16 bits.
fn q16_hwce_is_faster(plan: &hwce::HwcePlan) -> bool {
    let (hwce, cores) = q16_cycles_per_mac(plan);
    hwce < cores
}

/// The two rates of [`q16_cycles_per_mac`] as text.
fn q16_rates(plan: &hwce::HwcePlan) -> String {
    let (hwce, cores) = q16_cycles_per_mac(plan);
    format!("{hwce:.3} against {cores:.3} cycles per MAC")
}

/// Why a q16 convolution runs on the cluster cores: not an HWCE shape, or (`plan`) the exact
/// HWCE split it would need is slower than the cores.
fn q16_conv_reason(s: &ConvStep, plan: Option<&hwce::HwcePlan>) -> String {
    let what = if let Some(plan) = plan {
        format!(
            "q16, not the HWCE although it is a dense {k}x{k} stride-1 layer: exact 16-bit partial sums on the HWCE take 2 balanced 8-bit input digits x {} weight digit(s) of {} bits (its weights need {} bits) = {} passes, slower than the cores at 16 bits ({})",
            plan.digits,
            plan.bits,
            hwce::weight_bits(&s.weights),
            plan.passes(),
            q16_rates(plan),
            k = s.kh
        )
    } else if s.groups > 1 {
        format!("q16, {}x{} groups {}", s.kh, s.kw, s.groups)
    } else {
        format!("q16, {}x{}", s.kh, s.kw)
    };
    format!(
        "cluster (ClioKerParConvAcc32_fp): {what}; 16-bit activations, weights and biases, int32 accumulation of the 16-bit products over all input planes, one rounding and 16-bit saturation"
    )
}
