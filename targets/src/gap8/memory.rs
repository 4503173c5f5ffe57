//! Memory of the generated code: the L2 activation arena (planned by the shared planner,
//! [`crate::stm32::plan_arena`]), the L2 int32 accumulator and padded-plane scratch, and the
//! L1 buffers of the HWCE stripes.

use super::hwce::STRIPE;
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
    /// int32 elements of the accumulator scratch (largest output-channel chunk of a conv).
    pub acc_elems: usize,
    /// int16 elements of the padded-plane scratch (largest HWCE padded plane).
    pub pad_elems: usize,
    /// int16 elements of each of the two (double-buffered) L1 input stripes.
    pub l1_in_elems: usize,
    /// int16 elements of each of the three L1 output tiles.
    pub l1_out_elems: usize,
    /// int16 elements of the L1 filter buffer (one chunk's filters of one digit and plane).
    pub l1_f_elems: usize,
    /// Bytes of the L1 pool of streamed layers (two input buffers, the accumulator chunk and the output tile,
    /// carved per layer).
    pub l1_pool_bytes: usize,
}

impl Memory {
    /// Bytes of the activation buffers live while step `i` runs: every buffer written at or
    /// before `i` and read at or after it (its operands, its result and what later steps need).
    pub fn live_bytes(&self, i: usize) -> usize {
        self.intervals.iter().filter(|v| v.first <= i && i <= v.last).map(|v| v.size).sum()
    }

    /// Total L1 bytes of the static L1 buffers.
    pub fn l1_bytes(&self) -> usize {
        2 * 2 * self.l1_in_elems + 2 * 3 * self.l1_out_elems + 2 * self.l1_f_elems + self.l1_pool_bytes
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
    let (mut acc_elems, mut pad_elems, mut hp, mut ho, mut fl) = (0, 0, 0, 0, 0);
    let mut pool = 0;
    for s in &p.steps {
        if let StepKind::Conv(c) = &s.kind {
            if let Engine::Stream { dw } = c.engine {
                pool = pool.max(c.stream_l1_bytes(dw, c.chunk));
            } else if let Engine::Whole = c.engine {
                pool = pool.max(c.whole_l1_bytes(c.chunk));
            } else if !matches!(c.engine, Engine::Dw { .. }) {
                acc_elems = acc_elems.max(c.chunk * c.ho * c.wo);
            }
            if let Engine::Hwce(h) = &c.engine {
                pad_elems = pad_elems.max(h.wp * h.hp);
                hp = hp.max(h.hp);
                ho = ho.max(c.ho);
                fl = fl.max(c.chunk * h.flen);
            }
        }
    }
    Memory {
        plan,
        intervals,
        acc_elems,
        pad_elems,
        l1_in_elems: STRIPE * hp,
        l1_out_elems: (STRIPE - 2) * ho,
        l1_f_elems: fl,
        l1_pool_bytes: pool,
    }
}
