//! Quantization support shared by the `quantize` pass, the integer interpreter, the CLI and
//! the backends:
//!
//! * [`math`]: TFLite / gemmlowp / CMSIS-NN fixed-point primitives, parameter choice
//!   (affine, symmetric, power-of-two), SQNR and a deterministic PRNG;
//! * [`calib`]: calibration: sample loading (.npy files or directories), per-value histograms
//!   observed through the float interpreter, and range choice (min/max, percentile,
//!   MSE-optimal);
//! * [`wire`]: the wire format of the cut tensor (channel-major, 8/16-bit, small header).
//!
//! The quantization scheme itself (which ops, fused activations, how requantisation
//! parameters derive from the types) is described in `docs/design.md`, section
//! "Quantization".

pub mod calib;
pub mod math;
pub mod wire;
