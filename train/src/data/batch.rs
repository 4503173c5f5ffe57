//! Turning dataset items into NCHW `f32` batches.

use super::{DataError, Dataset};

/// Pixel normalisation: a pixel `p` becomes `(p / 255 - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    /// Subtracted from `p / 255`.
    pub mean: f32,
    /// Divides the centred value.
    pub std: f32,
}

impl Normalize {
    /// No normalisation beyond scaling to `[0, 1]`.
    pub const UNIT: Normalize = Normalize { mean: 0.0, std: 1.0 };
    /// The customary MNIST statistics.
    pub const MNIST: Normalize = Normalize { mean: 0.1307, std: 0.3081 };
    /// The customary Fashion-MNIST statistics.
    pub const FASHION_MNIST: Normalize = Normalize { mean: 0.2860, std: 0.3530 };

    /// The normalised value of pixel `p`.
    pub fn apply(&self, p: u8) -> f32 {
        (f32::from(p) / 255.0 - self.mean) / self.std
    }

    /// Checks that the mean is finite and the standard deviation finite and positive.
    pub fn check(&self) -> Result<(), DataError> {
        if self.mean.is_finite() && self.std.is_finite() && self.std > 0.0 {
            Ok(())
        } else {
            Err(DataError::BadNormalize { mean: self.mean, std: self.std })
        }
    }
}

/// The most `f32` values one batch may hold (2^31, 8 GiB): larger requests are errors, not
/// allocation failures.
pub const MAX_BATCH_VALUES: usize = 1 << 31;

impl Dataset {
    /// The items at `indices` as NCHW data of shape `[indices.len(), 1, H', W']` and their labels.
    ///
    /// Pixels are normalised with `norm`. With `pad_to = Some(s)` the images are zero-padded,
    /// centred (any odd remainder goes to the bottom/right), to `s x s`; the padding holds the
    /// normalised value of a 0 pixel. Without it `H' x W'` is the image size.
    pub fn batch(
        &self,
        indices: &[usize],
        norm: Normalize,
        pad_to: Option<usize>,
    ) -> Result<(Vec<f32>, Vec<u32>), DataError> {
        norm.check()?;
        let (h, w) = (self.height, self.width);
        let pixels = self.count.checked_mul(h).and_then(|n| n.checked_mul(w));
        if h == 0 || w == 0 || pixels != Some(self.images.len()) || self.labels.len() != self.count {
            return Err(DataError::Inconsistent {
                name: self.name.clone(),
                detail: format!(
                    "{} images of {h}x{w} need {} pixels and {} labels, found {} and {}",
                    self.count,
                    pixels.map_or_else(|| "too many".to_string(), |p| p.to_string()),
                    self.count,
                    self.images.len(),
                    self.labels.len()
                ),
            });
        }
        let (out_h, out_w) = match pad_to {
            Some(s) if s < h || s < w => {
                return Err(DataError::PadTooSmall { name: self.name.clone(), pad_to: s, height: h, width: w })
            }
            Some(s) => (s, s),
            None => (h, w),
        };
        let (top, left) = ((out_h - h) / 2, (out_w - w) / 2);
        let table: Vec<f32> = (0..=255u8).map(|p| norm.apply(p)).collect();
        let plane = out_h.checked_mul(out_w);
        let total = plane.and_then(|p| p.checked_mul(indices.len())).filter(|&t| t <= MAX_BATCH_VALUES);
        let (Some(plane), Some(total)) = (plane, total) else {
            return Err(DataError::BatchTooLarge {
                name: self.name.clone(),
                items: indices.len(),
                height: out_h,
                width: out_w,
            });
        };
        let mut data = vec![table[0]; total];
        let mut labels = Vec::with_capacity(indices.len());
        for (slot, &index) in indices.iter().enumerate() {
            if index >= self.count {
                return Err(DataError::IndexOutOfRange { name: self.name.clone(), index, count: self.count });
            }
            labels.push(u32::from(self.labels[index]));
            let image = self.image(index);
            let out = &mut data[slot * plane..(slot + 1) * plane];
            for (row, pixels) in image.chunks_exact(w).enumerate() {
                let start = (top + row) * out_w + left;
                for (dst, &p) in out[start..start + w].iter_mut().zip(pixels) {
                    *dst = table[usize::from(p)];
                }
            }
        }
        Ok((data, labels))
    }
}
