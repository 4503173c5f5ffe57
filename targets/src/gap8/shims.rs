//! The GAP8 header shims (PMSIS cluster API, HWCE API, AutoTiler kernel struct: exact
//! published signatures, clio's own declarations), clio's own host implementation of them
//! (`gap8_host.c`: one core, DMA as memcpy), and clio's own cluster kernels
//! (`clio_gap8_kernels.{h,c}`), which generated code needs on the device too.

use std::path::Path;

const FILES: &[(&str, &str)] = &[
    ("pmsis.h", include_str!("../../shims/gap8/pmsis.h")),
    ("CNN_HwCE.h", include_str!("../../shims/gap8/CNN_HwCE.h")),
    ("CNN_BasicKernels.h", include_str!("../../shims/gap8/CNN_BasicKernels.h")),
    ("gap8_host.c", include_str!("../../shims/gap8/gap8_host.c")),
    ("clio_gap8_kernels.h", include_str!("../../shims/gap8/clio_gap8_kernels.h")),
    ("clio_gap8_kernels.c", include_str!("../../shims/gap8/clio_gap8_kernels.c")),
];

/// `(file name, contents)` of the shims and host kernels. On a device, build
/// `clio_gap8_kernels.c` with the generated code and link the real PMSIS / AutoTiler
/// libraries instead of `gap8_host.c` and the three headers.
pub fn shim_files() -> &'static [(&'static str, &'static str)] {
    FILES
}

/// The runtime files generated code needs on the device as well: clio's cluster kernels.
pub fn runtime_files() -> &'static [(&'static str, &'static str)] {
    &FILES[4..]
}

/// Writes the shims into `dir` (created if missing).
pub fn write_shims(dir: &Path) -> Result<(), clio::error::IoError> {
    std::fs::create_dir_all(dir).map_err(|e| clio::error::IoError::new(dir, "cannot create the directory", e))?;
    for (name, text) in shim_files() {
        clio::io::write_atomic(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}
