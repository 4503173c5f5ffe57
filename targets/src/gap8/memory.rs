//! Memory of the generated code: the L2 activation arena (planned by the shared planner,
//! [`crate::stm32::plan_arena`]), the L2 int32 accumulator of untiled cluster layers, and the
//! L1 pool the tiled layers carve their buffers from.

use super::program::*;
use crate::stm32::{plan_arena, ArenaPlan, Interval};

/// Where everything lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Memory {
    /// The activation arena plan (offsets per buffer).
    pub plan: ArenaPlan,
    /// Each buffer's size and the steps that write it first and read it last (the arena plan's
    /// input; the graph output stays live past the last step).
    pub intervals: Vec<Interval>,
    /// int32 elements of the L2 accumulator scratch (largest output-channel chunk of a conv
    /// that is not tiled in L1).
    pub acc_elems: usize,
    /// Bytes of the L1 pool, carved per layer: HWCE layers (input stripes, output tiles,
    /// filters, accumulator, output tile) and streamed / whole-input cluster layers (input
    /// buffers, accumulator chunk, output tile).
    pub l1_pool_bytes: usize,
}

impl Memory {
    /// Bytes of the activation buffers live while step `i` runs: every buffer written at or
    /// before `i` and read at or after it (its operands, its result and what later steps need).
    pub fn live_bytes(&self, i: usize) -> usize {
        self.intervals.iter().filter(|v| v.first <= i && i <= v.last).map(|v| v.size).sum()
    }

    /// Total L1 bytes of the static L1 buffers (the pool).
    pub fn l1_bytes(&self) -> usize {
        self.l1_pool_bytes
    }
}

/// Plans the memory of `p`.
pub(crate) fn plan(p: &Program) -> Memory {
    let n = p.steps.len();
    let mut iv: Vec<Interval> = p.buffers.iter().map(|size| Interval { size: *size, first: n, last: 0 }).collect();
    for (i, s) in p.steps.iter().enumerate() {
        if let Loc::Buf(b) = s.output {
            iv[b].first = iv[b].first.min(i);
            iv[b].last = iv[b].last.max(i);
        }
        for l in &s.inputs {
            if let Loc::Buf(b) = l {
                iv[*b].last = iv[*b].last.max(i);
            }
        }
    }
    if let Loc::Buf(b) = p.output_loc {
        iv[b].last = n;
    }
    let plan = plan_arena(&iv, 4);
    let intervals = iv;
    let (mut acc_elems, mut pool) = (0, 0);
    for s in &p.steps {
        if let Some(t) = s.tiles {
            pool = pool.max(super::elem_tiles::l1_bytes(s, t, p.width.bytes()));
        }
        if let StepKind::Conv(c) = &s.kind {
            match &c.engine {
                Engine::Stream { dw } => pool = pool.max(c.stream_l1_bytes(*dw, c.chunk)),
                Engine::Whole => pool = pool.max(c.whole_l1_bytes(c.chunk)),
                Engine::Hwce(_) => pool = pool.max(c.hwce_l1().map_or(0, |l| l.total)),
                Engine::Cluster => acc_elems = acc_elems.max(c.chunk * c.ho * c.wo),
                Engine::Dw { .. } => {}
            }
        }
    }
    Memory { plan, intervals, acc_elems, l1_pool_bytes: pool }
}
