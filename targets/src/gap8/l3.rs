//! Weights in L3: the layers whose weight arrays [`super::budget::place_weights`] moved out of
//! L2 get them from `<prefix>_l3.bin`, an image the application loads from HyperFlash into
//! HyperRAM at boot. Such a layer reads its weights one output-channel chunk at a time into
//! one half of an L2 staging buffer with `pi_cl_ram_read` / `pi_cl_ram_read_2d` (PMSIS
//! `bsp/ram.h`), the next chunk into the other half while the current one is computed; its
//! chunks are cut to at most `l3_chunk_bytes` of weights ([`super::Gap8Options`], default
//! [`L3_CHUNK_BYTES`]). The first chunk's read is issued
//! as soon as the staging buffer is free (at the start of the program, or right after the
//! previous L3 layer), so it overlaps the layers in between.
//!
//! The image holds each array as the C array would (int8, or int16 little endian, GAP8's byte
//! order), at 4-byte aligned offsets; a chunk of a layer whose array is laid out input-major
//! (streamed dense layers, HWCE filters) is a 2D read: one line per input plane (and digit).

use super::program::{ConvStep, Engine, Step, StepKind};
use super::Gap8Layer;

/// Default bytes of weights one chunk of an L3 layer may hold (each half of the staging
/// buffer holds one chunk).
pub const L3_CHUNK_BYTES: usize = 16 * 1024;

/// How a chunk of output channels lies in a layer's weight array: `lines` runs of
/// `oc_bytes` bytes per output channel, `cout * oc_bytes` apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkLayout {
    /// Runs per chunk (1: contiguous).
    pub lines: usize,
    /// Bytes of one output channel in one run.
    pub oc_bytes: usize,
    /// Output channels of the layer.
    pub cout: usize,
}

impl ChunkLayout {
    /// Bytes of `ch` output channels.
    pub fn bytes(&self, ch: usize) -> usize {
        self.lines * ch * self.oc_bytes
    }

    /// Distance between two runs in the array.
    pub fn stride(&self) -> usize {
        self.cout * self.oc_bytes
    }
}

/// The chunk layout of a step whose weights can be read from L3 chunk by chunk (`None` for
/// steps without weights and for the vendor depthwise kernel, which takes the whole array).
pub(crate) fn chunk_layout(s: &Step) -> Option<ChunkLayout> {
    let StepKind::Conv(c) = &s.kind else { return None };
    let kk = c.kh * c.kw;
    let (lines, oc_bytes) = match &c.engine {
        Engine::Hwce(h) => (h.digits * c.cin, h.flen * 2),
        Engine::Dw { .. } => return None,
        // A row-tiled depthwise layer walks (channel, band) pairs: its weights stay in L2.
        Engine::Stream { dw: true } if c.rows < c.ho => return None,
        Engine::Stream { dw: true } => (1, kk * c.es),
        Engine::Stream { dw: false } => (c.cin / c.groups.max(1), kk * c.es),
        Engine::Cluster | Engine::Whole => (1, c.cin / c.groups.max(1) * kk * c.es),
    };
    Some(ChunkLayout { lines, oc_bytes, cout: c.cout })
}

/// The chunk an L3 layer uses: its chunk, cut down (in whole chunk units) so that a chunk's
/// weights fit `max_bytes`, at least one unit.
pub(crate) fn l3_chunk(c: &ConvStep, layout: ChunkLayout, max_bytes: usize) -> usize {
    let fit = max_bytes / layout.bytes(1).max(1);
    c.chunk.min(c.valid_chunk(fit))
}

/// Bytes of the staging buffer a step needs if its weights move to L3 (two chunks), or
/// `None` when they cannot.
pub(crate) fn stage_bytes_if_moved(s: &Step, max_chunk_bytes: usize) -> Option<usize> {
    let StepKind::Conv(c) = &s.kind else { return None };
    let layout = chunk_layout(s)?;
    Some(2 * layout.bytes(l3_chunk(c, layout, max_chunk_bytes)).next_multiple_of(4))
}

/// One layer's weight array in the L3 image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct L3Slot {
    /// Byte offset in the image.
    pub offset: usize,
    /// Bytes of the array.
    pub bytes: usize,
    /// The step before which the first chunk's read is issued.
    pub prefetch_at: usize,
    /// How its chunks lie in the array.
    pub layout: ChunkLayout,
    /// Output channels per chunk.
    pub chunk: usize,
}

impl L3Slot {
    /// The C statement (run by core 0) reading the `ch` channels from `oc0` (C expressions)
    /// into staging half `half` (of `half_bytes`) with that half's request, for a module with
    /// symbol prefix `p`.
    pub fn read(&self, p: &str, half_bytes: usize, oc0: &str, ch: &str, half: &str) -> String {
        let l = self.layout;
        let src = format!("{p}_l3_addr + {} + ({oc0}) * {}", self.offset, l.oc_bytes);
        let dst = format!("{p}_l3_stage + ({half}) * {half_bytes}");
        let req = format!("&{p}_l3_req[{half}]");
        if l.lines == 1 {
            format!("pi_cl_ram_read({p}_l3_ram, {src}, {dst}, (uint32_t)(({ch}) * {}), {req});", l.oc_bytes)
        } else {
            format!(
                "pi_cl_ram_read_2d({p}_l3_ram, {src}, {dst}, (uint32_t)(({ch}) * {}), {}, (uint32_t)(({ch}) * {}), {req});",
                l.lines * l.oc_bytes,
                l.stride(),
                l.oc_bytes
            )
        }
    }
}

/// The L3 image and, per step, its slot (`None`: the step's constants are in L2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct L3Plan {
    /// Per step.
    pub slots: Vec<Option<L3Slot>>,
    /// The contents of `<prefix>_l3.bin`.
    pub image: Vec<u8>,
    /// Bytes of the L2 staging buffer (two halves of [`L3Plan::half_bytes`]).
    pub stage_bytes: usize,
}

impl L3Plan {
    /// Whether any layer reads its weights from L3.
    pub fn is_used(&self) -> bool {
        !self.image.is_empty()
    }

    /// Bytes of one staging half.
    pub fn half_bytes(&self) -> usize {
        self.stage_bytes / 2
    }

    /// The slots whose first read is issued before step `i`, with their step.
    pub fn prefetched_at(&self, i: usize) -> impl Iterator<Item = (usize, &L3Slot)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(move |(j, s)| s.as_ref().filter(|s| s.prefetch_at == i).map(|s| (j, s)))
    }
}

/// The bytes of a step's weight array as its C array holds them (empty for steps without one).
pub(crate) fn weight_array_bytes(s: &Step) -> Vec<u8> {
    let StepKind::Conv(c) = &s.kind else { return vec![] };
    match &c.engine {
        Engine::Hwce(h) => h.filters.iter().flat_map(|v| v.to_le_bytes()).collect(),
        // int8 arrays hold the low byte of each (in-range) value.
        Engine::Dw { .. } => c.weights.iter().map(|v| *v as i8 as u8).collect(),
        Engine::Cluster | Engine::Stream { .. } | Engine::Whole if c.es == 2 => {
            c.weights.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        Engine::Cluster | Engine::Stream { .. } | Engine::Whole => c.weights.iter().map(|v| *v as i8 as u8).collect(),
    }
}

/// Cuts the chunks of the steps whose layer says `weights_in = L3` to [`l3_chunk`]; returns
/// whether any step is in L3.
pub(crate) fn rechunk(steps: &mut [Step], layers: &[Gap8Layer], max_chunk_bytes: usize) -> bool {
    let mut any = false;
    for (s, l) in steps.iter_mut().zip(layers) {
        let layout = chunk_layout(s);
        if let (StepKind::Conv(c), Some(layout), "L3") = (&mut s.kind, layout, l.weights_in.as_str()) {
            let note = c.stream_note() + &c.whole_note() + &c.hwce_note();
            c.chunk = l3_chunk(c, layout, max_chunk_bytes);
            if !note.is_empty() {
                s.reason = s.reason.replace(&note, &(c.stream_note() + &c.whole_note() + &c.hwce_note()));
            }
            s.reason.push_str(&format!(
                "; weights from L3 (HyperRAM) in chunks of {} output channel(s), {} B, double-buffered in L2",
                c.chunk,
                layout.bytes(c.chunk)
            ));
            any = true;
        }
    }
    any
}

/// The plan for the steps whose layer says `weights_in = L3` (their chunks already cut by
/// [`rechunk`]).
pub(crate) fn plan(steps: &[Step], layers: &[Gap8Layer]) -> L3Plan {
    let mut out = L3Plan { slots: vec![None; steps.len()], image: vec![], stage_bytes: 0 };
    let mut free_from = 0;
    for (i, (s, l)) in steps.iter().zip(layers).enumerate() {
        let (StepKind::Conv(c), Some(layout), "L3") = (&s.kind, chunk_layout(s), l.weights_in.as_str()) else {
            continue;
        };
        let bytes = weight_array_bytes(s);
        out.image.resize(out.image.len().next_multiple_of(4), 0);
        let slot =
            L3Slot { offset: out.image.len(), bytes: bytes.len(), prefetch_at: free_from, layout, chunk: c.chunk };
        out.stage_bytes = out.stage_bytes.max(2 * layout.bytes(c.chunk).next_multiple_of(4));
        out.image.extend_from_slice(&bytes);
        if let Some(x) = out.slots.get_mut(i) {
            *x = Some(slot);
        }
        free_from = i + 1;
    }
    out
}
