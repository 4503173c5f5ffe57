//! Element types of IR tensors.

use std::fmt;

/// The element type of a tensor value or weight.
///
/// Float graphs use `F32`; quantized graphs use `I8` (Q8 / int8), `I16` (GAP8's 16-bit HWCE
/// path) and `I32` (biases and accumulators).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
}

impl DType {
    /// Every element type, in the order the text format documents them.
    pub const ALL: [DType; 4] = [DType::F32, DType::I8, DType::I16, DType::I32];

    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::I16 => 2,
            DType::I8 => 1,
        }
    }

    /// True for the integer types, the only ones that may carry quantization parameters.
    pub fn is_integer(self) -> bool {
        !matches!(self, DType::F32)
    }

    /// The spelling used by the text format (`f32`, `i8`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
        }
    }

    /// Parses the text-format spelling.
    pub fn from_str_opt(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Inclusive range of representable values for integer types.
    pub fn int_range(self) -> Option<(i64, i64)> {
        match self {
            DType::F32 => None,
            DType::I8 => Some((i8::MIN as i64, i8::MAX as i64)),
            DType::I16 => Some((i16::MIN as i64, i16::MAX as i64)),
            DType::I32 => Some((i32::MIN as i64, i32::MAX as i64)),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
