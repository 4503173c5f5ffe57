//! The one error type of the dataset readers.

use std::path::PathBuf;

/// Why a dataset could not be read or a batch could not be built.
///
/// Every variant that comes from a file names that file, so a one-line report is enough to act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A dataset directory does not exist (or the spec names neither a known dataset nor a directory).
    #[error("dataset `{spec}`: directory {dir} not found; {hint}")]
    MissingDir {
        /// The spec given to [`load`](super::load).
        spec: String,
        /// The directory that was looked for.
        dir: PathBuf,
        /// How to obtain the dataset.
        hint: String,
    },
    /// A file that a dataset needs is missing.
    #[error("missing {path}: expected {expected} in {dir}{hint}")]
    MissingFile {
        /// The path that was tried first (without `.gz`).
        path: PathBuf,
        /// The file name that was expected (`NAME[.gz]` when either form would do).
        expected: String,
        /// The directory that was searched.
        dir: PathBuf,
        /// How to obtain the dataset (empty, or starting with "; ").
        hint: String,
    },
    /// Reading (or gunzipping) a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the IDX magic number that was expected.
    #[error("{path}: bad IDX magic 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number read.
        found: u32,
        /// The magic number expected.
        expected: u32,
        /// What kind of file was expected (images or labels).
        what: &'static str,
    },
    /// The file ends before its header or payload is complete.
    #[error("{path}: truncated {part}: expected {expected} bytes, got {got}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// `header` or `payload`.
        part: &'static str,
        /// The number of bytes the header promises.
        expected: u64,
        /// The number of bytes present.
        got: u64,
    },
    /// The file has more bytes than its header accounts for.
    #[error("{path}: oversized payload: expected {expected} bytes, got more")]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// The number of payload bytes the header promises.
        expected: u64,
    },
    /// The header claims a payload too large to be a sane dataset; nothing was allocated.
    #[error("{path}: header claims {bytes} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The payload size the header claims.
        bytes: u64,
        /// The largest accepted payload.
        limit: u64,
    },
    /// A count or dimension in the header is zero.
    #[error("{path}: zero-sized {what} in header ({dims})")]
    ZeroSize {
        /// The file.
        path: PathBuf,
        /// Which dimension is zero.
        what: &'static str,
        /// All header dimensions, for the report.
        dims: String,
    },
    /// The image and label files hold different numbers of items.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The number of images.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// The number of labels.
        label_count: usize,
    },
    /// A label is not below the number of classes.
    #[error("{path}: label {label} at index {index} is not below the {classes} classes")]
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// The index of the offending label.
        index: usize,
        /// The label value.
        label: u8,
        /// The number of classes.
        classes: usize,
    },
    /// A batch asked for an item the dataset does not have.
    #[error("dataset `{name}`: index {index} out of range (the dataset has {count} items)")]
    IndexOutOfRange {
        /// The dataset name.
        name: String,
        /// The requested index.
        index: usize,
        /// The number of items.
        count: usize,
    },
    /// A batch asked to pad to a size smaller than the images.
    #[error("dataset `{name}`: cannot pad {height}x{width} images to {pad_to}x{pad_to}")]
    PadTooSmall {
        /// The dataset name.
        name: String,
        /// The requested padded size.
        pad_to: usize,
        /// Image height.
        height: usize,
        /// Image width.
        width: usize,
    },
    /// A batch would hold more than [`MAX_BATCH_VALUES`](super::MAX_BATCH_VALUES) values.
    #[error("dataset `{name}`: a batch of {items} items of {height}x{width} is too large")]
    BatchTooLarge {
        /// The dataset name.
        name: String,
        /// The number of items requested.
        items: usize,
        /// The (padded) height.
        height: usize,
        /// The (padded) width.
        width: usize,
    },
    /// A hand-built dataset whose fields disagree (pixel or label counts, zero sizes).
    #[error("dataset `{name}` is inconsistent: {detail}")]
    Inconsistent {
        /// The dataset name.
        name: String,
        /// What disagrees.
        detail: String,
    },
    /// The normalisation has a non-finite mean or a standard deviation that is not positive and finite.
    #[error("invalid normalisation: mean {mean}, std {std} (expected a finite mean and a finite std > 0)")]
    BadNormalize {
        /// The mean.
        mean: f32,
        /// The standard deviation.
        std: f32,
    },
}
