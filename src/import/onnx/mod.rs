//! ONNX import from the raw protobuf (`tract_onnx::pb::ModelProto`), never from tract's typed
//! model: BatchNormalization, residual Add and 1x1 convolutions stay themselves, and every
//! node, initializer and input keeps its source name.
//!
//! The importer walks the nodes in topological order (only those the graph outputs need),
//! keeping for every ONNX value either an IR value or a constant ([`konst::Konst`]). Constants
//! fold through the shape-computing ops; a float constant read by a real op becomes a module
//! weight named after the ONNX value.

// Decodes user models: no panicking indexing or slicing (see docs/robustness.md).
#![deny(clippy::indexing_slicing)]

mod konst;
mod ops;
mod proto;

pub(crate) use ops::SUPPORTED_OPS;

use super::{ImportError, ImportErrorKind, ImportOptions};
use crate::ir::{all_finite, Attr, Graph, Module, Op, Tensor, TensorType, Value, Weight};
use konst::{check_limit, safe_count, KData, KResult, Konst};
use proto::{dtype_name, TensorDecoder};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;
use tract_onnx::pb::{ModelProto, NodeProto, TensorProto, ValueInfoProto};

/// An ONNX value during import.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    /// Computed at run time: an IR value.
    Dyn(Value),
    /// Known at import time.
    Const(Rc<Konst>),
}

/// Decodes ONNX protobuf bytes (through tract-onnx's prost types).
pub(crate) fn decode_model(bytes: &[u8], file: &str) -> Result<ModelProto, ImportError> {
    use tract_onnx::prelude::Framework;
    let mut r = bytes;
    tract_onnx::onnx().proto_model_for_read(&mut r).map_err(|e| {
        ImportError::new(
            file,
            ImportErrorKind::Malformed {
                message: format!("cannot decode the ONNX protobuf ({e:#}); is the file truncated or not ONNX?"),
            },
        )
    })
}

/// Imports a decoded model. `name` is the module name, `file` the name used in errors and in
/// the `source` attribute.
pub(crate) fn import_model(
    model: ModelProto,
    file: &str,
    name: &str,
    base_dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Module, ImportError> {
    let mut imp = Importer::new(file, name, base_dir, opts);
    imp.run(model)?;
    let module = imp.module;
    crate::verify::verify_module(&module).map_err(|e| ImportError::new(file, ImportErrorKind::Verify(e)))?;
    Ok(module)
}

pub(crate) struct Importer<'a> {
    file: String,
    opset: i64,
    opts: &'a ImportOptions,
    dec: TensorDecoder<'a>,
    module: Module,
    graph: Graph,
    vals: HashMap<String, Val>,
    /// Initializers not decoded yet (decoded on first read, then removed).
    inits: HashMap<String, TensorProto>,
    /// ONNX value name -> module weight name, for constants already turned into weights.
    weights: HashMap<String, String>,
    /// How many times each value is read (node inputs and graph outputs of live nodes).
    uses: HashMap<String, usize>,
}

fn malformed(message: impl Into<String>) -> ImportErrorKind {
    ImportErrorKind::Malformed { message: message.into() }
}

impl<'a> Importer<'a> {
    fn new(file: &str, name: &str, base_dir: Option<&'a Path>, opts: &'a ImportOptions) -> Self {
        Importer {
            file: file.to_string(),
            opset: 0,
            opts,
            dec: TensorDecoder { base_dir, opts, zero_filled: Vec::new() },
            module: Module::new(name),
            graph: Graph::new("main"),
            vals: HashMap::new(),
            inits: HashMap::new(),
            weights: HashMap::new(),
            uses: HashMap::new(),
        }
    }

    fn err(&self, kind: ImportErrorKind) -> ImportError {
        ImportError::new(self.file.clone(), kind)
    }

    fn limit(&self) -> usize {
        self.opts.limits.max_tensor_elements
    }

    fn run(&mut self, model: ModelProto) -> Result<(), ImportError> {
        let ModelProto { opset_import, producer_name, producer_version, ir_version, graph, .. } = model;
        let graph = graph.ok_or_else(|| self.err(malformed("the model has no graph")))?;
        self.opset = opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .ok_or_else(|| self.err(malformed("the model imports no opset of the default domain `ai.onnx`")))?;

        let tract_onnx::pb::GraphProto { node: nodes, initializer, sparse_initializer, input, output, .. } = graph;
        if let Some(s) = sparse_initializer.first() {
            let name = s.values.as_ref().map(|v| v.name.clone()).unwrap_or_default();
            return Err(self.err(ImportErrorKind::Unsupported {
                message: format!("sparse initializer `{name}` is not supported"),
            }));
        }
        for t in initializer {
            if t.name.is_empty() {
                return Err(self.err(malformed("an initializer has no name")));
            }
            if self.inits.contains_key(&t.name) {
                return Err(self.err(malformed(format!("initializer `{}` is defined twice", t.name))));
            }
            self.inits.insert(t.name.clone(), t);
        }

        // Graph inputs (initializers listed as inputs are weights).
        let real_inputs: Vec<&ValueInfoProto> = input.iter().filter(|i| !self.inits.contains_key(&i.name)).collect();
        self.add_inputs(&real_inputs)?;

        // Live nodes in topological order.
        let order = self.schedule(&nodes, &output)?;
        for i in &order {
            if let Some(n) = nodes.get(*i) {
                for inp in n.input.iter().filter(|s| !s.is_empty()) {
                    *self.uses.entry(inp.clone()).or_default() += 1;
                }
            }
        }
        for o in &output {
            *self.uses.entry(o.name.clone()).or_default() += 1;
        }

        for i in order {
            let Some(node) = nodes.get(i) else { continue };
            let name = node_name(node, i);
            let outs = self.convert_node(node, &name).map_err(|k| self.err(k).at_node(&name, &node.op_type))?;
            for (o, v) in node.output.iter().zip(outs) {
                if !o.is_empty() {
                    self.vals.insert(o.clone(), v);
                }
            }
        }

        // Outputs.
        let mut outs = Vec::new();
        for o in &output {
            let v = self.operand(&o.name).map_err(|k| self.err(k))?;
            self.check_declared(o, v)?;
            outs.push(v);
        }
        if outs.is_empty() {
            return Err(self.err(malformed("the graph has no outputs")));
        }
        self.graph.set_outputs(outs);

        // Module metadata.
        let attrs = &mut self.module.attrs;
        let source = Path::new(&self.file).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        attrs.insert("source".into(), Attr::Str(source));
        attrs.insert("format".into(), Attr::Str("onnx".into()));
        let producer = format!("{producer_name} {producer_version}").trim().to_string();
        if !producer.is_empty() {
            attrs.insert("producer".into(), Attr::Str(producer));
        }
        attrs.insert("opset".into(), Attr::Int(self.opset));
        attrs.insert("ir_version".into(), Attr::Int(ir_version));
        if !self.opts.input_shapes.is_empty() {
            let s: Vec<String> = self.opts.input_shapes.iter().map(|s| s.to_string()).collect();
            attrs.insert("input_shapes".into(), Attr::Str(s.join(",")));
        }
        if !self.dec.zero_filled.is_empty() {
            attrs.insert(
                "external_data".into(),
                Attr::Str(format!("missing: {} initializers zero-filled", self.dec.zero_filled.len())),
            );
        }
        let g = std::mem::take(&mut self.graph);
        self.module.add_graph(g);
        Ok(())
    }

    /// Adds the graph inputs, fixing symbolic dimensions from the options.
    fn add_inputs(&mut self, inputs: &[&ValueInfoProto]) -> Result<(), ImportError> {
        let mut given: Vec<Option<&super::InputShape>> = vec![None; inputs.len()];
        for s in &self.opts.input_shapes {
            let idx = match &s.name {
                None => {
                    if inputs.is_empty() {
                        return Err(self.err(ImportErrorKind::InputShape {
                            message: format!("shape {s} given but the model has no inputs"),
                        }));
                    }
                    0
                }
                Some(n) => inputs.iter().position(|i| &i.name == n).ok_or_else(|| {
                    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
                    self.err(ImportErrorKind::InputShape {
                        message: format!("shape {s} names no graph input (inputs: {})", names.join(", ")),
                    })
                })?,
            };
            // `idx` indexes `inputs`, and `given` has one slot per input.
            let (Some(slot), Some(input)) = (given.get_mut(idx), inputs.get(idx)) else {
                return Err(
                    self.err(ImportErrorKind::InputShape { message: format!("shape {s} names no graph input") })
                );
            };
            if slot.replace(s).is_some() {
                return Err(self.err(ImportErrorKind::InputShape {
                    message: format!("two shapes given for input `{}`", input.name),
                }));
            }
        }
        for (inp, given) in inputs.iter().zip(given) {
            let name = &inp.name;
            let tt = match inp.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                Some(tract_onnx::pb::type_proto::Value::TensorType(t)) => t,
                None => return Err(self.err(malformed(format!("graph input `{name}` has no tensor type")))),
            };
            if tt.elem_type != 1 {
                return Err(self.err(ImportErrorKind::DType {
                    tensor: name.clone(),
                    dtype: dtype_name(tt.elem_type),
                    message: "graph inputs must be float32".into(),
                }));
            }
            use tract_onnx::pb::tensor_shape_proto::dimension::Value as D;
            let declared: Option<Vec<Result<usize, String>>> = tt.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(D::DimValue(v)) if *v >= 0 => Ok(*v as usize),
                        Some(D::DimValue(v)) => Err(v.to_string()),
                        Some(D::DimParam(p)) if !p.is_empty() => Err(p.clone()),
                        _ => Err("?".to_string()),
                    })
                    .collect()
            });
            let shape: Vec<usize> = match (declared, given) {
                (None, None) => {
                    return Err(self.err(ImportErrorKind::InputShape {
                        message: format!(
                            "input `{name}` declares no shape; give one with --input-shape {name}=1x3x224x224"
                        ),
                    }))
                }
                (None, Some(g)) => g.shape.clone(),
                (Some(d), None) => {
                    if let Some((index, Err(p))) = d.iter().enumerate().find(|(_, x)| x.is_err()) {
                        let declared =
                            d.iter().map(|x| x.as_ref().map(|v| v.to_string()).unwrap_or_else(|p| p.clone())).collect();
                        return Err(self.err(ImportErrorKind::SymbolicDim {
                            input: name.clone(),
                            index,
                            dim: p.clone(),
                            declared,
                        }));
                    }
                    d.into_iter().flatten().collect()
                }
                (Some(d), Some(g)) => {
                    if d.len() != g.shape.len() {
                        return Err(self.err(ImportErrorKind::InputShape {
                            message: format!(
                                "input `{name}` has rank {} but the given shape {} has rank {}",
                                d.len(),
                                g.dims_string(),
                                g.shape.len()
                            ),
                        }));
                    }
                    for (i, (dd, gd)) in d.iter().zip(&g.shape).enumerate() {
                        if let Ok(v) = dd {
                            if v != gd {
                                return Err(self.err(ImportErrorKind::InputShape {
                                    message: format!(
                                        "input `{name}` has fixed dimension {v} at index {i}, the given shape {} says {gd}",
                                        g.dims_string()
                                    ),
                                }));
                            }
                        }
                    }
                    g.shape.clone()
                }
            };
            check_limit(&format!("input `{name}` (shape {shape:?})"), safe_count(&shape), self.limit())
                .map_err(|k| self.err(k))?;
            let v = self.graph.add_input(name, TensorType::f32(shape));
            self.vals.insert(name.clone(), Val::Dyn(v));
        }
        Ok(())
    }

    /// The nodes the graph outputs depend on, in a topological order that keeps the file's
    /// order where it can.
    fn schedule(&self, nodes: &[NodeProto], outputs: &[ValueInfoProto]) -> Result<Vec<usize>, ImportError> {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                if self.vals.contains_key(o) || self.inits.contains_key(o) || producer.insert(o, i).is_some() {
                    return Err(self
                        .err(malformed(format!("value `{o}` is defined twice")))
                        .at_node(&node_name(n, i), &n.op_type));
                }
            }
        }
        let defined = |s: &str| self.vals.contains_key(s) || self.inits.contains_key(s);
        // Liveness: walk back from the outputs.
        let mut live = vec![false; nodes.len()];
        let mut stack: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
        let mut seen: HashSet<&str> = HashSet::new();
        while let Some(v) = stack.pop() {
            if !seen.insert(v) {
                continue;
            }
            match producer.get(v) {
                Some(&i) => {
                    // `producer` holds indices of `nodes`, and `live` has one entry per node.
                    if let (Some(l), Some(n)) = (live.get_mut(i), nodes.get(i)) {
                        if !*l {
                            *l = true;
                            stack.extend(n.input.iter().filter(|s| !s.is_empty()).map(|s| s.as_str()));
                        }
                    }
                }
                None if defined(v) => {}
                None => {
                    let user = nodes.iter().enumerate().find(|(_, n)| n.input.iter().any(|s| s == v));
                    let e = self.err(malformed(format!("value `{v}` is read but never defined")));
                    return Err(match user {
                        Some((i, n)) => e.at_node(&node_name(n, i), &n.op_type),
                        None => e,
                    });
                }
            }
        }
        // Kahn's algorithm over live nodes, smallest index first. `deps` and `users` have one
        // entry per node and every index below comes from `nodes` or `producer`.
        let is_live = |i: usize| live.get(i).copied().unwrap_or(false);
        let mut deps = vec![0usize; nodes.len()];
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for ((i, n), d) in nodes.iter().enumerate().zip(deps.iter_mut()).filter(|((i, _), _)| is_live(*i)) {
            let mut ps: Vec<usize> = n.input.iter().filter_map(|s| producer.get(s.as_str()).copied()).collect();
            ps.sort_unstable();
            ps.dedup();
            *d = ps.len();
            for p in ps {
                if let Some(u) = users.get_mut(p) {
                    u.push(i);
                }
            }
        }
        let mut ready: BTreeSet<usize> =
            deps.iter().enumerate().filter(|(i, d)| is_live(*i) && **d == 0).map(|(i, _)| i).collect();
        let mut order = Vec::new();
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for u in users.get(i).into_iter().flatten() {
                if let Some(d) = deps.get_mut(*u) {
                    *d = d.saturating_sub(1);
                    if *d == 0 {
                        ready.insert(*u);
                    }
                }
            }
        }
        if order.len() != live.iter().filter(|l| **l).count() {
            let stuck = deps.iter().enumerate().position(|(i, d)| is_live(i) && *d > 0).unwrap_or(0);
            let e = self.err(malformed("the graph has a cycle"));
            return Err(match nodes.get(stuck) {
                Some(n) => e.at_node(&node_name(n, stuck), &n.op_type),
                None => e,
            });
        }
        Ok(order)
    }

    /// Checks a graph output against its declared shape (fixed dimensions only).
    fn check_declared(&self, o: &ValueInfoProto, v: Value) -> Result<(), ImportError> {
        use tract_onnx::pb::tensor_shape_proto::dimension::Value as D;
        let Some(tract_onnx::pb::type_proto::Value::TensorType(tt)) = o.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Ok(());
        };
        let Some(shape) = &tt.shape else { return Ok(()) };
        let got = self.graph.value_type(v).map(|t| t.shape.clone()).unwrap_or_default();
        let fits = shape.dim.len() == got.len()
            && shape.dim.iter().zip(&got).all(|(d, g)| match &d.value {
                Some(D::DimValue(x)) if *x > 0 => *x as usize == *g,
                _ => true,
            });
        if !fits {
            let decl: Vec<String> = shape
                .dim
                .iter()
                .map(|d| match &d.value {
                    Some(D::DimValue(x)) => x.to_string(),
                    Some(D::DimParam(p)) => p.clone(),
                    None => "?".into(),
                })
                .collect();
            return Err(self.err(ImportErrorKind::Unsupported {
                message: format!(
                    "graph output `{}` is declared with shape [{}] but import computed {got:?}",
                    o.name,
                    decl.join(", ")
                ),
            }));
        }
        Ok(())
    }

    // ---- values ------------------------------------------------------------------------

    /// The value called `name` (decoding an initializer on first read).
    pub(crate) fn val(&mut self, name: &str) -> KResult<Val> {
        if let Some(v) = self.vals.get(name) {
            return Ok(v.clone());
        }
        if let Some(t) = self.inits.remove(name) {
            let k = self.dec.decode(&t, name)?;
            drop(t);
            let v = Val::Const(Rc::new(k));
            self.vals.insert(name.to_string(), v.clone());
            return Ok(v);
        }
        if let Some(w) = self.weights.get(name).cloned() {
            // A constant whose data moved into a weight.
            let ty = self.module.weight(&w).map(|x| x.ty()).ok_or_else(|| malformed("weight table out of sync"))?;
            return Ok(Val::Dyn(self.graph.weight_value(&w, ty)));
        }
        Err(ImportErrorKind::Unsupported {
            message: format!(
                "value `{name}` is not available (it is an optional output that clio does not produce, such as a \
                 Dropout mask, MaxPool indices or BatchNormalization training statistics)"
            ),
        })
    }

    /// The value called `name` as an IR operand: a constant becomes a module weight (float32
    /// only) named after the ONNX value.
    pub(crate) fn operand(&mut self, name: &str) -> KResult<Value> {
        match self.val(name)? {
            Val::Dyn(v) => Ok(v),
            Val::Const(k) => self.materialize(name, k),
        }
    }

    fn materialize(&mut self, name: &str, k: Rc<Konst>) -> KResult<Value> {
        if let Some(w) = self.weights.get(name) {
            let w = w.clone();
            let ty = self.module.weight(&w).map(|x| x.ty()).ok_or_else(|| malformed("weight table out of sync"))?;
            return Ok(self.graph.weight_value(&w, ty));
        }
        if let KData::I64(_) = k.data {
            return Err(ImportErrorKind::DType {
                tensor: name.to_string(),
                dtype: "INT64".into(),
                message: "it is used as data of a float op; integer constants may only feed shape computations \
                          (clio imports float32 models)"
                    .into(),
            });
        }
        // Move the data out when this is its only reader, else copy.
        let single = self.uses.get(name).copied().unwrap_or(0) <= 1;
        let konst = if single {
            drop(k);
            match self.vals.remove(name) {
                Some(Val::Const(rc)) => Rc::try_unwrap(rc).unwrap_or_else(|rc| (*rc).clone()),
                _ => return Err(malformed(format!("constant `{name}` vanished"))),
            }
        } else {
            (*k).clone()
        };
        let Konst { shape, data } = konst;
        if shape.contains(&0) {
            return Err(ImportErrorKind::Unsupported {
                message: format!(
                    "constant `{name}` of shape {shape:?} is empty and is used as data; empty tensors are not supported"
                ),
            });
        }
        let KData::F32(v) = data else { return Err(malformed("constant changed type")) };
        let first_bad = || v.iter().enumerate().find(|(_, x)| !x.is_finite());
        if let Some((i, x)) = (!all_finite(&v)).then(first_bad).flatten() {
            return Err(malformed(format!("tensor `{name}`: element {i} is {x} (weights must be finite)")));
        }
        let tensor = Tensor::from_f32(shape, v).map_err(|e| malformed(format!("constant `{name}`: {e}")))?;
        // Checked finite just above: the verifier need not scan it again.
        Ok(self.add_checked_weight(name, Weight::new(tensor).known_finite(), Some(name)))
    }

    /// Adds a module weight (fresh name derived from `name`) and returns its graph value;
    /// `key` records it as the weight of that ONNX value.
    pub(crate) fn add_weight(&mut self, name: &str, tensor: Tensor, key: Option<&str>) -> Value {
        self.add_checked_weight(name, Weight::new(tensor), key)
    }

    fn add_checked_weight(&mut self, name: &str, weight: Weight, key: Option<&str>) -> Value {
        let w = self.module.add_weight(name, weight);
        let ty = self.module.weight(&w).map(|x| x.ty()).unwrap_or_else(|| TensorType::f32(vec![]));
        if let Some(k) = key {
            self.weights.insert(k.to_string(), w.clone());
        }
        self.graph.weight_value(&w, ty)
    }

    /// Adds an IR op, checking the result size against the limit.
    pub(crate) fn emit(&mut self, name: &str, op: Op, operands: &[Value]) -> KResult<Value> {
        let op_name = op.name().to_string();
        let v = self
            .graph
            .add_op(name, op, operands)
            .map_err(|m| ImportErrorKind::Unsupported { message: format!("cannot build `{op_name}`: {m}") })?;
        let shape = self.shape(v);
        check_limit(&format!("result of `{op_name}` (shape {shape:?})"), safe_count(&shape), self.limit())?;
        Ok(v)
    }

    /// The static shape of an IR value.
    pub(crate) fn shape(&self, v: Value) -> Vec<usize> {
        self.graph.value_type(v).map(|t| t.shape.clone()).unwrap_or_default()
    }

    /// The shape of any value.
    pub(crate) fn val_shape(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::Dyn(x) => self.shape(*x),
            Val::Const(k) => k.shape.clone(),
        }
    }

    /// How many times a value is read.
    pub(crate) fn use_count(&self, name: &str) -> usize {
        self.uses.get(name).copied().unwrap_or(0)
    }
}

/// The IR name of a node: its ONNX name, else its first output, else `<op_type>_<index>`.
fn node_name(n: &NodeProto, index: usize) -> String {
    if !n.name.is_empty() {
        return n.name.clone();
    }
    match n.output.iter().find(|o| !o.is_empty()) {
        Some(o) => o.clone(),
        None => format!("{}_{index}", n.op_type),
    }
}
