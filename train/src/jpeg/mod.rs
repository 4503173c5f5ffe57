//! JPEG baselines: the images a device could send to the cloud instead of Clio's progressive
//! slices, as baseline or progressive grayscale JPEG, and progressive streams cut after whole
//! scans (what arrives by a deadline).

mod codec;
mod dataset;
mod error;
mod scan;

pub use codec::{decode, encode, encode_progressive, psnr, DEFAULT_PROGRESSIVE_SCANS, MAX_PROGRESSIVE_SCANS};
pub use dataset::{jpeg_dataset, JpegBytes, JpegMode};
pub use error::JpegError;
pub use scan::{decode_prefix, header_len, scan_prefixes};
