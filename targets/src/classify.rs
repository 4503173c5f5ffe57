//! Classifying IR nodes into the kernel families cost models distinguish.

use clio::ir::{Graph, NodeId, Op};

/// Kernel family of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpClass {
    /// A dense (groups = 1 or grouped) convolution with a KxK kernel (K > 1).
    Conv {
        /// Kernel height.
        kh: usize,
        /// Kernel width.
        kw: usize,
    },
    /// A 1x1 convolution.
    Pointwise,
    /// A depthwise convolution.
    Depthwise,
    /// A fully connected layer (gemm, matmul).
    Linear,
    /// Element-wise work proportional to the output size (add, pools, normalisation,
    /// activations that are not fused, concat ...).
    Elementwise,
    /// An activation right after a conv / linear layer: fused into it by the kernels.
    FusedActivation,
    /// Pure metadata or data reinterpretation (reshape, flatten, transmit ...): free.
    Free,
}

/// The family of node `n` of `g`.
pub fn classify(g: &Graph, n: NodeId) -> OpClass {
    let node = g.node(n);
    match &node.op {
        Op::Conv2d(c) => {
            let x = g.operand(n, 0).and_then(|v| g.value_type(v));
            let w = g.operand(n, 1).and_then(|v| g.value_type(v));
            match (x, w) {
                (Some(x), _) if x.rank() == 4 && c.is_depthwise(x.shape[1]) => OpClass::Depthwise,
                (_, Some(w)) if w.rank() == 4 && w.shape[2] == 1 && w.shape[3] == 1 => OpClass::Pointwise,
                (_, Some(w)) if w.rank() == 4 => OpClass::Conv { kh: w.shape[2], kw: w.shape[3] },
                _ => OpClass::Conv { kh: 0, kw: 0 },
            }
        }
        Op::Gemm(_) | Op::MatMul => OpClass::Linear,
        Op::Relu | Op::Clip(_) => {
            let producer = g.operand(n, 0).map(|v| &g.node(v.node).op);
            match producer {
                Some(Op::Conv2d(_) | Op::Gemm(_) | Op::MatMul | Op::BatchNorm(_) | Op::ScaleShift) => {
                    OpClass::FusedActivation
                }
                _ => OpClass::Elementwise,
            }
        }
        Op::Input
        | Op::Weight { .. }
        | Op::Flatten(_)
        | Op::Reshape(_)
        | Op::Squeeze(_)
        | Op::Unsqueeze(_)
        | Op::Transmit(_) => OpClass::Free,
        _ => OpClass::Elementwise,
    }
}
