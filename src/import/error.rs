//! [`ImportError`]: every import failure, typed, naming the file, the node (name and op type)
//! where it happened, and what was expected.

// Part of the importer: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use crate::error::VerifyError;
use std::fmt;
use std::path::PathBuf;

/// The source node an import error is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeContext {
    /// The node name (the ONNX node name, or its fallback: first output name, `<op_type>_<index>`).
    pub name: String,
    /// The source op type (`Conv`, `BatchNormalization` ...).
    pub op_type: String,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ImportErrorKind {
    /// The file could not be read.
    Io {
        /// What was being done and the OS error.
        message: String,
    },
    /// Neither the extension nor the content says ONNX or TFLite.
    UnknownFormat {
        /// What was seen.
        message: String,
    },
    /// The protobuf could not be decoded, or the model breaks the ONNX structure rules
    /// (undefined value, duplicate definition, cycle, missing type ...).
    Malformed {
        /// What is wrong.
        message: String,
    },
    /// An op clio cannot import.
    UnsupportedOp {
        /// The ONNX op type.
        op_type: String,
        /// The ONNX domain (empty for the default `ai.onnx`).
        domain: String,
        /// The opset version of that domain the model imports.
        opset: i64,
    },
    /// An attribute has a bad or unsupported value.
    Attribute {
        /// The attribute name.
        attr: String,
        /// What was expected and what was found.
        message: String,
    },
    /// The op is known but this use of it is not supported or not valid (wrong operand count,
    /// dynamic operand where a constant is needed, shape mismatch ...).
    Unsupported {
        /// What was expected and what was found.
        message: String,
    },
    /// A tensor has an element type clio does not import.
    DType {
        /// The tensor (initializer, input, constant or value name).
        tensor: String,
        /// The ONNX element type name (`FLOAT16`, `STRING` ...).
        dtype: String,
        /// Where that type would be needed.
        message: String,
    },
    /// A graph input has a symbolic (or missing) dimension and no `--input-shape` fixes it.
    SymbolicDim {
        /// The graph input.
        input: String,
        /// The dimension index.
        index: usize,
        /// The symbolic name (`batch_size`), or `?` when the dimension is simply missing.
        dim: String,
        /// The declared dimensions, symbolic ones by name (`["batch", "3", "32", "32"]`).
        declared: Vec<String>,
    },
    /// An `--input-shape` does not fit the model.
    InputShape {
        /// What does not fit.
        message: String,
    },
    /// External tensor data could not be loaded.
    ExternalData {
        /// The initializer.
        initializer: String,
        /// The data file (as resolved against the model directory).
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor exceeds [`crate::Limits::max_tensor_elements`] (or its element count overflows).
    LimitExceeded {
        /// The tensor.
        what: String,
        /// Its element count (`None` when it overflows `usize`).
        elements: Option<usize>,
        /// The limit.
        limit: usize,
    },
    /// tract-tflite could not load a `.tflite` file.
    Tflite {
        /// tract-tflite's message (with its context chain).
        message: String,
    },
    /// The imported module does not verify (an importer bug: please report it).
    Verify(VerifyError),
}

/// An import failure: the file, the node (when the failure is at one) and what went wrong.
///
/// A thin box around [`ImportErrorDetails`] (so that `Result`s stay small); its fields read
/// through `Deref`: `e.file`, `e.node`, `e.kind`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct ImportError(Box<ImportErrorDetails>);

/// The contents of an [`ImportError`].
#[derive(Clone, Debug, PartialEq)]
pub struct ImportErrorDetails {
    /// The model file (its path as given, or the name hint for in-memory imports).
    pub file: String,
    /// The source node, when the failure is at one.
    pub node: Option<NodeContext>,
    /// What went wrong.
    pub kind: ImportErrorKind,
}

impl std::ops::Deref for ImportError {
    type Target = ImportErrorDetails;
    fn deref(&self) -> &ImportErrorDetails {
        &self.0
    }
}

impl std::ops::DerefMut for ImportError {
    fn deref_mut(&mut self) -> &mut ImportErrorDetails {
        &mut self.0
    }
}

impl ImportError {
    /// An error not attached to a node.
    pub fn new(file: impl Into<String>, kind: ImportErrorKind) -> ImportError {
        ImportError(Box::new(ImportErrorDetails { file: file.into(), node: None, kind }))
    }

    /// The same error attached to a node (keeps an existing attachment).
    pub fn at_node(mut self, name: &str, op_type: &str) -> ImportError {
        if self.node.is_none() {
            self.node = Some(NodeContext { name: name.to_string(), op_type: op_type.to_string() });
        }
        self
    }

    /// The error kind.
    pub fn kind(&self) -> &ImportErrorKind {
        &self.kind
    }

    /// The details, by value.
    pub fn into_details(self) -> ImportErrorDetails {
        *self.0
    }
}

impl fmt::Display for ImportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportErrorKind::Io { message } => write!(f, "{message}"),
            ImportErrorKind::UnknownFormat { message } => write!(f, "unknown model format: {message}"),
            ImportErrorKind::Malformed { message } => write!(f, "malformed model: {message}"),
            ImportErrorKind::UnsupportedOp { op_type, domain, opset } => {
                write!(f, "unsupported op `{op_type}`")?;
                if !domain.is_empty() && domain != "ai.onnx" {
                    write!(f, " of domain `{domain}`")?;
                }
                write!(f, " (opset {opset})")
            }
            ImportErrorKind::Attribute { attr, message } => write!(f, "attribute `{attr}`: {message}"),
            ImportErrorKind::Unsupported { message } => write!(f, "{message}"),
            ImportErrorKind::DType { tensor, dtype, message } => {
                write!(f, "tensor `{tensor}` has element type {dtype}: {message}")
            }
            ImportErrorKind::SymbolicDim { input, index, dim, declared } => {
                let example: Vec<&str> =
                    declared.iter().map(|d| if d.parse::<usize>().is_ok() { d.as_str() } else { "1" }).collect();
                write!(
                    f,
                    "input `{input}` has symbolic dimension `{dim}` at index {index} (declared shape [{}]); fix the \
                     input shape with --input-shape (ImportOptions::input_shapes), e.g. `--input-shape {input}={}`",
                    declared.join(", "),
                    example.join("x")
                )
            }
            ImportErrorKind::InputShape { message } => write!(f, "input shape: {message}"),
            ImportErrorKind::ExternalData { initializer, file, message } => {
                write!(f, "external data of initializer `{initializer}` in `{}`: {message}", file.display())
            }
            ImportErrorKind::LimitExceeded { what, elements, limit } => match elements {
                Some(n) => {
                    write!(f, "{what} has {n} elements, more than the limit of {limit} (Limits::max_tensor_elements)")
                }
                None => {
                    write!(f, "{what} has an element count that overflows (limit {limit}, Limits::max_tensor_elements)")
                }
            },
            ImportErrorKind::Tflite { message } => write!(f, "tract-tflite could not load the file: {message}"),
            ImportErrorKind::Verify(e) => write!(f, "the imported module does not verify (importer bug): {e}"),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        match (&self.node, &self.kind) {
            (Some(n), ImportErrorKind::UnsupportedOp { .. }) => {
                // "unsupported op `LSTM` at node `lstm_1` (opset 13)"
                let text = self.kind.to_string();
                match text.find(" (opset").and_then(|i| text.split_at_checked(i)) {
                    Some((op, opset)) => write!(f, "{op} at node `{}`{opset}", n.name),
                    None => write!(f, "{text} at node `{}`", n.name),
                }
            }
            (Some(n), kind) => write!(f, "node `{}` ({}): {kind}", n.name, n.op_type),
            (None, kind) => write!(f, "{kind}"),
        }
    }
}
