//! Reading quantization parameters off declared types, and integer tensor plumbing.

use crate::interp::shared::numel;
use crate::ir::{DType, QScheme, Quant, Tensor, TensorData, TensorType};
use crate::text::type_string;

/// Per-tensor parameters of an activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum QAct {
    /// TFLite affine: `real = scale * (q - zp)`.
    Affine { scale: f32, zp: i32 },
    /// Q format: `real = q * 2^-frac`.
    Pow2 { frac: i32 },
}

impl QAct {
    /// Quantizes a real number into this format, clamped to `range`.
    pub(crate) fn quantize(&self, x: f64, range: (i32, i32)) -> i32 {
        let (lo, hi) = (range.0 as i64, range.1 as i64);
        (match self {
            QAct::Affine { scale, zp } => crate::quant::math::quantize_affine(x, *scale, *zp, lo, hi),
            QAct::Pow2 { frac } => crate::quant::math::quantize_pow2(x, *frac, lo, hi),
        }) as i32
    }
}

/// The integer range of an activation element type (i8 or i16).
pub(crate) fn act_range(dtype: DType) -> Result<(i32, i32), String> {
    match dtype {
        DType::I8 => Ok((-128, 127)),
        DType::I16 => Ok((-32768, 32767)),
        d => Err(format!("integer activations must be i8 or i16, got {d}")),
    }
}

/// The per-tensor activation parameters of `ty` (`what` names it in errors).
pub(crate) fn act(ty: &TensorType, what: &str) -> Result<QAct, String> {
    let q = ty.quant.as_ref().ok_or_else(|| format!("{what} {} has no quantization", type_string(ty)))?;
    if q.axis.is_some() {
        return Err(format!("{what} {} must be quantized per tensor", type_string(ty)));
    }
    act_range(ty.dtype).map_err(|e| format!("{what}: {e}"))?;
    match &q.scheme {
        QScheme::Affine { scales, zero_points } => {
            if ty.dtype != DType::I8 {
                return Err(format!("{what} {}: affine activations must be i8 (TFLite int8)", type_string(ty)));
            }
            Ok(QAct::Affine { scale: scales[0], zp: zero_points[0] })
        }
        QScheme::Pow2 { frac_bits } => Ok(QAct::Pow2 { frac: frac_bits[0] }),
    }
}

/// Per-channel parameters of a weight or bias, expanded to `n` entries along `axis`
/// (per-tensor parameters are repeated).
pub(crate) enum QChan {
    /// Scales and zero points.
    Affine(Vec<f32>, Vec<i32>),
    /// Fractional bits.
    Pow2(Vec<i32>),
}

pub(crate) fn chan(ty: &TensorType, axis: usize, n: usize, what: &str) -> Result<QChan, String> {
    let q: &Quant = ty.quant.as_ref().ok_or_else(|| format!("{what} {} has no quantization", type_string(ty)))?;
    match q.axis {
        None => {}
        Some(a) if a == axis && q.len() == n => {}
        Some(a) => {
            return Err(format!(
                "{what} {} is quantized along axis {a}; expected per tensor or along axis {axis} ({n} channels)",
                type_string(ty)
            ))
        }
    }
    let rep = |i: usize| if q.axis.is_some() { i } else { 0 };
    Ok(match &q.scheme {
        QScheme::Affine { scales, zero_points } => {
            QChan::Affine((0..n).map(|i| scales[rep(i)]).collect(), (0..n).map(|i| zero_points[rep(i)]).collect())
        }
        QScheme::Pow2 { frac_bits } => QChan::Pow2((0..n).map(|i| frac_bits[rep(i)]).collect()),
    })
}

/// The elements of an integer tensor widened to i32.
pub(crate) fn ints(t: &Tensor) -> Result<Vec<i32>, String> {
    Ok(match t.data() {
        TensorData::I8(v) => v.iter().map(|x| *x as i32).collect(),
        TensorData::I16(v) => v.iter().map(|x| *x as i32).collect(),
        TensorData::I32(v) => v.clone(),
        TensorData::F32(_) => return Err("expected an integer tensor, got f32".into()),
    })
}

/// An integer tensor of `dtype` from values already inside its range (clamped for safety).
pub(crate) fn int_tensor(shape: &[usize], dtype: DType, v: Vec<i32>) -> Result<Tensor, String> {
    if v.len() != numel(shape)? {
        return Err("internal error: result size".into());
    }
    let data = match dtype {
        DType::I8 => TensorData::I8(v.into_iter().map(|x| x.clamp(-128, 127) as i8).collect()),
        DType::I16 => TensorData::I16(v.into_iter().map(|x| x.clamp(-32768, 32767) as i16).collect()),
        DType::I32 => TensorData::I32(v),
        DType::F32 => return Err("internal error: integer result declared f32".into()),
    };
    Tensor::new(shape.to_vec(), data).map_err(|e| format!("internal error: {e}"))
}

/// Requires two activation formats to be identical (ops that only move or select values).
pub(crate) fn require_same(op: &str, a: &TensorType, b: &TensorType) -> Result<(), String> {
    if a.dtype != b.dtype || a.quant != b.quant {
        return Err(format!(
            "{op} moves integers without rescaling: operand {} and result {} must have the same quantization",
            type_string(a),
            type_string(b)
        ));
    }
    Ok(())
}
