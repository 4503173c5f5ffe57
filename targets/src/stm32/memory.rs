//! Memory of a lowered program: in-place reuse where the kernel allows it, live ranges, the
//! arena plan ([`super::arena`]) and the scratch buffer size.

use super::arena::{plan, ArenaPlan, Interval};
use super::kernel::{Loc, Program};

/// Offsets are aligned like TFLite Micro's arena (16 bytes).
pub(crate) const ALIGN: usize = 16;

/// The memory layout of a program.
pub(crate) struct Memory {
    /// Offset of each buffer in the arena (`None`: the buffer was merged away).
    pub offsets: Vec<Option<usize>>,
    pub plan: ArenaPlan,
    pub scratch_bytes: usize,
}

fn rename(p: &mut Program, from: usize, to: usize, start: usize) {
    let map = |l: &mut Loc| {
        if *l == Loc::Buf(from) {
            *l = Loc::Buf(to);
        }
    };
    for s in &mut p.steps[start..] {
        s.inputs.iter_mut().for_each(map);
        map(&mut s.output);
    }
    map(&mut p.output.src);
}

/// Last step reading each buffer (`steps.len()` for the transmitted one).
fn last_uses(p: &Program) -> Vec<Option<usize>> {
    let mut last = vec![None; p.buffers.len()];
    for (i, s) in p.steps.iter().enumerate() {
        for l in &s.inputs {
            if let Loc::Buf(b) = l {
                last[*b] = Some(i);
            }
        }
    }
    if let Loc::Buf(b) = p.output.src {
        last[b] = Some(p.steps.len());
    }
    last
}

/// Lets element-wise kernels (add, clamp) write over an operand that dies at that step.
fn in_place(p: &mut Program) {
    for i in 0..p.steps.len() {
        if !p.steps[i].kernel.in_place_ok() {
            continue;
        }
        let Loc::Buf(out) = p.steps[i].output else { continue };
        let last = last_uses(p);
        let cand = p.steps[i].inputs.iter().find_map(|l| match l {
            Loc::Buf(b) if *b != out && last[*b] == Some(i) && p.buffers[*b] == p.buffers[out] => Some(*b),
            _ => None,
        });
        if let Some(b) = cand {
            rename(p, out, b, i);
        }
    }
}

/// Plans the arena of `p` (after in-place merging, which rewrites `p`).
pub(crate) fn plan_memory(p: &mut Program) -> Memory {
    in_place(p);
    let n = p.buffers.len();
    let mut first: Vec<Option<usize>> = vec![None; n];
    for (i, s) in p.steps.iter().enumerate() {
        if let Loc::Buf(b) = s.output {
            first[b] = Some(first[b].map_or(i, |f: usize| f.min(i)));
        }
    }
    let last = last_uses(p);
    let used: Vec<usize> = (0..n).filter(|b| first[*b].is_some()).collect();
    let intervals: Vec<Interval> = used
        .iter()
        .map(|b| {
            let f = first[*b].unwrap_or(0);
            Interval { size: p.buffers[*b], first: f, last: last[*b].unwrap_or(f).max(f) }
        })
        .collect();
    let arena = plan(&intervals, ALIGN);
    let mut offsets = vec![None; n];
    for (k, b) in used.iter().enumerate() {
        offsets[*b] = Some(arena.offsets[k]);
    }
    let scratch_bytes = p.steps.iter().map(|s| s.kernel.scratch_bytes()).max().unwrap_or(0);
    Memory { offsets, plan: arena, scratch_bytes }
}
