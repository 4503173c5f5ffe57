//! The device side of split execution, on the host:
//!
//! * [`module`]: the generated STM32 device C (host build against the CMSIS-NN shims) compiled
//!   into a shared library and called through `<prefix>_invoke`;
//! * [`clock`]: the trace clock (wall time mapped onto a bandwidth trace);
//! * [`shaper`]: a link that delivers bytes at a bandwidth trace's rate;
//! * [`estimator`]: Clio's bandwidth estimate (throughput of the last N seconds of sends);
//! * [`program`]: the adaptive loop: choose `<cut, slice>` with the shared policy, run the device
//!   part, stream channel groups to the server until the deadline, log every decision and frame.

pub mod clock;
pub mod estimator;
pub mod module;
pub mod program;
pub mod shaper;
