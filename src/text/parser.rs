//! Parsing the text format back into a [`Module`].

// Decodes user text: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use super::lexer::{Cursor, Number};
use super::printer::type_string;
use crate::error::{ParseError, Pos};
use crate::ir::{
    checked_product, Attr, AttrMap, DType, Digest, Graph, Module, Op, QScheme, Quant, Tensor, TensorData, TensorType,
    Value, Weight,
};
use crate::ops::CustomOp;
use crate::Limits;
use std::collections::HashMap;

/// What to do with a `blob<"digest">` weight whose data are not supplied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MissingWeights {
    /// Fail with an error naming the weight (the default: never invent data silently).
    #[default]
    Error,
    /// Fill with zeros: for structure-only work (printing, analyses) on snapshot text.
    Zeros,
}

/// Parser settings.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions<'a> {
    /// File name used in error messages (`<input>` when empty).
    pub file: String,
    /// Data for `blob<...>` weights, by weight name (typically a safetensors sidecar); each is
    /// checked against its digest.
    pub blobs: Option<&'a HashMap<String, Tensor>>,
    /// Policy for blob weights without data.
    pub missing: MissingWeights,
    /// Size limits.
    pub limits: Limits,
}

/// Parses a module.
pub fn parse_module(src: &str, opts: &ParseOptions) -> Result<Module, ParseError> {
    let file = if opts.file.is_empty() { "<input>" } else { &opts.file };
    let mut p = Parser { c: Cursor::new(file, src), opts, owned: None };
    p.module()
}

/// [`parse_module`] with the `blob<...>` data given by value: each tensor is moved into the
/// module instead of copied (what [`crate::io::load_module`] does with the sidecar it has just
/// read). `opts.blobs` is consulted for names `blobs` lacks.
pub(crate) fn parse_module_taking(
    src: &str,
    opts: &ParseOptions,
    blobs: HashMap<String, Tensor>,
) -> Result<Module, ParseError> {
    let file = if opts.file.is_empty() { "<input>" } else { &opts.file };
    let mut p = Parser { c: Cursor::new(file, src), opts, owned: Some(blobs) };
    p.module()
}

struct Parser<'a, 'o> {
    c: Cursor<'a>,
    opts: &'o ParseOptions<'o>,
    /// Blob data to move into the module ([`parse_module_taking`]).
    owned: Option<HashMap<String, Tensor>>,
}

type PResult<T> = Result<T, ParseError>;

impl<'a> Parser<'a, '_> {
    fn module(&mut self) -> PResult<Module> {
        self.c.expect_keyword("module")?;
        let name = self.c.name_after_sigil('@', "a module name `@name`")?;
        let mut m = Module::new(name);
        if self.c.eat_keyword("attributes") {
            m.attrs = self.attr_dict()?;
        }
        self.c.expect('{')?;
        loop {
            if self.c.eat('}') {
                break;
            }
            match self.c.peek_word() {
                "weight" => self.weight_decl(&mut m)?,
                "graph" => {
                    let g = self.graph(&m)?;
                    m.add_graph(g);
                }
                _ => return Err(self.c.expected("`weight`, `graph` or `}`")),
            }
        }
        if !self.c.at_end() {
            return Err(self.c.expected("end of input after the module"));
        }
        Ok(m)
    }

    fn weight_decl(&mut self, m: &mut Module) -> PResult<()> {
        self.c.expect_keyword("weight")?;
        let pos = self.c.pos();
        let name = self.c.name_after_sigil('@', "a weight name `@name`")?;
        if m.weight(&name).is_some() {
            return Err(self.c.error_at(pos, format!("weight @{name} is declared twice")));
        }
        self.c.expect(':')?;
        let ty = self.tensor_type()?;
        self.c.expect('=')?;
        let data_pos = self.c.pos();
        let n = self.check_size(&ty, data_pos)?;
        let tensor = match self.c.peek_word() {
            "dense" => {
                self.c.expect_keyword("dense")?;
                self.c.expect('<')?;
                let data = self.dense_list(ty.dtype, n)?;
                self.c.expect('>')?;
                Tensor::new(ty.shape.clone(), data).map_err(|e| self.c.error_at(data_pos, e.to_string()))?
            }
            "blob" => {
                self.c.expect_keyword("blob")?;
                self.c.expect('<')?;
                let hex_pos = self.c.pos();
                let hex = self.c.string_literal()?;
                self.c.expect('>')?;
                let digest = Digest::parse(&hex).map_err(|message| self.c.error_at(hex_pos, message))?;
                self.blob(&name, &ty, digest, data_pos)?
            }
            _ => return Err(self.c.expected("`dense<[...]>` or `blob<\"digest\">`")),
        };
        let w = match ty.quant {
            Some(q) => Weight::quantized(tensor, q),
            None => Weight::new(tensor),
        };
        m.set_weight(&name, w);
        Ok(())
    }

    fn check_size(&self, ty: &TensorType, pos: Pos) -> PResult<usize> {
        match checked_product(&ty.shape) {
            Some(n) if n <= self.opts.limits.max_tensor_elements => Ok(n),
            _ => Err(self.c.error_at(
                pos,
                format!(
                    "{} exceeds the limit of {} elements per tensor (Limits::max_tensor_elements)",
                    type_string(ty),
                    self.opts.limits.max_tensor_elements
                ),
            )),
        }
    }

    fn blob(&mut self, name: &str, ty: &TensorType, digest: Digest, pos: Pos) -> PResult<Tensor> {
        if let Some(t) = self.owned.as_mut().and_then(|b| b.remove(name)) {
            self.check_blob(name, ty, digest, pos, &t)?;
            return Ok(t);
        }
        if let Some(t) = self.opts.blobs.and_then(|b| b.get(name)) {
            self.check_blob(name, ty, digest, pos, t)?;
            return Ok(t.clone());
        }
        match self.opts.missing {
            MissingWeights::Zeros => Ok(Tensor::zeros(ty.shape.clone(), ty.dtype)),
            MissingWeights::Error => Err(self.c.error_at(
                pos,
                format!("weight @{name} is a blob but no data were supplied (load the text together with its .safetensors sidecar)"),
            )),
        }
    }

    /// Checks supplied blob data against the declared type and the digest.
    fn check_blob(&self, name: &str, ty: &TensorType, digest: Digest, pos: Pos, t: &Tensor) -> PResult<()> {
        if t.shape() != ty.shape.as_slice() || t.dtype() != ty.dtype {
            return Err(self.c.error_at(
                pos,
                format!(
                    "weight @{name}: sidecar holds {:?}x{} but the text declares {}",
                    t.shape(),
                    t.dtype(),
                    type_string(ty)
                ),
            ));
        }
        if !digest.matches(t) {
            return Err(self.c.error_at(
                pos,
                format!(
                    "weight @{name}: sidecar data has digest {}, the text expects {digest} (stale or mismatched sidecar)",
                    Digest::of(t, digest.algorithm)
                ),
            ));
        }
        Ok(())
    }

    fn dense_list(&mut self, dtype: DType, n: usize) -> PResult<TensorData> {
        self.c.skip_trivia();
        let list_pos = self.c.pos();
        self.c.expect('[')?;
        let mut f = Vec::new();
        let mut i = Vec::new();
        let range = dtype.int_range();
        if !self.c.eat(']') {
            loop {
                let pos = self.c.pos();
                if f.len() + i.len() >= n {
                    return Err(self.c.error_at(pos, format!("more than the {n} elements the type declares")));
                }
                match (self.c.number("a number")?, range) {
                    (Number::Int(v), None) => f.push(v as f32),
                    (Number::Float(v), None) => f.push(v),
                    (Number::Int(v), Some((lo, hi))) if v >= lo && v <= hi => i.push(v),
                    (Number::Int(v), Some(_)) => {
                        return Err(self.c.error_at(pos, format!("{v} does not fit in {dtype}")))
                    }
                    (Number::Float(_), Some(_)) => {
                        return Err(self.c.error_at(pos, format!("expected an integer element for {dtype}")))
                    }
                }
                if self.c.eat(']') {
                    break;
                }
                self.c.expect(',')?;
            }
        }
        let got = f.len() + i.len();
        if got != n {
            return Err(self
                .c
                .error_at(list_pos, format!("expected {n} elements (the type's element count), got {got}")));
        }
        Ok(match dtype {
            DType::F32 => TensorData::F32(f),
            DType::I8 => TensorData::I8(i.into_iter().map(|v| v as i8).collect()),
            DType::I16 => TensorData::I16(i.into_iter().map(|v| v as i16).collect()),
            DType::I32 => TensorData::I32(i.into_iter().map(|v| v as i32).collect()),
        })
    }

    /// `tensor<1x3x32x32xf32>` or `tensor<16xi8, affine<0.5:0>>`.
    fn tensor_type(&mut self) -> PResult<TensorType> {
        self.c.expect_keyword("tensor")?;
        self.c.expect('<')?;
        self.c.skip_trivia();
        let pos = self.c.pos();
        let spec = self.c.take_while(|ch| ch.is_ascii_alphanumeric());
        let mut parts: Vec<&str> = spec.split('x').collect();
        let dt = parts.pop().unwrap_or_default();
        let dtype = DType::from_str_opt(dt).ok_or_else(|| {
            self.c.error_at(pos, format!("expected `<dims>x<dtype>` with dtype f32, i8, i16 or i32, found `{spec}`"))
        })?;
        let mut shape = Vec::with_capacity(parts.len());
        for d in parts {
            shape.push(
                d.parse::<usize>()
                    .map_err(|_| self.c.error_at(pos, format!("expected a dimension, found `{d}` in `{spec}`")))?,
            );
        }
        if let Some(axis) = shape.iter().position(|d| *d == 0) {
            return Err(self
                .c
                .error_at(pos, format!("dimension {axis} of `{spec}` is 0: empty tensors are not supported")));
        }
        let mut ty = TensorType::new(shape, dtype);
        // Every declared type is bounded, not only weights: a later pass or the interpreter
        // would allocate it.
        self.check_size(&ty, pos)?;
        if self.c.eat(',') {
            ty.quant = Some(self.quant()?);
        }
        self.c.expect('>')?;
        Ok(ty)
    }

    fn quant(&mut self) -> PResult<Quant> {
        let kind_pos = self.c.pos();
        let kind = self.c.ident("`pow2<...>` or `affine<...>`")?;
        self.c.expect('<')?;
        let mut axis = None;
        if self.c.eat_keyword("axis") {
            self.c.expect('=')?;
            axis = Some(self.c.usize("a quantization axis")?);
            self.c.expect(':')?;
        }
        let scheme = match kind {
            "pow2" => {
                let mut frac_bits = vec![];
                loop {
                    let pos = self.c.pos();
                    match self.c.number("fractional bits")? {
                        Number::Int(v) if v.abs() <= 63 => frac_bits.push(v as i32),
                        _ => return Err(self.c.error_at(pos, "expected fractional bits (an integer in -63..=63)")),
                    }
                    if !self.c.eat(',') {
                        break;
                    }
                }
                QScheme::Pow2 { frac_bits }
            }
            "affine" => {
                let (mut scales, mut zero_points) = (vec![], vec![]);
                loop {
                    let scale = match self.c.number("a scale")? {
                        Number::Int(v) => v as f32,
                        Number::Float(v) => v,
                    };
                    self.c.expect(':')?;
                    let pos = self.c.pos();
                    let zp = match self.c.number("a zero point")? {
                        Number::Int(v) => {
                            i32::try_from(v).map_err(|_| self.c.error_at(pos, "zero point out of range"))?
                        }
                        Number::Float(_) => return Err(self.c.error_at(pos, "expected an integer zero point")),
                    };
                    scales.push(scale);
                    zero_points.push(zp);
                    if !self.c.eat(',') {
                        break;
                    }
                }
                QScheme::Affine { scales, zero_points }
            }
            other => {
                return Err(self
                    .c
                    .error_at(kind_pos, format!("unknown quantization `{other}` (expected pow2 or affine)")))
            }
        };
        self.c.expect('>')?;
        Ok(Quant { scheme, axis })
    }

    fn attr_dict(&mut self) -> PResult<AttrMap> {
        let mut attrs = AttrMap::new();
        self.c.expect('{')?;
        if self.c.eat('}') {
            return Ok(attrs);
        }
        loop {
            let pos = self.c.pos();
            let key = if self.c.peek() == Some('"') {
                self.c.string_literal()?
            } else {
                self.c.ident("an attribute name")?.to_string()
            };
            self.c.expect('=')?;
            let v = self.attr_value()?;
            if attrs.insert(key.clone(), v).is_some() {
                return Err(self.c.error_at(pos, format!("attribute `{key}` is given twice")));
            }
            if self.c.eat('}') {
                return Ok(attrs);
            }
            self.c.expect(',')?;
        }
    }

    fn attr_value(&mut self) -> PResult<Attr> {
        match self.c.peek() {
            Some('"') => Ok(Attr::Str(self.c.string_literal()?)),
            Some('[') => {
                self.c.expect('[')?;
                let mut nums = vec![];
                if !self.c.eat(']') {
                    loop {
                        nums.push(self.c.number("a number")?);
                        if self.c.eat(']') {
                            break;
                        }
                        self.c.expect(',')?;
                    }
                }
                if nums.iter().all(|n| matches!(n, Number::Int(_))) {
                    Ok(Attr::Ints(nums.into_iter().map(|n| if let Number::Int(v) = n { v } else { 0 }).collect()))
                } else {
                    Ok(Attr::Floats(
                        nums.into_iter()
                            .map(|n| match n {
                                Number::Int(v) => v as f32,
                                Number::Float(v) => v,
                            })
                            .collect(),
                    ))
                }
            }
            _ => {
                if self.c.eat_keyword("true") {
                    return Ok(Attr::Bool(true));
                }
                if self.c.eat_keyword("false") {
                    return Ok(Attr::Bool(false));
                }
                match self.c.number("an attribute value (number, bool, string or list)")? {
                    Number::Int(v) => Ok(Attr::Int(v)),
                    Number::Float(v) => Ok(Attr::Float(v)),
                }
            }
        }
    }

    fn graph(&mut self, m: &Module) -> PResult<Graph> {
        self.c.expect_keyword("graph")?;
        let pos = self.c.pos();
        let name = self.c.name_after_sigil('@', "a graph name `@name`")?;
        if m.graph(&name).is_some() {
            return Err(self.c.error_at(pos, format!("graph @{name} is defined twice")));
        }
        let mut g = Graph::new(name);
        self.c.expect('(')?;
        if !self.c.eat(')') {
            loop {
                let pos = self.c.pos();
                let arg = self.c.name_after_sigil('%', "an argument `%name`")?;
                if g.find(&arg).is_some() {
                    return Err(self.c.error_at(pos, format!("redefinition of %{arg}")));
                }
                self.c.expect(':')?;
                let ty = self.tensor_type()?;
                g.add_input(&arg, ty);
                if self.c.eat(')') {
                    break;
                }
                self.c.expect(',')?;
            }
        }
        self.c.expect_str("->")?;
        self.c.expect('(')?;
        let mut out_types = vec![];
        if !self.c.eat(')') {
            loop {
                out_types.push((self.c.pos(), self.tensor_type()?));
                if self.c.eat(')') {
                    break;
                }
                self.c.expect(',')?;
            }
        }
        self.c.expect('{')?;
        loop {
            if self.c.eat_keyword("return") {
                break;
            }
            if self.c.peek() != Some('%') {
                return Err(self.c.expected("a statement `%name = op(...)` or `return`"));
            }
            self.statement(m, &mut g)?;
        }
        let ret_pos = self.c.pos();
        let mut outs = vec![];
        if self.c.peek() != Some('}') {
            loop {
                outs.push(self.operand(m, &mut g)?);
                if !self.c.eat(',') {
                    break;
                }
            }
        }
        self.c.expect('}')?;
        if outs.len() != out_types.len() {
            return Err(self.c.error_at(
                ret_pos,
                format!(
                    "graph @{} returns {} values but its signature declares {}",
                    g.name(),
                    outs.len(),
                    out_types.len()
                ),
            ));
        }
        for (v, (pos, t)) in outs.iter().zip(&out_types) {
            let actual = g.value_type(*v).cloned();
            if actual.as_ref() != Some(t) {
                return Err(self.c.error_at(
                    *pos,
                    format!(
                        "declared result type {} differs from the returned value's {}",
                        type_string(t),
                        actual.map(|a| type_string(&a)).unwrap_or_default()
                    ),
                ));
            }
        }
        g.set_outputs(outs);
        Ok(g)
    }

    fn operand(&mut self, m: &Module, g: &mut Graph) -> PResult<Value> {
        let pos = self.c.pos();
        match self.c.peek() {
            Some('@') => {
                let name = self.c.name_after_sigil('@', "a weight `@name`")?;
                let w =
                    m.weight(&name).ok_or_else(|| self.c.error_at(pos, format!("use of undeclared weight @{name}")))?;
                // The type is only built for the first read (which creates the node).
                match g.weight_node(&name) {
                    Some(id) => Ok(Value::of(id)),
                    None => Ok(g.weight_value(&name, w.ty())),
                }
            }
            Some('%') => {
                let name = self.c.name_after_sigil('%', "a value `%name`")?;
                let node = match g.find(&name) {
                    Some(n) if !matches!(g.node(n).op, Op::Weight { .. }) => n,
                    _ => return Err(self.c.error_at(pos, format!("use of undefined value %{name}"))),
                };
                let mut result = 0u32;
                if self.c.peek_char() == Some('#') {
                    self.c.expect('#')?;
                    let r = self.c.usize("a result index")?;
                    result = u32::try_from(r).unwrap_or(u32::MAX);
                }
                let count = g.node(node).results.len();
                if result as usize >= count {
                    return Err(self
                        .c
                        .error_at(pos, format!("%{name} has {count} result(s); #{result} does not exist")));
                }
                Ok(Value { node, result })
            }
            _ => Err(self.c.expected("an operand `%value` or `@weight`")),
        }
    }

    fn statement(&mut self, m: &Module, g: &mut Graph) -> PResult<()> {
        let pos = self.c.pos();
        let name = self.c.name_after_sigil('%', "a result `%name`")?;
        if g.find(&name).is_some() {
            return Err(self.c.error_at(pos, format!("redefinition of %{name}")));
        }
        let mut nresults = 1usize;
        if self.c.peek_char() == Some(':') {
            self.c.expect(':')?;
            nresults = self.c.usize("a result count")?;
        }
        self.c.expect('=')?;
        let op_pos = self.c.pos();
        let op_name = self.c.ident("an op name")?;
        let custom = if op_name == "custom" {
            self.c.expect('<')?;
            let n = self.c.string_literal()?;
            self.c.expect('>')?;
            Some(n)
        } else {
            None
        };
        if op_name == "input" || op_name == "weight" {
            return Err(self.c.error_at(
                op_pos,
                format!("`{op_name}` is not written as a statement: graph arguments and @weights are used directly"),
            ));
        }
        self.c.expect('(')?;
        let mut operands = vec![];
        if !self.c.eat(')') {
            loop {
                operands.push(self.operand(m, g)?);
                if self.c.eat(')') {
                    break;
                }
                self.c.expect(',')?;
            }
        }
        let attrs = if self.c.peek() == Some('{') { self.attr_dict()? } else { AttrMap::new() };
        let op = match custom {
            Some(name) => Op::Custom(CustomOp { name, attrs }),
            None => Op::from_parts(op_name, attrs).map_err(|e| self.c.error_at(op_pos, e))?,
        };
        self.c.expect(':')?;
        let mut results = vec![];
        for i in 0..nresults {
            if i > 0 {
                self.c.expect(',')?;
            }
            results.push(self.tensor_type()?);
        }
        let arity = op.arity();
        if !arity.accepts(operands.len()) {
            return Err(self
                .c
                .error_at(op_pos, format!("`{}` takes {arity} operands, got {}", op.name(), operands.len())));
        }
        let refs: Vec<&TensorType> = operands.iter().filter_map(|v| g.value_type(*v)).collect();
        if let Some(inferred) = op.infer(&refs) {
            let inferred = inferred.map_err(|e| self.c.error_at(op_pos, format!("{}: {e}", op.name())))?;
            if inferred.len() != results.len() {
                return Err(self.c.error_at(
                    op_pos,
                    format!("`{}` has {} result(s), {} declared", op.name(), inferred.len(), results.len()),
                ));
            }
            for (inf, decl) in inferred.iter().zip(&results) {
                if inf.shape != decl.shape || inf.dtype.is_some_and(|d| d != decl.dtype) {
                    let mut want = decl.clone();
                    want.shape = inf.shape.clone();
                    if let Some(d) = inf.dtype {
                        want.dtype = d;
                    }
                    return Err(self.c.error_at(
                        op_pos,
                        format!(
                            "`{}` produces {}, but {} is declared",
                            op.name(),
                            type_string(&want),
                            type_string(decl)
                        ),
                    ));
                }
            }
        }
        g.add_node(&name, op, &operands, results);
        Ok(())
    }
}
