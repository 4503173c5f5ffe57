//! `gemm` (ONNX Gemm) and `matmul` (NumPy matmul), plus the bounds-checked wrapper around
//! `matrixmultiply::sgemm` that every matrix product of the float interpreter goes through.

use super::{f32_tensor, f32s};
use crate::interp::shared::{broadcast_map2, broadcast_to, numel};
use crate::ir::Tensor;
use crate::ops::{broadcast_shapes, Gemm};

/// A read-only strided matrix view: element `(i, j)` is `data[off + i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Offset of the last element of a `rows x cols` view (both non-zero), if it fits in `len`.
fn last_in_bounds(len: usize, off: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)))
        .and_then(|x| x.checked_add(off));
    matches!(last, Some(l) if l < len) && isize::try_from(rs).is_ok() && isize::try_from(cs).is_ok()
}

/// `C = alpha * A B + beta * C` with `A: m x k`, `B: k x n` and `C: m x n` stored in `c` at
/// `c_off` with row stride `rsc` and column stride 1. With `beta == 0`, `C` is not read.
/// Every view is bounds-checked before the (unsafe) call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat<'_>,
    b: Mat<'_>,
    beta: f32,
    c: &mut [f32],
    c_off: usize,
    rsc: usize,
) -> Result<(), String> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    if !last_in_bounds(c.len(), c_off, m, n, rsc, 1) || (m > 1 && rsc < n) {
        return Err("internal error: gemm output view out of bounds".into());
    }
    if k == 0 {
        for i in 0..m {
            for v in &mut c[c_off + i * rsc..c_off + i * rsc + n] {
                *v = if beta == 0.0 { 0.0 } else { *v * beta };
            }
        }
        return Ok(());
    }
    if !last_in_bounds(a.data.len(), a.off, m, k, a.rs, a.cs) || !last_in_bounds(b.data.len(), b.off, k, n, b.rs, b.cs)
    {
        return Err("internal error: gemm operand view out of bounds".into());
    }
    if n <= SKINNY_N || m <= SKINNY_M {
        skinny(m, k, n, alpha, a, b, beta, c, c_off, rsc);
        return Ok(());
    }
    // SAFETY: every element the product touches, `a.off + i * a.rs + l * a.cs` for i < m,
    // l < k (and likewise for B and C), is in bounds of its slice (checked above); strides fit
    // in isize; C rows do not overlap (rsc >= n when m > 1, column stride 1), and C is a
    // unique borrow distinct from A and B.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr().add(a.off),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr().add(b.off),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr().add(c_off),
            rsc as isize,
            1,
        );
    }
    Ok(())
}

/// Products with at most `SKINNY_N` columns or `SKINNY_M` rows skip matrixmultiply, whose
/// packing and register tiles waste most of the work on matrix-vector shapes (a classifier
/// layer, a 1x1 convolution of a tiny feature map): up to 10x faster there (measured).
const SKINNY_N: usize = 4;
const SKINNY_M: usize = 2;

/// `sum(a[i] * b[i])` with eight independent accumulators.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Matrix-vector style products (views already bounds-checked by [`sgemm`]).
#[allow(clippy::too_many_arguments)]
fn skinny(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat<'_>,
    b: Mat<'_>,
    beta: f32,
    c: &mut [f32],
    c_off: usize,
    rsc: usize,
) {
    let store = |c: &mut f32, v: f32| *c = if beta == 0.0 { alpha * v } else { alpha * v + beta * *c };
    if b.cs == 1 && b.rs != 1 && m <= SKINNY_M {
        // Rows of B are contiguous: accumulate C rows as sums of scaled B rows.
        let mut row = vec![0.0f32; n];
        for i in 0..m {
            row.fill(0.0);
            for l in 0..k {
                let s = a.data[a.off + i * a.rs + l * a.cs];
                for (r, bv) in row.iter_mut().zip(&b.data[b.off + l * b.rs..][..n]) {
                    *r += s * bv;
                }
            }
            for (cv, r) in c[c_off + i * rsc..][..n].iter_mut().zip(&row) {
                store(cv, *r);
            }
        }
        return;
    }
    // Dot products of contiguous A rows and B columns (packed when strided).
    let a_rows: Vec<f32>;
    let (ad, aoff, ars) = if a.cs == 1 {
        (a.data, a.off, a.rs)
    } else {
        a_rows = (0..m).flat_map(|i| (0..k).map(move |l| a.data[a.off + i * a.rs + l * a.cs])).collect();
        (a_rows.as_slice(), 0, k)
    };
    let b_cols: Vec<f32>;
    let (bd, boff, bcs) = if b.rs == 1 {
        (b.data, b.off, b.cs)
    } else {
        b_cols = (0..n).flat_map(|j| (0..k).map(move |l| b.data[b.off + l * b.rs + j * b.cs])).collect();
        (b_cols.as_slice(), 0, k)
    };
    for i in 0..m {
        let ar = &ad[aoff + i * ars..][..k];
        for j in 0..n {
            let v = dot(ar, &bd[boff + j * bcs..][..k]);
            store(&mut c[c_off + i * rsc + j], v);
        }
    }
}

fn dims2(t: &Tensor, what: &str) -> Result<[usize; 2], String> {
    <[usize; 2]>::try_from(t.shape()).map_err(|_| format!("{what} must have rank 2, got {:?}", t.shape()))
}

/// `alpha * op(A) op(B) + beta * C` (C broadcast to `[M, N]`; ignored when `beta == 0`, as
/// ONNX Runtime does).
pub(crate) fn gemm(p: &Gemm, a: &Tensor, b: &Tensor, c: Option<&Tensor>) -> Result<Tensor, String> {
    let (ad, bd) = (f32s(a, "gemm A")?, f32s(b, "gemm B")?);
    let (ash, bsh) = (dims2(a, "gemm A")?, dims2(b, "gemm B")?);
    let (m, k, n) = p.dims(&ash, &bsh);
    let kb = if p.trans_b { bsh[1] } else { bsh[0] };
    if k != kb {
        return Err(format!("gemm inner dimensions differ ({k} vs {kb})"));
    }
    let am = if p.trans_a {
        Mat { data: ad, off: 0, rs: 1, cs: ash[1] }
    } else {
        Mat { data: ad, off: 0, rs: ash[1], cs: 1 }
    };
    let bm = if p.trans_b {
        Mat { data: bd, off: 0, rs: 1, cs: bsh[1] }
    } else {
        Mat { data: bd, off: 0, rs: bsh[1], cs: 1 }
    };
    let (mut out, beta) = match c {
        Some(c) if p.beta != 0.0 => {
            let cd = f32s(c, "gemm C")?;
            let mut o = broadcast_to(cd, c.shape(), &[m, n])?;
            o.iter_mut().for_each(|v| *v *= p.beta);
            (o, 1.0)
        }
        _ => (vec![0.0; numel(&[m, n])?], 0.0),
    };
    sgemm(m, k, n, p.alpha, am, bm, beta, &mut out, 0, n)?;
    f32_tensor(&[m, n], out)
}

/// NumPy matmul: 1-D operands are promoted (and the added axis removed), batch axes broadcast.
pub(crate) fn matmul(a: &Tensor, b: &Tensor, out_shape: &[usize]) -> Result<Tensor, String> {
    let (ad, bd) = (f32s(a, "matmul A")?, f32s(b, "matmul B")?);
    let a2: Vec<usize> = match a.shape() {
        [] => return Err("matmul operands must have rank >= 1".into()),
        [k] => vec![1, *k],
        s => s.to_vec(),
    };
    let b2: Vec<usize> = match b.shape() {
        [] => return Err("matmul operands must have rank >= 1".into()),
        [k] => vec![*k, 1],
        s => s.to_vec(),
    };
    let (ba, mk) = a2.split_at(a2.len() - 2);
    let (bb, kn) = b2.split_at(b2.len() - 2);
    let (m, k, kb, n) = (mk[0], mk[1], kn[0], kn[1]);
    if k != kb {
        return Err(format!("matmul inner dimensions differ for {:?} and {:?}", a.shape(), b.shape()));
    }
    let batch = broadcast_shapes(ba, bb)
        .ok_or_else(|| format!("matmul batch axes of {:?} and {:?} do not broadcast", a.shape(), b.shape()))?;
    let nbatch = numel(&batch)?;
    let total = numel(&[nbatch, m, n])?;
    if numel(out_shape)? != total {
        return Err(format!("internal error: matmul result {out_shape:?} has the wrong size"));
    }
    let mut out = vec![0.0f32; total];
    if numel(bb)? == 1 && numel(ba)? == nbatch {
        // B is shared by every batch: one product with the batches stacked as rows of A.
        let am = Mat { data: ad, off: 0, rs: k, cs: 1 };
        let bm = Mat { data: bd, off: 0, rs: n, cs: 1 };
        sgemm(nbatch * m, k, n, 1.0, am, bm, 0.0, &mut out, 0, n)?;
    } else {
        let ia: Vec<usize> = (0..numel(ba)?).collect();
        let ib: Vec<usize> = (0..numel(bb)?).collect();
        let (_, pairs) = broadcast_map2(&ia, ba, &ib, bb, |i, j| (i, j))?;
        for (bi, (i, j)) in pairs.into_iter().enumerate() {
            let am = Mat { data: ad, off: i * m * k, rs: k, cs: 1 };
            let bm = Mat { data: bd, off: j * k * n, rs: n, cs: 1 };
            sgemm(m, k, n, 1.0, am, bm, 0.0, &mut out, bi * m * n, n)?;
        }
    }
    f32_tensor(out_shape, out)
}
