//! Weights in L3: the layers whose weight arrays [`super::budget::place_weights`] moved out of
//! L2 get them from `<prefix>_l3.bin`, an image the application loads from HyperFlash into
//! HyperRAM at boot. Before such a layer runs, its array is read into one L2 staging buffer
//! with `pi_cl_ram_read` (PMSIS `bsp/ram.h`): the read is issued as soon as the buffer is free
//! (at the start of the program, or right after the previous L3 layer), so it overlaps the
//! layers in between, and the layer itself starts with `pi_cl_ram_read_wait`.
//!
//! The image holds each array as the C array would: int8, or int16 little endian (GAP8's byte
//! order), each at an offset aligned to 4 bytes.

use super::program::{Engine, Step, StepKind};
use super::Gap8Layer;

/// One layer's weight array in the L3 image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct L3Slot {
    /// Byte offset in the image.
    pub offset: usize,
    /// Bytes of the array.
    pub bytes: usize,
    /// The step before which the read into the staging buffer is issued.
    pub prefetch_at: usize,
}

/// The L3 image and, per step, its slot (`None`: the step's constants are in L2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct L3Plan {
    /// Per step.
    pub slots: Vec<Option<L3Slot>>,
    /// The contents of `<prefix>_l3.bin`.
    pub image: Vec<u8>,
    /// Bytes of the L2 staging buffer (the largest slot).
    pub stage_bytes: usize,
}

impl L3Plan {
    /// Whether any layer reads its weights from L3.
    pub fn is_used(&self) -> bool {
        !self.image.is_empty()
    }

    /// The slots whose read is issued before step `i`, with their step.
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
        Engine::Cluster | Engine::Stream { .. } if c.es == 2 => {
            c.weights.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        Engine::Cluster | Engine::Stream { .. } => c.weights.iter().map(|v| *v as i8 as u8).collect(),
    }
}

/// The plan for the steps whose layer says `weights_in = L3`.
pub(crate) fn plan(steps: &[Step], layers: &[Gap8Layer], stage_bytes: usize) -> L3Plan {
    let mut out = L3Plan { slots: vec![None; steps.len()], image: vec![], stage_bytes };
    let mut free_from = 0;
    for (i, (s, l)) in steps.iter().zip(layers).enumerate() {
        if l.weights_in != "L3" {
            continue;
        }
        let bytes = weight_array_bytes(s);
        out.image.resize(out.image.len().next_multiple_of(4), 0);
        let slot = L3Slot { offset: out.image.len(), bytes: bytes.len(), prefetch_at: free_from };
        out.image.extend_from_slice(&bytes);
        if let Some(x) = out.slots.get_mut(i) {
            *x = Some(slot);
        }
        free_from = i + 1;
    }
    out
}
