//! STM32F7 (Cortex-M7): the cost model and the backend that lowers an int8-quantized device
//! graph to C calling CMSIS-NN's s8 kernels.
//!
//! One concept per file:
//! * `cost.rs`: the Cortex-M cost model ([`CortexMCost`]);
//! * `kernel.rs`: the lowered program (one step per kernel call, parameters computed);
//! * `lower.rs`: IR (NCHW) -> program (NHWC), layouts transposed at compile time;
//! * `arena.rs`: the static memory planner ([`plan_arena`]);
//! * `memory.rs`: in-place reuse, live ranges, scratch buffer size;
//! * `emit.rs`: the `.h` / `.c` text;
//! * `shims.rs`: the CMSIS-NN header shims and host reference kernels used by tests.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A module after `fuse-bn,quantize{scheme=int8,...},partition{cut=3}`:
//! let m = clio::io::load_module(std::path::Path::new("model.clio"), &Default::default())?;
//! let c = clio_targets::stm32::lower(&m, &clio_targets::stm32::Stm32Options::default())?;
//! c.write_to(std::path::Path::new("out"))?; // out/clio_device.c, out/clio_device.h
//! println!("arena {} bytes, flash data {} bytes", c.report.arena_bytes, c.report.const_bytes);
//! # Ok(()) }
//! ```

mod arena;
mod cost;
mod emit;
mod error;
mod kernel;
mod lower;
mod memory;
mod shims;

pub use arena::{plan as plan_arena, ArenaPlan, Interval};
pub use cost::{CortexMCost, CortexMDesc};
pub use error::LowerError;
pub use kernel::CmsisApi;
pub use shims::{shim_files, write_shims};

use std::path::Path;

/// Options of [`lower`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stm32Options {
    /// The graph to lower (the device graph `partition` produced).
    pub graph: String,
    /// C identifier prefix of every exported symbol and of the file names.
    pub prefix: String,
    /// The CMSIS-NN API to call: s8 for int8 graphs, legacy q7 for q8 graphs.
    pub api: CmsisApi,
}

impl Default for Stm32Options {
    fn default() -> Self {
        Stm32Options { graph: "device".into(), prefix: "clio_device".into(), api: CmsisApi::S8 }
    }
}

/// One kernel call of the generated code.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LayerReport {
    /// IR node name.
    pub node: String,
    /// IR op.
    pub op: String,
    /// The C function called.
    pub function: String,
    /// Offset of the result in the arena.
    pub offset: Option<usize>,
    /// Bytes of the result.
    pub bytes: usize,
    /// Multiply-accumulates.
    pub macs: u64,
    /// Constant bytes (weights, biases, multipliers, shifts).
    pub const_bytes: usize,
}

/// Layout and quantization of the module's input or output.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TensorReport {
    /// IR name of the value.
    pub name: String,
    /// IR shape (NCHW or `[N, K]`).
    pub shape: Vec<usize>,
    /// Affine scale.
    pub scale: f32,
    /// Affine zero point.
    pub zero_point: i32,
    /// Bytes at the C interface (input: int8 NHWC; output: the wire message).
    pub bytes: usize,
}

/// Sizes of the generated module.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Stm32Report {
    /// The input the C `invoke` takes (int8, NHWC in memory).
    pub input: TensorReport,
    /// The cut tensor `invoke` writes in the wire format.
    pub output: TensorReport,
    /// The static activation arena.
    pub arena_bytes: usize,
    /// The largest total size of simultaneously live activations (no plan is smaller).
    pub arena_lower_bound_bytes: usize,
    /// What TFLite Micro's greedy planner (size-sorted first fit) would need.
    pub arena_tflm_greedy_bytes: usize,
    /// One buffer per tensor, no reuse.
    pub arena_no_reuse_bytes: usize,
    /// The shared scratch buffer.
    pub scratch_bytes: usize,
    /// Constant data in flash: weights, biases, multipliers and shifts.
    pub const_bytes: usize,
    /// Input bytes (int8 NHWC).
    pub input_bytes: usize,
    /// Output bytes (wire header + payload).
    pub output_bytes: usize,
    /// Total multiply-accumulates.
    pub macs: u64,
    /// Every kernel call, in order.
    pub layers: Vec<LayerReport>,
}

/// A generated C module: `<prefix>.h` and `<prefix>.c`.
#[derive(Clone, Debug, PartialEq)]
pub struct CModule {
    /// The symbol and file prefix.
    pub prefix: String,
    /// The CMSIS-NN API the module calls (which shims / library to build it with).
    pub api: CmsisApi,
    /// Header text.
    pub header: String,
    /// Source text.
    pub source: String,
    /// Sizes.
    pub report: Stm32Report,
}

impl CModule {
    /// `<prefix>.h`.
    pub fn header_name(&self) -> String {
        format!("{}.h", self.prefix)
    }

    /// `<prefix>.c`.
    pub fn source_name(&self) -> String {
        format!("{}.c", self.prefix)
    }

    /// Writes both files into `dir` (created if missing), each atomically.
    pub fn write_to(&self, dir: &Path) -> Result<(), clio::error::IoError> {
        std::fs::create_dir_all(dir).map_err(|e| clio::error::IoError::new(dir, "cannot create the directory", e))?;
        clio::io::write_atomic(&dir.join(self.header_name()), self.header.as_bytes())?;
        clio::io::write_atomic(&dir.join(self.source_name()), self.source.as_bytes())
    }
}

fn valid_prefix(p: &str) -> bool {
    let mut c = p.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Lowers the int8-quantized device graph `opts.graph` of `m` to a C module calling CMSIS-NN
/// (see the module documentation). Errors name the node and op that cannot be lowered.
pub fn lower(m: &clio::Module, opts: &Stm32Options) -> Result<CModule, LowerError> {
    if !valid_prefix(&opts.prefix) {
        return Err(LowerError::Options(format!("prefix `{}` is not a C identifier", opts.prefix)));
    }
    let mut program = lower::lower(m, opts.graph.trim_start_matches('@'), opts.api)?;
    let mem = memory::plan_memory(&mut program);
    let names = emit::Names::new(&opts.prefix);
    let header = emit::header(&program, &mem, &names);
    let source = emit::source(&program, &mem, &names);
    let layers = program
        .steps
        .iter()
        .map(|s| {
            let (offset, bytes) = match s.output {
                kernel::Loc::Buf(b) => (mem.offsets[b], program.buffers[b]),
                kernel::Loc::Input => (None, 0),
            };
            LayerReport {
                node: s.node.clone(),
                op: s.op.clone(),
                function: emit::function(&s.kernel).to_string(),
                offset,
                bytes,
                macs: s.kernel.macs(),
                const_bytes: s.kernel.const_bytes(),
            }
        })
        .collect::<Vec<_>>();
    let i = &program.input;
    let o = &program.output;
    let report = Stm32Report {
        input: TensorReport {
            name: i.name.clone(),
            shape: i.shape.clone(),
            scale: i.scale,
            zero_point: i.zero_point,
            bytes: i.dims.len(),
        },
        output: TensorReport {
            name: o.name.clone(),
            shape: o.shape.clone(),
            scale: o.scale,
            zero_point: o.zero_point,
            bytes: o.header.len() + o.dims.len(),
        },
        arena_bytes: mem.plan.arena_bytes,
        arena_lower_bound_bytes: mem.plan.lower_bound_bytes,
        arena_tflm_greedy_bytes: mem.plan.tflm_greedy_bytes,
        arena_no_reuse_bytes: mem.plan.no_reuse_bytes,
        scratch_bytes: mem.scratch_bytes,
        const_bytes: layers.iter().map(|l| l.const_bytes).sum::<usize>() + program.output.header.len(),
        input_bytes: program.input.dims.len(),
        output_bytes: program.output.header.len() + program.output.dims.len(),
        macs: layers.iter().map(|l| l.macs).sum(),
        layers,
    };
    Ok(CModule { prefix: opts.prefix.clone(), api: opts.api, header, source, report })
}
