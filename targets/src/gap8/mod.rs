//! GAP8: the cost model ([`Gap8Cost`]) and the backend that lowers a q8 (power-of-two, 8-bit
//! Q format) device graph to C for the GAP8 cluster: dense 3x3 / 5x5 / 7x7 stride-1
//! convolutions on the HWCE, everything else on the 8 cluster cores. A q16 (16-bit Q format)
//! device graph runs on the cluster cores with 16-bit data (clio's `_fp` kernels), and its
//! dense KxK layers on the HWCE in input-digit x weight-digit passes (exact 16-bit partial
//! sums) when the cost model rates those passes faster than the cores.
//!
//! One concept per file:
//! * `cost.rs`: the GAP8 cost model ([`Gap8Cost`], [`Gap8Desc`]);
//! * `program.rs`: the lowered program (one step per layer, parameters computed);
//! * `lower.rs`: IR -> program, with the per-op choice of engine and kernel and its reason;
//! * `hwce.rs`: HWCE planning (filter packing, output modes, stripes, the 16-bit overflow proof);
//! * `hwce_tiles.rs`: an HWCE layer's L1 tiles (output-channel chunks x row bands) and their fit;
//! * `emit_hwce.rs`: the C of an HWCE layer; `emit_stream.rs`: of a streamed cluster conv;
//! * `elem_tiles.rs` / `emit_elem.rs`: L1 tiles of elementwise layers, pools, global average
//!   pooling and the AutoTiler depthwise kernel, and their C;
//! * `memory.rs`: L2 arena (the shared planner [`crate::stm32::plan_arena`]), scratch and the
//!   L1 pool every tiled layer carves its buffers from (their fit is proven by `program.rs`
//!   and `hwce_tiles.rs`);
//! * `budget.rs`: the per-layer L1 / L2 / L3 budget (weights in L2 when they fit, else the
//!   largest weight arrays in L3) and its table ([`Gap8Report::memory_table`], also the head
//!   comment of the `.c`);
//! * `l3.rs`: the L3 weight image (`<prefix>_l3.bin`) and the reads into the L2 staging buffer;
//! * `emit.rs`: the `.h` / `.c` text;
//! * `shims.rs`: header shims, host implementations and clio's own cluster kernels;
//! * `variants.rs`: several cut points in one program behind `<prefix>_select` / `_invoke`,
//!   their buffers overlaid (partition switching, [`lower_variants`]).
//!
//! The generated code is bit-exact with `clio::interp::run_int`: every multi-plane layer
//! accumulates in int32 and rounds once (the AutoTiler `_fps` kernels' per-plane rounding would
//! not be), the HWCE runs with `Norm = 0` on inputs and filter digits proven not to overflow
//! its 16-bit outputs (see `hwce.rs`).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A module after `fuse-bn,quantize{scheme=q8,...},partition{cut=3}`:
//! let m = clio::io::load_module(std::path::Path::new("model.clio"), &Default::default())?;
//! let c = clio_targets::gap8::lower(&m, &clio_targets::gap8::Gap8Options::default())?;
//! c.write_to(std::path::Path::new("out"))?; // clio_device.{c,h}, manifest, clio_gap8_kernels.{c,h}
//! println!("{}", c.manifest_json());
//! # Ok(()) }
//! ```

mod budget;
mod cost;
mod dma;
mod elem_tiles;
mod emit;
mod emit_elem;
mod emit_hwce;
mod emit_stream;
mod error;
mod estimate;
mod hwce;
mod hwce_tiles;
mod l3;
mod lower;
mod memory;
mod program;
mod shims;
mod variants;

pub use cost::{Gap8Cost, Gap8Desc};
pub use error::Gap8Error;
pub use l3::L3_CHUNK_BYTES;
pub use shims::{runtime_files, shim_files, write_shims};
pub use variants::{lower_variants, Gap8Variants, VariantFootprint, VariantsReport};

use program::{Engine, StepKind};
use std::path::Path;

/// Bytes of the cluster's shared L1.
pub const L1_BYTES: usize = 64 * 1024;

/// Bytes of L2.
pub const L2_BYTES: usize = 512 * 1024;

/// Bytes of the int32 accumulator: a convolution is computed in chunks of output channels
/// whose accumulator fits this (at least one channel group).
pub const ACC_BUDGET: usize = 64 * 1024;

/// The default L1 bytes a layer's tiles may use ([`Gap8Options::l1_budget_bytes`]; the rest of
/// the 64 KB is left to the cluster cores' stacks and the application).
pub const L1_STREAM_BUDGET: usize = 40 * 1024;

/// Options of [`lower`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap8Options {
    /// The graph to lower (the device graph `partition` produced).
    pub graph: String,
    /// C identifier prefix of every exported symbol and of the file names.
    pub prefix: String,
    /// L2 bytes the generated code may use (default [`L2_BYTES`], all of it; less leaves room
    /// for the application). Buffers over it are an error; constants over it move to L3.
    pub l2_budget_bytes: usize,
    /// Bytes of weights one chunk of a layer whose weights are in L3 may hold (default
    /// [`L3_CHUNK_BYTES`]); the L2 staging buffer holds two chunks.
    pub l3_chunk_bytes: usize,
    /// L1 bytes one layer's tiles may use (default [`L1_STREAM_BUDGET`], 40 KB; at most
    /// [`L1_BYTES`]). Each layer's tiler picks the largest tiles within it; a layer with no
    /// fitting tile reads L2 directly, and its reason says so.
    pub l1_budget_bytes: usize,
}

impl Default for Gap8Options {
    fn default() -> Self {
        Gap8Options {
            graph: "device".into(),
            prefix: "clio_device".into(),
            l2_budget_bytes: L2_BYTES,
            l3_chunk_bytes: L3_CHUNK_BYTES,
            l1_budget_bytes: L1_STREAM_BUDGET,
        }
    }
}

/// One layer of the generated code: the manifest entry.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Gap8Layer {
    /// IR node name.
    pub node: String,
    /// IR op.
    pub op: String,
    /// `hwce` or `cluster`.
    pub unit: String,
    /// The C kernel called.
    pub function: String,
    /// Why this engine and kernel.
    pub reason: String,
    /// Multiply-accumulates of the layer.
    pub macs: u64,
    /// HWCE passes per input plane: input digits x weight digits (1 = plain; 0 off the HWCE).
    pub hwce_passes: usize,
    /// Constant bytes (weights, biases, shifts).
    pub const_bytes: usize,
    /// Bytes of the weight array among them (the part that moves to L3 when L2 is short).
    pub weight_bytes: usize,
    /// L1 bytes the layer uses (its L1 tiles; 0 for layers that read L2 directly).
    pub l1_bytes: usize,
    /// Bytes the layer moves L2 -> L1 by cluster DMA per inference (inputs, HWCE stripes and
    /// filters).
    pub dma_in_bytes: usize,
    /// Bytes the layer moves L1 -> L2 by cluster DMA per inference (output tiles).
    pub dma_out_bytes: usize,
    /// Bytes of the result in the L2 arena.
    pub out_bytes: usize,
    /// Bytes of the arena's activation buffers live while the layer runs (written at or before
    /// it, read at or after it; the cut tensor stays live to the end): the arena plan's liveness.
    pub l2_act_bytes: usize,
    /// L2 scratch the layer uses: the int32 accumulator chunk of a cluster layer that is not
    /// tiled in L1 (0 for every other layer).
    pub l2_scratch_bytes: usize,
    /// Where the layer's weights live: `L2`, `L3` (HyperRAM, read into the L2 staging buffer
    /// before the layer runs; chosen when not all constants fit L2, largest arrays first) or
    /// `none`.
    pub weights_in: String,
    /// L2 bytes of the layer: `l2_act_bytes + l2_scratch_bytes` + its constants (an L3
    /// layer's weights are in the staging buffer while it runs).
    pub l2_bytes: usize,
    /// Bytes the layer reads from L3 per inference: its weight array when it is in L3, else 0.
    pub l3_bytes: usize,
    /// The cost model's cycle estimate at the cluster clock (an L3 layer: the larger of its
    /// compute and its weight reads at `weight_load_bytes_per_s`, which overlap, plus the
    /// per-layer overhead).
    pub est_cycles: f64,
    /// Bytes of the L3 staging buffer the layer needs if its weights move to L3 (`None`: they
    /// cannot).
    #[serde(skip)]
    pub(crate) stage_if_moved: Option<usize>,
}

/// Sizes of the generated module.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Gap8Report {
    /// Graph lowered.
    pub graph: String,
    /// Input bytes (int8 CHW, or int16 CHW in q16).
    pub input_bytes: usize,
    /// Output bytes (wire header + payload).
    pub output_bytes: usize,
    /// L2 activation arena.
    pub arena_bytes: usize,
    /// The arena's lower bound (largest simultaneously live total).
    pub arena_lower_bound_bytes: usize,
    /// L2 int32 accumulator scratch.
    pub acc_bytes: usize,
    /// Static L1 bytes (must stay under 64 KB).
    pub l1_bytes: usize,
    /// L2 bytes of the generated code's buffers (arena, accumulator of untiled layers, the cut
    /// tensor's wire header), without the caller's input.
    pub l2_bytes: usize,
    /// Where the weights live: `L2` when they all fit next to the buffers in the 512 KB,
    /// otherwise `L3`: then each layer's `weights_in` says which layers' weight arrays are in
    /// `<prefix>_l3.bin` (HyperRAM).
    pub weights_in: String,
    /// Bytes of the L2 staging buffer the L3 layers' weights are read into (0 without L3).
    #[serde(skip_serializing_if = "is_zero")]
    pub l3_stage_bytes: usize,
    /// Bytes of `<prefix>_l3.bin`, the weight image the application loads into HyperRAM (0:
    /// no file).
    #[serde(skip_serializing_if = "is_zero")]
    pub l3_image_bytes: usize,
    /// The L1 budget every layer's tiles were chosen within (`Gap8Options::l1_budget_bytes`, by
    /// default [`L1_STREAM_BUDGET`]).
    pub l1_budget_bytes: usize,
    /// The L2 budget (`Gap8Options::l2_budget_bytes`, by default [`L2_BYTES`]).
    pub l2_budget_bytes: usize,
    /// Constant bytes (weights: L3 HyperFlash or L2).
    pub const_bytes: usize,
    /// Total multiply-accumulates.
    pub macs: u64,
    /// MACs on the HWCE.
    pub hwce_macs: u64,
    /// The cost model's total cycle estimate.
    pub est_cycles: f64,
    /// Cluster-DMA bytes L2 -> L1 per inference, all layers.
    pub dma_in_bytes: usize,
    /// Cluster-DMA bytes L1 -> L2 per inference, all layers.
    pub dma_out_bytes: usize,
    /// Every layer.
    pub layers: Vec<Gap8Layer>,
    /// The quantization scheme lowered: `q8` (not written to the manifest) or `q16`.
    #[serde(skip_serializing_if = "is_q8")]
    pub scheme: String,
}

fn is_q8(s: &str) -> bool {
    s == "q8"
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Gap8Report {
    /// The per-layer memory budget as a text table: each layer's L1 bytes (tiles), L2 bytes
    /// (live arena activations, L2 scratch, its constants when in L2) and L3 bytes (its
    /// constants when they stay in HyperFlash), where its constants live, the L1 / L2 budgets
    /// and the static totals. The generated `.c` starts with the same table.
    pub fn memory_table(&self) -> String {
        budget::table(self)
    }
}

/// A generated C module: `<prefix>.h`, `<prefix>.c`, `<prefix>.manifest.json` and, when some
/// weights stay in L3, `<prefix>_l3.bin`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gap8Module {
    /// The symbol and file prefix.
    pub prefix: String,
    /// Header text.
    pub header: String,
    /// Source text.
    pub source: String,
    /// Sizes and per-layer choices.
    pub report: Gap8Report,
    /// The L3 weight image (`<prefix>_l3.bin`; empty when every weight is in L2): the
    /// application copies it to HyperRAM and passes its address to `<prefix>_set_l3`.
    pub l3_image: Vec<u8>,
}

impl Gap8Module {
    /// `<prefix>.h`.
    pub fn header_name(&self) -> String {
        format!("{}.h", self.prefix)
    }

    /// `<prefix>.c`.
    pub fn source_name(&self) -> String {
        format!("{}.c", self.prefix)
    }

    /// The manifest (the report as pretty JSON).
    pub fn manifest_json(&self) -> String {
        serde_json::to_string_pretty(&self.report).unwrap_or_default()
    }

    /// `<prefix>_l3.bin`.
    pub fn l3_image_name(&self) -> String {
        format!("{}_l3.bin", self.prefix)
    }

    /// Writes the module, its manifest, the L3 weight image (when there is one) and clio's
    /// cluster kernels into `dir`, each atomically.
    pub fn write_to(&self, dir: &Path) -> Result<(), clio::error::IoError> {
        std::fs::create_dir_all(dir).map_err(|e| clio::error::IoError::new(dir, "cannot create the directory", e))?;
        clio::io::write_atomic(&dir.join(self.header_name()), self.header.as_bytes())?;
        clio::io::write_atomic(&dir.join(self.source_name()), self.source.as_bytes())?;
        if !self.l3_image.is_empty() {
            clio::io::write_atomic(&dir.join(self.l3_image_name()), &self.l3_image)?;
        }
        clio::io::write_atomic(&dir.join(format!("{}.manifest.json", self.prefix)), self.manifest_json().as_bytes())?;
        for (name, text) in runtime_files() {
            clio::io::write_atomic(&dir.join(name), text.as_bytes())?;
        }
        Ok(())
    }
}

fn valid_prefix(p: &str) -> bool {
    let mut c = p.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Lowers the q8 or q16 device graph `opts.graph` of `m` to GAP8 C (see the module documentation).
/// Errors name the node and op that cannot be lowered.
pub fn lower(m: &clio::Module, opts: &Gap8Options) -> Result<Gap8Module, Gap8Error> {
    lower_with(m, opts, false, None)
}

/// [`lower`], with the buffers either the module's own statics or (`shared`) members of a
/// dispatcher's unions ([`lower_variants`]), and the weights placed by the L2 budget or
/// (`forced_l3`) exactly the named nodes' in L3 (a dispatcher's joint placement).
fn lower_with(
    m: &clio::Module,
    opts: &Gap8Options,
    shared: bool,
    forced_l3: Option<&std::collections::HashSet<String>>,
) -> Result<Gap8Module, Gap8Error> {
    if !valid_prefix(&opts.prefix) {
        return Err(Gap8Error::Options(format!("prefix `{}` is not a C identifier", opts.prefix)));
    }
    if opts.l1_budget_bytes == 0 || opts.l1_budget_bytes > L1_BYTES {
        return Err(Gap8Error::Options(format!(
            "l1_budget_bytes {} must be between 1 and {L1_BYTES}",
            opts.l1_budget_bytes
        )));
    }
    let mut program = lower::lower(m, opts.graph.trim_start_matches('@'), opts.l1_budget_bytes)?;
    let mut mem = memory::plan(&program);
    if mem.l1_bytes() > L1_BYTES {
        return Err(Gap8Error::Graph {
            graph: program.graph.clone(),
            message: format!("the L1 tiles need {} B of L1 (> 64 KB)", mem.l1_bytes()),
        });
    }
    let layers = layer_entries(&program, &mem, opts.l3_chunk_bytes);
    if opts.l2_budget_bytes > L2_BYTES || opts.l3_chunk_bytes == 0 {
        return Err(Gap8Error::Options(format!(
            "l2_budget_bytes {} must be at most {L2_BYTES} and l3_chunk_bytes {} at least 1",
            opts.l2_budget_bytes, opts.l3_chunk_bytes
        )));
    }
    let mut report = report(&program, &mem, layers, opts, forced_l3)?;
    // Layers whose weights moved to L3 take smaller chunks: redo the memory plan and the
    // entries with them, keeping the placement (everything only shrinks, so it still fits).
    if l3::rechunk(&mut program.steps, &report.layers, opts.l3_chunk_bytes) {
        mem = memory::plan(&program);
        let mut layers = layer_entries(&program, &mem, opts.l3_chunk_bytes);
        for (l, placed) in layers.iter_mut().zip(&report.layers) {
            l.weights_in = placed.weights_in.clone();
            l.l3_bytes = placed.l3_bytes;
        }
        report = assemble(&program, &mem, layers, report.l3_stage_bytes, opts);
    }
    let l3 = l3::plan(&program.steps, &report.layers);
    report.l3_stage_bytes = l3.stage_bytes;
    report.l3_image_bytes = l3.image.len();
    budget::assign_l2(&mut report.layers, l3.stage_bytes);
    estimate::charge_l3(&mut report);
    let est = estimate::comments(&report.layers);
    let mut names = emit::Names::new(&opts.prefix, shared);
    names.width = program.width;
    let header = emit::header(&program, &names, &mem, &l3);
    let source = emit::source(&program, &mem, &names, &est, &budget::c_comment(&report.memory_table()), &l3);
    Ok(Gap8Module { prefix: opts.prefix.clone(), header, source, report, l3_image: l3.image })
}

/// `(macs, HWCE passes, constant bytes, weight array bytes, L1 bytes, L2 scratch bytes)` of a
/// step.
fn step_sizes(s: &program::Step, es: usize) -> (u64, usize, usize, usize, usize, usize) {
    let tile_l1 = s.tiles.map_or(0, |t| elem_tiles::l1_bytes(s, t, es));
    let StepKind::Conv(c) = &s.kind else { return (0, 0, 0, 0, tile_l1, 0) };
    let acc = 4 * c.chunk * c.ho * c.wo;
    let w = l3::weight_array_bytes(s).len();
    match &c.engine {
        Engine::Hwce(h) => (c.macs(), h.passes(), w + 5 * c.cout, w, c.hwce_l1().map_or(0, |l| l.total), 0),
        Engine::Dw { bias, .. } => (c.macs(), 0, w + bias.len(), w, tile_l1, 0),
        Engine::Cluster => (c.macs(), 0, w + 5 * c.cout, w, 0, acc),
        Engine::Whole => (c.macs(), 0, w + 5 * c.cout, w, c.whole_l1_bytes(c.chunk), 0),
        Engine::Stream { dw } => (c.macs(), 0, w + 5 * c.cout, w, c.stream_l1_bytes(*dw, c.chunk), 0),
    }
}

/// The manifest entry of every step (constants not placed yet).
fn layer_entries(program: &program::Program, mem: &memory::Memory, l3_chunk_bytes: usize) -> Vec<Gap8Layer> {
    let desc = estimate::builtin_desc();
    let mut layers = vec![];
    for (i, s) in program.steps.iter().enumerate() {
        let cycles = desc.as_ref().map(|d| estimate::est_cycles(d, s, program.width).round()).unwrap_or(0.0);
        let es = program.width.bytes();
        let (macs, passes, const_bytes, weight_bytes, l1, scratch) = step_sizes(s, es);
        let (dma_in_bytes, dma_out_bytes) = dma::dma_bytes(s, es);
        let out_bytes = match s.output {
            program::Loc::Buf(b) => program.buffers[b],
            program::Loc::Input => 0,
        };
        layers.push(Gap8Layer {
            node: s.node.clone(),
            op: s.op.clone(),
            unit: if passes > 0 { "hwce" } else { "cluster" }.into(),
            function: emit::function(s, program.width),
            reason: s.reason.clone(),
            macs,
            hwce_passes: passes,
            const_bytes,
            weight_bytes,
            l1_bytes: l1,
            dma_in_bytes,
            dma_out_bytes,
            out_bytes,
            l2_act_bytes: mem.live_bytes(i),
            l2_scratch_bytes: scratch,
            weights_in: budget::NO_WEIGHTS.into(),
            l2_bytes: 0,
            l3_bytes: 0,
            est_cycles: cycles,
            stage_if_moved: l3::stage_bytes_if_moved(s, l3_chunk_bytes),
        });
    }
    layers
}

/// The module's report, with every layer's constants placed in L2 or L3; an error when the
/// buffers, or the constants even with the largest weights in L3, do not fit L2.
fn report(
    program: &program::Program,
    mem: &memory::Memory,
    mut layers: Vec<Gap8Layer>,
    opts: &Gap8Options,
    forced_l3: Option<&std::collections::HashSet<String>>,
) -> Result<Gap8Report, Gap8Error> {
    // The wire header is a constant, counted once, in the buffers' L2 figure.
    let l2_bytes = mem.plan.arena_bytes + 4 * mem.acc_elems + program.header.len();
    let stage = match forced_l3 {
        Some(nodes) => budget::place_forced(&mut layers, nodes),
        None => budget::place_weights(&mut layers, l2_bytes, opts.l2_budget_bytes)
            .map_err(|message| Gap8Error::Graph { graph: program.graph.clone(), message })?,
    };
    Ok(assemble(program, mem, layers, stage, opts))
}

/// The report of placed `layers` with an L3 staging buffer of `stage` bytes, under the budgets
/// of `opts`.
fn assemble(
    program: &program::Program,
    mem: &memory::Memory,
    layers: Vec<Gap8Layer>,
    stage: usize,
    opts: &Gap8Options,
) -> Gap8Report {
    let const_bytes = layers.iter().map(|l| l.const_bytes).sum::<usize>() + program.header.len();
    let l2_bytes = mem.plan.arena_bytes + 4 * mem.acc_elems + program.header.len();
    Gap8Report {
        graph: program.graph.clone(),
        input_bytes: program.input.bytes,
        output_bytes: program.header.len() + program.output.bytes,
        arena_bytes: mem.plan.arena_bytes,
        arena_lower_bound_bytes: mem.plan.lower_bound_bytes,
        acc_bytes: 4 * mem.acc_elems,
        l1_bytes: mem.l1_bytes(),
        l2_bytes,
        weights_in: if stage == 0 { "L2" } else { "L3" }.into(),
        l3_stage_bytes: stage,
        l3_image_bytes: 0,
        l1_budget_bytes: opts.l1_budget_bytes,
        l2_budget_bytes: opts.l2_budget_bytes,
        const_bytes,
        macs: layers.iter().map(|l| l.macs).sum(),
        hwce_macs: layers.iter().filter(|l| l.unit == "hwce").map(|l| l.macs).sum(),
        est_cycles: layers.iter().map(|l| l.est_cycles).sum(),
        dma_in_bytes: layers.iter().map(|l| l.dma_in_bytes).sum(),
        dma_out_bytes: layers.iter().map(|l| l.dma_out_bytes).sum(),
        layers,
        scheme: program.width.scheme().into(),
    }
}
