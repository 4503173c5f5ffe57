//! Cloud export: the cloud part's graphs in formats other runtimes load.
//!
//! * [`export_onnx`]: one float graph (a slice head, or the cloud half of a partition; integer
//!   inputs are dequantized inside) as a standard ONNX model, opset 14;
//! * [`export_nnef`]: the same through tract as an NNEF archive, so the cloud can run it with
//!   tract.
//!
//! Both are checked against clio's interpreter in `targets/tests/cloud_export.rs`.

mod nnef;
mod onnx;

pub use nnef::export_nnef;
pub use onnx::{export_onnx, onnx_model, ExportError, OPSET};
