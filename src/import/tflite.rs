//! TFLite import through tract-tflite.
//!
//! tract-tflite 0.23.9 turns a `.tflite` flatbuffer into a tract `TypedModel`. On real files it
//! mostly fails, and those failures are reported as [`ImportErrorKind::Tflite`] with tract's
//! message and the operator list of the file (read with tract-tflite's generated flatbuffer
//! accessors). What was seen (mediapipe 0.10.14 models, TF 2.21 converter output):
//! * float16 weights stored behind `DEQUANTIZE` (every mediapipe model): unsupported;
//! * old-schema files whose operator code lives in `deprecated_builtin_code` (mediapipe's
//!   PRELU, DEQUANTIZE): tract reads `builtin_code` only and sees ADD;
//! * `STRIDED_SLICE` with `shrink_axis_mask` (the Keras Flatten of TF 2.21): rejected;
//! * a model with `FULLY_CONNECTED` only: tract panics inside flatbuffers (caught here).
//!
//! What tract-tflite does load (e.g. conv + residual add + mean) is not converted to clio IR
//! yet: that is an [`ImportErrorKind::Unsupported`] naming tract's ops. Convert such models to
//! ONNX (tf2onnx) instead.

// Decodes user models: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{ImportError, ImportErrorKind, ImportOptions};
use crate::ir::Module;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tract_tflite::prelude::*;

/// Collapses tract's (multi-line, Debug-heavy) error text to one bounded line.
fn condense(text: &str, max: usize) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= max {
        one
    } else {
        let mut s: String = one.chars().take(max).collect();
        s.push_str(" ...");
        s
    }
}

/// The operator codes the file declares (`CONV_2D, ADD, ...`), reading the effective code as
/// the TFLite schema defines it (the larger of `builtin_code` and `deprecated_builtin_code`).
fn operator_summary(bytes: &[u8]) -> String {
    let model = match tract_tflite::tflite::root_as_model(bytes) {
        Ok(m) => m,
        Err(e) => return format!("the flatbuffer does not verify: {e}"),
    };
    let mut names = Vec::new();
    let mut mismatch = false;
    if let Some(codes) = model.operator_codes() {
        for c in codes.iter() {
            let current = c.builtin_code().0;
            let deprecated = c.deprecated_builtin_code() as i32;
            let effective = current.max(deprecated);
            if effective != current {
                mismatch = true;
            }
            let name = tract_tflite::tflite::BuiltinOperator(effective)
                .variant_name()
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("#{effective}"));
            let name = match c.custom_code() {
                Some(cc) => format!("{name}({cc})"),
                None => name,
            };
            names.push(name);
        }
    }
    let mut s = format!("operators in the file: {}", names.join(", "));
    if mismatch {
        s.push_str(
            "; some operator codes use the old `deprecated_builtin_code` field, which tract-tflite 0.23.9 does not read",
        );
    }
    s
}

pub(crate) fn import_tflite(bytes: &[u8], file: &str, name: &str, opts: &ImportOptions) -> Result<Module, ImportError> {
    let err = |message: String| ImportError::new(file, ImportErrorKind::Tflite { message });
    let loaded = catch_unwind(AssertUnwindSafe(|| {
        let mut r = bytes;
        tract_tflite::tflite().model_for_read(&mut r)
    }));
    let model = match loaded {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err(err(format!("{}; {}", condense(&format!("{e:#}"), 600), operator_summary(bytes)))),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            return Err(err(format!("tract-tflite panicked: {msg}; {}", operator_summary(bytes))));
        }
    };
    let _ = (name, opts);
    let ops: Vec<String> = model.nodes().iter().map(|n| n.op.name().to_string()).collect();
    Err(ImportError::new(
        file,
        ImportErrorKind::Unsupported {
            message: format!(
                "tract-tflite loaded the model ({} nodes: {}), but converting tract's typed TFLite model to clio IR \
                 is not implemented; convert the model to ONNX (e.g. with tf2onnx) instead",
                ops.len(),
                condense(&ops.join(", "), 300)
            ),
        },
    ))
}
