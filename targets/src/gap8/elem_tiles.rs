//! L1 tiles of the layers that are not convolutions tiled by `program.rs` / `hwce_tiles.rs`:
//! elementwise layers (clamp, add, each operand of a concat), pools, global average pooling
//! and the AutoTiler depthwise kernel. Each moves its operands L2 -> L1 by cluster DMA in
//! double-buffered chunks, computes on L1 and writes its result tile back by DMA, within
//! `Gap8Options::l1_budget_bytes`; the chosen sizes are the proof that the tiles fit. A layer
//! with no fitting tile (a single plane or window band too large) keeps reading L2, and its
//! reason says so.

use super::program::{four, window_rows, ConvStep, Engine, PoolStep, Step, StepKind};

/// How a non-conv layer (or the vendor depthwise kernel) is tiled in L1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tiles {
    /// Chunks of `elems` elements: every input and the output double-buffered (clamp, add,
    /// concat operands, which are copied through L1 by DMA alone).
    Flat { elems: usize },
    /// `chunk` channels in bands of `rows` output rows (pools): input double-buffered, one
    /// output tile.
    Bands { chunk: usize, rows: usize },
    /// `chunk` whole channels (global average pool, vendor depthwise): input planes
    /// double-buffered, one output tile.
    Planes { chunk: usize },
}

/// Inputs read by an elementwise step (a concat operand counts as one).
fn flat_inputs(s: &Step) -> Option<usize> {
    match &s.kind {
        StepKind::Clamp { .. } => Some(1),
        StepKind::Add { .. } => Some(2),
        StepKind::Concat { .. } => Some(0),
        _ => None,
    }
}

/// Elements of the largest operand an elementwise step moves at once.
fn flat_size(s: &Step) -> usize {
    match &s.kind {
        StepKind::Clamp { size, .. } | StepKind::Add { size, .. } => *size,
        StepKind::Concat { parts } => parts.iter().map(|p| p.iter().product::<usize>()).max().unwrap_or(0),
        _ => 0,
    }
}

/// L1 bytes of a flat tiling of `elems` elements with `inputs` inputs (0: a copy through one
/// double-buffered tile).
pub(crate) fn flat_bytes(inputs: usize, elems: usize, es: usize) -> usize {
    (2 * inputs.max(1) + if inputs == 0 { 0 } else { 2 }) * four(elems * es)
}

/// Input rows of a band of `rows` output rows of a pool starting at output row `y0` (its
/// window clipped to the plane), as the generated loop computes them.
pub(crate) fn pool_band_rows(p: &PoolStep, y0: usize, rows: usize) -> usize {
    window_rows(y0, rows, p.stride[0], p.k[0], p.pad[0], p.h)
}

/// Largest input band of a pool in bands of `rows` output rows.
pub(crate) fn pool_max_band(p: &PoolStep, rows: usize) -> usize {
    (0..p.ho).step_by(rows).map(|y0| pool_band_rows(p, y0, rows.min(p.ho - y0))).max().unwrap_or(0)
}

/// L1 bytes of a pool tiled in `chunk` channels x bands of `rows` output rows.
pub(crate) fn pool_bytes(p: &PoolStep, chunk: usize, rows: usize, es: usize) -> usize {
    2 * four(chunk * pool_max_band(p, rows) * p.w * es) + four(chunk * rows * p.wo * es)
}

/// L1 bytes of `chunk` whole channels of `plane_in` input and `plane_out` output elements.
pub(crate) fn planes_bytes(chunk: usize, plane_in: usize, plane_out: usize, es: usize) -> usize {
    2 * four(chunk * plane_in * es) + four(chunk * plane_out * es)
}

/// The tiling of `s` within `budget` bytes of L1, or `None` (no tile fits, or the step is a
/// convolution the other tilers handle).
pub(crate) fn choose(s: &Step, es: usize, budget: usize) -> Option<Tiles> {
    if let Some(inputs) = flat_inputs(s) {
        // Buffers of `elems` elements: as many as fit, a multiple of 4, at most the largest
        // operand (rounded up to 4).
        let buffers = flat_bytes(inputs, 1, 1) / 4;
        let fit = budget / (buffers * es) / 4 * 4;
        let elems = fit.min(four(flat_size(s)));
        return (elems > 0).then_some(Tiles::Flat { elems });
    }
    match &s.kind {
        StepKind::MaxPool(p) | StepKind::AvgPool(p) => {
            // A window entirely in the padding would make an empty band (a zero-length DMA).
            if (0..p.ho).any(|y0| pool_band_rows(p, y0, 1) == 0) {
                return None;
            }
            let mut chunk = 0;
            while chunk < p.c && pool_bytes(p, chunk + 1, p.ho, es) <= budget {
                chunk += 1;
            }
            if chunk > 0 {
                return Some(Tiles::Bands { chunk, rows: p.ho });
            }
            let rows = (1..p.ho).rev().find(|r| pool_bytes(p, 1, *r, es) <= budget)?;
            Some(Tiles::Bands { chunk: 1, rows })
        }
        StepKind::GlobalAvgPool(m) => planes_chunk(m.c, m.size, 1, es, budget),
        StepKind::Conv(c) if matches!(c.engine, Engine::Dw { .. }) => {
            planes_chunk(c.cout, c.h * c.w, c.ho * c.wo, es, budget)
        }
        _ => None,
    }
}

fn planes_chunk(c: usize, plane_in: usize, plane_out: usize, es: usize, budget: usize) -> Option<Tiles> {
    let mut chunk = 0;
    while chunk < c && planes_bytes(chunk + 1, plane_in, plane_out, es) <= budget {
        chunk += 1;
    }
    (chunk > 0).then_some(Tiles::Planes { chunk })
}

/// L1 bytes of step `s` tiled as `t`.
pub(crate) fn l1_bytes(s: &Step, t: Tiles, es: usize) -> usize {
    match (t, &s.kind) {
        (Tiles::Flat { elems }, _) => flat_bytes(flat_inputs(s).unwrap_or(1), elems, es),
        (Tiles::Bands { chunk, rows }, StepKind::MaxPool(p) | StepKind::AvgPool(p)) => pool_bytes(p, chunk, rows, es),
        (Tiles::Planes { chunk }, StepKind::GlobalAvgPool(m)) => planes_bytes(chunk, m.size, 1, es),
        (Tiles::Planes { chunk }, StepKind::Conv(c)) => planes_bytes(chunk, c.h * c.w, c.ho * c.wo, es),
        _ => 0,
    }
}

/// `(L2 -> L1, L1 -> L2)` DMA bytes of step `s` tiled as `t`, per inference.
pub(crate) fn dma_bytes(s: &Step, t: Tiles, es: usize) -> (usize, usize) {
    match (t, &s.kind) {
        (Tiles::Flat { .. }, StepKind::Clamp { size, .. }) => (size * es, size * es),
        (Tiles::Flat { .. }, StepKind::Add { size, .. }) => (2 * size * es, size * es),
        (Tiles::Flat { .. }, StepKind::Concat { parts }) => {
            let n: usize = parts.iter().map(|p| p.iter().product::<usize>()).sum();
            (n * es, n * es)
        }
        (Tiles::Bands { rows, .. }, StepKind::MaxPool(p) | StepKind::AvgPool(p)) => {
            let band: usize = (0..p.ho).step_by(rows).map(|y0| pool_band_rows(p, y0, rows.min(p.ho - y0))).sum();
            (p.c * band * p.w * es, p.c * p.ho * p.wo * es)
        }
        (Tiles::Planes { .. }, StepKind::GlobalAvgPool(m)) => (m.c * m.size * es, m.c * es),
        (Tiles::Planes { .. }, StepKind::Conv(c)) => (c.cin * c.h * c.w * es, c.cout * c.ho * c.wo * es),
        _ => (0, 0),
    }
}

/// The reason-text note of a tiling.
pub(crate) fn note(s: &Step, t: Option<Tiles>, es: usize) -> String {
    let Some(t) = t else {
        return "; reads and writes L2 directly (no L1 tile fits)".into();
    };
    let bytes = l1_bytes(s, t, es);
    match t {
        Tiles::Flat { elems } if matches!(s.kind, StepKind::Concat { .. }) => format!(
            "; copied through L1 by DMA in chunks of {elems} elements, double-buffered ({bytes} B of L1)"
        ),
        Tiles::Flat { elems } => format!(
            "; L1 tiles: chunks of {elems} elements, inputs and output double-buffered by DMA ({bytes} B of L1)"
        ),
        Tiles::Bands { chunk, rows } => {
            let bands = match &s.kind {
                StepKind::MaxPool(p) | StepKind::AvgPool(p) if rows < p.ho => {
                    format!(" in bands of {rows} of {} output rows (row tiling)", p.ho)
                }
                _ => String::new(),
            };
            format!("; L1 tiles: {chunk} channel(s){bands}, input double-buffered by DMA in, the output tile by DMA out ({bytes} B of L1)")
        }
        Tiles::Planes { chunk } => format!(
            "; L1 tiles: {chunk} whole channel(s), input planes double-buffered by DMA in, the output tile by DMA out ({bytes} B of L1)"
        ),
    }
}

/// Tiles every step that is not a tiled convolution, appending the note to its reason.
pub(crate) fn assign(steps: &mut [Step], es: usize, budget: usize) {
    for s in steps.iter_mut() {
        let candidate = match &s.kind {
            StepKind::Conv(c) => is_vendor_dw(c),
            _ => true,
        };
        if !candidate {
            continue;
        }
        s.tiles = choose(s, es, budget);
        let note = note(s, s.tiles, es);
        s.reason.push_str(&note);
    }
}

fn is_vendor_dw(c: &ConvStep) -> bool {
    matches!(c.engine, Engine::Dw { .. })
}
