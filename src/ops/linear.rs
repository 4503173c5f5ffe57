//! Fully-connected layers: `gemm(a, b[, c])` (ONNX Gemm) and `matmul(a, b)` (NumPy matmul).

use super::{binary::broadcast_shapes, expect_rank, same_dtype, Inferred, RuleResult};
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
    /// `(M, K, N)` of the product.
    pub fn dims(&self, a: &[usize], b: &[usize]) -> (usize, usize, usize) {
        let (m, k) = if self.trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
        let n = if self.trans_b { b[0] } else { b[1] };
        (m, k, n)
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let (a, b) = (ins[0], ins[1]);
        expect_rank("gemm A", a, 2)?;
        expect_rank("gemm B", b, 2)?;
        same_dtype("gemm", a, b)?;
        let (m, k, n) = self.dims(&a.shape, &b.shape);
        let kb = if self.trans_b { b.shape[1] } else { b.shape[0] };
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
    let (a, b) = (ins[0], ins[1]);
    same_dtype("matmul", a, b)?;
    if a.rank() == 0 || b.rank() == 0 {
        return Err("matmul operands must have rank >= 1".into());
    }
    let a2 = if a.rank() == 1 { vec![1, a.shape[0]] } else { a.shape.clone() };
    let b2 = if b.rank() == 1 { vec![b.shape[0], 1] } else { b.shape.clone() };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != kb {
        return Err(format!("matmul: inner dimensions differ for {:?} and {:?}", a.shape, b.shape));
    }
    let batch = broadcast_shapes(&a2[..a2.len() - 2], &b2[..b2.len() - 2])
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
