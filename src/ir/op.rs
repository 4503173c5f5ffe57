//! The [`Op`] enum: every builtin operation plus graph inputs, weight references and custom ops.
//!
//! Operand conventions (all activations NCHW):
//!
//! | op | operands | attributes |
//! |---|---|---|
//! | `input` | - (a graph argument) | |
//! | `weight` | - (reads module weight `@name`) | name |
//! | `conv2d` | x, w (OIHW), b? | strides, pads, dilations, groups |
//! | `batch_norm` | x, gamma, beta, mean, var | epsilon |
//! | `scale_shift` | x, scale[C], shift[C] | |
//! | `relu`, `sigmoid`, `hard_swish` | x | |
//! | `clip` | x | min, max |
//! | `hard_sigmoid` | x | alpha, beta |
//! | `prelu` | x, slope (broadcast to x) | |
//! | `softmax` | x | axis |
//! | `add`, `sub`, `mul`, `div` | a, b (NumPy broadcast) | |
//! | `concat` | x0, x1, ... | axis |
//! | `max_pool`, `avg_pool` | x | kernel, strides, pads, ceil_mode (+ count_include_pad) |
//! | `global_avg_pool` | x | |
//! | `gemm` | a, b, c? | alpha, beta, trans_a, trans_b |
//! | `matmul` | a, b | |
//! | `flatten`, `reshape`, `squeeze`, `unsqueeze`, `transpose`, `pad` | x | see [`crate::ops`] |
//! | `quantize`, `dequantize` | x | (result type) |
//! | `channel_slice` | x | axis, start, end |
//! | `transmit` | x | to |
//! | `custom<"name">` | any | any |

use super::{Attr, AttrMap, AttrReader, TensorType};
use crate::ops::{self, Inferred};

/// An operation. `#[non_exhaustive]`: later versions add ops; match with a wildcard arm.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// A graph argument (its position is its index in [`crate::ir::Graph::inputs`]).
    Input,
    /// Reads the module weight with this name.
    Weight {
        /// Weight name in the module's weight table.
        name: String,
    },
    /// 2-D convolution (grouped / depthwise through `groups`).
    Conv2d(ops::Conv2d),
    /// Inference-mode batch normalisation over axis 1.
    BatchNorm(ops::BatchNorm),
    /// Per-channel affine `x * scale[c] + shift[c]` over axis 1.
    ScaleShift,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, min), max)`; ReLU6 is `clip {min = 0, max = 6}`.
    Clip(ops::Clip),
    /// Logistic sigmoid.
    Sigmoid,
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid(ops::HardSigmoid),
    /// `x * relu6(x + 3) / 6`.
    HardSwish,
    /// `x >= 0 ? x : slope * x`.
    PRelu,
    /// Softmax along an axis.
    Softmax(ops::Softmax),
    /// Element-wise sum.
    Add,
    /// Element-wise difference.
    Sub,
    /// Element-wise product.
    Mul,
    /// Element-wise quotient.
    Div,
    /// Concatenation along an axis.
    Concat(ops::Concat),
    /// 2-D max pooling.
    MaxPool(ops::MaxPool),
    /// 2-D average pooling.
    AvgPool(ops::AvgPool),
    /// Mean over all spatial dimensions.
    GlobalAvgPool,
    /// ONNX Gemm (fully connected).
    Gemm(ops::Gemm),
    /// NumPy matmul.
    MatMul,
    /// Flatten to 2-D.
    Flatten(ops::Flatten),
    /// Static reshape.
    Reshape(ops::Reshape),
    /// Remove size-1 axes.
    Squeeze(ops::Squeeze),
    /// Insert size-1 axes.
    Unsqueeze(ops::Unsqueeze),
    /// Permute axes.
    Transpose(ops::Transpose),
    /// Pad borders.
    Pad(ops::Pad),
    /// Real to integer, per the declared result type's quantization.
    Quantize,
    /// Integer to f32.
    Dequantize,
    /// Keep a contiguous range of one axis.
    ChannelSlice(ops::ChannelSlice),
    /// Cross the device-cloud link.
    Transmit(ops::Transmit),
    /// An op clio does not know.
    Custom(ops::CustomOp),
}

/// How many operands an op accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arity {
    /// Minimum operand count.
    pub min: usize,
    /// Maximum operand count (`usize::MAX` for variadic).
    pub max: usize,
}

impl Arity {
    const fn exactly(n: usize) -> Arity {
        Arity { min: n, max: n }
    }
    /// True if `n` operands are acceptable.
    pub fn accepts(&self, n: usize) -> bool {
        n >= self.min && n <= self.max
    }
}

impl std::fmt::Display for Arity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else if self.max == usize::MAX {
            write!(f, "at least {}", self.min)
        } else {
            write!(f, "{} to {}", self.min, self.max)
        }
    }
}

/// The names of every builtin op as spelled in the text format (custom ops excluded).
pub const BUILTIN_OP_NAMES: &[&str] = &[
    "input",
    "weight",
    "conv2d",
    "batch_norm",
    "scale_shift",
    "relu",
    "clip",
    "sigmoid",
    "hard_sigmoid",
    "hard_swish",
    "prelu",
    "softmax",
    "add",
    "sub",
    "mul",
    "div",
    "concat",
    "max_pool",
    "avg_pool",
    "global_avg_pool",
    "gemm",
    "matmul",
    "flatten",
    "reshape",
    "squeeze",
    "unsqueeze",
    "transpose",
    "pad",
    "quantize",
    "dequantize",
    "channel_slice",
    "transmit",
];

impl Op {
    /// The op's text-format name (`conv2d`, `batch_norm`, ...; a custom op's own name).
    pub fn name(&self) -> &str {
        match self {
            Op::Input => "input",
            Op::Weight { .. } => "weight",
            Op::Conv2d(_) => "conv2d",
            Op::BatchNorm(_) => "batch_norm",
            Op::ScaleShift => "scale_shift",
            Op::Relu => "relu",
            Op::Clip(_) => "clip",
            Op::Sigmoid => "sigmoid",
            Op::HardSigmoid(_) => "hard_sigmoid",
            Op::HardSwish => "hard_swish",
            Op::PRelu => "prelu",
            Op::Softmax(_) => "softmax",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Concat(_) => "concat",
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool(_) => "avg_pool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Gemm(_) => "gemm",
            Op::MatMul => "matmul",
            Op::Flatten(_) => "flatten",
            Op::Reshape(_) => "reshape",
            Op::Squeeze(_) => "squeeze",
            Op::Unsqueeze(_) => "unsqueeze",
            Op::Transpose(_) => "transpose",
            Op::Pad(_) => "pad",
            Op::Quantize => "quantize",
            Op::Dequantize => "dequantize",
            Op::ChannelSlice(_) => "channel_slice",
            Op::Transmit(_) => "transmit",
            Op::Custom(c) => &c.name,
        }
    }

    /// Accepted operand counts. Custom ops accept any number.
    pub fn arity(&self) -> Arity {
        match self {
            Op::Input | Op::Weight { .. } => Arity::exactly(0),
            Op::Conv2d(_) | Op::Gemm(_) => Arity { min: 2, max: 3 },
            Op::BatchNorm(_) => Arity::exactly(5),
            Op::ScaleShift => Arity::exactly(3),
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::PRelu | Op::MatMul => Arity::exactly(2),
            Op::Concat(_) => Arity { min: 1, max: usize::MAX },
            Op::Custom(_) => Arity { min: 0, max: usize::MAX },
            _ => Arity::exactly(1),
        }
    }

    /// Attributes in printing order (empty for attribute-free ops; custom ops return theirs).
    pub fn attrs(&self) -> Vec<(String, Attr)> {
        let typed: Vec<(&'static str, Attr)> = match self {
            Op::Weight { .. } => vec![],
            Op::Conv2d(o) => o.attrs(),
            Op::BatchNorm(o) => o.attrs(),
            Op::Clip(o) => o.attrs(),
            Op::HardSigmoid(o) => o.attrs(),
            Op::Softmax(o) => o.attrs(),
            Op::Concat(o) => o.attrs(),
            Op::MaxPool(o) => o.attrs(),
            Op::AvgPool(o) => o.attrs(),
            Op::Gemm(o) => o.attrs(),
            Op::Flatten(o) => o.attrs(),
            Op::Reshape(o) => o.attrs(),
            Op::Squeeze(o) => o.attrs(),
            Op::Unsqueeze(o) => o.attrs(),
            Op::Transpose(o) => o.attrs(),
            Op::Pad(o) => o.attrs(),
            Op::ChannelSlice(o) => o.attrs(),
            Op::Transmit(o) => o.attrs(),
            Op::Custom(c) => return c.attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => vec![],
        };
        typed.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Builds a builtin op from its text name and attributes (`input` and `weight` excluded:
    /// they have their own syntax). Unknown names and bad attributes give a message.
    pub fn from_parts(name: &str, attrs: AttrMap) -> Result<Op, String> {
        let mut r = AttrReader::new(name, attrs);
        let op = match name {
            "conv2d" => Op::Conv2d(ops::Conv2d::from_attrs(&mut r)?),
            "batch_norm" => Op::BatchNorm(ops::BatchNorm::from_attrs(&mut r)?),
            "scale_shift" => Op::ScaleShift,
            "relu" => Op::Relu,
            "clip" => Op::Clip(ops::Clip::from_attrs(&mut r)?),
            "sigmoid" => Op::Sigmoid,
            "hard_sigmoid" => Op::HardSigmoid(ops::HardSigmoid::from_attrs(&mut r)?),
            "hard_swish" => Op::HardSwish,
            "prelu" => Op::PRelu,
            "softmax" => Op::Softmax(ops::Softmax::from_attrs(&mut r)?),
            "add" => Op::Add,
            "sub" => Op::Sub,
            "mul" => Op::Mul,
            "div" => Op::Div,
            "concat" => Op::Concat(ops::Concat::from_attrs(&mut r)?),
            "max_pool" => Op::MaxPool(ops::MaxPool::from_attrs(&mut r)?),
            "avg_pool" => Op::AvgPool(ops::AvgPool::from_attrs(&mut r)?),
            "global_avg_pool" => Op::GlobalAvgPool,
            "gemm" => Op::Gemm(ops::Gemm::from_attrs(&mut r)?),
            "matmul" => Op::MatMul,
            "flatten" => Op::Flatten(ops::Flatten::from_attrs(&mut r)?),
            "reshape" => Op::Reshape(ops::Reshape::from_attrs(&mut r)?),
            "squeeze" => Op::Squeeze(ops::Squeeze::from_attrs(&mut r)?),
            "unsqueeze" => Op::Unsqueeze(ops::Unsqueeze::from_attrs(&mut r)?),
            "transpose" => Op::Transpose(ops::Transpose::from_attrs(&mut r)?),
            "pad" => Op::Pad(ops::Pad::from_attrs(&mut r)?),
            "quantize" => Op::Quantize,
            "dequantize" => Op::Dequantize,
            "channel_slice" => Op::ChannelSlice(ops::ChannelSlice::from_attrs(&mut r)?),
            "transmit" => Op::Transmit(ops::Transmit::from_attrs(&mut r)?),
            _ => return Err(format!("unknown op `{name}` (custom ops are written custom<\"{name}\">)")),
        };
        r.finish()?;
        Ok(op)
    }

    /// The op's shape rule applied to operand types, or `None` for ops whose results are only
    /// declared (`input`, `weight`, custom ops). A wrong operand count is reported as an error.
    pub fn infer(&self, ins: &[&TensorType]) -> Option<Result<Vec<Inferred>, String>> {
        if !self.arity().accepts(ins.len()) {
            return Some(Err(format!("`{}` takes {} operands, got {}", self.name(), self.arity(), ins.len())));
        }
        Some(match self {
            Op::Input | Op::Weight { .. } | Op::Custom(_) => return None,
            Op::Conv2d(o) => o.infer(ins),
            Op::BatchNorm(o) => o.infer(ins),
            Op::ScaleShift => ops::scale_shift_rule(ins),
            Op::Relu | Op::Clip(_) | Op::Sigmoid | Op::HardSigmoid(_) | Op::HardSwish => ops::unary_rule(ins),
            Op::PRelu => ops::binary_rule("prelu", ins).and_then(|r| match (r.first(), ins) {
                (Some(out), [x, slope]) if out.shape != x.shape => {
                    Err(format!("prelu slope {:?} must broadcast to the input {:?}", slope.shape, x.shape))
                }
                _ => Ok(r),
            }),
            Op::Softmax(o) => o.infer(ins),
            Op::Add | Op::Sub | Op::Mul | Op::Div => ops::binary_rule(self.name(), ins),
            Op::Concat(o) => o.infer(ins),
            Op::MaxPool(o) => o.window.infer("max_pool", ins),
            Op::AvgPool(o) => o.window.infer("avg_pool", ins),
            Op::GlobalAvgPool => ops::global_avg_pool_rule(ins),
            Op::Gemm(o) => o.infer(ins),
            Op::MatMul => ops::matmul_rule(ins),
            Op::Flatten(o) => o.infer(ins),
            Op::Reshape(o) => o.infer(ins),
            Op::Squeeze(o) => o.infer(ins),
            Op::Unsqueeze(o) => o.infer(ins),
            Op::Transpose(o) => o.infer(ins),
            Op::Pad(o) => o.infer(ins),
            Op::Quantize => ops::quantize_rule(ins),
            Op::Dequantize => ops::dequantize_rule(ins),
            Op::ChannelSlice(o) => o.infer(ins),
            Op::Transmit(o) => o.infer(ins),
        })
    }

    /// True for every op clio defines (all but [`Op::Custom`]).
    pub fn is_builtin(&self) -> bool {
        !matches!(self, Op::Custom(_))
    }
}
