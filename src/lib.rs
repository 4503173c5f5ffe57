//! # clio
//!
//! The core of clio: an MLIR-style graph IR for neural networks that are split between a
//! low-power device and the cloud, with everything passes and targets build on:
//!
//! * [`ir`]: tensor types, tensors, ops, graphs (petgraph `StableDiGraph`) and modules;
//! * [`ops`]: the builtin ops, each with its attributes and shape rule;
//! * [`text`]: the MLIR-like text format (printer and parser, `parse(print(m))` is identity);
//! * [`verify`]: the IR verifier the pass manager runs after every pass;
//! * [`import`]: ONNX (and TFLite, through tract) import;
//! * [`interp`]: the float reference interpreter;
//! * [`pass`]: the `Pass` trait, options and statistics, registry, textual pipelines and the
//!   pass manager;
//! * [`analysis`]: shapes, parameter/MAC counts, liveness;
//! * [`io`]: saving and loading modules (text + safetensors sidecar) and `.npy` tensors.
//!
//! See `docs/design.md` in the repository for the design and a worked IR example.

// No unwrap/expect in library code: user input must end in a typed error, never a panic
// (tests may; see clippy.toml). Invariants the code itself guarantees use `unreachable!`-free
// fallbacks or a documented `#[allow]` at the site.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod analysis;
pub mod cost;
pub mod error;
pub mod import;
pub mod interp;
pub mod io;
pub mod ir;
pub mod models;
pub mod ops;
pub mod pass;
pub mod quant;
pub mod text;
pub mod trace;
pub mod verify;

pub use error::{Error, ParseError, Pos, Result, VerifyError};
pub use ir::{DType, Graph, Module, NodeId, Op, Tensor, TensorType, Value};

/// Resource limits applied to untrusted input (IR text, model files, tensors). Exceeding one is
/// an error naming the limit, never an out-of-memory abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest element count of any single tensor (weight, constant or activation).
    /// Default: 2^30 (4 GiB of f32).
    pub max_tensor_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_tensor_elements: 1 << 30 }
    }
}
