//! Datasets: MNIST-style IDX files (raw or gzip), named datasets, batches and shuffles.
//!
//! [`load`] resolves `fashion-mnist`, `mnist` or a directory to a [`Dataset`] of one [`Split`];
//! [`Dataset::batch`] turns items into normalised (optionally padded) NCHW `f32` data, and
//! [`shuffled_indices`] gives the deterministic per-epoch order.

mod batch;
mod error;
pub mod idx;
mod shuffle;
mod source;

use std::fmt;
use std::path::Path;

pub use batch::{Normalize, MAX_BATCH_VALUES};
pub use error::DataError;
pub use shuffle::{shuffled_indices, SplitMix64};
pub use source::{find_file, load, FASHION_MNIST_DIR, MNIST_CLASSES, MNIST_DEFAULT_DIR, MNIST_DIR_ENV};

/// Which half of a dataset to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training set (`train-*` files).
    Train,
    /// The test set (`t10k-*` files).
    Test,
}

impl Split {
    /// The prefix of the standard file names: `train` or `t10k`.
    pub fn file_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

/// A labelled set of single-channel 8-bit images, all of one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// `count * height * width` pixels, image after image, row-major.
    pub images: Vec<u8>,
    /// Number of images.
    pub count: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// One label per image, each below `classes`.
    pub labels: Vec<u8>,
    /// Number of classes.
    pub classes: usize,
    /// A short name for reports (e.g. `fashion-mnist/train`).
    pub name: String,
}

impl Dataset {
    /// Loads an image file and a label file (IDX, raw or gzip). The number of classes is
    /// `max label + 1`, at least 2.
    pub fn load_idx(images: &Path, labels: &Path, name: &str) -> Result<Dataset, DataError> {
        Self::load_idx_with_classes(images, labels, name, None)
    }

    /// Like [`Dataset::load_idx`], with a known number of classes that every label must be below
    /// (`None`: `max label + 1`, at least 2).
    pub fn load_idx_with_classes(
        images: &Path,
        labels: &Path,
        name: &str,
        classes: Option<usize>,
    ) -> Result<Dataset, DataError> {
        let pixels = idx::read_images(images)?;
        let label_data = idx::read_labels(labels)?;
        if label_data.len() != pixels.count {
            return Err(DataError::CountMismatch {
                images: images.to_path_buf(),
                image_count: pixels.count,
                labels: labels.to_path_buf(),
                label_count: label_data.len(),
            });
        }
        let max_label = label_data.iter().copied().max().map_or(0, usize::from);
        let classes = match classes {
            Some(classes) => {
                if let Some(index) = label_data.iter().position(|&l| usize::from(l) >= classes) {
                    return Err(DataError::LabelOutOfRange {
                        path: labels.to_path_buf(),
                        index,
                        label: label_data[index],
                        classes,
                    });
                }
                classes
            }
            None => (max_label + 1).max(2),
        };
        Ok(Dataset {
            images: pixels.pixels,
            count: pixels.count,
            height: pixels.rows,
            width: pixels.cols,
            labels: label_data,
            classes,
            name: name.to_string(),
        })
    }

    /// The first `n` items (all of them when `n >= count`; compare `count` to detect that).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.count);
        let size = self.height * self.width;
        Dataset {
            images: self.images.iter().take(n * size).copied().collect(),
            count: n,
            height: self.height,
            width: self.width,
            labels: self.labels.iter().take(n).copied().collect(),
            classes: self.classes,
            name: self.name.clone(),
        }
    }

    /// The pixels of image `i` (`height * width` bytes, row-major); empty when `i >= count`.
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.height * self.width;
        i.checked_mul(size).and_then(|start| self.images.get(start..start.checked_add(size)?)).unwrap_or(&[])
    }
}
