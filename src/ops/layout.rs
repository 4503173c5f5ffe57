//! Data-movement ops: `flatten`, `reshape`, `squeeze`, `unsqueeze`, `transpose`, `concat`,
//! `pad` and `channel_slice` (the prefix-of-channels slice of progressive slicing).

// Shape rules run on unverified user input (parser, importer): no panicking indexing or
// slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::conv::ints;
use super::{normalize_axis, operands, same_dtype, Inferred, RuleResult};
use crate::ir::{checked_product, Attr, AttrReader, TensorType};

fn same_count(op: &str, from: &[usize], to: &[usize]) -> Result<(), String> {
    if checked_product(from) != checked_product(to) {
        return Err(format!("{op}: cannot turn {from:?} into {to:?} (element counts differ)"));
    }
    Ok(())
}

/// `flatten(x) {axis}`: collapses dimensions before and from `axis` into a 2-D tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flatten {
    /// First dimension of the second output dimension (0..=rank).
    pub axis: usize,
}

impl Flatten {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("axis", Attr::Int(self.axis as i64))]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(Flatten { axis: r.usize_or("axis", 1)? })
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [x] = operands("flatten", ins)?;
        let s = &x.shape;
        let (before, from) = s
            .split_at_checked(self.axis)
            .ok_or_else(|| format!("flatten axis {} is out of range for rank {}", self.axis, s.len()))?;
        let outer = checked_product(before).ok_or("flatten: element count overflows")?;
        let inner = checked_product(from).ok_or("flatten: element count overflows")?;
        Ok(vec![Inferred::new(vec![outer, inner], x.dtype)])
    }
}

/// `reshape(x) {shape}`: same elements, new static shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reshape {
    /// The target shape (fully resolved; import resolves `-1` and `0`).
    pub shape: Vec<usize>,
}

impl Reshape {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("shape", ints(&self.shape))]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(Reshape { shape: r.usizes("shape")? })
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [x] = operands("reshape", ins)?;
        same_count("reshape", &x.shape, &self.shape)?;
        Ok(vec![Inferred::new(self.shape.clone(), x.dtype)])
    }
}

/// `squeeze(x) {axes}`: removes size-1 dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Squeeze {
    /// Sorted, normalised axes to remove; each must have size 1.
    pub axes: Vec<usize>,
}

impl Squeeze {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("axes", ints(&self.axes))]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(Squeeze { axes: r.usizes("axes")? })
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [x] = operands("squeeze", ins)?;
        let s = &x.shape;
        for a in &self.axes {
            match s.get(*a) {
                Some(1) => {}
                Some(d) => return Err(format!("squeeze axis {a} has size {d}, not 1")),
                None => return Err(format!("squeeze axis {a} is out of range for rank {}", s.len())),
            }
        }
        let out = s.iter().enumerate().filter(|(i, _)| !self.axes.contains(i)).map(|(_, d)| *d).collect();
        Ok(vec![Inferred::new(out, x.dtype)])
    }
}

/// `unsqueeze(x) {axes}`: inserts size-1 dimensions at the given output positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsqueeze {
    /// Sorted output positions of the new dimensions.
    pub axes: Vec<usize>,
}

impl Unsqueeze {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("axes", ints(&self.axes))]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(Unsqueeze { axes: r.usizes("axes")? })
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [x] = operands("unsqueeze", ins)?;
        let rank = x.rank() + self.axes.len();
        let mut out = Vec::with_capacity(rank);
        let mut src = x.shape.iter();
        for i in 0..rank {
            if self.axes.contains(&i) {
                out.push(1);
            } else {
                out.push(*src.next().ok_or_else(|| format!("unsqueeze axes {:?} are invalid", self.axes))?);
            }
        }
        if self.axes.iter().any(|a| *a >= rank) || src.next().is_some() {
            return Err(format!("unsqueeze axes {:?} are out of range for output rank {rank}", self.axes));
        }
        Ok(vec![Inferred::new(out, x.dtype)])
    }
}

/// `transpose(x) {perm}`: output dimension `i` is input dimension `perm[i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transpose {
    /// A permutation of `0..rank`.
    pub perm: Vec<usize>,
}

impl Transpose {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("perm", ints(&self.perm))]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(Transpose { perm: r.usizes("perm")? })
    }
    /// True when the permutation is the identity.
    pub fn is_identity(&self) -> bool {
        self.perm.iter().enumerate().all(|(i, p)| i == *p)
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [x] = operands("transpose", ins)?;
        let s = &x.shape;
        let mut seen = vec![false; s.len()];
        if self.perm.len() != s.len() {
            return Err(format!("transpose perm {:?} does not match rank {}", self.perm, s.len()));
        }
        let mut out = Vec::with_capacity(s.len());
        for p in &self.perm {
            let fresh = seen.get_mut(*p).is_some_and(|seen| !std::mem::replace(seen, true));
            match s.get(*p) {
                Some(d) if fresh => out.push(*d),
                _ => return Err(format!("transpose perm {:?} is not a permutation", self.perm)),
            }
        }
        Ok(vec![Inferred::new(out, x.dtype)])
    }
}

/// `concat(x0, x1, ...) {axis}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Concat {
    /// The normalised concatenation axis.
    pub axis: usize,
}

impl Concat {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![("axis", Attr::Int(self.axis as i64))]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(Concat { axis: r.usize("axis")? })
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let Some((first, rest)) = ins.split_first() else {
            return Err("`concat` takes at least 1 operands, got 0".into());
        };
        let axis = normalize_axis(self.axis as i64, first.rank())?;
        // `axis < first.rank()` (normalised a line above), so `get` finds it.
        let mut total = first.shape.get(axis).copied().unwrap_or(0);
        for t in rest {
            same_dtype("concat", first, t)?;
            let same_off_axis = t.rank() == first.rank()
                && !t.shape.iter().zip(&first.shape).enumerate().any(|(i, (a, b))| i != axis && a != b);
            let d = match t.shape.get(axis) {
                Some(d) if same_off_axis => *d,
                _ => {
                    return Err(format!(
                        "concat along axis {axis}: shapes {:?} and {:?} differ off the axis",
                        first.shape, t.shape
                    ))
                }
            };
            total = total.checked_add(d).ok_or("concat: dimension overflows")?;
        }
        let out = first.shape.iter().enumerate().map(|(i, d)| if i == axis { total } else { *d }).collect();
        Ok(vec![Inferred::new(out, first.dtype)])
    }
}

/// How `pad` fills the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    /// A constant value.
    Constant,
    /// Mirror without repeating the edge.
    Reflect,
    /// Repeat the edge value.
    Edge,
}

impl PadMode {
    /// Text spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "edge",
        }
    }
}

/// `pad(x) {pads, mode, value}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pad {
    /// `2 * rank` entries: all begins, then all ends (ONNX order).
    pub pads: Vec<usize>,
    /// Fill mode.
    pub mode: PadMode,
    /// Fill value for `constant` mode.
    pub value: f32,
}

impl Pad {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![
            ("pads", ints(&self.pads)),
            ("mode", Attr::Str(self.mode.as_str().into())),
            ("value", Attr::Float(self.value)),
        ]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        let pads = r.usizes("pads")?;
        let mode = match r
            .string("mode")
            .or_else(|e| if e.contains("missing") { Ok("constant".into()) } else { Err(e) })?
            .as_str()
        {
            "constant" => PadMode::Constant,
            "reflect" => PadMode::Reflect,
            "edge" => PadMode::Edge,
            m => return Err(format!("pad mode `{m}` is not one of constant, reflect, edge")),
        };
        Ok(Pad { pads, mode, value: r.float_or("value", 0.0)? })
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [x] = operands("pad", ins)?;
        let s = &x.shape;
        // All begins, then all ends: exactly `rank` of each.
        let (begins, ends) = match self.pads.split_at_checked(s.len()) {
            Some((begins, ends)) if ends.len() == s.len() => (begins, ends),
            _ => {
                return Err(format!("pad needs {} entries for rank {}, got {}", 2 * s.len(), s.len(), self.pads.len()))
            }
        };
        let mut out = Vec::with_capacity(s.len());
        for ((d, &b), &e) in s.iter().zip(begins).zip(ends) {
            if self.mode == PadMode::Reflect && (b >= *d || e >= *d) {
                return Err(format!("reflect padding {b}/{e} must be smaller than dimension {d}"));
            }
            if self.mode == PadMode::Edge && *d == 0 && b + e > 0 {
                return Err("edge padding of an empty dimension".into());
            }
            out.push(d.checked_add(b).and_then(|x| x.checked_add(e)).ok_or("pad: dimension overflows")?);
        }
        Ok(vec![Inferred::new(out, x.dtype)])
    }
}

/// `channel_slice(x) {axis, start, end}`: keeps indices `start..end` of one axis. Progressive
/// slicing uses it with `start = 0` to keep the first `end` channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSlice {
    /// The sliced axis (1 for NCHW channels).
    pub axis: usize,
    /// First kept index.
    pub start: usize,
    /// One past the last kept index.
    pub end: usize,
}

impl ChannelSlice {
    /// Attribute list.
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        vec![
            ("axis", Attr::Int(self.axis as i64)),
            ("start", Attr::Int(self.start as i64)),
            ("end", Attr::Int(self.end as i64)),
        ]
    }
    /// Builds from attributes.
    pub fn from_attrs(r: &mut AttrReader) -> Result<Self, String> {
        Ok(ChannelSlice { axis: r.usize_or("axis", 1)?, start: r.usize_or("start", 0)?, end: r.usize("end")? })
    }
    /// Shape rule.
    pub fn infer(&self, ins: &[&TensorType]) -> RuleResult {
        let [x] = operands("channel_slice", ins)?;
        let s = &x.shape;
        let d = *s
            .get(self.axis)
            .ok_or_else(|| format!("channel_slice axis {} is out of range for rank {}", self.axis, s.len()))?;
        if self.start >= self.end || self.end > d {
            return Err(format!("channel_slice {}..{} is not a non-empty range inside 0..{d}", self.start, self.end));
        }
        let out = s.iter().enumerate().map(|(i, d)| if i == self.axis { self.end - self.start } else { *d }).collect();
        Ok(vec![Inferred::new(out, x.dtype)])
    }
}
