//! Grayscale JPEG encoding (jpeg-encoder) and decoding (jpeg-decoder).

use jpeg_decoder::{Decoder, PixelFormat};
use jpeg_encoder::{ColorType, Encoder};

use super::JpegError;

/// The number of scans [`encode`] writes for a progressive image: one DC scan and three AC bands.
pub const DEFAULT_PROGRESSIVE_SCANS: u8 = 4;

/// The most scans [`encode_progressive`] accepts. jpeg-encoder 0.6.1 splits the AC coefficients
/// into bands of `64 / (scans - 1)`; from 34 scans on its first band is empty and the stream it
/// writes is invalid (`ss = 1, se = 0`).
pub const MAX_PROGRESSIVE_SCANS: u8 = 33;

/// Encodes a `width x height` 8-bit grayscale image at `quality` (1..=100), baseline or
/// progressive (one DC scan and three spectral-selection AC scans).
pub fn encode(gray: &[u8], width: usize, height: usize, quality: u8, progressive: bool) -> Result<Vec<u8>, JpegError> {
    encode_with(gray, width, height, quality, progressive.then_some(DEFAULT_PROGRESSIVE_SCANS))
}

/// Encodes a progressive grayscale JPEG with `scans` scans (2..=[`MAX_PROGRESSIVE_SCANS`]): one
/// DC scan, then the 63 AC coefficients in `scans - 1` spectral bands, so that
/// [`scan_prefixes`](super::scan_prefixes) offers `scans` cut points.
pub fn encode_progressive(
    gray: &[u8],
    width: usize,
    height: usize,
    quality: u8,
    scans: u8,
) -> Result<Vec<u8>, JpegError> {
    if !(2..=MAX_PROGRESSIVE_SCANS).contains(&scans) {
        return Err(JpegError::BadScans(scans));
    }
    encode_with(gray, width, height, quality, Some(scans))
}

/// The shared encoder set-up; `scans = None` is baseline.
fn encode_with(gray: &[u8], width: usize, height: usize, quality: u8, scans: Option<u8>) -> Result<Vec<u8>, JpegError> {
    let bad = || JpegError::BadDimensions { width, height, len: gray.len() };
    let w = u16::try_from(width).map_err(|_| bad())?;
    let h = u16::try_from(height).map_err(|_| bad())?;
    if w == 0 || h == 0 || width.checked_mul(height) != Some(gray.len()) {
        return Err(bad());
    }
    if !(1..=100).contains(&quality) {
        return Err(JpegError::BadQuality(quality));
    }
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, quality);
    if let Some(scans) = scans {
        // Checked by the callers: the setter asserts 2..=64.
        encoder.set_progressive_scans(scans);
    }
    encoder.encode(gray, w, h, ColorType::Luma).map_err(|e| JpegError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes a JPEG to 8-bit grayscale: `(pixels, width, height)`. Colour images are converted
/// with the BT.601 luma weights.
pub fn decode(bytes: &[u8]) -> Result<(Vec<u8>, usize, usize), JpegError> {
    let mut decoder = Decoder::new(bytes);
    let pixels = decoder.decode().map_err(|e| JpegError::Corrupt(e.to_string()))?;
    let info = decoder.info().ok_or_else(|| JpegError::Corrupt("no frame header".to_string()))?;
    let (width, height) = (usize::from(info.width), usize::from(info.height));
    let gray = match info.pixel_format {
        PixelFormat::L8 => pixels,
        PixelFormat::RGB24 => pixels
            .chunks_exact(3)
            .map(|p| {
                let y = 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
                y.round().clamp(0.0, 255.0) as u8
            })
            .collect(),
        other => return Err(JpegError::Unsupported(format!("pixel format {other:?}"))),
    };
    if gray.len() != width * height {
        return Err(JpegError::Corrupt(format!("decoder returned {} pixels for {width}x{height}", gray.len())));
    }
    Ok((gray, width, height))
}

/// Peak signal-to-noise ratio in dB between two 8-bit images (infinite when they are equal).
pub fn psnr(reference: &[u8], test: &[u8]) -> Result<f64, JpegError> {
    if reference.len() != test.len() || reference.is_empty() {
        return Err(JpegError::SizeMismatch { left: reference.len(), right: test.len() });
    }
    let sum: f64 = reference.iter().zip(test).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
    let mse = sum / reference.len() as f64;
    Ok(if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0f64 * 255.0 / mse).log10() })
}
