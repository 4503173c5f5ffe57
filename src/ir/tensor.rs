//! Tensor data: weights, constants and interpreter values.

use super::{checked_product, DType, Digest, DigestAlgorithm, Shape};
use std::borrow::Cow;

/// The element storage of a [`Tensor`], one variant per [`DType`].
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// f32 elements.
    F32(Vec<f32>),
    /// i8 elements.
    I8(Vec<i8>),
    /// i16 elements.
    I16(Vec<i16>),
    /// i32 elements.
    I32(Vec<i32>),
}

impl TensorData {
    /// The element type of this storage.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::I8(_) => DType::I8,
            TensorData::I16(_) => DType::I16,
            TensorData::I32(_) => DType::I32,
        }
    }

    /// Number of stored elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::I16(v) => v.len(),
            TensorData::I32(v) => v.len(),
        }
    }

    /// True when no element is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Zero-filled storage of `n` elements.
    pub fn zeros(dtype: DType, n: usize) -> TensorData {
        match dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::I8 => TensorData::I8(vec![0; n]),
            DType::I16 => TensorData::I16(vec![0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
        }
    }

    /// Little-endian bytes of the elements (the sidecar and digest encoding), as a copy.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.le_bytes().into_owned()
    }

    /// Little-endian bytes of the elements: the storage itself on little-endian hosts (no copy),
    /// a converted copy on big-endian ones.
    pub fn le_bytes(&self) -> Cow<'_, [u8]> {
        fn view<T: bytemuck::Pod, const N: usize>(v: &[T], le: impl Fn(&T) -> [u8; N]) -> Cow<'_, [u8]> {
            if cfg!(target_endian = "little") {
                Cow::Borrowed(bytemuck::cast_slice(v))
            } else {
                Cow::Owned(v.iter().flat_map(le).collect())
            }
        }
        match self {
            TensorData::F32(v) => view(v, |x| x.to_le_bytes()),
            TensorData::I8(v) => view(v, |x| x.to_le_bytes()),
            TensorData::I16(v) => view(v, |x| x.to_le_bytes()),
            TensorData::I32(v) => view(v, |x| x.to_le_bytes()),
        }
    }

    /// Decodes little-endian bytes; `None` when the length is not a multiple of the element size.
    pub fn from_le_bytes(dtype: DType, bytes: &[u8]) -> Option<TensorData> {
        let size = dtype.size_bytes();
        if bytes.len() % size != 0 {
            return None;
        }
        /// One copy of the bytes on little-endian hosts (any alignment), a conversion elsewhere.
        fn decode<T: bytemuck::Pod, const N: usize>(bytes: &[u8], le: fn([u8; N]) -> T) -> Vec<T> {
            if cfg!(target_endian = "little") {
                let mut v = vec![T::zeroed(); bytes.len() / N];
                bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
                v
            } else {
                bytes.chunks_exact(N).map(|c| le(c.try_into().unwrap_or([0; N]))).collect()
            }
        }
        Some(match dtype {
            DType::F32 => TensorData::F32(decode(bytes, f32::from_le_bytes)),
            DType::I8 => TensorData::I8(decode(bytes, i8::from_le_bytes)),
            DType::I16 => TensorData::I16(decode(bytes, i16::from_le_bytes)),
            DType::I32 => TensorData::I32(decode(bytes, i32::from_le_bytes)),
        })
    }
}

/// A dense, row-major tensor with a static shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Shape,
    data: TensorData,
}

/// Error building a tensor whose element count does not match its shape.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("tensor of shape {shape:?} needs {expected} elements, got {got}")]
pub struct ShapeMismatch {
    /// The requested shape.
    pub shape: Shape,
    /// Elements the shape needs (saturating on overflow).
    pub expected: usize,
    /// Elements supplied.
    pub got: usize,
}

impl Tensor {
    /// Builds a tensor, checking the element count.
    pub fn new(shape: impl Into<Shape>, data: TensorData) -> Result<Tensor, ShapeMismatch> {
        let shape = shape.into();
        let expected = checked_product(&shape).unwrap_or(usize::MAX);
        if expected != data.len() {
            return Err(ShapeMismatch { shape, expected, got: data.len() });
        }
        Ok(Tensor { shape, data })
    }

    /// An f32 tensor.
    pub fn from_f32(shape: impl Into<Shape>, data: Vec<f32>) -> Result<Tensor, ShapeMismatch> {
        Tensor::new(shape, TensorData::F32(data))
    }

    /// A zero-filled tensor. Callers bound `shape` first (see [`crate::Limits`]).
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Tensor {
        let shape = shape.into();
        let n = checked_product(&shape).unwrap_or(0);
        Tensor { shape, data: TensorData::zeros(dtype, n) }
    }

    /// A rank-0 f32 tensor.
    pub fn scalar_f32(v: f32) -> Tensor {
        Tensor { shape: vec![], data: TensorData::F32(vec![v]) }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The element storage.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Mutable element storage (the element count must not change).
    pub fn data_mut(&mut self) -> &mut TensorData {
        &mut self.data
    }

    /// Consumes the tensor, returning shape and storage.
    pub fn into_parts(self) -> (Shape, TensorData) {
        (self.shape, self.data)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True for zero-element tensors.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The f32 elements, if this is an f32 tensor.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Mutable f32 elements, if this is an f32 tensor.
    pub fn as_f32_mut(&mut self) -> Option<&mut [f32]> {
        match &mut self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Reinterprets the same elements under another shape with the same element count.
    pub fn reshaped(self, shape: impl Into<Shape>) -> Result<Tensor, ShapeMismatch> {
        Tensor::new(shape, self.data)
    }

    /// Elements converted to f64 (integers as their integer value), for comparisons and reports.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            TensorData::F32(v) => v.iter().map(|x| *x as f64).collect(),
            TensorData::I8(v) => v.iter().map(|x| *x as f64).collect(),
            TensorData::I16(v) => v.iter().map(|x| *x as f64).collect(),
            TensorData::I32(v) => v.iter().map(|x| *x as f64).collect(),
        }
    }

    /// The 64-bit XXH3 content digest over dtype, shape and little-endian bytes that the text
    /// format prints for weights (`blob<"xxh3:...">`), and that sidecar loading checks. Until
    /// 2026-12-05 this was FNV-1a; [`Digest`] computes either.
    pub fn digest(&self) -> u64 {
        Digest::of(self, DigestAlgorithm::Xxh3).value
    }
}

/// Whether every value is finite: a branch-free scan in blocks (it vectorizes), for callers that
/// then look for the first bad value only when there is one.
pub(crate) fn all_finite(x: &[f32]) -> bool {
    x.chunks(64).all(|c| c.iter().fold(true, |ok, v| ok & v.is_finite()))
}
