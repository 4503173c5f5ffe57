//! Rebuilding a graph from its plan: quantized nodes with integer types, `quantize` where a
//! quantized node reads a float value, `dequantize` where a float node or a graph output reads
//! a quantized one, quantized weights in the module.

use super::plan::{at, Kind, Plan};
use super::weights::quantize_layer;
use super::Config;
use clio::ir::{DType, Graph, Module, NodeId, Op, QScheme, Quant, TensorType, Value, Weight};
use clio::pass::PassContext;
use std::collections::HashMap;

fn dtype_of(q: &Quant, cfg: &Config) -> DType {
    match (&q.scheme, cfg.scheme) {
        (QScheme::Pow2 { .. }, super::Scheme::Q16) => DType::I16,
        _ => DType::I8,
    }
}

struct Builder<'a> {
    old: &'a Graph,
    new: Graph,
    plan: &'a Plan,
    cfg: &'a Config,
    qv: HashMap<NodeId, Value>,
    fv: HashMap<NodeId, Value>,
}

impl Builder<'_> {
    fn qtype(&self, id: NodeId) -> Result<TensorType, String> {
        let q = self.plan.quant.get(&id).ok_or_else(|| format!("{}: no format planned", at(self.old, id)))?;
        let shape = self.old.node(id).ty().shape.clone();
        Ok(TensorType { shape, dtype: dtype_of(q, self.cfg), quant: Some(q.clone()) })
    }

    /// The float version of old value `v` (graph inputs, float nodes, or a dequantize).
    fn float_of(&mut self, v: Value, cx: &mut PassContext) -> Result<Value, String> {
        if let Some(f) = self.fv.get(&v.node) {
            return Ok(*f);
        }
        let q = self.quant_of_existing(v)?;
        let name = format!("{}.dq", self.old.node(v.node).name());
        let ty = TensorType::f32(self.old.node(v.node).ty().shape.clone());
        let d = Value::of(self.new.add_node(&name, Op::Dequantize, &[q], vec![ty]));
        cx.stat("dequantize-inserted", 1);
        self.fv.insert(v.node, d);
        Ok(d)
    }

    fn quant_of_existing(&self, v: Value) -> Result<Value, String> {
        self.qv
            .get(&v.node)
            .copied()
            .ok_or_else(|| format!("{}: value used before it is defined", at(self.old, v.node)))
    }

    /// The quantized version of old value `v` (a quantized node's result, or a `quantize`).
    fn quant_of(&mut self, v: Value, cx: &mut PassContext) -> Result<Value, String> {
        if let Some(q) = self.qv.get(&v.node) {
            return Ok(*q);
        }
        let f = self.float_of(v, cx)?;
        let ty = self.qtype(v.node)?;
        let name = format!("{}.q", self.old.node(v.node).name());
        let q = Value::of(self.new.add_node(&name, Op::Quantize, &[f], vec![ty]));
        cx.stat("quantize-inserted", 1);
        self.qv.insert(v.node, q);
        Ok(q)
    }
}

/// Rebuilds graph `gname` of `m` according to `plan`, writing quantized weights into `m`.
pub(crate) fn rewrite(
    m: &mut Module,
    gname: &str,
    plan: &Plan,
    cfg: &Config,
    cx: &mut PassContext,
) -> Result<(), String> {
    let old = m.graph(gname).ok_or_else(|| format!("no graph @{gname}"))?.clone();
    let order = old.topo_order().map_err(|c| format!("{}: cycle", at(&old, c.0)))?;
    let mut b = Builder { old: &old, new: Graph::new(gname), plan, cfg, qv: HashMap::new(), fv: HashMap::new() };
    let old_weights: Vec<String> =
        order.iter().filter_map(|id| old.weight_name(Value::of(*id))).map(String::from).collect();
    // Quantized weights to store: (original name, weight).
    let mut new_weights: Vec<(String, String, Weight)> = Vec::new();
    let weight_name_for = |m: &Module, orig: &str, taken: &[(String, String, Weight)]| -> String {
        if m.weight_use_count(orig) == 1 && !taken.iter().any(|(o, _, _)| o == orig) {
            orig.to_string()
        } else {
            let mut n = format!("{orig}.q");
            let mut i = 1;
            while m.weight(&n).is_some() || taken.iter().any(|(_, t, _)| *t == n) {
                n = format!("{orig}.q{i}");
                i += 1;
            }
            n
        }
    };
    for id in order {
        let node = old.node(id);
        match plan.kind.get(&id).copied().unwrap_or(Kind::Float) {
            Kind::Input => {
                let v = b.new.add_input(node.name(), node.ty().clone());
                b.fv.insert(id, v);
            }
            Kind::Weight => {}
            Kind::Fused => {
                let p = plan.fused_into[&id];
                let v = b.quant_of_existing(Value::of(p))?;
                b.qv.insert(id, v);
                cx.stat("fused-activations", 1);
            }
            Kind::Float => {
                let mut ops = Vec::new();
                for v in old.operands(id) {
                    if let Some(w) = old.weight_name(v) {
                        let ty = old.value_type(v).cloned().ok_or("weight without type")?;
                        ops.push(b.new.weight_value(w, ty));
                    } else {
                        ops.push(b.float_of(v, cx)?);
                    }
                }
                let nid = b.new.add_node(node.name(), node.op.clone(), &ops, node.results.clone());
                b.fv.insert(id, Value::of(nid));
                cx.stat("float-nodes", 1);
            }
            Kind::Quant => {
                let ty = b.qtype(id)?;
                let mut op = node.op.clone();
                let olds = old.operands(id);
                let mut ops = Vec::with_capacity(olds.len());
                if matches!(op, Op::Conv2d(_) | Op::Gemm(_)) {
                    let x = b.quant_of(olds[0], cx)?;
                    let xq = b.new.value_type(x).and_then(|t| t.quant.clone()).ok_or("input has no format")?;
                    let fracs = plan.weight_frac.get(&id).map(|v| v.as_slice());
                    let means = plan.expectations.get(&id).map(|v| v.as_slice());
                    let lw = quantize_layer(m, &old, id, cfg, &xq, fracs, means)
                        .map_err(|e| format!("{}: {e}", at(&old, id)))?;
                    cx.stat("bias-corrected", lw.bias_corrected);
                    cx.stat("bias-saturated", lw.bias_saturated);
                    ops.push(x);
                    for (orig, w) in std::iter::once(lw.w).chain(lw.b) {
                        let name = weight_name_for(m, &orig, &new_weights);
                        let wv = b.new.weight_value(&name, w.ty());
                        new_weights.push((orig, name, w));
                        ops.push(wv);
                        cx.stat("weights-quantized", 1);
                    }
                    if let Op::Gemm(g) = &mut op {
                        g.alpha = 1.0;
                        g.beta = 1.0;
                    }
                } else {
                    for v in &olds {
                        ops.push(b.quant_of(*v, cx)?);
                    }
                }
                let nid = b.new.add_node(node.name(), op, &ops, vec![ty]);
                b.qv.insert(id, Value::of(nid));
                cx.stat("quantized-nodes", 1);
            }
        }
    }
    let mut outs = Vec::new();
    for v in old.outputs() {
        if v.result != 0 && !b.fv.contains_key(&v.node) {
            return Err(format!("{}: only result 0 of a quantized node can be an output", at(&old, v.node)));
        }
        let f = if let Some(f) = b.fv.get(&v.node) {
            if v.result == 0 {
                *f
            } else {
                Value { node: f.node, result: v.result }
            }
        } else {
            b.float_of(*v, cx)?
        };
        outs.push(f);
    }
    b.new.set_outputs(outs);
    let new = b.new;
    for (_, name, w) in new_weights {
        m.set_weight(&name, w);
    }
    m.add_graph(new);
    for w in old_weights {
        m.remove_weight_if_unread(&w);
    }
    Ok(())
}
