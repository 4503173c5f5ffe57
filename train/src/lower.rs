//! Runs a clio graph as a differentiable candle computation on a batch.
//!
//! The IR fixes the batch size at 1; here axis 0 of every activation is the batch. Weights are
//! read from a [`ParamStore`], so weights with the same name are the same variable wherever
//! they are read (tied between heads). Batch norm uses the batch statistics in
//! [`Mode::Train`] (and updates the running statistics with momentum 0.1 and the unbiased batch
//! variance, as PyTorch does) and the running statistics in [`Mode::Eval`].

use crate::clamp;
use crate::conv::{self, ConvGeometry};
use crate::error::TrainError;
use crate::fused;
use crate::params::ParamStore;
use candle_core::{DType, Device, Tensor, D};
use clio::ir::{Graph, NodeId, Op, Value};
use clio::ops::{Conv2d, Window2d};
use std::collections::HashMap;

/// Batch-norm running-statistics momentum (PyTorch's default).
pub const BN_MOMENTUM: f64 = 0.1;

/// Training or evaluation behaviour of batch norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics; running statistics updated.
    Train,
    /// Running statistics.
    Eval,
}

/// An error about node `id` of `g`.
fn unsupported(g: &Graph, id: NodeId, message: impl Into<String>) -> TrainError {
    let n = g.node(id);
    TrainError::Unsupported {
        graph: g.name().to_string(),
        node: n.name().to_string(),
        op: n.op.name().to_string(),
        message: message.into(),
    }
}

/// Runs `g` on `inputs` (batch on axis 0) and returns its outputs. In [`Mode::Train`] the
/// running statistics in `params` are updated.
pub fn forward(g: &Graph, inputs: &[Tensor], params: &mut ParamStore, mode: Mode) -> Result<Vec<Tensor>, TrainError> {
    let order = g.topo_order().map_err(|c| unsupported(g, c.0, "the graph has a cycle through this node"))?;
    if inputs.len() != g.inputs().len() {
        return Err(TrainError::Module(format!(
            "graph @{} takes {} inputs, got {}",
            g.name(),
            g.inputs().len(),
            inputs.len()
        )));
    }
    let mut values: HashMap<Value, Tensor> = HashMap::new();
    for (id, t) in g.inputs().iter().zip(inputs) {
        values.insert(Value::of(*id), t.clone());
    }
    let live = live_nodes(g);
    for id in order.into_iter().filter(|n| live.contains(n)) {
        if values.contains_key(&Value::of(id)) {
            continue;
        }
        let operands: Vec<Tensor> = g
            .operands(id)
            .iter()
            .map(|v| values.get(v).cloned().ok_or_else(|| unsupported(g, id, "reads a value that was not computed")))
            .collect::<Result<_, _>>()?;
        let out = eval_node(g, id, &operands, params, mode)?;
        values.insert(Value::of(id), out);
    }
    g.outputs()
        .iter()
        .map(|v| {
            values.get(v).cloned().ok_or_else(|| TrainError::Module(format!("graph @{} output not computed", g.name())))
        })
        .collect()
}

/// Nodes some output depends on.
fn live_nodes(g: &Graph) -> std::collections::HashSet<NodeId> {
    let mut live = std::collections::HashSet::new();
    let mut stack: Vec<NodeId> = g.outputs().iter().map(|v| v.node).collect();
    while let Some(n) = stack.pop() {
        if live.insert(n) {
            stack.extend(g.producers(n));
        }
    }
    live
}

/// `[C]` -> `[1, C, 1, 1]` for broadcasting over NCHW.
fn per_channel(t: &Tensor) -> Result<Tensor, candle_core::Error> {
    t.reshape((1, t.elem_count(), 1, 1))
}

fn eval_node(g: &Graph, id: NodeId, x: &[Tensor], params: &mut ParamStore, mode: Mode) -> Result<Tensor, TrainError> {
    let op = &g.node(id).op;
    let arg = |i: usize| x.get(i).ok_or_else(|| unsupported(g, id, format!("missing operand {i}")));
    let t = match op {
        Op::Input => return Err(unsupported(g, id, "an input that is not in the graph's input list")),
        Op::Weight { name } => params
            .get(name)
            .ok_or_else(|| unsupported(g, id, format!("weight @{name} is not in the parameter store")))?,
        Op::Conv2d(c) => conv2d(g, id, c, arg(0)?, arg(1)?, x.get(2))?,
        Op::BatchNorm(bn) => batch_norm(g, id, x, bn.epsilon as f64, params, mode)?,
        Op::ScaleShift => arg(0)?.broadcast_mul(&per_channel(arg(1)?)?)?.broadcast_add(&per_channel(arg(2)?)?)?,
        Op::Relu => clamp::relu(arg(0)?)?,
        Op::Clip(c) => clamp::clamp(arg(0)?, c.min, c.max)?,
        Op::Sigmoid => candle_nn::ops::sigmoid(arg(0)?)?,
        Op::HardSigmoid(h) => arg(0)?.affine(h.alpha as f64, h.beta as f64)?.clamp(0f32, 1f32)?,
        Op::HardSwish => {
            let a = arg(0)?;
            a.mul(&a.affine(1.0 / 6.0, 0.5)?.clamp(0f32, 1f32)?)?
        }
        Op::PRelu => {
            let a = arg(0)?;
            let neg = a.minimum(0f32)?.broadcast_mul(arg(1)?)?;
            a.relu()?.add(&neg)?
        }
        Op::Softmax(s) => candle_nn::ops::softmax(arg(0)?, s.axis)?,
        Op::Add => arg(0)?.broadcast_add(arg(1)?)?,
        Op::Sub => arg(0)?.broadcast_sub(arg(1)?)?,
        Op::Mul => arg(0)?.broadcast_mul(arg(1)?)?,
        Op::Div => arg(0)?.broadcast_div(arg(1)?)?,
        Op::Concat(c) => Tensor::cat(x, c.axis)?,
        Op::MaxPool(p) => max_pool(g, id, &p.window, arg(0)?)?,
        Op::AvgPool(p) => avg_pool(g, id, &p.window, p.count_include_pad, arg(0)?)?,
        Op::GlobalAvgPool => arg(0)?.mean_keepdim(3)?.mean_keepdim(2)?,
        Op::Gemm(gm) => {
            let a = if gm.trans_a { arg(0)?.t()? } else { arg(0)?.clone() };
            let b = if gm.trans_b { arg(1)?.t()? } else { arg(1)?.clone() };
            let mut y = a.matmul(&b)?;
            if gm.alpha != 1.0 {
                y = y.affine(gm.alpha as f64, 0.0)?;
            }
            if let Some(c) = x.get(2) {
                let c = if gm.beta != 1.0 { c.affine(gm.beta as f64, 0.0)? } else { c.clone() };
                y = y.broadcast_add(&c)?;
            }
            y
        }
        Op::MatMul => arg(0)?.broadcast_matmul(arg(1)?)?,
        Op::Flatten(f) => {
            let a = arg(0)?;
            if f.axis == 0 {
                return Err(unsupported(g, id, "flatten from axis 0 would merge the batch"));
            }
            let dims = a.dims();
            let outer: usize = dims[..f.axis.min(dims.len())].iter().product();
            a.reshape((outer, a.elem_count() / outer.max(1)))?
        }
        Op::Reshape(r) => {
            let a = arg(0)?;
            let batch = a.dim(0)?;
            if r.shape.first() != Some(&1) {
                return Err(unsupported(g, id, "a reshape must keep the batch axis (leading 1)"));
            }
            let mut shape = r.shape.clone();
            shape[0] = batch;
            a.reshape(shape)?
        }
        Op::Transpose(t) => {
            if t.perm.first() != Some(&0) {
                return Err(unsupported(g, id, "a transpose must keep the batch axis first"));
            }
            arg(0)?.permute(t.perm.clone())?.contiguous()?
        }
        Op::Squeeze(s) => {
            let a = arg(0)?;
            if s.axes.contains(&0) {
                return Err(unsupported(g, id, "squeezing the batch axis"));
            }
            let mut out = a.clone();
            let mut axes = s.axes.clone();
            axes.sort_unstable_by(|p, q| q.cmp(p));
            for ax in axes {
                out = out.squeeze(ax)?;
            }
            out
        }
        Op::Unsqueeze(u) => {
            if u.axes.contains(&0) {
                return Err(unsupported(g, id, "unsqueezing at the batch axis"));
            }
            let mut out = arg(0)?.clone();
            let mut axes = u.axes.clone();
            axes.sort_unstable();
            for ax in axes {
                out = out.unsqueeze(ax)?;
            }
            out
        }
        Op::Pad(p) => pad(arg(0)?, p)?,
        Op::ChannelSlice(s) => arg(0)?.narrow(s.axis, s.start, s.end - s.start)?,
        Op::Transmit(_) => arg(0)?.clone(),
        Op::Quantize | Op::Dequantize | Op::Custom(_) => {
            return Err(unsupported(g, id, "not differentiable here: train the float module before quantizing"))
        }
        _ => return Err(unsupported(g, id, "no training rule for this op")),
    };
    Ok(t)
}

/// `pad` in every mode: constant (any value), edge and reflect (as index selections, so they
/// differentiate).
fn pad(a: &Tensor, p: &clio::ops::Pad) -> Result<Tensor, candle_core::Error> {
    use clio::ops::PadMode;
    let rank = a.rank();
    let mut out = a.clone();
    for d in 0..rank {
        let (lo, hi) = (p.pads.get(d).copied().unwrap_or(0), p.pads.get(d + rank).copied().unwrap_or(0));
        if lo + hi == 0 {
            continue;
        }
        let n = out.dim(d)? as i64;
        out = match p.mode {
            PadMode::Constant if p.value == 0.0 => out.pad_with_zeros(d, lo, hi)?,
            PadMode::Constant => {
                let v = p.value as f64;
                out.affine(1.0, -v)?.pad_with_zeros(d, lo, hi)?.affine(1.0, v)?
            }
            PadMode::Edge | PadMode::Reflect => {
                let idx: Vec<u32> = (-(lo as i64)..n + hi as i64)
                    .map(|i| {
                        let j = if p.mode == PadMode::Edge {
                            i.clamp(0, n - 1)
                        } else if i < 0 {
                            -i
                        } else if i >= n {
                            2 * (n - 1) - i
                        } else {
                            i
                        };
                        j.clamp(0, n - 1) as u32
                    })
                    .collect();
                out.contiguous()?.index_select(&Tensor::new(idx.as_slice(), out.device())?, d)?
            }
        };
    }
    Ok(out)
}

/// Zero padding `[top, left, bottom, right]` of an NCHW tensor.
fn pad_hw(x: &Tensor, pads: [usize; 4]) -> Result<Tensor, candle_core::Error> {
    let [t, l, b, r] = pads;
    let x = if t + b > 0 { x.pad_with_zeros(2, t, b)? } else { x.clone() };
    if l + r > 0 {
        x.pad_with_zeros(3, l, r)
    } else {
        Ok(x)
    }
}

fn conv2d(
    g: &Graph,
    id: NodeId,
    c: &Conv2d,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor, TrainError> {
    let (o, _, _, _) = w.dims4()?;
    let cin = x.dim(1)?;
    let geometry = ConvGeometry { strides: c.strides, pads: c.pads, dilations: c.dilations };
    let y = if c.groups > 1 && c.groups == cin && o == cin {
        fused::depthwise_conv(x, w, geometry)?
    } else {
        conv::conv2d(x, w, geometry, c.groups).map_err(|e| unsupported(g, id, e.to_string()))?
    };
    Ok(match bias {
        Some(b) => fused::channel_bias(&y, b)?,
        None => y,
    })
}

fn batch_norm(
    g: &Graph,
    id: NodeId,
    x: &[Tensor],
    eps: f64,
    params: &mut ParamStore,
    mode: Mode,
) -> Result<Tensor, TrainError> {
    let [a, gamma, beta, mean, var] = x else {
        return Err(unsupported(g, id, "batch_norm takes 5 operands"));
    };
    let (mean_used, var_used) = match mode {
        Mode::Eval => (mean.clone(), var.clone()),
        Mode::Train => {
            let (n, _, h, w) = a.dims4()?;
            let (y, bm, bv) = fused::batch_norm_train(a, gamma, beta, eps)?;
            // Running statistics (no gradient): unbiased variance, as PyTorch.
            let count = (n * h * w) as f32;
            let unbiased = if count > 1.0 { count / (count - 1.0) } else { 1.0 };
            let m = BN_MOMENTUM as f32;
            let rm: Vec<f32> = mean.to_vec1::<f32>()?.iter().zip(&bm).map(|(r, b)| (1.0 - m) * r + m * b).collect();
            let rv: Vec<f32> =
                var.to_vec1::<f32>()?.iter().zip(&bv).map(|(r, b)| (1.0 - m) * r + m * b * unbiased).collect();
            for (slot, t) in [(3usize, rm), (4usize, rv)] {
                if let Some(name) = g.operand(id, slot).and_then(|v| g.weight_name(v)) {
                    let len = t.len();
                    params.set_buffer(name, Tensor::from_vec(t, len, &Device::Cpu)?);
                }
            }
            return Ok(y);
        }
    };
    let inv = per_channel(&var_used.affine(1.0, eps)?.sqrt()?.recip()?)?;
    let norm = a.broadcast_sub(&per_channel(&mean_used)?)?.broadcast_mul(&inv)?;
    Ok(norm.broadcast_mul(&per_channel(gamma)?)?.broadcast_add(&per_channel(beta)?)?)
}

/// Padding `[top, left, bottom + extra_h, right + extra_w]` so that pooling without padding
/// yields the node's declared output size (`ceil_mode` adds the `extra` rows and columns).
fn pool_pads(g: &Graph, id: NodeId, w: &Window2d, x: &Tensor) -> Result<[usize; 4], TrainError> {
    let (_, _, h, wd) = x.dims4()?;
    let out = &g.node(id).ty().shape;
    let [oh, ow] = match out.as_slice() {
        [_, _, oh, ow] => [*oh, *ow],
        _ => return Err(unsupported(g, id, "pooling needs an NCHW result")),
    };
    let [t, l, b, r] = w.pads;
    let need_h = (oh.max(1) - 1) * w.strides[0] + w.kernel[0];
    let need_w = (ow.max(1) - 1) * w.strides[1] + w.kernel[1];
    let extra_h = need_h.saturating_sub(h + t + b);
    let extra_w = need_w.saturating_sub(wd + l + r);
    if w.kernel[0] > h + t + b + extra_h || w.kernel[1] > wd + l + r + extra_w {
        return Err(unsupported(g, id, "pooling window larger than the padded input"));
    }
    Ok([t, l, b + extra_h, r + extra_w])
}

fn max_pool(g: &Graph, id: NodeId, w: &Window2d, x: &Tensor) -> Result<Tensor, TrainError> {
    let pads = pool_pads(g, id, w, x)?;
    let xp = if pads.iter().any(|p| *p > 0) {
        // -inf padding: shift so the minimum is above the pad value, pad zeros, shift back.
        let lo = x.min_all()?.to_scalar::<f32>()?;
        let shift = (1.0 - lo).max(0.0) as f64;
        pad_hw(&x.affine(1.0, shift)?, pads)?.affine(1.0, -shift)?
    } else {
        x.clone()
    };
    Ok(xp.max_pool2d_with_stride((w.kernel[0], w.kernel[1]), (w.strides[0], w.strides[1]))?)
}

/// Average pooling: the window sum over the number of counted positions (real ones, plus the
/// explicit padding with `count_include_pad`; never the `ceil_mode` overhang), as PyTorch.
fn avg_pool(g: &Graph, id: NodeId, w: &Window2d, count_pad: bool, x: &Tensor) -> Result<Tensor, TrainError> {
    let pads = pool_pads(g, id, w, x)?;
    let (k, s) = ((w.kernel[0], w.kernel[1]), (w.strides[0], w.strides[1]));
    let y = pad_hw(x, pads)?.avg_pool2d_with_stride(k, s)?;
    if pads == [0; 4] || (count_pad && pads == w.pads) {
        return Ok(y);
    }
    let (_, _, ih, iw) = x.dims4()?;
    let ones = Tensor::ones((1, 1, ih, iw), DType::F32, &Device::Cpu)?;
    let mask = if count_pad {
        let with_pads = pad_hw(&ones.affine(1.0, -1.0)?, w.pads)?.affine(1.0, 1.0)?;
        pad_hw(&with_pads, [0, 0, pads[2] - w.pads[2], pads[3] - w.pads[3]])?
    } else {
        pad_hw(&ones, pads)?
    };
    let frac = mask.avg_pool2d_with_stride(k, s)?;
    Ok(y.broadcast_div(&frac)?)
}

/// Mean cross-entropy of `logits` `[B, K]` against `labels` `[B]` (u32).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor, candle_core::Error> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&labels.unsqueeze(1)?, 1)?;
    picked.mean_all()?.neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_is_the_mean_negative_log_likelihood() {
        let logits = Tensor::new(&[[2f32, 0.0, -1.0], [0.0, 0.0, 0.0]], &Device::Cpu).unwrap();
        let labels = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        let got = cross_entropy(&logits, &labels).unwrap().to_scalar::<f32>().unwrap();
        let l0 = -(2f32.exp() / (2f32.exp() + 1.0 + (-1f32).exp())).ln();
        let l1 = 3f32.ln();
        assert!((got - (l0 + l1) / 2.0).abs() < 1e-6, "{got}");
    }
}
