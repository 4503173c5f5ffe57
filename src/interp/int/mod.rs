//! The bit-exact integer evaluator: a sibling of [`crate::interp::FloatEvaluator`] that runs
//! quantized graphs with exactly the integer arithmetic of each scheme, so that generated C
//! (CMSIS-NN s8, legacy q7, GAP8 `_fp`/`_fps`) must match it bit for bit.
//!
//! The scheme of a node is read off its declared types: `affine<...>` activations (i8) use the
//! TFLite / CMSIS-NN s8 arithmetic, `pow2<...>` activations (i8 or i16) use the Q-format
//! arithmetic. Requantisation parameters are never stored: they are derived from the operand
//! and result quantization exactly as TFLite derives them (see `conv.rs`). One file per op
//! family:
//!
//! * `conv.rs`: `conv2d` (plain, grouped, depthwise), `gemm` (fully connected);
//! * `elementwise.rs`: `add` (TFLite's left_shift = 20 scheme), `relu`, `clip`;
//! * `pool.rs`: `max_pool`, `avg_pool`, `global_avg_pool`;
//! * `softmax.rs`: TFLite's int8 softmax with gemmlowp fixed-point `exp`;
//! * `layout.rs`: data movement (`flatten`, `reshape`, `squeeze`, `unsqueeze`, `transpose`,
//!   `concat`, `pad`, `channel_slice`, `transmit`), operands and result in one format.
//!
//! `quantize`, `dequantize`, custom ops and every node whose operands are all f32 (the ops a
//! quantized graph keeps in float) are delegated to an inner [`FloatEvaluator`].
//!
//! ```
//! use clio::interp::{Interpreter, IntEvaluator};
//! use clio::ir::{Module, Tensor};
//! let m: Module = clio::text::parse_module(
//!     "module @m { graph @main(%x: tensor<4xf32>) -> (tensor<4xf32>) {
//!        %q = quantize(%x) : tensor<4xi8, affine<0.5:0>>
//!        %r = relu(%q) : tensor<4xi8, affine<0.5:0>>
//!        %y = dequantize(%r) : tensor<4xf32>
//!        return %y } }",
//!     &Default::default()).unwrap();
//! let x = Tensor::from_f32([4], vec![-1.0, 0.2, 1.3, 100.0]).unwrap();
//! let y = clio::interp::run_int(&m, "main", &[x]).unwrap();
//! assert_eq!(y[0].as_f32().unwrap(), &[0.0, 0.0, 1.5, 63.5]);
//! ```

mod conv;
mod elementwise;
mod layout;
mod params;
mod pool;
mod softmax;

pub use pool::{mean_multiplier, pow2_mean, pow2_mean_params};
pub use softmax::softmax_params;

use super::{check_operands, FloatEvaluator, OpEvaluator};
use crate::ir::{DType, Graph, NodeId, Op, Tensor, TensorType};

/// Evaluates quantized nodes with integer arithmetic and everything else in float.
#[derive(Debug, Default)]
pub struct IntEvaluator {
    float: FloatEvaluator,
}

impl IntEvaluator {
    /// An evaluator without custom ops.
    pub fn new() -> Self {
        IntEvaluator::default()
    }

    /// The float evaluator used for `quantize`, `dequantize`, float nodes and custom ops
    /// (register custom ops on it).
    pub fn float_mut(&mut self) -> &mut FloatEvaluator {
        &mut self.float
    }
}

impl OpEvaluator for IntEvaluator {
    fn eval(&self, graph: &Graph, node: NodeId, operands: &[&Tensor]) -> Result<Vec<Tensor>, String> {
        check_operands(graph, node, operands)?;
        let n = graph.get(node).ok_or_else(|| format!("node {node} does not exist"))?;
        if matches!(n.op, Op::Quantize | Op::Dequantize | Op::Custom(_))
            || operands.iter().all(|t| t.dtype() == DType::F32)
        {
            return self.float.eval(graph, node, operands);
        }
        let values = graph.operands(node);
        let tys: Vec<&TensorType> = values
            .iter()
            .map(|v| graph.value_type(*v).ok_or_else(|| "operand without a type".to_string()))
            .collect::<Result<_, _>>()?;
        let y = n.results.first().ok_or("the node declares no result")?;
        let arg = |i: usize| operands.get(i).copied().ok_or_else(|| format!("missing operand {i}"));
        let one = |t: Result<Tensor, String>| t.map(|t| vec![t]);
        match &n.op {
            Op::Conv2d(p) => one(conv::conv2d(p, arg(0)?, arg(1)?, operands.get(2).copied(), &tys, y)),
            Op::Gemm(p) => one(conv::gemm(p, arg(0)?, arg(1)?, operands.get(2).copied(), &tys, y)),
            Op::Add => one(elementwise::add(arg(0)?, arg(1)?, &tys, y)),
            Op::Relu => one(elementwise::clamp(arg(0)?, 0.0, f32::INFINITY, tys[0], y)),
            Op::Clip(c) => one(elementwise::clamp(arg(0)?, c.min, c.max, tys[0], y)),
            Op::MaxPool(p) => one(pool::max_pool(arg(0)?, &p.window, tys[0], y)),
            Op::AvgPool(p) => one(pool::avg_pool(arg(0)?, &p.window, p.count_include_pad, tys[0], y)),
            Op::GlobalAvgPool => one(pool::global_avg_pool(arg(0)?, tys[0], y)),
            Op::Softmax(p) => one(softmax::softmax(arg(0)?, p.axis, tys[0], y)),
            Op::Concat(p) => one(layout::concat(operands, p.axis, &tys, y)),
            Op::Flatten(_) | Op::Reshape(_) | Op::Squeeze(_) | Op::Unsqueeze(_) | Op::Transmit(_) => {
                one(layout::reshape(arg(0)?, tys[0], y, n.op.name()))
            }
            Op::Transpose(p) => one(layout::transpose(arg(0)?, &p.perm, tys[0], y)),
            Op::Pad(p) => one(layout::pad(p, arg(0)?, tys[0], y)),
            Op::ChannelSlice(p) => one(layout::slice(arg(0)?, p.axis, p.start, p.end, tys[0], y)),
            op => Err(format!(
                "`{}` has no integer implementation (keep it in float: quantize{{float-ops={}}})",
                op.name(),
                op.name()
            )),
        }
    }
}
