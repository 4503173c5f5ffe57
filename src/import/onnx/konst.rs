//! The importer's own small constant representation, and constant folding of the shape-computing
//! ops (Shape, Gather, Cast, Slice, Concat, Unsqueeze, Squeeze, ConstantOfShape, Range, arithmetic
//! ...) once input shapes are fixed, so that torch's `x.view(x.size(0), -1)` subgraph becomes a
//! plain constant shape. Only float32 constants may become module weights; integer constants
//! (int64, int32 and narrower, bool as 0/1) only feed shape computations.
//!
//! Every function that can grow a tensor takes the element limit and checks it before
//! allocating.

// Folds constants from user models: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::super::ImportErrorKind;
use crate::ir::checked_product;

/// Element storage of a constant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum KData {
    /// Float constants (float32; double is narrowed).
    F32(Vec<f32>),
    /// Integer constants (int64; narrower integer types and bool are widened).
    I64(Vec<i64>),
}

/// The element kind of a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KType {
    F32,
    I64,
}

/// A dense row-major constant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Konst {
    pub shape: Vec<usize>,
    pub data: KData,
}

pub(crate) type KResult<T> = Result<T, ImportErrorKind>;

pub(crate) fn unsupported(message: impl Into<String>) -> ImportErrorKind {
    ImportErrorKind::Unsupported { message: message.into() }
}

/// Checks an element count (`None` = overflow) against the limit.
pub(crate) fn check_limit(what: &str, elements: Option<usize>, limit: usize) -> KResult<usize> {
    match elements {
        Some(n) if n <= limit => Ok(n),
        _ => Err(ImportErrorKind::LimitExceeded { what: what.to_string(), elements, limit }),
    }
}

/// Element count of a shape, `None` when it (or the product of its non-zero dimensions, which
/// sizes strides) overflows.
pub(crate) fn safe_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, d| acc.checked_mul((*d).max(1)))?;
    checked_product(shape)
}

fn count(shape: &[usize], limit: usize) -> KResult<usize> {
    check_limit("constant", safe_count(shape), limit)
}

/// Row-major strides.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    let mut acc = 1usize;
    for (st, d) in s.iter_mut().zip(shape).rev() {
        *st = acc;
        acc = acc.saturating_mul(*d);
    }
    s
}

/// The error for an element index outside a constant: the folding code computes indices from
/// shapes it has checked, so this means a constant whose data do not match its shape.
fn out_of_range() -> ImportErrorKind {
    unsupported("internal error: constant folding indexed outside a constant (its data do not match its shape)")
}

/// Element `i` of `v`.
fn at<T: Copy>(v: &[T], i: usize) -> KResult<T> {
    v.get(i).copied().ok_or_else(out_of_range)
}

/// `shape` split at `axis`: the dimensions before it, its size, the dimensions after it.
fn split_axis(shape: &[usize], axis: usize) -> KResult<(&[usize], usize, &[usize])> {
    let (before, rest) = shape
        .split_at_checked(axis)
        .ok_or_else(|| unsupported(format!("axis {axis} is out of range for rank {}", shape.len())))?;
    let (dim, after) = rest
        .split_first()
        .ok_or_else(|| unsupported(format!("axis {axis} is out of range for rank {}", shape.len())))?;
    Ok((before, *dim, after))
}

/// Normalises an axis in `[-rank, rank)`.
pub(crate) fn norm_axis(axis: i64, rank: usize, what: &str) -> KResult<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(unsupported(format!("{what} {axis} is out of range for rank {rank}")));
    }
    Ok(a as usize)
}

impl Konst {
    pub(crate) fn new(shape: Vec<usize>, data: KData) -> KResult<Konst> {
        let n = safe_count(&shape);
        let len = data.len();
        if n != Some(len) {
            return Err(unsupported(format!("constant of shape {shape:?} has {len} elements")));
        }
        Ok(Konst { shape, data })
    }

    pub(crate) fn i64_vec(v: Vec<i64>) -> Konst {
        Konst { shape: vec![v.len()], data: KData::I64(v) }
    }

    pub(crate) fn i64_scalar(v: i64) -> Konst {
        Konst { shape: vec![], data: KData::I64(vec![v]) }
    }

    pub(crate) fn ktype(&self) -> KType {
        match self.data {
            KData::F32(_) => KType::F32,
            KData::I64(_) => KType::I64,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    /// Integer elements (a shape, axes, pads ...). Float constants with integral values are
    /// accepted too (some exporters store shapes as floats).
    pub(crate) fn to_i64s(&self) -> KResult<Vec<i64>> {
        match &self.data {
            KData::I64(v) => Ok(v.clone()),
            KData::F32(v) => v
                .iter()
                .map(|x| {
                    if x.fract() == 0.0 && x.abs() < 9.0e15 {
                        Ok(*x as i64)
                    } else {
                        Err(unsupported(format!("expected an integer constant, got float value {x}")))
                    }
                })
                .collect(),
        }
    }

    /// Float elements (integers converted).
    pub(crate) fn to_f32s(&self) -> Vec<f32> {
        match &self.data {
            KData::F32(v) => v.clone(),
            KData::I64(v) => v.iter().map(|x| *x as f32).collect(),
        }
    }

    /// The single element of a one-element constant, as f32.
    pub(crate) fn scalar_f32(&self) -> KResult<f32> {
        match self.to_f32s().as_slice() {
            [x] => Ok(*x),
            v => Err(unsupported(format!(
                "expected a scalar, got a constant of shape {:?} ({} elements)",
                self.shape,
                v.len()
            ))),
        }
    }

    /// The single element of a one-element constant, as i64.
    pub(crate) fn scalar_i64(&self) -> KResult<i64> {
        match self.to_i64s()?.as_slice() {
            [x] => Ok(*x),
            v => Err(unsupported(format!(
                "expected a scalar, got a constant of shape {:?} ({} elements)",
                self.shape,
                v.len()
            ))),
        }
    }

    /// Picks elements by flat source index.
    fn pick(&self, shape: Vec<usize>, idx: &[usize]) -> KResult<Konst> {
        let data = match &self.data {
            KData::F32(v) => KData::F32(idx.iter().map(|i| at(v, *i)).collect::<KResult<_>>()?),
            KData::I64(v) => KData::I64(idx.iter().map(|i| at(v, *i)).collect::<KResult<_>>()?),
        };
        Ok(Konst { shape, data })
    }

    /// Same elements, new shape (element counts must match).
    pub(crate) fn reshape(&self, shape: Vec<usize>) -> KResult<Konst> {
        if safe_count(&shape) != Some(self.len()) {
            return Err(unsupported(format!("cannot reshape constant {:?} to {shape:?}", self.shape)));
        }
        Ok(Konst { shape, data: self.data.clone() })
    }

    /// Casts to another element kind (float to int truncates toward zero, as ONNX Cast).
    pub(crate) fn cast(&self, to: KType) -> Konst {
        let data = match (&self.data, to) {
            (KData::F32(v), KType::I64) => KData::I64(v.iter().map(|x| *x as i64).collect()),
            (KData::I64(v), KType::F32) => KData::F32(v.iter().map(|x| *x as f32).collect()),
            (d, _) => d.clone(),
        };
        Konst { shape: self.shape.clone(), data }
    }

    /// Permutes axes.
    pub(crate) fn transpose(&self, perm: &[usize]) -> KResult<Konst> {
        let r = self.shape.len();
        let mut seen = vec![false; r];
        let not_perm = || unsupported(format!("perm {perm:?} is not a permutation of rank {r}"));
        if perm.len() != r || perm.iter().any(|p| seen.get_mut(*p).is_none_or(|s| std::mem::replace(s, true))) {
            return Err(not_perm());
        }
        let st = strides(&self.shape);
        // Shape and stride of each output axis.
        let (out_shape, out_st): (Vec<usize>, Vec<usize>) = perm
            .iter()
            .map(|p| self.shape.get(*p).copied().zip(st.get(*p).copied()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(not_perm)?
            .into_iter()
            .unzip();
        let idx = index_map(&out_shape, |pos| Some(pos.iter().zip(&out_st).map(|(i, s)| i * s).sum()))
            .ok_or_else(out_of_range)?;
        self.pick(out_shape, &idx)
    }

    /// ONNX Gather along `axis` (negative indices count from the end).
    pub(crate) fn gather(&self, indices: &Konst, axis: i64, limit: usize) -> KResult<Konst> {
        let r = self.shape.len();
        if r == 0 {
            return Err(unsupported("Gather on a scalar"));
        }
        let axis = norm_axis(axis, r, "axis")?;
        let (before, dim, after) = split_axis(&self.shape, axis)?;
        let ind: Vec<usize> = indices
            .to_i64s()?
            .iter()
            .map(|i| {
                let j = if *i < 0 { *i + dim as i64 } else { *i };
                if j < 0 || j >= dim as i64 {
                    Err(unsupported(format!("Gather index {i} is out of range for dimension {dim}")))
                } else {
                    Ok(j as usize)
                }
            })
            .collect::<KResult<_>>()?;
        let mut out_shape = before.to_vec();
        out_shape.extend_from_slice(&indices.shape);
        out_shape.extend_from_slice(after);
        count(&out_shape, limit)?;
        let outer: usize = before.iter().product();
        let inner: usize = after.iter().product();
        let mut idx = Vec::new();
        for o in 0..outer {
            for j in &ind {
                let base = (o * dim + j) * inner;
                idx.extend(base..base + inner);
            }
        }
        self.pick(out_shape, &idx)
    }

    /// ONNX Slice (opset 10 semantics; clamping as the spec says).
    pub(crate) fn slice(&self, ranges: &[SliceRange]) -> KResult<Konst> {
        let mut per_axis: Vec<Vec<usize>> = self.shape.iter().map(|d| (0..*d).collect()).collect();
        for r in ranges {
            let (Some(picked), Some(dim)) = (per_axis.get_mut(r.axis), self.shape.get(r.axis)) else {
                return Err(unsupported(format!(
                    "Slice axis {} is out of range for rank {}",
                    r.axis,
                    self.shape.len()
                )));
            };
            *picked = r.indices(*dim);
        }
        let out_shape: Vec<usize> = per_axis.iter().map(|v| v.len()).collect();
        let st = strides(&self.shape);
        let idx = index_map(&out_shape, |pos| {
            pos.iter().zip(&per_axis).zip(&st).map(|((i, picked), s)| picked.get(*i).map(|p| p * s)).sum()
        })
        .ok_or_else(out_of_range)?;
        self.pick(out_shape, &idx)
    }

    /// Concatenation along `axis` (all the same element kind and rank).
    pub(crate) fn concat(parts: &[&Konst], axis: i64, limit: usize) -> KResult<Konst> {
        let first = parts.first().ok_or_else(|| unsupported("Concat of nothing"))?;
        let r = first.shape.len();
        let axis = norm_axis(axis, r, "axis")?;
        let (before, _, after) = split_axis(&first.shape, axis)?;
        let mut along = 0usize;
        for p in parts {
            if p.ktype() != first.ktype() {
                return Err(unsupported("Concat of constants of different element types"));
            }
            if p.shape.len() != r || p.shape.iter().zip(&first.shape).enumerate().any(|(i, (a, b))| i != axis && a != b)
            {
                return Err(unsupported(format!(
                    "Concat along axis {axis}: shapes {:?} and {:?} differ off the axis",
                    first.shape, p.shape
                )));
            }
            along = along.saturating_add(split_axis(&p.shape, axis)?.1);
        }
        let out_shape: Vec<usize> = before.iter().copied().chain([along]).chain(after.iter().copied()).collect();
        count(&out_shape, limit)?;
        let outer: usize = before.iter().product();
        let inner: usize = after.iter().product();
        let mut data = match first.ktype() {
            KType::F32 => KData::F32(Vec::new()),
            KType::I64 => KData::I64(Vec::new()),
        };
        for o in 0..outer {
            for p in parts {
                let chunk = split_axis(&p.shape, axis)?.1 * inner;
                match (&mut data, &p.data) {
                    (KData::F32(d), KData::F32(s)) => d.extend_from_slice(block_of(s, o, chunk)?),
                    (KData::I64(d), KData::I64(s)) => d.extend_from_slice(block_of(s, o, chunk)?),
                    _ => return Err(unsupported("Concat of constants of different element types")),
                }
            }
        }
        Konst::new(out_shape, data)
    }

    /// Broadcasts to `shape` (ONNX Expand: bidirectional broadcast).
    pub(crate) fn expand(&self, shape: &[usize], limit: usize) -> KResult<Konst> {
        let out = crate::ops::broadcast_shapes(&self.shape, shape)
            .ok_or_else(|| unsupported(format!("cannot expand {:?} to {shape:?}", self.shape)))?;
        count(&out, limit)?;
        let idx = broadcast_index(&out, &self.shape)?;
        self.pick(out, &idx)
    }

    /// Element-wise unary function on floats (integers go through `fi`).
    pub(crate) fn map(&self, ff: impl Fn(f32) -> f32, fi: impl Fn(i64) -> i64) -> Konst {
        let data = match &self.data {
            KData::F32(v) => KData::F32(v.iter().map(|x| ff(*x)).collect()),
            KData::I64(v) => KData::I64(v.iter().map(|x| fi(*x)).collect()),
        };
        Konst { shape: self.shape.clone(), data }
    }
}

impl KData {
    pub(crate) fn len(&self) -> usize {
        match self {
            KData::F32(v) => v.len(),
            KData::I64(v) => v.len(),
        }
    }
}

/// One sliced axis.
#[derive(Clone, Debug)]
pub(crate) struct SliceRange {
    pub axis: usize,
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl SliceRange {
    /// The clamped `(start, end)` for a dimension of size `dim` (ONNX rules).
    pub(crate) fn clamped(&self, dim: usize) -> (i64, i64) {
        let d = dim as i64;
        let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (s, e) = (fix(self.start), fix(self.end));
        if self.step > 0 {
            (s.clamp(0, d), e.clamp(0, d))
        } else {
            (s.clamp(0, (d - 1).max(0)), e.clamp(-1, (d - 1).max(-1)))
        }
    }

    /// The selected indices along a dimension of size `dim`.
    pub(crate) fn indices(&self, dim: usize) -> Vec<usize> {
        if dim == 0 {
            // Nothing to select (`clamped` gives `(0, -1)` for a negative step here, which would
            // select the nonexistent index 0).
            return Vec::new();
        }
        let (s, e) = self.clamped(dim);
        let mut out = Vec::new();
        let mut i = s;
        if self.step > 0 {
            while i < e {
                out.push(i as usize);
                i = i.saturating_add(self.step);
            }
        } else if self.step < 0 {
            while i > e {
                out.push(i as usize);
                i = i.saturating_add(self.step);
            }
        }
        out
    }
}

/// The `o`-th block of `chunk` elements of `s`.
fn block_of<T>(s: &[T], o: usize, chunk: usize) -> KResult<&[T]> {
    s.get(o * chunk..(o + 1) * chunk).ok_or_else(out_of_range)
}

/// For every element of `out_shape` (row-major), the value of `f` on its multi-index (`None`
/// when `f` fails for one).
fn index_map(out_shape: &[usize], f: impl Fn(&[usize]) -> Option<usize>) -> Option<Vec<usize>> {
    let n: usize = out_shape.iter().product();
    let mut idx = Vec::with_capacity(n);
    let mut pos = vec![0usize; out_shape.len()];
    for _ in 0..n {
        idx.push(f(&pos)?);
        // Next multi-index, the last axis fastest.
        for (p, d) in pos.iter_mut().zip(out_shape).rev() {
            *p += 1;
            if *p < *d {
                break;
            }
            *p = 0;
        }
    }
    Some(idx)
}

/// Source flat index of every output element when `in_shape` is broadcast to `out_shape`.
fn broadcast_index(out_shape: &[usize], in_shape: &[usize]) -> KResult<Vec<usize>> {
    let off = out_shape.len().checked_sub(in_shape.len()).ok_or_else(out_of_range)?;
    let st = strides(in_shape);
    index_map(out_shape, |pos| {
        let pos = pos.get(off..)?;
        Some(pos.iter().zip(in_shape).zip(&st).map(|((p, d), s)| if *d == 1 { 0 } else { p * s }).sum())
    })
    .ok_or_else(out_of_range)
}

/// Element-wise binary operation with NumPy broadcasting; both operands of one element kind
/// (an integer operand meeting a float one is converted to float).
pub(crate) fn binary(
    a: &Konst,
    b: &Konst,
    limit: usize,
    ff: impl Fn(f32, f32) -> f32,
    fi: impl Fn(i64, i64) -> KResult<i64>,
) -> KResult<Konst> {
    let out = crate::ops::broadcast_shapes(&a.shape, &b.shape)
        .ok_or_else(|| unsupported(format!("constant shapes {:?} and {:?} do not broadcast", a.shape, b.shape)))?;
    count(&out, limit)?;
    let ia = broadcast_index(&out, &a.shape)?;
    let ib = broadcast_index(&out, &b.shape)?;
    let data = match (&a.data, &b.data) {
        (KData::I64(x), KData::I64(y)) => {
            KData::I64(ia.iter().zip(&ib).map(|(i, j)| fi(at(x, *i)?, at(y, *j)?)).collect::<KResult<_>>()?)
        }
        _ => {
            let (x, y) = (a.to_f32s(), b.to_f32s());
            KData::F32(ia.iter().zip(&ib).map(|(i, j)| Ok(ff(at(&x, *i)?, at(&y, *j)?))).collect::<KResult<_>>()?)
        }
    };
    Konst::new(out, data)
}

/// ONNX Where(cond, x, y) with broadcasting.
pub(crate) fn where_(cond: &Konst, x: &Konst, y: &Konst, limit: usize) -> KResult<Konst> {
    let s = crate::ops::broadcast_shapes(&cond.shape, &x.shape)
        .and_then(|s| crate::ops::broadcast_shapes(&s, &y.shape))
        .ok_or_else(|| unsupported("Where operand shapes do not broadcast"))?;
    count(&s, limit)?;
    let c = cond.to_i64s()?;
    let (ic, ix, iy) =
        (broadcast_index(&s, &cond.shape)?, broadcast_index(&s, &x.shape)?, broadcast_index(&s, &y.shape)?);
    let idx = ic.iter().zip(&ix).zip(&iy);
    let data = match (&x.data, &y.data) {
        (KData::I64(a), KData::I64(b)) => KData::I64(
            idx.map(|((k, i), j)| if at(&c, *k)? != 0 { at(a, *i) } else { at(b, *j) }).collect::<KResult<_>>()?,
        ),
        _ => {
            let (a, b) = (x.to_f32s(), y.to_f32s());
            KData::F32(
                idx.map(|((k, i), j)| if at(&c, *k)? != 0 { at(&a, *i) } else { at(&b, *j) })
                    .collect::<KResult<_>>()?,
            )
        }
    };
    Konst::new(s, data)
}

/// ONNX Range(start, limit, delta).
pub(crate) fn range(start: &Konst, end: &Konst, delta: &Konst, limit: usize) -> KResult<Konst> {
    if start.ktype() == KType::I64 && end.ktype() == KType::I64 && delta.ktype() == KType::I64 {
        let (s, e, d) = (start.scalar_i64()?, end.scalar_i64()?, delta.scalar_i64()?);
        if d == 0 {
            return Err(unsupported("Range with delta 0"));
        }
        let n = ((e as i128 - s as i128) + d as i128 - d.signum() as i128) / d as i128;
        let n = usize::try_from(n.max(0)).ok();
        let n = check_limit("Range result", n, limit)?;
        Ok(Konst::i64_vec((0..n as i64).map(|i| s + i * d).collect()))
    } else {
        let (s, e, d) = (start.scalar_f32()?, end.scalar_f32()?, delta.scalar_f32()?);
        if d == 0.0 || !d.is_finite() || !s.is_finite() || !e.is_finite() {
            return Err(unsupported("Range needs finite bounds and a non-zero delta"));
        }
        let n = ((e - s) / d).ceil().max(0.0);
        let n = if n < limit as f32 + 1.0 { Some(n as usize) } else { None };
        let n = check_limit("Range result", n, limit)?;
        Ok(Konst { shape: vec![n], data: KData::F32((0..n).map(|i| s + i as f32 * d).collect()) })
    }
}

/// Resolves an ONNX Reshape target (`0` copies the input dimension unless `allowzero`, one `-1`
/// is inferred).
pub(crate) fn resolve_reshape(input: &[usize], spec: &[i64], allowzero: bool) -> KResult<Vec<usize>> {
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, s) in spec.iter().enumerate() {
        match *s {
            -1 => {
                if infer.replace(i).is_some() {
                    return Err(unsupported(format!("reshape target {spec:?} has more than one -1")));
                }
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or_else(|| {
                unsupported(format!(
                    "reshape target {spec:?}: 0 at index {i} but the input {input:?} has rank {}",
                    input.len()
                ))
            })?),
            d if d >= 0 => out.push(d as usize),
            d => return Err(unsupported(format!("reshape target {spec:?} has invalid dimension {d}"))),
        }
    }
    let total = checked_product(input).ok_or_else(|| unsupported("reshape input element count overflows"))?;
    if let Some(i) = infer {
        let known = checked_product(&out).ok_or_else(|| unsupported("reshape target overflows"))?;
        if known == 0 || total % known != 0 {
            return Err(unsupported(format!("cannot reshape {input:?} to {spec:?}: -1 cannot be inferred")));
        }
        // `i` indexes `spec`, and `out` has one entry per entry of `spec`.
        if let Some(d) = out.get_mut(i) {
            *d = total / known;
        }
    }
    if checked_product(&out) != Some(total) {
        return Err(unsupported(format!("cannot reshape {input:?} ({total} elements) to {spec:?}")));
    }
    Ok(out)
}

/// Normalised, sorted, distinct axes (each in `[-rank, rank)`).
pub(crate) fn norm_axes(axes: &[i64], rank: usize, what: &str) -> KResult<Vec<usize>> {
    let mut v = axes.iter().map(|a| norm_axis(*a, rank, what)).collect::<KResult<Vec<_>>>()?;
    v.sort_unstable();
    let n = v.len();
    v.dedup();
    if v.len() != n {
        return Err(unsupported(format!("{what}s {axes:?} repeat an axis")));
    }
    Ok(v)
}

/// The output shape of Squeeze (all size-1 axes when `axes` is empty).
pub(crate) fn squeeze_shape(shape: &[usize], axes: &[usize]) -> KResult<Vec<usize>> {
    for a in axes {
        if shape.get(*a) != Some(&1) {
            return Err(unsupported(format!("cannot squeeze axis {a} of shape {shape:?}: its size is not 1")));
        }
    }
    Ok(shape
        .iter()
        .enumerate()
        .filter(|(i, d)| if axes.is_empty() { **d != 1 } else { !axes.contains(i) })
        .map(|(_, d)| *d)
        .collect())
}

/// The output shape of Unsqueeze with normalised output axes.
pub(crate) fn unsqueeze_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(shape.len() + axes.len());
    let mut src = shape.iter();
    for i in 0..shape.len() + axes.len() {
        if axes.contains(&i) {
            out.push(1);
        } else if let Some(d) = src.next() {
            out.push(*d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_resolution() {
        assert_eq!(resolve_reshape(&[2, 3, 4], &[0, -1], false).unwrap(), vec![2, 12]);
        assert_eq!(resolve_reshape(&[2, 3, 4], &[-1], false).unwrap(), vec![24]);
        assert!(resolve_reshape(&[2, 3, 4], &[-1, -1], false).is_err());
        assert!(resolve_reshape(&[2, 3, 4], &[5, -1], false).is_err());
        assert!(resolve_reshape(&[2, 3], &[0, 0, 0], false).is_err());
    }

    #[test]
    fn gather_slice_concat() {
        let k = Konst::i64_vec(vec![1, 3, 32, 32]);
        let g = k.gather(&Konst::i64_scalar(0), 0, 100).unwrap();
        assert_eq!((g.shape.clone(), g.data), (vec![], KData::I64(vec![1])));
        let s = k.slice(&[SliceRange { axis: 0, start: -2, end: i64::MAX, step: 1 }]).unwrap();
        assert_eq!(s.data, KData::I64(vec![32, 32]));
        let r = k.slice(&[SliceRange { axis: 0, start: -1, end: i64::MIN, step: -1 }]).unwrap();
        assert_eq!(r.data, KData::I64(vec![32, 32, 3, 1]));
        let c = Konst::concat(&[&Konst::i64_vec(vec![1]), &Konst::i64_vec(vec![-1])], 0, 100).unwrap();
        assert_eq!(c.data, KData::I64(vec![1, -1]));
        let m = Konst { shape: vec![2, 3], data: KData::F32(vec![0., 1., 2., 3., 4., 5.]) };
        let t = m.transpose(&[1, 0]).unwrap();
        assert_eq!(t.data, KData::F32(vec![0., 3., 1., 4., 2., 5.]));
        let g = m.gather(&Konst::i64_vec(vec![2, 0]), 1, 100).unwrap();
        assert_eq!((g.shape, g.data), (vec![2, 2], KData::F32(vec![2., 0., 5., 3.])));
    }

    #[test]
    fn limits_and_range() {
        let r = range(&Konst::i64_scalar(0), &Konst::i64_scalar(10), &Konst::i64_scalar(3), 100).unwrap();
        assert_eq!(r.data, KData::I64(vec![0, 3, 6, 9]));
        assert!(range(&Konst::i64_scalar(0), &Konst::i64_scalar(i64::MAX), &Konst::i64_scalar(1), 100).is_err());
        let a = Konst::i64_vec(vec![1, 2]);
        let b = Konst { shape: vec![3, 1], data: KData::I64(vec![10, 20, 30]) };
        let s = binary(&a, &b, 100, |x, y| x + y, |x, y| Ok(x + y)).unwrap();
        assert_eq!(s.data, KData::I64(vec![11, 12, 21, 22, 31, 32]));
        assert!(binary(&a, &b, 5, |x, y| x + y, |x, y| Ok(x + y)).is_err());
    }
}
