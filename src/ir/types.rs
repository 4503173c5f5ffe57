//! Tensor types: static shape, element type and optional quantization.

use super::{DType, Quant};
use std::fmt;

/// A dimension list. clio IR shapes are fully static; symbolic inputs are fixed at import.
pub type Shape = Vec<usize>;

/// The type of a value: `tensor<1x3x32x32xf32>` or `tensor<1x16x32x32xi8, pow2<5>>`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorType {
    /// Dimensions, outermost first (NCHW for activations).
    pub shape: Shape,
    /// Element type.
    pub dtype: DType,
    /// Quantization parameters; present exactly when the tensor holds quantized integers.
    pub quant: Option<Quant>,
}

impl TensorType {
    /// A float32 tensor type.
    pub fn f32(shape: impl Into<Shape>) -> TensorType {
        TensorType { shape: shape.into(), dtype: DType::F32, quant: None }
    }

    /// A tensor type with any element type and no quantization.
    pub fn new(shape: impl Into<Shape>, dtype: DType) -> TensorType {
        TensorType { shape: shape.into(), dtype, quant: None }
    }

    /// The same type with quantization parameters attached.
    pub fn with_quant(mut self, quant: Quant) -> TensorType {
        self.quant = Some(quant);
        self
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements, or `None` on overflow.
    pub fn num_elements(&self) -> Option<usize> {
        checked_product(&self.shape)
    }

    /// Size in bytes, or `None` on overflow.
    pub fn size_bytes(&self) -> Option<usize> {
        self.num_elements()?.checked_mul(self.dtype.size_bytes())
    }
}

/// Product of dimensions with overflow detection.
pub fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d))
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::text::print_type(f, self)
    }
}
