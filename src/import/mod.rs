//! Model import: ONNX (from the raw protobuf) and TFLite (through tract-tflite).
//!
//! ```no_run
//! use clio::import::{import_path, ImportOptions, InputShape};
//! let opts = ImportOptions { input_shapes: vec![InputShape::parse("1x3x32x32").unwrap()], ..Default::default() };
//! let m = import_path("model.onnx".as_ref(), &opts).unwrap();
//! assert!(m.graph("main").is_some());
//! ```
//!
//! The imported module is named after the file stem and holds one graph `@main`:
//! * its inputs are the ONNX graph inputs (initializers also listed as inputs are weights), in
//!   order, with symbolic dimensions fixed by [`ImportOptions::input_shapes`];
//! * its outputs are the ONNX graph outputs, in order;
//! * node names are the ONNX node names (or the first output name, or `<op_type>_<index>`),
//!   weights are the ONNX initializer (or constant) names;
//! * BatchNormalization, residual Add and 1x1 convolutions stay `batch_norm`, `add` and
//!   `conv2d`: nothing is fused or folded except constant shape computations (`Shape`,
//!   `Gather`, `Concat` ... feeding a `Reshape` become its static target shape), and
//!   pass-through ops (`Identity`, `Dropout`, float `Cast`) disappear;
//! * the module attributes record the source: `source`, `format`, `producer`, `opset`,
//!   `ir_version`, and `input_shapes` / `external_data` when they played a part.
//!
//! The module is verified before it is returned. Every failure is an [`ImportError`] naming
//! the file, the node and op type, and what was expected.

// Decodes user models: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

mod error;
mod onnx;
mod options;
mod tflite;

pub use error::{ImportError, ImportErrorDetails, ImportErrorKind, NodeContext};
pub use options::{ImportOptions, InputShape, MissingExternalData};

use crate::ir::Module;
use std::path::Path;

/// The ONNX op types the importer maps to IR ops or folds as constants.
pub fn supported_onnx_ops() -> &'static [&'static str] {
    onnx::SUPPORTED_OPS
}

/// A model file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ONNX protobuf.
    Onnx,
    /// TFLite flatbuffer.
    Tflite,
}

/// Guesses the format from the content (`TFL3` flatbuffer identifier) and then the extension;
/// ONNX otherwise.
pub fn sniff_format(path: &Path, bytes: &[u8]) -> Format {
    if bytes.get(4..8) == Some(b"TFL3") {
        return Format::Tflite;
    }
    match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
        Some("tflite") => Format::Tflite,
        _ => Format::Onnx,
    }
}

/// Imports a `.onnx` or `.tflite` file (the content decides, then the extension). External
/// ONNX data files are looked up next to the model.
pub fn import_path(path: &Path, opts: &ImportOptions) -> Result<Module, ImportError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        ImportError::new(file.clone(), ImportErrorKind::Io { message: format!("cannot read the file: {e}") })
    })?;
    let name = module_name(&file);
    match sniff_format(path, &bytes) {
        Format::Tflite => tflite::import_tflite(&bytes, &file, &name, opts),
        Format::Onnx => {
            let base = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
            let model = onnx::decode_model(&bytes, &file)?;
            drop(bytes);
            onnx::import_model(model, &file, &name, base, opts)
        }
    }
}

/// Imports ONNX protobuf bytes. `name_hint` (a file name or path) names the module (its stem)
/// and the errors; `base_dir` is where external data files live (`None`: they cannot be
/// loaded, and are zero-filled only under [`MissingExternalData::Zeros`]).
pub fn import_onnx_bytes(
    bytes: &[u8],
    name_hint: &str,
    base_dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Module, ImportError> {
    let model = onnx::decode_model(bytes, name_hint)?;
    onnx::import_model(model, name_hint, &module_name(name_hint), base_dir, opts)
}

/// Imports TFLite flatbuffer bytes through tract-tflite (see the module docs of
/// [`import_path`] for what tract-tflite manages).
pub fn import_tflite_bytes(bytes: &[u8], name_hint: &str, opts: &ImportOptions) -> Result<Module, ImportError> {
    tflite::import_tflite(bytes, name_hint, &module_name(name_hint), opts)
}

/// The module name for a file: its stem (`model` for `dir/model.onnx`).
fn module_name(file: &str) -> String {
    Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "model".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_shape_parsing() {
        assert_eq!(InputShape::parse("1x3x32x32").unwrap(), InputShape { name: None, shape: vec![1, 3, 32, 32] });
        let s = InputShape::parse("input=1x3x8x8").unwrap();
        assert_eq!((s.name.as_deref(), s.shape.as_slice()), (Some("input"), &[1, 3, 8, 8][..]));
        assert_eq!(s.to_string(), "input=1x3x8x8");
        assert!(InputShape::parse("1x?x3").is_err());
        assert!(InputShape::parse("=1x3").is_err());
        assert!(InputShape::parse("1xx3").is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let opts = ImportOptions::default();
        for bytes in [&b""[..], b"\x08", b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"hello world"] {
            assert!(import_onnx_bytes(bytes, "junk.onnx", None, &opts).is_err());
        }
    }
}
