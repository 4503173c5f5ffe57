//! [`ImportOptions`]: fixed input shapes, resource limits, and what to do about missing
//! external weight files.

// Parses user options: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{ImportError, ImportErrorKind};
use crate::Limits;
use std::fmt;
use std::str::FromStr;

/// What to do when an initializer's external data file does not exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingExternalData {
    /// Fail, naming the initializer and the file (the default).
    #[default]
    Error,
    /// Fill the tensor with zeros: for structure-only analyses (shapes, MACs, parameters,
    /// partitioning) of big models whose weights are not at hand. The module records it in its
    /// `external_data` attribute.
    Zeros,
}

/// A fixed shape for one graph input: `1x3x32x32` (the first input) or `input=1x3x32x32`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputShape {
    /// The graph input, or `None` for the first (usually only) input.
    pub name: Option<String>,
    /// The dimensions.
    pub shape: Vec<usize>,
}

impl InputShape {
    /// Parses `1x3x32x32` or `name=1x3x32x32` (`,` is accepted between dimensions too; a
    /// rank-0 input is written `name=` or the empty string).
    /// Errors are [`ImportError`]s of kind [`ImportErrorKind::InputShape`] (file `--input-shape`).
    pub fn parse(text: &str) -> Result<InputShape, ImportError> {
        let err = |message: String| {
            ImportError::new(
                "--input-shape",
                ImportErrorKind::InputShape {
                    message: format!("cannot parse `{text}`: {message} (expected `1x3x32x32` or `name=1x3x32x32`)"),
                },
            )
        };
        let (name, dims) = match text.rsplit_once('=') {
            Some((n, d)) => {
                let n = n.trim();
                if n.is_empty() {
                    return Err(err("the input name before `=` is empty".into()));
                }
                (Some(n.to_string()), d.trim())
            }
            None => (None, text.trim()),
        };
        let mut shape = Vec::new();
        if !dims.is_empty() {
            for part in dims.split(['x', 'X', ',']) {
                let part = part.trim();
                let d = part.parse::<usize>().map_err(|_| err(format!("`{part}` is not a dimension")))?;
                shape.push(d);
            }
        }
        Ok(InputShape { name, shape })
    }

    /// `1x3x32x32`.
    pub fn dims_string(&self) -> String {
        self.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
    }
}

impl FromStr for InputShape {
    type Err = ImportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InputShape::parse(s)
    }
}

impl fmt::Display for InputShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = &self.name {
            write!(f, "{n}=")?;
        }
        f.write_str(&self.dims_string())
    }
}

/// Options of [`crate::import::import_path`] and friends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportOptions {
    /// Shapes fixing symbolic input dimensions (each must agree with the model's fixed ones).
    pub input_shapes: Vec<InputShape>,
    /// Bounds on tensor sizes: every initializer, constant, input and activation is checked.
    pub limits: Limits,
    /// What to do when an external data file is missing.
    pub missing_external_data: MissingExternalData,
}

impl ImportOptions {
    /// Adds a fixed input shape (builder style).
    pub fn with_input_shape(mut self, shape: InputShape) -> Self {
        self.input_shapes.push(shape);
        self
    }
}
