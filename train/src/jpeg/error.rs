//! The one error type of the JPEG baseline.

/// Why an image could not be encoded, decoded or cut.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JpegError {
    /// Width or height is zero or above 65535, or the pixel count does not match.
    #[error("bad image dimensions: {width}x{height} with {len} pixels (expected 1..=65535 per side and width*height pixels)")]
    BadDimensions {
        /// The given width.
        width: usize,
        /// The given height.
        height: usize,
        /// The number of pixels given.
        len: usize,
    },
    /// The quality is outside `1..=100`.
    #[error("JPEG quality {0} outside 1..=100")]
    BadQuality(u8),
    /// The number of progressive scans is outside `2..=33` (see
    /// [`MAX_PROGRESSIVE_SCANS`](super::MAX_PROGRESSIVE_SCANS)).
    #[error("progressive scan count {0} outside 2..=33")]
    BadScans(u8),
    /// The encoder failed.
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
    /// The decoder rejected the data.
    #[error("corrupt JPEG data: {0}")]
    Corrupt(String),
    /// The marker structure of the stream is broken.
    #[error("malformed JPEG stream at byte {offset}: {reason}")]
    Malformed {
        /// Where the problem was found.
        offset: usize,
        /// What was expected.
        reason: String,
    },
    /// The decoded image is not one this baseline handles.
    #[error("unsupported JPEG: {0}")]
    Unsupported(String),
    /// A prefix length is not one of the scan boundaries of the stream.
    #[error("cut length {len} is not at a scan boundary (boundaries: {boundaries:?})")]
    NotAScanBoundary {
        /// The requested length.
        len: usize,
        /// The valid lengths, from [`scan_prefixes`](super::scan_prefixes).
        boundaries: Vec<usize>,
    },
    /// Two images to compare differ in size.
    #[error("cannot compare images of {left} and {right} pixels")]
    SizeMismatch {
        /// Pixels of the first image.
        left: usize,
        /// Pixels of the second image.
        right: usize,
    },
}
