//! Saving and loading modules: `model.clio` (IR text, weights as digests) next to
//! `model.safetensors` (the weight data). Loading checks every digest, so a stale or
//! mismatched sidecar is an error, and verifies the module.

// Reads user files: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::atomic::write_atomic;
use super::sidecar::{read_sidecar_file, write_sidecar};
use crate::error::IoError;
use crate::text::{parse_module, parse_module_taking, print_module, MissingWeights, ParseOptions, PrintOptions};
use crate::verify::verify_module;
use crate::{Error, Limits, Module};
use std::path::{Path, PathBuf};

/// The sidecar path of a module text file: same stem, `.safetensors` extension.
pub fn sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("safetensors")
}

/// Writes `m` as text plus sidecar (each atomically; sidecar first, so a reader never sees new
/// text with old data without the digest check catching it). A module without weights gets
/// no sidecar. The text (with its weight digests) is printed on a second thread while the
/// sidecar is written; it is written only after the sidecar is in place.
pub fn save_module(m: &Module, path: &Path) -> Result<(), Error> {
    let text = if m.weights().is_empty() {
        print_module(m, &PrintOptions::default())
    } else {
        let side = sidecar_path(path);
        let (written, text) = std::thread::scope(|s| {
            let printer = s.spawn(|| print_module(m, &PrintOptions::default()));
            let written = write_sidecar(m, &side);
            (written, printer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        written?;
        text
    };
    write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Settings for [`load_module`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// What to do with weights whose data are missing (no sidecar).
    pub missing: MissingWeights,
    /// Size limits.
    pub limits: Limits,
    /// Skip the verifier (for tools that want to show a broken module).
    pub skip_verify: bool,
}

/// Loads a `.clio` file and, if present, its sidecar; verifies the result.
pub fn load_module(path: &Path, opts: &LoadOptions) -> Result<Module, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| IoError::new(path, "cannot read", e))?;
    let side = sidecar_path(path);
    let blobs = if side.exists() { Some(read_sidecar_file(&side, &opts.limits)?) } else { None };
    let popts =
        ParseOptions { file: path.display().to_string(), blobs: None, missing: opts.missing, limits: opts.limits };
    // The sidecar's tensors move into the module (no second copy of the weights).
    let m = match blobs {
        Some(blobs) => parse_module_taking(&text, &popts, blobs)?,
        None => parse_module(&text, &popts)?,
    };
    if !opts.skip_verify {
        verify_module(&m).map_err(|e| Error::VerifyFile { file: path.to_path_buf(), error: Box::new(e) })?;
    }
    Ok(m)
}
