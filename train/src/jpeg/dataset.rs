//! A dataset seen through JPEG: every image encoded and decoded again (baseline, or progressive
//! cut after its first scans), with the bytes a device would have sent. Evaluating the cloud model
//! on it gives the JPEG baselines' accuracy-vs-bytes curves.

use super::{decode, decode_prefix, encode, encode_progressive, header_len, scan_prefixes, JpegError};
use crate::data::Dataset;

/// How the images are coded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JpegMode {
    /// Baseline (sequential) JPEG, the whole file.
    Baseline,
    /// Progressive JPEG with `scans` scans, of which the first `keep` arrive.
    Progressive {
        /// Scans written (2..=[`super::MAX_PROGRESSIVE_SCANS`]).
        scans: u8,
        /// Scans that arrive (1..=scans).
        keep: u8,
    },
}

/// Bytes per image, averaged over the dataset.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct JpegBytes {
    /// Mean bytes sent per image (the file, or its prefix up to the last kept scan).
    pub mean_bytes: f64,
    /// Mean of those bytes that are headers and tables (SOI, quantisation and Huffman tables,
    /// frame header), which an abbreviated stream with pre-agreed tables would not send.
    pub mean_header_bytes: f64,
}

/// `data` with every image replaced by its JPEG reconstruction at `quality` under `mode`.
pub fn jpeg_dataset(data: &Dataset, quality: u8, mode: JpegMode) -> Result<(Dataset, JpegBytes), JpegError> {
    let (w, h) = (data.width, data.height);
    let mut images = Vec::with_capacity(data.images.len());
    let (mut bytes, mut header) = (0usize, 0usize);
    for i in 0..data.count {
        let img = data.image(i);
        let (pixels, sent) = match mode {
            JpegMode::Baseline => {
                let file = encode(img, w, h, quality, false)?;
                header += header_len(&file)?;
                (decode(&file)?.0, file.len())
            }
            JpegMode::Progressive { scans, keep } => {
                let file = encode_progressive(img, w, h, quality, scans)?;
                let cuts = scan_prefixes(&file)?;
                let k = (keep as usize).clamp(1, cuts.len());
                let len = cuts[k - 1];
                header += header_len(&file)?;
                (decode_prefix(&file, len)?, len)
            }
        };
        if pixels.len() != w * h {
            return Err(JpegError::SizeMismatch { left: w * h, right: pixels.len() });
        }
        bytes += sent;
        images.extend_from_slice(&pixels);
    }
    let n = data.count.max(1) as f64;
    let coded = Dataset { images, name: format!("{} (jpeg q{quality} {mode:?})", data.name), ..data.clone() };
    Ok((coded, JpegBytes { mean_bytes: bytes as f64 / n, mean_header_bytes: header as f64 / n }))
}
