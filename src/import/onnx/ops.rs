//! ONNX op -> IR op mapping, and constant folding of the shape-computing ops.

// Converts user model nodes: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::konst::{
    self, binary, norm_axes, norm_axis, resolve_reshape, squeeze_shape, unsqueeze_shape, unsupported, KData, KResult,
    KType, Konst, SliceRange,
};
use super::proto::{dtype_name, Attrs};
use super::{Importer, Val};
use crate::import::ImportErrorKind;
use crate::ir::{Op, Tensor, Value};
use crate::ops::{self, PadMode};
use std::rc::Rc;
use tract_onnx::pb::NodeProto;

fn attr_err(attr: &str, message: impl Into<String>) -> ImportErrorKind {
    ImportErrorKind::Attribute { attr: attr.to_string(), message: message.into() }
}

fn konst(k: Konst) -> Val {
    Val::Const(Rc::new(k))
}

/// Ops the importer maps or folds (for documentation and error messages).
pub(crate) const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Div",
    "Dropout",
    "Equal",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "Gemm",
    "GlobalAveragePool",
    "Greater",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LeakyRelu",
    "Less",
    "MatMul",
    "MaxPool",
    "Mul",
    "Neg",
    "PRelu",
    "Pad",
    "Range",
    "Reciprocal",
    "ReduceMean",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Size",
    "Slice",
    "Softmax",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Transpose",
    "Unsqueeze",
    "Where",
];

impl Importer<'_> {
    /// Name of input `i` of `node`, if present and non-empty.
    fn in_name(node: &NodeProto, i: usize) -> Option<&str> {
        node.input.get(i).map(|s| s.as_str()).filter(|s| !s.is_empty())
    }

    fn req_name(node: &NodeProto, i: usize) -> KResult<&str> {
        Self::in_name(node, i).ok_or_else(|| unsupported(format!("input {i} is required but missing")))
    }

    /// Input `i` (required) as a value.
    fn req(&mut self, node: &NodeProto, i: usize) -> KResult<Val> {
        let n = Self::req_name(node, i)?;
        self.val(n)
    }

    /// Input `i` (required) as an IR operand.
    fn req_op(&mut self, node: &NodeProto, i: usize) -> KResult<Value> {
        let n = Self::req_name(node, i)?;
        self.operand(n)
    }

    /// Optional input `i` as an IR operand.
    fn opt_op(&mut self, node: &NodeProto, i: usize) -> KResult<Option<Value>> {
        match Self::in_name(node, i) {
            Some(n) => self.operand(n).map(Some),
            None => Ok(None),
        }
    }

    /// Input `i` (required) as a constant.
    fn req_const(&mut self, node: &NodeProto, i: usize, what: &str) -> KResult<Rc<Konst>> {
        match self.req(node, i)? {
            Val::Const(k) => Ok(k),
            Val::Dyn(_) => Err(unsupported(format!(
                "input {i} ({what}) must be a constant or fold to one once input shapes are fixed, but it depends on \
                 run-time values"
            ))),
        }
    }

    /// Optional input `i` as a constant.
    fn opt_const(&mut self, node: &NodeProto, i: usize, what: &str) -> KResult<Option<Rc<Konst>>> {
        if Self::in_name(node, i).is_none() {
            return Ok(None);
        }
        self.req_const(node, i, what).map(Some)
    }

    /// Converts one node; returns its outputs in order (trailing optional outputs may be
    /// missing).
    pub(super) fn convert_node(&mut self, node: &NodeProto, name: &str) -> KResult<Vec<Val>> {
        let a = Attrs::new(&node.attribute);
        let op_type = node.op_type.as_str();
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(ImportErrorKind::UnsupportedOp {
                op_type: op_type.to_string(),
                domain: node.domain.clone(),
                opset: 0,
            });
        }
        let opset = self.opset;
        let one = |v: Value| Ok(vec![Val::Dyn(v)]);
        match op_type {
            "Identity" => Ok(vec![self.req(node, 0)?]),
            "Dropout" => {
                if let Some(m) = node.output.get(1).filter(|m| !m.is_empty() && self.use_count(m) > 0) {
                    return Err(unsupported(format!(
                        "the Dropout mask output `{m}` is used; clio imports inference graphs"
                    )));
                }
                Ok(vec![self.req(node, 0)?])
            }
            "Constant" => Ok(vec![konst(self.constant_attr(&a, name)?)]),
            "Conv" => one(self.conv(node, &a, name)?),
            "BatchNormalization" => one(self.batch_norm(node, &a, name)?),
            "Relu" => one(self.unary(node, name, Op::Relu)?),
            "Sigmoid" => one(self.unary(node, name, Op::Sigmoid)?),
            "HardSwish" => one(self.unary(node, name, Op::HardSwish)?),
            "HardSigmoid" => {
                let hs = ops::HardSigmoid { alpha: a.float_or("alpha", 0.2)?, beta: a.float_or("beta", 0.5)? };
                one(self.unary(node, name, Op::HardSigmoid(hs))?)
            }
            "GlobalAveragePool" => one(self.unary(node, name, Op::GlobalAvgPool)?),
            "LeakyRelu" => {
                let x = self.req_op(node, 0)?;
                let alpha = a.float_or("alpha", 0.01)?;
                let slope = Tensor::from_f32(vec![1], vec![alpha]).map_err(|e| unsupported(e.to_string()))?;
                let s = self.add_weight(&format!("{name}.alpha"), slope, None);
                one(self.emit(name, Op::PRelu, &[x, s])?)
            }
            "PRelu" => {
                let x = self.req_op(node, 0)?;
                let s = self.req_op(node, 1)?;
                one(self.emit(name, Op::PRelu, &[x, s])?)
            }
            "Clip" => one(self.clip(node, &a, name)?),
            "Softmax" => one(self.softmax(node, &a, name)?),
            "Add" | "Sub" | "Mul" | "Div" => self.arith(node, &a, name),
            "Concat" => self.concat(node, &a, name),
            "MaxPool" | "AveragePool" => one(self.pool(node, &a, name)?),
            "Gemm" => {
                let x = self.req_op(node, 0)?;
                let w = self.req_op(node, 1)?;
                let c = self.opt_op(node, 2)?;
                let g = ops::Gemm {
                    alpha: a.float_or("alpha", 1.0)?,
                    beta: a.float_or("beta", 1.0)?,
                    trans_a: a.flag("transA", false)?,
                    trans_b: a.flag("transB", false)?,
                };
                let mut operands = vec![x, w];
                operands.extend(c);
                one(self.emit(name, Op::Gemm(g), &operands)?)
            }
            "MatMul" => {
                let x = self.req_op(node, 0)?;
                let w = self.req_op(node, 1)?;
                one(self.emit(name, Op::MatMul, &[x, w])?)
            }
            "Flatten" => {
                let x = self.req(node, 0)?;
                let shape = self.val_shape(&x);
                let r = shape.len() as i64;
                let axis = a.int_or("axis", 1)?;
                let ax = if axis < 0 { axis + r } else { axis };
                if ax < 0 || ax > r {
                    return Err(attr_err("axis", format!("{axis} is out of range for rank {r}")));
                }
                let ax = ax as usize;
                match x {
                    Val::Const(k) => {
                        let (outer, inner) = shape
                            .split_at_checked(ax)
                            .ok_or_else(|| attr_err("axis", format!("{axis} is out of range for rank {r}")))?;
                        Ok(vec![konst(k.reshape(vec![outer.iter().product(), inner.iter().product()])?)])
                    }
                    Val::Dyn(v) => one(self.emit(name, Op::Flatten(ops::Flatten { axis: ax }), &[v])?),
                }
            }
            "Reshape" => {
                let x = self.req(node, 0)?;
                let spec = if opset >= 5 {
                    self.req_const(node, 1, "the target shape")?.to_i64s()?
                } else {
                    a.ints("shape")?.ok_or_else(|| attr_err("shape", "missing"))?
                };
                let allowzero = a.flag("allowzero", false)?;
                let out = resolve_reshape(&self.val_shape(&x), &spec, allowzero)?;
                match x {
                    Val::Const(k) => Ok(vec![konst(k.reshape(out)?)]),
                    Val::Dyn(v) => one(self.emit(name, Op::Reshape(ops::Reshape { shape: out }), &[v])?),
                }
            }
            "Squeeze" => {
                let x = self.req(node, 0)?;
                let axes = if opset >= 13 {
                    self.opt_const(node, 1, "axes")?.map(|k| k.to_i64s()).transpose()?
                } else {
                    a.ints("axes")?
                };
                let shape = self.val_shape(&x);
                let axes = norm_axes(&axes.unwrap_or_default(), shape.len(), "axis")?;
                let out = squeeze_shape(&shape, &axes)?;
                match x {
                    Val::Const(k) => Ok(vec![konst(k.reshape(out)?)]),
                    Val::Dyn(v) => {
                        let axes = if axes.is_empty() {
                            shape.iter().enumerate().filter(|(_, d)| **d == 1).map(|(i, _)| i).collect()
                        } else {
                            axes
                        };
                        one(self.emit(name, Op::Squeeze(ops::Squeeze { axes }), &[v])?)
                    }
                }
            }
            "Unsqueeze" => {
                let x = self.req(node, 0)?;
                let axes = if opset >= 13 {
                    self.req_const(node, 1, "axes")?.to_i64s()?
                } else {
                    a.ints("axes")?.ok_or_else(|| attr_err("axes", "missing"))?
                };
                let shape = self.val_shape(&x);
                let axes = norm_axes(&axes, shape.len() + axes.len(), "axis")?;
                let out = unsqueeze_shape(&shape, &axes);
                match x {
                    Val::Const(k) => Ok(vec![konst(k.reshape(out)?)]),
                    Val::Dyn(v) => one(self.emit(name, Op::Unsqueeze(ops::Unsqueeze { axes }), &[v])?),
                }
            }
            "Transpose" => {
                let x = self.req(node, 0)?;
                let r = self.val_shape(&x).len();
                let perm = match a.ints("perm")? {
                    Some(p) => p
                        .iter()
                        .map(|v| {
                            usize::try_from(*v).map_err(|_| attr_err("perm", format!("{p:?} has a negative entry")))
                        })
                        .collect::<KResult<Vec<_>>>()?,
                    None => (0..r).rev().collect(),
                };
                match x {
                    Val::Const(k) => Ok(vec![konst(k.transpose(&perm)?)]),
                    Val::Dyn(v) => one(self.emit(name, Op::Transpose(ops::Transpose { perm }), &[v])?),
                }
            }
            "Pad" => one(self.pad(node, &a, name)?),
            "ReduceMean" => self.reduce_mean(node, &a, name),
            // ---- shape computations: constant folding ----
            "Shape" => {
                let x = self.req(node, 0)?;
                let shape = self.val_shape(&x);
                let r = shape.len() as i64;
                let fix = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let start = fix(a.int_or("start", 0)?);
                let end = fix(a.int_or("end", r)?);
                let dims = shape.get(start..end).unwrap_or_default();
                Ok(vec![konst(Konst::i64_vec(dims.iter().map(|d| *d as i64).collect()))])
            }
            "Size" => {
                let x = self.req(node, 0)?;
                let n: usize = self.val_shape(&x).iter().product();
                Ok(vec![konst(Konst::i64_scalar(n as i64))])
            }
            "Gather" => {
                let data = self.const_data(node, 0, "Gather")?;
                let idx = self.req_const(node, 1, "indices")?;
                Ok(vec![konst(data.gather(&idx, a.int_or("axis", 0)?, self.limit())?)])
            }
            "Cast" => {
                let to = a.int("to")?.ok_or_else(|| attr_err("to", "missing"))?;
                let x = self.req(node, 0)?;
                let float = matches!(to, 1 | 10 | 11 | 16);
                let int = matches!(to, 2..=7 | 9 | 12 | 13);
                match x {
                    Val::Dyn(_) if float => Ok(vec![x]),
                    Val::Dyn(_) => Err(ImportErrorKind::DType {
                        tensor: node.output.first().cloned().unwrap_or_default(),
                        dtype: dtype_name(to as i32),
                        message: "Cast of an activation to a non-float type is not supported".into(),
                    }),
                    Val::Const(k) if float => Ok(vec![konst(k.cast(KType::F32))]),
                    Val::Const(k) if to == 9 => {
                        Ok(vec![konst(k.map(|x| (x != 0.0) as i64 as f32, |x| (x != 0) as i64).cast(KType::I64))])
                    }
                    Val::Const(k) if int => Ok(vec![konst(k.cast(KType::I64))]),
                    Val::Const(_) => Err(attr_err("to", format!("cast to {} is not supported", dtype_name(to as i32)))),
                }
            }
            "Slice" => self.slice(node, &a, name),
            "ConstantOfShape" => {
                let shape = self.req_const(node, 0, "shape")?.to_i64s()?;
                let shape = shape
                    .iter()
                    .map(|d| {
                        usize::try_from(*d).map_err(|_| unsupported(format!("shape {shape:?} has a negative entry")))
                    })
                    .collect::<KResult<Vec<usize>>>()?;
                let n = konst::check_limit(
                    &format!("ConstantOfShape result (shape {shape:?})"),
                    konst::safe_count(&shape),
                    self.limit(),
                )?;
                let value = match a.tensor("value")? {
                    Some(t) => self.dec.decode(t, &format!("{name}.value"))?,
                    None => Konst { shape: vec![1], data: KData::F32(vec![0.0]) },
                };
                let data = match &value.data {
                    KData::F32(v) => v.as_slice().first().filter(|_| v.len() == 1).map(|x| KData::F32(vec![*x; n])),
                    KData::I64(v) => v.as_slice().first().filter(|_| v.len() == 1).map(|x| KData::I64(vec![*x; n])),
                }
                .ok_or_else(|| attr_err("value", "must hold exactly one element"))?;
                Ok(vec![konst(Konst::new(shape, data)?)])
            }
            "Range" => {
                let s = self.req_const(node, 0, "start")?;
                let l = self.req_const(node, 1, "limit")?;
                let d = self.req_const(node, 2, "delta")?;
                Ok(vec![konst(konst::range(&s, &l, &d, self.limit())?)])
            }
            "Expand" => {
                let data = self.const_data(node, 0, "Expand")?;
                let shape = self.req_const(node, 1, "shape")?.to_i64s()?;
                let shape = shape
                    .iter()
                    .map(|d| {
                        usize::try_from(*d).map_err(|_| unsupported(format!("shape {shape:?} has a negative entry")))
                    })
                    .collect::<KResult<Vec<usize>>>()?;
                Ok(vec![konst(data.expand(&shape, self.limit())?)])
            }
            "Equal" | "Less" | "Greater" => {
                let x = self.const_data(node, 0, op_type)?;
                let y = self.const_data(node, 1, op_type)?;
                let cmp: fn(f64, f64) -> bool = match op_type {
                    "Equal" => |p, q| p == q,
                    "Less" => |p, q| p < q,
                    _ => |p, q| p > q,
                };
                let r = binary(
                    &x,
                    &y,
                    self.limit(),
                    |p, q| cmp(p as f64, q as f64) as i64 as f32,
                    |p, q| Ok(cmp(p as f64, q as f64) as i64),
                )?;
                Ok(vec![konst(r.cast(KType::I64))])
            }
            "Where" => {
                let c = self.const_data(node, 0, "Where")?;
                let x = self.const_data(node, 1, "Where")?;
                let y = self.const_data(node, 2, "Where")?;
                Ok(vec![konst(konst::where_(&c, &x, &y, self.limit())?)])
            }
            "Neg" | "Abs" | "Sqrt" | "Reciprocal" | "Floor" | "Ceil" => {
                let x = self.const_data(node, 0, op_type)?;
                let r = match op_type {
                    "Neg" => x.map(|v| -v, |v| v.wrapping_neg()),
                    "Abs" => x.map(f32::abs, i64::wrapping_abs),
                    "Sqrt" => x.cast(KType::F32).map(f32::sqrt, |v| v),
                    "Reciprocal" => x.cast(KType::F32).map(|v| 1.0 / v, |v| v),
                    "Floor" => x.map(f32::floor, |v| v),
                    _ => x.map(f32::ceil, |v| v),
                };
                Ok(vec![konst(r)])
            }
            _ => {
                Err(ImportErrorKind::UnsupportedOp { op_type: op_type.to_string(), domain: node.domain.clone(), opset })
            }
        }
    }

    /// Input `i` as a constant, for ops clio only folds.
    fn const_data(&mut self, node: &NodeProto, i: usize, op: &str) -> KResult<Rc<Konst>> {
        match self.req(node, i)? {
            Val::Const(k) => Ok(k),
            Val::Dyn(_) => Err(unsupported(format!(
                "{op} on run-time values (input {i}) is not supported: clio has no such op and folds {op} only \
                 in shape computations on constants"
            ))),
        }
    }

    /// `Constant` node value.
    fn constant_attr(&mut self, a: &Attrs, name: &str) -> KResult<Konst> {
        if let Some(t) = a.tensor("value")? {
            return self.dec.decode(t, name);
        }
        if let Some(f) = a.float("value_float")? {
            return Ok(Konst { shape: vec![], data: KData::F32(vec![f]) });
        }
        if let Some(v) = a.floats("value_floats")? {
            return Ok(Konst { shape: vec![v.len()], data: KData::F32(v) });
        }
        if let Some(i) = a.int("value_int")? {
            return Ok(Konst::i64_scalar(i));
        }
        if let Some(v) = a.ints("value_ints")? {
            return Ok(Konst::i64_vec(v));
        }
        for other in ["sparse_value", "value_string", "value_strings"] {
            if a.has(other) {
                return Err(attr_err(other, "is not supported (float32 and integer constants only)"));
            }
        }
        Err(attr_err("value", "missing (a Constant needs value, value_float(s) or value_int(s))"))
    }

    fn unary(&mut self, node: &NodeProto, name: &str, op: Op) -> KResult<Value> {
        let x = self.req_op(node, 0)?;
        self.emit(name, op, &[x])
    }

    /// Explicit or automatic padding of a 2-D window op: `[top, left, bottom, right]`.
    fn window_pads(
        a: &Attrs,
        [ih, iw]: [usize; 2],
        [kh, kw]: [usize; 2],
        [sh, sw]: [usize; 2],
        [dh, dw]: [usize; 2],
    ) -> KResult<([usize; 4], bool)> {
        let auto = a.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
        match auto.as_str() {
            "NOTSET" | "" => Ok((a.usizes::<4>("pads")?.unwrap_or([0; 4]), false)),
            "VALID" => Ok(([0; 4], true)),
            "SAME_UPPER" | "SAME_LOWER" => {
                // (begin, end) padding of one spatial axis.
                let same = |inp: usize, k: usize, s: usize, d: usize| {
                    let out = inp.div_ceil(s);
                    let span = d.saturating_mul(k.saturating_sub(1)).saturating_add(1);
                    let total = out.saturating_sub(1).saturating_mul(s).saturating_add(span).saturating_sub(inp);
                    let small = total / 2;
                    if auto == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    }
                };
                let (top, bottom) = same(ih, kh, sh, dh);
                let (left, right) = same(iw, kw, sw, dw);
                Ok(([top, left, bottom, right], true))
            }
            other => {
                Err(attr_err("auto_pad", format!("expected NOTSET, SAME_UPPER, SAME_LOWER or VALID, got `{other}`")))
            }
        }
    }

    fn pair(a: &Attrs, key: &str, default: usize) -> KResult<[usize; 2]> {
        let v = a.usizes::<2>(key)?.unwrap_or([default; 2]);
        if key != "pads" && v.contains(&0) {
            return Err(attr_err(key, format!("entries must be positive, got {v:?}")));
        }
        Ok(v)
    }

    fn conv(&mut self, node: &NodeProto, a: &Attrs, name: &str) -> KResult<Value> {
        let x = self.req_op(node, 0)?;
        let w = self.req_op(node, 1)?;
        let b = self.opt_op(node, 2)?;
        let (xs, ws) = (self.shape(x), self.shape(w));
        let (&[_, _, ih, iw], &[_, _, kh, kw]) = (xs.as_slice(), ws.as_slice()) else {
            return Err(unsupported(format!(
                "only 2-D convolutions are supported (rank-4 input and filter), got input {xs:?} and filter {ws:?}"
            )));
        };
        let kernel = [kh, kw];
        if let Some(k) = a.usizes::<2>("kernel_shape")? {
            if k != kernel {
                return Err(attr_err("kernel_shape", format!("{k:?} does not match the filter shape {ws:?}")));
            }
        }
        let strides = Self::pair(a, "strides", 1)?;
        let dilations = Self::pair(a, "dilations", 1)?;
        let group = a.int_or("group", 1)?;
        let groups = usize::try_from(group)
            .ok()
            .filter(|g| *g >= 1)
            .ok_or_else(|| attr_err("group", format!("must be positive, got {group}")))?;
        let (pads, _) = Self::window_pads(a, [ih, iw], kernel, strides, dilations)?;
        let op = Op::Conv2d(ops::Conv2d { strides, pads, dilations, groups });
        let mut operands = vec![x, w];
        operands.extend(b);
        self.emit(name, op, &operands)
    }

    fn batch_norm(&mut self, node: &NodeProto, a: &Attrs, name: &str) -> KResult<Value> {
        if a.flag("training_mode", false)? {
            return Err(attr_err(
                "training_mode",
                "training_mode = 1 (batch statistics) is not supported; export the model in inference mode \
                 (model.eval())",
            ));
        }
        if let Some(o) = node.output.iter().skip(1).find(|o| !o.is_empty() && self.use_count(o) > 0) {
            return Err(unsupported(format!(
                "output `{o}` (running or saved statistics) is a training-mode output and is used; clio imports \
                 inference-mode BatchNormalization with a single output"
            )));
        }
        if opset_lt(self.opset, 9) && a.int_or("spatial", 1)? == 0 {
            return Err(attr_err("spatial", "spatial = 0 (per-activation statistics) is not supported"));
        }
        let mut operands = Vec::new();
        for i in 0..5 {
            operands.push(self.req_op(node, i)?);
        }
        let epsilon = a.float_or("epsilon", 1e-5)?;
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(attr_err("epsilon", format!("must be finite and >= 0, got {epsilon}")));
        }
        self.emit(name, Op::BatchNorm(ops::BatchNorm { epsilon }), &operands)
    }

    fn clip(&mut self, node: &NodeProto, a: &Attrs, name: &str) -> KResult<Value> {
        let x = self.req_op(node, 0)?;
        let (min, max) = if self.opset < 11 {
            (a.float_or("min", f32::NEG_INFINITY)?, a.float_or("max", f32::INFINITY)?)
        } else {
            let min = self.opt_const(node, 1, "min")?.map(|k| k.scalar_f32()).transpose()?;
            let max = self.opt_const(node, 2, "max")?.map(|k| k.scalar_f32()).transpose()?;
            (min.unwrap_or(f32::NEG_INFINITY), max.unwrap_or(f32::INFINITY))
        };
        if min.is_nan() || max.is_nan() || min > max {
            return Err(unsupported(format!("Clip bounds [{min}, {max}] are not an interval")));
        }
        self.emit(name, Op::Clip(ops::Clip { min, max }), &[x])
    }

    fn softmax(&mut self, node: &NodeProto, a: &Attrs, name: &str) -> KResult<Value> {
        let x = self.req_op(node, 0)?;
        let shape = self.shape(x);
        let r = shape.len();
        if r == 0 {
            return Err(unsupported("Softmax of a scalar"));
        }
        let axis = if self.opset >= 13 {
            norm_axis(a.int_or("axis", -1)?, r, "axis")?
        } else {
            // Opset < 13: softmax over the flattened dimensions axis.. (a 2-D coercion).
            let k = norm_axis(a.int_or("axis", 1)?, r, "axis")?;
            // `k < r`: the dimensions k..r-1 (all but the last from k) and k+1.. exist.
            let (Some(before_last), Some(after_k)) =
                (shape.get(k..).and_then(|s| s.split_last()).map(|(_, init)| init), shape.get(k + 1..))
            else {
                return Err(unsupported(format!("axis {k} is out of range for rank {r}")));
            };
            if before_last.iter().all(|d| *d == 1) {
                r - 1
            } else if after_k.iter().all(|d| *d == 1) {
                k
            } else {
                return Err(attr_err(
                    "axis",
                    format!(
                        "opset {} Softmax with axis {k} normalises over the flattened dimensions {k}.. of {shape:?}, \
                         which is not a softmax along one axis; re-export with opset >= 13",
                        self.opset
                    ),
                ));
            }
        };
        self.emit(name, Op::Softmax(ops::Softmax { axis }), &[x])
    }

    fn arith(&mut self, node: &NodeProto, a: &Attrs, name: &str) -> KResult<Vec<Val>> {
        if a.has("axis") {
            return Err(attr_err("axis", "legacy (opset < 7) broadcasting along an axis is not supported"));
        }
        let x = self.req(node, 0)?;
        let y = self.req(node, 1)?;
        let op_type = node.op_type.as_str();
        if let (Val::Const(p), Val::Const(q)) = (&x, &y) {
            let lim = self.limit();
            let r = match op_type {
                "Add" => binary(p, q, lim, |u, v| u + v, |u, v| Ok(u.wrapping_add(v)))?,
                "Sub" => binary(p, q, lim, |u, v| u - v, |u, v| Ok(u.wrapping_sub(v)))?,
                "Mul" => binary(p, q, lim, |u, v| u * v, |u, v| Ok(u.wrapping_mul(v)))?,
                _ => binary(
                    p,
                    q,
                    lim,
                    |u, v| u / v,
                    |u, v| u.checked_div(v).ok_or_else(|| unsupported(format!("integer division {u} / {v}"))),
                )?,
            };
            return Ok(vec![konst(r)]);
        }
        drop((x, y));
        let xv = self.operand(Self::req_name(node, 0)?)?;
        let yv = self.operand(Self::req_name(node, 1)?)?;
        let op = match op_type {
            "Add" => Op::Add,
            "Sub" => Op::Sub,
            "Mul" => Op::Mul,
            _ => Op::Div,
        };
        Ok(vec![Val::Dyn(self.emit(name, op, &[xv, yv])?)])
    }

    fn concat(&mut self, node: &NodeProto, a: &Attrs, name: &str) -> KResult<Vec<Val>> {
        let axis = a.int("axis")?.ok_or_else(|| attr_err("axis", "missing"))?;
        let names: Vec<&str> = node.input.iter().map(|s| s.as_str()).filter(|s| !s.is_empty()).collect();
        let mut vals = Vec::new();
        for n in &names {
            vals.push(self.val(n)?);
        }
        if vals.iter().all(|v| matches!(v, Val::Const(_))) {
            let ks: Vec<&Konst> = vals
                .iter()
                .filter_map(|v| match v {
                    Val::Const(k) => Some(k.as_ref()),
                    Val::Dyn(_) => None,
                })
                .collect();
            return Ok(vec![konst(Konst::concat(&ks, axis, self.limit())?)]);
        }
        drop(vals);
        let mut operands = Vec::new();
        for n in &names {
            operands.push(self.operand(n)?);
        }
        let rank = operands.first().map(|v| self.shape(*v).len()).unwrap_or(0);
        let axis = norm_axis(axis, rank, "axis")?;
        Ok(vec![Val::Dyn(self.emit(name, Op::Concat(ops::Concat { axis }), &operands)?)])
    }

    fn pool(&mut self, node: &NodeProto, a: &Attrs, name: &str) -> KResult<Value> {
        let x = self.req_op(node, 0)?;
        let xs = self.shape(x);
        let &[_, _, ih, iw] = xs.as_slice() else {
            return Err(unsupported(format!("only 2-D pooling (rank-4 NCHW input) is supported, got {xs:?}")));
        };
        let kernel = a.usizes::<2>("kernel_shape")?.ok_or_else(|| attr_err("kernel_shape", "missing"))?;
        if kernel.contains(&0) {
            return Err(attr_err("kernel_shape", format!("entries must be positive, got {kernel:?}")));
        }
        let strides = Self::pair(a, "strides", 1)?;
        if let Some(d) = a.ints("dilations")? {
            if d.iter().any(|v| *v != 1) {
                return Err(attr_err("dilations", format!("dilated pooling {d:?} is not supported")));
            }
        }
        let (pads, auto) = Self::window_pads(a, [ih, iw], kernel, strides, [1, 1])?;
        let ceil_mode = a.flag("ceil_mode", false)? && !auto;
        let window = ops::Window2d { kernel, strides, pads, ceil_mode };
        let op = if node.op_type == "MaxPool" {
            if let Some(o) = node.output.get(1).filter(|o| !o.is_empty() && self.use_count(o) > 0) {
                return Err(unsupported(format!(
                    "the MaxPool indices output `{o}` is used, which clio does not support"
                )));
            }
            Op::MaxPool(ops::MaxPool { window })
        } else {
            Op::AvgPool(ops::AvgPool { window, count_include_pad: a.flag("count_include_pad", false)? })
        };
        self.emit(name, op, &[x])
    }

    fn pad(&mut self, node: &NodeProto, a: &Attrs, name: &str) -> KResult<Value> {
        let x = self.req_op(node, 0)?;
        let r = self.shape(x).len();
        let mode = match a.string("mode")?.as_deref().unwrap_or("constant") {
            "constant" => PadMode::Constant,
            "reflect" => PadMode::Reflect,
            "edge" => PadMode::Edge,
            m => return Err(attr_err("mode", format!("`{m}` is not supported (constant, reflect, edge)"))),
        };
        let (pads, value, axes) = if self.opset >= 11 {
            let pads = self.req_const(node, 1, "pads")?.to_i64s()?;
            let value = self.opt_const(node, 2, "constant_value")?.map(|k| k.scalar_f32()).transpose()?.unwrap_or(0.0);
            let axes = self.opt_const(node, 3, "axes")?.map(|k| k.to_i64s()).transpose()?;
            (pads, value, axes)
        } else {
            let key = if self.opset < 2 { "paddings" } else { "pads" };
            (a.ints(key)?.ok_or_else(|| attr_err(key, "missing"))?, a.float_or("value", 0.0)?, None)
        };
        let full = match axes {
            None => pads.clone(),
            Some(ax) => {
                let mut axes_n = Vec::new();
                for v in &ax {
                    axes_n.push(norm_axis(*v, r, "axis")?);
                }
                let (begins, ends) = pads
                    .split_at_checked(axes_n.len())
                    .filter(|(_, ends)| ends.len() == axes_n.len())
                    .ok_or_else(|| unsupported(format!("Pad has {} pads for {} axes", pads.len(), axes_n.len())))?;
                // Every axis is below `r` (normalised above).
                let (mut fb, mut fe) = (vec![0i64; r], vec![0i64; r]);
                for ((ax, b), e) in axes_n.iter().zip(begins).zip(ends) {
                    if let (Some(x), Some(y)) = (fb.get_mut(*ax), fe.get_mut(*ax)) {
                        (*x, *y) = (*b, *e);
                    }
                }
                fb.extend(fe);
                fb
            }
        };
        if full.len() != 2 * r {
            return Err(unsupported(format!("Pad needs {} pads for rank {r}, got {pads:?}", 2 * r)));
        }
        let pads = full
            .iter()
            .map(|p| {
                usize::try_from(*p)
                    .map_err(|_| unsupported(format!("negative pads (cropping) {full:?} are not supported")))
            })
            .collect::<KResult<Vec<_>>>()?;
        self.emit(name, Op::Pad(ops::Pad { pads, mode, value }), &[x])
    }

    fn slice(&mut self, node: &NodeProto, a: &Attrs, name: &str) -> KResult<Vec<Val>> {
        let x = self.req(node, 0)?;
        let shape = self.val_shape(&x);
        let r = shape.len();
        let (starts, ends, axes, steps) = if self.opset >= 10 {
            let s = self.req_const(node, 1, "starts")?.to_i64s()?;
            let e = self.req_const(node, 2, "ends")?.to_i64s()?;
            let ax = self.opt_const(node, 3, "axes")?.map(|k| k.to_i64s()).transpose()?;
            let st = self.opt_const(node, 4, "steps")?.map(|k| k.to_i64s()).transpose()?;
            (s, e, ax, st)
        } else {
            (
                a.ints("starts")?.ok_or_else(|| attr_err("starts", "missing"))?,
                a.ints("ends")?.ok_or_else(|| attr_err("ends", "missing"))?,
                a.ints("axes")?,
                None,
            )
        };
        let n = starts.len();
        let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; n]);
        if ends.len() != n || axes.len() != n || steps.len() != n {
            return Err(unsupported(format!(
                "Slice starts {starts:?}, ends {ends:?}, axes {axes:?} and steps {steps:?} differ in length"
            )));
        }
        let mut ranges = Vec::new();
        // The size of each range's axis, in the order of `ranges`.
        let mut dims = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (((ax, step), start), end) in axes.iter().zip(&steps).zip(&starts).zip(&ends) {
            let axis = norm_axis(*ax, r, "axis")?;
            let dim = *shape.get(axis).ok_or_else(|| unsupported(format!("axis {ax} is out of range for rank {r}")))?;
            if !seen.insert(axis) {
                return Err(unsupported(format!("Slice axes {axes:?} repeat an axis")));
            }
            if *step == 0 {
                return Err(unsupported("Slice step 0"));
            }
            ranges.push(SliceRange { axis, start: *start, end: *end, step: *step });
            dims.push(dim);
        }
        match x {
            Val::Const(k) => Ok(vec![konst(k.slice(&ranges)?)]),
            Val::Dyn(v) => {
                let nontrivial: Vec<(&SliceRange, usize)> = ranges
                    .iter()
                    .zip(dims.iter().copied())
                    .filter(|(r, dim)| r.indices(*dim) != (0..*dim).collect::<Vec<_>>())
                    .collect();
                match nontrivial.as_slice() {
                    [] => Ok(vec![Val::Dyn(v)]),
                    [(rg, dim)] if rg.step == 1 => {
                        let (s, e) = rg.clamped(*dim);
                        if s >= e {
                            return Err(unsupported(format!("Slice of {shape:?} along axis {} is empty", rg.axis)));
                        }
                        let op =
                            Op::ChannelSlice(ops::ChannelSlice { axis: rg.axis, start: s as usize, end: e as usize });
                        Ok(vec![Val::Dyn(self.emit(name, op, &[v])?)])
                    }
                    _ => Err(unsupported(format!(
                        "Slice of an activation {shape:?} with {ranges:?}: only a contiguous step-1 range of one axis \
                         (channel_slice) is supported"
                    ))),
                }
            }
        }
    }

    fn reduce_mean(&mut self, node: &NodeProto, a: &Attrs, name: &str) -> KResult<Vec<Val>> {
        let x = self.req_op(node, 0)?;
        let shape = self.shape(x);
        let axes = if self.opset >= 18 {
            self.opt_const(node, 1, "axes")?.map(|k| k.to_i64s()).transpose()?
        } else {
            a.ints("axes")?
        };
        let keepdims = a.flag("keepdims", true)?;
        let axes = match axes {
            Some(ax) if !ax.is_empty() => norm_axes(&ax, shape.len(), "axis")?,
            _ => (0..shape.len()).collect(),
        };
        let (&[n, c, _, _], true) = (shape.as_slice(), axes == [2, 3]) else {
            return Err(unsupported(format!(
                "ReduceMean over axes {axes:?} of {shape:?}: only the spatial axes [2, 3] of a rank-4 NCHW tensor \
                 (global average pooling) are supported"
            )));
        };
        if keepdims {
            return Ok(vec![Val::Dyn(self.emit(name, Op::GlobalAvgPool, &[x])?)]);
        }
        let p = self.emit(&format!("{name}.pool"), Op::GlobalAvgPool, &[x])?;
        let out = vec![n, c];
        Ok(vec![Val::Dyn(self.emit(name, Op::Reshape(ops::Reshape { shape: out }), &[p])?)])
    }
}

fn opset_lt(opset: i64, v: i64) -> bool {
    opset < v
}
