//! `quantize` / `dequantize` arithmetic for the two schemes of [`crate::ir::QScheme`],
//! per tensor or per channel:
//!
//! * affine: `q = clamp(round(x / scale) + zero_point, qmin, qmax)` with `round` half away from
//!   zero (TFLite's reference `AffineQuantize`, computed in f64 like TFLite's double scale),
//!   and `x = scale * (q - zero_point)`;
//! * power of two: `q = clamp(round(x * 2^frac), qmin, qmax)` and `x = q * 2^-frac`.
//!
//! `qmin..qmax` is the range of the integer element type. NaN quantizes to the zero point.

use super::f32s;
use crate::interp::shared::numel;
use crate::ir::{DType, QScheme, Quant, Tensor, TensorData, TensorType};

/// Parameter entry of every flat element index: `(i / inner) % dim` along the axis.
fn entry_of(q: &Quant, shape: &[usize]) -> Result<impl Fn(usize) -> usize, String> {
    let (dim, inner) = match q.axis {
        None => (1, 1),
        Some(a) => {
            let dim = *shape.get(a).ok_or_else(|| format!("quantization axis {a} is out of range"))?;
            (dim.max(1), numel(&shape[a + 1..])?.max(1))
        }
    };
    Ok(move |i: usize| (i / inner) % dim)
}

/// Checks `q` against a tensor type (entry count, scales, zero points, frac bits).
fn checked<'a>(ty: &'a TensorType, what: &str) -> Result<(&'a Quant, (i64, i64)), String> {
    let q = ty.quant.as_ref().ok_or_else(|| format!("{what} type {} has no quantization parameters", ty))?;
    let range = ty.dtype.int_range().ok_or_else(|| format!("{what} type {} is not an integer type", ty))?;
    q.check(&ty.shape, range).map_err(|e| format!("{what} type {}: {e}", ty))?;
    Ok((q, range))
}

/// Real to integer per the declared result type `ty`.
pub(crate) fn quantize(x: &Tensor, ty: &TensorType) -> Result<Tensor, String> {
    let xd = f32s(x, "quantize input")?;
    let (q, (lo, hi)) = checked(ty, "quantize result")?;
    let entry = entry_of(q, x.shape())?;
    let (lo_f, hi_f) = (lo as f64, hi as f64);
    let finish = |r: f64, zp: i64| -> i64 {
        if r.is_nan() {
            zp.clamp(lo, hi)
        } else {
            (r + zp as f64).clamp(lo_f, hi_f) as i64
        }
    };
    let vals: Vec<i64> = match &q.scheme {
        QScheme::Affine { scales, zero_points } => xd
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let e = entry(i);
                let (s, z) = (scales.get(e).copied().unwrap_or(1.0), zero_points.get(e).copied().unwrap_or(0));
                finish((*v as f64 / s as f64).round(), z as i64)
            })
            .collect(),
        QScheme::Pow2 { frac_bits } => xd
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let f = frac_bits.get(entry(i)).copied().unwrap_or(0);
                finish((*v as f64 * 2f64.powi(f)).round(), 0)
            })
            .collect(),
    };
    // Values are clamped to the element type's range, so the narrowing casts are exact.
    let data = match ty.dtype {
        DType::I8 => TensorData::I8(vals.iter().map(|v| *v as i8).collect()),
        DType::I16 => TensorData::I16(vals.iter().map(|v| *v as i16).collect()),
        DType::I32 => TensorData::I32(vals.iter().map(|v| *v as i32).collect()),
        DType::F32 => return Err("quantize must produce an integer type".into()),
    };
    Tensor::new(x.shape().to_vec(), data).map_err(|e| format!("internal error: {e}"))
}

/// Integer to f32 per the operand's declared type `ty`.
pub(crate) fn dequantize(x: &Tensor, ty: &TensorType) -> Result<Tensor, String> {
    if !x.dtype().is_integer() {
        return Err(format!("dequantize expects an integer operand, got {}", x.dtype()));
    }
    let (q, _) = checked(ty, "dequantize operand")?;
    let entry = entry_of(q, x.shape())?;
    let xs = x.to_f64_vec();
    let out: Vec<f32> = match &q.scheme {
        QScheme::Affine { scales, zero_points } => xs
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let e = entry(i);
                let (s, z) = (scales.get(e).copied().unwrap_or(1.0), zero_points.get(e).copied().unwrap_or(0));
                (s as f64 * (v - z as f64)) as f32
            })
            .collect(),
        QScheme::Pow2 { frac_bits } => xs
            .iter()
            .enumerate()
            .map(|(i, v)| (v * 2f64.powi(-frac_bits.get(entry(i)).copied().unwrap_or(0))) as f32)
            .collect(),
    };
    super::f32_tensor(x.shape(), out)
}
