//! Reference interpreters.
//!
//! The interpreter is split in two layers, so that the float reference interpreter and the
//! bit-exact integer interpreter are siblings sharing one graph walker:
//!
//! * the **walker** ([`execute`], in `exec.rs`): checks the caller's inputs against the graph
//!   inputs (count, shape, element type), reads weights from the module, executes the nodes
//!   that reach an output in [`Graph::topo_order`] order, checks every node's operands and
//!   results against the declared types (and the op's shape rule) and the element-count limit
//!   ([`crate::Limits`]), frees every value after its last use, and reports each node's result 0
//!   to an optional observer;
//! * an **op evaluator** ([`OpEvaluator`]): computes one node from its operand tensors.
//!   [`FloatEvaluator`] (in `float/`, one file per op family) implements f32 semantics that
//!   follow ONNX / PyTorch; an integer evaluator is a separate implementation of the same trait.
//!
//! ```
//! use clio::ir::{Builder, Module, Op, Tensor, TensorType};
//! let mut m = Module::new("m");
//! let mut b = Builder::new(&mut m, "main");
//! let x = b.input("x", TensorType::f32([2]));
//! let y = b.op("r", Op::Relu, &[x]).unwrap();
//! b.output(y);
//! b.finish();
//! let out = clio::interp::run(&m, "main", &[Tensor::from_f32([2], vec![-1.0, 2.0]).unwrap()]).unwrap();
//! assert_eq!(out[0].as_f32().unwrap(), &[0.0, 2.0]);
//! ```
//!
//! Custom ops fail with an error naming the node and the op unless an implementation is
//! registered for the op name with [`Interpreter::with_custom`].

mod exec;
pub mod float;
pub mod int;
pub(crate) mod shared;

#[cfg(test)]
mod tests;

pub use exec::{check_operands, execute};
pub use float::FloatEvaluator;
pub use int::IntEvaluator;

use crate::ir::{AttrMap, Graph, Module, NodeId, Tensor};
use crate::Limits;

/// What kind of failure an [`InterpError`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InterpErrorKind {
    /// The graph cannot be executed: it does not exist, has a cycle, a dangling output or
    /// operand, or reads a missing weight.
    Graph,
    /// The caller passed the wrong number of inputs.
    InputCount {
        /// Inputs the graph declares.
        expected: usize,
        /// Inputs passed.
        got: usize,
    },
    /// Input `index` does not have the declared shape or element type.
    Input {
        /// Position in the graph's input list.
        index: usize,
    },
    /// A node's operands or results disagree with the declared types or the op's shape rule.
    Type,
    /// A result would exceed [`Limits::max_tensor_elements`].
    Limit,
    /// The op evaluator failed (unsupported operand types, an unregistered custom op, a custom
    /// implementation's error ...).
    Eval,
}

/// Interpreter failure. Prints as one line naming the graph, the node (`%name`) and its op when
/// the failure is at a node, and what went wrong:
/// `interp: graph @main, node %conv1 (conv2d): ...`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("interp: graph @{graph}{}: {message}", node.as_ref().map(|(n, op)| format!(", node %{n} ({op})")).unwrap_or_default())]
pub struct InterpError {
    /// The graph being executed.
    pub graph: String,
    /// Node name and op name, when the failure is at a node.
    pub node: Option<(String, String)>,
    /// Classification of the failure.
    pub kind: InterpErrorKind,
    /// What went wrong.
    pub message: String,
}

impl InterpError {
    /// An error at graph level.
    pub fn graph_level(graph: &str, kind: InterpErrorKind, message: impl Into<String>) -> InterpError {
        InterpError { graph: graph.to_string(), node: None, kind, message: message.into() }
    }

    /// An error at node `id` of `graph`.
    pub fn at_node(graph: &Graph, id: NodeId, kind: InterpErrorKind, message: impl Into<String>) -> InterpError {
        let node = graph.get(id).map(|n| (n.name().to_string(), n.op.name().to_string()));
        InterpError { graph: graph.name().to_string(), node, kind, message: message.into() }
    }
}

/// Computes one node from its operand tensors. The walker ([`execute`]) handles `input` and
/// `weight` nodes itself and calls this for every other node, with `operands` in operand-slot
/// order and already checked by [`check_operands`]; the returned tensors (one per declared
/// result) are checked against the declared result types afterwards.
pub trait OpEvaluator {
    /// Evaluates `node` of `graph`. Errors are a one-line description; the walker adds the
    /// graph, node and op.
    fn eval(&self, graph: &Graph, node: NodeId, operands: &[&Tensor]) -> Result<Vec<Tensor>, String>;
}

/// A callback that sees a node's result 0 (see [`Interpreter::run_observed`]).
pub type NodeObserver<'a> = dyn FnMut(NodeId, &Tensor) + 'a;

/// An implementation of a custom op: operands and the op's attributes in, one tensor per
/// declared result out.
pub type CustomOpFn = Box<dyn Fn(&[&Tensor], &AttrMap) -> Result<Vec<Tensor>, String> + Send + Sync>;

/// An interpreter bound to one graph of a module.
///
/// ```
/// # use clio::ir::{Builder, Module, Op, Tensor, TensorType};
/// # let mut m = Module::new("m");
/// # let mut b = Builder::new(&mut m, "main");
/// # let x = b.input("x", TensorType::f32([2]));
/// # let y = b.op("r", Op::Relu, &[x]).unwrap();
/// # b.output(y);
/// # b.finish();
/// use clio::interp::Interpreter;
/// let interp = Interpreter::new(&m, "main").unwrap()
///     .with_custom("my.double", |ins, _attrs| {
///         let x = ins[0];
///         let v = x.as_f32().ok_or("f32 only")?.iter().map(|v| v * 2.0).collect();
///         Ok(vec![Tensor::from_f32(x.shape().to_vec(), v).map_err(|e| e.to_string())?])
///     });
/// let mut seen = 0;
/// let out = interp.run_observed(&[Tensor::from_f32([2], vec![-1.0, 2.0]).unwrap()], &mut |_, _| seen += 1).unwrap();
/// assert_eq!(out[0].as_f32().unwrap(), &[0.0, 2.0]);
/// assert_eq!(seen, 2); // the input and the relu
/// ```
pub struct Interpreter<'m, E: OpEvaluator = FloatEvaluator> {
    module: &'m Module,
    graph: &'m Graph,
    plan: exec::Plan,
    evaluator: E,
    limits: Limits,
}

impl<'m> Interpreter<'m, FloatEvaluator> {
    /// A float interpreter for graph `graph` of `module`. Fails if the graph does not exist or
    /// cannot be scheduled (a cycle, a dangling output or operand).
    pub fn new(module: &'m Module, graph: &str) -> Result<Self, InterpError> {
        Interpreter::with_evaluator(module, graph, FloatEvaluator::new())
    }

    /// Registers the implementation of custom op `name` (replacing any earlier one).
    pub fn with_custom(
        mut self,
        name: impl Into<String>,
        f: impl Fn(&[&Tensor], &AttrMap) -> Result<Vec<Tensor>, String> + Send + Sync + 'static,
    ) -> Self {
        self.evaluator.register(name, Box::new(f));
        self
    }
}

impl<'m, E: OpEvaluator> Interpreter<'m, E> {
    /// An interpreter for graph `graph` of `module` with any op evaluator.
    pub fn with_evaluator(module: &'m Module, graph: &str, evaluator: E) -> Result<Self, InterpError> {
        let g = module.graph(graph).ok_or_else(|| {
            InterpError::graph_level(
                graph,
                InterpErrorKind::Graph,
                format!("module @{} has no graph @{graph} (graphs: {})", module.name, module.graph_names().join(", ")),
            )
        })?;
        let plan = exec::Plan::new(g)?;
        Ok(Interpreter { module, graph: g, plan, evaluator, limits: Limits::default() })
    }

    /// Replaces the resource limits (default: [`Limits::default`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The graph this interpreter runs.
    pub fn graph(&self) -> &'m Graph {
        self.graph
    }

    /// The op evaluator.
    pub fn evaluator(&self) -> &E {
        &self.evaluator
    }

    /// Runs the graph: one tensor per graph input in, one per graph output out.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
        exec::execute_plan(self.module, self.graph, &self.plan, inputs, &self.evaluator, &self.limits, None)
    }

    /// Runs the graph and reports result 0 of every executed node (inputs and weight reads
    /// included), in execution order, to `observer`. Nodes that no output depends on are not
    /// executed and not reported.
    pub fn run_observed(&self, inputs: &[Tensor], observer: &mut NodeObserver<'_>) -> Result<Vec<Tensor>, InterpError> {
        exec::execute_plan(self.module, self.graph, &self.plan, inputs, &self.evaluator, &self.limits, Some(observer))
    }
}

/// Runs graph `graph` of a quantized `module` with the bit-exact integer evaluator
/// ([`IntEvaluator`]) and default limits.
pub fn run_int(module: &Module, graph: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    Interpreter::with_evaluator(module, graph, IntEvaluator::new())?.run(inputs)
}

/// Runs graph `graph` of `module` with float semantics and default limits.
pub fn run(module: &Module, graph: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    Interpreter::new(module, graph)?.run(inputs)
}
