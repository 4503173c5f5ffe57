//! Atomic outputs: data go to a temporary sibling first and are renamed into place, so readers
//! see either the old file or the complete new one, never a partial write.

// Part of the file layer: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use crate::error::IoError;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically (temporary sibling + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes `path` atomically from a writer callback (buffered; a temporary sibling renamed into
/// place once `write` and the final flush succeed), for outputs too large to assemble in memory
/// first.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), IoError> {
    write_atomic_impl(path, None, write)
}

/// [`write_atomic_with`] for output whose length is known in advance: the temporary file's
/// blocks are reserved first (Linux `fallocate`; skipped where the file system does not support
/// it). On ext4 this matters for large files replacing an existing one: renaming over a file
/// makes ext4 allocate and submit every delayed-allocation block of the new file inside the
/// `rename` call (its `auto_da_alloc` safeguard), about 25 ms for the 45 MB ResNet-18 sidecar
/// here; preallocated blocks have nothing left to allocate. The file ends up exactly as long
/// as what `write` wrote, whatever `len` said.
pub fn write_atomic_preallocated(
    path: &Path,
    len: u64,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), IoError> {
    write_atomic_impl(path, Some(len), write)
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(target_os = "linux")]
fn preallocate(file: &std::fs::File, len: u64) {
    // Best effort: unsupported file systems (tmpfs on old kernels, network mounts) just write
    // as usual. No emulation (glibc's posix_fallocate writes zeros where unsupported).
    let _ = rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len);
}

#[cfg(not(target_os = "linux"))]
fn preallocate(_file: &std::fs::File, _len: u64) {}

fn write_atomic_impl(
    path: &Path,
    len: Option<u64>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), IoError> {
    let tmp = temp_sibling(path);
    let written = std::fs::File::create(&tmp).and_then(|file| {
        if let Some(n) = len {
            preallocate(&file, n);
        }
        let mut w = BufWriter::with_capacity(1 << 20, Counting { inner: file, bytes: 0 });
        write(&mut w)?;
        w.flush()?;
        let counted = w.get_ref();
        if len.is_some_and(|n| n != counted.bytes) {
            counted.inner.set_len(counted.bytes)?;
        }
        Ok(())
    });
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        IoError::new(path, "cannot write", e)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        IoError::new(path, "cannot move the finished file into place", e)
    })
}

/// An output directory built in a temporary sibling and renamed into place on
/// [`AtomicDir::commit`]; dropped without commit, the temporary directory is removed and any
/// previous output stays intact.
pub struct AtomicDir {
    target: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl AtomicDir {
    /// Starts building `target`.
    pub fn new(target: &Path) -> Result<AtomicDir, IoError> {
        let tmp = temp_sibling(target);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)
                .map_err(|e| IoError::new(&tmp, "cannot clear stale temporary directory", e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| IoError::new(&tmp, "cannot create directory", e))?;
        Ok(AtomicDir { target: target.to_path_buf(), tmp, committed: false })
    }

    /// Where to write files now.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Replaces the target with the finished directory.
    pub fn commit(mut self) -> Result<(), IoError> {
        let old = self.target.with_file_name(format!(
            ".{}.old-{}",
            self.target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            std::process::id()
        ));
        let had_old = self.target.exists();
        if had_old {
            std::fs::rename(&self.target, &old)
                .map_err(|e| IoError::new(&self.target, "cannot move the old output aside", e))?;
        }
        if let Err(e) = std::fs::rename(&self.tmp, &self.target) {
            if had_old {
                let _ = std::fs::rename(&old, &self.target);
            }
            return Err(IoError::new(&self.target, "cannot move the finished output into place", e));
        }
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}
