//! Quantization parameters attached to integer tensor types.
//!
//! Two families exist, matching the two device arithmetics of clio:
//! * [`QScheme::Pow2`]: power-of-two Q format (GAP8, legacy CMSIS-NN q7): `real = q * 2^-frac`.
//! * [`QScheme::Affine`]: TFLite-style affine: `real = scale * (q - zero_point)`.
//!
//! Either is per tensor (`axis == None`, one entry) or per channel along `axis`
//! (one entry per index of that dimension).

/// How integers map to real numbers.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum QScheme {
    /// `real = q * 2^-frac_bits[i]`.
    Pow2 {
        /// Fractional bits, one per tensor or per channel (may be negative).
        frac_bits: Vec<i32>,
    },
    /// `real = scales[i] * (q - zero_points[i])`.
    Affine {
        /// Positive finite scales.
        scales: Vec<f32>,
        /// Zero points, each within the element type's range.
        zero_points: Vec<i32>,
    },
}

/// Quantization parameters of one tensor type.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quant {
    /// The scheme and its per-tensor or per-channel values.
    pub scheme: QScheme,
    /// `None`: per tensor (exactly one value); `Some(a)`: one value per index of dimension `a`.
    pub axis: Option<usize>,
}

impl Quant {
    /// Per-tensor power-of-two format with `frac_bits` fractional bits.
    pub fn pow2(frac_bits: i32) -> Quant {
        Quant { scheme: QScheme::Pow2 { frac_bits: vec![frac_bits] }, axis: None }
    }

    /// Per-tensor affine parameters.
    pub fn affine(scale: f32, zero_point: i32) -> Quant {
        Quant { scheme: QScheme::Affine { scales: vec![scale], zero_points: vec![zero_point] }, axis: None }
    }

    /// Number of parameter entries (1 per tensor, or the channel count).
    pub fn len(&self) -> usize {
        match &self.scheme {
            QScheme::Pow2 { frac_bits } => frac_bits.len(),
            QScheme::Affine { scales, .. } => scales.len(),
        }
    }

    /// True when there are no entries (always an invalid state; the verifier rejects it).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The real value of one quantum at entry `i` (`2^-frac` or `scale`).
    pub fn step(&self, i: usize) -> Option<f64> {
        match &self.scheme {
            QScheme::Pow2 { frac_bits } => frac_bits.get(i).map(|f| (2f64).powi(-*f)),
            QScheme::Affine { scales, .. } => scales.get(i).map(|s| *s as f64),
        }
    }

    /// The zero point at entry `i` (always 0 for power-of-two formats).
    pub fn zero_point(&self, i: usize) -> Option<i32> {
        match &self.scheme {
            QScheme::Pow2 { frac_bits } => frac_bits.get(i).map(|_| 0),
            QScheme::Affine { zero_points, .. } => zero_points.get(i).copied(),
        }
    }

    /// Checks internal consistency against a tensor of `shape` and integer range `range`.
    /// Returns a human-readable description of the first problem.
    pub fn check(&self, shape: &[usize], range: (i64, i64)) -> Result<(), String> {
        let expected = match self.axis {
            None => 1,
            Some(a) => *shape
                .get(a)
                .ok_or_else(|| format!("quantization axis {a} is out of range for rank {}", shape.len()))?,
        };
        if self.len() != expected {
            return Err(format!(
                "quantization has {} entries, expected {expected} ({})",
                self.len(),
                match self.axis {
                    None => "per tensor".to_string(),
                    Some(a) => format!("one per index of axis {a}"),
                }
            ));
        }
        match &self.scheme {
            QScheme::Pow2 { frac_bits } => {
                if let Some(f) = frac_bits.iter().find(|f| !(-63..=63).contains(*f)) {
                    return Err(format!("fractional bits {f} outside [-63, 63]"));
                }
            }
            QScheme::Affine { scales, zero_points } => {
                if scales.len() != zero_points.len() {
                    return Err(format!("{} scales but {} zero points", scales.len(), zero_points.len()));
                }
                if let Some(s) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                    return Err(format!("scale {s:?} is not a positive finite number"));
                }
                if let Some(z) = zero_points.iter().find(|z| (**z as i64) < range.0 || (**z as i64) > range.1) {
                    return Err(format!("zero point {z} outside the element range [{}, {}]", range.0, range.1));
                }
            }
        }
        Ok(())
    }
}
