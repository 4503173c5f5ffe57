//! Whole-graph shape inference: recompute every builtin node's result shapes (and element
//! types where the rule defines them) from its operands, in topological order. Passes that
//! change weight or input shapes (pruning, slicing) call this to propagate; quantization
//! parameters already on result types are kept when the shape is unchanged and dropped
//! otherwise.

use crate::error::VerifyError;
use crate::ir::{Graph, TensorType};
use crate::text::type_string;

/// Recomputes result types in `g`. Returns the number of nodes whose types changed, or the
/// first node whose shape rule rejects its operands.
pub fn refresh_types(g: &mut Graph) -> Result<usize, VerifyError> {
    let order = g.topo_order().map_err(|c| VerifyError {
        graph: g.name().to_string(),
        node: Some((g.node(c.0).name().to_string(), g.node(c.0).op.name().to_string())),
        message: "the graph has a cycle through this node".into(),
    })?;
    let mut changed = 0;
    for id in order {
        let inferred = {
            let types: Vec<&TensorType> = g.operand_list(id).iter().filter_map(|v| g.value_type(*v)).collect();
            let node = g.node(id);
            let Some(inferred) = node.op.infer(&types) else { continue };
            let inferred = inferred.map_err(|message| VerifyError {
                graph: g.name().to_string(),
                node: Some((node.name().to_string(), node.op.name().to_string())),
                message: format!(
                    "{message} (operands: {})",
                    types.iter().map(|t| type_string(t)).collect::<Vec<_>>().join(", ")
                ),
            })?;
            let same = |slot: &TensorType, inf: &crate::ops::Inferred| {
                slot.shape == inf.shape && inf.dtype.is_none_or(|d| d == slot.dtype)
            };
            if node.results.iter().zip(&inferred).all(|(slot, inf)| same(slot, inf)) {
                continue;
            }
            inferred
        };
        let node = g.node_mut(id);
        for (slot, inf) in node.results.iter_mut().zip(inferred) {
            let dtype = inf.dtype.unwrap_or(slot.dtype);
            if slot.shape != inf.shape || slot.dtype != dtype {
                let quant = if slot.shape == inf.shape { slot.quant.take() } else { None };
                *slot = TensorType { shape: inf.shape, dtype, quant };
                changed += 1;
            }
        }
    }
    Ok(changed)
}
