//! Quantization support shared by the `quantize` pass, the integer interpreter, the CLI and
//! the backends:
//!
//! * [`math`]: TFLite / gemmlowp / CMSIS-NN fixed-point primitives, parameter choice
//!   (affine, symmetric, power-of-two), SQNR and a deterministic PRNG;
//! * [`calib`]: calibration: sample loading (.npy files or directories), per-value histograms
//!   observed through the float interpreter, and range choice (min/max, percentile,
//!   MSE-optimal);
//! * [`wire`]: the wire format of the cut tensor (channel-major, 8/16-bit, small header);
//! * [`first_quantized_node`]: whether a graph is already quantized.
//!
//! The quantization scheme itself (which ops, fused activations, how requantisation
//! parameters derive from the types) is described in `docs/design.md`, section
//! "Quantization".

pub mod calib;
pub mod math;
pub mod wire;

/// The first node (in node-id order) of `g` that is not a weight read and has a result other
/// than f32: the sign that `quantize` already ran on the graph. `None` for a float graph.
/// `quantize` refuses such a graph, `clio run` picks the integer interpreter for it.
pub fn first_quantized_node(g: &crate::ir::Graph) -> Option<crate::ir::NodeId> {
    g.node_ids().find(|&id| {
        let n = g.node(id);
        !matches!(n.op, crate::ir::Op::Weight { .. }) && n.results.iter().any(|t| t.dtype != crate::ir::DType::F32)
    })
}
