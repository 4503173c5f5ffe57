//! Fully-connected layers: `gemm(a, b[, c])` (ONNX Gemm) and `matmul(a, b)` (NumPy matmul).

// Shape rules run on unverified user input (parser, importer): no panicking indexing or
// slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::{binary::broadcast_shapes, dims_of, operands, same_dtype, Inferred, RuleResult};
use crate::ir::{Attr, AttrReader, TensorType};

/// `gemm(a, b[, c]) = alpha * op(a) @ op(b) + beta * c`, with `op` an optional transpose.
#[derive(Clone, Debug, PartialEq)]
pub struct Gemm {
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of `c`.
    pub beta: f32,
    /// Transpose `a` (`[K, M]` instead of `[M, K]`).
    pub trans_a: bool,
    /// Transpose `b` (`[N, K]` instead of `[K, N]`; PyTorch's Linear layout).
    pub trans_b: bool,
}

impl Default for Gemm {
    fn default() -> Self {
        Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: false }
    }
}

impl Gemm {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![
            ("alpha", Attr::Float(self.alpha)),
            ("beta", Attr::Float(self.beta)),
            ("trans_a", Attr::Bool(self.trans_a)),
            ("trans_b", Attr::Bool(self.trans_b)),
        ]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(Gemm {
            alpha: r.float_or("alpha", 1.0)?,
            beta: r.float_or("beta", 1.0)?,
            trans_a: r.bool_or("trans_a", false)?,
            trans_b: r.bool_or("trans_b", false)?,
        })
    }
    /// `(M, K, N)` of the product. The shape rule requires rank 2 for both operands; a
    /// dimension a shorter shape lacks reads as 0.
    pub fn dims(&self, a: &[usize], b: &[usize]) -> (usize, usize, usize) {
        let d = |s: &[usize], i: usize| s.get(i).copied().unwrap_or(0);
        let (m, k, n, _) = self.mknk([d(a, 0), d(a, 1)], [d(b, 0), d(b, 1)]);
        (m, k, n)
    }
    /// `(M, K, N, K of B)` for rank-2 `a` and `b`.
    fn mknk(&self, [a0, a1]: [usize; 2], [b0, b1]: [usize; 2]) -> (usize, usize, usize, usize) {
        let (m, k) = if self.trans_a { (a1, a0) } else { (a0, a1) };
        let (kb, n) = if self.trans_b { (b1, b0) } else { (b0, b1) };
        (m, k, n, kb)
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [a, b] = operands("gemm", ins)?;
        let a2 = dims_of("gemm A", a)?;
        let b2 = dims_of("gemm B", b)?;
        same_dtype("gemm", a, b)?;
        let (m, k, n, kb) = self.mknk(a2, b2);
        if k != kb {
            return Err(format!("gemm: inner dimensions differ ({k} vs {kb}) for A {:?}, B {:?}", a.shape, b.shape));
        }
        if let Some(c) = ins.get(2) {
            if broadcast_shapes(&c.shape, &[m, n]).as_deref() != Some(&[m, n][..]) {
                return Err(format!("gemm: C {:?} does not broadcast to [{m}, {n}]", c.shape));
            }
        }
        Ok(vec![Inferred::new(vec![m, n], a.dtype)])
    }
}

/// Shape rule of `matmul(a, b)` with NumPy semantics (rank >= 1, batch broadcasting).
pub(crate) fn matmul_rule(ins: &[&TensorType]) -> RuleResult {
    let [a, b] = operands("matmul", ins)?;
    same_dtype("matmul", a, b)?;
    // A vector operand is a matrix with one row (`a`) or one column (`b`) and no batch.
    let (a_batch, m, k): (&[usize], usize, usize) = match a.shape.as_slice() {
        [] => return Err("matmul operands must have rank >= 1".into()),
        &[k] => (&[], 1, k),
        [batch @ .., m, k] => (batch, *m, *k),
    };
    let (b_batch, kb, n): (&[usize], usize, usize) = match b.shape.as_slice() {
        [] => return Err("matmul operands must have rank >= 1".into()),
        &[kb] => (&[], kb, 1),
        [batch @ .., kb, n] => (batch, *kb, *n),
    };
    if k != kb {
        return Err(format!("matmul: inner dimensions differ for {:?} and {:?}", a.shape, b.shape));
    }
    let batch = broadcast_shapes(a_batch, b_batch)
        .ok_or_else(|| format!("matmul: batch dimensions of {:?} and {:?} do not broadcast", a.shape, b.shape))?;
    let mut out = batch;
    if a.rank() > 1 {
        out.push(m);
    }
    if b.rank() > 1 {
        out.push(n);
    }
    Ok(vec![Inferred::new(out, a.dtype)])
}
