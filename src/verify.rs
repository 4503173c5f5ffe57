//! The IR verifier. The pass manager runs it after every pass (verify-each); loading and
//! importing run it too. It checks, per module:
//!
//! * every graph is acyclic and its inputs / outputs are well formed;
//! * every node has the operand count its op accepts, with operand slots `0..n` each filled
//!   exactly once by a live value;
//! * builtin ops' declared result types agree with their shape rules (shape and element type);
//! * quantization parameters are present exactly on quantized types (`i8`/`i16` always, `i32`
//!   optionally for biases, `f32` never) and are consistent with the shape;
//! * every `weight` node names a module weight, has that weight's type, and is the only
//!   node reading that weight in its graph;
//! * `transmit` names another graph of the module.

// Runs on unverified user input (parser, importer): no panicking indexing or slicing (see
// docs/robustness.md).
#![deny(clippy::indexing_slicing)]

use crate::error::VerifyError;
use crate::ir::{DType, Graph, Module, NodeId, Op, Quant, TensorType, Value};
use crate::text::type_string;
use std::collections::HashSet;

/// Verifies a whole module.
pub fn verify_module(m: &Module) -> Result<(), VerifyError> {
    if m.graphs().next().is_none() {
        return Err(VerifyError {
            graph: String::new(),
            node: None,
            message: format!("module @{} has no graph", m.name),
        });
    }
    for (name, w) in m.weights() {
        let data = w.data();
        check_parts(data.shape(), data.dtype(), w.quant.as_ref(), || type_string(&w.ty()))
            .map_err(|e| VerifyError { graph: String::new(), node: None, message: format!("weight @{name}: {e}") })?;
        if let Some(data) = w.data().as_f32().filter(|_| !w.is_finite()) {
            if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(VerifyError {
                    graph: String::new(),
                    node: None,
                    message: format!("weight @{name}: element {i} is {v} (weights must be finite)"),
                });
            }
        }
    }
    for g in m.graphs() {
        verify_graph(m, g)?;
    }
    Ok(())
}

/// Checks that a type has no zero dimension and that its quantization is consistent with its
/// element type and shape.
pub fn check_type(t: &TensorType) -> Result<(), String> {
    check_parts(&t.shape, t.dtype, t.quant.as_ref(), || type_string(t))
}

/// [`check_type`] on the parts of a type; `spelling` prints the type for error messages only.
fn check_parts(
    shape: &[usize],
    dtype: DType,
    quant: Option<&Quant>,
    spelling: impl Fn() -> String,
) -> Result<(), String> {
    if let Some(axis) = shape.iter().position(|d| *d == 0) {
        return Err(format!("{}: dimension {axis} is 0 (empty tensors are not supported)", spelling()));
    }
    match (dtype, quant) {
        (DType::F32, Some(_)) => Err(format!("{} is f32 but carries quantization parameters", spelling())),
        (DType::I8 | DType::I16, None) => {
            Err(format!("{} is an integer activation type without quantization parameters", spelling()))
        }
        (d, Some(q)) => q.check(shape, d.int_range().unwrap_or((0, 0))).map_err(|e| format!("{}: {e}", spelling())),
        _ => Ok(()),
    }
}

/// Verifies one graph of `m`.
pub fn verify_graph(m: &Module, g: &Graph) -> Result<(), VerifyError> {
    let err = |node: Option<NodeId>, message: String| VerifyError {
        graph: g.name().to_string(),
        node: node.map(|n| (g.node(n).name().to_string(), g.node(n).op.name().to_string())),
        message,
    };
    if let Err(c) = g.check_acyclic() {
        return Err(err(Some(c.0), "the graph has a cycle through this node".into()));
    }
    let inputs: HashSet<NodeId> = g.inputs().iter().copied().collect();
    if inputs.len() != g.inputs().len() {
        return Err(err(None, "an input node is listed twice".into()));
    }
    for id in g.inputs() {
        if !g.contains(*id) || !matches!(g.node(*id).op, Op::Input) {
            return Err(err(None, format!("input list entry {id} is not an input node")));
        }
    }
    if g.outputs().is_empty() {
        return Err(err(None, "the graph has no outputs".into()));
    }
    for (i, v) in g.outputs().iter().enumerate() {
        if g.value_type(*v).is_none() {
            return Err(err(None, format!("output {i} refers to a removed node or missing result")));
        }
    }
    // Weights read so far, by index in the module's weight table.
    let mut weights_seen = vec![false; m.weights().len()];
    // Per-node scratch, reused: operand edges (slot, value) and operand types.
    let mut edges: Vec<(u32, Value)> = Vec::new();
    let mut types: Vec<&TensorType> = Vec::new();
    for id in g.node_ids() {
        let n = g.node(id);
        edges.clear();
        edges.extend(g.operand_edges(id));
        edges.sort_by_key(|(slot, _)| *slot);
        if edges.iter().enumerate().any(|(i, (s, _))| *s as usize != i) {
            let slots: Vec<u32> = edges.iter().map(|(s, _)| *s).collect();
            return Err(err(Some(id), format!("operand slots {slots:?} are not 0..{}", slots.len())));
        }
        let arity = n.op.arity();
        if !arity.accepts(edges.len()) {
            return Err(err(Some(id), format!("takes {arity} operands, has {}", edges.len())));
        }
        types.clear();
        for (i, (_, v)) in edges.iter().enumerate() {
            match g.value_type(*v) {
                Some(t) => types.push(t),
                None => {
                    return Err(err(Some(id), format!("operand {i} reads result #{} that does not exist", v.result)))
                }
            }
        }
        let [first, more @ ..] = n.results.as_slice() else {
            return Err(err(Some(id), "has no results".into()));
        };
        for t in &n.results {
            check_type(t).map_err(|e| err(Some(id), e))?;
        }
        match &n.op {
            Op::Input if !inputs.contains(&id) => {
                return Err(err(Some(id), "input node missing from the graph's input list".into()))
            }
            Op::Weight { name } => {
                let (index, _, w) = m
                    .weights()
                    .get_full(name.as_str())
                    .ok_or_else(|| err(Some(id), format!("reads undeclared weight @{name}")))?;
                if !more.is_empty() || !w.has_type(first) {
                    return Err(err(
                        Some(id),
                        format!("type {} differs from weight @{name}'s {}", type_string(first), type_string(&w.ty())),
                    ));
                }
                if weights_seen.get_mut(index).is_some_and(|seen| std::mem::replace(seen, true)) {
                    return Err(err(Some(id), format!("a second node reads weight @{name} (one per graph)")));
                }
            }
            Op::Transmit(t) if m.graph(&t.to).is_none() || t.to == g.name() => {
                return Err(err(Some(id), format!("transmits to @{}, which is not another graph of the module", t.to)));
            }
            Op::Quantize if !first.dtype.is_integer() => {
                return Err(err(
                    Some(id),
                    format!("quantize must produce an integer type, declares {}", type_string(first)),
                ));
            }
            _ => {}
        }
        if let Some(inferred) = n.op.infer(&types) {
            let inferred = inferred.map_err(|e| err(Some(id), e))?;
            if inferred.len() != n.results.len() {
                return Err(err(
                    Some(id),
                    format!("has {} results, its op defines {}", n.results.len(), inferred.len()),
                ));
            }
            for (i, (inf, decl)) in inferred.iter().zip(&n.results).enumerate() {
                if inf.shape != decl.shape || inf.dtype.is_some_and(|d| d != decl.dtype) {
                    return Err(err(
                        Some(id),
                        format!(
                            "result {i} is declared {} but the op produces shape {:?}{}",
                            type_string(decl),
                            inf.shape,
                            inf.dtype.map(|d| format!(" of {d}")).unwrap_or_default()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
