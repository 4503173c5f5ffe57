//! The GAP8 header shims (PMSIS cluster API, HWCE API, AutoTiler kernel struct: exact
//! published signatures, clio's own declarations), clio's own host implementation of them
//! (`gap8_host.c`: one core, DMA as memcpy), and clio's own cluster kernels
//! (`clio_gap8_kernels.{h,c}`), which generated code needs on the device too.

use std::path::Path;

/// The shims first, clio's runtime kernels last ([`RUNTIME_FILES`] of them).
const FILES: &[(&str, &str)] = &[
    ("pmsis.h", include_str!("../../shims/gap8/pmsis.h")),
    ("bsp/ram.h", include_str!("../../shims/gap8/bsp/ram.h")),
    ("CNN_HwCE.h", include_str!("../../shims/gap8/CNN_HwCE.h")),
    ("CNN_BasicKernels.h", include_str!("../../shims/gap8/CNN_BasicKernels.h")),
    ("gap8_host.c", include_str!("../../shims/gap8/gap8_host.c")),
    ("clio_gap8_kernels.h", include_str!("../../shims/gap8/clio_gap8_kernels.h")),
    ("clio_gap8_kernels.c", include_str!("../../shims/gap8/clio_gap8_kernels.c")),
];

/// How many of [`FILES`], at its end, are clio's runtime kernels.
const RUNTIME_FILES: usize = 2;

/// `(file name, contents)` of the shims and host kernels (names are relative paths:
/// `bsp/ram.h` is in a subdirectory, as in the GAP SDK). On a device, build
/// `clio_gap8_kernels.c` with the generated code and link the real PMSIS / AutoTiler
/// libraries instead of `gap8_host.c` and the three headers.
pub fn shim_files() -> &'static [(&'static str, &'static str)] {
    FILES
}

/// The runtime files generated code needs on the device as well: clio's cluster kernels.
pub fn runtime_files() -> &'static [(&'static str, &'static str)] {
    &FILES[FILES.len() - RUNTIME_FILES..]
}

/// Writes the shims into `dir` (created if missing, with its `bsp/` subdirectory).
pub fn write_shims(dir: &Path) -> Result<(), clio::error::IoError> {
    for (name, text) in shim_files() {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| clio::error::IoError::new(parent, "cannot create the directory", e))?;
        }
        clio::io::write_atomic(&path, text.as_bytes())?;
    }
    Ok(())
}
