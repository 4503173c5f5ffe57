//! Files: modules saved losslessly as IR text plus a safetensors weights sidecar, `.npy`
//! tensors, and atomic (temp-file-then-rename) writing so a failed run never leaves a partial
//! output file behind.

// Reads user files: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

mod atomic;
mod module_file;
pub mod npy;
mod sidecar;

pub use atomic::{write_atomic, write_atomic_preallocated, write_atomic_with, AtomicDir};
pub use module_file::{load_module, save_module, sidecar_path, LoadOptions};
pub use npy::{read_npy, read_npy_bytes, write_npy, write_npy_bytes};
pub use sidecar::{read_sidecar, read_sidecar_file, write_sidecar, write_sidecar_bytes};
