//! The graph walker shared by every interpreter: input checks, weight reads, execution in
//! topological order, per-node type checks, element-count limits and freeing values after
//! their last use.

use super::{InterpError, InterpErrorKind, NodeObserver, OpEvaluator};
use crate::ir::{Graph, Module, NodeId, Op, Tensor, TensorType, Value};
use crate::text::type_string;
use crate::Limits;
use std::collections::{HashMap, HashSet};

/// A value held by the walker: borrowed (graph inputs, weights) or computed.
enum Slot<'a> {
    Borrowed(&'a Tensor),
    Owned(Tensor),
}

impl Slot<'_> {
    fn get(&self) -> &Tensor {
        match self {
            Slot::Borrowed(t) => t,
            Slot::Owned(t) => t,
        }
    }
}

/// `shape [1, 3, 8, 8] (f32)`, for messages about actual tensors.
pub(crate) fn describe(t: &Tensor) -> String {
    format!("shape {:?} ({})", t.shape(), t.dtype())
}

fn matches_type(t: &Tensor, ty: &TensorType) -> bool {
    t.shape() == ty.shape.as_slice() && t.dtype() == ty.dtype
}

/// Checks `operands` of `node` before evaluation: the operand count and slots, each operand's
/// shape and element type against the declared type of the value it reads, and, for builtin
/// ops, the op's shape rule applied to the operands against the node's declared result types.
/// After this check, kernels may rely on every invariant of the op's shape rule.
pub fn check_operands(graph: &Graph, node: NodeId, operands: &[&Tensor]) -> Result<(), String> {
    let n = graph.get(node).ok_or_else(|| format!("node {node} does not exist"))?;
    let arity = n.op.arity();
    if !arity.accepts(operands.len()) {
        return Err(format!("takes {arity} operands, got {}", operands.len()));
    }
    let values = graph.operands(node);
    if values.len() != operands.len() {
        return Err(format!("the graph wires {} operands, got {}", values.len(), operands.len()));
    }
    let mut types = Vec::with_capacity(values.len());
    for (i, (v, t)) in values.iter().zip(operands).enumerate() {
        let decl = graph.value_type(*v).ok_or_else(|| format!("operand {i} reads a result that does not exist"))?;
        if !matches_type(t, decl) {
            return Err(format!("operand {i} is declared {} but got {}", type_string(decl), describe(t)));
        }
        types.push(TensorType { shape: t.shape().to_vec(), dtype: t.dtype(), quant: decl.quant.clone() });
    }
    // `Concat::infer` indexes the axis of rank-0 operands; reject them before calling it.
    if matches!(n.op, Op::Concat(_)) && types.iter().any(|t| t.shape.is_empty()) {
        return Err("concat operands must have rank >= 1".into());
    }
    let refs: Vec<&TensorType> = types.iter().collect();
    if let Some(inferred) = n.op.infer(&refs) {
        let inferred = inferred?;
        if inferred.len() != n.results.len() {
            return Err(format!("declares {} results, the op produces {}", n.results.len(), inferred.len()));
        }
        for (i, (inf, decl)) in inferred.iter().zip(&n.results).enumerate() {
            if inf.shape != decl.shape || inf.dtype.is_some_and(|d| d != decl.dtype) {
                return Err(format!(
                    "result {i} is declared {} but the op produces shape {:?}{}",
                    type_string(decl),
                    inf.shape,
                    inf.dtype.map(|d| format!(" of {d}")).unwrap_or_default()
                ));
            }
        }
    }
    Ok(())
}

/// The execution plan of a graph: live nodes in topological order and how often each value
/// is read. Built once per [`crate::interp::Interpreter`].
pub(crate) struct Plan {
    order: Vec<NodeId>,
    /// Remaining reads per (node index, result).
    uses: HashMap<Value, usize>,
    /// Operand values per node, in slot order.
    operands: HashMap<NodeId, Vec<Value>>,
}

impl Plan {
    /// Plans `graph`: fails on cycles, dangling outputs and malformed operand lists.
    pub(crate) fn new(graph: &Graph) -> Result<Plan, InterpError> {
        plan(graph)
    }
}

fn plan(graph: &Graph) -> Result<Plan, InterpError> {
    let gerr = |m: String| InterpError::graph_level(graph.name(), InterpErrorKind::Graph, m);
    if graph.outputs().is_empty() {
        return Err(gerr("the graph has no outputs".into()));
    }
    for (i, v) in graph.outputs().iter().enumerate() {
        if graph.value_type(*v).is_none() {
            return Err(gerr(format!("output {i} refers to a removed node or a missing result")));
        }
    }
    let order = graph.topo_order().map_err(|c| {
        InterpError::at_node(graph, c.0, InterpErrorKind::Graph, "the graph has a cycle through this node")
    })?;
    // Live nodes: those some output depends on.
    let mut live: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = graph.outputs().iter().map(|v| v.node).collect();
    while let Some(n) = stack.pop() {
        if live.insert(n) {
            stack.extend(graph.producers(n));
        }
    }
    let order: Vec<NodeId> = order.into_iter().filter(|n| live.contains(n)).collect();
    let mut uses: HashMap<Value, usize> = HashMap::new();
    let mut operands = HashMap::new();
    for &id in &order {
        let slots = graph.operand_slots(id);
        if slots.iter().enumerate().any(|(i, s)| *s as usize != i) {
            return Err(InterpError::at_node(
                graph,
                id,
                InterpErrorKind::Graph,
                format!("operand slots {slots:?} are not 0..{}", slots.len()),
            ));
        }
        let vals = graph.operands(id);
        for (i, v) in vals.iter().enumerate() {
            if graph.value_type(*v).is_none() {
                return Err(InterpError::at_node(
                    graph,
                    id,
                    InterpErrorKind::Graph,
                    format!("operand {i} reads result #{} that does not exist", v.result),
                ));
            }
            *uses.entry(*v).or_default() += 1;
        }
        operands.insert(id, vals);
    }
    Ok(Plan { order, uses, operands })
}

/// Runs `graph` of `module` on `inputs` with `evaluator`, returning one tensor per graph
/// output. `observer`, when given, sees result 0 of every executed node in execution order.
/// Nodes no output depends on are skipped.
pub fn execute(
    module: &Module,
    graph: &Graph,
    inputs: &[Tensor],
    evaluator: &dyn OpEvaluator,
    limits: &Limits,
    observer: Option<&mut NodeObserver<'_>>,
) -> Result<Vec<Tensor>, InterpError> {
    let plan = Plan::new(graph)?;
    execute_plan(module, graph, &plan, inputs, evaluator, limits, observer)
}

/// [`execute`] with a prebuilt plan of `graph`.
pub(crate) fn execute_plan(
    module: &Module,
    graph: &Graph,
    plan: &Plan,
    inputs: &[Tensor],
    evaluator: &dyn OpEvaluator,
    limits: &Limits,
    mut observer: Option<&mut NodeObserver<'_>>,
) -> Result<Vec<Tensor>, InterpError> {
    let gname = graph.name();
    if inputs.len() != graph.inputs().len() {
        return Err(InterpError::graph_level(
            gname,
            InterpErrorKind::InputCount { expected: graph.inputs().len(), got: inputs.len() },
            format!("the graph takes {} inputs, got {}", graph.inputs().len(), inputs.len()),
        ));
    }
    let mut input_pos: HashMap<NodeId, usize> = HashMap::new();
    for (i, (&id, t)) in graph.inputs().iter().zip(inputs).enumerate() {
        let node = match graph.get(id) {
            Some(n) if matches!(n.op, Op::Input) && n.results.len() == 1 => n,
            _ => {
                return Err(InterpError::graph_level(
                    gname,
                    InterpErrorKind::Graph,
                    format!("input list entry {i} is not an input node"),
                ))
            }
        };
        let decl = node.ty();
        if !matches_type(t, decl) {
            return Err(InterpError::at_node(
                graph,
                id,
                InterpErrorKind::Input { index: i },
                format!("input {i}: expected shape {:?} ({}), got {}", decl.shape, type_string(decl), describe(t)),
            ));
        }
        input_pos.insert(id, i);
    }
    let (order, operands) = (&plan.order, &plan.operands);
    let mut uses = plan.uses.clone();
    // Graph outputs stay alive until the end.
    for v in graph.outputs() {
        *uses.entry(*v).or_default() += 1;
    }
    let mut values: HashMap<Value, Slot<'_>> = HashMap::new();
    let at = |id: NodeId, kind: InterpErrorKind, m: String| InterpError::at_node(graph, id, kind, m);

    for &id in order {
        let Some(node) = graph.get(id) else { continue };
        let results: Vec<Slot<'_>> = match &node.op {
            Op::Input => {
                let Some(t) = input_pos.get(&id).and_then(|p| inputs.get(*p)) else {
                    return Err(at(
                        id,
                        InterpErrorKind::Graph,
                        "input node missing from the graph's input list".into(),
                    ));
                };
                vec![Slot::Borrowed(t)]
            }
            Op::Weight { name } => {
                let w = module
                    .weight(name)
                    .ok_or_else(|| at(id, InterpErrorKind::Graph, format!("reads undeclared weight @{name}")))?;
                match node.results.as_slice() {
                    [decl] if matches_type(w.data(), decl) => {}
                    _ => {
                        return Err(at(
                            id,
                            InterpErrorKind::Type,
                            format!(
                                "weight @{name} has {}, the node declares {}",
                                describe(w.data()),
                                node.results.iter().map(type_string).collect::<Vec<_>>().join(", ")
                            ),
                        ))
                    }
                }
                vec![Slot::Borrowed(w.data())]
            }
            _ => {
                let vals = operands.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                let mut ops: Vec<&Tensor> = Vec::with_capacity(vals.len());
                for (i, v) in vals.iter().enumerate() {
                    let t = values.get(v).ok_or_else(|| {
                        at(id, InterpErrorKind::Graph, format!("operand {i} was not computed (internal error)"))
                    })?;
                    ops.push(t.get());
                }
                check_operands(graph, id, &ops).map_err(|m| at(id, InterpErrorKind::Type, m))?;
                for (i, r) in node.results.iter().enumerate() {
                    match r.num_elements() {
                        Some(n) if n <= limits.max_tensor_elements => {}
                        _ => {
                            return Err(at(
                                id,
                                InterpErrorKind::Limit,
                                format!(
                                    "result {i} ({}) exceeds the limit of {} elements per tensor",
                                    type_string(r),
                                    limits.max_tensor_elements
                                ),
                            ))
                        }
                    }
                }
                let out = evaluator.eval(graph, id, &ops).map_err(|m| at(id, InterpErrorKind::Eval, m))?;
                if out.len() != node.results.len() {
                    return Err(at(
                        id,
                        InterpErrorKind::Type,
                        format!("produced {} results, the node declares {}", out.len(), node.results.len()),
                    ));
                }
                for (i, (t, decl)) in out.iter().zip(&node.results).enumerate() {
                    if !matches_type(t, decl) {
                        return Err(at(
                            id,
                            InterpErrorKind::Type,
                            format!("result {i} is declared {} but the op produced {}", type_string(decl), describe(t)),
                        ));
                    }
                }
                out.into_iter().map(Slot::Owned).collect()
            }
        };
        if let (Some(obs), Some(first)) = (observer.as_mut(), results.first()) {
            obs(id, first.get());
        }
        for (r, slot) in results.into_iter().enumerate() {
            let v = Value { node: id, result: r as u32 };
            if uses.get(&v).copied().unwrap_or(0) > 0 {
                values.insert(v, slot);
            }
        }
        // Free operands after their last read.
        if let Some(vals) = operands.get(&id) {
            for v in vals {
                if let Some(u) = uses.get_mut(v) {
                    *u = u.saturating_sub(1);
                    if *u == 0 {
                        values.remove(v);
                    }
                }
            }
        }
    }

    let mut outs = Vec::with_capacity(graph.outputs().len());
    for (i, v) in graph.outputs().iter().enumerate() {
        let last = match uses.get_mut(v) {
            Some(u) => {
                *u = u.saturating_sub(1);
                *u == 0
            }
            None => true,
        };
        let t = if last { values.remove(v) } else { None };
        let t = match t {
            Some(Slot::Owned(t)) => t,
            Some(Slot::Borrowed(t)) => t.clone(),
            None => values.get(v).map(|s| s.get().clone()).ok_or_else(|| {
                InterpError::graph_level(gname, InterpErrorKind::Graph, format!("output {i} was not computed"))
            })?,
        };
        outs.push(t);
    }
    Ok(outs)
}
