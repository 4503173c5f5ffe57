//! `fold-constants`: evaluate the nodes whose operands are all constant weights.
//!
//! Matches: a node with one result and at least one operand, every operand read from a module
//! weight; any builtin op except `quantize` and `dequantize` (representation changes that later
//! passes and targets rely on: folding `dequantize(@w_i8)` would turn int8 weights back into
//! f32) and `transmit` (a cut). Custom ops are left alone.
//! Produces: the node's result, computed by clio's float reference interpreter (the
//! [`clio::interp::OpEvaluator`] of [`FloatEvaluator`], so the semantics are exactly the
//! interpreter's), as a new module weight named after the node (with the node's quantization,
//! for data-movement ops on quantized weights); readers of the node read the weight instead.
//! The node, and weights nothing reads any more, are removed. Nodes are visited in topological
//! order, so chains of constant nodes fold in one run. A result with more than `max-elements`
//! elements (or more than the pass manager's `Limits`) is not computed and is counted in
//! `skipped-too-large`; an op the float interpreter cannot evaluate on these operands (integer
//! arithmetic, say) is counted in `skipped-unsupported`, with a remark.
//! Preconditions: none. Idempotent.
//!
//! ```text
//! weight @w : tensor<2x3xf32> = dense<[...]>                  weight @t : tensor<3x2xf32> = dense<[...]>
//! %t = transpose(@w) {perm = [1, 0]} : tensor<3x2xf32>   =>
//! %y = matmul(%x, %t) : tensor<1x2xf32>                       %y = matmul(%x, @t) : tensor<1x2xf32>
//! ```

use clio::interp::{FloatEvaluator, OpEvaluator};
use clio::ir::{Op, Tensor, Weight};
use clio::pass::{OptionInfo, OptionKind, Pass, PassContext, PassError, PassInfo, PassOptions, PassRegistry, StatInfo};
use clio::Module;

/// Declaration of `fold-constants`.
pub static INFO: PassInfo = PassInfo {
    name: "fold-constants",
    summary: "Evaluate nodes whose operands are all constant weights into new weights",
    options: &[OptionInfo {
        name: "max-elements",
        kind: OptionKind::Int,
        default: Some("4194304"),
        help: "largest result (in elements) to fold; bigger ones are left alone",
    }],
    statistics: &[
        StatInfo { name: "folded", help: "nodes replaced by a computed weight" },
        StatInfo {
            name: "skipped-too-large",
            help: "constant nodes whose result exceeds max-elements (or the limits)",
        },
        StatInfo { name: "skipped-unsupported", help: "constant nodes the float interpreter cannot evaluate" },
        StatInfo { name: "weights-removed", help: "weights no graph reads any more after folding" },
    ],
};

/// Registers `fold-constants`.
pub fn register(reg: &mut PassRegistry) {
    reg.register(&INFO, |o: &PassOptions| Ok(Box::new(FoldConstants { max_elements: o.usize("max-elements")? })));
}

/// The `fold-constants` pass.
pub struct FoldConstants {
    max_elements: usize,
}

impl FoldConstants {
    /// An instance folding results of up to `max_elements` elements.
    pub fn new(max_elements: usize) -> Self {
        FoldConstants { max_elements }
    }
}

impl Default for FoldConstants {
    fn default() -> Self {
        FoldConstants::new(1 << 22)
    }
}

/// Whether `fold-constants` may evaluate `op` at all.
fn foldable(op: &Op) -> bool {
    !matches!(op, Op::Input | Op::Weight { .. } | Op::Quantize | Op::Dequantize | Op::Transmit(_) | Op::Custom(_))
}

impl Pass for FoldConstants {
    fn info(&self) -> &'static PassInfo {
        &INFO
    }

    fn run(&mut self, m: &mut Module, cx: &mut PassContext) -> Result<(), PassError> {
        let fail = |message: String| PassError::failed(INFO.name, message);
        let eval = FloatEvaluator::new();
        let cap = self.max_elements.min(cx.limits.max_tensor_elements);
        for graph in m.graph_names() {
            let g = m.graph(&graph).ok_or_else(|| fail(format!("graph @{graph} vanished")))?;
            let order = g.topo_order().map_err(|c| fail(format!("@{graph}: cycle at {}", c.0)))?;
            for n in order {
                let g = m.graph(&graph).ok_or_else(|| fail(format!("graph @{graph} vanished")))?;
                if !g.contains(n) {
                    continue;
                }
                let node = g.node(n);
                if !foldable(&node.op) || node.results.len() != 1 {
                    continue;
                }
                let operands = g.operand_list(n);
                let Some(names) =
                    operands.iter().map(|v| g.weight_name(*v).map(str::to_string)).collect::<Option<Vec<_>>>()
                else {
                    continue;
                };
                if names.is_empty() {
                    continue;
                }
                let name = node.name().to_string();
                let ty = node.ty().clone();
                if ty.num_elements().is_none_or(|e| e > cap) {
                    cx.stat("skipped-too-large", 1);
                    cx.note(format!(
                        "@{graph} %{name}: result {} exceeds {cap} elements; not folded",
                        clio::text::type_string(&ty)
                    ));
                    continue;
                }
                let Some(tensors) =
                    names.iter().map(|w| m.weight(w).map(|w| w.data())).collect::<Option<Vec<&Tensor>>>()
                else {
                    continue;
                };
                let result = match eval.eval(g, n, &tensors) {
                    Ok(mut r) if r.len() == 1 => r.pop(),
                    Ok(_) => None,
                    Err(e) => {
                        cx.note(format!("@{graph} %{name} ({}): not folded: {e}", node.op.name()));
                        None
                    }
                };
                let Some(data) = result.filter(|t| t.shape() == ty.shape.as_slice() && t.dtype() == ty.dtype) else {
                    cx.stat("skipped-unsupported", 1);
                    continue;
                };
                let weight = match ty.quant.clone() {
                    Some(q) => Weight::quantized(data, q),
                    None => Weight::new(data),
                };
                let wname = m.add_weight(&name, weight);
                let g = m.graph_mut(&graph).ok_or_else(|| fail(format!("graph @{graph} vanished")))?;
                // The node itself becomes the weight read: readers, outputs and the printed
                // order stay as they were.
                g.set_operands(n, &[]);
                g.node_mut(n).op = Op::Weight { name: wname.clone() };
                g.rename(n, &format!("@{wname}"));
                let mut dead = vec![];
                for v in &operands {
                    if g.contains(v.node) {
                        if let Some(w) = g.remove_if_unused_weight(v.node) {
                            dead.push(w);
                        }
                    }
                }
                for w in dead {
                    if m.remove_weight_if_unread(&w) {
                        cx.stat("weights-removed", 1);
                    }
                }
                cx.stat("folded", 1);
            }
        }
        Ok(())
    }
}
