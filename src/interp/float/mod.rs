//! The f32 reference semantics of every builtin op (NCHW), following ONNX / PyTorch, one file
//! per op family:
//!
//! * `conv.rs`: `conv2d` (im2col + sgemm per group, direct path for depthwise);
//! * `pool.rs`: `max_pool`, `avg_pool`, `global_avg_pool`;
//! * `elementwise.rs`: `add`, `sub`, `mul`, `div`, `prelu` (NumPy broadcasting);
//! * `activation.rs`: `relu`, `clip`, `sigmoid`, `hard_sigmoid`, `hard_swish`, `softmax`;
//! * `linear.rs`: `gemm`, `matmul` and the checked sgemm wrapper;
//! * `norm.rs`: `batch_norm`, `scale_shift`;
//! * `layout.rs`: `flatten`, `reshape`, `squeeze`, `unsqueeze`, `transpose`, `concat`, `pad`,
//!   `channel_slice`, `transmit` (these move data of any element type);
//! * `quant.rs`: `quantize` / `dequantize` arithmetic (affine and power-of-two schemes).
//!
//! Arithmetic ops require f32 operands; integer tensors only flow through the data-movement
//! ops, `quantize` (result) and `dequantize` (operand).

mod activation;
mod conv;
mod elementwise;
mod layout;
mod linear;
mod norm;
mod pool;
mod quant;

#[cfg(test)]
pub(crate) use conv::conv2d_with_cap;

use super::{check_operands, CustomOpFn, OpEvaluator};
use crate::ir::{Graph, NodeId, Op, Tensor};
use std::collections::HashMap;

/// The elements of an f32 operand, or an error saying that the op needs f32.
pub(crate) fn f32s<'a>(t: &'a Tensor, what: &str) -> Result<&'a [f32], String> {
    t.as_f32().ok_or_else(|| {
        format!(
            "{what} must be f32 for the float interpreter, got {} (integer arithmetic is the integer interpreter's)",
            t.dtype()
        )
    })
}

/// An f32 tensor of `shape` (internal shape mismatches become messages).
pub(crate) fn f32_tensor(shape: &[usize], data: Vec<f32>) -> Result<Tensor, String> {
    super::shared::tensor(shape, data)
}

/// Evaluates builtin ops with f32 semantics, and custom ops through registered closures.
#[derive(Default)]
pub struct FloatEvaluator {
    customs: HashMap<String, CustomOpFn>,
}

impl std::fmt::Debug for FloatEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.customs.keys().collect();
        names.sort();
        f.debug_struct("FloatEvaluator").field("customs", &names).finish()
    }
}

impl FloatEvaluator {
    /// An evaluator without custom ops.
    pub fn new() -> Self {
        FloatEvaluator::default()
    }

    /// Registers (or replaces) the implementation of custom op `name`.
    pub fn register(&mut self, name: impl Into<String>, f: CustomOpFn) {
        self.customs.insert(name.into(), f);
    }

    /// True if custom op `name` has an implementation.
    pub fn has_custom(&self, name: &str) -> bool {
        self.customs.contains_key(name)
    }
}

impl OpEvaluator for FloatEvaluator {
    fn eval(&self, graph: &Graph, node: NodeId, operands: &[&Tensor]) -> Result<Vec<Tensor>, String> {
        check_operands(graph, node, operands)?;
        let n = graph.get(node).ok_or_else(|| format!("node {node} does not exist"))?;
        let arg = |i: usize| operands.get(i).copied().ok_or_else(|| format!("missing operand {i}"));
        let result_ty = n.results.first().ok_or("the node declares no result")?;
        let out_shape = result_ty.shape.as_slice();
        let one = |t: Result<Tensor, String>| t.map(|t| vec![t]);
        match &n.op {
            Op::Input | Op::Weight { .. } => Err("input and weight nodes are read by the graph walker".into()),
            Op::Conv2d(p) => one(conv::conv2d(p, arg(0)?, arg(1)?, operands.get(2).copied())),
            Op::BatchNorm(p) => one(norm::batch_norm(p, arg(0)?, arg(1)?, arg(2)?, arg(3)?, arg(4)?)),
            Op::ScaleShift => one(norm::scale_shift(arg(0)?, arg(1)?, arg(2)?)),
            Op::Relu => one(activation::relu(arg(0)?)),
            Op::Clip(p) => one(activation::clip(p, arg(0)?)),
            Op::Sigmoid => one(activation::sigmoid(arg(0)?)),
            Op::HardSigmoid(p) => one(activation::hard_sigmoid(p, arg(0)?)),
            Op::HardSwish => one(activation::hard_swish(arg(0)?)),
            Op::PRelu => one(elementwise::prelu(arg(0)?, arg(1)?)),
            Op::Softmax(p) => one(activation::softmax(p, arg(0)?)),
            Op::Add => one(elementwise::binary(elementwise::BinOp::Add, arg(0)?, arg(1)?)),
            Op::Sub => one(elementwise::binary(elementwise::BinOp::Sub, arg(0)?, arg(1)?)),
            Op::Mul => one(elementwise::binary(elementwise::BinOp::Mul, arg(0)?, arg(1)?)),
            Op::Div => one(elementwise::binary(elementwise::BinOp::Div, arg(0)?, arg(1)?)),
            Op::Concat(p) => one(layout::concat(p, operands, out_shape)),
            Op::MaxPool(p) => one(pool::max_pool(p, arg(0)?)),
            Op::AvgPool(p) => one(pool::avg_pool(p, arg(0)?)),
            Op::GlobalAvgPool => one(pool::global_avg_pool(arg(0)?)),
            Op::Gemm(p) => one(linear::gemm(p, arg(0)?, arg(1)?, operands.get(2).copied())),
            Op::MatMul => one(linear::matmul(arg(0)?, arg(1)?, out_shape)),
            Op::Flatten(_) | Op::Reshape(_) | Op::Squeeze(_) | Op::Unsqueeze(_) => {
                one(layout::reshape(arg(0)?, out_shape))
            }
            Op::Transpose(p) => one(layout::transpose(p, arg(0)?)),
            Op::Pad(p) => one(layout::pad(p, arg(0)?)),
            Op::ChannelSlice(p) => one(layout::channel_slice(p, arg(0)?)),
            Op::Transmit(_) => one(Ok(arg(0)?.clone())),
            Op::Quantize => one(quant::quantize(arg(0)?, result_ty)),
            Op::Dequantize => {
                let v = graph.operand(node, 0).ok_or("missing operand 0")?;
                let ty = graph.value_type(v).ok_or("operand 0 has no type")?;
                one(quant::dequantize(arg(0)?, ty))
            }
            Op::Custom(c) => match self.customs.get(&c.name) {
                Some(f) => f(operands, &c.attrs).map_err(|e| format!("custom op `{}` failed: {e}", c.name)),
                None => Err(format!(
                    "no implementation registered for custom op `{}` (register one with Interpreter::with_custom)",
                    c.name
                )),
            },
        }
    }
}

#[cfg(test)]
pub(crate) fn bench_sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], trans_b: bool, c: &mut [f32]) {
    use linear::Mat;
    let bm = if trans_b { Mat { data: b, off: 0, rs: 1, cs: k } } else { Mat { data: b, off: 0, rs: n, cs: 1 } };
    linear::sgemm(m, k, n, 1.0, Mat { data: a, off: 0, rs: k, cs: 1 }, bm, 0.0, c, 0, n).unwrap();
}
