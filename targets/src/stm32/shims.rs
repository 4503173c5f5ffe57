//! The CMSIS-NN header shims (the exact published signatures of the functions the backend
//! calls) and clio's own host implementations of their arithmetic, shipped with the crate so
//! that generated code compiles and runs with the system C compiler in tests.
//!
//! On a device, link the real library instead of the host kernels.

use super::CmsisApi;
use std::path::Path;

const S8: &[(&str, &str)] = &[
    ("arm_nn_types.h", include_str!("../../shims/cmsis_nn/arm_nn_types.h")),
    ("arm_nnfunctions.h", include_str!("../../shims/cmsis_nn/arm_nnfunctions.h")),
    ("arm_nn_host.c", include_str!("../../shims/cmsis_nn/arm_nn_host.c")),
];

const Q7: &[(&str, &str)] = &[
    ("arm_nnfunctions.h", include_str!("../../shims/cmsis5_q7/arm_nnfunctions.h")),
    ("arm_nn_q7_host.c", include_str!("../../shims/cmsis5_q7/arm_nn_q7_host.c")),
];

/// `(file name, contents)` of the shims of an API: for s8 `arm_nn_types.h`,
/// `arm_nnfunctions.h` and the host kernels `arm_nn_host.c`; for legacy q7 `arm_nnfunctions.h`
/// (with the q7_t / arm_status types) and `arm_nn_q7_host.c`.
pub fn shim_files(api: CmsisApi) -> &'static [(&'static str, &'static str)] {
    match api {
        CmsisApi::S8 => S8,
        CmsisApi::LegacyQ7 => Q7,
    }
}

/// Writes the shims of `api` into `dir` (created if missing).
pub fn write_shims(dir: &Path, api: CmsisApi) -> Result<(), clio::error::IoError> {
    std::fs::create_dir_all(dir).map_err(|e| clio::error::IoError::new(dir, "cannot create the directory", e))?;
    for (name, text) in shim_files(api) {
        clio::io::write_atomic(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}
