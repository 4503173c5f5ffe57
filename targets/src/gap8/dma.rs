//! Cluster-DMA traffic of a layer per inference, counted from its tiling exactly as the
//! generated loops issue it: bytes moved L2 -> L1 (inputs, HWCE stripes and filters) and
//! L1 -> L2 (output tiles). The host DMA shim counts the same transfers, and the GAP8 tests
//! require the two to agree.

use super::hwce::HwcePlan;
use super::program::{ConvStep, Engine, Step, StepKind};

/// `(L2 -> L1, L1 -> L2)` bytes step `s` (elements of `es` bytes) moves by cluster DMA per
/// inference (0 for layers whose kernels read L2 directly).
pub(crate) fn dma_bytes(s: &Step, es: usize) -> (usize, usize) {
    if let Some(t) = s.tiles {
        return super::elem_tiles::dma_bytes(s, t, es);
    }
    let StepKind::Conv(c) = &s.kind else { return (0, 0) };
    let out = c.cout * c.ho * c.wo * c.es;
    let chunks = c.cout.div_ceil(c.chunk.max(1));
    match &c.engine {
        Engine::Hwce(h) => (hwce_in(c, h), out),
        Engine::Stream { dw: false } => (chunks * (c.cin / c.groups.max(1)) * band_rows(c) * c.w * c.es, out),
        Engine::Stream { dw: true } => (c.cin * band_rows(c) * c.w * c.es, out),
        Engine::Whole => (c.cin * c.h * c.w * c.es, out),
        Engine::Cluster | Engine::Dw { .. } => (0, 0),
    }
}

/// Input rows a streamed layer moves per plane: the whole plane, or the sum over its bands of
/// each band's window clipped to the plane (as the banded loops compute `r0`, `r1`).
fn band_rows(c: &ConvStep) -> usize {
    if !c.banded() {
        return c.h;
    }
    (0..c.ho).step_by(c.rows).map(|y0| c.window_rows(y0, c.rows.min(c.ho - y0))).sum()
}

/// L2 -> L1 bytes of an HWCE layer: per chunk, band and input plane, the band's input rows
/// inside the plane (the stripes are built from them in L1) and the chunk's filters of every
/// weight digit.
fn hwce_in(c: &ConvStep, h: &HwcePlan) -> usize {
    let km1 = h.k - 1;
    let mut total = 0;
    for oc0 in (0..c.cout).step_by(c.chunk.max(1)) {
        let ch = c.chunk.min(c.cout - oc0);
        for y0 in (0..c.ho).step_by(c.rows.max(1)) {
            let hb = c.rows.min(c.ho - y0) + km1;
            let v0 = y0 as isize - c.pads[0] as isize;
            let (r0, r1) = (v0.clamp(0, c.h as isize), (v0 + hb as isize).clamp(0, c.h as isize));
            let raw = (r1 - r0) as usize * c.w * c.es;
            total += c.cin * (raw + h.digits * 2 * ch * h.flen);
        }
    }
    total
}
