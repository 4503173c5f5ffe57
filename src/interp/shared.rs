//! Element-type-generic helpers shared by the interpreters: strides, strided gathers,
//! NumPy broadcasting and the pure data-movement kernels (concat, pad, transpose, slices).
//!
//! Every public helper checks the element counts of its slices against the shapes it is
//! given, so indexing inside cannot go out of bounds.

use crate::ir::{checked_product, DType, Tensor, TensorData};

/// A tensor element type.
pub(crate) trait Elem: Copy + Default + Send + Sync + 'static {
    /// The element type.
    const DTYPE: DType;
    /// The elements, if `d` stores this type.
    fn slice(d: &TensorData) -> Option<&[Self]>;
    /// Wraps elements into storage.
    fn wrap(v: Vec<Self>) -> TensorData;
}

macro_rules! elem {
    ($t:ty, $variant:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$variant;
            fn slice(d: &TensorData) -> Option<&[Self]> {
                match d {
                    TensorData::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn wrap(v: Vec<Self>) -> TensorData {
                TensorData::$variant(v)
            }
        }
    };
}
elem!(f32, F32);
elem!(i8, I8);
elem!(i16, I16);
elem!(i32, I32);

/// Calls `$f::<T>(args)` with `T` the Rust type of `$dtype`.
macro_rules! dispatch {
    ($dtype:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $dtype {
            $crate::ir::DType::F32 => $f::<f32>($($arg),*),
            $crate::ir::DType::I8 => $f::<i8>($($arg),*),
            $crate::ir::DType::I16 => $f::<i16>($($arg),*),
            $crate::ir::DType::I32 => $f::<i32>($($arg),*),
        }
    };
}
pub(crate) use dispatch;

/// The elements of `t` as `T`, or an error naming the element types.
pub(crate) fn elems<T: Elem>(t: &Tensor) -> Result<&[T], String> {
    T::slice(t.data()).ok_or_else(|| format!("expected {} elements, got {}", T::DTYPE, t.dtype()))
}

/// Builds a tensor, turning a shape mismatch (an internal error) into a message.
pub(crate) fn tensor<T: Elem>(shape: &[usize], data: Vec<T>) -> Result<Tensor, String> {
    Tensor::new(shape.to_vec(), T::wrap(data)).map_err(|e| format!("internal error: {e}"))
}

/// Element count of a shape (overflow is an error).
pub(crate) fn numel(shape: &[usize]) -> Result<usize, String> {
    checked_product(shape).ok_or_else(|| format!("element count of {shape:?} overflows"))
}

/// Row-major strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// Strides of `shape` read as if broadcast to `out` (right-aligned; 0 on broadcast axes).
/// `None` if `shape` does not broadcast to `out`.
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Option<Vec<usize>> {
    if shape.len() > out.len() {
        return None;
    }
    let own = strides(shape);
    let lead = out.len() - shape.len();
    let mut s = vec![0usize; out.len()];
    for (i, d) in shape.iter().enumerate() {
        if *d == out[lead + i] {
            s[lead + i] = if *d == 1 { 0 } else { own[i] };
        } else if *d != 1 {
            return None;
        }
    }
    Some(s)
}

/// Merges adjacent axes that every operand walks contiguously (so loops run long), and drops
/// size-1 axes. Returns the new shape and one stride list per operand.
fn coalesce(shape: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_shape: Vec<usize> = Vec::with_capacity(shape.len());
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::with_capacity(shape.len()); strides.len()];
    for (d, &n) in shape.iter().enumerate() {
        if n == 1 {
            continue;
        }
        let mergeable = match out_shape.last() {
            Some(_) => strides.iter().zip(&out_strides).all(|(s, os)| os.last() == Some(&s[d].saturating_mul(n))),
            None => false,
        };
        if mergeable {
            if let Some(last) = out_shape.last_mut() {
                *last *= n;
            }
            for (s, os) in strides.iter().zip(out_strides.iter_mut()) {
                if let Some(l) = os.last_mut() {
                    *l = s[d];
                }
            }
        } else {
            out_shape.push(n);
            for (s, os) in strides.iter().zip(out_strides.iter_mut()) {
                os.push(s[d]);
            }
        }
    }
    (out_shape, out_strides)
}

/// Largest offset reached walking `shape` with `strides` from `offset` (`None` on overflow or
/// for an empty shape).
fn max_offset(offset: usize, shape: &[usize], strides: &[usize]) -> Option<usize> {
    let mut m = offset;
    for (n, s) in shape.iter().zip(strides) {
        m = m.checked_add(n.checked_sub(1)?.checked_mul(*s)?)?;
    }
    Some(m)
}

/// Visits the outer index space (all axes but the last) of `shape`, calling `f` with the
/// offsets of each operand at the start of every innermost row.
fn for_each_row<const K: usize>(
    shape: &[usize],
    strides: [&[usize]; K],
    base: [usize; K],
    mut f: impl FnMut([usize; K]),
) {
    let rank = shape.len();
    if rank == 0 {
        f(base);
        return;
    }
    let outer = &shape[..rank - 1];
    if outer.contains(&0) || shape[rank - 1] == 0 {
        return;
    }
    let mut idx = vec![0usize; outer.len()];
    let mut offs = base;
    loop {
        f(offs);
        let mut d = outer.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            for k in 0..K {
                offs[k] += strides[k][d];
            }
            if idx[d] < outer[d] {
                break;
            }
            for k in 0..K {
                offs[k] -= strides[k][d] * outer[d];
            }
            idx[d] = 0;
        }
    }
}

/// The elements of `src` at `offset + sum(i[d] * strides[d])` for every index `i` of `shape`,
/// in row-major order.
pub(crate) fn gather<T: Copy>(src: &[T], offset: usize, shape: &[usize], strides: &[usize]) -> Result<Vec<T>, String> {
    if shape.len() != strides.len() {
        return Err("internal error: gather rank mismatch".into());
    }
    let n = numel(shape)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    match max_offset(offset, shape, strides) {
        Some(m) if m < src.len() => {}
        _ => return Err("internal error: gather out of bounds".into()),
    }
    let (shape, st) = coalesce(shape, &[strides]);
    let st = &st[0];
    let mut out = Vec::with_capacity(n);
    let Some((&inner, _)) = shape.split_last() else {
        out.push(src[offset]);
        return Ok(out);
    };
    let is = st[st.len() - 1];
    for_each_row(&shape, [st.as_slice()], [offset], |[o]| {
        if is == 1 {
            out.extend_from_slice(&src[o..o + inner]);
        } else {
            out.extend((0..inner).map(|i| src[o + i * is]));
        }
    });
    Ok(out)
}

/// `src` (of shape `shape`) broadcast to `out` (NumPy rules).
pub(crate) fn broadcast_to<T: Copy>(src: &[T], shape: &[usize], out: &[usize]) -> Result<Vec<T>, String> {
    if src.len() != numel(shape)? {
        return Err("internal error: broadcast source size".into());
    }
    let s = broadcast_strides(shape, out).ok_or_else(|| format!("{shape:?} does not broadcast to {out:?}"))?;
    gather(src, 0, out, &s)
}

/// `f(a, b)` element-wise with NumPy broadcasting of `a` (shape `ash`) and `b` (shape `bsh`).
pub(crate) fn broadcast_map2<A: Copy, B: Copy, O>(
    a: &[A],
    ash: &[usize],
    b: &[B],
    bsh: &[usize],
    f: impl Fn(A, B) -> O,
) -> Result<(Vec<usize>, Vec<O>), String> {
    if a.len() != numel(ash)? || b.len() != numel(bsh)? {
        return Err("internal error: operand sizes do not match their shapes".into());
    }
    let out_shape =
        crate::ops::broadcast_shapes(ash, bsh).ok_or_else(|| format!("shapes {ash:?} and {bsh:?} do not broadcast"))?;
    let n = numel(&out_shape)?;
    if ash == bsh {
        return Ok((out_shape, a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect()));
    }
    if b.len() == 1 && n == a.len() {
        let y = b[0];
        return Ok((out_shape, a.iter().map(|x| f(*x, y)).collect()));
    }
    if a.len() == 1 && n == b.len() {
        let x = a[0];
        return Ok((out_shape, b.iter().map(|y| f(x, *y)).collect()));
    }
    let sa = broadcast_strides(ash, &out_shape).ok_or("internal error: broadcast")?;
    let sb = broadcast_strides(bsh, &out_shape).ok_or("internal error: broadcast")?;
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok((out_shape, out));
    }
    let (shape, st) = coalesce(&out_shape, &[&sa, &sb]);
    let Some((&inner, _)) = shape.split_last() else {
        out.push(f(a[0], b[0]));
        return Ok((out_shape, out));
    };
    let (ia, ib) = (st[0][st[0].len() - 1], st[1][st[1].len() - 1]);
    for_each_row(&shape, [st[0].as_slice(), st[1].as_slice()], [0, 0], |[oa, ob]| match (ia, ib) {
        (1, 1) => out.extend(a[oa..oa + inner].iter().zip(&b[ob..ob + inner]).map(|(x, y)| f(*x, *y))),
        (1, 0) => {
            let y = b[ob];
            out.extend(a[oa..oa + inner].iter().map(|x| f(*x, y)))
        }
        (0, 1) => {
            let x = a[oa];
            out.extend(b[ob..ob + inner].iter().map(|y| f(x, *y)))
        }
        _ => out.extend((0..inner).map(|i| f(a[oa + i * ia], b[ob + i * ib]))),
    });
    Ok((out_shape, out))
}

/// Concatenation of tensors along `axis` (shapes already checked by the op's rule).
pub(crate) fn concat<T: Elem>(ins: &[&Tensor], axis: usize, out_shape: &[usize]) -> Result<Tensor, String> {
    let Some(first) = ins.first() else { return Err("concat of nothing".into()) };
    if axis >= first.shape().len() {
        return Err(format!("concat axis {axis} out of range"));
    }
    let outer = numel(&first.shape()[..axis])?;
    let inner = numel(&first.shape()[axis + 1..])?;
    let mut parts = Vec::with_capacity(ins.len());
    for t in ins {
        let d = elems::<T>(t)?;
        let chunk = t.shape().get(axis).copied().unwrap_or(0) * inner;
        if d.len() != outer * chunk {
            return Err("internal error: concat operand size".into());
        }
        parts.push((d, chunk));
    }
    let mut out = Vec::with_capacity(numel(out_shape)?);
    for o in 0..outer {
        for (d, chunk) in &parts {
            out.extend_from_slice(&d[o * chunk..(o + 1) * chunk]);
        }
    }
    tensor(out_shape, out)
}

/// Axis permutation: output axis `i` is input axis `perm[i]`.
pub(crate) fn transpose<T: Elem>(x: &Tensor, perm: &[usize]) -> Result<Tensor, String> {
    let d = elems::<T>(x)?;
    let s = strides(x.shape());
    if perm.len() != s.len() {
        return Err("internal error: transpose rank".into());
    }
    let mut out_shape = Vec::with_capacity(perm.len());
    let mut out_strides = Vec::with_capacity(perm.len());
    for p in perm {
        let (dim, st) = x.shape().get(*p).zip(s.get(*p)).ok_or("internal error: transpose perm")?;
        out_shape.push(*dim);
        out_strides.push(*st);
    }
    tensor(&out_shape, gather(d, 0, &out_shape, &out_strides)?)
}

/// Keeps indices `start..end` of `axis`.
pub(crate) fn slice_axis<T: Elem>(x: &Tensor, axis: usize, start: usize, end: usize) -> Result<Tensor, String> {
    let d = elems::<T>(x)?;
    let s = strides(x.shape());
    let dim = *x.shape().get(axis).ok_or("internal error: slice axis")?;
    if start > end || end > dim {
        return Err(format!("slice {start}..{end} outside 0..{dim}"));
    }
    let mut out_shape = x.shape().to_vec();
    out_shape[axis] = end - start;
    tensor(&out_shape, gather(d, start * s[axis], &out_shape, &s)?)
}

/// How [`pad`] fills the border.
#[derive(Clone, Copy)]
pub(crate) enum Fill<T> {
    /// A constant.
    Constant(T),
    /// Mirror, not repeating the edge.
    Reflect,
    /// Repeat the edge.
    Edge,
}

/// Pads every axis by `pads` (all begins then all ends, ONNX order).
pub(crate) fn pad<T: Elem>(x: &Tensor, pads: &[usize], fill: Fill<T>) -> Result<Tensor, String> {
    let d = elems::<T>(x)?;
    let shape = x.shape();
    let rank = shape.len();
    if pads.len() != 2 * rank {
        return Err(format!("pad needs {} entries, got {}", 2 * rank, pads.len()));
    }
    let s = strides(shape);
    // Per axis: source index (or None for the constant) of every output index.
    let mut maps: Vec<Vec<Option<usize>>> = Vec::with_capacity(rank);
    let mut out_shape = Vec::with_capacity(rank);
    for (ax, &n) in shape.iter().enumerate() {
        let (b, e) = (pads[ax], pads[ax + rank]);
        let len = n.checked_add(b).and_then(|v| v.checked_add(e)).ok_or("pad: dimension overflows")?;
        let mut m = Vec::with_capacity(len);
        for o in 0..len {
            let i = o as i128 - b as i128;
            let n_i = n as i128;
            let src = if (0..n_i).contains(&i) {
                Some(i as usize)
            } else {
                match fill {
                    Fill::Constant(_) => None,
                    Fill::Edge => {
                        if n == 0 {
                            return Err("edge padding of an empty dimension".into());
                        }
                        Some(i.clamp(0, n_i - 1) as usize)
                    }
                    Fill::Reflect => {
                        // Reflect about the edges (no repeat); pads < n is checked by the rule,
                        // but fold repeatedly so any size stays in range.
                        if n == 1 {
                            Some(0)
                        } else if n == 0 {
                            return Err("reflect padding of an empty dimension".into());
                        } else {
                            let period = 2 * (n_i - 1);
                            let mut r = i.rem_euclid(period);
                            if r >= n_i {
                                r = period - r;
                            }
                            Some(r as usize)
                        }
                    }
                }
            };
            m.push(src);
        }
        maps.push(m);
        out_shape.push(len);
    }
    let total = numel(&out_shape)?;
    let value = match fill {
        Fill::Constant(v) => v,
        _ => T::default(),
    };
    let mut out = Vec::with_capacity(total);
    if rank == 0 {
        out.extend_from_slice(d);
        return tensor(&out_shape, out);
    }
    if total == 0 {
        return tensor(&out_shape, out);
    }
    let inner_map = &maps[rank - 1];
    let inner_len = out_shape[rank - 1];
    let mut idx = vec![0usize; rank - 1];
    let outer = numel(&out_shape[..rank - 1])?;
    for _ in 0..outer {
        let mut base = Some(0usize);
        for (ax, i) in idx.iter().enumerate() {
            base = match (base, maps[ax][*i]) {
                (Some(b), Some(src)) => Some(b + src * s[ax]),
                _ => None,
            };
        }
        match base {
            None => out.extend(std::iter::repeat_n(value, inner_len)),
            Some(b) => out.extend(inner_map.iter().map(|m| match m {
                Some(src) => d[b + src],
                None => value,
            })),
        }
        for ax in (0..rank - 1).rev() {
            idx[ax] += 1;
            if idx[ax] < out_shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    tensor(&out_shape, out)
}
