//! Convenience construction: [`Graph::add_op`] infers result types from the op's shape rule,
//! and [`Builder`] adds weights and ops to one graph of a module in a single call each.
//!
//! ```
//! use clio::ir::{Builder, Module, Op, Tensor, TensorType};
//! use clio::ops::Conv2d;
//! let mut m = Module::new("tiny");
//! let mut b = Builder::new(&mut m, "main");
//! let x = b.input("x", TensorType::f32([1, 3, 8, 8]));
//! let w = b.weight("conv.w", Tensor::from_f32([4, 3, 3, 3], vec![0.1; 108]).unwrap());
//! let y = b.op("conv", Op::Conv2d(Conv2d { pads: [1; 4], ..Default::default() }), &[x, w]).unwrap();
//! let y = b.op("relu", Op::Relu, &[y]).unwrap();
//! b.output(y);
//! b.finish();
//! assert!(clio::verify::verify_module(&m).is_ok());
//! ```

use super::{Graph, Module, Op, Tensor, TensorType, Value, Weight};

impl Graph {
    /// Adds a builtin op whose result types follow from its shape rule (unquantized; the
    /// element type is the rule's, or the first operand's when the rule leaves it open).
    /// Returns result 0. Fails with the rule's message on bad operands.
    pub fn add_op(&mut self, name: &str, op: Op, operands: &[Value]) -> Result<Value, String> {
        let arity = op.arity();
        if !arity.accepts(operands.len()) {
            return Err(format!("`{}` takes {arity} operands, got {}", op.name(), operands.len()));
        }
        let types: Vec<TensorType> = operands
            .iter()
            .map(|v| self.value_type(*v).cloned().ok_or_else(|| format!("operand {v:?} does not exist")))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&TensorType> = types.iter().collect();
        let inferred = op
            .infer(&refs)
            .ok_or_else(|| format!("`{}` has no shape rule; use add_node with explicit result types", op.name()))??;
        let results = inferred
            .into_iter()
            .map(|i| {
                TensorType::new(i.shape, i.dtype.unwrap_or(types.first().map(|t| t.dtype).unwrap_or(super::DType::F32)))
            })
            .collect();
        Ok(Value::of(self.add_node(name, op, operands, results)))
    }
}

/// Builds one graph of a module: adds it on [`Builder::finish`] (or drop).
pub struct Builder<'m> {
    module: &'m mut Module,
    graph: Option<Graph>,
}

impl<'m> Builder<'m> {
    /// Starts building graph `name` (replacing any graph of that name on finish).
    pub fn new(module: &'m mut Module, name: &str) -> Self {
        let graph = module.remove_graph(name).unwrap_or_else(|| Graph::new(name));
        Builder { module, graph: Some(graph) }
    }

    fn g(&mut self) -> &mut Graph {
        self.graph.get_or_insert_with(|| Graph::new("main"))
    }

    /// Adds a graph input.
    pub fn input(&mut self, name: &str, ty: TensorType) -> Value {
        self.g().add_input(name, ty)
    }

    /// Adds a module weight (under a fresh name derived from `name`) and returns its value.
    pub fn weight(&mut self, name: &str, data: Tensor) -> Value {
        let name = self.module.add_weight(name, Weight::new(data));
        let ty = self.module.weights()[&name].ty();
        self.g().weight_value(&name, ty)
    }

    /// Adds an op with inferred result types.
    pub fn op(&mut self, name: &str, op: Op, operands: &[Value]) -> Result<Value, String> {
        self.g().add_op(name, op, operands)
    }

    /// Appends a graph output.
    pub fn output(&mut self, v: Value) {
        let g = self.g();
        let mut outs = g.outputs().to_vec();
        outs.push(v);
        g.set_outputs(outs);
    }

    /// The graph being built.
    pub fn graph(&mut self) -> &mut Graph {
        self.g()
    }

    /// Adds the graph to the module.
    pub fn finish(mut self) {
        if let Some(g) = self.graph.take() {
            self.module.add_graph(g);
        }
    }
}

impl Drop for Builder<'_> {
    fn drop(&mut self) {
        if let Some(g) = self.graph.take() {
            self.module.add_graph(g);
        }
    }
}
